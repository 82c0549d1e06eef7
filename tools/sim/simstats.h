/* pskgw-sim call statistics, shared by the connection threads (guarded by an internal mutex).
 *
 * JSON form (GET /_sim/stats):
 *   {"calls":{"authenticate":N,"get_psk":N,"e2e_params":N},
 *    "status":{"200":N,"401":N,...},
 *    "by_identity":{"<KEYID UPPER HEX>":N,...},
 *    "by_key_identity":{"<ENCRYPTEDHEADER UPPER HEX>":N,...},
 *    "dropped":N,"tokens_issued":N,"in_flight":N,"max_in_flight":N,
 *    "auth_header":{"raw":N,"bearer":N,"none":N},
 *    "faults":{"extra_fields":N,"error_body":N,"truncated":N,"slow_handshakes":N},
 *    "strict_refused":N}
 * "auth_header" counts the Authorization form of every GetPSK and E2E call that arrives
 * ("Bearer <token>", a bare "<token>", or no header); "faults" the answers (or TLS handshakes)
 * a fault changed; "strict_refused" the calls --strict refused.
 * Every API call that arrives is counted (also those a fault answers); "status" counts the
 * answers by HTTP status; "dropped" the connections closed without an answer. The two maps keep
 * at most PSKGW_SIM_STATS_MAX_KEYS keys each; further new keys are counted under "_other".
 */
#ifndef PSKGW_TOOLS_SIM_SIMSTATS_H
#define PSKGW_TOOLS_SIM_SIMSTATS_H

#include <jansson.h>

#define PSKGW_SIM_STATS_MAX_KEYS 100000

typedef enum {
    PSKGW_SIM_OP_AUTH = 0,
    PSKGW_SIM_OP_PSK = 1,
    PSKGW_SIM_OP_E2E = 2,
    PSKGW_SIM_OP_COUNT_
} pskgw_sim_op_t;

typedef enum {
    PSKGW_SIM_AUTH_NONE = 0,
    PSKGW_SIM_AUTH_RAW,
    PSKGW_SIM_AUTH_BEARER,
    PSKGW_SIM_AUTH_COUNT_
} pskgw_sim_auth_form_t;

typedef enum {
    PSKGW_SIM_FAULT_EXTRA_FIELDS = 0,
    PSKGW_SIM_FAULT_ERROR_BODY,
    PSKGW_SIM_FAULT_TRUNCATED,
    PSKGW_SIM_FAULT_SLOW_HANDSHAKE,
    PSKGW_SIM_FAULT_COUNT_
} pskgw_sim_fault_stat_t;

typedef struct pskgw_sim_stats pskgw_sim_stats_t;

/* PSKGW_ENOMEM. */
int pskgw_sim_stats_new(pskgw_sim_stats_t **out);
void pskgw_sim_stats_free(pskgw_sim_stats_t *s);

/* Count one call; key (upper-cased here, may be NULL) is the KeyID or EncryptedHeader. */
void pskgw_sim_stats_call(pskgw_sim_stats_t *s, pskgw_sim_op_t op, const char *key, size_t len);
void pskgw_sim_stats_status(pskgw_sim_stats_t *s, unsigned status);
void pskgw_sim_stats_dropped(pskgw_sim_stats_t *s);
void pskgw_sim_stats_token(pskgw_sim_stats_t *s);
void pskgw_sim_stats_auth_form(pskgw_sim_stats_t *s, pskgw_sim_auth_form_t form);
void pskgw_sim_stats_fault(pskgw_sim_stats_t *s, pskgw_sim_fault_stat_t fault);
void pskgw_sim_stats_strict_refused(pskgw_sim_stats_t *s);
/* Requests being processed (call enter before, leave after). */
void pskgw_sim_stats_enter(pskgw_sim_stats_t *s);
void pskgw_sim_stats_leave(pskgw_sim_stats_t *s);
void pskgw_sim_stats_reset(pskgw_sim_stats_t *s);

/* A new JSON object (caller owns the reference), or NULL when out of memory. */
json_t *pskgw_sim_stats_json(pskgw_sim_stats_t *s);

#endif
