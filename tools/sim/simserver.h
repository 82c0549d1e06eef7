/* pskgw-sim HTTP(S) server: the security service's three calls, faults and /_sim/ control.
 *
 * libmicrohttpd in thread-per-connection mode (an internal poll thread accepts; each connection
 * has its own thread), so added latency never serialises requests. Shared state (faults, RNG,
 * token epoch, wolfCrypt calls) is guarded by the server's mutex; statistics by their own.
 *
 * Answers (Content-Type: application/json; errors are {"error":"<text>"}):
 *   POST /v1/authenticate   {"APIKey","APISecret"} -> 200 {"AuthToken","RefreshToken"}; 401 bad
 *                           credentials; 400 malformed
 *   POST /v1/GetPSK         {"KeyID": hex, "KeyLength": "128"|"256"|128|256 (default 128)}
 *                           -> 200 {"Key": base64, "ROTPublicUID"}
 *   POST /v1/GetE2EDecryptionParameters, POST /v1/e2e/uplink/protectionparameters/get
 *                           {"EncryptedHeader": 32 or 22 hex} -> 200 {"Key","Nonce",
 *                           "MACLength","CipherSuite","ROTPublicUID"}
 *   401 missing/invalid/expired token ("Authorization: <token>" or "Bearer <token>"),
 *   400 malformed JSON, missing or mistyped field, bad hex; 404 unknown identity or device;
 *   403 disabled; 413 body over PSKGW_SIM_MAX_BODY; 405 wrong method; with cfg->strict also
 *   415 (Content-Type), 400 (unknown request field, KeyLength not "128"/"256") and 401 (an
 *   Authorization form other than the domain's): see simapi.h.
 *   Faults (cfg->faults, changed by POST /_sim/faults): drop, 429, error status, 200 with an
 *   error body, latency, extra fields and truncation of 200 answers, early token expiry, and
 *   with TLS a delay in every handshake (a GnuTLS post-ClientHello hook per connection).
 *   /_sim/stats, /_sim/reset, /_sim/faults, /_sim/expire-tokens: see simcfg.c's usage text.
 */
#ifndef PSKGW_TOOLS_SIM_SIMSERVER_H
#define PSKGW_TOOLS_SIM_SIMSERVER_H

#include <stddef.h>

#include "tools/sim/simcfg.h"

#define PSKGW_SIM_MAX_BODY (16 * 1024)

typedef struct pskgw_sim_server pskgw_sim_server_t;

/* cfg is borrowed and must outlive the server. key_pem/cert_pem (both or neither) select HTTPS;
 * they are borrowed until pskgw_sim_server_free(). PSKGW_ENOMEM, PSKGW_EIO. */
int pskgw_sim_server_new(const pskgw_sim_cfg_t *cfg, const char *key_pem, const char *cert_pem,
                         pskgw_sim_server_t **out);

/* Bind and start serving; writes the base URL ("http://127.0.0.1:PORT") into url. Start-up
 * only (main thread): on failure it has already told stderr why.
 * PSKGW_EINVAL (host does not resolve), a translated errno (socket/bind/listen), PSKGW_EIO
 * (libmicrohttpd did not start), PSKGW_ETOOBIG (url). */
int pskgw_sim_server_start(pskgw_sim_server_t *s, char *url, size_t url_cap);

/* Wake requests waiting out a latency fault, stop the daemon (joins every connection thread),
 * free everything. NULL accepted. */
void pskgw_sim_server_free(pskgw_sim_server_t *s);

#endif
