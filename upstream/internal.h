/* Module-internal: the client and request structs shared by upstream.c (requests, admission,
 * retries, delivery, lifetime) and auth.c (token life). Nothing outside upstream/ includes this.
 */
#ifndef PSKGW_UPSTREAM_INTERNAL_H
#define PSKGW_UPSTREAM_INTERNAL_H

#include "common/backoff.h"
#include "upstream/auth.h"
#include "upstream/http.h"
#include "upstream/upstream.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A retry is only worth sending when at least this much of the deadline is left for it. */
#define PSKGW_UPSTREAM_MIN_ATTEMPT_MS 20u

typedef enum {
    R_QUEUED = 1, /* waiting for a slot (c->queue) */
    R_WAIT_AUTH,  /* admitted, waiting for a token (c->auth.waiters) */
    R_HTTP,       /* admitted, transfer in flight (c->running) */
    R_BACKOFF,    /* admitted, waiting to retry (c->running) */
    R_DONE,       /* outcome known, waiting to be delivered (c->deliver) */
    R_DELIVERING, /* its callback is running */
} pskgw_upstream_rstate_t;

struct pskgw_upstream_req {
    pskgw_upstream_t *c;
    pskgw_upstream_op_t op;
    pskgw_upstream_rstate_t state;
    pskgw_upstream_rlist_t *list;
    pskgw_list_t link; /* in *list */
    char *body;
    char ident[65]; /* KeyID / EncryptedHeader, for logs (identities are not secret) */
    unsigned key_bits;
    pskgw_upstream_psk_cb psk_cb;
    pskgw_upstream_e2e_cb e2e_cb;
    void *arg;
    uint64_t t_start;
    uint64_t deadline;
    unsigned attempt; /* transient failures so far */
    unsigned sends;
    int reauthed;
    int cut_by_deadline; /* the attempt in flight was shortened to the deadline */
    uint64_t token_gen;
    int status;
    union {
        pskgw_upstream_psk_t psk;
        pskgw_upstream_e2e_t e2e;
    } res;
    uv_timer_t timer; /* deadline, or the end of a backoff */
    pskgw_http_req_t *http;
};

struct pskgw_upstream {
    uv_loop_t *loop;
    pskgw_http_t *http;
    char *name;
    char *key_id;
    char *secret;
    char *url_auth;
    char *url_psk;
    char *url_e2e;
    pskgw_upstream_auth_mode_t auth_mode;
    unsigned psk_key_bits;
    uint32_t timeout_ms;
    uint32_t deadline_ms;
    uint32_t max_in_flight;
    uint32_t queue_size;
    uint32_t backoff_base_ms;
    uint32_t backoff_max_ms;
    pskgw_backoff_t backoff; /* request retries: policy and the client's jitter source */

    pskgw_upstream_rlist_t queue;
    pskgw_upstream_rlist_t running;
    pskgw_upstream_rlist_t deliver;
    uint32_t in_flight;
    int admitting;
    unsigned dispatching;

    pskgw_upstream_auth_t auth;
    uv_timer_t dispatch;
    uint64_t ratelimit_until;
    uint32_t ratelimit_window_max_ms;

    pskgw_upstream_stats_t stats;
    unsigned noted_unknown; /* bit per op: its ignored-fields note was logged (once) */

    int closing;
    int torn_down;
    unsigned pending_closes;
    pskgw_upstream_close_cb close_cb;
    void *close_arg;
};

static inline void pskgw_upstream_rl_push(pskgw_upstream_rlist_t *l, pskgw_upstream_req_t *r)
{
    r->list = l;
    pskgw_list_insert_tail(&l->head, &r->link);
    l->n++;
}

/* The oldest request of l, or NULL. */
static inline pskgw_upstream_req_t *pskgw_upstream_rl_first(const pskgw_upstream_rlist_t *l)
{
    return pskgw_list_entry(pskgw_list_first(&l->head), pskgw_upstream_req_t, link);
}

static inline void pskgw_upstream_rl_unlink(pskgw_upstream_req_t *r)
{
    pskgw_upstream_rlist_t *l = r->list;

    if (!l)
        return;
    pskgw_list_remove(&r->link);
    r->list = NULL;
    l->n--;
}

/* Record the outcome and queue the callback (delivered later from the loop); the request leaves
 * whatever it was doing. No-op once the outcome is known. */
void pskgw_upstream_finish(pskgw_upstream_req_t *r, int status);

/* Send one attempt of r with the current token (which must be usable), or wait out the
 * rate-limit window, or end r (deadline passed, cannot start). */
void pskgw_upstream_req_send(pskgw_upstream_req_t *r);

/* Count a latency sample of op. */
void pskgw_upstream_lat_record(pskgw_upstream_t *c, pskgw_upstream_op_t op, uint64_t ms);

/* A parser's success note (unknown fields ignored): logged once per client and op. */
void pskgw_upstream_note_once(pskgw_upstream_t *c, pskgw_upstream_op_t op, const char *note);

/* A bounded excerpt of an error body with everything unprintable replaced. */
void pskgw_upstream_excerpt(const char *body, size_t len, char *out, size_t cap);

/* A Retry-After header value (NULL when absent) as a delay in ms, or -1 (absent, garbage). */
int64_t pskgw_upstream_retry_after_of(const char *header);

/* The service sent Retry-After ra (ms, >= 0) at now: open the client's rate-limit window
 * (capped by ratelimit_window_max_ms) and return the wait for the one that got it: ra, at least
 * backoff_base_ms. */
uint64_t pskgw_upstream_rate_limited(pskgw_upstream_t *c, uint64_t now, int64_t ra);

#endif
