/* The admin endpoint: Prometheus metrics, liveness and readiness over HTTP (libmicrohttpd).
 *
 * libmicrohttpd answers from its own thread; it never touches the loop's state. The loop
 * renders the metrics text (gateway/metrics.c) and judges readiness (gateway/health.h) once a
 * second and publishes copies here under a mutex, so a request costs the loop nothing and
 * cannot block it.
 *
 *   GET /metrics  -> 200 text/plain; version=0.0.4, the last published text
 *   GET /health   -> liveness: 200 "ok" while the loop turns (it published, or called
 *                    pskgw_admin_beat(), within the stall limit, PSKGW_ADMIN_STALL_MS by
 *                    default), else 503 "loop stalled: ..."; nothing else is looked at
 *   GET /healthz  -> the same as /health (kept for probes written before /health and /ready)
 *   GET /ready    -> readiness: 200 when the last published state is ready, else 503; the body
 *                    is the published JSON (application/json; see pskgw_health_judge()), and
 *                    {"ready":false,"status":"starting",...} with 503 until the first publish
 *   /admin/...    -> operator actions (see "Admin routes" below)
 *   anything else -> 404; methods other than GET/HEAD -> 405
 *
 * Admin routes: every path under /admin/ needs "Authorization: Bearer <token>" when a token is
 * set (compared in constant time); without it, or with another token, 401 and nothing is done.
 * An authorized request is handed to the loop: the MHD connection is suspended, wake() is
 * called (from MHD's thread: it may only wake the loop, e.g. uv_async_send()), and the loop
 * calls pskgw_admin_serve(), whose handler answers each request with pskgw_admin_reply(). A
 * request still waiting at pskgw_admin_free() gets 503. The admin module itself knows no route:
 * the handler answers 404 to what it does not know.
 */
#ifndef PSKGW_GATEWAY_ADMIN_H
#define PSKGW_GATEWAY_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSKGW_ADMIN_STALL_MS 10000

typedef struct pskgw_admin pskgw_admin_t;
/* One authorized /admin/ request, borrowed by the handler until it calls pskgw_admin_reply()
 * (exactly once, from the handler or later on the loop's thread). */
typedef struct pskgw_admin_req pskgw_admin_req_t;

/* Called from MHD's thread when a request waits for pskgw_admin_serve(). */
typedef void (*pskgw_admin_wake_cb)(void *arg);
/* Called on the loop's thread by pskgw_admin_serve(), once per waiting request. */
typedef void (*pskgw_admin_handler_cb)(void *arg, pskgw_admin_req_t *req);

typedef struct {
    const char *token; /* bearer token of /admin/ (copied into common/secmem); NULL: none */
    size_t token_len;
    pskgw_admin_wake_cb wake; /* NULL: every /admin/ route answers 503 */
    void *wake_arg;
} pskgw_admin_opts_t;

/* Starts listening on address:port (port 0 picks a free port, see pskgw_admin_port()).
 * Errors: PSKGW_EINVAL (bad address), PSKGW_EEXISTS (port in use or bind failed), PSKGW_ENOMEM.
 * The caller owns *out and frees it with pskgw_admin_free(). The stall limit of /health counts
 * from here. */
int pskgw_admin_start(const char *address, uint16_t port, pskgw_admin_t **out);
/* The same with a token and a wake callback (opts may be NULL: no token, no admin routes). */
int pskgw_admin_start_opts(const char *address, uint16_t port, const pskgw_admin_opts_t *opts,
                           pskgw_admin_t **out);
/* Reload: moves the endpoint to address:port (port 0: a free port). The new address is bound
 * first: on error (PSKGW_EINVAL, PSKGW_EEXISTS) nothing changed and the endpoint stays where it
 * was. On success the old address stops accepting at once; connections already open there are
 * answered until pskgw_admin_reap() stops them, PSKGW_ADMIN_MOVE_GRACE_MS later (an /admin/
 * request of theirs still waiting for the loop then gets 503). Published state, token and
 * waiting requests are kept. Loop's thread. */
#define PSKGW_ADMIN_MOVE_GRACE_MS 1000
int pskgw_admin_rebind(pskgw_admin_t *admin, const char *address, uint16_t port);
/* Loop's thread, e.g. once a second: stops the address a rebind moved away from once its grace
 * has passed. NULL is accepted. */
void pskgw_admin_reap(pskgw_admin_t *admin);
/* Replace the bearer token (copied into don't-dump memory, common/secmem; NULL: none asked) for
 * the requests from now on (reload); the old copy is wiped. 0 or PSKGW_ENOMEM (the old token
 * kept). */
int pskgw_admin_set_token(pskgw_admin_t *admin, const char *token, size_t len);
/* Loop's thread: no more wake() calls from now on (new /admin/ requests get 503); call it
 * before the handle that wake() signals is closed. Waiting requests are served or answered
 * 503 by pskgw_admin_free(). */
void pskgw_admin_stop_routes(pskgw_admin_t *admin);
/* Loop's thread: hands every waiting /admin/ request to handler. */
void pskgw_admin_serve(pskgw_admin_t *admin, pskgw_admin_handler_cb handler, void *arg);
/* The request: "GET" or "POST", the path (e.g. "/admin/sessions"), a query argument (NULL when
 * absent) and the peer ("127.0.0.1:40112"). Valid until pskgw_admin_reply(). */
const char *pskgw_admin_req_method(const pskgw_admin_req_t *req);
const char *pskgw_admin_req_path(const pskgw_admin_req_t *req);
const char *pskgw_admin_req_arg(const pskgw_admin_req_t *req, const char *name);
const char *pskgw_admin_req_peer(const pskgw_admin_req_t *req);
/* Answers the request with status and a JSON body (copied; NULL: "{}"); req is gone after. */
void pskgw_admin_reply(pskgw_admin_req_t *req, unsigned status, const char *json);
/* Constant-time comparison of a presented bearer token with the expected one (pure). */
bool pskgw_admin_token_ok(const char *expected, size_t expected_len, const char *presented);
/* The bound port. */
uint16_t pskgw_admin_port(const pskgw_admin_t *admin);
/* Replace the metrics text (copied), the readiness and its JSON body (copied, NUL-terminated),
 * and beat (see /health). PSKGW_ENOMEM leaves everything as it was (no beat). */
int pskgw_admin_publish(pskgw_admin_t *admin, const char *text, size_t len, bool ready,
                        const char *ready_json);
/* The loop is alive (for a loop that could not publish, e.g. out of memory). */
void pskgw_admin_beat(pskgw_admin_t *admin);
/* How long /health tolerates no beat (default PSKGW_ADMIN_STALL_MS). */
void pskgw_admin_set_stall_ms(pskgw_admin_t *admin, uint64_t ms);
/* Stops the daemon (joins its thread) and frees everything. NULL is accepted. */
void pskgw_admin_free(pskgw_admin_t *admin);

#endif
