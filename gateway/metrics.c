#include "gateway/metrics.h"

#include "dtls/slab.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

void pskgw_metrics_init(pskgw_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
}

void pskgw_metrics_deinit(pskgw_metrics_t *m)
{
    free(m->text);
    memset(m, 0, sizeof(*m));
}

void pskgw_metrics_reset(pskgw_metrics_t *m)
{
    m->len = 0;
    m->failed = 0;
    if (m->text)
        m->text[0] = '\0';
}

static void append(pskgw_metrics_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append(pskgw_metrics_t *m, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (m->failed)
        return;
    for (;;) {
        size_t room = m->cap - m->len;

        va_start(ap, fmt);
        n = vsnprintf(m->text ? m->text + m->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            m->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            m->len += (size_t)n;
            return;
        }
        size_t ncap = m->cap ? m->cap * 2 : 4096;
        while (ncap < m->len + (size_t)n + 1)
            ncap *= 2;
        char *t = realloc(m->text, ncap);
        if (!t) {
            m->failed = 1;
            return;
        }
        m->text = t;
        m->cap = ncap;
    }
}

/* The printf-free writers of the families and samples (the loop renders every series once a
 * second: vsnprintf was most of that snapshot's cost). Same growth and NUL as append(). */
static int reserve(pskgw_metrics_t *m, size_t n)
{
    size_t ncap;
    char *t;

    if (m->failed)
        return -1;
    if (m->len + n < m->cap)
        return 0;
    ncap = m->cap ? m->cap * 2 : 4096;
    while (ncap < m->len + n + 1)
        ncap *= 2;
    t = realloc(m->text, ncap);
    if (!t) {
        m->failed = 1;
        return -1;
    }
    m->text = t;
    m->cap = ncap;
    return 0;
}

static void put(pskgw_metrics_t *m, const char *s, size_t n)
{
    memcpy(m->text + m->len, s, n);
    m->len += n;
}

static size_t u64_digits(uint64_t v, char out[20])
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void pskgw_metrics_family(pskgw_metrics_t *m, const char *name, const char *type, const char *help)
{
    size_t ln = strlen(name);
    size_t lt = strlen(type);
    size_t lh = strlen(help);

    if (reserve(m, 7 + ln + 1 + lh + 8 + ln + 1 + lt + 1) < 0)
        return;
    put(m, "# HELP ", 7);
    put(m, name, ln);
    put(m, " ", 1);
    put(m, help, lh);
    put(m, "\n# TYPE ", 8);
    put(m, name, ln);
    put(m, " ", 1);
    put(m, type, lt);
    put(m, "\n", 1);
    m->text[m->len] = '\0';
}

/* name{labels} <value text>\n (the braces only with labels). */
static void sample_text(pskgw_metrics_t *m, const char *name, const char *labels, const char *v,
                        size_t lv)
{
    size_t ln = strlen(name);
    size_t ll = labels && *labels ? strlen(labels) : 0;

    if (reserve(m, ln + (ll ? ll + 2 : 0) + 1 + lv + 1) < 0)
        return;
    put(m, name, ln);
    if (ll) {
        put(m, "{", 1);
        put(m, labels, ll);
        put(m, "}", 1);
    }
    put(m, " ", 1);
    put(m, v, lv);
    put(m, "\n", 1);
    m->text[m->len] = '\0';
}

void pskgw_metrics_sample(pskgw_metrics_t *m, const char *name, const char *labels, uint64_t value)
{
    char v[20];

    sample_text(m, name, labels, v, u64_digits(value, v));
}

void pskgw_metrics_sample_f(pskgw_metrics_t *m, const char *name, const char *labels, double value)
{
    if (labels && *labels)
        append(m, "%s{%s} %.6g\n", name, labels, value);
    else
        append(m, "%s %.6g\n", name, value);
}

void pskgw_metrics_label(char *out, size_t cap, const char *key, const char *value)
{
    size_t lk = strlen(key);
    size_t o;

    if (lk + 2 + 2 > cap) { /* key=", the closing quote and the NUL */
        if (cap)
            out[0] = '\0';
        return;
    }
    memcpy(out, key, lk);
    out[lk] = '=';
    out[lk + 1] = '"';
    o = lk + 2;
    for (const char *p = value; *p && o + 3 < cap; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* value / 10^digits written exactly, with digits decimals */
static void sample_scaled(pskgw_metrics_t *m, const char *name, const char *labels, uint64_t value,
                          unsigned digits)
{
    char v[32];
    uint64_t div = 1;
    size_t n;

    for (unsigned i = 0; i < digits; i++)
        div *= 10;
    n = u64_digits(value / div, v);
    v[n++] = '.';
    for (uint64_t frac = value % div, d = div / 10; d > 0; d /= 10)
        v[n++] = (char)('0' + frac / d % 10);
    sample_text(m, name, labels, v, n);
}

void pskgw_metrics_sample_milli(pskgw_metrics_t *m, const char *name, const char *labels,
                                uint64_t thousandths)
{
    sample_scaled(m, name, labels, thousandths, 3);
}

void pskgw_metrics_sample_micro(pskgw_metrics_t *m, const char *name, const char *labels,
                                uint64_t millionths)
{
    sample_scaled(m, name, labels, millionths, 6);
}

/* /proc/self/stat fields 22 (starttime, clock ticks after boot) and 23 (vsize, bytes), 24 (rss,
 * pages). The command name (field 2) may hold spaces and parentheses: parse after its last ')'. */
static int proc_stat(uint64_t *start_ticks, uint64_t *vsize, uint64_t *rss_pages)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n;
    char *p;
    int field = 2;

    if (!f)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (!p)
        return -1;
    for (p++; *p && field < 24;) {
        char *end;
        unsigned long long v;

        while (*p == ' ')
            p++;
        field++;
        errno = 0;
        v = strtoull(p, &end, 10);
        if (field == 22 || field == 23 || field == 24) {
            if (end == p || errno)
                return -1;
            *(field == 22 ? start_ticks : field == 23 ? vsize : rss_pages) = v;
        }
        p = strchr(p, ' ');
        if (!p)
            return field >= 24 ? 0 : -1;
    }
    return field >= 24 ? 0 : -1;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void process_gauge(pskgw_metrics_t *m, const char *name, const char *help, double v)
{
    pskgw_metrics_family(m, name, "gauge", help);
    append(m, "%s %.17g\n", name, v);
}

void pskgw_metrics_process(pskgw_metrics_t *m, const char *version)
{
    char lab[200];
    struct rusage ru;
    struct rlimit rl;
    uint64_t start_ticks = 0, vsize = 0, rss_pages = 0;
    long fds = open_fds();
    long tck = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    pskgw_slab_mode_t slab;

    pskgw_metrics_family(m, "pskgw_build_info", "gauge", "always 1; labelled with the version");
    pskgw_metrics_label(lab, sizeof(lab), "version", version);
    pskgw_metrics_sample(m, "pskgw_build_info", lab, 1);
    pskgw_slab_mode(&slab);
    pskgw_metrics_family(m, "pskgw_slab_active", "gauge",
                         "1 when sessions' memory comes from the slab's reserved range, 0 when "
                         "from malloc (the start-up log line says why)");
    pskgw_metrics_sample(m, "pskgw_slab_active", NULL, slab.active ? 1 : 0);
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                     ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;

        pskgw_metrics_family(m, "process_cpu_seconds_total", "counter",
                             "user and system CPU time spent, in seconds");
        append(m, "process_cpu_seconds_total %.6f\n", cpu);
    }
    if (proc_stat(&start_ticks, &vsize, &rss_pages) == 0 && tck > 0 && page > 0) {
        struct timespec real, boot;

        process_gauge(m, "process_resident_memory_bytes", "resident memory size in bytes",
                      (double)rss_pages * (double)page);
        process_gauge(m, "process_virtual_memory_bytes", "virtual memory size in bytes",
                      (double)vsize);
        /* starttime counts from boot (CLOCK_BOOTTIME): no need for /proc/stat's btime, which
         * ProcSubset=pid hides */
        if (clock_gettime(CLOCK_REALTIME, &real) == 0 &&
            clock_gettime(CLOCK_BOOTTIME, &boot) == 0) {
            double up = (double)boot.tv_sec + (double)boot.tv_nsec / 1e9;
            double now = (double)real.tv_sec + (double)real.tv_nsec / 1e9;

            process_gauge(m, "process_start_time_seconds",
                          "start time of the process since the Unix epoch, in seconds",
                          (double)(long long)(now - up + (double)start_ticks / (double)tck));
        }
    }
    if (fds >= 0)
        process_gauge(m, "process_open_fds", "open file descriptors", (double)fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        process_gauge(m, "process_max_fds", "maximum number of open file descriptors",
                      (double)rl.rlim_cur);
}
