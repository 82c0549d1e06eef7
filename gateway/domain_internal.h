/* Inside a domain: shared by domain.c (wiring) and domain_metrics.c (rendering). */
#ifndef PSKGW_GATEWAY_DOMAIN_INTERNAL_H
#define PSKGW_GATEWAY_DOMAIN_INTERNAL_H

#include "e2e/e2e.h"
#include "e2e/replay.h"
#include "gateway/domain.h"
#include "gateway/listen_api.h"
#include "keycache/keycache.h"
#include "sinks/sinkset.h"
#include "upstream/upstream.h"

struct lctx {
    pskgw_domain_t *d;
    pskgw_listener_t *l; /* NULL once its close started */
    const pskgw_config_listener_t *cfg;
    int ack;
};

struct pskgw_domain {
    uv_loop_t *loop;
    const pskgw_config_domain_t *cfg;
    int worker;
    pskgw_e2e_mode_t mode;
    pskgw_upstream_t *up;
    pskgw_keycache_t *psk_cache;
    pskgw_keycache_t *e2e_cache;
    pskgw_e2e_t *e2e;
    pskgw_e2e_replay_t *replay; /* NULL with e2e = "off" */
    pskgw_sinkset_t *sinks;
    struct lctx *lis;
    size_t nlis;
    pskgw_psk_resolver_t resolver;
    pskgw_e2e_params_source_t e2e_src;
    pskgw_domain_counters_t c;
    uint64_t drops_seen;   /* sum of the sinks' dropped counters at the last health check */
    uint64_t last_drop_ms; /* uv_now() when that sum last grew; 0: never */
    int closing;
    size_t pending; /* asynchronous closes outstanding in the current shutdown phase */
    void (*close_cb)(void *arg);
    void *close_arg;
};

#endif
