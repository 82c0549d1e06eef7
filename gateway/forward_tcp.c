/* Forwarding to a TCP backend: one connection per TLS device session (forward.h). */
#include "gateway/forward_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "common/proxyv2.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uv_write_t req;
    pskgw_fwd_t *f; /* valid: the flow outlives its handle's write callbacks */
    size_t len;
    uint8_t data[];
} fwd_write_t;

static void close_flow(pskgw_fwd_t *f)
{
    if (f->closing)
        return;
    f->closing = true;
    if (f->gai != NULL)
        (void)uv_cancel((uv_req_t *)f->gai); /* its callback still comes (release) */
    (void)uv_timer_stop(&f->timer);
    uv_close((uv_handle_t *)&f->h.tcp, pskgw_fwd_handle_closed);
    uv_close((uv_handle_t *)&f->timer, pskgw_fwd_handle_closed);
}

/* The backend failed: the device session ends (close_notify only for a clean connect failure,
 * whose device never sent anything that got lost). */
static void fail_device(pskgw_fwd_t *f, bool notify)
{
    pskgw_lsess_t *s = f->s;

    if (s == NULL) {
        close_flow(f);
        return;
    }
    if (notify && s->ds != NULL)
        pskgw_dtls_session_close_notify(s->ds); /* ends s: detach closes the flow */
    pskgw_lsess_end(s);
}

static void on_written(uv_write_t *req, int status)
{
    fwd_write_t *w = (fwd_write_t *)req;
    pskgw_fwd_t *f = w->f;

    f->queued -= w->len;
    f->l->fwd.buffered_bytes -= w->len;
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED && !f->closing) {
            f->l->fwd.backend_errors++;
            fail_device(f, false);
        }
        return;
    }
    if (f->device_paused && f->queued <= pskgw_fwd_buffer(f->l) / 2 && f->s != NULL) {
        f->device_paused = false;
        pskgw_tcp_pause(f->s, false);
    }
}

static int write_backend(pskgw_fwd_t *f, const uint8_t *data, size_t len)
{
    fwd_write_t *w = malloc(sizeof(*w) + len);
    uv_buf_t b;
    int rc;

    if (w == NULL)
        return PSKGW_ENOMEM;
    w->f = f;
    w->len = len;
    memcpy(w->data, data, len);
    b = uv_buf_init((char *)w->data, (unsigned)len);
    rc = uv_write(&w->req, (uv_stream_t *)&f->h.tcp, &b, 1, on_written);
    if (rc < 0) {
        free(w);
        return pskgw_err_from_errno(rc);
    }
    f->queued += len;
    f->l->fwd.buffered_bytes += len;
    return 0;
}

/* Device bytes while the backend's name resolves: held, written once the connect starts. */
static int hold_early(pskgw_fwd_t *f, const uint8_t *data, size_t len)
{
    uint8_t *p = realloc(f->early, f->early_len + len);

    if (p == NULL)
        return PSKGW_ENOMEM;
    memcpy(p + f->early_len, data, len);
    f->early = p;
    f->early_len += len;
    f->queued += len;
    f->l->fwd.buffered_bytes += len;
    return 0;
}

void pskgw_fwd_tcp_from_device(pskgw_fwd_t *f, const uint8_t *data, size_t len)
{
    int rc;

    if (f->closing || len == 0)
        return;
    if (!f->sent_byte) {
        f->sent_byte = true;
        f->t0_ms = uv_now(f->l->loop);
    }
    rc = f->gai != NULL ? hold_early(f, data, len) : write_backend(f, data, len);
    if (rc < 0) {
        f->l->fwd.backend_errors++;
        fail_device(f, false);
        return;
    }
    if (f->gai == NULL) { /* held bytes count when written (connect_backend) */
        f->l->fwd.bytes_to_backend += len;
        f->l->fwd.datagrams_to_backend++;
    }
    if (!f->device_paused && f->queued > pskgw_fwd_buffer(f->l)) {
        f->device_paused = true;
        f->l->fwd.device_pauses++;
        pskgw_tcp_pause(f->s, true);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    pskgw_fwd_t *f = h->data;

    (void)suggested;
    *buf = uv_buf_init((char *)f->l->fwd_rbuf, PSKGW_FWD_RBUF);
}

/* Backend bytes to the device, in records of at most max_message bytes. */
static void to_device(pskgw_fwd_t *f, const uint8_t *p, size_t n)
{
    pskgw_lsess_t *s = f->s;
    size_t max = pskgw_dtls_ctx_options(s->dctx)->max_message; /* its own (a reload) */

    f->l->fwd.bytes_from_backend += n;
    f->l->fwd.datagrams_from_backend++;
    s->bytes_out += n;
    s->last_ms = uv_now(s->l->loop);
    if (s->ds != NULL)
        pskgw_dtls_session_touch(s->ds, s->last_ms); /* idle counts both ways (keep-alives) */
    while (n > 0 && f->s != NULL && s->ds != NULL) {
        size_t k = n < max ? n : max;

        if (pskgw_dtls_session_write(s->ds, p, k) < 0)
            return; /* the session ended (TLS: a refused send ends it): detached */
        p += k;
        n -= k;
    }
    if (f->s != NULL && s->u.tcp->queued > pskgw_fwd_buffer(f->l)) {
        (void)uv_read_stop((uv_stream_t *)&f->h.tcp);
        f->backend_paused = true;
        f->l->fwd.backend_pauses++;
    }
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    pskgw_fwd_t *f = h->data;

    if (nread == 0 || f->closing)
        return;
    if (f->s == NULL) {
        /* The device left; its shutdown is under way: what the backend says is dropped. */
        if (nread < 0)
            close_flow(f);
        return;
    }
    if (nread == UV_EOF) {
        f->l->fwd.backend_closes++;
        fail_device(f, true);
        return;
    }
    if (nread < 0) {
        f->l->fwd.backend_errors++;
        fail_device(f, false);
        return;
    }
    pskgw_fwd_first_byte(f);
    to_device(f, (const uint8_t *)buf->base, (size_t)nread);
}

void pskgw_fwd_device_drained(pskgw_lsess_t *s)
{
    pskgw_fwd_t *f = s->fwd;

    if (f == NULL || !f->backend_paused || f->closing ||
        s->u.tcp->queued > pskgw_fwd_buffer(f->l) / 2)
        return;
    f->backend_paused = false;
    (void)uv_read_start((uv_stream_t *)&f->h.tcp, on_alloc, on_read);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    pskgw_fwd_t *f = req->handle->data;

    (void)status;
    free(req);
    close_flow(f);
}

static void on_drain_deadline(uv_timer_t *t)
{
    close_flow(t->data);
}

/* FIN to the backend after the queued bytes, then close; bounded by connect_timeout_ms. */
static void shutdown_backend(pskgw_fwd_t *f)
{
    uv_shutdown_t *req = malloc(sizeof(*req));

    if (req == NULL || uv_shutdown(req, (uv_stream_t *)&f->h.tcp, on_shutdown) < 0) {
        free(req);
        close_flow(f);
        return;
    }
    (void)uv_timer_start(&f->timer, on_drain_deadline, f->l->opt.forward.connect_timeout_ms, 0);
}

static void on_connect(uv_connect_t *req, int status)
{
    pskgw_fwd_t *f = req->handle->data;

    free(req);
    if (f->closing && status == UV_ECANCELED && !f->timed_out)
        return;
    if (status < 0) {
        int why = f->timed_out                ? FWD_FAIL_TIMEOUT
                  : status == UV_ECONNREFUSED ? FWD_FAIL_REFUSED
                                              : FWD_FAIL_OTHER;

        pskgw_fwd_outcome(f->l, why);
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "forward-connect",
                     "listener \"%s\": backend connect failed (%s: %s), ending session %llu",
                     f->l->name, pskgw_fwd_fail_reasons[why], uv_strerror(status),
                     f->s != NULL ? (unsigned long long)f->s->id : 0ULL);
        fail_device(f, true);
        close_flow(f);
        return;
    }
    f->connected = true;
    pskgw_fwd_outcome(f->l, -1);
    (void)uv_timer_stop(&f->timer);
    if (f->s == NULL || f->shutdown_due) {
        shutdown_backend(f);
        return;
    }
    if (!f->sent_byte)
        f->t0_ms = uv_now(f->l->loop);
    (void)uv_read_start((uv_stream_t *)&f->h.tcp, on_alloc, on_read);
}

static void on_connect_deadline(uv_timer_t *t)
{
    pskgw_fwd_t *f = t->data;

    if (f->gai != NULL) { /* still resolving: no connect to cancel */
        pskgw_fwd_outcome(f->l, FWD_FAIL_TIMEOUT);
        fail_device(f, true);
        close_flow(f);
        return;
    }
    f->timed_out = true;
    f->closing = true; /* closing the handle cancels the connect: on_connect counts it */
    uv_close((uv_handle_t *)&f->h.tcp, pskgw_fwd_handle_closed);
    uv_close((uv_handle_t *)&f->timer, pskgw_fwd_handle_closed);
}

/* Connect f to addr and queue the PROXY v2 header and the bytes held while resolving (libuv
 * writes them once connected). 0, or an error (a connect failure counted; nothing to undo but
 * closing the flow). */
static int connect_backend(pskgw_fwd_t *f, const struct sockaddr *addr)
{
    pskgw_lsess_t *s = f->s;
    uv_connect_t *req = malloc(sizeof(uv_connect_t));
    uint8_t *hdr = NULL, *early = f->early;
    size_t hlen = 0, elen = f->early_len;
    struct sockaddr_storage me;
    int n = sizeof(me);
    int rc;

    if (req == NULL)
        return PSKGW_ENOMEM;
    rc = uv_tcp_connect(req, &f->h.tcp, addr, on_connect);
    if (rc < 0) {
        free(req);
        pskgw_fwd_outcome(f->l, rc == UV_ECONNREFUSED ? FWD_FAIL_REFUSED : FWD_FAIL_OTHER);
        return pskgw_err_from_errno(rc);
    }
    (void)uv_tcp_nodelay(&f->h.tcp, 1);
    if (f->l->opt.forward.proxy_protocol) {
        memset(&me, 0, sizeof(me));
        rc = uv_tcp_getsockname(&s->u.tcp->handle, (struct sockaddr *)&me, &n);
        if (rc == 0)
            rc = pskgw_fwd_proxy_header(s, (const struct sockaddr *)&me, PSKGW_PP2_TRANSPORT_TCP,
                                        &hdr, &hlen);
        if (rc == 0)
            rc = write_backend(f, hdr, hlen);
        free(hdr);
        if (rc < 0)
            return rc;
    }
    if (elen > 0) {
        f->early = NULL;
        f->early_len = 0;
        f->queued -= elen; /* counted again as a write */
        f->l->fwd.buffered_bytes -= elen;
        rc = write_backend(f, early, elen);
        free(early);
        if (rc == 0) {
            f->l->fwd.bytes_to_backend += elen;
            f->l->fwd.datagrams_to_backend++;
        }
    }
    return rc;
}

static void on_backend_resolved(pskgw_fwd_t *f, int status, const struct sockaddr *addr)
{
    if (f->closing) {
        /* the deadline or the listener's close came first (and counted) */
    } else if (f->s == NULL) {
        close_flow(f); /* the device left: no connect needed */
    } else if (status < 0) {
        pskgw_fwd_outcome(f->l, FWD_FAIL_RESOLVE);
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "forward-resolve",
                     "listener \"%s\": backend \"%s\" not resolved (%s), ending session %llu",
                     f->l->name, f->l->opt.forward.host, uv_strerror(status),
                     (unsigned long long)f->s->id);
        fail_device(f, true);
        close_flow(f);
    } else if (connect_backend(f, addr) < 0) {
        fail_device(f, true);
        close_flow(f);
    }
    pskgw_fwd_release(f);
}

int pskgw_fwd_tcp_start(pskgw_lsess_t *s)
{
    pskgw_listener_t *l = s->l;
    pskgw_fwd_t *f = pskgw_fwd_alloc(s);
    int rc;

    if (f == NULL)
        return PSKGW_ENOMEM;
    (void)uv_tcp_init(l->loop, &f->h.tcp);
    (void)uv_timer_init(l->loop, &f->timer);
    f->h.tcp.data = f->timer.data = f;
    f->pending_closes = 2;
    s->fwd = f;
    if (l->opt.forward.resolve) {
        rc = pskgw_fwd_resolve(f, SOCK_STREAM, on_backend_resolved);
        if (rc < 0)
            pskgw_fwd_outcome(l, FWD_FAIL_RESOLVE);
        rc = rc < 0 ? pskgw_err_from_errno(rc) : 0;
    } else {
        rc = connect_backend(f, (const struct sockaddr *)&l->opt.forward.backend);
    }
    if (rc < 0) {
        s->fwd = NULL;
        f->s = NULL;
        close_flow(f);
        return rc;
    }
    (void)uv_timer_start(&f->timer, on_connect_deadline, l->opt.forward.connect_timeout_ms, 0);
    return 0;
}

void pskgw_fwd_tcp_detach(pskgw_fwd_t *f)
{
    if (f->closing)
        return;
    if (f->l->closing) {
        close_flow(f);
        return;
    }
    if (!f->connected) {
        f->shutdown_due = true; /* on_connect shuts it down (the connect deadline still runs) */
        return;
    }
    if (f->backend_paused)
        (void)uv_read_start((uv_stream_t *)&f->h.tcp, on_alloc, on_read); /* to see its EOF */
    shutdown_backend(f);
}
