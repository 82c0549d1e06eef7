/* A domain's sessions shared through Redis (issue 12, section 4; gateway/sessredis.h): the store
 * made from the `sessions` group and its counters as metrics. */
#include "gateway/domain_internal.h"
#include "gateway/metrics.h"
#include "gateway/sessredis.h"

#include "common/err.h"
#include "common/log.h"

#include <stdio.h>
#include <unistd.h>

int pskgw_domain_start_sessions(pskgw_domain_t *d)
{
    const pskgw_config_sessions_t *c = &d->cfg->sessions;
    pskgw_sessredis_opts_t o = { 0 };
    char node[200], host[128];
    int rc;

    if (!d->cfg->has_sessions)
        return 0;
    if (!d->cfg->cache.has_kek) {
        PSKGW_ERR("domain \"%s\": sessions: no cache.kek_file key to seal them", d->cfg->name);
        return PSKGW_ECONFIG;
    }
    if (c->node_id != NULL) {
        (void)snprintf(node, sizeof(node), "%s", c->node_id);
    } else {
        if (gethostname(host, sizeof(host)) != 0)
            (void)snprintf(host, sizeof(host), "pskgw");
        host[sizeof(host) - 1] = '\0';
        (void)snprintf(node, sizeof(node), "%s:%ld", host, (long)getpid());
    }
    o.domain = d->cfg->name;
    o.node_id = node;
    o.host = c->redis.host;
    o.port = c->redis.port;
    o.sentinels = c->redis.sentinels;
    o.master_name = c->redis.master_name;
    o.password = c->redis.password.data;
    o.db = (int)c->redis.db;
    o.timeout_ms = c->redis_timeout_ms;
    o.lease_ms = c->lease_ms;
    o.key = d->cfg->cache.kek;
    rc = pskgw_sessredis_new(d->loop, &o, &d->sessions);
    if (rc < 0) {
        PSKGW_ERR("domain \"%s\": sessions: redis store not started: %s", d->cfg->name,
                  pskgw_strerror(rc));
        return rc;
    }
    PSKGW_NOTICE("domain \"%s\": sessions: hibernated sessions shared through %s (node \"%s\", "
                 "lease %u ms)",
                 d->cfg->name, c->redis.url, node, (unsigned)c->lease_ms);
    return 0;
}

void pskgw_domain_sessions_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    pskgw_sessredis_metrics_families(m);
    for (size_t i = 0; i < n; i++)
        if (ds[i]->sessions != NULL)
            pskgw_sessredis_metrics_sample(ds[i]->sessions, ds[i]->cfg->name, m);
}
