/* Master discovery through Redis Sentinel, for pskgw_redisconn (module-internal).
 *
 * A set keeps one pskgw_redisconn to each sentinel of a list (each with its own resolution on
 * the thread pool, backoff and watchdog), so asking never waits for a TCP connect. An ask sends
 * SENTINEL get-master-addr-by-name to the first READY sentinel; a sentinel that does not know
 * the master (nil), answers an error or loses its connection passes the ask to the next READY
 * one. Nothing here blocks the loop.
 *
 * Owner: the pskgw_redisconn that created it, until the close callback. One loop.
 */
#ifndef PSKGW_REDISCONN_SENTINEL_H
#define PSKGW_REDISCONN_SENTINEL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct pskgw_redisconn_sentinels pskgw_redisconn_sentinels_t;

/* The answer to an ask: status 0 with the master's host (IP literal or name, as the sentinel
 * announces it; valid during the callback only) and port; PSKGW_EUNAVAIL when no READY sentinel
 * knew the master. Called exactly once per accepted ask, never inside ask(), never after
 * cancel(). */
typedef void (*pskgw_redisconn_master_cb)(void *arg, int status, const char *host, uint16_t port);

/* list: "host:port,host:port,..." (port optional: 26379; IPv6 as [addr]:port; at most 16).
 * up(arg) fires each time a sentinel connection becomes READY (optional). timeout and backoff
 * as in pskgw_redisconn_opts_t. 0, PSKGW_EINVAL (bad list, no name), PSKGW_ENOMEM. */
int pskgw_redisconn_sentinels_new(uv_loop_t *loop, const char *list, const char *master_name,
                                  uint32_t timeout_ms, uint32_t backoff_min_ms,
                                  uint32_t backoff_max_ms, const char *log_name,
                                  void (*up)(void *arg), void *arg,
                                  pskgw_redisconn_sentinels_t **out);

/* Check a sentinel list without creating anything: 0 or PSKGW_EINVAL. */
int pskgw_redisconn_sentinels_check(const char *list);

/* One ask at a time. 0: cb fires once, later. PSKGW_EUNAVAIL: no sentinel is READY now (cb never
 * fires); PSKGW_EBUSY: an ask is in flight; PSKGW_ENOMEM. */
int pskgw_redisconn_sentinels_ask(pskgw_redisconn_sentinels_t *s, pskgw_redisconn_master_cb cb,
                                  void *arg);
/* The ask in flight (if any) will not call back. */
void pskgw_redisconn_sentinels_cancel(pskgw_redisconn_sentinels_t *s);
/* How many sentinel connections failed so far (attempts, lost connections). */
uint64_t pskgw_redisconn_sentinels_errors(const pskgw_redisconn_sentinels_t *s);

/* Cancel the ask, close every sentinel connection; cb(arg) once all are released (s freed). */
void pskgw_redisconn_sentinels_close(pskgw_redisconn_sentinels_t *s, void (*cb)(void *arg),
                                     void *arg);

#endif
