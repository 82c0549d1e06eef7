/* dtls_hammer: a small, independent DTLS 1.2 PSK client (OpenSSL) that runs N full handshakes
 * against a server on loopback, each from its own UDP socket (a distinct source port, optionally
 * spread over 127.0.0.0/8), with at most C handshakes in flight. It measures the same thing
 * against any PSK DTLS server (pskgw, libcoap's coap-server, ...), so the two can be compared.
 *
 * Credentials: either a fixed identity and key (--identity STR --psk HEX), or the identity and
 * PSK of one simulated device derived with pskgw_rotkeys (--seed SEED --device I), which pskgw
 * can resolve through pskgw-sim started with the same seed.
 *
 * Reports one JSON object (stdout, or --json FILE): handshakes ok/failed, wall rate, latency
 * (first ClientHello to Finished) percentiles, the client's own CPU. With --hold S every
 * established session is kept open for S seconds after the last handshake (for the server's
 * memory per session); the JSON is written before the hold starts, so a script can measure the
 * server while the sessions are up. With --ping each session sends one 4-byte application record
 * (a CoAP ping: 0x40 0x00 + message id) right after its handshake, so that servers free their
 * handshake state as they do after a device's first message.
 *
 * Bounded: at most 1,000,000 handshakes, --duration seconds (default 60) for the handshake phase,
 * --hold at most 3600 s; SIGINT/SIGTERM end the run (results still written). Loopback only.
 *
 * usage: pskgw-dtls-hammer --target 127.0.0.1:PORT (--identity ID --psk HEX | --seed S --device I)
 *        [--handshakes N] [--concurrency C] [--per-ip K] [--src-net B] [--cipher LIST] [--duration S]
 *        [--handshake-timeout S] [--ping] [--hold S] [--json FILE] [--quiet]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/codec.h"
#include "common/wipe.h"
#include "tools/rotkeys/rotkeys.h"

#define MAX_HANDSHAKES 1000000L
#define MAX_INFLIGHT   4096

struct conn {
    int fd;
    SSL *ssl;
    double started;
    int active;     /* handshaking */
    long act_index; /* position in the active list while handshaking */
};

/* The handshakes in flight (at most --concurrency), for timers and timeouts. */
static long *g_act;
static long g_nact;

static void act_add(struct conn *conns, long slot)
{
    conns[slot].act_index = g_nact;
    g_act[g_nact++] = slot;
}

static void act_del(struct conn *conns, long slot)
{
    long at = conns[slot].act_index, last = g_act[--g_nact];

    g_act[at] = last;
    conns[last].act_index = at;
}

static char g_identity[129];
static unsigned char g_psk[64];
static size_t g_psk_len;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static double now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_self(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned int psk_cb(SSL *ssl, const char *hint, char *identity, unsigned int max_id,
                           unsigned char *psk, unsigned int max_psk)
{
    size_t n = strlen(g_identity);

    (void)ssl;
    (void)hint;
    if (n + 1 > max_id || g_psk_len > max_psk)
        return 0;
    memcpy(identity, g_identity, n + 1);
    memcpy(psk, g_psk, g_psk_len);
    return (unsigned int)g_psk_len;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || !end || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Source address of handshake i: 127.0.0.1 when per_ip is 0, else 127.<net>.0.1 onwards, per_ip
 * handshakes per address (host bytes 1..254; the next /16 after 65,024 addresses).
 *
 * Why spread: devices arrive from many addresses, and a server's per-address structures (peer
 * tables, cookies, per-IP limits) should see that; one address per handshake (the default) also
 * never reuses a 4-tuple within a run, whatever the kernel's port allocator does. Give each run
 * of a series its own --src-net. (--per-ip 0 works too: checked against pskgw and coap-server.) */
static void source_addr(long i, long per_ip, long net, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (per_ip <= 0) {
        sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return;
    }
    {
        unsigned long a = (unsigned long)(i / per_ip);
        unsigned long b3 = a % 254 + 1, b2 = (a / 254) % 256;
        unsigned long b1 = (unsigned long)net + a / (254 * 256);

        sa->sin_addr.s_addr = htonl((127UL << 24) | ((b1 & 255) << 16) | (b2 << 8) | b3);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
    long k;

    if (n <= 0)
        return 0;
    k = (long)(p * (double)(n - 1) + 0.5);
    return v[k];
}

/* Opens the socket and SSL of one handshake; 0 or -1. */
static int conn_open(struct conn *c, SSL_CTX *ctx, const struct sockaddr_in *src,
                     const struct sockaddr_in *dst, int ep, long slot)
{
    struct epoll_event ev;
    BIO *bio;

    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    if (bind(c->fd, (const struct sockaddr *)src, sizeof(*src)) != 0 ||
        connect(c->fd, (const struct sockaddr *)dst, sizeof(*dst)) != 0)
        goto fail;
    c->ssl = SSL_new(ctx);
    bio = BIO_new_dgram(c->fd, BIO_NOCLOSE);
    if (!c->ssl || !bio) {
        BIO_free(bio);
        goto fail;
    }
    BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, (void *)dst);
    SSL_set_bio(c->ssl, bio, bio);
    SSL_set_connect_state(c->ssl);
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)slot;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        goto fail;
    c->started = now_mono();
    c->active = 1;
    return 0;
fail:
    SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    c->fd = -1;
    return -1;
}

static void conn_close(struct conn *c, int notify)
{
    if (c->ssl) {
        if (notify)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
    c->active = 0;
}

/* Run state shared by the event loop and the sweep. */
static struct {
    struct conn *conns;
    double *lat;
    long ok, failed, held, running, retrans, hold;
    double t_last;
    int ep, ping;
} g;

/* After SSL_do_handshake returned r on conns[slot]: record completion or failure. */
static void settle(struct conn *c, long slot, int r, double tnow)
{
    if (r == 1 || SSL_is_init_finished(c->ssl)) {
        g.lat[g.ok++] = tnow - c->started;
        g.t_last = tnow;
        g.running--;
        act_del(g.conns, slot);
        c->active = 0;
        if (g.ping) {
            unsigned char msg[4] = { 0x40, 0x00, (unsigned char)(slot >> 8), (unsigned char)slot };
            SSL_write(c->ssl, msg, sizeof(msg));
        }
        if (g.hold > 0) {
            g.held++;
        } else {
            epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
            conn_close(c, 1);
        }
        return;
    }
    {
        int e = SSL_get_error(c->ssl, r);

        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            g.failed++;
            g.running--;
            act_del(g.conns, slot);
            epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
            conn_close(c, 0);
            ERR_clear_error();
        }
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: pskgw-dtls-hammer --target 127.0.0.1:PORT\n"
            "         (--identity ID --psk HEX | --seed SEED --device I [--psk-bits 128|256])\n"
            "         [--handshakes N] [--concurrency C] [--per-ip K (default 1; 0: all from\n"
            "         127.0.0.1)] [--src-net B (127.B.0.0/16 onwards, default 3)] [--cipher LIST]\n"
            "         [--duration S] [--handshake-timeout S] [--ping] [--hold S]\n"
            "         [--json FILE] [--quiet]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "target", required_argument, NULL, 't' },
        { "identity", required_argument, NULL, 'i' },
        { "psk", required_argument, NULL, 'k' },
        { "seed", required_argument, NULL, 'S' },
        { "device", required_argument, NULL, 'd' },
        { "psk-bits", required_argument, NULL, 'b' },
        { "handshakes", required_argument, NULL, 'n' },
        { "concurrency", required_argument, NULL, 'c' },
        { "per-ip", required_argument, NULL, 'p' },
        { "src-net", required_argument, NULL, 'N' },
        { "cipher", required_argument, NULL, 'C' },
        { "duration", required_argument, NULL, 'D' },
        { "handshake-timeout", required_argument, NULL, 'T' },
        { "ping", no_argument, NULL, 'P' },
        { "hold", required_argument, NULL, 'H' },
        { "json", required_argument, NULL, 'j' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *target = NULL, *identity = NULL, *psk_hex = NULL, *seed = NULL, *json = NULL;
    const char *cipher = "PSK-AES128-CCM8";
    long device = -1, psk_bits = 128, total = 1000, inflight = 32, per_ip = 1, duration = 60;
    long src_net = 3;
    long hs_timeout = 10;
    int quiet = 0, opt, rc = 1;
    struct sockaddr_in dst;
    long next = 0, open_fail = 0;
    double t0, cpu0, cpu_hs = 0, end;
    SSL_CTX *ctx = NULL;
    char cipher_list[256];
    FILE *out = stdout;

    g.ep = -1;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;

        switch (opt) {
        case 't':
            target = optarg;
            break;
        case 'i':
            identity = optarg;
            break;
        case 'k':
            psk_hex = optarg;
            break;
        case 'S':
            seed = optarg;
            break;
        case 'd':
            bad = parse_long(optarg, 0, 0xffffffffL, &device);
            break;
        case 'b':
            bad = parse_long(optarg, 128, 256, &psk_bits);
            break;
        case 'n':
            bad = parse_long(optarg, 1, MAX_HANDSHAKES, &total);
            break;
        case 'c':
            bad = parse_long(optarg, 1, MAX_INFLIGHT, &inflight);
            break;
        case 'p':
            bad = parse_long(optarg, 0, MAX_HANDSHAKES, &per_ip);
            break;
        case 'N':
            bad = parse_long(optarg, 1, 250, &src_net);
            break;
        case 'C':
            cipher = optarg;
            break;
        case 'D':
            bad = parse_long(optarg, 1, 3600, &duration);
            break;
        case 'T':
            bad = parse_long(optarg, 1, 600, &hs_timeout);
            break;
        case 'P':
            g.ping = 1;
            break;
        case 'H':
            bad = parse_long(optarg, 0, 3600, &g.hold);
            break;
        case 'j':
            json = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            usage();
            return 0;
        default:
            bad = -1;
            break;
        }
        if (bad) {
            usage();
            return 2;
        }
    }

    /* Target: numeric IPv4 on loopback only. */
    {
        char host[64];
        const char *colon = target ? strrchr(target, ':') : NULL;
        long port = 0;

        if (!colon || (size_t)(colon - target) >= sizeof(host) ||
            parse_long(colon + 1, 1, 65535, &port) != 0) {
            usage();
            return 2;
        }
        memcpy(host, target, (size_t)(colon - target));
        host[colon - target] = '\0';
        memset(&dst, 0, sizeof(dst));
        dst.sin_family = AF_INET;
        dst.sin_port = htons((unsigned short)port);
        if (inet_pton(AF_INET, host, &dst.sin_addr) != 1 ||
            (ntohl(dst.sin_addr.s_addr) >> 24) != 127) {
            fprintf(stderr, "dtls_hammer: target must be a 127.0.0.0/8 address and port\n");
            return 2;
        }
    }

    /* Credentials. */
    if (identity && psk_hex && !seed && device < 0) {
        size_t n = 0;

        if (strlen(identity) >= sizeof(g_identity) ||
            pskgw_hex_decode(psk_hex, strlen(psk_hex), g_psk, sizeof(g_psk), &n) != 0 || n == 0) {
            fprintf(stderr, "dtls_hammer: bad --identity or --psk (hex, 1-64 bytes)\n");
            return 2;
        }
        memcpy(g_identity, identity, strlen(identity) + 1);
        g_psk_len = n;
    } else if (seed && device >= 0 && !identity && !psk_hex) {
        if (pskgw_rot_identity_hex(seed, (uint32_t)device, g_identity) != 0 ||
            pskgw_rot_psk(seed, (uint32_t)device, (unsigned)psk_bits, g_psk, sizeof(g_psk),
                          &g_psk_len) != 0) {
            fprintf(stderr, "dtls_hammer: cannot derive device %ld's credentials\n", device);
            return 2;
        }
    } else {
        usage();
        return 2;
    }

    /* One socket per handshake, and per held session: raise the soft fd limit. */
    {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && g.hold > 0 && (rlim_t)total + 64 > rl.rlim_cur &&
            !quiet)
            fprintf(stderr, "dtls_hammer: warning: %ld sessions to hold but ulimit -n is %lu\n",
                    total, (unsigned long)rl.rlim_cur);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    ctx = SSL_CTX_new(DTLS_client_method());
    if (!ctx)
        goto done;
    SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION);
    snprintf(cipher_list, sizeof(cipher_list), "%s:@SECLEVEL=0", cipher);
    if (SSL_CTX_set_cipher_list(ctx, cipher_list) != 1) {
        fprintf(stderr, "dtls_hammer: cipher \"%s\" not available\n", cipher);
        rc = 2;
        goto done;
    }
    SSL_CTX_set_psk_client_callback(ctx, psk_cb);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

    g.conns = calloc((size_t)total, sizeof(*g.conns));
    g.lat = calloc((size_t)total, sizeof(*g.lat));
    g_act = calloc((size_t)inflight, sizeof(*g_act));
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!g.conns || !g.lat || !g_act || g.ep < 0)
        goto done;
    for (long i = 0; i < total; i++)
        g.conns[i].fd = -1;

    t0 = now_mono();
    cpu0 = cpu_self();
    end = t0 + (double)duration;
    while (!g_stop && (next < total || g.running > 0) && now_mono() < end) {
        struct epoll_event evs[256];
        double tnow = now_mono(), wait_s = 0.01;
        int n;

        /* Start handshakes up to the concurrency. */
        while (next < total && g.running < inflight) {
            struct sockaddr_in src;
            struct conn *c = &g.conns[next];

            source_addr(next, per_ip, src_net, &src);
            if (conn_open(c, ctx, &src, &dst, g.ep, next) != 0) {
                open_fail++;
                g.failed++;
                next++;
                continue;
            }
            act_add(g.conns, next);
            next++;
            g.running++;
            SSL_do_handshake(c->ssl); /* sends the ClientHello */
        }
        /* Wait for datagrams, or the nearest retransmission timer. */
        for (long k = 0; k < g_nact; k++) {
            struct timeval tv;

            if (DTLSv1_get_timeout(g.conns[g_act[k]].ssl, &tv) == 1) {
                double s = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;

                if (s < wait_s)
                    wait_s = s;
            }
        }
        n = epoll_wait(g.ep, evs, 256, (int)(wait_s * 1000.0));
        tnow = now_mono();
        for (int k = 0; k < n; k++) {
            long slot = (long)evs[k].data.u64;
            struct conn *c = &g.conns[slot];
            int r;

            if (!c->active) {
                /* A held session: drain and drop whatever the server sends (ping answers). */
                char sink[2048];

                while (recv(c->fd, sink, sizeof(sink), 0) > 0)
                    ;
                continue;
            }
            r = SSL_do_handshake(c->ssl);
            settle(c, slot, r, tnow);
        }
        /* Retransmissions and handshake timeouts. */
        for (long k = g_nact - 1; k >= 0; k--) {
            struct conn *c = &g.conns[g_act[k]];

            long slot = g_act[k];

            /* Observed with OpenSSL 3.0 on loopback: some handshakes finish with no event of
             * their own left to report it; look at every handshake in flight on each pass (at
             * most 10 ms apart), so they count then. This adds up to 10 ms to the latency of
             * those handshakes at very low concurrency; rates per server CPU are unaffected. */
            if (SSL_is_init_finished(c->ssl)) {
                settle(c, slot, 1, tnow);
                continue;
            }
            if (tnow - c->started > (double)hs_timeout) {
                g.failed++;
                g.running--;
                act_del(g.conns, g_act[k]);
                epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
                conn_close(c, 0);
                continue;
            }
            if (DTLSv1_handle_timeout(c->ssl) > 0)
                g.retrans++;
        }
    }
    cpu_hs = cpu_self() - cpu0;
    /* Handshakes not finished by the deadline count as g.failed. */
    for (long i = 0; i < next; i++)
        if (g.conns[i].active) {
            g.failed++;
            epoll_ctl(g.ep, EPOLL_CTL_DEL, g.conns[i].fd, NULL);
            conn_close(&g.conns[i], 0);
        }
    g.failed += total - next; /* never started (deadline or signal) */

    qsort(g.lat, (size_t)g.ok, sizeof(*g.lat), cmp_double);
    {
        double wall = g.t_last > t0 ? g.t_last - t0 : 0;

        if (json) {
            out = fopen(json, "w");
            if (!out) {
                perror("dtls_hammer: --json");
                goto done;
            }
        }
        fprintf(out,
                "{\"target\":\"%s\",\"cipher\":\"%s\",\"handshakes\":%ld,\"ok\":%ld,"
                "\"failed\":%ld,\"socket_failures\":%ld,\"concurrency\":%ld,\"per_ip\":%ld,"
                "\"retransmissions\":%ld,\"elapsed_s\":%.3f,\"per_s\":%.1f,"
                "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
                "\"client_cpu_s\":%.3f,\"ping\":%s,\"held\":%ld,\"hold_s\":%ld}\n",
                target, cipher, total, g.ok, g.failed, open_fail, inflight, per_ip, g.retrans, wall,
                wall > 0 ? (double)g.ok / wall : 0.0, pct(g.lat, g.ok, 0.50) * 1e3,
                pct(g.lat, g.ok, 0.90) * 1e3, pct(g.lat, g.ok, 0.99) * 1e3,
                g.ok > 0 ? g.lat[g.ok - 1] * 1e3 : 0.0, cpu_hs, g.ping ? "true" : "false", g.held,
                g.hold);
        if (out != stdout)
            fclose(out);
        else
            fflush(stdout);
        if (!quiet)
            fprintf(stderr,
                    "dtls_hammer: %ld/%ld handshakes ok in %.2f s (%.0f/s), p50 %.2f ms, "
                    "p99 %.2f ms, %ld failed, client CPU %.2f s%s\n",
                    g.ok, total, wall, wall > 0 ? (double)g.ok / wall : 0.0,
                    pct(g.lat, g.ok, 0.5) * 1e3, pct(g.lat, g.ok, 0.99) * 1e3, g.failed, cpu_hs,
                    g.held ? ", holding" : "");
    }
    /* Hold the established sessions (server memory is measured meanwhile). */
    if (g.held > 0) {
        double hold_end = now_mono() + (double)g.hold;

        while (!g_stop && now_mono() < hold_end) {
            struct epoll_event evs[256];
            int n = epoll_wait(g.ep, evs, 256, 200);

            for (int k = 0; k < n; k++) {
                char sink[2048];

                while (recv(g.conns[(long)evs[k].data.u64].fd, sink, sizeof(sink), 0) > 0)
                    ;
            }
        }
    }
    rc = g.failed == 0 ? 0 : 1;
done:
    if (g.conns)
        for (long i = 0; i < total; i++)
            if (g.conns[i].ssl || g.conns[i].fd >= 0)
                conn_close(&g.conns[i], g.held > 0);
    free(g.conns);
    free(g.lat);
    free(g_act);
    if (g.ep >= 0)
        close(g.ep);
    SSL_CTX_free(ctx);
    pskgw_wipe(g_psk, sizeof(g_psk));
    return rc;
}
