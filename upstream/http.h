/* Module-internal: asynchronous JSON POST to the security service, a thin layer over the
 * curl-multi driver (curlmulti/curlmulti.h: the libuv wiring, fd reuse, freeing) that adds the
 * service's request shape (JSON body, Accept, Authorization, no Expect) and its Retry-After.
 *
 * One pskgw_http_t per security-service domain. Connections (tested against nghttpx in
 * tests/integration/upstream/test_upstream_pool.c):
 * - HTTP/2 is offered over TLS (ALPN, CURL_HTTP_VERSION_2TLS). Where the service takes it,
 *   concurrent transfers are streams of one connection (CURLPIPE_MULTIPLEX); a transfer that
 *   finds no connection yet waits for the one being set up to learn whether it multiplexes
 *   (CURLOPT_PIPEWAIT), so a burst opens one connection, not one per transfer. A further
 *   connection opens only when one carries as many streams as the service or libcurl (100,
 *   CURLMOPT_MAX_CONCURRENT_STREAMS) allows, within max_connections.
 * - HTTP/1.1 (plain http, or a service that does not take h2): one transfer per connection;
 *   at most max_connections to the host (CURLMOPT_MAX_HOST_CONNECTIONS: transfers beyond wait
 *   in libcurl for a free one) and as many idle ones kept open for reuse (CURLMOPT_MAXCONNECTS).
 * - TLS sessions are shared by all transfers (a curl share handle): a connection opened after
 *   another resumes its session when the service allows, instead of a full TLS handshake.
 * TLS peer and host verification are always on.
 */
#ifndef PSKGW_UPSTREAM_HTTP_H
#define PSKGW_UPSTREAM_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct pskgw_http pskgw_http_t;
typedef struct pskgw_http_req pskgw_http_req_t;

typedef struct {
    const char *ca_file;      /* NULL: system store; copied */
    uint32_t max_connections; /* per host, and the idle ones kept; 0: libcurl's defaults */
    size_t max_body;          /* response bodies above this fail with PSKGW_ETOOBIG */
} pskgw_http_opts_t;

/* The outcome of one POST. transport_err is 0 when a response arrived (status is then set),
 * else PSKGW_ETIMEOUT (attempt timeout), PSKGW_EUNAVAIL (connect/DNS/send/receive/TLS
 * handshake failure), PSKGW_ETLS (certificate verification or CA file problem), PSKGW_ETOOBIG
 * (body over the bound), PSKGW_EINVAL (bad URL/protocol), PSKGW_ENOMEM. body is NUL-terminated
 * and body/retry_after are valid during the callback only (they are wiped afterwards).
 * retry_after is the Retry-After header value or NULL. */
typedef struct {
    int transport_err;
    long status;
    const char *body;
    size_t body_len;
    const char *retry_after;
    const char *detail; /* curl's error text when transport_err < 0, else "" */
} pskgw_http_result_t;

typedef void (*pskgw_http_cb)(void *arg, const pskgw_http_result_t *res);

int pskgw_http_new(uv_loop_t *loop, const pskgw_http_opts_t *opts, pskgw_http_t **out);

/* Start a POST of a JSON body. url, body and the header values are copied (body and auth are
 * wiped when the transfer ends). auth may be NULL (no Authorization header); it is the full
 * header value ("<token>" or "Bearer <token>"). timeout_ms bounds the whole attempt.
 * Returns 0 and calls cb exactly once later (never from inside this call), unless
 * pskgw_http_cancel() is called first; or PSKGW_EINVAL / PSKGW_ENOMEM / PSKGW_ECLOSED and never
 * calls back. *req_out is valid until cb returns or cancel. */
int pskgw_http_post(pskgw_http_t *h, const char *url, const char *auth, const char *body,
                    uint32_t timeout_ms, pskgw_http_cb cb, void *arg, pskgw_http_req_t **req_out);

/* Abort a transfer synchronously; its callback never runs. Safe from any callback. */
void pskgw_http_cancel(pskgw_http_req_t *req);

/* Number of transfers started and not yet finished. */
size_t pskgw_http_active(const pskgw_http_t *h);

/* Abort every transfer (no callbacks), clean up curl, close the uv handles; cb(arg) runs when
 * the last handle is closed and the object is freed. */
void pskgw_http_close(pskgw_http_t *h, void (*cb)(void *arg), void *arg);

#endif
