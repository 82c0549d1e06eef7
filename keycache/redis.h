/* Layer 2 connection of the key cache: one hiredis asynchronous context on the libuv loop
 * (module-internal; the cache encrypts values before they get here).
 *
 * - Connects at once and keeps reconnecting with capped exponential backoff (with jitter) while
 *   Redis is unreachable. A connect that does not finish within timeout_ms is abandoned.
 * - Commands are only issued while connected; otherwise get/set fail at once (PSKGW_EUNAVAIL) and
 *   the cache goes to its backend.
 * - A reply that takes longer than timeout_ms means a hung server: the context is dropped (every
 *   outstanding command completes with PSKGW_EIO) and a reconnect is scheduled.
 * - hiredis contexts are freed only outside hiredis' own callbacks (from our timers or from
 *   pskgw_kc_redis_close()), or, inside a reply callback, through redisAsyncFree (which hiredis
 *   defers); never inside the connect or disconnect callback.
 * - Its own libuv adapter (same hooks as hiredis/adapters/libuv.h, whose 0.14.1 version frees its
 *   poll handle behind the owner's back) so that close knows when the poll handle is released.
 *
 * Owner: the key cache. Not thread-safe (one loop).
 */
#ifndef PSKGW_KEYCACHE_REDIS_H
#define PSKGW_KEYCACHE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct pskgw_kc_redis pskgw_kc_redis_t;
typedef struct pskgw_kc_redis_op pskgw_kc_redis_op_t;

typedef struct {
    const char *host;     /* IPv4/IPv6 literal or name resolved by hiredis (copied) */
    uint16_t port;        /* TCP port */
    const char *password; /* AUTH after connecting; NULL for none (copied, wiped on free) */
    int db;               /* SELECT when > 0 */
    uint32_t timeout_ms;  /* connect timeout and reply timeout (>= 1) */
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
} pskgw_kc_redis_opts_t;

typedef struct {
    uint64_t errors;      /* failed or timed-out commands, error replies, lost connections */
    uint64_t connects;    /* successful connections (the first one included) */
    uint64_t disconnects; /* connections lost or dropped */
    uint64_t connected;   /* gauge: 1 while connected */
} pskgw_kc_redis_stats_t;

/* status: 0 (data/len: the string value, valid during the callback only), PSKGW_ENOTFOUND (no
 * such key), PSKGW_EIO (error reply, connection lost or reply timeout). */
typedef void (*pskgw_kc_redis_get_cb)(void *arg, int status, const uint8_t *data, size_t len);

/* Starts connecting. 0, PSKGW_EINVAL, PSKGW_ENOMEM. */
int pskgw_kc_redis_new(uv_loop_t *loop, const pskgw_kc_redis_opts_t *opts, pskgw_kc_redis_t **out);

bool pskgw_kc_redis_ready(const pskgw_kc_redis_t *r);

/* GET key. Fails at once (PSKGW_EUNAVAIL when not connected, PSKGW_ENOMEM) without calling cb,
 * or calls cb exactly once later (possibly from inside pskgw_kc_redis_close()). *op (optional)
 * can be detached while pending. */
int pskgw_kc_redis_get(pskgw_kc_redis_t *r, const char *key, size_t key_len,
                       pskgw_kc_redis_get_cb cb, void *arg, pskgw_kc_redis_op_t **op);
/* The op's callback will not be called; the op is released when its reply arrives. */
void pskgw_kc_redis_op_detach(pskgw_kc_redis_op_t *op);

/* SET key value PX px_ms, fire and forget (failures counted). 0, PSKGW_EUNAVAIL, PSKGW_ENOMEM. */
int pskgw_kc_redis_set(pskgw_kc_redis_t *r, const char *key, size_t key_len, const uint8_t *value,
                       size_t value_len, uint64_t px_ms);
/* DEL key, fire and forget. 0 or PSKGW_EUNAVAIL / PSKGW_ENOMEM. */
int pskgw_kc_redis_del(pskgw_kc_redis_t *r, const char *key, size_t key_len);

void pskgw_kc_redis_stats(const pskgw_kc_redis_t *r, pskgw_kc_redis_stats_t *out);

/* Drop the connection (pending gets complete with PSKGW_EIO, synchronously or, when called from
 * inside a reply callback, right after it), close the timers, and call cb(arg) from a libuv close
 * callback once every handle is released; r is freed just before cb. Call once. */
void pskgw_kc_redis_close(pskgw_kc_redis_t *r, void (*cb)(void *arg), void *arg);

#endif
