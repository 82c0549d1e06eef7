#include "keycache/keycache.h"

#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "keycache/lru.h"
#include "keycache/redis.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stdlib.h>
#include <string.h>

/* Result shared by every waiter of one flight (refcounted; value wiped on release). */
typedef struct {
    size_t refs;
    int status;
    bool stale;
    uint8_t source;
    size_t value_len;
    uint8_t value[];
} result_t;

typedef struct flight flight_t;

struct pskgw_keycache_req {
    pskgw_keycache_t *kc;
    flight_t *flight; /* waiting on this flight, or NULL when in the ready queue */
    pskgw_keycache_req_t *prev;
    pskgw_keycache_req_t *next;
    pskgw_keycache_cb cb;
    void *arg;
    result_t *res; /* ready queue only */
};

struct flight {
    flight_t *hnext;
    uint64_t hash;
    pskgw_keycache_t *kc;
    pskgw_keycache_req_t *whead;
    pskgw_keycache_req_t *wtail;
    size_t nwait;
    pskgw_kc_redis_op_t *rop;
    void *bhandle;
    bool redis_pending;
    bool backend_pending;
    bool abandoned; /* closing: free when nothing is pending */
    uint8_t *stale; /* stale value known at start (layer 1) or from Redis; wiped */
    size_t stale_len;
    uint64_t stale_until; /* monotonic */
    uint8_t stale_src;
    size_t key_len;
    uint8_t key[];
};

struct pskgw_keycache {
    uv_loop_t *loop;
    char name[PSKGW_KEYCACHE_NAME_MAX + 1];
    char domain[PSKGW_KEYCACHE_DOMAIN_MAX + 1];
    pskgw_keycache_backend_t backend;
    uint64_t ttl_ms;
    uint64_t neg_ttl_ms;
    uint64_t stale_ms;
    uint64_t stale_retry_ms;
    size_t max_waiters;
    size_t max_flights;
    size_t max_key_len;
    size_t max_value_len;
    uint64_t (*now_ms)(void *);
    uint64_t (*wall_ms)(void *);
    void *clock_arg;
    void *data;

    uint8_t kek[PSKGW_KEYCACHE_KEK_LEN];
    uint8_t kek_prev[PSKGW_KEYCACHE_KEK_LEN];
    bool has_kek_prev;
    uint8_t kek_id;
    uint8_t kek_prev_id;
    WC_RNG rng;
    bool rng_ok;

    pskgw_kc_lru_t *lru;
    pskgw_kc_redis_t *redis;
    bool redis_closing;

    flight_t **fbuckets;
    size_t fmask;
    size_t nflights;      /* in the table */
    size_t flights_alloc; /* allocated (table + abandoned) */

    pskgw_keycache_req_t *rhead; /* ready queue */
    pskgw_keycache_req_t *rtail;
    size_t nready;
    uv_idle_t idle; /* dispatches the ready queue once per loop iteration */

    bool closing;
    bool idle_closing;
    void (*close_cb)(pskgw_keycache_t *kc);

    pskgw_keycache_stats_t stats;
};

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
        return true;
    default:
        return false;
    }
}

static uint64_t now_mono(const pskgw_keycache_t *kc)
{
    return kc->now_ms(kc->clock_arg);
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

/* ---- results and the ready queue ---- */

static result_t *result_new(int status, const uint8_t *value, size_t len, bool stale,
                            uint8_t source)
{
    result_t *r = malloc(sizeof(*r) + len);

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

static void result_release(result_t *r)
{
    if (r && --r->refs == 0)
        pskgw_free_secret(r, sizeof(*r) + r->value_len);
}

static void req_unlink(pskgw_keycache_req_t **head, pskgw_keycache_req_t **tail,
                       pskgw_keycache_req_t *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        *head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        *tail = q->prev;
    q->prev = q->next = NULL;
}

static void req_append(pskgw_keycache_req_t **head, pskgw_keycache_req_t **tail,
                       pskgw_keycache_req_t *q)
{
    q->next = NULL;
    q->prev = *tail;
    if (*tail)
        (*tail)->next = q;
    else
        *head = q;
    *tail = q;
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

static void deliver_canceled(pskgw_keycache_req_t *q)
{
    pskgw_keycache_result_t res;

    memset(&res, 0, sizeof(res));
    res.status = PSKGW_ECANCELED;
    res.source = PSKGW_KEYCACHE_SRC_NONE;
    q->kc->stats.canceled++;
    q->cb(q->arg, &res);
}

static void idle_cb(uv_idle_t *h)
{
    pskgw_keycache_t *kc = h->data;
    size_t budget = kc->nready; /* newcomers wait for the next iteration */

    while (budget-- > 0 && kc->rhead) {
        pskgw_keycache_req_t *q = kc->rhead;
        result_t *r = q->res;

        req_unlink(&kc->rhead, &kc->rtail, q);
        kc->nready--;
        deliver(q, r);
        result_release(r);
        free(q);
    }
    if (!kc->rhead && !kc->idle_closing)
        uv_idle_stop(&kc->idle);
}

static void ready_push(pskgw_keycache_t *kc, pskgw_keycache_req_t *q, result_t *r)
{
    q->flight = NULL;
    q->res = r;
    r->refs++;
    req_append(&kc->rhead, &kc->rtail, q);
    kc->nready++;
    if (!kc->idle_closing && !uv_is_active((uv_handle_t *)&kc->idle))
        uv_idle_start(&kc->idle, idle_cb);
}

/* ---- flights ---- */

static flight_t **flight_link(pskgw_keycache_t *kc, const uint8_t *key, size_t len, uint64_t h)
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
    flight_t **link = flight_link(kc, f->key, f->key_len, f->hash);

    if (*link == f) {
        *link = f->hnext;
        f->hnext = NULL;
        kc->nflights--;
    }
}

static void maybe_finish_close(pskgw_keycache_t *kc);

static void flight_free(flight_t *f)
{
    pskgw_keycache_t *kc = f->kc;

    pskgw_free_secret(f->stale, f->stale_len);
    kc->flights_alloc--;
    free(f);
    maybe_finish_close(kc);
}

static void set_stale(flight_t *f, const uint8_t *value, size_t len, uint64_t stale_until,
                      uint8_t src)
{
    uint8_t *copy = malloc(len ? len : 1);

    if (!copy)
        return; /* no stale fallback: the backend's answer stands */
    memcpy(copy, value, len);
    pskgw_free_secret(f->stale, f->stale_len);
    f->stale = copy;
    f->stale_len = len;
    f->stale_until = stale_until;
    f->stale_src = src;
}

/* End the flight: its waiters move to the ready queue with one shared result. */
static void flight_complete(flight_t *f, int status, const uint8_t *value, size_t len, bool stale,
                            uint8_t source)
{
    pskgw_keycache_t *kc = f->kc;
    result_t *r = result_new(status, value, len, stale, source);

    flight_remove(kc, f);
    if (!r)
        r = result_new(PSKGW_ENOMEM, NULL, 0, false, PSKGW_KEYCACHE_SRC_NONE);
    while (f->whead) {
        pskgw_keycache_req_t *q = f->whead;

        req_unlink(&f->whead, &f->wtail, q);
        f->nwait--;
        if (!r) {
            /* Out of memory twice: a canceled result needs no allocation. */
            deliver_canceled(q);
            free(q);
            continue;
        }
        if (r->status == PSKGW_OK && stale)
            kc->stats.stale_serves++;
        ready_push(kc, q, r);
    }
    if (r && r->refs == 0)
        pskgw_free_secret(r, sizeof(*r) + r->value_len);
    flight_free(f);
}

static int redis_key(const pskgw_keycache_t *kc, const uint8_t *key, size_t len, char *out,
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

#define RKEY_CAP \
    (32 + PSKGW_KEYCACHE_DOMAIN_MAX + PSKGW_KEYCACHE_NAME_MAX + 2 * PSKGW_KEYCACHE_KEY_MAX)

/* Write an entry to Redis (fire and forget). */
static void redis_store(pskgw_keycache_t *kc, const uint8_t *key, size_t key_len, uint8_t kind,
                        const uint8_t *value, size_t value_len, uint64_t life_ms, uint64_t fresh_ms)
{
    char rkey[RKEY_CAP];
    uint8_t sealed[PSKGW_KEYCACHE_CODEC_OVERHEAD + PSKGW_KEYCACHE_VALUE_MAX];
    uint8_t iv[PSKGW_KEYCACHE_IV_LEN];
    pskgw_keycache_record_t rec;
    uint64_t wall;
    size_t rlen = 0;
    size_t slen = 0;

    if (!pskgw_kc_redis_ready(kc->redis) || !kc->rng_ok)
        return;
    if (redis_key(kc, key, key_len, rkey, sizeof(rkey), &rlen) < 0)
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

static void l1_store(pskgw_keycache_t *kc, const uint8_t *key, size_t len, uint8_t kind,
                     const uint8_t *value, size_t value_len, uint64_t fresh_ms, uint64_t life_ms)
{
    uint64_t now = now_mono(kc);

    (void)pskgw_kc_lru_put(kc->lru, key, len, kind, value, value_len, now + fresh_ms, now + life_ms,
                           &kc->stats.evictions);
}

static int kind_status(uint8_t kind)
{
    return kind == PSKGW_KEYCACHE_KIND_DENIED ? PSKGW_EDENIED : PSKGW_ENOTFOUND;
}

static void flight_backend_result(flight_t *f, int status, const uint8_t *value, size_t len)
{
    pskgw_keycache_t *kc = f->kc;

    if (status == PSKGW_OK && (len == 0 || len > kc->max_value_len || !value)) {
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "keycache-backend-value",
                     "keycache: \"%s\" backend gave a value of %zu bytes (max %zu) for domain "
                     "\"%s\"",
                     kc->name, len, kc->max_value_len, kc->domain);
        status = PSKGW_EPROTO;
    }
    if (status == PSKGW_OK) {
        l1_store(kc, f->key, f->key_len, PSKGW_KEYCACHE_KIND_VALUE, value, len, kc->ttl_ms,
                 kc->ttl_ms + kc->stale_ms);
        redis_store(kc, f->key, f->key_len, PSKGW_KEYCACHE_KIND_VALUE, value, len,
                    kc->ttl_ms + kc->stale_ms, kc->ttl_ms);
        flight_complete(f, PSKGW_OK, value, len, false, PSKGW_KEYCACHE_SRC_BACKEND);
        return;
    }
    if (status == PSKGW_EDENIED || status == PSKGW_ENOTFOUND) {
        uint8_t kind =
            status == PSKGW_EDENIED ? PSKGW_KEYCACHE_KIND_DENIED : PSKGW_KEYCACHE_KIND_NOTFOUND;
        if (kc->neg_ttl_ms > 0) {
            l1_store(kc, f->key, f->key_len, kind, NULL, 0, kc->neg_ttl_ms, kc->neg_ttl_ms);
            redis_store(kc, f->key, f->key_len, kind, NULL, 0, kc->neg_ttl_ms, kc->neg_ttl_ms);
        } else {
            (void)pskgw_kc_lru_remove(kc->lru, f->key, f->key_len);
        }
        flight_complete(f, status, NULL, 0, false, PSKGW_KEYCACHE_SRC_BACKEND);
        return;
    }
    if (status != PSKGW_ECANCELED)
        kc->stats.backend_errors++;
    if (pskgw_keycache_status_transient(status) && f->stale) {
        uint64_t now = now_mono(kc);

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
        flight_free(f);
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
        flight_free(f);
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
        flight_backend(f);
        return;
    }
    wall = kc->wall_ms(kc->clock_arg);
    now = now_mono(kc);
    if (rec.stale_until_ms <= wall) {
        pskgw_wipe(value, sizeof(value));
        flight_backend(f);
        return;
    }
    if (rec.kind == PSKGW_KEYCACHE_KIND_VALUE) {
        if (wall < rec.fresh_until_ms) {
            kc->stats.hits_redis += f->nwait;
            (void)pskgw_kc_lru_put(kc->lru, f->key, f->key_len, rec.kind, rec.value, rec.value_len,
                                   now + (rec.fresh_until_ms - wall),
                                   now + (rec.stale_until_ms - wall), &kc->stats.evictions);
            flight_complete(f, PSKGW_OK, rec.value, rec.value_len, false, PSKGW_KEYCACHE_SRC_REDIS);
        } else {
            uint64_t stale_until = now + (rec.stale_until_ms - wall);

            if (!f->stale || f->stale_until < stale_until)
                set_stale(f, rec.value, rec.value_len, stale_until, PSKGW_KEYCACHE_SRC_REDIS);
            flight_backend(f);
        }
    } else if (wall < rec.fresh_until_ms) {
        kc->stats.negative_hits += f->nwait;
        (void)pskgw_kc_lru_put(kc->lru, f->key, f->key_len, rec.kind, NULL, 0,
                               now + (rec.fresh_until_ms - wall), now + (rec.fresh_until_ms - wall),
                               &kc->stats.evictions);
        flight_complete(f, kind_status(rec.kind), NULL, 0, false, PSKGW_KEYCACHE_SRC_REDIS);
    } else {
        flight_backend(f);
    }
    pskgw_wipe(value, sizeof(value));
}

static void flight_start(flight_t *f)
{
    pskgw_keycache_t *kc = f->kc;
    char rkey[RKEY_CAP];
    size_t rlen = 0;

    if (kc->redis) {
        if (pskgw_kc_redis_ready(kc->redis) &&
            redis_key(kc, f->key, f->key_len, rkey, sizeof(rkey), &rlen) == 0 &&
            pskgw_kc_redis_get(kc->redis, rkey, rlen, flight_redis_done, f, &f->rop) == 0) {
            f->redis_pending = true;
            return;
        }
        kc->stats.redis_skipped++;
    }
    flight_backend(f);
}

/* ---- public ---- */

int pskgw_keycache_new(const pskgw_keycache_opts_t *o, pskgw_keycache_t **out)
{
    pskgw_keycache_t *kc;
    uint8_t seed[16];
    size_t nb = 16;
    int rc;

    if (!o || !out || !o->loop || !name_ok(o->name, PSKGW_KEYCACHE_NAME_MAX, false) ||
        !name_ok(o->domain, PSKGW_KEYCACHE_DOMAIN_MAX, true) || !o->backend.fetch ||
        !o->backend.cancel || o->entries == 0 || o->ttl_s == 0 || o->max_waiters == 0 ||
        o->max_flights == 0 || o->max_key_len == 0 || o->max_key_len > PSKGW_KEYCACHE_KEY_MAX ||
        o->max_value_len == 0 || o->max_value_len > PSKGW_KEYCACHE_VALUE_MAX)
        return PSKGW_EINVAL;
    if (o->redis_host &&
        (!o->kek || o->redis_port == 0 || o->redis_timeout_ms == 0 ||
         o->redis_backoff_min_ms == 0 || o->redis_backoff_max_ms < o->redis_backoff_min_ms ||
         (o->kek_prev && o->kek_prev_id == o->kek_id)))
        return PSKGW_EINVAL;

    kc = calloc(1, sizeof(*kc));
    if (!kc)
        return PSKGW_ENOMEM;
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
    if (o->kek) {
        memcpy(kc->kek, o->kek, PSKGW_KEYCACHE_KEK_LEN);
        kc->kek_id = o->kek_id;
    }
    if (o->kek_prev) {
        memcpy(kc->kek_prev, o->kek_prev, PSKGW_KEYCACHE_KEK_LEN);
        kc->kek_prev_id = o->kek_prev_id;
        kc->has_kek_prev = true;
    }

    rc = PSKGW_ECRYPTO;
    if (wc_InitRng(&kc->rng) != 0)
        goto fail;
    kc->rng_ok = true;
    if (wc_RNG_GenerateBlock(&kc->rng, seed, sizeof(seed)) != 0)
        goto fail;
    rc = pskgw_kc_lru_new(o->entries, seed, &kc->lru);
    pskgw_wipe(seed, sizeof(seed));
    if (rc < 0)
        goto fail;
    rc = PSKGW_ENOMEM;
    while (nb < o->max_flights && nb < 65536)
        nb <<= 1;
    kc->fbuckets = calloc(nb, sizeof(*kc->fbuckets));
    if (!kc->fbuckets)
        goto fail;
    kc->fmask = nb - 1;

    if (o->redis_host) {
        pskgw_kc_redis_opts_t ro;

        memset(&ro, 0, sizeof(ro));
        ro.host = o->redis_host;
        ro.port = o->redis_port;
        ro.password = o->redis_password;
        ro.db = o->redis_db;
        ro.timeout_ms = o->redis_timeout_ms;
        ro.backoff_min_ms = o->redis_backoff_min_ms;
        ro.backoff_max_ms = o->redis_backoff_max_ms;
        rc = pskgw_kc_redis_new(o->loop, &ro, &kc->redis);
        if (rc < 0)
            goto fail;
    }
    uv_idle_init(o->loop, &kc->idle);
    kc->idle.data = kc;
    *out = kc;
    return 0;

fail:
    free(kc->fbuckets);
    pskgw_kc_lru_free(kc->lru);
    if (kc->rng_ok)
        wc_FreeRng(&kc->rng);
    pskgw_free_secret(kc, sizeof(*kc));
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
    now = now_mono(kc);
    e = pskgw_kc_lru_get(kc->lru, key, key_len, now);
    if (!e)
        return PSKGW_EAGAIN;
    if (now < e->fresh_until) {
        res->source = PSKGW_KEYCACHE_SRC_L1;
        if (e->kind == PSKGW_KEYCACHE_KIND_VALUE) {
            kc->stats.hits_l1++;
            res->status = PSKGW_OK;
            res->value = pskgw_kc_entry_value(e);
            res->value_len = e->value_len;
        } else {
            kc->stats.negative_hits++;
            res->status = kind_status(e->kind);
        }
        return 0;
    }
    res->stale = true; /* only values outlive their freshness */
    if (now < e->retry_after) {
        kc->stats.stale_serves++;
        res->status = PSKGW_OK;
        res->value = pskgw_kc_entry_value(e);
        res->value_len = e->value_len;
        res->source = PSKGW_KEYCACHE_SRC_L1;
        return 0;
    }
    return PSKGW_EAGAIN;
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

    now = now_mono(kc);
    e = pskgw_kc_lru_get(kc->lru, key, key_len, now);
    if (e && (now < e->fresh_until || now < e->retry_after)) {
        bool fresh = now < e->fresh_until;
        bool value = e->kind == PSKGW_KEYCACHE_KIND_VALUE;
        result_t *r = result_new(value ? PSKGW_OK : kind_status(e->kind), pskgw_kc_entry_value(e),
                                 value ? e->value_len : 0, !fresh, PSKGW_KEYCACHE_SRC_L1);
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
        ready_push(kc, q, r);
        if (req_out)
            *req_out = q;
        return 0;
    }

    h = pskgw_kc_lru_hash(kc->lru, key, key_len);
    link = flight_link(kc, key, key_len, h);
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
        req_append(&f->whead, &f->wtail, q);
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
    f = calloc(1, sizeof(*f) + key_len);
    if (!f) {
        free(q);
        return PSKGW_ENOMEM;
    }
    f->kc = kc;
    f->hash = h;
    f->key_len = key_len;
    memcpy(f->key, key, key_len);
    if (e && e->kind == PSKGW_KEYCACHE_KIND_VALUE)
        set_stale(f, pskgw_kc_entry_value(e), e->value_len, e->stale_until, PSKGW_KEYCACHE_SRC_L1);
    *link = f;
    kc->nflights++;
    kc->flights_alloc++;
    kc->stats.misses++;
    kc->stats.fetches++;
    q->flight = f;
    req_append(&f->whead, &f->wtail, q);
    f->nwait++;
    if (req_out)
        *req_out = q;
    /* Any result, even an immediate failure, reaches the waiter through the ready queue. */
    flight_start(f);
    return 0;
}

void pskgw_keycache_cancel(pskgw_keycache_req_t *q)
{
    pskgw_keycache_t *kc = q->kc;

    if (q->flight) {
        req_unlink(&q->flight->whead, &q->flight->wtail, q);
        q->flight->nwait--;
        q->flight = NULL;
    } else {
        req_unlink(&kc->rhead, &kc->rtail, q);
        kc->nready--;
        result_release(q->res);
        q->res = NULL;
    }
    deliver_canceled(q);
    free(q);
}

int pskgw_keycache_invalidate(pskgw_keycache_t *kc, const uint8_t *key, size_t key_len)
{
    char rkey[RKEY_CAP];
    size_t rlen = 0;

    if (!kc || !key || key_len == 0 || key_len > kc->max_key_len)
        return PSKGW_EINVAL;
    (void)pskgw_kc_lru_remove(kc->lru, key, key_len);
    if (kc->redis && redis_key(kc, key, key_len, rkey, sizeof(rkey), &rlen) == 0)
        (void)pskgw_kc_redis_del(kc->redis, rkey, rlen);
    return 0;
}

void pskgw_keycache_stats(const pskgw_keycache_t *kc, pskgw_keycache_stats_t *out)
{
    *out = kc->stats;
    if (kc->redis) {
        pskgw_kc_redis_stats_t rs;

        pskgw_kc_redis_stats(kc->redis, &rs);
        out->redis_errors = rs.errors;
        out->redis_connects = rs.connects;
        out->redis_disconnects = rs.disconnects;
        out->redis_connected = rs.connected;
    }
    out->entries = kc->lru ? pskgw_kc_lru_count(kc->lru) : 0;
    out->flights = kc->nflights;
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
    free(kc->fbuckets);
    if (kc->rng_ok)
        wc_FreeRng(&kc->rng);
    pskgw_free_secret(kc, sizeof(*kc));
}

static void maybe_finish_close(pskgw_keycache_t *kc)
{
    if (!kc->closing || kc->idle_closing || kc->flights_alloc > 0 || kc->redis || kc->rhead)
        return;
    kc->idle_closing = true;
    uv_close((uv_handle_t *)&kc->idle, idle_closed);
}

static void redis_closed(void *arg)
{
    pskgw_keycache_t *kc = arg;

    kc->redis = NULL;
    maybe_finish_close(kc);
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
    while (kc->rhead)
        pskgw_keycache_cancel(kc->rhead);
    for (flight_t *f = list; f; f = f->hnext) {
        f->abandoned = true;
        while (f->whead)
            pskgw_keycache_cancel(f->whead);
    }
    while (list) {
        flight_t *f = list;

        list = f->hnext;
        if (f->backend_pending)
            kc->backend.cancel(kc->backend.ctx, f->bhandle); /* may free f */
        else if (!f->redis_pending)
            flight_free(f);
        /* redis_pending: freed when the connection below fails the GET */
    }
    if (kc->redis && !kc->redis_closing) {
        kc->redis_closing = true;
        pskgw_kc_redis_close(kc->redis, redis_closed, kc);
    }
    maybe_finish_close(kc);
}
