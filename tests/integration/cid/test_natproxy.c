/* tests/support/natproxy: a client and a server socket on loopback around the proxy; which source
 * port the server sees for each datagram, and which answers come back, before and after rebinds
 * (on command, after N, every N), and the program pskgw-natproxy driven by its signals. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "natproxy.h"
#include "proc.h"

#define GUARD_MS 10000 /* a guard against hanging only */

typedef struct {
    int srv, cli;
    struct sockaddr_in srv_addr, proxy_addr;
    pskgw_natproxy_t *p;
} rig_t;

static int udp_bound(struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof(*a);

    cr_assert_geq(fd, 0);
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)a, &len), 0);
    return fd;
}

static void rig_start_opts(rig_t *r, pskgw_natproxy_opts_t o)
{
    struct sockaddr_in ca;

    r->srv = udp_bound(&r->srv_addr);
    r->cli = udp_bound(&ca);
    o.server = (struct sockaddr *)&r->srv_addr;
    cr_assert_eq(pskgw_natproxy_start(&o, &r->p), 0);
    memset(&r->proxy_addr, 0, sizeof(r->proxy_addr));
    r->proxy_addr.sin_family = AF_INET;
    r->proxy_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->proxy_addr.sin_port = htons(pskgw_natproxy_port(r->p));
    cr_assert_neq(pskgw_natproxy_port(r->p), 0);
}

static void rig_start(rig_t *r, uint32_t after, uint32_t every)
{
    rig_start_opts(r, (pskgw_natproxy_opts_t){ .rebind_after = after, .rebind_every = every });
}

static void rig_stop(rig_t *r)
{
    pskgw_natproxy_stop(r->p);
    close(r->srv);
    close(r->cli);
}

static void recv_guarded(int fd, char *buf, size_t cap, struct sockaddr_in *from)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    socklen_t len = sizeof(*from);
    ssize_t n;

    cr_assert_eq(poll(&p, 1, GUARD_MS), 1, "nothing arrived");
    n = recvfrom(fd, buf, cap - 1, 0, (struct sockaddr *)from, &len);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
}

/* The client sends msg through the proxy; the server gets it: returns the source port it saw. */
static uint16_t c2s(rig_t *r, const char *msg)
{
    char got[64];
    struct sockaddr_in from;

    cr_assert_eq(sendto(r->cli, msg, strlen(msg), 0, (struct sockaddr *)&r->proxy_addr,
                        sizeof(r->proxy_addr)),
                 (ssize_t)strlen(msg));
    recv_guarded(r->srv, got, sizeof(got), &from);
    cr_assert_str_eq(got, msg);
    return ntohs(from.sin_port);
}

static void s2port(rig_t *r, uint16_t port, const char *msg)
{
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };

    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(sendto(r->srv, msg, strlen(msg), 0, (struct sockaddr *)&to, sizeof(to)),
                 (ssize_t)strlen(msg));
}

static void client_gets(rig_t *r, const char *want)
{
    char got[64];
    struct sockaddr_in from;

    recv_guarded(r->cli, got, sizeof(got), &from);
    cr_assert_str_eq(got, want);
    cr_assert_eq(ntohs(from.sin_port), pskgw_natproxy_port(r->p), "answer not from the proxy");
}

Test(natproxy, forwards_both_ways_and_rebinds_on_command)
{
    rig_t r;
    pskgw_natproxy_stats_t st;
    uint16_t p1, p2;
    int np;

    rig_start(&r, 0, 0);
    p1 = c2s(&r, "one");
    cr_assert_eq(c2s(&r, "two"), p1, "the mapping changed without a rebind");
    pskgw_natproxy_stats(r.p, &st);
    cr_assert_eq(st.server_port, p1);
    s2port(&r, p1, "answer1");
    client_gets(&r, "answer1");

    np = pskgw_natproxy_rebind(r.p);
    cr_assert_gt(np, 0);
    p2 = c2s(&r, "three");
    cr_assert_eq(p2, (uint16_t)np);
    cr_assert_neq(p2, p1, "a rebind kept the source port");
    /* An answer to the old mapping is lost: sent first, the client still gets the answer to the
     * new one first (loopback delivers in order, at send time). */
    s2port(&r, p1, "stale");
    s2port(&r, p2, "answer2");
    client_gets(&r, "answer2");

    pskgw_natproxy_stats(r.p, &st);
    cr_assert_eq(st.to_server, 3);
    cr_assert_eq(st.to_client, 2);
    cr_assert_eq(st.rebinds, 1);
    rig_stop(&r);
}

Test(natproxy, rebind_after_n)
{
    rig_t r;
    uint16_t p[6];
    pskgw_natproxy_stats_t st;

    rig_start(&r, 2, 0);
    for (int i = 0; i < 6; i++)
        p[i] = c2s(&r, "x");
    cr_assert_eq(p[1], p[0]);
    cr_assert_neq(p[2], p[1], "no rebind before the third datagram");
    for (int i = 3; i < 6; i++)
        cr_assert_eq(p[i], p[2], "rebind-after rebinds once only");
    pskgw_natproxy_stats(r.p, &st);
    cr_assert_eq(st.rebinds, 1);
    rig_stop(&r);
}

Test(natproxy, rebind_every_n)
{
    rig_t r;
    uint16_t p[7];
    pskgw_natproxy_stats_t st;

    rig_start(&r, 0, 3);
    for (int i = 0; i < 7; i++)
        p[i] = c2s(&r, "y");
    cr_assert(p[0] == p[1] && p[1] == p[2]);
    cr_assert(p[3] == p[4] && p[4] == p[5]);
    cr_assert_neq(p[3], p[2]);
    cr_assert_neq(p[6], p[5]);
    pskgw_natproxy_stats(r.p, &st);
    cr_assert_eq(st.rebinds, 2);
    cr_assert_eq(st.server_port, p[6]);
    rig_stop(&r);
}

/* Only datagrams that start with an application-data record (23, or 25 with a CID) count: a
 * handshake flight sent again does not move the rebind. */
Test(natproxy, counts_application_data_only)
{
    rig_t r;
    uint16_t hs1, hs2, app1, hs3, app2;
    pskgw_natproxy_stats_t st;

    rig_start_opts(&r, (pskgw_natproxy_opts_t){ .rebind_after = 1, .count_app = true });
    hs1 = c2s(&r, "\x16hello");
    hs2 = c2s(&r, "\x16hello again");
    app1 = c2s(&r, "\x17"
                   "data");
    hs3 = c2s(&r, "\x16late");
    cr_assert(hs1 == hs2 && hs2 == app1 && app1 == hs3, "rebind before the 2nd app datagram");
    app2 = c2s(&r, "\x19"
                   "cid data");
    cr_assert_neq(app2, app1);
    pskgw_natproxy_stats(r.p, &st);
    cr_assert_eq(st.to_server, 5);
    cr_assert_eq(st.counted, 2);
    cr_assert_eq(st.rebinds, 1);
    rig_stop(&r);
}

Test(natproxy, program_rebinds_on_sigusr1)
{
    struct sockaddr_in srv_addr;
    int srv = udp_bound(&srv_addr);
    char target[64], line[256];
    unsigned port = 0, np = 0;
    unsigned long long ts = 0, tc = 0, dr = 0;
    unsigned rb = 0;
    pskgw_test_proc_t proc;
    rig_t r = { .srv = srv };
    uint16_t p1, p2;

    snprintf(target, sizeof(target), "127.0.0.1:%u", (unsigned)ntohs(srv_addr.sin_port));
    char *argv[] = { (char *)pskgw_test_bin("tests/pskgw-natproxy"), "--server", target, NULL };
    cr_assert_eq(pskgw_test_spawn(&proc, argv, 1), 0);
    cr_assert_eq(pskgw_test_read_line(&proc, line, sizeof(line), GUARD_MS), 0);
    cr_assert_eq(sscanf(line, "natproxy listening on %u", &port), 1, "%s", line);
    r.proxy_addr.sin_family = AF_INET;
    r.proxy_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r.proxy_addr.sin_port = htons((uint16_t)port);
    r.cli = udp_bound(&srv_addr);
    p1 = c2s(&r, "a");
    cr_assert_eq(kill(proc.pid, SIGUSR1), 0);
    cr_assert_eq(pskgw_test_read_line(&proc, line, sizeof(line), GUARD_MS), 0);
    cr_assert_eq(sscanf(line, "natproxy rebind %u", &np), 1, "%s", line);
    p2 = c2s(&r, "b");
    cr_assert_eq(p2, np);
    cr_assert_neq(p2, p1);
    cr_assert_eq(kill(proc.pid, SIGTERM), 0);
    cr_assert_eq(pskgw_test_read_line(&proc, line, sizeof(line), GUARD_MS), 0);
    cr_assert_eq(sscanf(line,
                        "natproxy stats to_server %llu to_client %llu dropped %llu rebinds %u", &ts,
                        &tc, &dr, &rb),
                 4, "%s", line);
    cr_assert_eq(ts, 2);
    cr_assert_eq(rb, 1);
    cr_assert_eq(pskgw_test_wait(&proc, GUARD_MS), 0);
    close(r.cli);
    close(srv);
}
