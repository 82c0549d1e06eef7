/* A reload's limits for a running listener: contract in listen_reload.h. */
#include "gateway/listen_reload.h"
#include "gateway/listen_internal.h"

void pskgw_listener_set_limits(pskgw_listener_t *l, const pskgw_listener_limits_t *lim)
{
    uint64_t period_ms = (uint64_t)(lim->fail_period_s ? lim->fail_period_s : 300) * 1000;

    pskgw_listener_set_session_limits(l, lim->max_sessions, lim->max_pending_handshakes);
    /* the listener's own encoding (listen_api.c): UINT32_MAX for "no limit" in its options,
     * 0 for "no limit" in the limit structures */
    l->opt.handshakes_per_ip = lim->handshakes_per_s ? lim->handshakes_per_s : UINT32_MAX;
    l->opt.handshakes_per_ip_burst = lim->handshakes_per_s ? lim->handshake_burst : 0;
    l->rate.per_s = l->opt.handshakes_per_ip;
    l->rate.burst =
        l->opt.handshakes_per_ip_burst ? l->opt.handshakes_per_ip_burst : l->opt.handshakes_per_ip;
    l->opt.identity_failure_max = lim->identity_fail_max ? lim->identity_fail_max : UINT32_MAX;
    l->opt.source_failure_max = lim->source_fail_max ? lim->source_fail_max : UINT32_MAX;
    l->opt.identity_block_s = (uint32_t)(period_ms / 1000);
    l->pair_fail.max = lim->identity_fail_max;
    l->pair_fail.period_ms = period_ms;
    l->src_fail.max = lim->source_fail_max;
    l->src_fail.period_ms = period_ms;
    l->opt.half_open_per_source =
        lim->half_open_per_source ? lim->half_open_per_source : UINT32_MAX;
    l->half_open.max = lim->half_open_per_source;
    if (lim->ipv6_source_prefix >= 1 && lim->ipv6_source_prefix <= 128)
        l->opt.ipv6_source_prefix = lim->ipv6_source_prefix;
    else
        l->opt.ipv6_source_prefix = 64;
}
