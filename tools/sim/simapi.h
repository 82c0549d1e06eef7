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

/* One call as it arrived. */
typedef struct {
    const char *auth;         /* Authorization header value or NULL */
    const char *content_type; /* Content-Type header value or NULL */
    const char *body;         /* need not be NUL-terminated */
    size_t len;
    uint64_t now_ms;        /* wall clock in ms */
    unsigned token_life_ms; /* authenticate: 0, or how long the token really lives (fault) */
} pskgw_sim_call_t;

/* Answer one call. The Authorization header is "<token>" or "Bearer <token>" (any case,
 * spaces trimmed), unless cfg->strict: then exactly the form of the token's domain
 * (--auth-header), and also refused are a Content-Type other than application/json (415),
 * request fields other than the call's own and a KeyLength other than the strings "128" and
 * "256" (400); each such refusal is counted as strict_refused. Counts issued tokens in the stats
 * (not the status: the caller does once it answered).
 * 0, or PSKGW_ENOMEM when no reply could be built (*reply is then empty). */
int pskgw_sim_api_handle(pskgw_sim_api_t *a, pskgw_sim_ep_t ep, const pskgw_sim_call_t *call,
                         pskgw_sim_reply_t *reply);

/* pskgw_sim_api_handle() with Content-Type application/json and no token fault. */
int pskgw_sim_api_call(pskgw_sim_api_t *a, pskgw_sim_ep_t ep, const char *auth, const char *body,
                       size_t len, uint64_t now_ms, pskgw_sim_reply_t *reply);

/* The form of an Authorization header value: NONE (NULL or empty), BEARER ("Bearer " prefix,
 * any case), RAW (anything else). */
pskgw_sim_auth_form_t pskgw_sim_api_auth_form(const char *auth);

/* Faults on a 200 answer holding a JSON object. add_extra_fields: the object gains unknown
 * fields at the top level and nested ones inside them ({"Extra": 1, "Meta": {...}, "Notice":
 * null}); 0, PSKGW_EINVAL (not a 200 JSON object: unchanged), PSKGW_ENOMEM (unchanged).
 * truncate: the text is cut to half its length (at least one byte shorter), invalid JSON. */
int pskgw_sim_reply_add_extra_fields(pskgw_sim_reply_t *reply);
void pskgw_sim_reply_truncate(pskgw_sim_reply_t *reply);

/* Every token issued so far becomes invalid. 0 or PSKGW_EIO. */
int pskgw_sim_api_expire_tokens(pskgw_sim_api_t *a);

/* Fill *reply with status and {"error": msg}. 0 or PSKGW_ENOMEM. */
int pskgw_sim_reply_error(pskgw_sim_reply_t *reply, unsigned status, const char *msg);
/* Fill *reply with status and the serialised json (consumed; NULL -> PSKGW_ENOMEM). */
int pskgw_sim_reply_json(pskgw_sim_reply_t *reply, unsigned status, json_t *json);
/* Wipe and free the body; *reply is zeroed. NULL accepted. */
void pskgw_sim_reply_clear(pskgw_sim_reply_t *reply);

#endif
