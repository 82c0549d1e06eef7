/* pskgw_listener: the per-source limits around new handshakes (rate, failure throttle,
 * handshakes in progress) and the identity in log lines. See listen_api.h and listen_limits.h. */
#include "gateway/listen_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pskgw_listen_log_identity(const char *id, char *out, size_t cap)
{
    size_t o = 0;
    size_t i;

    if (cap == 0)
        return;
    if (id == NULL)
        id = "";
    for (i = 0; id[i] != '\0' && i < PSKGW_LOG_ID_MAX; i++) {
        unsigned char c = (unsigned char)id[i];
        size_t need = (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? 1 : 4;

        if (o + need + 4 > cap) /* room for "..." and the NUL */
            break;
        if (need == 1)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02X", c);
    }
    if (id[i] != '\0' && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* (source, identity): the source bytes then the identity, for the pair throttle. */
static size_t pair_key(const pskgw_lsess_hs_t *hs, const char *identity, uint8_t *out, size_t cap)
{
    size_t n = strlen(identity);

    if (n > cap - hs->src_len)
        n = cap - hs->src_len;
    memcpy(out, hs->src, hs->src_len);
    memcpy(out + hs->src_len, identity, n);
    return hs->src_len + n;
}

int pskgw_listen_admit(pskgw_listener_t *l, const uint8_t *src, size_t src_len, const char *peer,
                       pskgw_halfopen_ticket_t *ticket)
{
    uint64_t now = uv_now(l->loop);

    ticket->held = false;
    if (!pskgw_rate_limit_take(&l->rate, src, src_len, now)) {
        l->counters.rate_limited++;
        PSKGW_LOG_RL_F(
            PSKGW_LOG_NOTICE, "listen-rate",
            (&(pskgw_log_fields_t){
                .domain = l->domain, .listener = l->name, .peer = peer, .reason = "rate limit" }),
            "listener \"%s\": handshake rate limit for \"%s\"", l->name, peer);
        return PSKGW_EBUSY;
    }
    if (pskgw_fail_throttle_blocked(&l->src_fail, src, src_len, now)) {
        l->counters.throttled_sources++;
        PSKGW_LOG_RL_F(
            PSKGW_LOG_NOTICE, "listen-src-throttled",
            (&(pskgw_log_fields_t){ .domain = l->domain,
                                    .listener = l->name,
                                    .peer = peer,
                                    .reason = "source throttled" }),
            "listener \"%s\": \"%s\" refused: too many failed handshakes from its source", l->name,
            peer);
        return PSKGW_EBUSY;
    }
    if (!pskgw_halfopen_take(&l->half_open, src, src_len, ticket)) {
        l->counters.refused_half_open++;
        PSKGW_LOG_RL_F(PSKGW_LOG_NOTICE, "listen-half-open",
                       (&(pskgw_log_fields_t){ .domain = l->domain,
                                               .listener = l->name,
                                               .peer = peer,
                                               .reason = "half-open limit" }),
                       "listener \"%s\": \"%s\" refused: its source has %u handshakes in progress",
                       l->name, peer, (unsigned)l->opt.half_open_per_source);
        return PSKGW_EBUSY;
    }
    return 0;
}

void pskgw_lsess_set_source(pskgw_lsess_t *s, const uint8_t *src, size_t src_len,
                            const pskgw_halfopen_ticket_t *ticket)
{
    pskgw_lsess_hs_t *hs = s->hs; /* a new session's: lsess_new made it */

    if (src_len > sizeof(hs->src))
        src_len = sizeof(hs->src);
    memcpy(hs->src, src, src_len);
    hs->src_len = (uint8_t)src_len;
    hs->half_open = *ticket;
}

int pskgw_listen_on_identity(pskgw_lsess_t *s, const char *identity, uint64_t now)
{
    pskgw_listener_t *l = s->l;
    uint8_t k[PSKGW_SOURCE_MAX + 256];
    char esc[PSKGW_LOG_ID_CAP];

    if (s->hs == NULL || s->hs->src_len == 0 || identity == NULL ||
        !pskgw_fail_throttle_blocked(&l->pair_fail, k, pair_key(s->hs, identity, k, sizeof(k)),
                                     now))
        return 0;
    s->blocked = true;
    l->counters.blocked_identities++;
    pskgw_listen_log_identity(identity, esc, sizeof(esc));
    PSKGW_LOG_RL_F(PSKGW_LOG_NOTICE, "listen-blocked",
                   (&(pskgw_log_fields_t){ .domain = l->domain,
                                           .listener = l->name,
                                           .peer = s->peer,
                                           .identity = esc,
                                           .reason = "identity throttled" }),
                   "listener \"%s\": identity \"%s\" throttled for \"%s\" after failed handshakes "
                   "from its source (session %llu)",
                   l->name, esc, s->peer, (unsigned long long)s->id);
    return PSKGW_EDENIED;
}

void pskgw_listen_on_auth_failed(pskgw_lsess_t *s, const char *identity, uint64_t now)
{
    pskgw_listener_t *l = s->l;
    uint8_t k[PSKGW_SOURCE_MAX + 256];

    l->counters.auth_failures++;
    if (s->blocked || s->hs == NULL || s->hs->src_len == 0)
        return; /* a throttled attempt is not counted again */
    if (pskgw_fail_throttle_fail(&l->src_fail, s->hs->src, s->hs->src_len, now))
        PSKGW_LOG_RL_F(PSKGW_LOG_WARNING, "listen-src-throttle",
                       (&(pskgw_log_fields_t){ .domain = l->domain,
                                               .listener = l->name,
                                               .peer = s->peer,
                                               .reason = "source throttled" }),
                       "listener \"%s\": source of \"%s\" throttled after %u failed handshakes",
                       l->name, s->peer, (unsigned)l->opt.source_failure_max);
    if (identity != NULL)
        (void)pskgw_fail_throttle_fail(&l->pair_fail, k, pair_key(s->hs, identity, k, sizeof(k)),
                                       now);
}

/* ---- lookup admission: the session's resolver ---------------------------------------------- */

/* A cold lookup from PARK to its answer. Owned by the session until resolve() takes it, then by
 * the lookup itself: freed when its callback is given. */
struct pskgw_admit_req {
    pskgw_admit_item_t item;
    pskgw_listener_t *l;
    pskgw_psk_done_cb cb;
    void *arg;
    void *inner; /* the listener resolver's handle while at it */
    char id[];
};

static pskgw_admit_req_t *req_of(pskgw_admit_item_t *item)
{
    return (pskgw_admit_req_t *)(void *)((char *)item - offsetof(pskgw_admit_req_t, item));
}

static void sync_counters(pskgw_listener_t *l)
{
    const pskgw_lookup_admit_counters_t *c = pskgw_lookup_admit_counters(l->admit);

    l->counters.lookups_admitted = c->admitted;
    l->counters.lookups_queued = c->queued;
    l->counters.lookups_dequeued = c->dequeued;
    l->counters.lookups_good = c->good;
    l->counters.lookups_refused_rate = c->refused_rate;
    l->counters.lookups_refused_queue = c->refused_queue;
    l->counters.lookups_withdrawn = c->withdrawn;
    l->counters.lookups_in_flight = c->in_flight;
    l->counters.lookups_waiting = c->waiting;
}

static void pump(pskgw_listener_t *l);

/* The listener's resolver answered (or cancelled): the slot goes to the next waiting lookup. */
static void on_answer(void *arg, int status, const uint8_t *psk, size_t psk_len, const char *uid)
{
    pskgw_admit_req_t *r = arg;
    pskgw_listener_t *l = r->l;
    pskgw_psk_done_cb cb = r->cb;
    void *cb_arg = r->arg;

    pskgw_lookup_admit_release(l->admit, &r->item, uv_now(l->loop));
    free(r);
    cb(cb_arg, status, psk, psk_len, uid);
    pump(l);
    sync_counters(l);
    pskgw_listener_unref(l); /* held while at the resolver */
}

static int dispatch(pskgw_admit_req_t *r)
{
    pskgw_listener_t *l = r->l;
    int rc;

    l->refs++; /* the answer may come after the session (and the listener's close) */
    rc = l->resolver.resolve(l->resolver.ctx, r->id, on_answer, r, &r->inner);
    if (rc < 0)
        l->refs--; /* others hold it: the listener is open */
    return rc;
}

/* Gives the budget to waiting lookups. A resolver that fails at once answers that lookup with
 * PSKGW_EUNAVAIL here (its handshake is dropped like any lookup that failed). */
static void pump(pskgw_listener_t *l)
{
    pskgw_admit_item_t *item;

    if (l->closing)
        return; /* every session is ending: their lookups are withdrawn */
    while ((item = pskgw_lookup_admit_next(l->admit, uv_now(l->loop))) != NULL) {
        pskgw_admit_req_t *r = req_of(item);
        pskgw_psk_done_cb cb;
        void *arg;

        if (dispatch(r) == 0)
            continue;
        pskgw_lookup_admit_release(l->admit, &r->item, uv_now(l->loop));
        cb = r->cb;
        arg = r->arg;
        free(r);
        cb(arg, PSKGW_EUNAVAIL, NULL, 0, NULL);
    }
}

static int res_resolve(void *ctx, const char *identity, pskgw_psk_done_cb cb, void *arg,
                       void **handle)
{
    pskgw_lsess_t *s = ctx;
    pskgw_listener_t *l = s->l;
    pskgw_admit_req_t *r = s->hs->areq; /* this resolver is s->hs->res: s->hs is there */
    int rc;

    if (r == NULL || strcmp(r->id, identity) != 0)
        return PSKGW_EINVAL; /* always parked first (dtls/session.c) */
    s->hs->areq = NULL;
    r->cb = cb;
    r->arg = arg;
    *handle = r;
    if (r->item.state == PSKGW_ADMIT_WAITING)
        return 0;
    rc = dispatch(r);
    if (rc < 0) {
        pskgw_lookup_admit_release(l->admit, &r->item, uv_now(l->loop));
        free(r);
        pump(l);
        sync_counters(l);
    }
    return rc;
}

static void res_cancel(void *ctx, void *handle)
{
    pskgw_lsess_t *s = ctx;
    pskgw_listener_t *l = s->l;
    pskgw_admit_req_t *r = handle;
    pskgw_psk_done_cb cb = r->cb;
    void *arg = r->arg;

    if (r->item.state != PSKGW_ADMIT_WAITING) {
        l->resolver.cancel(l->resolver.ctx, r->inner); /* on_answer follows, now or later */
        return;
    }
    pskgw_lookup_admit_release(l->admit, &r->item, uv_now(l->loop));
    free(r);
    sync_counters(l);
    cb(arg, PSKGW_ECANCELED, NULL, 0, NULL);
}

static int res_lookup(void *ctx, const char *identity, uint8_t *psk, size_t *psk_len, char *uid,
                      size_t uid_cap)
{
    pskgw_lsess_t *s = ctx;
    const pskgw_psk_resolver_t *in = &s->l->resolver;
    int rc = in->lookup(in->ctx, identity, psk, psk_len, uid, uid_cap);

    s->hs->stale_known = rc == PSKGW_EAGAIN; /* this resolver is s->hs->res */
    return rc;
}

pskgw_psk_resolver_t pskgw_listen_admit_resolver(pskgw_lsess_t *s)
{
    pskgw_psk_resolver_t r = { res_resolve, res_cancel, NULL, s };

    if (s->l->resolver.lookup != NULL)
        r.lookup = res_lookup;
    return r;
}

int pskgw_listen_admit_new(pskgw_listener_t *l, const uint8_t *seed)
{
    const pskgw_listener_opts_t *o = &l->opt;
    pskgw_lookup_admit_opts_t a = { 0 };

    a.in_flight = o->lookups_in_flight;
    a.per_source = o->lookups_per_source;
    a.queue_per_source = o->lookup_queue_per_source == UINT32_MAX ? 0 : o->lookup_queue_per_source;
    a.per_source_per_s =
        o->lookups_per_source_per_s == UINT32_MAX ? 0 : o->lookups_per_source_per_s;
    a.burst = o->lookup_burst;
    a.reserve = o->good_source_reserve == UINT32_MAX ? 0 : o->good_source_reserve;
    a.good_window_ms =
        o->good_source_window_s == UINT32_MAX ? 0 : (uint64_t)o->good_source_window_s * 1000;
    return pskgw_lookup_admit_new(&a, seed, &l->admit);
}

int pskgw_listen_on_park(pskgw_lsess_t *s, const char *identity, uint64_t now)
{
    static const uint8_t no_source[1] = { 0 };
    pskgw_listener_t *l = s->l;
    pskgw_lsess_hs_t *hs = s->hs;
    size_t n = identity != NULL ? strlen(identity) : 0;
    pskgw_admit_req_t *r;
    int rc;

    if (hs == NULL)
        return 0; /* a thawed session's dtls session has the listener's resolver: no admission */
    r = calloc(1, sizeof(*r) + n + 1);
    if (r == NULL)
        return PSKGW_ENOMEM;
    r->l = l;
    memcpy(r->id, identity != NULL ? identity : "", n + 1);
    if (hs->stale_known) {
        /* A known device: its key is only stale. Its lookup is no cold one (one refresh per
         * identity at most, merged by the cache) and never waits behind them. */
        hs->stale_known = false;
        l->counters.lookups_stale_known++;
        hs->areq = r; /* IDLE item: dispatched at once, released as a no-op */
        return 0;
    }
    rc = hs->src_len > 0 ? pskgw_lookup_admit_take(l->admit, &r->item, hs->src, hs->src_len, now)
                         : pskgw_lookup_admit_take(l->admit, &r->item, no_source, 1, now);
    sync_counters(l);
    if (rc < 0) {
        free(r);
        PSKGW_LOG_RL(
            PSKGW_LOG_NOTICE, rc == PSKGW_ERATELIMIT ? "listen-lookup-rate" : "listen-lookup-queue",
            "listener \"%s\": key lookup for \"%s\" refused: its source has %s (session %llu)",
            l->name, s->peer,
            rc == PSKGW_ERATELIMIT ? "started too many lookups this second"
                                   : "too many lookups waiting",
            (unsigned long long)s->id);
        return PSKGW_EBUSY;
    }
    hs->areq = r;
    return 0;
}

void pskgw_listen_on_unpark(pskgw_lsess_t *s, uint64_t now)
{
    pskgw_admit_req_t *r = s->hs != NULL ? s->hs->areq : NULL;

    if (r == NULL)
        return;
    s->hs->areq = NULL;
    pskgw_lookup_admit_release(s->l->admit, &r->item, now);
    free(r);
    pump(s->l);
    sync_counters(s->l);
}

void pskgw_listen_on_established(pskgw_lsess_t *s, uint64_t now)
{
    if (s->hs != NULL && s->hs->src_len > 0)
        pskgw_lookup_admit_good(s->l->admit, s->hs->src, s->hs->src_len, now);
}
