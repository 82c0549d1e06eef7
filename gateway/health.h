/* Readiness: whether this gateway can serve devices now, judged part by part on the loop.
 *
 * The app judges once a second (with the metrics) and publishes the verdict to the admin
 * endpoint (gateway/admin.h: GET /ready) and as metrics:
 *   pskgw_ready                    1 when every part of every domain is ready, else 0
 *   pskgw_ready_part{domain,part}  1 / 0 per part
 * Parts of each domain and when each is ready:
 *   listener/<name>  its socket is bound and serving (not closed);
 *   upstream         the security service client holds a usable token; or the last
 *                    authentication failed transiently (service unreachable, 5xx, timeout,
 *                    429...) while keys are servable from cache (the PSK cache's Redis is
 *                    connected, or its in-process LRU holds entries). Refused credentials are
 *                    never ready: no new device could connect. Until the first authentication
 *                    answers the part is not ready ("authenticating").
 *   backend/<name>   (forwarding listeners) its backend: not ready while the last backend
 *                    connect of a device session failed (TCP: refused, timeout, resolve...;
 *                    UDP: ICMP unreachable) within PSKGW_DOMAIN_DROP_HOLD_MS and none worked
 *                    since; ready before any device used it. A forward-only domain has no
 *                    sink parts: its listeners and backends are what it needs.
 *   cache/psk, cache/e2e  (only with cache.redis) the cache's Redis connection is up;
 *   sink/<name>      the sink accepts or spools within its limits: not ready when it dropped a
 *                    message in the last PSKGW_DOMAIN_DROP_HOLD_MS, when its target fails and
 *                    it has no spool, when its spool holds PSKGW_HEALTH_SPOOL_FULL_PCT % or more
 *                    of spool.max_bytes, or when it has no spool and its queue is full.
 * While the gateway shuts down, the part "gateway" of no domain is not ready ("stopping").
 *
 * Judging has one side effect, so that readiness comes back without traffic: an upstream
 * client without a usable token and no authentication in flight is asked to authenticate
 * (pskgw_upstream_warmup()) at most once per the domain's api.reauth_interval_ms (10 s by
 * default; read at each judgement, so that a reload changes it at once).
 *
 * Loop thread only. The pure verdict functions are unit-tested.
 */
#ifndef PSKGW_GATEWAY_HEALTH_H
#define PSKGW_GATEWAY_HEALTH_H

#include "gateway/domain.h"
#include "gateway/metrics.h"
#include "sinks/sinkset.h"
#include "upstream/upstream.h"

#include <stdint.h>

#define PSKGW_HEALTH_SPOOL_FULL_PCT 95

typedef struct pskgw_health pskgw_health_t;

/* The judge's memory (drop counters seen, last re-authentication asked), owned by the caller.
 * 0 or PSKGW_ENOMEM. */
int pskgw_health_new(pskgw_health_t **out);
/* NULL is accepted. */
void pskgw_health_free(pskgw_health_t *h);

/* Judge every part of the n domains at now_ms (uv_now of their loop). stopping: the gateway is
 * shutting down (then the domains are not looked at; n may be 0). Appends the pskgw_ready and
 * pskgw_ready_part families to m, and writes the JSON body of GET /ready to *json (malloc'ed,
 * the caller frees it):
 *   {"ready":true|false,"status":"ready"|"not ready"|"stopping",
 *    "failing":[{"domain":D,"part":P,"reason":R}...],
 *    "parts":[{"domain":D,"part":P,"ready":true|false,"detail":R}...]}
 * Returns 1 (ready) or 0 (not ready), or PSKGW_ENOMEM (nothing written to *json). */
int pskgw_health_judge(pskgw_health_t *h, pskgw_domain_t *const *domains, size_t n, int stopping,
                       uint64_t now_ms, pskgw_metrics_t *m, char **json);

/* ---- pure verdicts ---------------------------------------------------------------------- */

typedef struct {
    int ready;
    char detail[200]; /* why not, or what a ready part is doing ("spooling", ...) */
} pskgw_health_verdict_t;

/* cache_serves: keys are servable from cache without the service (see above). */
void pskgw_health_upstream_verdict(const pskgw_upstream_auth_status_t *a, int cache_serves,
                                   pskgw_health_verdict_t *v);
/* dropped_recently: the sink's dropped counter grew within PSKGW_DOMAIN_DROP_HOLD_MS. */
void pskgw_health_sink_verdict(const pskgw_sink_stats_t *st, const pskgw_sink_health_t *h,
                               int dropped_recently, pskgw_health_verdict_t *v);

#endif
