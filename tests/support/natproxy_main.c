/* pskgw-natproxy: the NAT-rebinding UDP proxy (natproxy.h) as a program, for tests that drive
 * other programs through it (ssl_client2 -> pskgw-natproxy -> pskgw).
 *
 *   pskgw-natproxy --server IP:PORT [--listen IP] [--rebind-after N] [--rebind-every N]
 *                  [--count-app]
 *
 * Prints "natproxy listening on PORT" once the client side is bound (port 0: the kernel's), then
 * "natproxy rebind PORT" for every rebind made on SIGUSR1 (the new server-side source port), and
 * on SIGTERM or SIGINT the counters ("natproxy stats to_server N to_client N dropped N rebinds N")
 * before exiting 0. Lines on stdout, flushed. Exit 2 on a usage error, 1 when it cannot start. */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natproxy.h"

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_target(const char *s, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    uint32_t port;
    size_t hl;

    if (colon == NULL || parse_u32(colon + 1, &port) != 0 || port == 0 || port > 65535)
        return -1;
    hl = (size_t)(colon - s);
    if (hl >= sizeof(host))
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
            ss->ss_family = AF_INET6;
            ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
            return 0;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "server", required_argument, NULL, 's' },
        { "listen", required_argument, NULL, 'l' },
        { "rebind-after", required_argument, NULL, 'a' },
        { "rebind-every", required_argument, NULL, 'e' },
        { "count-app", no_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    struct sockaddr_storage server;
    pskgw_natproxy_opts_t o = { 0 };
    pskgw_natproxy_t *p = NULL;
    pskgw_natproxy_stats_t st;
    sigset_t set;
    int c, sig, rc, have_server = 0;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 's':
            bad = parse_target(optarg, &server);
            have_server = 1;
            break;
        case 'l':
            o.listen_ip = optarg;
            break;
        case 'a':
            bad = parse_u32(optarg, &o.rebind_after);
            break;
        case 'e':
            bad = parse_u32(optarg, &o.rebind_every);
            break;
        case 'c':
            o.count_app = true;
            break;
        default:
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "usage: pskgw-natproxy --server IP:PORT [--listen IP] "
                            "[--rebind-after N] [--rebind-every N] [--count-app]\n");
            return 2;
        }
    }
    if (!have_server || optind != argc) {
        fprintf(stderr, "pskgw-natproxy: --server IP:PORT is required\n");
        return 2;
    }
    o.server = (struct sockaddr *)&server;
    /* Signals are taken with sigwait() on this thread; the proxy's thread inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    rc = pskgw_natproxy_start(&o, &p);
    if (rc < 0) {
        fprintf(stderr, "pskgw-natproxy: cannot start: %s\n", strerror(-rc));
        return 1;
    }
    printf("natproxy listening on %u\n", (unsigned)pskgw_natproxy_port(p));
    fflush(stdout);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig != SIGUSR1)
            break;
        rc = pskgw_natproxy_rebind(p);
        if (rc < 0)
            fprintf(stderr, "pskgw-natproxy: rebind failed: %s\n", strerror(-rc));
        else
            printf("natproxy rebind %d\n", rc);
        fflush(stdout);
    }
    pskgw_natproxy_stats(p, &st);
    printf("natproxy stats to_server %llu to_client %llu dropped %llu rebinds %u\n",
           (unsigned long long)st.to_server, (unsigned long long)st.to_client,
           (unsigned long long)st.dropped, (unsigned)st.rebinds);
    fflush(stdout);
    pskgw_natproxy_stop(p);
    return 0;
}
