/* Forwarding flows: what TCP and UDP share (forward.h). */
#include "gateway/forward_internal.h"

#include "gateway/forward_config.h"

#include "common/err.h"
#include "common/proxyv2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint32_t pskgw_fwd_latency_bounds_ms[PSKGW_FWD_LAT_BUCKETS] = { 1,   2,    5,    10,
                                                                      25,  50,   100,  250,
                                                                      500, 1000, 2500, 10000 };
const char *const pskgw_fwd_fail_reasons[PSKGW_FWD_FAIL_REASONS] = { "refused", "timeout", "other",
                                                                     "resolve" };

void pskgw_fwd_outcome(pskgw_listener_t *l, int why)
{
    uint64_t now = uv_now(l->loop);

    if (now == 0)
        now = 1;
    if (why < 0) {
        l->fwd.backend_ok_ms = now;
        return;
    }
    l->fwd.connect_failed[why]++;
    l->fwd.backend_fail_ms = now;
    l->fwd.backend_fail_why = (uint64_t)why;
}

size_t pskgw_fwd_buffer(const pskgw_listener_t *l)
{
    return l->opt.forward.buffer_bytes ? l->opt.forward.buffer_bytes : 65536;
}

void pskgw_fwd_first_byte(pskgw_fwd_t *f)
{
    pskgw_forward_counters_t *c = &f->l->fwd;
    uint64_t ms;

    if (f->got_byte)
        return;
    f->got_byte = true;
    ms = uv_now(f->l->loop) - f->t0_ms;
    for (int b = 0; b < PSKGW_FWD_LAT_BUCKETS; b++) {
        if (ms <= pskgw_fwd_latency_bounds_ms[b])
            c->latency_le[b]++;
    }
    c->latency_le[PSKGW_FWD_LAT_BUCKETS]++;
    c->latency_sum_ms += ms;
    c->latency_count++;
}

pskgw_fwd_t *pskgw_fwd_alloc(pskgw_lsess_t *s)
{
    pskgw_fwd_t *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    if (s->l->fwd_rbuf == NULL && (s->l->fwd_rbuf = malloc(PSKGW_FWD_RBUF)) == NULL) {
        free(f);
        return NULL;
    }
    f->l = s->l;
    f->s = s;
    f->t0_ms = uv_now(s->l->loop);
    s->l->refs++;
    s->l->fwd.sessions++;
    s->l->fwd.sessions_active++;
    return f;
}

void pskgw_fwd_release(pskgw_fwd_t *f)
{
    pskgw_listener_t *l = f->l;

    if (--f->pending_closes > 0)
        return;
    l->fwd.buffered_bytes -= f->queued;
    l->fwd.sessions_active--;
    free(f->early);
    free(f);
    pskgw_listener_unref(l);
}

void pskgw_fwd_handle_closed(uv_handle_t *h)
{
    pskgw_fwd_release(h->data);
}

typedef struct {
    uv_getaddrinfo_t req;
    pskgw_fwd_t *f;
    void (*cb)(pskgw_fwd_t *f, int status, const struct sockaddr *addr);
} fwd_gai_t;

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    fwd_gai_t *g = (fwd_gai_t *)req;
    pskgw_fwd_t *f = g->f;
    const struct addrinfo *a = res;
    struct sockaddr_storage addr;

    f->gai = NULL;
    while (status == 0 && a != NULL && a->ai_family != AF_INET && a->ai_family != AF_INET6)
        a = a->ai_next;
    if (status == 0 && a == NULL)
        status = UV_EAI_NODATA;
    memset(&addr, 0, sizeof(addr));
    if (status == 0)
        memcpy(&addr, a->ai_addr, a->ai_addrlen);
    uv_freeaddrinfo(res);
    g->cb(f, status, (const struct sockaddr *)&addr);
    free(g);
}

int pskgw_fwd_resolve(pskgw_fwd_t *f, int socktype,
                      void (*cb)(pskgw_fwd_t *f, int status, const struct sockaddr *addr))
{
    const pskgw_forward_opts_t *o = &f->l->opt.forward;
    struct addrinfo hints;
    char port[8];
    fwd_gai_t *g = malloc(sizeof(*g));
    int rc;

    if (g == NULL)
        return UV_ENOMEM;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    snprintf(port, sizeof(port), "%u", (unsigned)o->port);
    g->f = f;
    g->cb = cb;
    rc = uv_getaddrinfo(f->l->loop, &g->req, on_resolved, o->host, port, &hints);
    if (rc < 0) {
        free(g);
        return rc;
    }
    f->gai = &g->req;
    f->pending_closes++;
    return 0;
}

int pskgw_fwd_proxy_header(pskgw_lsess_t *s, const struct sockaddr *dst, int transport,
                           uint8_t **out, size_t *len)
{
    struct sockaddr_storage src;
    int namelen = sizeof(src);
    size_t n;
    uint8_t *p;
    int rc;
    const char *uid = pskgw_dtls_session_uid(s->ds);
    pskgw_pp2_t h = { .transport = transport,
                      .dst = dst,
                      .identity = pskgw_dtls_session_identity(s->ds),
                      .rot_uid = uid };

    memset(&src, 0, sizeof(src));
    if (transport == PSKGW_PP2_TRANSPORT_UDP)
        memcpy(&src, &s->u.udp.addr, sizeof(s->u.udp.addr));
    else if (uv_tcp_getpeername(&s->u.tcp->handle, (struct sockaddr *)&src, &namelen) < 0)
        return PSKGW_EIO;
    h.src = (const struct sockaddr *)&src;
    rc = pskgw_pp2_size(&h, &n);
    if (rc < 0)
        return rc;
    p = malloc(n);
    if (p == NULL)
        return PSKGW_ENOMEM;
    rc = pskgw_pp2_encode(&h, p, n, len);
    if (rc < 0) {
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* ---- the listener's hooks (listen_internal.h) ---------------------------------------------- */

int pskgw_fwd_start(pskgw_lsess_t *s)
{
    if (!s->l->opt.forward.enabled)
        return 0;
    return s->l->opt.proto == PSKGW_LISTEN_TCP ? pskgw_fwd_tcp_start(s) : pskgw_fwd_udp_start(s);
}

void pskgw_fwd_from_device(pskgw_lsess_t *s, const uint8_t *data, size_t len)
{
    if (s->fwd == NULL)
        return;
    if (s->l->opt.proto == PSKGW_LISTEN_TCP)
        pskgw_fwd_tcp_from_device(s->fwd, data, len);
    else
        pskgw_fwd_udp_from_device(s->fwd, data, len);
}

void pskgw_fwd_detach(pskgw_lsess_t *s)
{
    pskgw_fwd_t *f = s->fwd;

    if (f == NULL)
        return;
    s->fwd = NULL;
    f->s = NULL;
    if (s->l->opt.proto == PSKGW_LISTEN_TCP)
        pskgw_fwd_tcp_detach(f);
    else
        pskgw_fwd_udp_detach(f);
}

const pskgw_forward_counters_t *pskgw_listener_forward_counters(const pskgw_listener_t *l)
{
    return l->opt.forward.enabled ? &l->fwd : NULL;
}

int pskgw_forward_opts_from_config(const pskgw_config_listener_t *c, pskgw_listener_opts_t *o)
{
    pskgw_forward_opts_t *f = &o->forward;

    memset(f, 0, sizeof(*f));
    if (c->forward == NULL)
        return 0;
    if (uv_ip4_addr(c->forward_host, c->forward_port, (struct sockaddr_in *)&f->backend) != 0 &&
        uv_ip6_addr(c->forward_host, c->forward_port, (struct sockaddr_in6 *)&f->backend) != 0) {
        /* a host name (the config module checked it): resolved per flow */
        if (strlen(c->forward_host) >= sizeof(f->host))
            return PSKGW_ECONFIG;
        memset(&f->backend, 0, sizeof(f->backend));
        strcpy(f->host, c->forward_host);
        f->resolve = true;
    }
    f->port = c->forward_port;
    f->enabled = true;
    f->proxy_protocol = c->proxy_protocol;
    f->connect_timeout_ms = c->forward_connect_timeout_ms;
    f->buffer_bytes = c->forward_buffer_bytes;
    o->framing = PSKGW_FRAMING_RECORD;
    o->max_message = 16384;
    return 0;
}
