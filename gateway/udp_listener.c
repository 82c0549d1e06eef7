/* The UDP side of pskgw_listener: one socket, datagrams demultiplexed by peer address, stateless
 * cookies before any per-peer state. See listen_api.h. */
#include "gateway/udp_listener.h"

#include "gateway/listen_internal.h"

#include "dtls/parse.h"

#include "common/err.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* recvmmsg: libuv splits the buffer into 64 KiB slots, one datagram each. */
#define UDP_RBUF    (4 * 65536)
#define UDP_SOCKBUF (4 * 1024 * 1024)

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    pskgw_listener_t *l = h->data;

    (void)suggested;
    /* One loop thread, one datagram at a time: a single buffer per listener. */
    *buf = uv_buf_init((char *)l->rbuf, (unsigned)l->rbuf_len);
}

static int send_to(pskgw_listener_t *l, const struct sockaddr *to, const uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_udp_try_send(&l->h.udp, &b, 1, to);

    if (rc < 0)
        return pskgw_err_from_errno(rc); /* a lost datagram: DTLS retransmits */
    l->counters.datagrams_out++;
    return 0;
}

int pskgw_udp_send(pskgw_lsess_t *s, const uint8_t *data, size_t len)
{
    if (s->l->closing && !s->established)
        return PSKGW_ECLOSED;
    if (!s->l->handle_open)
        return PSKGW_ECLOSED;
    return send_to(s->l, (const struct sockaddr *)&s->u.udp.addr, data, len);
}

static void new_session(pskgw_listener_t *l, const struct sockaddr *from, const uint8_t *key,
                        uint8_t key_len, const char *peer, const uint8_t *data, size_t len)
{
    pskgw_lsess_t *s = NULL;
    pskgw_dtls_client_hello_t ch;
    uint64_t rseq = 0;
    uint16_t mseq = 0;
    uint8_t ip[17];
    size_t ip_len;
    uint64_t now = uv_now(l->loop);

    if (l->counters.sessions_active >= l->opt.max_sessions) {
        l->counters.refused_max_sessions++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "listen-full",
                     "listener \"%s\": max_sessions %u reached, refusing \"%s\"", l->name,
                     (unsigned)l->opt.max_sessions, peer);
        return;
    }
    /* Rate per source IP: family byte + address, without the port. */
    ip[0] = key[0];
    ip_len = key_len - 2;
    memcpy(ip + 1, key + 3, ip_len - 1);
    if (!pskgw_rate_limit_take(&l->rate, ip, ip_len, now)) {
        l->counters.rate_limited++;
        PSKGW_LOG_RL(PSKGW_LOG_NOTICE, "listen-rate",
                     "listener \"%s\": handshake rate limit for \"%s\"", l->name, peer);
        return;
    }
    if (pskgw_dtls_find_client_hello(data, len, &rseq, &mseq, &ch) < 0)
        return; /* cannot happen: the cookie check parsed it */
    if (pskgw_lsess_new(l, key, key_len, peer, &s) < 0)
        return;
    memcpy(s->u.udp.hello_random, ch.random, sizeof(s->u.udp.hello_random));
    if (from->sa_family == AF_INET)
        memcpy(&s->u.udp.addr, from, sizeof(struct sockaddr_in));
    else
        memcpy(&s->u.udp.addr, from, sizeof(struct sockaddr_in6));
    if (pskgw_dtls_session_new(l->dctx, &l->resolver, &pskgw_listen_session_cbs, s, key, key_len,
                               now, &s->ds) < 0) {
        l->counters.handshakes_failed++;
        pskgw_lsess_end(s);
        return;
    }
    l->counters.handshakes_started++;
    (void)pskgw_dtls_session_feed(s->ds, data, len, now);
}

/* A ClientHello that is not the one that started session s (whose late network duplicate
 * still carries a valid cookie and must not replace the live session). */
static bool is_new_client_hello(const pskgw_lsess_t *s, const uint8_t *d, size_t len)
{
    pskgw_dtls_client_hello_t ch;
    uint64_t rseq = 0;
    uint16_t mseq = 0;

    /* Cheap first test: an epoch-0 handshake record carrying a ClientHello. */
    if (len < PSKGW_DTLS_RECORD_HEADER_LEN + 1 || d[0] != PSKGW_CT_HANDSHAKE || d[3] != 0 ||
        d[4] != 0 || d[PSKGW_DTLS_RECORD_HEADER_LEN] != PSKGW_HS_CLIENT_HELLO)
        return false;
    return pskgw_dtls_find_client_hello(d, len, &rseq, &mseq, &ch) == 0 &&
           memcmp(ch.random, s->u.udp.hello_random, sizeof(s->u.udp.hello_random)) != 0;
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags)
{
    pskgw_listener_t *l = h->data;
    const uint8_t *data = (const uint8_t *)buf->base;
    uint8_t key[PSKGW_PEER_KEY_MAX];
    uint8_t key_len = 0;
    char peer[PSKGW_PEER_STR_CAP];
    pskgw_lsess_t *s;
    uint8_t hvr[PSKGW_DTLS_HVR_MAX];
    size_t hvr_len = 0;
    int rc;

    if (nread <= 0 || from == NULL || l->closing)
        return;
    l->counters.datagrams_in++;
    if ((flags & UV_UDP_PARTIAL) != 0) {
        l->counters.bad_datagrams++;
        return;
    }
    if (pskgw_listen_peer_name(from, peer, sizeof(peer), key, &key_len) < 0)
        return;
    s = pskgw_ltable_find_peer(&l->by_peer, key, key_len);
    if (s != NULL && s->ds != NULL) {
        if (!is_new_client_hello(s, data, (size_t)nread)) {
            (void)pskgw_dtls_session_feed(s->ds, data, (size_t)nread, uv_now(l->loop));
            return;
        }
        /* A new ClientHello (another random) on an association, established or still in its
         * handshake: the device restarted behind the same address and port (RFC 6347 4.2.8;
         * a client keeps its random across HelloVerifyRequest and retransmissions). Answer
         * statelessly; only a valid cookie replaces the old session, so a spoofed ClientHello
         * cannot end it; a late duplicate of the ClientHello that started the session (same
         * random) went to the session above. */
        rc = pskgw_dtls_ctx_check_hello(l->dctx, uv_now(l->loop), key, key_len, data, (size_t)nread,
                                        hvr, sizeof(hvr), &hvr_len);
        if (rc == 0 && send_to(l, from, hvr, hvr_len) == 0)
            l->counters.cookies_sent++;
        if (rc != 1)
            return;
        PSKGW_LOG_RL(PSKGW_LOG_INFO, "listen-rehello",
                     "listener \"%s\": new handshake from \"%s\" replaces session %llu", l->name,
                     peer, (unsigned long long)s->id);
        if (!s->established)
            l->counters.handshakes_failed++;
        pskgw_lsess_end(s);
        l->counters.cookie_verified++;
        new_session(l, from, key, key_len, peer, data, (size_t)nread);
        return;
    }
    /* No session: only a ClientHello is answered, and without keeping anything. */
    rc = pskgw_dtls_ctx_check_hello(l->dctx, uv_now(l->loop), key, key_len, data, (size_t)nread,
                                    hvr, sizeof(hvr), &hvr_len);
    if (rc == 0) {
        if (send_to(l, from, hvr, hvr_len) == 0)
            l->counters.cookies_sent++;
        return;
    }
    if (rc < 0) {
        l->counters.bad_datagrams++;
        return;
    }
    l->counters.cookie_verified++;
    new_session(l, from, key, key_len, peer, data, (size_t)nread);
}

int pskgw_udp_listener_start(pskgw_listener_t *l, const char **why)
{
    struct sockaddr_storage ss;
    int namelen = sizeof(ss);
    int rc;

    l->rbuf_len = UDP_RBUF;
    l->rbuf = malloc(l->rbuf_len);
    if (l->rbuf == NULL)
        return PSKGW_ENOMEM;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(l->address, l->opt.port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(l->address, l->opt.port, (struct sockaddr_in6 *)&ss) != 0) {
        *why = "address is not an IPv4 or IPv6 literal";
        return PSKGW_ECONFIG;
    }
    rc = uv_udp_init_ex(l->loop, &l->h.udp, AF_UNSPEC | UV_UDP_RECVMMSG);
    if (rc < 0)
        return pskgw_err_from_errno(rc);
    l->h.udp.data = l;
    l->handle_open = true;
    if (l->opt.reuseport) {
        int fd = pskgw_listen_reuseport_socket((const struct sockaddr *)&ss, SOCK_DGRAM);

        if (fd < 0) {
            *why = "cannot bind the UDP socket (SO_REUSEPORT)";
            return fd;
        }
        rc = uv_udp_open(&l->h.udp, fd);
        if (rc < 0) {
            (void)close(fd);
            return pskgw_err_from_errno(rc);
        }
    } else {
        rc = uv_udp_bind(&l->h.udp, (const struct sockaddr *)&ss, 0);
        if (rc < 0) {
            *why = "cannot bind the UDP socket";
            return pskgw_err_from_errno(rc);
        }
    }
    /* Bursts of thousands of handshakes: a large socket buffer instead of kernel drops (the
     * kernel caps it at net.core.rmem_max / wmem_max). Best effort. */
    {
        int sz = UDP_SOCKBUF;

        (void)uv_recv_buffer_size((uv_handle_t *)&l->h.udp, &sz);
        sz = UDP_SOCKBUF;
        (void)uv_send_buffer_size((uv_handle_t *)&l->h.udp, &sz);
    }
    rc = uv_udp_getsockname(&l->h.udp, (struct sockaddr *)&ss, &namelen);
    if (rc < 0)
        return pskgw_err_from_errno(rc);
    l->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    rc = uv_udp_recv_start(&l->h.udp, on_alloc, on_recv);
    if (rc < 0)
        return pskgw_err_from_errno(rc);
    return 0;
}
