/* pskgw_handover: restart and upgrade without a handshake (process-wide, one loop thread).
 *
 * At start, pskgw_handover_init() opens the state file of the previous process (statefile.h)
 * and keeps its entries in memory; each UDP listener takes its own entries when it starts
 * (pskgw_listen_handover_import, listen_internal.h) and pskgw_handover_done() drops what no
 * listener took. At stop (SIGTERM, or `pskgw ctl handover`), pskgw_handover_arm() makes
 * listeners that close export their established sessions (pskgw_handover_put) instead of
 * sending close_notify, and pskgw_handover_save() writes them once every domain has closed.
 *
 * The state directory is $STATE_DIRECTORY (systemd's StateDirectory=; the first path), else the
 * first domain's `state_dir`, else /var/lib/pskgw. When it does not exist, hand-over is off and
 * sessions end at a stop as before (one log line says so). The file is sessions.state, or
 * sessions-<worker>.state for a worker. */
#ifndef PSKGW_GATEWAY_HANDOVER_H
#define PSKGW_GATEWAY_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* config_dir: the first domain's state_dir or NULL; kek: cache.kek_file's key or NULL. Logs
 * what it found (count, or why a file was refused). Never fails the start: 0 always. */
int pskgw_handover_init(const char *config_dir, const uint8_t *kek, int worker);
/* Hand-over is possible (a state directory and a key). */
bool pskgw_handover_enabled(void);
/* Listeners closing from now on export their sessions. */
void pskgw_handover_arm(void);
bool pskgw_handover_armed(void);
/* One session (rec: the listener's record, borrowed) for the next process. 0 or <0. */
int pskgw_handover_put(const char *domain, const char *listener, const char *peer,
                       const uint8_t *rec, size_t len);
/* Calls cb for each entry of (domain, listener) the previous process left, then forgets them. */
typedef void (*pskgw_handover_take_cb)(void *arg, const char *peer, const uint8_t *rec, size_t len);
size_t pskgw_handover_take(const char *domain, const char *listener, pskgw_handover_take_cb cb,
                           void *arg);
/* After start-up: drops the entries no listener took (wiped). */
void pskgw_handover_done(void);
/* Writes the exported sessions (when armed and any), logs, wipes everything. */
void pskgw_handover_save(void);

#endif
