/* One libcurl multi handle driven by a libuv loop: HTTP requests whose method, URL, headers,
 * body and timeouts are parameters, each answered through one completion callback. Its users
 * keep only their protocol: the security-service client (upstream/http.c, upstream/upstream.c)
 * and the webhook sink (sinks/sink_http.c).
 *
 * Wiring (after curl's docs/examples/multi-uv.c, hardened):
 * - curl's socket and timer callbacks only arm uv handles (uv_poll_start/stop, uv_close,
 *   uv_timer_start/stop); they never call back into curl. curl_multi_socket_action() is called
 *   only from uv poll and timer callbacks, never from inside curl.
 * - Poll contexts are kept in our own fd-indexed table (no curl_multi_assign). CURL_POLL_REMOVE
 *   detaches the context from the table and closes its uv_poll; the memory goes in the close
 *   callback. When curl reuses the same fd number before that close completes (a server closed
 *   the connection and a new one got the same number), a fresh context is created, so a late
 *   event of the old handle never reaches the new socket.
 * - Finished transfers are first removed from the multi and collected; their callbacks run
 *   after curl_multi_socket_action() returned, so a callback may submit, cancel or close.
 *
 * Connections: HTTP/2 is offered over TLS (ALPN, CURL_HTTP_VERSION_2TLS) and concurrent
 * transfers to one host are streams of one connection where the server takes it
 * (CURLPIPE_MULTIPLEX); with PSKGW_CURLMULTI_PIPEWAIT a transfer that finds no connection yet
 * waits for the one being set up, so a burst opens one connection, not one per transfer.
 * max_connections bounds the connections per host (CURLMOPT_MAX_HOST_CONNECTIONS: transfers
 * beyond it wait in libcurl) and the idle ones kept for reuse (CURLMOPT_MAXCONNECTS).
 * share_tls_sessions gives every transfer one TLS session cache (a curl share handle), so a
 * new connection resumes the last session. TLS peer and host verification are always on.
 *
 * Secrets: request headers and body, and the response body, are wiped when the request is freed
 * (an Authorization header, a token request, a key in a response).
 *
 * Owner: the caller of pskgw_curlmulti_new(), until the close callback. A request is owned by
 * the driver; the caller's pointer to it is valid until its callback starts. One loop, not
 * thread-safe. The driver calls curl_global_init() in _new and balances it when freed.
 */
#ifndef PSKGW_CURLMULTI_CURLMULTI_H
#define PSKGW_CURLMULTI_CURLMULTI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct pskgw_curlmulti pskgw_curlmulti_t;
typedef struct pskgw_curlmulti_req pskgw_curlmulti_req_t;

typedef struct {
    uint32_t max_connections; /* per host, and the idle ones kept; 0: libcurl's defaults */
    bool share_tls_sessions;  /* one TLS session cache for every transfer */
} pskgw_curlmulti_opts_t;

enum {
    PSKGW_CURLMULTI_PIPEWAIT = 1u << 0,  /* wait for a connection being set up (CURLOPT_PIPEWAIT) */
    PSKGW_CURLMULTI_KEEPALIVE = 1u << 1, /* TCP keep-alive probes on the connection */
};

/* One request. Everything is copied by pskgw_curlmulti_submit(): nothing here is used after it
 * returned. */
typedef struct {
    const char *method;          /* NULL: "POST" with a body, "GET" without; else any token */
    const char *url;             /* http:// or https:// only */
    const char *const *headers;  /* n_headers lines "Name: value" ("Name:" removes one) */
    size_t n_headers;            /* 0: curl's default headers only */
    const char *body;            /* NULL: no body */
    size_t body_len;             /* bytes of body */
    uint32_t timeout_ms;         /* bounds the whole transfer; required */
    uint32_t connect_timeout_ms; /* 0: timeout_ms */
    const char *ca_file;         /* NULL: the system store */
    size_t max_body;             /* response body kept up to this; above: PSKGW_ETOOBIG; 0:
                                       the body is read and discarded */
    const char *capture_header;  /* name of one response header to return (case-insensitive,
                                       first 63 bytes of its value, last response), or NULL */
    unsigned flags;              /* PSKGW_CURLMULTI_* */
} pskgw_curlmulti_req_opts_t;

/* The outcome of one request. err is 0 when a response arrived (status is then set), else
 * PSKGW_ETIMEOUT (timeout_ms or connect_timeout_ms passed), PSKGW_EUNAVAIL (connect/DNS/send/
 * receive/TLS handshake failure), PSKGW_ETLS (certificate verification or CA file problem),
 * PSKGW_ETOOBIG (response body over max_body), PSKGW_EINVAL (bad URL/protocol), PSKGW_ENOMEM,
 * PSKGW_ECANCELED (pskgw_curlmulti_cancel() or _close()). body is NUL-terminated ("" when
 * discarded); body, header and detail are valid during the callback only (wiped afterwards). */
typedef struct {
    int err;
    long status;
    const char *body;
    size_t body_len;
    const char *header; /* value of capture_header, or NULL when absent */
    const char *detail; /* curl's error text when err < 0 ("canceled" for PSKGW_ECANCELED) */
} pskgw_curlmulti_result_t;

typedef void (*pskgw_curlmulti_cb)(void *arg, const pskgw_curlmulti_result_t *res);

/* 0, or PSKGW_EINVAL (no loop/opts/out), PSKGW_ENOMEM, PSKGW_EINTERNAL (curl_global_init). */
int pskgw_curlmulti_new(uv_loop_t *loop, const pskgw_curlmulti_opts_t *opts,
                        pskgw_curlmulti_t **out);

/* Start a request. Returns 0 and calls cb exactly once: later, from the loop (never from inside
 * this call), or from inside pskgw_curlmulti_cancel()/_close() with PSKGW_ECANCELED. Or fails
 * now and never calls back: PSKGW_EINVAL (no url/cb/timeout, a header line with CR or LF, a
 * method curl refuses), PSKGW_ENOMEM, PSKGW_ECLOSED (after _close()). *req_out (may be NULL)
 * is valid until cb starts. */
int pskgw_curlmulti_submit(pskgw_curlmulti_t *m, const pskgw_curlmulti_req_opts_t *ro,
                           pskgw_curlmulti_cb cb, void *arg, pskgw_curlmulti_req_t **req_out);

/* Abort a request whose callback has not started: the callback runs inside this call with
 * PSKGW_ECANCELED, then the request is freed. Safe from any callback of this driver, including
 * another request's completion callback; a no-op from inside req's own callback. */
void pskgw_curlmulti_cancel(pskgw_curlmulti_req_t *req);

/* Requests submitted whose callback has not run yet. */
size_t pskgw_curlmulti_active(const pskgw_curlmulti_t *m);

/* Stop: every request whose callback has not run yet is called back inside this call with
 * PSKGW_ECANCELED (finished ones first, then the rest, each in submit order; a submit from there fails with PSKGW_ECLOSED); then curl is
 * cleaned up (at once, or when the callback this is called from returns) and the uv handles are
 * closed. cb(arg) runs once, later, when the last handle is closed and m is freed. Safe from any
 * callback of this driver. A second call is ignored. */
void pskgw_curlmulti_close(pskgw_curlmulti_t *m, void (*cb)(void *arg), void *arg);

#endif
