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
    static const char ST[] = "pskgw_sessions_redis_stores_total";
    static const char SE[] = "pskgw_sessions_redis_store_errors_total";
    static const char LK[] = "pskgw_sessions_redis_lookups_total";
    static const char LE[] = "pskgw_sessions_redis_leases_total";
    static const char CO[] = "pskgw_sessions_redis_connected";
    static const char *const res[] = { "hit", "miss", "refused", "bad", "error" };

    pskgw_metrics_family(m, ST, "counter", "hibernated sessions stored in Redis (SET answered)");
    pskgw_metrics_family(m, SE, "counter",
                         "hibernated sessions not stored in Redis (no connection, error reply)");
    pskgw_metrics_family(m, LK, "counter",
                         "Redis lookups of sessions this node did not hold, by result (hit: "
                         "taken over; miss; refused: leased by another node; bad: does not "
                         "open; error: no connection)");
    pskgw_metrics_family(m, LE, "counter", "leases taken on sessions taken over from Redis");
    pskgw_metrics_family(m, CO, "gauge", "1 while the sessions' Redis connection is up");
    for (size_t i = 0; i < n; i++) {
        pskgw_sessredis_stats_t st;
        uint64_t by[5];
        char a[300], lab[400];

        if (ds[i]->sessions == NULL)
            continue;
        pskgw_sessredis_stats(ds[i]->sessions, &st);
        by[0] = st.hits;
        by[1] = st.misses;
        by[2] = st.refused;
        by[3] = st.bad;
        by[4] = st.errors;
        pskgw_metrics_label(a, sizeof(a), "domain", ds[i]->cfg->name);
        pskgw_metrics_sample(m, ST, a, st.stores);
        pskgw_metrics_sample(m, SE, a, st.store_errors);
        for (size_t k = 0; k < 5; k++) {
            (void)snprintf(lab, sizeof(lab), "%s,result=\"%s\"", a, res[k]);
            pskgw_metrics_sample(m, LK, lab, by[k]);
        }
        pskgw_metrics_sample(m, LE, a, st.leases);
        pskgw_metrics_sample(m, CO, a, st.connected);
    }
}
