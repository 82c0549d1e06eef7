/* The pure readiness verdicts of gateway/health.h: the upstream part from the client's
 * authentication state, the sink part from its counters and limits. */
#include "common/err.h"
#include "gateway/health.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static pskgw_health_verdict_t up(int token_valid, int last_error, int cache_serves)
{
    pskgw_upstream_auth_status_t a = { token_valid, 0, last_error };
    pskgw_health_verdict_t v;

    memset(&v, 0, sizeof(v));
    pskgw_health_upstream_verdict(&a, cache_serves, &v);
    return v;
}

Test(health, upstream_ready_only_when_authenticated_or_served_from_cache)
{
    pskgw_health_verdict_t v;

    v = up(1, 0, 0);
    cr_assert(v.ready);
    cr_assert_str_eq(v.detail, "authenticated");
    v = up(0, 0, 1);
    cr_assert_not(v.ready, "no answer yet: not ready, even with a cache");
    cr_assert_str_eq(v.detail, "authenticating");
    v = up(0, PSKGW_EAUTH, 1);
    cr_assert_not(v.ready, "refused credentials are never ready");
    cr_assert(strstr(v.detail, "credentials refused"), "%s", v.detail);
    v = up(0, PSKGW_EUNAVAIL, 0);
    cr_assert_not(v.ready);
    cr_assert(strstr(v.detail, "service unavailable"), "%s", v.detail);
    v = up(0, PSKGW_ETIMEOUT, 1);
    cr_assert(v.ready, "a transient failure with keys in cache is ready");
    cr_assert(strstr(v.detail, "keys served from cache"), "%s", v.detail);
    v = up(1, PSKGW_EAUTH, 0);
    cr_assert(v.ready, "a token still usable serves");
}

static pskgw_health_verdict_t sink(uint64_t queue_depth, uint64_t spool_bytes, uint64_t dropped,
                                   int failing, int spool, int recent)
{
    pskgw_sink_stats_t st;
    pskgw_sink_health_t h = { failing, spool, spool ? 1000 : 0, 10 };
    pskgw_health_verdict_t v;

    memset(&st, 0, sizeof(st));
    st.queue_depth = queue_depth;
    st.spool_bytes = spool_bytes;
    st.dropped = dropped;
    memset(&v, 0, sizeof(v));
    pskgw_health_sink_verdict(&st, &h, recent, &v);
    return v;
}

Test(health, sink_ready_while_accepting_or_spooling_within_limits)
{
    pskgw_health_verdict_t v;

    v = sink(0, 0, 0, 0, 0, 0);
    cr_assert(v.ready, "an idle sink is ready");
    cr_assert_str_eq(v.detail, "accepting");
    v = sink(3, 0, 0, 1, 0, 0);
    cr_assert_not(v.ready, "failing target, no spool");
    cr_assert(strstr(v.detail, "target failing and no spool"), "%s", v.detail);
    v = sink(3, 400, 0, 1, 1, 0);
    cr_assert(v.ready, "failing target, spool within its limit");
    cr_assert(strstr(v.detail, "spooling (400 of 1000 bytes)"), "%s", v.detail);
    v = sink(3, 949, 0, 1, 1, 0);
    cr_assert(v.ready, "just under the full mark");
    v = sink(3, 950, 0, 1, 1, 0);
    cr_assert_not(v.ready, "at the full mark");
    cr_assert(strstr(v.detail, "spool full (950 of 1000 bytes)"), "%s", v.detail);
    v = sink(10, 0, 0, 0, 0, 0);
    cr_assert_not(v.ready, "a full queue without spool drops the next message");
    cr_assert(strstr(v.detail, "queue full"), "%s", v.detail);
    v = sink(10, 0, 0, 0, 1, 0);
    cr_assert(v.ready, "a full queue with a spool spools");
    v = sink(0, 0, 7, 0, 1, 1);
    cr_assert_not(v.ready, "dropped recently");
    cr_assert(strstr(v.detail, "dropping messages (7 dropped so far)"), "%s", v.detail);
    v = sink(0, 0, 7, 0, 1, 0);
    cr_assert(v.ready, "old drops are forgiven");
}

/* The whole judgement without domains: ready when running, "stopping" (part gateway, no
 * domain) from the shutdown on; the gauges agree with the JSON. */
Test(health, judge_without_domains_running_then_stopping)
{
    pskgw_health_t *h = NULL;
    pskgw_metrics_t m;
    char *json = NULL;

    pskgw_metrics_init(&m);
    cr_assert_eq(pskgw_health_new(&h), 0);
    cr_assert_eq(pskgw_health_judge(h, NULL, 0, 0, 1000, &m, &json), 1);
    cr_assert_str_eq(json, "{\"ready\":true,\"status\":\"ready\",\"failing\":[],\"parts\":[]}");
    cr_assert(strstr(m.text, "\npskgw_ready 1\n"), "%s", m.text);
    free(json);
    json = NULL;
    pskgw_metrics_reset(&m);
    cr_assert_eq(pskgw_health_judge(h, NULL, 0, 1, 2000, &m, &json), 0);
    cr_assert(strstr(json, "\"status\":\"stopping\""), "%s", json);
    cr_assert(
        strstr(json,
               "\"failing\":[{\"domain\":null,\"part\":\"gateway\",\"reason\":\"stopping\"}]"),
        "%s", json);
    cr_assert(strstr(m.text, "pskgw_ready_part{domain=\"\",part=\"gateway\"} 0\n"), "%s", m.text);
    cr_assert(strstr(m.text, "\npskgw_ready 0\n"), "%s", m.text);
    free(json);
    pskgw_health_free(h);
    pskgw_metrics_deinit(&m);
}
