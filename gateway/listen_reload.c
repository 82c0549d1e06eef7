/* A reload's settings for a running listener: contract in listen_reload.h. */
#include "gateway/listen_reload.h"
#include "gateway/listen_internal.h"

#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pskgw_listener_set_limits(pskgw_listener_t *l, const pskgw_listener_limits_t *lim)
{
    uint64_t period_ms = (uint64_t)(lim->fail_period_s ? lim->fail_period_s : 300) * 1000;

    pskgw_listener_set_session_limits(l, lim->max_sessions, lim->max_pending_handshakes);
    /* the listener's own encoding (listen_api.c): UINT32_MAX for "no limit" in its options,
     * 0 for "no limit" in the limit structures */
    l->opt.handshakes_per_ip = lim->handshakes_per_s ? lim->handshakes_per_s : UINT32_MAX;
    l->opt.handshakes_per_ip_burst = lim->handshakes_per_s ? lim->handshake_burst : 0;
    l->rate.per_s = l->opt.handshakes_per_ip;
    l->rate.burst =
        l->opt.handshakes_per_ip_burst ? l->opt.handshakes_per_ip_burst : l->opt.handshakes_per_ip;
    l->opt.identity_failure_max = lim->identity_fail_max ? lim->identity_fail_max : UINT32_MAX;
    l->opt.source_failure_max = lim->source_fail_max ? lim->source_fail_max : UINT32_MAX;
    l->opt.identity_block_s = (uint32_t)(period_ms / 1000);
    l->pair_fail.max = lim->identity_fail_max;
    l->pair_fail.period_ms = period_ms;
    l->src_fail.max = lim->source_fail_max;
    l->src_fail.period_ms = period_ms;
    l->opt.half_open_per_source =
        lim->half_open_per_source ? lim->half_open_per_source : UINT32_MAX;
    l->half_open.max = lim->half_open_per_source;
    if (lim->ipv6_source_prefix >= 1 && lim->ipv6_source_prefix <= 128)
        l->opt.ipv6_source_prefix = lim->ipv6_source_prefix;
    else
        l->opt.ipv6_source_prefix = 64;
}

int pskgw_listener_apply_session_cache(pskgw_listener_t *l, size_t *evicted)
{
    return pskgw_ticket_ctx_apply_session_cache(l->dctx, evicted);
}

/* ---- DTLS/TLS settings -------------------------------------------------------------------- */

/* The CID length new sessions offer. A UDP listener routes tls12_cid records by one length
 * (l->opt.cid_len, set once CIDs were on): another length would strand the sessions holding
 * CIDs of the old one, so it is kept (the swap logs it). */
static uint8_t cid_for(const pskgw_listener_t *l, uint8_t want)
{
    if (want == 0 || l->opt.cid_len == 0)
        return want;
    return l->opt.cid_len;
}

/* The options of two contexts differ where a new context is needed (the idle timeout is not:
 * it is set on the running contexts). */
static bool ctx_differs(const pskgw_dtls_options_t *a, const pskgw_dtls_options_t *b)
{
    return strcmp(a->ciphers, b->ciphers) != 0 || a->max_identity_len != b->max_identity_len ||
           a->max_parked_bytes != b->max_parked_bytes || a->max_message != b->max_message ||
           a->handshake_timeout_ms != b->handshake_timeout_ms ||
           a->half_open_timeout_ms != b->half_open_timeout_ms ||
           a->cookie_rotate_ms != b->cookie_rotate_ms || a->cid_len != b->cid_len;
}

int pskgw_listener_dtls_make(const pskgw_listener_t *l, const pskgw_listener_dtls_t *o,
                             pskgw_dtls_ctx_t **out, const char **why)
{
    pskgw_dtls_options_t d = *pskgw_dtls_ctx_options(l->dctx); /* framing, worker, tickets */
    pskgw_dtls_ctx_t *ctx = NULL;
    int rc;

    d.ciphers = o->ciphers;
    d.max_identity_len = o->max_identity_len;
    d.max_parked_bytes = o->max_parked_bytes;
    d.max_message = o->max_message;
    d.handshake_timeout_ms = o->handshake_timeout_ms ? o->handshake_timeout_ms : 10000;
    d.half_open_timeout_ms = o->half_open_timeout_ms;
    d.idle_timeout_s = o->idle_timeout_s ? o->idle_timeout_s : 300;
    d.cookie_rotate_ms = (o->cookie_rotate_s ? o->cookie_rotate_s : 30) * 1000;
    d.cid_len = l->opt.proto == PSKGW_LISTEN_UDP ? cid_for(l, o->cid_len) : 0;
    rc = pskgw_dtls_ctx_new(&d, &ctx, why);
    if (rc < 0)
        return rc;
    *out = ctx;
    return 0;
}

/* The sweep (UDP) follows hibernate_after_s and the idle timeout. */
static void apply_hibernation(pskgw_listener_t *l, uint32_t hib)
{
    bool on = hib != 0 && hib != UINT32_MAX;

    if (l->opt.proto != PSKGW_LISTEN_UDP)
        return;
    l->opt.hibernate_after_s = hib == 0 ? 30 : hib;
    if (on && l->hib_open)
        pskgw_listen_hibernate_retime(l);
    else if (on && pskgw_listen_hibernate_start(l) < 0)
        PSKGW_WARN("domain \"%s\": listener \"%s\": hibernation not started (no timer): "
                   "sessions stay awake",
                   l->domain, l->name);
    else if (!on)
        pskgw_listen_hibernate_stop(l);
}

/* The idle timeout reaches every context the sessions hold, then each established session
 * ends if idle past it or gets its deadline from it (without the sweep: its own timer). Ids
 * first: ending a session may end another one (pskgw_lsess_end). Returns how many ended. */
static size_t apply_idle(pskgw_listener_t *l, size_t *applied)
{
    uint64_t now = uv_now(l->loop), idle = (uint64_t)l->opt.idle_timeout_s * 1000;
    size_t n = 0, ended = 0, cap = l->by_id.n;
    uint64_t *ids = cap > 0 ? malloc(cap * sizeof(*ids)) : NULL;

    for (size_t i = 0; i < l->by_id.cap; i++)
        for (pskgw_lsess_t *s = l->by_id.b[i]; s != NULL; s = s->next_id) {
            pskgw_dtls_ctx_set_idle_timeout(s->dctx, l->opt.idle_timeout_s);
            if (ids != NULL && n < cap && !s->ended && (s->ds != NULL || s->frozen != NULL) &&
                s->established)
                ids[n++] = s->id;
        }
    if (cap > 0 && ids == NULL)
        PSKGW_WARN("domain \"%s\": listener \"%s\": out of memory: the new idle timeout reaches "
                   "each running session at its next record",
                   l->domain, l->name);
    for (size_t k = 0; k < n; k++) {
        pskgw_lsess_t *s = pskgw_ltable_find_id(&l->by_id, ids[k]);

        if (s == NULL || s->ended)
            continue;
        if (s->frozen != NULL && idle > 0 && now >= pskgw_lsess_last_rx(s) + idle) {
            l->counters.idle_closes++; /* as a hibernated one: no close_notify */
            pskgw_lsess_end(s);
            ended++;
            continue;
        }
        if (s->ds != NULL)
            pskgw_dtls_session_timeout(s->ds, now); /* ends it via cb_closed, or announces */
        if (s->ended) {
            ended++;
            continue;
        }
        /* without the sweep an established session's timer may have been stopped by it */
        if (!l->hib_open)
            pskgw_listen_session_cbs.timer(s, pskgw_lsess_last_rx(s) + idle);
    }
    *applied = n;
    free(ids);
    return ended;
}

void pskgw_listener_dtls_swap(pskgw_listener_t *l, const pskgw_listener_dtls_t *o,
                              pskgw_dtls_ctx_t *ctx)
{
    const pskgw_dtls_options_t *n = pskgw_dtls_ctx_options(ctx);
    bool renew = ctx_differs(n, pskgw_dtls_ctx_options(l->dctx));
    uint32_t idle = n->idle_timeout_s, hib = o->hibernate_after_s;
    bool retime = idle != l->opt.idle_timeout_s || (l->opt.proto == PSKGW_LISTEN_UDP &&
                                                    (hib ? hib : 30) != l->opt.hibernate_after_s);
    size_t applied = 0, ended;
    char hs[32] = "off";

    if (l->opt.proto == PSKGW_LISTEN_UDP && o->cid_len != 0 && n->cid_len != o->cid_len)
        PSKGW_WARN("domain \"%s\": listener \"%s\": cid_length %u not applied: its Connection "
                   "IDs are routed by %u bytes (sessions holding one would lose their records); "
                   "restart to change it",
                   l->domain, l->name, (unsigned)o->cid_len, (unsigned)n->cid_len);
    if (renew) {
        pskgw_dtls_ctx_free(l->dctx); /* its sessions hold it until they end */
        l->dctx = ctx;
        if (n->cid_len != 0)
            l->opt.cid_len = n->cid_len;
        l->opt.ciphers = NULL; /* as at start: the context holds the list */
        l->opt.max_message = n->max_message;
        l->opt.max_identity_len = n->max_identity_len;
        l->opt.max_parked_bytes = n->max_parked_bytes;
        l->opt.handshake_timeout_ms = n->handshake_timeout_ms;
        l->opt.half_open_timeout_ms = n->half_open_timeout_ms;
        l->opt.cookie_rotate_s = n->cookie_rotate_ms / 1000;
        PSKGW_NOTICE("domain \"%s\": listener \"%s\": ciphers \"%s\", max_message_bytes %zu, "
                     "handshake %u ms, half-open %u ms, cookie period %u s, cid %u bytes: for "
                     "new handshakes; established sessions keep the settings they started with",
                     l->domain, l->name, n->ciphers, n->max_message, n->handshake_timeout_ms,
                     n->half_open_timeout_ms, n->cookie_rotate_ms / 1000, (unsigned)n->cid_len);
    } else {
        pskgw_dtls_ctx_free(ctx);
    }
    if (!retime)
        return;
    l->opt.idle_timeout_s = idle;
    pskgw_dtls_ctx_set_idle_timeout(l->dctx, idle); /* new sessions */
    apply_hibernation(l, hib);
    ended = apply_idle(l, &applied);
    if (l->hib_open)
        snprintf(hs, sizeof(hs), "after %u s", (unsigned)l->opt.hibernate_after_s);
    PSKGW_NOTICE("domain \"%s\": listener \"%s\": idle timeout %u s, hibernation %s: applied "
                 "to the %zu established session%s (%zu idle past it ended)",
                 l->domain, l->name, (unsigned)idle, hs, applied, applied == 1 ? "" : "s", ended);
}
