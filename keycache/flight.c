#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"
#include "common/wipe.h"
#include "keycache/internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- results and the ready queue ---- */

result_t *pskgw_kc_result_new(int status, const uint8_t *value, size_t len, bool stale,
                              uint8_t source)
{
    result_t *r = pskgw_secmem_alloc(sizeof(*r) + len);

    if (!r)
        return NULL;
    r->refs = 0;
    r->status = status;
    r->stale = stale;
    r->source = source;
    r->value_len = len;
    if (len)
        memcpy(r->value, value, len);
    return r;
}

/* Delivered when a result cannot be allocated: needs no memory, never freed. */
static result_t oom_result = { 1, PSKGW_ENOMEM, false, PSKGW_KEYCACHE_SRC_NONE, 0 };

void pskgw_kc_result_release(result_t *r)
{
    if (!r || r == &oom_result)
        return;
    if (--r->refs == 0)
        pskgw_secmem_free(r);
}

static void deliver(pskgw_keycache_req_t *q, const result_t *r)
{
    pskgw_keycache_result_t res;

    res.status = r->status;
    res.value = r->status == PSKGW_OK ? r->value : NULL;
    res.value_len = r->status == PSKGW_OK ? r->value_len : 0;
    res.stale = r->stale;
    res.source = r->source;
    q->cb(q->arg, &res);
}

void pskgw_kc_deliver_canceled(pskgw_keycache_req_t *q)
{
    pskgw_keycache_result_t res;

    memset(&res, 0, sizeof(res));
    res.status = PSKGW_ECANCELED;
    res.source = PSKGW_KEYCACHE_SRC_NONE;
    q->kc->stats.canceled++;
    q->delivering = true; /* a cancel from inside this callback is a no-op, as for a result */
    q->cb(q->arg, &res);
}

static void idle_cb(uv_idle_t *h)
{
    pskgw_keycache_t *kc = h->data;
    size_t budget = kc->nready; /* newcomers wait for the next iteration */

    while (budget-- > 0 && !pskgw_list_empty(&kc->ready)) {
        pskgw_keycache_req_t *q = pskgw_kc_req_first(&kc->ready);
        result_t *r = q->res;

        pskgw_list_remove(&q->link);
        kc->nready--;
        q->delivering = true;
        deliver(q, r);
        pskgw_kc_result_release(r);
        free(q);
    }
    if (pskgw_list_empty(&kc->ready) && !kc->idle_closing)
        uv_idle_stop(&kc->idle);
}

void pskgw_kc_ready_push(pskgw_keycache_t *kc, pskgw_keycache_req_t *q, result_t *r)
{
    q->flight = NULL;
    q->res = r;
    if (r != &oom_result)
        r->refs++;
    pskgw_list_insert_tail(&kc->ready, &q->link);
    kc->nready++;
    if (!kc->idle_closing && !uv_is_active((uv_handle_t *)&kc->idle))
        uv_idle_start(&kc->idle, idle_cb);
}

/* ---- flights ---- */

flight_t **pskgw_kc_flight_link(pskgw_keycache_t *kc, const uint8_t *key, size_t len, uint64_t h)
{
    flight_t **link = &kc->fbuckets[h & kc->fmask];

    while (*link) {
        flight_t *f = *link;
        if (f->hash == h && f->key_len == len && memcmp(f->key, key, len) == 0)
            break;
        link = &f->hnext;
    }
    return link;
}

static void flight_remove(pskgw_keycache_t *kc, flight_t *f)
{
    flight_t **link = pskgw_kc_flight_link(kc, f->key, f->key_len, f->hash);

    if (*link == f) {
        *link = f->hnext;
        f->hnext = NULL;
        kc->nflights--;
    }
}

void pskgw_kc_flight_free(flight_t *f)
{
    pskgw_keycache_t *kc = f->kc;

    pskgw_secmem_free(f->stale);
    kc->flights_alloc--;
    free(f);
    pskgw_kc_maybe_finish_close(kc);
}

void pskgw_kc_set_stale(flight_t *f, const uint8_t *value, size_t len, uint64_t stale_until,
                        uint8_t src)
{
    uint8_t *copy = pskgw_secmem_alloc(len);

    if (!copy)
        return; /* no stale fallback: the backend's answer stands */
    memcpy(copy, value, len);
    pskgw_secmem_free(f->stale);
    f->stale = copy;
    f->stale_len = len;
    f->stale_until = stale_until;
    f->stale_src = src;
}

flight_t *pskgw_kc_flight_new(pskgw_keycache_t *kc, flight_t **link, const uint8_t *key, size_t len,
                              uint64_t h, const pskgw_kc_entry_t *e)
{
    flight_t *f = calloc(1, sizeof(*f) + len);

    if (!f)
        return NULL;
    f->kc = kc;
    pskgw_list_init(&f->waiters);
    f->hash = h;
    f->key_len = len;
    memcpy(f->key, key, len);
    if (e && e->kind == PSKGW_KEYCACHE_KIND_VALUE)
        pskgw_kc_set_stale(f, pskgw_kc_entry_value(e), e->value_len, e->stale_until,
                           PSKGW_KEYCACHE_SRC_L1);
    *link = f;
    kc->nflights++;
    kc->flights_alloc++;
    return f;
}

void pskgw_kc_breaker_note(pskgw_keycache_t *kc, int status)
{
    if (status == PSKGW_OK || status == PSKGW_EDENIED || status == PSKGW_ENOTFOUND) {
        if (kc->breaker_open)
            PSKGW_NOTICE("keycache: \"%s\" backend of domain \"%s\" answers again: breaker "
                         "closed",
                         kc->name, kc->domain);
        kc->breaker_open = false;
        kc->fails_in_a_row = 0;
        return;
    }
    if (status == PSKGW_ECANCELED || !pskgw_keycache_status_transient(status))
        return;
    kc->fails_in_a_row++;
    kc->probe_at = pskgw_kc_now(kc) + kc->breaker_probe_ms;
    if (kc->breaker_failures && !kc->breaker_open && kc->fails_in_a_row >= kc->breaker_failures) {
        kc->breaker_open = true;
        kc->stats.breaker_trips++;
        PSKGW_WARN("keycache: \"%s\" backend of domain \"%s\" failed %u times in a row (%s): "
                   "breaker open, stale values served at once, backend probed in the background",
                   kc->name, kc->domain, kc->fails_in_a_row, pskgw_strerror(status));
    }
}

/* End the flight: its waiters move to the ready queue with one shared result. */
static void flight_complete(flight_t *f, int status, const uint8_t *value, size_t len, bool stale,
                            uint8_t source)
{
    pskgw_keycache_t *kc = f->kc;
    result_t *r = pskgw_kc_result_new(status, value, len, stale, source);

    flight_remove(kc, f);
    if (!r)
        r = &oom_result;
    while (!pskgw_list_empty(&f->waiters)) {
        pskgw_keycache_req_t *q = pskgw_kc_req_first(&f->waiters);

        pskgw_list_remove(&q->link);
        f->nwait--;
        if (r->status == PSKGW_OK && stale)
            kc->stats.stale_serves++;
        pskgw_kc_ready_push(kc, q, r);
    }
    if (r != &oom_result && r->refs == 0)
        pskgw_secmem_free(r);
    pskgw_kc_flight_free(f);
}

int pskgw_kc_redis_key(const pskgw_keycache_t *kc, const uint8_t *key, size_t len, char *out,
                       size_t cap, size_t *out_len)
{
    int n = snprintf(out, cap, "pskgw:%s:%s:", kc->domain, kc->name);

    if (n < 0 || (size_t)n + 2 * len + 1 > cap)
        return PSKGW_ETOOBIG;
    if (pskgw_hex_encode(key, len, out + n, cap - (size_t)n, false) != 0)
        return PSKGW_ETOOBIG;
    *out_len = (size_t)n + 2 * len;
    return 0;
}

/* Write an entry to Redis (fire and forget). */
void pskgw_kc_redis_store(pskgw_keycache_t *kc, const uint8_t *key, size_t key_len, uint8_t kind,
                          const uint8_t *value, size_t value_len, uint64_t life_ms,
                          uint64_t fresh_ms)
{
    char rkey[PSKGW_KC_RKEY_CAP];
    uint8_t sealed[PSKGW_KEYCACHE_CODEC_OVERHEAD + PSKGW_KEYCACHE_VALUE_MAX];
    uint8_t iv[PSKGW_KEYCACHE_IV_LEN];
    pskgw_keycache_record_t rec;
    uint64_t wall;
    size_t rlen = 0;
    size_t slen = 0;

    if (!pskgw_kc_redis_ready(kc->redis) || !kc->rng_ok)
        return;
    if (pskgw_kc_redis_key(kc, key, key_len, rkey, sizeof(rkey), &rlen) < 0)
        return;
    if (wc_RNG_GenerateBlock(&kc->rng, iv, sizeof(iv)) != 0)
        return;
    wall = kc->wall_ms(kc->clock_arg);
    rec.kind = kind;
    rec.fresh_until_ms = wall + fresh_ms;
    rec.stale_until_ms = wall + life_ms;
    rec.value = value;
    rec.value_len = value_len;
    if (pskgw_keycache_codec_encode(kc->kek, kc->kek_id, iv, kc->domain, kc->name, key, key_len,
                                    &rec, sealed, sizeof(sealed), &slen) < 0)
        return;
    (void)pskgw_kc_redis_set(kc->redis, rkey, rlen, sealed, slen, life_ms);
}

/* Values and refusals live in LRUs of their own (a flood of refusals never evicts a value); a
 * key is in one of them at most. */
static void l1_put(pskgw_keycache_t *kc, const uint8_t *key, size_t len, uint8_t kind,
                   const uint8_t *value, size_t value_len, uint64_t fresh_until,
                   uint64_t stale_until)
{
    bool is_value = kind == PSKGW_KEYCACHE_KIND_VALUE;

    (void)pskgw_kc_lru_remove(is_value ? kc->neg : kc->lru, key, len);
    (void)pskgw_kc_lru_put(is_value ? kc->lru : kc->neg, key, len, kind, value, value_len,
                           fresh_until, stale_until,
                           is_value ? &kc->stats.evictions : &kc->stats.negative_evictions);
}

void pskgw_kc_l1_store(pskgw_keycache_t *kc, const uint8_t *key, size_t len, uint8_t kind,
                       const uint8_t *value, size_t value_len, uint64_t fresh_ms, uint64_t life_ms)
{
    uint64_t now = pskgw_kc_now(kc);

    l1_put(kc, key, len, kind, value, value_len, now + fresh_ms, now + life_ms);
}

int pskgw_kc_kind_status(uint8_t kind)
{
    return kind == PSKGW_KEYCACHE_KIND_DENIED ? PSKGW_EDENIED : PSKGW_ENOTFOUND;
}

static void flight_backend_result(flight_t *f, int status, const uint8_t *value, size_t len)
{
    pskgw_keycache_t *kc = f->kc;

    pskgw_kc_breaker_note(kc, status);
    if (status == PSKGW_OK && (len == 0 || len > kc->max_value_len || !value)) {
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "keycache-backend-value",
                     "keycache: \"%s\" backend gave a value of %zu bytes (max %zu) for domain "
                     "\"%s\"",
                     kc->name, len, kc->max_value_len, kc->domain);
        status = PSKGW_EPROTO;
    }
    if (status == PSKGW_OK) {
        pskgw_kc_l1_store(kc, f->key, f->key_len, PSKGW_KEYCACHE_KIND_VALUE, value, len, kc->ttl_ms,
                          kc->ttl_ms + kc->stale_ms);
        pskgw_kc_redis_store(kc, f->key, f->key_len, PSKGW_KEYCACHE_KIND_VALUE, value, len,
                             kc->ttl_ms + kc->stale_ms, kc->ttl_ms);
        flight_complete(f, PSKGW_OK, value, len, false, PSKGW_KEYCACHE_SRC_BACKEND);
        return;
    }
    if (status == PSKGW_EDENIED || status == PSKGW_ENOTFOUND) {
        uint8_t kind =
            status == PSKGW_EDENIED ? PSKGW_KEYCACHE_KIND_DENIED : PSKGW_KEYCACHE_KIND_NOTFOUND;
        if (kc->neg_ttl_ms > 0) {
            pskgw_kc_l1_store(kc, f->key, f->key_len, kind, NULL, 0, kc->neg_ttl_ms,
                              kc->neg_ttl_ms);
            pskgw_kc_redis_store(kc, f->key, f->key_len, kind, NULL, 0, kc->neg_ttl_ms,
                                 kc->neg_ttl_ms);
        } else {
            char rkey[PSKGW_KC_RKEY_CAP];
            size_t rlen = 0;

            /* Refusals are not cached, but an older value must not outlive the refusal. */
            (void)pskgw_kc_lru_remove(kc->lru, f->key, f->key_len);
            (void)pskgw_kc_lru_remove(kc->neg, f->key, f->key_len);
            if (kc->redis &&
                pskgw_kc_redis_key(kc, f->key, f->key_len, rkey, sizeof(rkey), &rlen) == 0)
                (void)pskgw_kc_redis_del(kc->redis, rkey, rlen);
        }
        flight_complete(f, status, NULL, 0, false, PSKGW_KEYCACHE_SRC_BACKEND);
        return;
    }
    if (status != PSKGW_ECANCELED)
        kc->stats.backend_errors++;
    if (pskgw_keycache_status_transient(status) && f->stale) {
        uint64_t now = pskgw_kc_now(kc);

        if (f->stale_until > now) {
            pskgw_kc_entry_t *e = pskgw_kc_lru_get(kc->lru, f->key, f->key_len, now);

            if (!e || e->kind != PSKGW_KEYCACHE_KIND_VALUE) {
                /* Keep the stale value in layer 1 (it came from Redis, or was evicted). */
                (void)pskgw_kc_lru_put(kc->lru, f->key, f->key_len, PSKGW_KEYCACHE_KIND_VALUE,
                                       f->stale, f->stale_len, now, f->stale_until,
                                       &kc->stats.evictions);
                e = pskgw_kc_lru_get(kc->lru, f->key, f->key_len, now);
            }
            if (e)
                e->retry_after = now + kc->stale_retry_ms;
            PSKGW_LOG_RL(PSKGW_LOG_NOTICE, "keycache-stale",
                         "keycache: \"%s\" serving a stale value for domain \"%s\": backend "
                         "failed (%s)",
                         kc->name, kc->domain, pskgw_strerror(status));
            flight_complete(f, PSKGW_OK, f->stale, f->stale_len, true, f->stale_src);
            return;
        }
    }
    flight_complete(f, status, NULL, 0, false, PSKGW_KEYCACHE_SRC_NONE);
}

static void flight_backend_done(void *arg, int status, const uint8_t *value, size_t len)
{
    flight_t *f = arg;

    f->backend_pending = false;
    f->bhandle = NULL;
    if (f->abandoned) {
        pskgw_kc_flight_free(f);
        return;
    }
    flight_backend_result(f, status, value, len);
}

static void flight_backend(flight_t *f)
{
    pskgw_keycache_t *kc = f->kc;
    int rc;

    kc->stats.backend_calls++;
    f->backend_pending = true;
    rc =
        kc->backend.fetch(kc->backend.ctx, f->key, f->key_len, flight_backend_done, f, &f->bhandle);
    if (rc < 0) {
        f->backend_pending = false;
        f->bhandle = NULL;
        flight_backend_result(f, rc, NULL, 0);
    }
}

/* An expiry time, no later than wall + max (already past times are kept as they are). */
static uint64_t cap_until(uint64_t until, uint64_t wall, uint64_t max)
{
    if (until <= wall)
        return until;
    return until - wall > max ? wall + max : until;
}

static void flight_redis_done(void *arg, int status, const uint8_t *data, size_t len)
{
    flight_t *f = arg;
    pskgw_keycache_t *kc = f->kc;
    pskgw_keycache_keyring_t kr;
    pskgw_keycache_record_t rec;
    uint8_t value[PSKGW_KEYCACHE_VALUE_MAX];
    uint64_t wall;
    uint64_t now;
    int rc;

    f->redis_pending = false;
    f->rop = NULL;
    if (f->abandoned) {
        pskgw_kc_flight_free(f);
        return;
    }
    if (status != 0) {
        flight_backend(f); /* miss (nil) or Redis failure (counted by the connection) */
        return;
    }
    kr.kek = kc->kek;
    kr.kek_id = kc->kek_id;
    kr.prev_kek = kc->has_kek_prev ? kc->kek_prev : NULL;
    kr.prev_kek_id = kc->kek_prev_id;
    rc = pskgw_keycache_codec_decode(&kr, kc->domain, kc->name, f->key, f->key_len, data, len,
                                     value, sizeof(value), &rec);
    if (rc == 0 && rec.kind == PSKGW_KEYCACHE_KIND_VALUE &&
        (rec.value_len == 0 || rec.value_len > kc->max_value_len))
        rc = PSKGW_EPARSE;
    if (rc < 0) {
        kc->stats.decode_failures++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "keycache-decode",
                     "keycache: \"%s\" redis value for domain \"%s\" does not decode (%s): "
                     "treated as a miss",
                     kc->name, kc->domain, pskgw_strerror(rc));
        pskgw_wipe(value, sizeof(value));
        flight_backend(f);
        return;
    }
    wall = kc->wall_ms(kc->clock_arg);
    now = pskgw_kc_now(kc);
    if (rec.stale_until_ms <= wall) {
        pskgw_wipe(value, sizeof(value));
        flight_backend(f);
        return;
    }
    /* Trust another gateway's clock only within our own lifetimes (a skewed clock must not make
     * an entry live longer than this cache would keep it). */
    if (rec.kind == PSKGW_KEYCACHE_KIND_VALUE) {
        rec.fresh_until_ms = cap_until(rec.fresh_until_ms, wall, kc->ttl_ms);
        rec.stale_until_ms = cap_until(rec.stale_until_ms, wall, kc->ttl_ms + kc->stale_ms);
    } else {
        rec.fresh_until_ms = cap_until(rec.fresh_until_ms, wall, kc->neg_ttl_ms);
        rec.stale_until_ms = rec.fresh_until_ms;
    }
    if (rec.stale_until_ms < rec.fresh_until_ms)
        rec.stale_until_ms = rec.fresh_until_ms;
    if (rec.kind == PSKGW_KEYCACHE_KIND_VALUE) {
        if (wall < rec.fresh_until_ms) {
            kc->stats.hits_redis += f->nwait;
            l1_put(kc, f->key, f->key_len, rec.kind, rec.value, rec.value_len,
                   now + (rec.fresh_until_ms - wall), now + (rec.stale_until_ms - wall));
            flight_complete(f, PSKGW_OK, rec.value, rec.value_len, false, PSKGW_KEYCACHE_SRC_REDIS);
        } else {
            uint64_t stale_until = now + (rec.stale_until_ms - wall);

            if (!f->stale || f->stale_until < stale_until)
                pskgw_kc_set_stale(f, rec.value, rec.value_len, stale_until,
                                   PSKGW_KEYCACHE_SRC_REDIS);
            flight_backend(f);
        }
    } else if (wall < rec.fresh_until_ms) {
        kc->stats.negative_hits += f->nwait;
        l1_put(kc, f->key, f->key_len, rec.kind, NULL, 0, now + (rec.fresh_until_ms - wall),
               now + (rec.fresh_until_ms - wall));
        flight_complete(f, pskgw_kc_kind_status(rec.kind), NULL, 0, false,
                        PSKGW_KEYCACHE_SRC_REDIS);
    } else {
        flight_backend(f);
    }
    pskgw_wipe(value, sizeof(value));
}

void pskgw_kc_flight_start(flight_t *f)
{
    pskgw_keycache_t *kc = f->kc;
    char rkey[PSKGW_KC_RKEY_CAP];
    size_t rlen = 0;

    if (kc->redis) {
        if (pskgw_kc_redis_ready(kc->redis) &&
            pskgw_kc_redis_key(kc, f->key, f->key_len, rkey, sizeof(rkey), &rlen) == 0 &&
            pskgw_kc_redis_get(kc->redis, rkey, rlen, flight_redis_done, f, &f->rop) == 0) {
            f->redis_pending = true;
            return;
        }
        kc->stats.redis_skipped++;
    }
    flight_backend(f);
}
