/* Reload: read the configuration again and apply it to the running domains (SIGHUP, systemctl
 * reload), and the tolerant load that start-up and reload share.
 *
 * What a reload applies to a running domain (the domain is matched by its name):
 *   - sinks: one whose settings are all unchanged goes on as it is (queue, spool, connection,
 *     in-flight deliveries); one added, or changed in any setting, is made new; one removed or
 *     changed stops taking messages and delivers (or spools) what it holds before it closes:
 *     every message goes to the sinks in force when it was submitted;
 *   - listeners (matched by name): one kept keeps its socket and its sessions (ack applies
 *     in place); one added is started, one removed is closed (its sessions end), one whose
 *     proto/address/port/framing/forwarding changed is replaced (started new, then the old one
 *     closed, logged as replaced; on the same address and port the new one cannot bind while
 *     the old one holds it: that domain's reload fails);
 *   - a kept listener takes the admission limits at once, and its DTLS/TLS settings (ciphers,
 *     timeouts, sizes, cookie period, CID, hibernation) through a new DTLS context: new
 *     handshakes use it, established sessions keep the context they were made with, the idle
 *     timeout and hibernation apply to them too (gateway/listen_reload.h); the lookup
 *     admission's bounds apply to listeners started from now on (a warning says so);
 *   - e2e_replay (flag/reject): at once;
 *   - api or cache settings changed: a new upstream client and new caches serve every lookup
 *     from now on; the previous ones finish the lookups under way (polled every 100 ms: no
 *     cache flight left), then close (counted in the domain's retiring closes);
 *   - e2e mode/layout/header case, replay window/entries: not applied to a running domain (a
 *     warning names them): restart the service to apply them.
 * A domain that appears is started, one that disappears is drained (listeners closed, sinks
 * flushed or spooled) and stopped.
 */
#ifndef PSKGW_GATEWAY_RELOAD_H
#define PSKGW_GATEWAY_RELOAD_H

#include "config/config.h"
#include "gateway/domain.h"

#include <stdbool.h>
#include <stddef.h>

/* Load files[0..n-1]. Every error is logged as "file:line: path: message". When the files do
 * not load together, each file is loaded alone: the ones that fail are marked in broken[] (n
 * entries, caller memory) and the others are loaded together again.
 *   0              *out = the configuration of the files not marked broken (at least one)
 *   PSKGW_ECONFIG  no file loads, or the good ones do not load together (a conflict between
 *                  files: duplicate domain names, ports, process-wide groups); *out untouched
 *   PSKGW_ENOMEM   out of memory */
int pskgw_reload_load(const char *const *files, size_t n, pskgw_config_t **out, bool *broken);

/* The files a reload reads: files[0..nfiles-1], then the *.conf files of each of dirs (sorted
 * by name, hidden ones skipped), listed again now (a file added to or removed from a directory
 * adds or removes its domain). *out: heap array of heap strings, freed with
 * pskgw_reload_files_free(). 0, PSKGW_EIO (a directory cannot be read: logged), PSKGW_ENOMEM,
 * PSKGW_ENOTFOUND (no file at all). */
int pskgw_reload_files(const char *const *files, size_t nfiles, const char *const *dirs,
                       size_t ndirs, char ***out, size_t *nout);
void pskgw_reload_files_free(char **files, size_t n);

/* Warns about the process-wide settings a reload does not apply (an admin group added or
 * removed) when they differ. */
void pskgw_reload_warn_global(const pskgw_config_t *o, const pskgw_config_t *n);

/* Applies the log group of n (level, format; the defaults info/text when no file has one) when
 * it differs from o's, each unless the command line fixed it (then a warning), and logs it. */
void pskgw_reload_log(const pskgw_config_t *o, const pskgw_config_t *n, bool cli_level,
                      bool cli_format);

/* Apply ncfg (the same domain name) to the running domain d, which borrows ncfg from now on.
 * All or nothing: on error (logged with the domain's name: a listener that cannot bind, a sink,
 * client or cache that cannot be made) d goes on unchanged with its previous configuration.
 * Errors: PSKGW_ECLOSED (d is closing), PSKGW_EBUSY (the previous api/cache change is still
 * finishing its lookups), PSKGW_ENOMEM, a listener's, sink set's, client's or cache's code. */
int pskgw_domain_reload(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg);

#endif
