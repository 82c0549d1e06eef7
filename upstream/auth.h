/* Module-internal: the security-service client's token life (upstream/auth.c).
 *
 * One pskgw_upstream_auth_t is embedded in each client (c->auth); it owns the current token
 * (wiped when replaced or freed), the authenticate transfer in flight, the renewal timer and the
 * list of requests waiting for a token. The client (upstream.c) owns the requests: auth only
 * moves them from its waiters to a send (pskgw_upstream_req_send) or to their end
 * (pskgw_upstream_finish).
 *
 * Life of a token:
 *   - the first request that finds no usable token joins the waiters and starts the one
 *     authenticate call (shared by all waiters); warmup starts it without a request;
 *   - success: the token's lifetime comes from its JWT exp (3600 s when absent); it is not used
 *     in its last 500 ms (or last tenth of a shorter life); the renew timer fires at 80 % of
 *     the life and renews it in the background while requests keep using it; every waiter is
 *     sent;
 *   - credentials refused (401 or another 4xx but 408/429), a malformed answer or a permanent
 *     error: the waiters end (PSKGW_EAUTH, PSKGW_EPARSE, the error) and no authenticate starts
 *     before the backoff has passed (a broken service does not get one per request);
 *   - 429 or a transient failure: retried after the backoff (the Retry-After when sent, which
 *     also opens the client's rate-limit window); waiters whose deadline cannot see the retry
 *     end now (PSKGW_ETIMEOUT past it, else the error);
 *   - a 401 on a request drops the token it was sent with (pskgw_upstream_auth_refused).
 * Failures back off with the client's policy (common/backoff.h: backoff_base_ms doubling up to
 * backoff_max_ms, jittered over the upper half), counted until the next success.
 */
#ifndef PSKGW_UPSTREAM_AUTH_H
#define PSKGW_UPSTREAM_AUTH_H

#include "common/backoff.h"
#include "common/list.h"
#include "upstream/http.h"

#include <stdint.h>
#include <uv.h>

typedef struct pskgw_upstream pskgw_upstream_t;
typedef struct pskgw_upstream_req pskgw_upstream_req_t;

typedef struct pskgw_upstream_rlist {
    pskgw_list_t head; /* pskgw_upstream_req_t.link, oldest first */
    size_t n;
} pskgw_upstream_rlist_t;

typedef struct {
    char *token; /* current AuthToken, NULL if none (secret: wiped) */
    uint64_t expiry;
    uint64_t margin;
    uint64_t gen; /* bumped with every new token */
    pskgw_http_req_t *http;
    uint64_t t0;
    pskgw_backoff_t backoff; /* failed authentications since the last success */
    uint64_t not_before;
    int last_err;     /* error of the last authentication that failed; 0 after a success */
    uv_timer_t renew; /* proactive renewal, or the next authentication attempt */
    pskgw_upstream_rlist_t waiters;
} pskgw_upstream_auth_t;

/* Set up c->auth (no I/O) and its renew timer on loop; seed: its jitter source. The timer is
 * closed by pskgw_upstream_auth_close(). */
void pskgw_upstream_auth_init(pskgw_upstream_t *c, uv_loop_t *loop, uint64_t seed);

/* 1 when a token is held and not in its last margin. */
int pskgw_upstream_auth_usable(const pskgw_upstream_t *c);

/* 1 when a token is held and not expired (for the stats). */
int pskgw_upstream_auth_valid(const pskgw_upstream_t *c);

/* r (admitted) waits for a token: it joins the waiters (state R_WAIT_AUTH) and authentication
 * starts unless one is in flight or backing off. */
void pskgw_upstream_auth_wait(pskgw_upstream_req_t *r);

/* Start authenticating now if none is in flight and the backoff allows (else arm the timer for
 * its end). A failure to start ends the waiters with its code. */
void pskgw_upstream_auth_start(pskgw_upstream_t *c);

/* The Authorization header value for the current token (raw or "Bearer "), heap, secret: free
 * with pskgw_free_secret_str(). 0 or PSKGW_ENOMEM. Only while a token is held. */
int pskgw_upstream_auth_header(const pskgw_upstream_t *c, char **out);

/* A request sent with token generation gen got 401: drop that token if it is still current
 * (logged). */
void pskgw_upstream_auth_refused(pskgw_upstream_t *c, uint64_t gen);

/* Closing: abort the authenticate transfer and stop the timer; waiters stay for the caller to
 * cancel. */
void pskgw_upstream_auth_stop(pskgw_upstream_t *c);

/* Close the renew timer; cb runs from the loop when it is closed. */
void pskgw_upstream_auth_close(pskgw_upstream_t *c, uv_close_cb cb);

/* Wipe and free the token (after the close). */
void pskgw_upstream_auth_free(pskgw_upstream_t *c);

#endif
