/* The TCP side of pskgw_listener: one TLS session per connection. See tcp_listener.h. */
#include "gateway/tcp_listener.h"

#include "gateway/listen_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TCP_MAX_QUEUED (1024 * 1024)

typedef struct {
    uv_write_t req;
    pskgw_lsess_t *s; /* valid: the session struct outlives its handle's write callbacks */
    size_t len;
    uint8_t data[];
} tcp_write_t;

static void on_written(uv_write_t *req, int status)
{
    tcp_write_t *w = (tcp_write_t *)req;

    pskgw_lsess_t *s = w->s;

    (void)status;
    s->u.tcp->queued -= w->len;
    free(w);
    pskgw_fwd_device_drained(s); /* a forwarding listener may read its backend again */
}

int pskgw_tcp_send(pskgw_lsess_t *s, const uint8_t *data, size_t len)
{
    tcp_write_t *w;
    uv_buf_t b;
    int rc;

    if (s->ended || uv_is_closing((uv_handle_t *)&s->u.tcp->handle))
        return PSKGW_ECLOSED;
    if (s->u.tcp->queued + len > TCP_MAX_QUEUED)
        return PSKGW_EFULL;
    w = malloc(sizeof(*w) + len);
    if (w == NULL)
        return PSKGW_ENOMEM;
    w->s = s;
    w->len = len;
    memcpy(w->data, data, len);
    b = uv_buf_init((char *)w->data, (unsigned)len);
    rc = uv_write(&w->req, (uv_stream_t *)&s->u.tcp->handle, &b, 1, on_written);
    if (rc < 0) {
        free(w);
        return pskgw_err_from_errno(rc);
    }
    s->u.tcp->queued += len;
    s->l->counters.datagrams_out++;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    pskgw_lsess_t *s = h->data;

    (void)suggested;
    *buf = uv_buf_init((char *)s->l->rbuf, (unsigned)s->l->rbuf_len);
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    pskgw_lsess_t *s = h->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or error: the peer is gone (no close_notify can be sent). */
        if (!s->established)
            s->l->counters.handshakes_failed++;
        pskgw_lsess_end(s);
        return;
    }
    s->l->counters.datagrams_in++;
    if (s->ds != NULL)
        (void)pskgw_dtls_session_feed(s->ds, (const uint8_t *)buf->base, (size_t)nread,
                                      uv_now(s->l->loop));
}

void pskgw_tcp_pause(pskgw_lsess_t *s, bool pause)
{
    if (s->ended || uv_is_closing((uv_handle_t *)&s->u.tcp->handle))
        return;
    if (pause)
        (void)uv_read_stop((uv_stream_t *)&s->u.tcp->handle);
    else
        (void)uv_read_start((uv_stream_t *)&s->u.tcp->handle, on_alloc, on_read);
}

static void refuse(pskgw_listener_t *l, pskgw_lsess_t *s)
{
    (void)l;
    pskgw_lsess_end(s);
}

static void on_connection(uv_stream_t *server, int status)
{
    pskgw_listener_t *l = server->data;
    struct sockaddr_storage ss;
    int namelen = sizeof(ss);
    char peer[PSKGW_PEER_STR_CAP] = "?";
    uint8_t key[PSKGW_PEER_KEY_MAX];
    uint8_t key_len = 0;
    uint8_t src[PSKGW_SOURCE_MAX];
    size_t src_len;
    pskgw_halfopen_ticket_t ticket;
    pskgw_lsess_t *s = NULL;
    uint64_t now = uv_now(l->loop);

    if (status < 0 || l->closing)
        return;
    /* No peer key: TCP sessions are found by id only. */
    if (pskgw_lsess_new(l, NULL, 0, "", &s) < 0)
        return;
    /* pskgw_lsess_end closes this handle too (TCP listeners). */
    (void)uv_tcp_init(l->loop, &s->u.tcp->handle);
    s->u.tcp->handle.data = s;
    if (uv_accept(server, (uv_stream_t *)&s->u.tcp->handle) < 0) {
        refuse(l, s);
        return;
    }
    l->counters.connections++;
    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getpeername(&s->u.tcp->handle, (struct sockaddr *)&ss, &namelen) == 0)
        (void)pskgw_listen_peer_name((const struct sockaddr *)&ss, peer, sizeof(peer), key,
                                     &key_len);
    (void)pskgw_lsess_set_peer(s, peer);
    if (l->counters.sessions_active > l->opt.max_sessions) {
        l->counters.refused_max_sessions++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "listen-full",
                     "listener \"%s\": max_sessions %u reached, refusing \"%s\"", l->name,
                     (unsigned)l->opt.max_sessions, peer);
        refuse(l, s);
        return;
    }
    src_len = pskgw_source_of(key, key_len, l->opt.ipv6_source_prefix, src);
    if (src_len > 0) {
        if (pskgw_listen_admit(l, src, src_len, peer, &ticket) < 0) {
            refuse(l, s);
            return;
        }
        pskgw_lsess_set_source(s, src, src_len, &ticket);
    }
    if (pskgw_dtls_session_new(l->dctx, &s->hs->res, &pskgw_listen_session_cbs, s, NULL, 0, now,
                               &s->ds) < 0 ||
        uv_read_start((uv_stream_t *)&s->u.tcp->handle, on_alloc, on_read) < 0) {
        l->counters.handshakes_failed++;
        refuse(l, s);
        return;
    }
    (void)uv_tcp_nodelay(&s->u.tcp->handle, 1);
    l->counters.handshakes_started++;
    /* Handshake deadline before any byte arrives. */
    (void)pskgw_dtls_session_feed(s->ds, NULL, 0, now);
}

int pskgw_tcp_listener_start(pskgw_listener_t *l, const char **why)
{
    struct sockaddr_storage ss;
    int namelen = sizeof(ss);
    int rc;

    l->rbuf_len = 16384;
    l->rbuf = malloc(l->rbuf_len);
    if (l->rbuf == NULL)
        return PSKGW_ENOMEM;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(l->address, l->opt.port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(l->address, l->opt.port, (struct sockaddr_in6 *)&ss) != 0) {
        *why = "address is not an IPv4 or IPv6 literal";
        return PSKGW_ECONFIG;
    }
    rc = uv_tcp_init(l->loop, &l->h.tcp);
    if (rc < 0)
        return pskgw_err_from_errno(rc);
    l->h.tcp.data = l;
    l->handle_open = true;
    if (l->opt.reuseport) {
        int fd = pskgw_listen_reuseport_socket((const struct sockaddr *)&ss, SOCK_STREAM);

        if (fd < 0) {
            *why = "cannot bind the TCP socket (SO_REUSEPORT)";
            return fd;
        }
        rc = uv_tcp_open(&l->h.tcp, fd);
        if (rc < 0)
            (void)close(fd);
    } else {
        rc = uv_tcp_bind(&l->h.tcp, (const struct sockaddr *)&ss, 0);
    }
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->h.tcp, 511, on_connection);
    if (rc < 0) {
        *why = "cannot bind/listen on the TCP socket";
        return pskgw_err_from_errno(rc);
    }
    rc = uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &namelen);
    if (rc < 0)
        return pskgw_err_from_errno(rc);
    l->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}
