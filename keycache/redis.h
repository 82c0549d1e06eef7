/* Layer 2 of the key cache: GET, SET PX and DEL on one Redis connection (redisconn/redisconn.h:
 * name resolution on the thread pool, AUTH/SELECT/PING gate, backoff, reply watchdog, safe
 * freeing). Module-internal; the cache encrypts values before they get here.
 *
 * - Commands are accepted while the connection is connected (TCP up: held until AUTH, SELECT and
 *   PING answered, then sent in order); otherwise get/set/del fail at once (PSKGW_EUNAVAIL) and
 *   the cache goes to its backend.
 * - timeout_ms bounds the connect (TCP + gate) and every reply: a hung server is dropped (every
 *   outstanding command completes with PSKGW_EIO) and a reconnect is scheduled with backoff
 *   (backoff_min_ms doubling to backoff_max_ms, jittered 80..120 %, capped).
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
    const char *host;        /* IPv4/IPv6 literal, or a name resolved on the thread pool (copied) */
    uint16_t port;           /* TCP port */
    const char *sentinels;   /* Sentinel mode (host/port unused): redisconn.h */
    const char *master_name; /* with sentinels */
    const char *password;    /* AUTH after connecting; NULL for none (copied, wiped on free) */
    int db;                  /* SELECT when > 0 */
    uint32_t timeout_ms;     /* connect timeout and reply timeout (>= 1) */
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
} pskgw_kc_redis_opts_t;

typedef struct {
    uint64_t errors;      /* failed or timed-out commands, error replies, lost connections */
    uint64_t connects;    /* TCP connections made (the first one included) */
    uint64_t disconnects; /* connections lost or dropped */
    uint64_t connected;   /* gauge: 1 while connected */
} pskgw_kc_redis_stats_t;

/* status: 0 (data/len: the string value, valid during the callback only), PSKGW_ENOTFOUND (no
 * such key), PSKGW_EIO (error reply, not a string, connection lost or reply timeout),
 * PSKGW_ECANCELED (pskgw_kc_redis_close()). */
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

/* PUBLISH channel message, fire and forget. 0 or PSKGW_EUNAVAIL / PSKGW_ENOMEM. */
int pskgw_kc_redis_publish(pskgw_kc_redis_t *r, const char *channel, const char *msg,
                           size_t msg_len);

void pskgw_kc_redis_stats(const pskgw_kc_redis_t *r, pskgw_kc_redis_stats_t *out);

/* Drop the connection (pending gets complete with PSKGW_ECANCELED, synchronously or, when called
 * from inside a reply callback, from a 0 ms timer right after it), close the handles, and call
 * cb(arg) from a libuv close callback once every handle is released; r is freed just before cb.
 * Call once. */
void pskgw_kc_redis_close(pskgw_kc_redis_t *r, void (*cb)(void *arg), void *arg);

#endif
