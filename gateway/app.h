/* The gateway process: one libuv loop running every configured domain until SIGTERM/SIGINT.
 *
 * pskgw_app_run() builds each domain (gateway/domain.h), starts the admin endpoint when the
 * configuration has one, tells systemd it is ready (sd_notify READY=1; WATCHDOG=1 every second
 * when the unit sets WatchdogSec, every half WatchdogSec when that is shorter), renders the
 * metrics and readiness (gateway/health.h) at the same pace, and on SIGTERM/SIGINT shuts down in order: listeners, E2E requests,
 * sinks (flushed or spooled), caches, upstream clients; the loop ends with every handle closed.
 *
 * SIGHUP reloads: sd_notify "RELOADING=1" with MONOTONIC_USEC, the files are read again
 * (pskgw_reload_load: a file with errors is logged as file:line and its domain keeps running
 * as it was; errors between files refuse the whole reload), each running domain is reloaded in
 * place (gateway/reload.h says what applies to what), domains that appeared start, domains that
 * disappeared drain and stop, output files are reopened (log rotation); then "READY=1". The
 * admin endpoint and the log settings are not reloaded.
 */
#ifndef PSKGW_GATEWAY_APP_H
#define PSKGW_GATEWAY_APP_H

#include "config/config.h"

#include <stdbool.h>

typedef struct {
    const char *const *files; /* the configuration files, read again at each SIGHUP (borrowed
                                 for the run); nfiles 0: SIGHUP only reopens output files */
    size_t nfiles;
    const char *const *dirs; /* --config-dir directories, listed again at each SIGHUP */
    size_t ndirs;
    int worker; /* -1: single process; N >= 0: worker N of several (SO_REUSEPORT); worker N's
                   admin endpoint listens on the configured port + N (port 0: any) */
    bool cli_log_level;  /* --log-level given: a reload leaves the level alone */
    bool cli_log_format; /* --log-format given: a reload leaves the format alone */
} pskgw_app_opts_t;

/* Runs until a stop signal. 0 after a clean stop; PSKGW_ECONFIG / PSKGW_EIO / ... when start-up
 * failed (logged) or the shutdown did not release everything. Takes cfg (freed by the call, once
 * no domain uses it: a reload replaces it). */
int pskgw_app_run(pskgw_config_t *cfg, const pskgw_app_opts_t *opts);

#endif
