/* The loop's side of the admin routes (gateway/admin.h hands each authorized /admin/ request
 * here, on the loop's thread). Every action is logged with the caller's address.
 *
 *   POST /admin/invalidate?domain=D&identity=HEX
 *        drops the PSK identity HEX (as the sessions and logs show it: KeyID hex) from domain D's
 *        PSK cache: layer 1, its negative entry and its Redis key (DEL); the next handshake of
 *        that identity asks the security service again. 200 {"domain":..,"identity":..,
 *        "invalidated":true}; 400 (a missing or non-hex argument), 404 (no such domain).
 *   POST /admin/reload
 *        the same as SIGHUP (the process signals itself): 202 {"reload":"requested"}; the
 *        outcome is logged and in pskgw_config_last_reload_successful.
 *   anything else under /admin/: 404 {"error":"no such route"}; a GET to a POST route: 405.
 *
 * Threading: the loop's thread only. domains is borrowed for the call.
 */
#ifndef PSKGW_GATEWAY_ADMIN_ROUTES_H
#define PSKGW_GATEWAY_ADMIN_ROUTES_H

#include "gateway/admin.h"
#include "gateway/domain.h"

#include <stddef.h>

/* Answers req (always, exactly once). */
void pskgw_admin_routes_handle(pskgw_domain_t *const *domains, size_t n, pskgw_admin_req_t *req);

/* An identity argument as the routes accept it: 1..256 hex digits (pure). */
bool pskgw_admin_identity_ok(const char *s);

#endif
