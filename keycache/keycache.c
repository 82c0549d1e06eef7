#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"
#include "common/wipe.h"
#include "keycache/internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t default_mono(void *arg)
{
    (void)arg;
    return pskgw_clock_mono_ms();
}

static uint64_t default_wall(void *arg)
{
    (void)arg;
    return pskgw_clock_wall_ms();
}

void pskgw_keycache_opts_init(pskgw_keycache_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->entries = 10000;
    o->negative_entries = 10000;
    o->breaker_failures = 3;
    o->breaker_probe_ms = 1000;
    o->ttl_s = 3600;
    o->negative_ttl_s = 300;
    o->stale_s = 86400;
    o->stale_retry_ms = 1000;
    o->max_waiters = 4096;
    o->max_flights = 65536;
    o->max_key_len = 128;
    o->max_value_len = 512;
    o->redis_port = 6379;
    o->redis_timeout_ms = 500;
    o->redis_backoff_min_ms = 100;
    o->redis_backoff_max_ms = 10000;
}

bool pskgw_keycache_status_transient(int status)
{
    switch (status) {
    case PSKGW_EUNAVAIL:
    case PSKGW_ETIMEOUT:
    case PSKGW_EBUSY:
    case PSKGW_ERATELIMIT:
    case PSKGW_EIO:
    case PSKGW_ETLS:
    case PSKGW_EPROTO:
    case PSKGW_EAUTH:
    case PSKGW_EAGAIN:
    case PSKGW_ENOMEM:
    case PSKGW_EPARSE:  /* a 200 answer that is not the documented JSON: the service is broken */
    case PSKGW_ETOOBIG: /* likewise, an answer over the size bound */
        return true;
    default:
        return false;
    }
}

static bool name_ok(const char *s, size_t max, bool domain)
{
    size_t n;

    if (!s)
        return false;
    n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (domain)
            ok = ok || (c >= 'A' && c <= 'Z') || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* ---- public ---- */

/* The options a new cache keeps: names, backend, times, limits, clocks, KEKs. */
static void take_opts(pskgw_keycache_t *kc, const pskgw_keycache_opts_t *o)
{
    kc->loop = o->loop;
    memcpy(kc->name, o->name, strlen(o->name) + 1);
    memcpy(kc->domain, o->domain, strlen(o->domain) + 1);
    kc->backend = o->backend;
    kc->ttl_ms = (uint64_t)o->ttl_s * 1000;
    kc->neg_ttl_ms = (uint64_t)o->negative_ttl_s * 1000;
    kc->stale_ms = (uint64_t)o->stale_s * 1000;
    kc->stale_retry_ms = o->stale_retry_ms;
    kc->max_waiters = o->max_waiters;
    kc->max_flights = o->max_flights;
    kc->max_key_len = o->max_key_len;
    kc->max_value_len = o->max_value_len;
    kc->now_ms = o->now_ms ? o->now_ms : default_mono;
    kc->wall_ms = o->wall_ms ? o->wall_ms : default_wall;
    kc->clock_arg = o->clock_arg;
    kc->data = o->data;
    kc->breaker_failures = o->breaker_failures;
    kc->breaker_probe_ms = o->breaker_probe_ms;
    kc->key_check = o->key_check;
    kc->key_check_arg = o->key_check_arg;
    if (o->kek) {
        memcpy(kc->kek, o->kek, PSKGW_KEYCACHE_KEK_LEN);
        kc->kek_id = o->kek_id;
    }
    if (o->kek_prev) {
        memcpy(kc->kek_prev, o->kek_prev, PSKGW_KEYCACHE_KEK_LEN);
        kc->kek_prev_id = o->kek_prev_id;
        kc->has_kek_prev = true;
    }
}

int pskgw_keycache_new(const pskgw_keycache_opts_t *o, pskgw_keycache_t **out)
{
    pskgw_keycache_t *kc;
    uint8_t seed[16];
    size_t nb = 16;
    int rc;

    if (!o || !out || !o->loop || !name_ok(o->name, PSKGW_KEYCACHE_NAME_MAX, false) ||
        !name_ok(o->domain, PSKGW_KEYCACHE_DOMAIN_MAX, true) || !o->backend.fetch ||
        !o->backend.cancel || o->entries == 0 || o->negative_entries == 0 || o->ttl_s == 0 ||
        o->max_waiters == 0 || o->max_flights == 0 || o->max_key_len == 0 ||
        o->max_key_len > PSKGW_KEYCACHE_KEY_MAX || o->max_value_len == 0 ||
        o->max_value_len > PSKGW_KEYCACHE_VALUE_MAX ||
        (o->decode && (o->decoded_size == 0 || o->decoded_size > PSKGW_KEYCACHE_DECODED_MAX)))
        return PSKGW_EINVAL;
    if ((o->redis_host || o->redis_sentinels) &&
        (!o->kek || (o->redis_host && o->redis_port == 0) || o->redis_timeout_ms == 0 ||
         o->redis_backoff_min_ms == 0 || o->redis_backoff_max_ms < o->redis_backoff_min_ms ||
         (o->kek_prev && o->kek_prev_id == o->kek_id)))
        return PSKGW_EINVAL;

    kc = pskgw_secmem_alloc(sizeof(*kc)); /* holds the KEKs */
    if (!kc)
        return PSKGW_ENOMEM;
    pskgw_list_init(&kc->ready);
    take_opts(kc, o);

    rc = PSKGW_ECRYPTO;
    if (wc_InitRng(&kc->rng) != 0)
        goto fail;
    kc->rng_ok = true;
    if (wc_RNG_GenerateBlock(&kc->rng, seed, sizeof(seed)) != 0)
        goto fail;
    rc = pskgw_kc_lru_new(o->entries, seed, &kc->lru);
    if (rc == 0)
        rc = pskgw_kc_lru_new(o->negative_entries, seed, &kc->neg);
    pskgw_wipe(seed, sizeof(seed));
    if (rc < 0)
        goto fail;
    if (o->decode)
        pskgw_kc_lru_set_decode(kc->lru, o->decode, o->decode_arg, o->decoded_size);
    rc = PSKGW_ENOMEM;
    while (nb < o->max_flights && nb < 65536)
        nb <<= 1;
    kc->fbuckets = calloc(nb, sizeof(*kc->fbuckets));
    if (!kc->fbuckets)
        goto fail;
    kc->fmask = nb - 1;

    if (o->redis_host || o->redis_sentinels) {
        pskgw_kc_redis_opts_t ro;

        memset(&ro, 0, sizeof(ro));
        ro.host = o->redis_host;
        ro.port = o->redis_port;
        ro.sentinels = o->redis_sentinels;
        ro.master_name = o->redis_master_name;
        ro.password = o->redis_password;
        ro.db = o->redis_db;
        ro.timeout_ms = o->redis_timeout_ms;
        ro.backoff_min_ms = o->redis_backoff_min_ms;
        ro.backoff_max_ms = o->redis_backoff_max_ms;
        rc = pskgw_kc_redis_new(o->loop, &ro, &kc->redis);
        if (rc < 0)
            goto fail;
        /* last: kc->redis cannot be released synchronously any more. Without the subscriber
         * the cache works, unsubscribed (broadcast_subscribed 0, readiness says so). */
        if (o->broadcast && (rc = pskgw_kc_bc_start(kc, o)) < 0)
            PSKGW_ERR("keycache: \"%s\" of domain \"%s\": invalidation subscriber not "
                      "started: %s",
                      kc->name, kc->domain, pskgw_strerror(rc));
    }
    uv_idle_init(o->loop, &kc->idle);
    kc->idle.data = kc;
    *out = kc;
    return 0;

fail:
    free(kc->fbuckets);
    pskgw_kc_lru_free(kc->lru);
    pskgw_kc_lru_free(kc->neg);
    if (kc->rng_ok)
        wc_FreeRng(&kc->rng);
    pskgw_secmem_free(kc);
    return rc;
}

int pskgw_keycache_lookup(pskgw_keycache_t *kc, const uint8_t *key, size_t key_len,
                          pskgw_keycache_result_t *res)
{
    pskgw_kc_entry_t *e;
    uint64_t now;

    if (!kc || !res || !key || key_len == 0 || key_len > kc->max_key_len)
        return PSKGW_EINVAL;
    memset(res, 0, sizeof(*res));
    res->source = PSKGW_KEYCACHE_SRC_NONE;
    kc->stats.lookups++;
    now = pskgw_kc_now(kc);
    e = pskgw_kc_lru_get(kc->lru, key, key_len, now);
    if (!e)
        e = pskgw_kc_lru_get(kc->neg, key, key_len, now); /* refusals are fresh until dropped */
    if (!e)
        return PSKGW_EAGAIN;
    if (now < e->fresh_until) {
        res->source = PSKGW_KEYCACHE_SRC_L1;
        if (e->kind == PSKGW_KEYCACHE_KIND_VALUE) {
            kc->stats.hits_l1++;
            res->status = PSKGW_OK;
            res->value = pskgw_kc_entry_value(e);
            res->value_len = e->value_len;
            res->decoded = pskgw_kc_entry_decoded(e);
        } else {
            kc->stats.negative_hits++;
            res->status = pskgw_kc_kind_status(e->kind);
        }
        return 0;
    }
    res->stale = true; /* only values outlive their freshness */
    if (now < e->retry_after) {
        kc->stats.stale_serves++;
        res->status = PSKGW_OK;
        res->value = pskgw_kc_entry_value(e);
        res->value_len = e->value_len;
        res->decoded = pskgw_kc_entry_decoded(e);
        res->source = PSKGW_KEYCACHE_SRC_L1;
        return 0;
    }
    return PSKGW_EAGAIN;
}

/* key_check refused key: PSKGW_ENOTFOUND through the ready queue, nothing cached or asked. */
static int refuse_key(pskgw_keycache_t *kc, pskgw_keycache_req_t *q, pskgw_keycache_req_t **out)
{
    result_t *r = pskgw_kc_result_new(PSKGW_ENOTFOUND, NULL, 0, false, PSKGW_KEYCACHE_SRC_NONE);

    if (!r) {
        free(q);
        return PSKGW_ENOMEM;
    }
    kc->stats.refused_keys++;
    kc->stats.fetches++;
    pskgw_kc_ready_push(kc, q, r);
    if (out)
        *out = q;
    return 0;
}

/* The breaker is open and key has a stale value: serve it now; probe the backend in the
 * background (one flight without waiters) when no flight is under way and a probe is due. */
static int stale_at_once(pskgw_keycache_t *kc, pskgw_keycache_req_t *q, const pskgw_kc_entry_t *e,
                         const uint8_t *key, size_t key_len, uint64_t now,
                         pskgw_keycache_req_t **out)
{
    result_t *r = pskgw_kc_result_new(PSKGW_OK, pskgw_kc_entry_value(e), e->value_len, true,
                                      PSKGW_KEYCACHE_SRC_L1);
    uint64_t h = pskgw_kc_lru_hash(kc->lru, key, key_len);
    flight_t **link;

    if (!r) {
        free(q);
        return PSKGW_ENOMEM;
    }
    kc->stats.stale_serves++;
    kc->stats.stale_at_once++;
    kc->stats.fetches++;
    pskgw_kc_ready_push(kc, q, r);
    if (out)
        *out = q;
    link = pskgw_kc_flight_link(kc, key, key_len, h);
    if (!*link && now >= kc->probe_at && kc->nflights < kc->max_flights) {
        flight_t *f = pskgw_kc_flight_new(kc, link, key, key_len, h, e); /* e is still valid */

        kc->probe_at = now + kc->breaker_probe_ms;
        if (f)
            pskgw_kc_flight_start(f);
    }
    return 0;
}

int pskgw_keycache_fetch(pskgw_keycache_t *kc, const uint8_t *key, size_t key_len,
                         pskgw_keycache_cb cb, void *arg, pskgw_keycache_req_t **req_out)
{
    pskgw_keycache_req_t *q;
    pskgw_kc_entry_t *e;
    flight_t **link;
    flight_t *f;
    uint64_t now;
    uint64_t h;

    if (!kc || !cb || !key || key_len == 0 || key_len > kc->max_key_len)
        return PSKGW_EINVAL;
    if (kc->closing)
        return PSKGW_ECLOSED;
    q = calloc(1, sizeof(*q));
    if (!q)
        return PSKGW_ENOMEM;
    q->kc = kc;
    q->cb = cb;
    q->arg = arg;

    now = pskgw_kc_now(kc);
    e = pskgw_kc_lru_get(kc->lru, key, key_len, now);
    if (!e)
        e = pskgw_kc_lru_get(kc->neg, key, key_len, now);
    if (!e && kc->key_check && kc->key_check(kc->key_check_arg, key, key_len) < 0)
        return refuse_key(kc, q, req_out);
    if (e && kc->breaker_open && e->kind == PSKGW_KEYCACHE_KIND_VALUE && now >= e->fresh_until &&
        now >= e->retry_after)
        return stale_at_once(kc, q, e, key, key_len, now, req_out);
    if (e && (now < e->fresh_until || now < e->retry_after)) {
        bool fresh = now < e->fresh_until;
        bool value = e->kind == PSKGW_KEYCACHE_KIND_VALUE;
        result_t *r = pskgw_kc_result_new(value ? PSKGW_OK : pskgw_kc_kind_status(e->kind),
                                          pskgw_kc_entry_value(e), value ? e->value_len : 0, !fresh,
                                          PSKGW_KEYCACHE_SRC_L1);
        if (!r) {
            free(q);
            return PSKGW_ENOMEM;
        }
        if (!value)
            kc->stats.negative_hits++;
        else if (fresh)
            kc->stats.hits_l1++;
        else
            kc->stats.stale_serves++;
        kc->stats.fetches++;
        pskgw_kc_ready_push(kc, q, r);
        if (req_out)
            *req_out = q;
        return 0;
    }

    h = pskgw_kc_lru_hash(kc->lru, key, key_len);
    link = pskgw_kc_flight_link(kc, key, key_len, h);
    f = *link;
    if (f) {
        if (f->nwait >= kc->max_waiters) {
            kc->stats.busy++;
            free(q);
            return PSKGW_EBUSY;
        }
        kc->stats.coalesced++;
        kc->stats.fetches++;
        q->flight = f;
        pskgw_list_insert_tail(&f->waiters, &q->link);
        f->nwait++;
        if (req_out)
            *req_out = q;
        return 0;
    }
    if (kc->nflights >= kc->max_flights) {
        kc->stats.busy++;
        free(q);
        return PSKGW_EBUSY;
    }
    f = pskgw_kc_flight_new(kc, link, key, key_len, h, e);
    if (!f) {
        free(q);
        return PSKGW_ENOMEM;
    }
    kc->stats.misses++;
    kc->stats.fetches++;
    q->flight = f;
    pskgw_list_insert_tail(&f->waiters, &q->link);
    f->nwait++;
    if (req_out)
        *req_out = q;
    /* Any result, even an immediate failure, reaches the waiter through the ready queue. */
    pskgw_kc_flight_start(f);
    return 0;
}

void pskgw_keycache_cancel(pskgw_keycache_req_t *q)
{
    pskgw_keycache_t *kc = q->kc;

    if (q->delivering)
        return; /* called from its own callback: it is being answered already */
    if (q->flight) {
        pskgw_list_remove(&q->link);
        q->flight->nwait--;
        q->flight = NULL;
    } else {
        pskgw_list_remove(&q->link);
        kc->nready--;
        pskgw_kc_result_release(q->res);
        q->res = NULL;
    }
    pskgw_kc_deliver_canceled(q);
    free(q);
}

int pskgw_keycache_invalidate(pskgw_keycache_t *kc, const uint8_t *key, size_t key_len)
{
    char rkey[PSKGW_KC_RKEY_CAP];
    size_t rlen = 0;

    if (!kc || !key || key_len == 0 || key_len > kc->max_key_len)
        return PSKGW_EINVAL;
    (void)pskgw_kc_lru_remove(kc->lru, key, key_len);
    (void)pskgw_kc_lru_remove(kc->neg, key, key_len);
    if (kc->redis && pskgw_kc_redis_key(kc, key, key_len, rkey, sizeof(rkey), &rlen) == 0)
        (void)pskgw_kc_redis_del(kc->redis, rkey, rlen);
    return 0;
}

void pskgw_keycache_stats(const pskgw_keycache_t *kc, pskgw_keycache_stats_t *out)
{
    pskgw_kc_redis_stats_t rs = kc->redis_last;

    *out = kc->stats;
    if (kc->redis)
        pskgw_kc_redis_stats(kc->redis, &rs);
    out->redis_errors = rs.errors;
    out->redis_connects = rs.connects;
    out->redis_disconnects = rs.disconnects;
    out->redis_connected = kc->redis ? rs.connected : 0;
    out->entries = kc->lru ? pskgw_kc_lru_count(kc->lru) : 0;
    out->negative_entries = kc->neg ? pskgw_kc_lru_count(kc->neg) : 0;
    out->breaker_open = kc->breaker_open ? 1 : 0;
    out->flights = kc->nflights;
    out->broadcast_subscribed = kc->bc_subscribed ? 1 : 0;
}

void *pskgw_keycache_data(const pskgw_keycache_t *kc)
{
    return kc->data;
}

/* ---- close ---- */

static void idle_closed(uv_handle_t *h)
{
    pskgw_keycache_t *kc = h->data;

    if (kc->close_cb)
        kc->close_cb(kc);
    pskgw_kc_lru_free(kc->lru);
    pskgw_kc_lru_free(kc->neg);
    free(kc->fbuckets);
    if (kc->rng_ok)
        wc_FreeRng(&kc->rng);
    pskgw_secmem_free(kc);
}

void pskgw_kc_maybe_finish_close(pskgw_keycache_t *kc)
{
    if (!kc->closing || kc->idle_closing || kc->flights_alloc > 0 || kc->redis || kc->bc ||
        !pskgw_list_empty(&kc->ready))
        return;
    kc->idle_closing = true;
    uv_close((uv_handle_t *)&kc->idle, idle_closed);
}

static void redis_closed(void *arg)
{
    pskgw_keycache_t *kc = arg;

    kc->redis = NULL;
    pskgw_kc_maybe_finish_close(kc);
}

void pskgw_keycache_close(pskgw_keycache_t *kc, void (*cb)(pskgw_keycache_t *kc))
{
    flight_t *list = NULL;

    if (kc->closing)
        return;
    kc->closing = true;
    kc->close_cb = cb;

    /* Detach every flight from the table first: callbacks below cannot reach them. */
    for (size_t i = 0; i <= kc->fmask; i++) {
        while (kc->fbuckets[i]) {
            flight_t *f = kc->fbuckets[i];
            kc->fbuckets[i] = f->hnext;
            f->hnext = list;
            list = f;
            kc->nflights--;
        }
    }
    while (!pskgw_list_empty(&kc->ready))
        pskgw_keycache_cancel(pskgw_kc_req_first(&kc->ready));
    for (flight_t *f = list; f; f = f->hnext) {
        f->abandoned = true;
        while (!pskgw_list_empty(&f->waiters))
            pskgw_keycache_cancel(pskgw_kc_req_first(&f->waiters));
    }
    while (list) {
        flight_t *f = list;

        list = f->hnext;
        if (f->backend_pending)
            kc->backend.cancel(kc->backend.ctx, f->bhandle); /* may free f */
        else if (!f->redis_pending)
            pskgw_kc_flight_free(f);
        /* redis_pending: freed when the connection below fails the GET */
    }
    if (kc->redis && !kc->redis_closing) {
        kc->redis_closing = true;
        pskgw_kc_redis_stats(kc->redis, &kc->redis_last);
        pskgw_kc_redis_close(kc->redis, redis_closed, kc);
    }
    pskgw_kc_bc_close(kc);
    pskgw_kc_maybe_finish_close(kc);
}
