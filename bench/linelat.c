/* pskgw-linelat: message latency at a file sink, from the gateway's own time stamp to the line
 * being in the file (a report, not a test).
 *
 *   pskgw-linelat --file PATH [--json FILE] [--idle S] [--count N] [--series FILE]
 *
 * Follows PATH (inotify; lines already in it when it starts are skipped, a file that does not
 * exist yet is waited for) and, for every complete envelope line, takes the wall clock when it
 * read the line minus the envelope's "received_at" (the gateway's wall clock when the record's
 * cleartext reached the domain, right after the DTLS record was decrypted: "datagram in").
 * received_at has millisecond resolution and is truncated, so each figure is an upper bound,
 * up to 1 ms above the true latency (and never below it). Stops after N lines, after S seconds
 * (default 10) without a new line once lines have come, or on SIGTERM/SIGINT; then writes
 *   {"count":..,"p50_us":..,"p90_us":..,"p99_us":..,"p999_us":..,"max_us":..,"mean_us":..,
 *    "resolution_us":1000,"bad_lines":..}
 * Both clocks are CLOCK_REALTIME on the same machine. --series FILE also writes one line per
 * envelope, "<received_at - the first line's received_at, ms> <latency, us>", in file order: where
 * in the run the slow lines were (the fleets' handshakes at its start, a burst). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* "received_at":"YYYY-MM-DDTHH:MM:SS.mmmZ" -> ms since the epoch; -1 when absent. */
static int64_t received_at_ms(const char *line)
{
    static const char key[] = "\"received_at\":\"";
    const char *p = strstr(line, key);
    unsigned y, mo, d, h, mi, s, ms;

    if (!p)
        return -1;
    p += sizeof(key) - 1;
    if (digits(p, 4, &y) || p[4] != '-' || digits(p + 5, 2, &mo) || p[7] != '-' ||
        digits(p + 8, 2, &d) || p[10] != 'T' || digits(p + 11, 2, &h) || p[13] != ':' ||
        digits(p + 14, 2, &mi) || p[16] != ':' || digits(p + 17, 2, &s) || p[19] != '.' ||
        digits(p + 20, 3, &ms))
        return -1;
    return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000 + ms;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static int64_t pct(const int64_t *v, size_t n, double q)
{
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);

    return n ? v[i] : 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    const char *json = NULL;
    const char *series_path = NULL;
    FILE *series = NULL;
    int64_t first_ms = -1;
    double idle_s = 10;
    unsigned long want = 0;
    int64_t *lat = NULL;
    size_t n = 0, cap = 0;
    unsigned long bad = 0;
    char buf[1 << 16];
    char *line = NULL;
    size_t llen = 0, lcap = 0;
    int fd = -1, in;
    int64_t last_line_us;
    FILE *out;
    double sum = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--file") == 0)
            path = argv[i + 1];
        else if (strcmp(argv[i], "--json") == 0)
            json = argv[i + 1];
        else if (strcmp(argv[i], "--idle") == 0)
            idle_s = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--count") == 0)
            want = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--series") == 0)
            series_path = argv[i + 1];
    }
    if (!path || argc % 2 == 0) {
        fprintf(stderr, "usage: pskgw-linelat --file PATH [--json FILE] [--idle S] [--count N] "
                        "[--series FILE]\n");
        return 2;
    }
    if (series_path && !(series = fopen(series_path, "w")))
        return 1;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    in = inotify_init1(IN_CLOEXEC);
    if (in < 0)
        return 1;
    last_line_us = now_us();
    while (!stop && (want == 0 || n < want)) {
        struct pollfd pfd = { in, POLLIN, 0 };
        ssize_t r;

        if (fd < 0) {
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                lseek(fd, 0, SEEK_END); /* only what is written from now on */
                inotify_add_watch(in, path, IN_MODIFY);
            }
        }
        while (fd >= 0 && (r = read(fd, buf, sizeof(buf))) > 0) {
            int64_t t = now_us();
            for (ssize_t i = 0; i < r; i++) {
                if (llen + 1 >= lcap) {
                    lcap = lcap ? 2 * lcap : 4096;
                    line = realloc(line, lcap);
                    if (!line)
                        return 1;
                }
                if (buf[i] != '\n') {
                    line[llen++] = buf[i];
                    continue;
                }
                line[llen] = '\0';
                llen = 0;
                int64_t ms = received_at_ms(line);
                if (ms < 0) {
                    bad++;
                    continue;
                }
                if (n == cap) {
                    cap = cap ? 2 * cap : 65536;
                    lat = realloc(lat, cap * sizeof(*lat));
                    if (!lat)
                        return 1;
                }
                lat[n++] = t - ms * 1000;
                if (series) {
                    if (first_ms < 0)
                        first_ms = ms;
                    fprintf(series, "%lld %lld\n", (long long)(ms - first_ms),
                            (long long)lat[n - 1]);
                }
                last_line_us = t;
            }
        }
        if (n > 0 && (double)(now_us() - last_line_us) > idle_s * 1e6)
            break;
        if (poll(&pfd, 1, fd < 0 ? 50 : 200) > 0) {
            char ev[4096];
            (void)!read(in, ev, sizeof(ev));
        }
    }
    if (series)
        fclose(series);
    qsort(lat, n, sizeof(*lat), cmp_i64);
    for (size_t i = 0; i < n; i++)
        sum += (double)lat[i];
    out = json ? fopen(json, "w") : stdout;
    if (!out)
        return 1;
    fprintf(out,
            "{\"count\":%zu,\"p50_us\":%lld,\"p90_us\":%lld,\"p99_us\":%lld,\"p999_us\":%lld,"
            "\"max_us\":%lld,\"mean_us\":%.1f,\"resolution_us\":1000,\"bad_lines\":%lu}\n",
            n, (long long)pct(lat, n, 0.5), (long long)pct(lat, n, 0.9),
            (long long)pct(lat, n, 0.99), (long long)pct(lat, n, 0.999),
            (long long)(n ? lat[n - 1] : 0), n ? sum / (double)n : 0.0, bad);
    if (out != stdout)
        fclose(out);
    free(lat);
    free(line);
    return 0;
}
