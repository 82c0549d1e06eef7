/* The admin endpoint: Prometheus metrics and health over HTTP (libmicrohttpd).
 *
 * libmicrohttpd answers from its own thread; it never touches the loop's state. The loop
 * renders the metrics text (gateway/metrics.c) once a second and publishes a copy here under a
 * mutex, so a scrape costs the loop nothing and cannot block it.
 *
 *   GET /metrics  -> 200 text/plain; version=0.0.4, the last published text
 *   GET /healthz  -> 200 "ok" while the published state is healthy, 503 otherwise
 *   anything else -> 404; methods other than GET/HEAD -> 405
 */
#ifndef PSKGW_GATEWAY_ADMIN_H
#define PSKGW_GATEWAY_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pskgw_admin pskgw_admin_t;

/* Starts listening on address:port (port 0 picks a free port, see pskgw_admin_port()).
 * Errors: PSKGW_EINVAL (bad address), PSKGW_EEXISTS (port in use or bind failed), PSKGW_ENOMEM.
 * The caller owns *out and frees it with pskgw_admin_free(). */
int pskgw_admin_start(const char *address, uint16_t port, pskgw_admin_t **out);
/* The bound port. */
uint16_t pskgw_admin_port(const pskgw_admin_t *admin);
/* Replace the metrics text (copied) and the health state. PSKGW_ENOMEM leaves the old text. */
int pskgw_admin_publish(pskgw_admin_t *admin, const char *text, size_t len, bool healthy);
/* Stops the daemon (joins its thread) and frees everything. NULL is accepted. */
void pskgw_admin_free(pskgw_admin_t *admin);

#endif
