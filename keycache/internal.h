/* Module-internal shared definitions of pskgw_keycache (keycache.c: public API and close;
 * flight.c: flights through layers 2 and 3, the ready queue). Not for other modules. */
#ifndef PSKGW_KEYCACHE_INTERNAL_H
#define PSKGW_KEYCACHE_INTERNAL_H

#include "common/list.h"
#include "keycache/keycache.h"
#include "keycache/lru.h"
#include "keycache/redis.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    flight_t *flight;  /* waiting on this flight, or NULL when in the ready queue */
    pskgw_list_t link; /* in its flight's waiters or in the ready queue */
    pskgw_keycache_cb cb;
    void *arg;
    result_t *res;   /* ready queue only */
    bool delivering; /* its callback is running: cancel is a no-op */
};

struct flight {
    flight_t *hnext;
    uint64_t hash;
    pskgw_keycache_t *kc;
    pskgw_list_t waiters; /* pskgw_keycache_req_t.link, oldest first */
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

    pskgw_kc_lru_t *lru; /* values */
    pskgw_kc_lru_t *neg; /* refusals: a bound of their own, so they never evict a value */
    uint32_t breaker_failures;
    uint64_t breaker_probe_ms;
    uint32_t fails_in_a_row; /* transient backend failures since its last answer */
    bool breaker_open;
    uint64_t probe_at; /* monotonic: no background probe before this */
    int (*key_check)(void *, const uint8_t *, size_t);
    void *key_check_arg;
    pskgw_kc_redis_t *redis;
    bool redis_closing;
    pskgw_kc_redis_stats_t redis_last; /* counters kept once the connection is released */
    struct pskgw_redisconn *bc;        /* broadcast: the subscriber connection; NULL: none */
    bool bc_closing;
    bool bc_subscribed;
    uint8_t origin[8]; /* random: a message this cache published is not applied again */
    pskgw_keycache_remote_cb on_remote;
    void *remote_arg;

    flight_t **fbuckets;
    size_t fmask;
    size_t nflights;      /* in the table */
    size_t flights_alloc; /* allocated (table + abandoned) */

    pskgw_list_t ready; /* ready queue: pskgw_keycache_req_t.link, oldest first */
    size_t nready;
    uv_idle_t idle; /* dispatches the ready queue once per loop iteration */

    bool closing;
    bool idle_closing;
    void (*close_cb)(pskgw_keycache_t *kc);

    pskgw_keycache_stats_t stats;
};

#define PSKGW_KC_RKEY_CAP \
    (32 + PSKGW_KEYCACHE_DOMAIN_MAX + PSKGW_KEYCACHE_NAME_MAX + 2 * PSKGW_KEYCACHE_KEY_MAX)

static inline uint64_t pskgw_kc_now(const pskgw_keycache_t *kc)
{
    return kc->now_ms(kc->clock_arg);
}

/* Results (refcounted, value wiped on the last release) and the ready queue: results reach
 * callers only from the idle handle, never from inside a call or a library callback. */
result_t *pskgw_kc_result_new(int status, const uint8_t *value, size_t len, bool stale,
                              uint8_t source);
void pskgw_kc_result_release(result_t *r);
/* The oldest request of a waiters or ready list, or NULL. */
static inline pskgw_keycache_req_t *pskgw_kc_req_first(const pskgw_list_t *l)
{
    return pskgw_list_entry(pskgw_list_first(l), pskgw_keycache_req_t, link);
}
void pskgw_kc_deliver_canceled(pskgw_keycache_req_t *q);
void pskgw_kc_ready_push(pskgw_keycache_t *kc, pskgw_keycache_req_t *q, result_t *r);

/* Flights: one per key being fetched (single-flight). */
flight_t **pskgw_kc_flight_link(pskgw_keycache_t *kc, const uint8_t *key, size_t len, uint64_t h);
void pskgw_kc_flight_free(flight_t *f);
void pskgw_kc_set_stale(flight_t *f, const uint8_t *value, size_t len, uint64_t stale_until,
                        uint8_t src);
/* Start: Redis GET when connected, else the backend. Never calls a user callback. */
void pskgw_kc_flight_start(flight_t *f);
/* A new flight for key (not in the table yet: *link from pskgw_kc_flight_link), linked in; the
 * stale value of e is its fallback. NULL when out of memory. */
flight_t *pskgw_kc_flight_new(pskgw_keycache_t *kc, flight_t **link, const uint8_t *key, size_t len,
                              uint64_t h, const pskgw_kc_entry_t *e);
/* The breaker's view of one backend answer. */
void pskgw_kc_breaker_note(pskgw_keycache_t *kc, int status);

int pskgw_kc_kind_status(uint8_t kind);
int pskgw_kc_redis_key(const pskgw_keycache_t *kc, const uint8_t *key, size_t len, char *out,
                       size_t cap, size_t *out_len);

/* flight.c: write an entry to layer 1 / to Redis (fire and forget). */
void pskgw_kc_l1_store(pskgw_keycache_t *kc, const uint8_t *key, size_t len, uint8_t kind,
                       const uint8_t *value, size_t value_len, uint64_t fresh_ms, uint64_t life_ms);
void pskgw_kc_redis_store(pskgw_keycache_t *kc, const uint8_t *key, size_t key_len, uint8_t kind,
                          const uint8_t *value, size_t value_len, uint64_t life_ms,
                          uint64_t fresh_ms);

/* broadcast.c: the subscriber (opts.broadcast with Redis), started by pskgw_keycache_new() and
 * closed by pskgw_keycache_close() (kc->bc NULL once released, then
 * pskgw_kc_maybe_finish_close()). */
int pskgw_kc_bc_start(pskgw_keycache_t *kc, const pskgw_keycache_opts_t *o);
void pskgw_kc_bc_close(pskgw_keycache_t *kc);

/* keycache.c: finish closing once flights, Redis and the ready queue are gone. */
void pskgw_kc_maybe_finish_close(pskgw_keycache_t *kc);

#endif
