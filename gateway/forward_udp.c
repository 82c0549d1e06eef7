/* Forwarding to a UDP backend: one connected socket per DTLS device session (forward.h). */
#include "gateway/forward_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "common/proxyv2.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uv_udp_send_t req;
    pskgw_fwd_t *f; /* valid: the flow outlives its handle's send callbacks */
    size_t len;
    uint8_t *data; /* the datagram; points into the same allocation */
} fwd_send_t;

static void close_flow(pskgw_fwd_t *f)
{
    if (f->closing)
        return;
    f->closing = true;
    if (f->gai != NULL)
        (void)uv_cancel((uv_req_t *)f->gai); /* its callback still comes (release) */
    (void)uv_udp_recv_stop(&f->h.udp);
    uv_close((uv_handle_t *)&f->h.udp, pskgw_fwd_handle_closed);
}

static void on_sent(uv_udp_send_t *req, int status)
{
    fwd_send_t *w = (fwd_send_t *)req;

    (void)status; /* a lost datagram: the protocol above retransmits */
    w->f->queued -= w->len;
    w->f->l->fwd.buffered_bytes -= w->len;
    free(w);
}

/* One datagram for the backend: [PROXY v2 header] data, after the request struct in one
 * allocation. NULL when it cannot be made (no memory, a header that cannot be encoded: then the
 * datagram is dropped, never sent without the header the backend expects). */
static fwd_send_t *datagram(pskgw_fwd_t *f, const uint8_t *data, size_t len)
{
    pskgw_listener_t *l = f->l;
    uint8_t *hdr = NULL;
    size_t hlen = 0;
    fwd_send_t *w;

    if (l->opt.forward.proxy_protocol) {
        struct sockaddr_storage me;
        int n = sizeof(me);

        memset(&me, 0, sizeof(me));
        if (uv_udp_getsockname(&l->h.udp, (struct sockaddr *)&me, &n) < 0 ||
            pskgw_fwd_proxy_header(f->s, (const struct sockaddr *)&me, PSKGW_PP2_TRANSPORT_UDP,
                                   &hdr, &hlen) < 0)
            return NULL;
    }
    w = malloc(sizeof(*w) + hlen + len);
    if (w != NULL) {
        w->f = f;
        w->len = hlen + len;
        w->data = (uint8_t *)(w + 1);
        if (hlen > 0)
            memcpy(w->data, hdr, hlen);
        memcpy(w->data + hlen, data, len);
    }
    free(hdr);
    return w;
}

/* A device datagram while the backend's name resolves: appended to f->early as a 2-byte
 * length and the bytes (within buffer_bytes; beyond: dropped, counted). */
static void hold_early(pskgw_fwd_t *f, const uint8_t *data, size_t len)
{
    uint8_t *p;

    if (len > UINT16_MAX || f->early_len + 2 + len > pskgw_fwd_buffer(f->l) ||
        (p = realloc(f->early, f->early_len + 2 + len)) == NULL) {
        f->l->fwd.datagrams_dropped++;
        return;
    }
    p[f->early_len] = (uint8_t)(len >> 8);
    p[f->early_len + 1] = (uint8_t)len;
    memcpy(p + f->early_len + 2, data, len);
    f->early = p;
    f->early_len += 2 + len;
}

void pskgw_fwd_udp_from_device(pskgw_fwd_t *f, const uint8_t *data, size_t len)
{
    pskgw_listener_t *l = f->l;
    fwd_send_t *w;
    uv_buf_t b;

    if (f->closing)
        return;
    if (f->gai != NULL) { /* the backend's name still resolves: held, sent once connected */
        hold_early(f, data, len);
        return;
    }
    w = datagram(f, data, len);
    if (w == NULL || f->queued + w->len > pskgw_fwd_buffer(l)) {
        free(w);
        l->fwd.datagrams_dropped++;
        return;
    }
    b = uv_buf_init((char *)w->data, (unsigned)w->len);
    if (uv_udp_send(&w->req, &f->h.udp, &b, 1, NULL, on_sent) < 0) {
        free(w);
        l->fwd.datagrams_dropped++;
        return;
    }
    if (!f->sent_byte) {
        f->sent_byte = true;
        f->t0_ms = uv_now(l->loop);
    }
    f->queued += w->len;
    l->fwd.buffered_bytes += w->len;
    l->fwd.bytes_to_backend += len;
    l->fwd.datagrams_to_backend++;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    pskgw_fwd_t *f = h->data;

    (void)suggested;
    *buf = uv_buf_init((char *)f->l->fwd_rbuf, PSKGW_FWD_RBUF);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags)
{
    pskgw_fwd_t *f = h->data;
    pskgw_lsess_t *s = f->s;

    (void)from;
    if (nread == 0 || f->closing || s == NULL || s->ds == NULL)
        return;
    if (nread < 0) {
        /* ICMP port unreachable on the connected socket: the backend is not there (yet). */
        pskgw_fwd_outcome(f->l, nread == UV_ECONNREFUSED ? FWD_FAIL_REFUSED : FWD_FAIL_OTHER);
        return;
    }
    if ((flags & UV_UDP_PARTIAL) ||
        (size_t)nread > pskgw_dtls_ctx_options(s->dctx)->max_message) { /* the session's own */
        f->l->fwd.datagrams_dropped++;
        return;
    }
    pskgw_fwd_first_byte(f);
    pskgw_fwd_outcome(f->l, -1);
    f->l->fwd.bytes_from_backend += (size_t)nread;
    f->l->fwd.datagrams_from_backend++;
    s->bytes_out += (size_t)nread;
    s->last_ms = uv_now(s->l->loop);
    pskgw_dtls_session_touch(s->ds, s->last_ms); /* idle counts both ways */
    (void)pskgw_dtls_session_write(s->ds, (const uint8_t *)buf->base, (size_t)nread);
}

static int connect_backend(pskgw_fwd_t *f, const struct sockaddr *addr)
{
    int rc = uv_udp_connect(&f->h.udp, addr);

    if (rc == 0)
        rc = uv_udp_recv_start(&f->h.udp, on_alloc, on_recv);
    if (rc < 0) {
        pskgw_fwd_outcome(f->l, FWD_FAIL_OTHER);
        return pskgw_err_from_errno(rc);
    }
    f->connected = true;
    return 0;
}

/* The datagrams held while resolving go out in their order. */
static void send_early(pskgw_fwd_t *f)
{
    uint8_t *p = f->early;
    size_t n = f->early_len;

    f->early = NULL;
    f->early_len = 0;
    for (size_t i = 0; i + 2 <= n && f->s != NULL;) {
        size_t len = (size_t)p[i] << 8 | p[i + 1];

        pskgw_fwd_udp_from_device(f, p + i + 2, len);
        i += 2 + len;
    }
    free(p);
}

static void on_backend_resolved(pskgw_fwd_t *f, int status, const struct sockaddr *addr)
{
    pskgw_lsess_t *s = f->s;

    if (f->closing || s == NULL) {
        close_flow(f); /* the session ended while resolving */
    } else if (status == 0 && connect_backend(f, addr) == 0) {
        send_early(f);
    } else {
        if (status < 0) {
            pskgw_fwd_outcome(f->l, FWD_FAIL_RESOLVE);
            PSKGW_LOG_RL(PSKGW_LOG_WARNING, "forward-resolve",
                         "listener \"%s\": backend \"%s\" not resolved (%s), ending session %llu",
                         f->l->name, f->l->opt.forward.host, uv_strerror(status),
                         (unsigned long long)s->id);
        }
        if (s->ds != NULL)
            pskgw_dtls_session_close_notify(s->ds); /* ends s: detach closes the flow */
        pskgw_lsess_end(s);
        close_flow(f);
    }
    pskgw_fwd_release(f);
}

int pskgw_fwd_udp_start(pskgw_lsess_t *s)
{
    pskgw_listener_t *l = s->l;
    pskgw_fwd_t *f = pskgw_fwd_alloc(s);
    int rc;

    if (f == NULL)
        return PSKGW_ENOMEM;
    (void)uv_udp_init(l->loop, &f->h.udp);
    f->h.udp.data = f;
    f->pending_closes = 1;
    if (l->opt.forward.resolve) {
        rc = pskgw_fwd_resolve(f, SOCK_DGRAM, on_backend_resolved);
        if (rc < 0) {
            pskgw_fwd_outcome(l, FWD_FAIL_RESOLVE);
            rc = pskgw_err_from_errno(rc);
        }
    } else {
        rc = connect_backend(f, (const struct sockaddr *)&l->opt.forward.backend);
    }
    if (rc < 0) {
        close_flow(f);
        return rc;
    }
    s->fwd = f;
    return 0;
}

void pskgw_fwd_udp_detach(pskgw_fwd_t *f)
{
    close_flow(f);
}
