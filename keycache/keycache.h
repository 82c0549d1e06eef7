/* pskgw_keycache: a cache of values fetched from a slow, remote source, generic over the value.
 *
 * One instance caches one kind of value for one domain: the PSK cache ("psk": key = PSK
 * identity, value = PSK + ROTPublicUID serialised by the caller) or the E2E-parameters cache
 * ("e2e": key = key identity, value = key, nonce, MAC length, suite, UID). The cache stores
 * opaque value bytes (at most PSKGW_KEYCACHE_VALUE_MAX); the caller serialises them. It does not
 * know where values come from: layer 3 is a backend given as function pointers.
 *
 *   layer 1  in-process LRU with expiry, bounded by `entries`; entries wiped when dropped.
 *   layer 2  optional Redis shared by the gateways (hiredis async on the libuv loop); values sealed
 *            with AES-256-GCM under a key-encryption key (keycache/codec.h); Redis TTLs.
 *   layer 3  the backend (GetPSK / GetE2EDecryptionParameters through the upstream client).
 *
 * - Single-flight: concurrent fetches of one key share one Redis read and at most one backend
 *   call; every waiter gets the result. At most `max_waiters` waiters per key, `max_flights`
 *   keys in flight (beyond: PSKGW_EBUSY at once).
 * - Negative cache: PSKGW_EDENIED / PSKGW_ENOTFOUND answers are cached for negative_ttl_s, in
 *   Redis too, so other gateways do not ask again.
 * - Stale-if-error: positive entries are kept stale_s past their ttl_s. When the backend fails
 *   transiently (pskgw_keycache_status_transient()) and a stale value exists (layer 1 or Redis),
 *   it is served with `stale` set and counted; for stale_retry_ms after that failure further
 *   fetches get the stale value without asking the backend again; then the next fetch retries.
 * - Redis down (or not configured): layers 1 and 3 only, counted; reconnect with capped backoff.
 *   A Redis value that does not decrypt or parse is a miss, logged (rate-limited) and counted.
 *
 * Threading: one libuv loop, not thread-safe. Times: `now_ms` (monotonic, layer-1 expiry) and
 * `wall_ms` (wall clock, expiry sealed into Redis values, shared between gateways) are injected
 * through the options (defaults: pskgw_clock_mono_ms / pskgw_clock_wall_ms).
 *
 * Status codes carried by results:
 *   PSKGW_OK          found (value given; `stale` set when served past its ttl)
 *   PSKGW_EDENIED     refused by the service (fresh answer or negative cache)
 *   PSKGW_ENOTFOUND   unknown to the service (fresh answer or negative cache)
 *   PSKGW_EUNAVAIL, PSKGW_ETIMEOUT, PSKGW_EBUSY, PSKGW_ERATELIMIT, ... : the backend's failure,
 *                     passed through unchanged when no stale value could be served
 *   PSKGW_ECANCELED   pskgw_keycache_cancel() or pskgw_keycache_close()
 */
#ifndef PSKGW_KEYCACHE_KEYCACHE_H
#define PSKGW_KEYCACHE_KEYCACHE_H

#include "keycache/codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct pskgw_keycache pskgw_keycache_t;
typedef struct pskgw_keycache_req pskgw_keycache_req_t;

/* ---- backend (layer 3) ---- */

/* Called by the backend exactly once per successful fetch: status PSKGW_OK with the value
 * (value/value_len borrowed, copied by the cache before it returns), or a negative PSKGW_E* code
 * (value ignored). PSKGW_ECANCELED after backend.cancel(). */
typedef void (*pskgw_keycache_backend_done_cb)(void *done_arg, int status, const uint8_t *value,
                                               size_t value_len);

typedef struct {
    /* Start fetching key (borrowed for the call only). Either returns a negative PSKGW_E* code
     * and never calls done, or returns 0, sets *handle, and calls done(done_arg, ...) exactly once
     * later (never from inside fetch). At most one call per key is outstanding. */
    int (*fetch)(void *ctx, const uint8_t *key, size_t key_len, pskgw_keycache_backend_done_cb done,
                 void *done_arg, void **handle);
    /* Cancel an outstanding fetch: done must then be called with PSKGW_ECANCELED (or with the
     * result if it was already on its way), from inside cancel or later. Used only by
     * pskgw_keycache_close(). */
    void (*cancel)(void *ctx, void *handle);
    void *ctx;
} pskgw_keycache_backend_t;

/* ---- invalidation across gateways ---- */

typedef enum {
    PSKGW_KEYCACHE_OP_INVALIDATE = 1, /* the key is dropped from every layer */
    PSKGW_KEYCACHE_OP_REVOKE = 2,     /* the same, and a refusal stored (see broadcast below) */
} pskgw_keycache_op_t;

/* Another cache published op for key (key/key_len valid during the callback only). Called
 * after the key left layer 1; from inside the subscriber's reply dispatch: it may call any
 * pskgw_keycache function, pskgw_keycache_close() included. */
typedef void (*pskgw_keycache_remote_cb)(void *arg, pskgw_keycache_op_t op, const uint8_t *key,
                                         size_t key_len);

/* ---- options ---- */

typedef struct {
    uv_loop_t *loop;                  /* required: timers and the Redis connection live on it */
    const char *name;                 /* required: cache name, [a-z0-9_-]{1,16} ("psk", "e2e") */
    const char *domain;               /* required: domain name, [A-Za-z0-9._-]{1,64} */
    pskgw_keycache_backend_t backend; /* required: fetch and cancel */

    size_t entries;          /* layer-1 bound of values (>= 1). Default 10000 */
    size_t negative_entries; /* layer-1 bound of refusals, kept apart: a refusal never evicts a
                                value (>= 1). Default 10000 */
    uint32_t ttl_s;          /* fresh lifetime of a value (>= 1). Default 3600 */
    uint32_t negative_ttl_s; /* lifetime of a refusal; 0: refusals not cached. Default 300 */
    uint32_t stale_s;        /* stale window after ttl_s; 0: no stale serving. Default 86400 */
    uint32_t stale_retry_ms; /* after a failed refresh, serve stale this long. Default 1000 */
    size_t max_waiters;      /* fetches waiting on one key (>= 1). Default 4096 */
    size_t max_flights;      /* distinct keys being fetched at once (>= 1). Default 65536 */
    size_t max_key_len;      /* 1..PSKGW_KEYCACHE_KEY_MAX. Default 128 */
    size_t max_value_len;    /* 1..PSKGW_KEYCACHE_VALUE_MAX. Default 512 */

    /* Circuit breaker: after breaker_failures transient backend failures in a row (0: no
     * breaker) the backend is known to be failing until one of its calls answers (a value or a
     * refusal). While it is, a fetch of a key with a stale value gets that value at once (next
     * loop iteration, `stale` set) and the backend is probed in the background: at most one
     * probe per breaker_probe_ms (a flight without waiters, which refreshes the entry if it
     * succeeds). Keys without a stale value still wait for the backend. Defaults 3 and 1000. */
    uint32_t breaker_failures;
    uint32_t breaker_probe_ms;

    /* Optional: keys that the backend cannot know (0: plausible, < 0: refused). A refused key
     * is answered PSKGW_ENOTFOUND (next loop iteration) without touching any layer or the
     * backend, counted in refused_keys, not cached. Called once per fetch of a key not in
     * layer 1. */
    int (*key_check)(void *key_check_arg, const uint8_t *key, size_t key_len);
    void *key_check_arg;

    uint64_t (*now_ms)(void *clock_arg);  /* monotonic ms; NULL: pskgw_clock_mono_ms */
    uint64_t (*wall_ms)(void *clock_arg); /* wall-clock ms; NULL: pskgw_clock_wall_ms */
    void *clock_arg;

    /* Layer 2. redis_host NULL: no Redis (layer 1 + backend only). Hosts should be IP literals:
     * hiredis 0.14 resolves names synchronously at each (re)connect. */
    const char *redis_host;
    uint16_t redis_port; /* default 6379 */
    /* Redis Sentinel instead of redis_host/redis_port (then NULL/ignored): "h:p,h:p" and the
     * master's name (redisconn/redisconn.h, sentinel mode). */
    const char *redis_sentinels;
    const char *redis_master_name;
    const char *redis_password;    /* AUTH; NULL: none (copied, wiped) */
    int redis_db;                  /* SELECT when > 0 */
    uint32_t redis_timeout_ms;     /* connect and reply timeout. Default 500 */
    uint32_t redis_backoff_min_ms; /* reconnect backoff, doubled up to max. Default 100 */
    uint32_t redis_backoff_max_ms; /* default 10000 */
    const uint8_t *kek;            /* required with Redis: PSKGW_KEYCACHE_KEK_LEN bytes (copied) */
    uint8_t kek_id;                /* written into every sealed value */
    const uint8_t *kek_prev;       /* optional previous KEK, accepted for reading (copied) */
    uint8_t kek_prev_id;           /* must differ from kek_id */

    /* Invalidation across the caches sharing the Redis (requires Redis; ignored without it):
     * a second Redis connection (subscriber mode, redisconn.h) subscribes to the channel
     * "pskgw:inval:<domain>:<name>", with the same host or sentinels, password, db, timeout
     * and backoff; pskgw_keycache_broadcast() publishes there. A message from another cache
     * (another gateway, another worker, or a cache this process replaced) drops the key from
     * layer 1, values and refusals (the publisher already wrote Redis), counts
     * broadcasts_received and calls on_remote (optional). Each time the subscription is made
     * (at start and after every reconnect), layer 1 is emptied and broadcast_resyncs counted:
     * messages published while it was down are lost, so any entry could be stale. */
    bool broadcast;
    pskgw_keycache_remote_cb on_remote;
    void *remote_arg;

    /* Optional: keep each value decoded (the E2E cache: pskgw_e2e_params_t), so a hit costs a
     * copy, not a parse. decode(decode_arg, value, value_len, out) fills decoded_size bytes
     * (1..PSKGW_KEYCACHE_DECODED_MAX) once, when the value enters layer 1; the struct lives in
     * the entry's don't-dump block (common/secmem.h) and is wiped with it (eviction,
     * replacement, expiry, invalidation, close). A value that does not decode (< 0) is kept
     * without one: results then carry decoded NULL, as without a hook. */
    int (*decode)(void *decode_arg, const uint8_t *value, size_t value_len, void *out);
    void *decode_arg;
    size_t decoded_size;

    void *data; /* for the owner; see pskgw_keycache_data() */
} pskgw_keycache_opts_t;

#define PSKGW_KEYCACHE_DECODED_MAX 1024

/* Fill *o with the defaults above (required fields left NULL). */
void pskgw_keycache_opts_init(pskgw_keycache_opts_t *o);

/* ---- results ---- */

typedef enum {
    PSKGW_KEYCACHE_SRC_L1 = 1,
    PSKGW_KEYCACHE_SRC_REDIS = 2,
    PSKGW_KEYCACHE_SRC_BACKEND = 3,
    PSKGW_KEYCACHE_SRC_NONE = 4, /* errors, cancellation */
} pskgw_keycache_source_t;

typedef struct {
    int status;           /* see the table at the top */
    const uint8_t *value; /* status PSKGW_OK only; borrowed (see each call) */
    size_t value_len;
    /* pskgw_keycache_lookup() with status PSKGW_OK and a decode hook: the value's decoded
     * struct (decoded_size bytes, borrowed like value); else NULL. */
    const void *decoded;
    bool stale;     /* PSKGW_OK: served past its ttl because the backend failed (or in hold-off) */
    uint8_t source; /* pskgw_keycache_source_t */
} pskgw_keycache_result_t;

/* Called exactly once per successful pskgw_keycache_fetch(), never from inside it. res and the
 * value bytes are valid during the callback only. The callback may call any pskgw_keycache
 * function (fetch, cancel of another request, close). */
typedef void (*pskgw_keycache_cb)(void *arg, const pskgw_keycache_result_t *res);

/* ---- counters ---- */

typedef struct {
    uint64_t lookups;       /* pskgw_keycache_lookup() calls */
    uint64_t fetches;       /* accepted pskgw_keycache_fetch() calls */
    uint64_t hits_l1;       /* fresh values served from layer 1 (lookup or fetch) */
    uint64_t hits_redis;    /* fresh values served from Redis (per waiter of the flight) */
    uint64_t misses;        /* flights started: nothing fresh in layer 1 */
    uint64_t coalesced;     /* fetches that joined a flight already under way */
    uint64_t negative_hits; /* refusals served from the negative cache (L1 or Redis), per request */
    uint64_t stale_serves;  /* results served stale (per waiter, and stale lookups) */
    uint64_t backend_calls; /* backend fetches started */
    uint64_t backend_errors;     /* backend answers other than OK/DENIED/NOTFOUND/CANCELED */
    uint64_t decode_failures;    /* Redis values that did not decrypt or parse */
    uint64_t evictions;          /* layer-1 values evicted by the bound */
    uint64_t negative_evictions; /* layer-1 refusals evicted by their own bound */
    uint64_t refused_keys;       /* fetches refused by key_check (no layer, no backend call) */
    uint64_t breaker_trips;      /* times the breaker opened */
    uint64_t stale_at_once;      /* stale values served at once while the breaker was open */
    uint64_t busy;               /* fetches refused with PSKGW_EBUSY */
    uint64_t canceled;           /* requests completed with PSKGW_ECANCELED */
    uint64_t redis_skipped;      /* flights that went to the backend because Redis was down */
    uint64_t redis_errors;       /* Redis command failures, timeouts, lost connections */
    uint64_t redis_connects;     /* successful Redis connections (reconnects = connects - 1) */
    uint64_t redis_disconnects;
    uint64_t redis_connected;      /* gauge: 1 while connected */
    uint64_t entries;              /* gauge: layer-1 values */
    uint64_t negative_entries;     /* gauge: layer-1 refusals */
    uint64_t breaker_open;         /* gauge: 1 while the backend is known to be failing */
    uint64_t flights;              /* gauge: keys being fetched */
    uint64_t broadcasts_sent;      /* invalidations and revocations published */
    uint64_t broadcasts_received;  /* published by another cache, applied here */
    uint64_t broadcast_resyncs;    /* layer 1 emptied because the subscription was (re)made */
    uint64_t broadcast_subscribed; /* gauge: 1 while subscribed (broadcast on) */
} pskgw_keycache_stats_t;

/* ---- API ---- */

/* Create a cache (and start connecting to Redis when configured). opts and its strings/keys are
 * copied. Errors: PSKGW_EINVAL (missing or out-of-range option), PSKGW_ENOMEM, PSKGW_ECRYPTO (RNG).
 * Owner: the caller, released with pskgw_keycache_close(). */
int pskgw_keycache_new(const pskgw_keycache_opts_t *opts, pskgw_keycache_t **out);

/* Synchronous layer-1 check (no I/O; key_check is not consulted). Returns 0 when layer 1
 * answers:
 *   res->status PSKGW_OK with the value (fresh; or stale with res->stale during the stale_retry_ms
 *   hold-off after a failed refresh), or PSKGW_EDENIED / PSKGW_ENOTFOUND (negative cache).
 * res->value is borrowed until the next call into this cache or the return to the loop.
 * Returns PSKGW_EAGAIN when it does not: call pskgw_keycache_fetch(); res->stale then tells whether
 * a stale value exists (the fetch will serve it if the backend fails). PSKGW_EINVAL for a bad key.
 */
int pskgw_keycache_lookup(pskgw_keycache_t *kc, const uint8_t *key, size_t key_len,
                          pskgw_keycache_result_t *res);

/* Asynchronous fetch through all layers (key copied). Either fails at once and never calls cb:
 *   PSKGW_EINVAL (key length 0 or > max_key_len), PSKGW_EBUSY (waiter or flight bound),
 *   PSKGW_ECLOSED (closing), PSKGW_ENOMEM
 * or returns 0 and calls cb(arg, res) exactly once later (even for a layer-1 hit). *req (optional)
 * identifies the request for pskgw_keycache_cancel(); it is valid until cb starts. */
int pskgw_keycache_fetch(pskgw_keycache_t *kc, const uint8_t *key, size_t key_len,
                         pskgw_keycache_cb cb, void *arg, pskgw_keycache_req_t **req);

/* Cancel a pending request: its cb is called with PSKGW_ECANCELED before this returns. Other
 * waiters of the same key are unaffected (the flight goes on and fills the cache). A no-op when
 * called from req's own callback. req must not be used after its callback returned. */
void pskgw_keycache_cancel(pskgw_keycache_req_t *req);

/* Drop key from layer 1 and Redis (e.g. after a handshake failed with a cached PSK). A flight
 * under way for key is not affected. 0 or PSKGW_EINVAL. */
int pskgw_keycache_invalidate(pskgw_keycache_t *kc, const uint8_t *key, size_t key_len);

/* Invalidate or revoke key on this cache and every cache subscribed to its channel
 * (opts.broadcast). Here, at once: the key leaves layer 1 and Redis (DEL) like
 * pskgw_keycache_invalidate(); for PSKGW_KEYCACHE_OP_REVOKE with negative_ttl_s > 0, a refusal
 * (PSKGW_EDENIED) is then stored in layer 1 and Redis for negative_ttl_s, so that the next
 * lookup of the key on any gateway is refused without asking the backend (past that, the
 * backend answers again). Then the op is PUBLISHed on the same connection (after the DEL/SET:
 * a subscriber that reads Redis on the message sees them). A flight under way for key is not
 * affected. Returns 0 (published), PSKGW_EUNAVAIL (done here, but not published: no broadcast,
 * or Redis not connected; Redis was not written either then) or PSKGW_EINVAL (bad key or op). */
int pskgw_keycache_broadcast(pskgw_keycache_t *kc, pskgw_keycache_op_t op, const uint8_t *key,
                             size_t key_len);

void pskgw_keycache_stats(const pskgw_keycache_t *kc, pskgw_keycache_stats_t *out);
void *pskgw_keycache_data(const pskgw_keycache_t *kc);

/* true for failures after which a stale value is served: PSKGW_EUNAVAIL, PSKGW_ETIMEOUT,
 * PSKGW_EBUSY, PSKGW_ERATELIMIT, PSKGW_EIO, PSKGW_ETLS, PSKGW_EPROTO, PSKGW_EAUTH, PSKGW_EAGAIN,
 * PSKGW_ENOMEM, PSKGW_EPARSE and PSKGW_ETOOBIG (a malformed or oversized answer) (the service,
 * or our way to it, is not working; the identity was not refused). */
bool pskgw_keycache_status_transient(int status);

/* Close asynchronously: every pending request is completed with PSKGW_ECANCELED (before this
 * returns), outstanding backend calls are canceled, Redis is disconnected and the timers closed.
 * cb(kc) is called from a libuv close callback once everything is released; kc (stats, data)
 * is valid until cb returns, then freed. New fetches fail with PSKGW_ECLOSED. Call once; may be
 * called from inside a fetch callback. */
void pskgw_keycache_close(pskgw_keycache_t *kc, void (*cb)(pskgw_keycache_t *kc));

#endif
