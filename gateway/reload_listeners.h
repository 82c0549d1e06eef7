/* Reload (gateway/reload.c), the listeners' part: which listeners a new configuration keeps,
 * starts and closes, and the settings a kept one takes (listen_reload.h). Module-internal to
 * reload.c: the contract of a reload is in reload.h. */
#ifndef PSKGW_GATEWAY_RELOAD_LISTENERS_H
#define PSKGW_GATEWAY_RELOAD_LISTENERS_H

#include "config/config.h"
#include "gateway/domain_internal.h"

/* The running listener of d that ncfg's listener l keeps (same name, protocol, address, port,
 * framing and forwarding), or NULL (l is new or needs a new socket). */
struct lctx *pskgw_reload_find_listener(pskgw_domain_t *d, const pskgw_config_listener_t *l);

/* next[0..ncfg->nlisteners): the kept listeners (not yet repointed) and ones started for ncfg.
 * On error the started ones are retired again and nothing changed. */
int pskgw_reload_build_listeners(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg,
                                 struct lctx **next);

/* ctxs[i]: the new DTLS context of kept listener next[i] (pskgw_listener_dtls_make), NULL for one
 * started by this reload. On error (logged) every context made is freed. */
int pskgw_reload_prepare_dtls(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg,
                              struct lctx **next, pskgw_dtls_ctx_t **ctxs);

/* The commit: listeners of d not in next close (a replaced one is logged as such), the ones in
 * next read ncfg: ack, admission limits, their DTLS context (ctxs[i] taken, set NULL) and nk's
 * ticket keys. */
void pskgw_reload_commit_listeners(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg,
                                   struct lctx **next, pskgw_dtls_ctx_t **ctxs,
                                   pskgw_ticket_keys_t *nk);

#endif
