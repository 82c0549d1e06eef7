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
 *   anything else -> 404; methods other than GET/HEAD -> 405
 */
#ifndef PSKGW_GATEWAY_ADMIN_H
#define PSKGW_GATEWAY_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSKGW_ADMIN_STALL_MS 10000

typedef struct pskgw_admin pskgw_admin_t;

/* Starts listening on address:port (port 0 picks a free port, see pskgw_admin_port()).
 * Errors: PSKGW_EINVAL (bad address), PSKGW_EEXISTS (port in use or bind failed), PSKGW_ENOMEM.
 * The caller owns *out and frees it with pskgw_admin_free(). The stall limit of /health counts
 * from here. */
int pskgw_admin_start(const char *address, uint16_t port, pskgw_admin_t **out);
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
