/* The loop's side of the admin routes (gateway/admin.h hands each authorized /admin/ request
 * here, on the loop's thread). Every action is logged with the caller's address.
 *
 *   POST /admin/invalidate?domain=D&identity=HEX
 *        drops the PSK identity HEX (as the sessions and logs show it: KeyID hex; either case:
 *        both spellings are dropped) from domain D's PSK cache: layer 1, its negative entry
 *        and its Redis key (DEL), and publishes it to every gateway sharing the cache's Redis
 *        (pskgw_keycache_broadcast(): they drop it from their layer 1); the next handshake of
 *        that identity asks the security service again. 200 {"domain":..,"identity":..,
 *        "invalidated":true,"published":B} (published false: Redis not connected, only this
 *        gateway dropped it); 400 (a missing or non-hex argument), 404 (no such domain).
 *   POST /admin/revoke?domain=D&identity=HEX
 *        the same, but a refusal is stored in place of the key (layer 1 and Redis, for the
 *        cache's negative_ttl_s), and the identity's sessions end: here at once, on the other
 *        gateways when the message reaches them (pskgw_admin_routes_remote()). 200 {"domain",
 *        "identity","revoked":true,"published":B,"closed":N (sessions closed here)}.
 *   GET /admin/sessions[?domain=D][&identity=HEX]
 *        established sessions (all domains, or D; all identities, or HEX, case ignored):
 *        200 {"sessions":[{"domain","listener","peer","identity","rot_public_uid","session_id",
 *        "age_s","idle_s","bytes_in","bytes_out"}]} (message bytes); 400, 404 as above.
 *   POST /admin/close?domain=D&identity=HEX
 *        ends every session of HEX in D (close_notify to established ones): 200 {"domain",
 *        "identity","closed":N}; 400, 404 as above.
 *   GET /admin/spools
 *        each sink of each domain: 200 {"spools":[{"domain","sink","spool_bytes","queue_depth",
 *        "spooled_total","replayed_total","dropped_total"}]} (spool_bytes: file size plus
 *        pending appends; the number of records in a spool is not tracked).
 *   POST /admin/reload
 *        the same as SIGHUP (the process signals itself): 202 {"reload":"requested"}; the
 *        outcome is logged and in pskgw_config_last_reload_successful.
 *   anything else under /admin/: 404 {"error":"no such route"}; the wrong method: 405.
 *
 * Threading: the loop's thread only. domains is borrowed for the call.
 */
#ifndef PSKGW_GATEWAY_ADMIN_ROUTES_H
#define PSKGW_GATEWAY_ADMIN_ROUTES_H

#include "gateway/admin.h"
#include "gateway/domain.h"
#include "keycache/keycache.h"

#include <stddef.h>

/* Answers req (always, exactly once). */
void pskgw_admin_routes_handle(pskgw_domain_t *const *domains, size_t n, pskgw_admin_req_t *req);

/* What /admin/invalidate (revoke false) and /admin/revoke do, for d (also used by a reload for
 * the identities newly listed in deny_file): 0 with *published (false: Redis not connected)
 * and *closed (sessions closed here, revoke only); PSKGW_EINVAL (no PSK cache, an identity
 * that is not 1..256 hex digits or too long for the cache). Not logged. */
int pskgw_admin_routes_revoke(pskgw_domain_t *d, const char *identity, bool revoke, bool *published,
                              int *closed);

/* A pskgw_keycache_remote_cb for the PSK cache of domain arg (a pskgw_domain_t *): another
 * gateway invalidated (logged) or revoked (the identity's sessions on this gateway's listeners
 * of the domain are closed; logged) an identity. */
void pskgw_admin_routes_remote(void *arg, pskgw_keycache_op_t op, const uint8_t *key, size_t len);

/* An identity argument as the routes accept it: 1..256 hex digits (pure). */
bool pskgw_admin_identity_ok(const char *s);

#endif
