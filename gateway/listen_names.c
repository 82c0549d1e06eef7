/* pskgw_listener: peer names and keys, the SO_REUSEPORT socket, and the proto and framing names
 * of the configuration (moved out of listen_api.c, which holds the tables and sessions). */
#define _DEFAULT_SOURCE /* SO_REUSEPORT, SOCK_NONBLOCK (Linux) */

#include "gateway/listen_internal.h"
#include "gateway/cid_steer.h"

#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- names -------------------------------------------------------------------------------- */

/* Decimal digits of v (at most 5) at p; returns the end. */
static char *put_dec(char *p, unsigned v)
{
    char d[5];
    int n = 0;

    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && n < 5);
    while (n > 0)
        *p++ = d[--n];
    return p;
}

/* "a.b.c.d:port" without printf: this runs for every datagram received (issue 13: uv_ip4_name
 * and snprintf cost about 3,000 instructions a datagram, 12,000 a handshake). Cut at cap like
 * snprintf. */
static void ip4_name(const struct sockaddr_in *a, char *out, size_t cap)
{
    char buf[sizeof("255.255.255.255:65535")];
    const uint8_t *b = (const uint8_t *)&a->sin_addr;
    char *p = buf;
    size_t n;

    for (int i = 0; i < 4; i++) {
        p = put_dec(p, b[i]);
        *p++ = i < 3 ? '.' : ':';
    }
    p = put_dec(p, ntohs(a->sin_port));
    n = (size_t)(p - buf);
    if (cap == 0)
        return;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, buf, n);
    out[n] = '\0';
}

int pskgw_listen_peer_key(const struct sockaddr *sa, uint8_t *key, uint8_t *key_len)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

        key[0] = 4;
        memcpy(key + 1, &a->sin_port, 2);
        memcpy(key + 3, &a->sin_addr, 4);
        *key_len = 7;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

        key[0] = 6;
        memcpy(key + 1, &a->sin6_port, 2);
        memcpy(key + 3, &a->sin6_addr, 16);
        *key_len = 19;
        return 0;
    }
    return PSKGW_EINVAL;
}

int pskgw_listen_peer_addr(const uint8_t *key, size_t key_len, struct sockaddr_in6 *out)
{
    memset(out, 0, sizeof(*out));
    if (key_len == 7 && key[0] == 4) {
        struct sockaddr_in *a = (struct sockaddr_in *)out;

        a->sin_family = AF_INET;
        memcpy(&a->sin_port, key + 1, 2);
        memcpy(&a->sin_addr, key + 3, 4);
        return 0;
    }
    if (key_len == 19 && key[0] == 6) {
        out->sin6_family = AF_INET6;
        memcpy(&out->sin6_port, key + 1, 2);
        memcpy(&out->sin6_addr, key + 3, 16);
        return 0;
    }
    return PSKGW_EINVAL;
}

uint8_t pskgw_lsess_key(const pskgw_lsess_t *s, uint8_t key[PSKGW_PEER_KEY_MAX])
{
    uint8_t len = 0;

    if (s->l->opt.proto != PSKGW_LISTEN_UDP ||
        pskgw_listen_peer_key((const struct sockaddr *)&s->u.udp.addr, key, &len) < 0)
        return 0;
    return len;
}

int pskgw_listen_peer_name(const struct sockaddr *sa, char *out, size_t cap, uint8_t *key,
                           uint8_t *key_len)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return PSKGW_EINVAL;
    if (key != NULL)
        (void)pskgw_listen_peer_key(sa, key, key_len);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

        ip4_name(a, out, cap);
        return 0;
    }
    {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

        if (uv_ip6_name(a, ip, sizeof(ip)) != 0)
            return PSKGW_EINVAL;
        (void)snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
        return 0;
    }
}

int pskgw_listen_reuseport_socket(const struct sockaddr *sa, int type)
{
    int one = 1;
    int fd = socket(sa->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    socklen_t len =
        sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int rc;

    if (fd < 0)
        return pskgw_err_from_errno(errno);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) ||
        bind(fd, sa, len) != 0 ||
        /* UDP workers: a CID record goes to the worker its CID names (cid_steer.h) */
        (type == SOCK_DGRAM && pskgw_cid_steer_attach(fd, 0) != 0)) {
        rc = pskgw_err_from_errno(errno);
        (void)close(fd);
        return rc;
    }
    return fd;
}

int pskgw_listen_proto_parse(const char *s, pskgw_listen_proto_t *out)
{
    if (s != NULL && strcmp(s, "udp") == 0)
        *out = PSKGW_LISTEN_UDP;
    else if (s != NULL && strcmp(s, "tcp") == 0)
        *out = PSKGW_LISTEN_TCP;
    else
        return PSKGW_EINVAL;
    return 0;
}

int pskgw_listen_framing_parse(const char *s, pskgw_framing_t *out)
{
    if (s != NULL && strcmp(s, "len16") == 0)
        *out = PSKGW_FRAMING_LEN16;
    else if (s != NULL && strcmp(s, "newline") == 0)
        *out = PSKGW_FRAMING_NEWLINE;
    else if (s != NULL && strcmp(s, "record") == 0)
        *out = PSKGW_FRAMING_RECORD;
    else
        return PSKGW_EINVAL;
    return 0;
}
