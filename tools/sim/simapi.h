/* pskgw-sim: the security service's three calls, without any I/O.
 *
 * Given the endpoint, the Authorization header and the request body, produce the status and the
 * JSON answer exactly as shared/spec/security-service-api.md describes (see simserver.h for the
 * list). The HTTP glue, faults and /_sim/ live in simserver.c; this part is what the fuzz target
 * fuzz/fuzz_sim_api.c drives.
 *
 * Thread-safe: token state and every wolfCrypt call (built SINGLE_THREADED) are under the
 * object's mutex. The object owns its token secret (wiped on free); cfg and stats are borrowed
 * and must outlive it.
 */
#ifndef PSKGW_TOOLS_SIM_SIMAPI_H
#define PSKGW_TOOLS_SIM_SIMAPI_H

#include <stddef.h>
#include <jansson.h>
#include <stdint.h>

#include "tools/sim/simcfg.h"
#include "tools/sim/simstats.h"

typedef enum {
    PSKGW_SIM_EP_NONE = 0,
    PSKGW_SIM_EP_AUTH, /* POST /v1/authenticate */
    PSKGW_SIM_EP_PSK,  /* POST /v1/GetPSK */
    PSKGW_SIM_EP_E2E,  /* POST /v1/GetE2EDecryptionParameters and its ubxlib alias */
} pskgw_sim_ep_t;

/* An answer. body is a NUL-terminated heap JSON text (it may hold a key or a token):
 * release it with pskgw_sim_reply_clear(), which wipes it. */
typedef struct {
    unsigned status;
    char *body;
    size_t len;
} pskgw_sim_reply_t;

typedef struct pskgw_sim_api pskgw_sim_api_t;

/* The endpoint of a request path (exact match), PSKGW_SIM_EP_NONE for others. */
pskgw_sim_ep_t pskgw_sim_api_endpoint(const char *path);
/* The statistics operation of an endpoint (not NONE). */
pskgw_sim_op_t pskgw_sim_api_op(pskgw_sim_ep_t ep);

/* PSKGW_ENOMEM, PSKGW_EIO (no randomness for the token secret). */
int pskgw_sim_api_new(const pskgw_sim_cfg_t *cfg, pskgw_sim_stats_t *stats, pskgw_sim_api_t **out);
void pskgw_sim_api_free(pskgw_sim_api_t *a);

/* Count one arriving call in the stats, with its KeyID / EncryptedHeader when the body has one. */
void pskgw_sim_api_count(pskgw_sim_api_t *a, pskgw_sim_ep_t ep, const char *body, size_t len);

/* Answer one call. auth is the Authorization header value or NULL ("<token>" or
 * "Bearer <token>"); body need not be NUL-terminated; now_ms is the wall clock in ms.
 * Counts issued tokens in the stats (not the status: the caller does once it answered).
 * 0, or PSKGW_ENOMEM when no reply could be built (*reply is then empty). */
int pskgw_sim_api_call(pskgw_sim_api_t *a, pskgw_sim_ep_t ep, const char *auth, const char *body,
                       size_t len, uint64_t now_ms, pskgw_sim_reply_t *reply);

/* Every token issued so far becomes invalid. 0 or PSKGW_EIO. */
int pskgw_sim_api_expire_tokens(pskgw_sim_api_t *a);

/* Fill *reply with status and {"error": msg}. 0 or PSKGW_ENOMEM. */
int pskgw_sim_reply_error(pskgw_sim_reply_t *reply, unsigned status, const char *msg);
/* Fill *reply with status and the serialised json (consumed; NULL -> PSKGW_ENOMEM). */
int pskgw_sim_reply_json(pskgw_sim_reply_t *reply, unsigned status, json_t *json);
/* Wipe and free the body; *reply is zeroed. NULL accepted. */
void pskgw_sim_reply_clear(pskgw_sim_reply_t *reply);

#endif
