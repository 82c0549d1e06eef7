/* pskgw_upstream: asynchronous client of the u-blox security service, one per domain
 * (contract: shared/spec/security-service-api.md).
 *
 * Runs on the caller's libuv loop and never blocks it: libcurl multi driven by uv_poll/uv_timer
 * (see upstream/http.h), keep-alive connection reuse, HTTP/2 over TLS when the server offers it,
 * TLS verification always on. Not thread-safe: use it from the loop thread only.
 *
 * Authentication is automatic: the first request (or pskgw_upstream_warmup()) authenticates;
 * the token's lifetime comes from its JWT `exp` claim (3600 s when absent); it is renewed in the
 * background at 80 % of its lifetime while requests keep using the current token; requests that
 * find no valid token wait for the one authentication in flight (shared by all of them); a 401
 * drops the token, re-authenticates once and retries that request once (a second 401 ends it
 * with PSKGW_EAUTH).
 *
 * Errors a request ends with (status of the callback):
 *   0                 success; the result is valid during the callback only
 *   PSKGW_EDENIED     403: device not assigned to the customer or feature disabled (final "no")
 *   PSKGW_ENOTFOUND   404: unknown identity (final "no")
 *   PSKGW_EBADREQ     400: the service rejected the request as malformed
 *   PSKGW_ERATELIMIT  429 and the Retry-After wait does not fit the deadline
 *                     (pskgw_upstream_retry_after_ms_left() gives the server's hint); while a
 *                     Retry-After window is open no request is sent: each waits for its end,
 *                     or ends with this at once when the window outlasts its deadline (the
 *                     window is capped by ratelimit_window_max_ms)
 *   PSKGW_EUNAVAIL    5xx / 408 / connection errors / attempt timeouts, retried with capped
 *                     exponential backoff and jitter until the next retry would not fit the
 *                     deadline
 *   PSKGW_ETIMEOUT    the request's deadline passed (queued, waiting for a token, or in flight)
 *   PSKGW_EAUTH       the credentials were refused (authenticate answered 400/401/403/404), or
 *                     a request got 401 twice
 *   PSKGW_EPARSE      a 200 response that is not exactly the documented JSON (logged)
 *   PSKGW_EPROTO      an unexpected HTTP status (3xx, other 4xx)
 *   PSKGW_ETLS        certificate verification failed or the CA file is unusable
 *   PSKGW_ETOOBIG     response body over 64 KiB
 *   PSKGW_ECANCELED   pskgw_upstream_cancel() or pskgw_upstream_close()
 *   PSKGW_ENOMEM
 *
 * Logs carry operation, status, identity and a bounded, sanitised excerpt of error bodies;
 * never the API secret, the token, or keys. Key material held by the client (secret, token,
 * response buffers, results) is wiped before it is freed.
 */
#ifndef PSKGW_UPSTREAM_UPSTREAM_H
#define PSKGW_UPSTREAM_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "upstream/types.h"

typedef struct pskgw_upstream pskgw_upstream_t;
typedef struct pskgw_upstream_req pskgw_upstream_req_t;

typedef enum {
    PSKGW_UPSTREAM_AUTH_RAW = 0,    /* Authorization: <token> (u-blox's script; default) */
    PSKGW_UPSTREAM_AUTH_BEARER = 1, /* Authorization: Bearer <token> */
} pskgw_upstream_auth_mode_t;

/* Uniform 32-bit random numbers for backoff jitter. */
typedef uint32_t (*pskgw_upstream_random_fn)(void *arg);

/* Options. Start from pskgw_upstream_opts_init(). Strings are copied by pskgw_upstream_new()
 * (the secret too: the caller may wipe its copy right after; the client wipes its own on
 * close). Zero/NULL fields other than queue_size take the defaults opts_init() writes. */
typedef struct {
    const char *name;     /* domain name for logs (default "upstream") */
    const char *base_url; /* required, "https://ssapi.services.u-blox.com" (http:// for sims) */
    const char *key_id;   /* required: APIKey */
    const char *secret;   /* required: APISecret */
    pskgw_upstream_auth_mode_t auth_mode;
    unsigned psk_key_bits;         /* KeyLength when a call passes 0: 128 (default) or 256 */
    uint32_t timeout_ms;           /* per HTTP attempt (default 3000) */
    uint32_t deadline_ms;          /* per request, from the call to the callback (default 10000) */
    uint32_t max_in_flight;        /* requests admitted at once (default 64) */
    uint32_t queue_size;           /* requests waiting for a slot, FIFO (opts_init: 1024; 0 here
                                  means no queue: EBUSY as soon as max_in_flight is reached) */
    uint32_t max_connections;      /* TCP connections to the host (default max_in_flight) */
    const char *ca_file;           /* PEM CA bundle; NULL: the system store */
    const char *path_authenticate; /* default "/v1/authenticate" */
    const char *path_get_psk;      /* default "/v1/GetPSK" */
    const char *path_e2e_params;   /* default "/v1/GetE2EDecryptionParameters" */
    uint32_t backoff_base_ms;      /* default 100 */
    uint32_t backoff_max_ms;       /* default 2000 */
    uint32_t ratelimit_window_max_ms; /* longest time a 429's Retry-After holds the other
                                         requests (default 60000; the request that got the 429
                                         honours the full value within its deadline) */
    pskgw_upstream_random_fn random;  /* NULL: an internal generator seeded from uv_random */
    void *random_arg;
} pskgw_upstream_opts_t;

/* Fill the defaults (base_url, key_id and secret stay NULL). */
void pskgw_upstream_opts_init(pskgw_upstream_opts_t *o);

/* Callbacks. status is 0 or a negative PSKGW_E* code (list above). res is NULL unless status is
 * 0 and is valid during the callback only: its key bytes are wiped when the callback returns,
 * so copy what you keep. The callback may call any function of this API, including cancel on
 * other requests and pskgw_upstream_close(). */
typedef void (*pskgw_upstream_psk_cb)(void *arg, int status, const pskgw_upstream_psk_t *res);
typedef void (*pskgw_upstream_e2e_cb)(void *arg, int status, const pskgw_upstream_e2e_t *res);
typedef void (*pskgw_upstream_close_cb)(void *arg);

/* Create a client on loop. Does no I/O (authentication starts with the first request or
 * pskgw_upstream_warmup()). 0, or PSKGW_EINVAL (missing base_url/key_id/secret, key bits not
 * 128/256, unknown auth_mode, backoff_base > backoff_max), PSKGW_ENOMEM, PSKGW_EIO (libcurl
 * init).
 * The client is owned by the caller and ends with pskgw_upstream_close(). */
int pskgw_upstream_new(uv_loop_t *loop, const pskgw_upstream_opts_t *opts, pskgw_upstream_t **out);

/* Start authenticating now if there is no valid token (optional). 0 or PSKGW_ECLOSED. */
int pskgw_upstream_warmup(pskgw_upstream_t *c);

/* GetPSK for a PSK identity. key_id_hex: 2..64 hex digits (sent as given, case kept);
 * key_bits: 128, 256, or 0 for the option's default; deadline_ms: 0 for the option's default.
 * Either fails at once (returns < 0, never calls back):
 *   PSKGW_EINVAL (bad identity/bits/callback), PSKGW_EBUSY (max_in_flight reached and the queue
 *   is full), PSKGW_ECLOSED (client closing), PSKGW_ENOMEM
 * or returns 0 and calls cb exactly once, later, from the loop (never from inside this call).
 * *req_out (may be NULL) identifies the request for pskgw_upstream_cancel() until cb returns. */
int pskgw_upstream_get_psk(pskgw_upstream_t *c, const char *key_id_hex, unsigned key_bits,
                           uint32_t deadline_ms, pskgw_upstream_psk_cb cb, void *arg,
                           pskgw_upstream_req_t **req_out);

/* GetE2EDecryptionParameters for an E2E key identity (encrypted header as hex: 32 digits for
 * V1, 22 for V2; 2..64 accepted). Same contract as pskgw_upstream_get_psk(). */
int pskgw_upstream_get_e2e(pskgw_upstream_t *c, const char *encrypted_header_hex,
                           uint32_t deadline_ms, pskgw_upstream_e2e_cb cb, void *arg,
                           pskgw_upstream_req_t **req_out);

/* Cancel a request: its callback runs LATER (from the loop, never inside this call) with
 * PSKGW_ECANCELED, even if its answer had already arrived but was not yet delivered. Any HTTP
 * transfer of the request is aborted at once. Safe from inside any callback of this client; a
 * no-op when called on the request whose callback is running. req must not be used after its
 * callback returned. */
void pskgw_upstream_cancel(pskgw_upstream_req_t *req);

/* Close the client: every pending request is called back with PSKGW_ECANCELED (later, from the
 * loop), transfers are aborted, the token and secret wiped, all uv handles closed; then cb(arg)
 * runs (from the loop) and the client memory is gone. New calls fail with PSKGW_ECLOSED from
 * here on. Safe from inside a callback. After cb, uv_loop_close() can succeed. */
void pskgw_upstream_close(pskgw_upstream_t *c, pskgw_upstream_close_cb cb, void *arg);

/* ---- observability -------------------------------------------------------------------- */

typedef enum {
    PSKGW_UPSTREAM_OP_AUTH = 0, /* authenticate calls (each HTTP attempt) */
    PSKGW_UPSTREAM_OP_PSK,
    PSKGW_UPSTREAM_OP_E2E,
    PSKGW_UPSTREAM_OP_COUNT_
} pskgw_upstream_op_t;

typedef enum {
    PSKGW_UPSTREAM_OUT_OK = 0,
    PSKGW_UPSTREAM_OUT_DENIED,      /* PSKGW_EDENIED */
    PSKGW_UPSTREAM_OUT_NOTFOUND,    /* PSKGW_ENOTFOUND */
    PSKGW_UPSTREAM_OUT_BADREQ,      /* PSKGW_EBADREQ */
    PSKGW_UPSTREAM_OUT_RATELIMITED, /* PSKGW_ERATELIMIT */
    PSKGW_UPSTREAM_OUT_UNAVAILABLE, /* PSKGW_EUNAVAIL */
    PSKGW_UPSTREAM_OUT_TIMEOUT,     /* PSKGW_ETIMEOUT */
    PSKGW_UPSTREAM_OUT_BUSY,        /* PSKGW_EBUSY (refused at the call) */
    PSKGW_UPSTREAM_OUT_CANCELED,    /* PSKGW_ECANCELED */
    PSKGW_UPSTREAM_OUT_AUTH,        /* PSKGW_EAUTH */
    PSKGW_UPSTREAM_OUT_ERROR,       /* anything else (EPARSE, EPROTO, ETLS, ETOOBIG, ENOMEM) */
    PSKGW_UPSTREAM_OUT_COUNT_
} pskgw_upstream_outcome_t;

/* Latency histogram upper bounds in ms (Prometheus "le"); bucket PSKGW_UPSTREAM_LAT_BUCKETS is
 * +Inf. */
#define PSKGW_UPSTREAM_LAT_BUCKETS 12
extern const uint32_t pskgw_upstream_latency_bounds_ms[PSKGW_UPSTREAM_LAT_BUCKETS];

typedef struct {
    /* Requests by operation and outcome. For OP_AUTH: each authenticate HTTP attempt. */
    uint64_t outcomes[PSKGW_UPSTREAM_OP_COUNT_][PSKGW_UPSTREAM_OUT_COUNT_];
    /* Cumulative histogram of request latency (call to callback; busy refusals excluded):
     * latency_le[op][i] counts requests with latency <= bounds[i]; index
     * PSKGW_UPSTREAM_LAT_BUCKETS is +Inf (== latency_count[op]). */
    uint64_t latency_le[PSKGW_UPSTREAM_OP_COUNT_][PSKGW_UPSTREAM_LAT_BUCKETS + 1];
    uint64_t latency_sum_ms[PSKGW_UPSTREAM_OP_COUNT_];
    uint64_t latency_count[PSKGW_UPSTREAM_OP_COUNT_];
    uint64_t http_attempts[PSKGW_UPSTREAM_OP_COUNT_]; /* HTTP requests sent */
    uint64_t retries;                                 /* attempts after the first */
    uint64_t reauth_on_401;                           /* 401s that dropped the token */
    uint64_t token_renewals;                          /* successful authentications */
    uint32_t in_flight;                               /* admitted requests now */
    uint32_t queued;                                  /* waiting for a slot now */
    int token_valid;                                  /* 1 when a usable token is held */
} pskgw_upstream_stats_t;

/* Snapshot of the counters (plain struct, for the metrics endpoint). */
void pskgw_upstream_stats(const pskgw_upstream_t *c, pskgw_upstream_stats_t *out);

const char *pskgw_upstream_op_name(pskgw_upstream_op_t op);            /* "authenticate", ... */
const char *pskgw_upstream_outcome_name(pskgw_upstream_outcome_t out); /* "ok", "denied", ... */
/* The outcome label of a callback status. */
pskgw_upstream_outcome_t pskgw_upstream_outcome_of(int status);

/* Authentication state, for readiness (gateway/health.h). last_error is the error of the last
 * authenticate call that failed (PSKGW_EAUTH: the credentials were refused; PSKGW_EUNAVAIL,
 * PSKGW_ETIMEOUT, PSKGW_ERATELIMIT, PSKGW_ETLS, PSKGW_EPARSE, ...: the service could not be
 * reached or answered badly), 0 before any failure and again after a success. Use
 * pskgw_upstream_warmup() to try again while no request needs a token. */
typedef struct {
    int token_valid;    /* 1 when a usable token is held */
    int authenticating; /* 1 while an authenticate call is in flight */
    int last_error;
} pskgw_upstream_auth_status_t;
void pskgw_upstream_auth_status(const pskgw_upstream_t *c, pskgw_upstream_auth_status_t *out);

/* Remaining ms of the last Retry-After the service sent (0 if none or over): a hint for
 * callers that got PSKGW_ERATELIMIT (for example to cache the refusal that long). */
uint64_t pskgw_upstream_retry_after_ms_left(const pskgw_upstream_t *c);

#endif
