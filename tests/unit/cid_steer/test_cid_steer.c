/* gateway/cid_steer: real SO_REUSEPORT UDP sockets on loopback (groups of 2 and 4), the program
 * attached, crafted DTLS 1.2 CID records and other datagrams sent from real client sockets; every
 * socket of the group is polled to see which one got each datagram. */
#define _DEFAULT_SOURCE /* SO_REUSEPORT */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "gateway/cid_steer.h"

#define MAXN     4
#define GUARD_MS 10000 /* a guard against hanging only */
#define SOURCES  64    /* client ports for the fallback checks */

typedef struct {
    int fd[MAXN];
    unsigned n;
    struct sockaddr_in addr; /* the group's address */
} group_t;

/* n sockets bound in order to one port: socket i has index i in the group. */
static void group_open(group_t *g, unsigned n, int attach_bound)
{
    int one = 1;
    socklen_t len = sizeof(g->addr);

    memset(g, 0, sizeof(*g));
    g->n = n;
    g->addr.sin_family = AF_INET;
    g->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (unsigned i = 0; i < n; i++) {
        g->fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(g->fd[i], 0);
        cr_assert_eq(setsockopt(g->fd[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
        cr_assert_eq(bind(g->fd[i], (struct sockaddr *)&g->addr, sizeof(g->addr)), 0, "bind: %s",
                     strerror(errno));
        if (i == 0)
            cr_assert_eq(getsockname(g->fd[0], (struct sockaddr *)&g->addr, &len), 0);
    }
    /* attached to the last socket: the program belongs to the whole group */
    cr_assert_eq(pskgw_cid_steer_attach(g->fd[n - 1], attach_bound ? n : 0), 0,
                 "SO_ATTACH_REUSEPORT_CBPF: %s", strerror(errno));
}

static void group_close(group_t *g)
{
    for (unsigned i = 0; i < g->n; i++)
        close(g->fd[i]);
}

/* Send buf from a new client socket (a new source port) and return the index of the group's
 * socket that received it (it is read there and checked to be the same bytes). */
static int deliver(group_t *g, const uint8_t *buf, size_t len)
{
    int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct pollfd p[MAXN];
    uint8_t got[256];
    int who = -1;

    cr_assert_geq(c, 0);
    cr_assert_eq(sendto(c, buf, len, 0, (struct sockaddr *)&g->addr, sizeof(g->addr)),
                 (ssize_t)len);
    for (unsigned i = 0; i < g->n; i++)
        p[i] = (struct pollfd){ .fd = g->fd[i], .events = POLLIN };
    cr_assert_gt(poll(p, g->n, GUARD_MS), 0, "no socket of the group got the datagram");
    for (unsigned i = 0; i < g->n; i++) {
        if (!(p[i].revents & POLLIN))
            continue;
        cr_assert_eq(who, -1, "two sockets got one datagram");
        cr_assert_eq(recv(g->fd[i], got, sizeof(got), 0), (ssize_t)len);
        cr_assert_eq(memcmp(got, buf, len), 0);
        who = (int)i;
    }
    close(c);
    return who;
}

/* A DTLS 1.2 CID record: type 25, version fe fd, epoch 1, sequence, CID (8 bytes, byte 0 =
 * worker), then some ciphertext. */
static size_t cid_record(uint8_t *b, uint8_t worker, uint8_t seq)
{
    size_t n = 0;
    const uint8_t hdr[] = { 25, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, seq };

    memcpy(b, hdr, sizeof(hdr));
    n = sizeof(hdr);
    b[n++] = worker;
    for (int i = 1; i < 8; i++)
        b[n++] = (uint8_t)(0xa0 + i);
    b[n++] = 0;
    b[n++] = 24;
    for (int i = 0; i < 24; i++)
        b[n++] = (uint8_t)(i * 7);
    return n;
}

/* Datagrams from SOURCES source ports: every one arrives (none is lost to the program), and they
 * reach at least two sockets (the kernel's hash spreads them: all SOURCES on one socket of two
 * has probability 2^-63). */
static void check_fallback(group_t *g, const uint8_t *buf, size_t len, const char *what)
{
    unsigned hits[MAXN] = { 0 }, used = 0;

    for (int s = 0; s < SOURCES; s++) {
        int who = deliver(g, buf, len);
        cr_assert_geq(who, 0, "%s: lost", what);
        hits[who]++;
    }
    for (unsigned i = 0; i < g->n; i++)
        used += hits[i] > 0;
    cr_assert_geq(used, 2, "%s: every datagram went to one socket (no hash fallback)", what);
}

static void check_group(unsigned n, int attach_bound)
{
    group_t g;
    uint8_t b[128];
    size_t len;

    group_open(&g, n, attach_bound);
    /* CID records: to socket CID byte 0, whatever the source port (a new one each time) */
    for (unsigned w = 0; w < n; w++)
        for (int k = 0; k < 8; k++) {
            len = cid_record(b, (uint8_t)w, (uint8_t)k);
            cr_assert_eq(deliver(&g, b, len), (int)w, "CID worker byte %u", w);
        }
    /* a CID naming a worker beyond the group: the hash */
    len = cid_record(b, (uint8_t)n, 1);
    check_fallback(&g, b, len, "CID byte 0 out of range");
    len = cid_record(b, 0xff, 1);
    check_fallback(&g, b, len, "CID byte 0 = 255");
    /* not a CID record: a ClientHello-like handshake record (22), application data (23) */
    len = cid_record(b, 1, 1);
    b[0] = 22;
    check_fallback(&g, b, len, "handshake record");
    b[0] = 23;
    check_fallback(&g, b, len, "application data record");
    /* type 25 but too short to hold a CID byte (the program must not read past the end) */
    check_fallback(&g, b, PSKGW_CID_STEER_OFFSET, "short type-25 datagram");
    b[0] = 25;
    check_fallback(&g, b, PSKGW_CID_STEER_OFFSET, "short type-25 datagram");
    check_fallback(&g, b, 1, "one-byte datagram");
    group_close(&g);
}

Test(cid_steer, two_sockets)
{
    check_group(2, 0);
}

Test(cid_steer, four_sockets)
{
    check_group(4, 0);
}

Test(cid_steer, four_sockets_bound_in_program)
{
    check_group(4, 1);
}

Test(cid_steer, program_shape)
{
    struct sock_filter f[PSKGW_CID_STEER_MAX_INSNS];
    size_t len = 0;

    cr_assert_eq(pskgw_cid_steer_program(4, f, 3, &len), PSKGW_EINVAL);
    cr_assert_eq(len, 0, "nothing written on failure");
    cr_assert_eq(pskgw_cid_steer_program(4, f, PSKGW_CID_STEER_MAX_INSNS, &len), 0);
    cr_assert_leq(len, PSKGW_CID_STEER_MAX_INSNS);
    cr_assert_eq(f[len - 1].code, BPF_RET | BPF_K);
    cr_assert_eq(f[len - 1].k, PSKGW_CID_STEER_FALLBACK);
    cr_assert_eq(pskgw_cid_steer_program(0, f, PSKGW_CID_STEER_MAX_INSNS, &len), 0);
    cr_assert_leq(len, PSKGW_CID_STEER_MAX_INSNS);
}

/* What a worker restart does to the indexes (cid_steer.h, docs/ARCHITECTURE.md): a socket that
 * leaves the group is replaced in its slot by the last one, and a socket that joins takes the
 * next free index. Worker 0 of three restarting ends up at index 2, worker 2 at index 0. */
Test(cid_steer, a_leaving_socket_is_replaced_by_the_last)
{
    group_t g;
    uint8_t b[128];
    size_t len;
    int one = 1, fd;

    group_open(&g, 3, 0);
    close(g.fd[0]);
    g.fd[0] = g.fd[2]; /* the kernel's order now: old 2, old 1 */
    g.n = 2;
    len = cid_record(b, 0, 1);
    cr_assert_eq(deliver(&g, b, len), 0); /* index 0 is the socket bound third */
    len = cid_record(b, 1, 1);
    cr_assert_eq(deliver(&g, b, len), 1);
    /* the restarted one joins last: index 2 */
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&g.addr, sizeof(g.addr)), 0);
    g.fd[2] = fd;
    g.n = 3;
    len = cid_record(b, 2, 1);
    cr_assert_eq(deliver(&g, b, len), 2);
    group_close(&g);
}
