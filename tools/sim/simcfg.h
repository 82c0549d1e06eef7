/* pskgw-sim configuration: command-line flags, parsed without side effects. */
#ifndef PSKGW_TOOLS_SIM_SIMCFG_H
#define PSKGW_TOOLS_SIM_SIMCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/rotkeys/rotkeys.h"

#define PSKGW_SIM_MAX_DOMAINS  16
#define PSKGW_SIM_MAX_DISABLED 256

/* Faults applied to the three API calls (never to /_sim/). Rates are fractions in [0, 1]. The
 * *_next counters make the next N calls fail deterministically, before the random rates.
 * drop / ratelimit / error / error_body replace the answer; extra_fields and truncate change a
 * 200 answer (their *_next count only calls that had one). */
typedef struct {
    unsigned latency_ms;
    unsigned jitter_ms;
    double error_rate;
    unsigned error_status; /* 100..599 */
    double ratelimit_rate;
    unsigned retry_after_s;
    double drop_rate;
    unsigned error_next;
    unsigned ratelimit_next;
    unsigned drop_next;
    double extra_fields_rate; /* 200 answers gain unknown fields (top level and nested) */
    unsigned extra_fields_next;
    double error_body_rate; /* answered 200 with an error body instead of the answer */
    unsigned error_body_next;
    double truncate_rate; /* 200 answers cut short (invalid JSON, Content-Length true) */
    unsigned truncate_next;
    unsigned tls_handshake_delay_ms; /* HTTPS: each TLS handshake waits this long */
    unsigned token_early_expiry_ms;  /* tokens issued die after this (their exp says more); 0 off */
} pskgw_sim_faults_t;

typedef struct {
    char *key;    /* APIKey, borrowed from argv */
    char *secret; /* APISecret, borrowed from argv */
    bool bearer;  /* --auth-header bearer: the domain sends "Bearer <token>" (--strict checks) */
} pskgw_sim_domain_t;

typedef struct {
    const char *host; /* listen host, borrowed from argv or static */
    size_t host_len;  /* host is not NUL-terminated when it came from HOST:PORT */
    uint16_t port;
    pskgw_sim_domain_t domains[PSKGW_SIM_MAX_DOMAINS];
    size_t ndomains;
    const char *seed;
    unsigned token_ttl_s;
    uint32_t devices;
    uint32_t disabled_every;
    uint32_t no_e2e_every;
    pskgw_rot_v2_layout_t e2e_v2_layout;       /* --e2e-v2-layout (default seed) */
    char disabled[PSKGW_SIM_MAX_DISABLED][29]; /* upper-case hex identities */
    size_t ndisabled;
    pskgw_sim_faults_t faults;
    bool tls;
    const char *cert_out;
    bool verbose;
    bool strict; /* --strict (or PSKGW_SIM_STRICT=1): refuse what a careful service refuses */
    bool help;
    bool show_device;           /* --show-device N: print device N's credentials and exit */
    unsigned latency_jitter_ms; /* --latency-jitter-ms J: latency_ms +/- J (folded into faults) */
    uint32_t show_index;
} pskgw_sim_cfg_t;

/* Parse argv (does not modify it). On error writes a one-line message into err and returns
 * PSKGW_EINVAL; `--help` sets cfg->help and returns 0. */
int pskgw_sim_cfg_parse(pskgw_sim_cfg_t *cfg, int argc, char **argv, char *err, size_t err_cap);

/* The --help text. */
const char *pskgw_sim_cfg_usage(void);

#endif
