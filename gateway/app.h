/* The gateway process: one libuv loop running every configured domain until SIGTERM/SIGINT.
 *
 * pskgw_app_run() builds each domain (gateway/domain.h), starts the admin endpoint when the
 * configuration has one, tells systemd it is ready (sd_notify READY=1; WATCHDOG=1 every second
 * when the unit sets WatchdogSec, every half WatchdogSec when that is shorter), renders the
 * metrics and readiness (gateway/health.h) at the same pace, reopens file sinks on SIGHUP, and on SIGTERM/SIGINT shuts down in order: listeners, E2E requests, sinks (flushed or
 * spooled), caches, upstream clients; the loop ends with every handle closed.
 */
#ifndef PSKGW_GATEWAY_APP_H
#define PSKGW_GATEWAY_APP_H

#include "config/config.h"

typedef struct {
    int worker; /* -1: single process; N >= 0: worker N of several (SO_REUSEPORT); worker N's
                   admin endpoint listens on the configured port + N (port 0: any) */
} pskgw_app_opts_t;

/* Runs until a stop signal. 0 after a clean stop; PSKGW_ECONFIG / PSKGW_EIO / ... when start-up
 * failed (logged) or the shutdown did not release everything. cfg is borrowed for the run. */
int pskgw_app_run(const pskgw_config_t *cfg, const pskgw_app_opts_t *opts);

#endif
