/* Readiness of the domains, part by part (contract in health.h). */
#include "gateway/health.h"

#include "common/err.h"
#include "gateway/domain_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the judge remembers between two calls, per watched object: a sink's dropped counter (key:
 * the sink set, idx: the sink) or the time of the last re-authentication asked of an upstream
 * client (key: the client, idx: SIZE_MAX). Entries not seen in a judgement are forgotten (a
 * domain that went away). */
typedef struct {
    const void *key;
    size_t idx;
    uint64_t seen; /* dropped counter */
    uint64_t at;   /* when it last grew / when warmup was last asked; 0: never */
    int touched;
} memo_t;

struct pskgw_health {
    memo_t *memo;
    size_t n;
    size_t cap;
};

typedef struct {
    json_t *failing;
    json_t *parts;
    pskgw_metrics_t *m;
    int ready;
    int oom;
} verdicts_t;

int pskgw_health_new(pskgw_health_t **out)
{
    pskgw_health_t *h = calloc(1, sizeof(*h));

    if (!h)
        return PSKGW_ENOMEM;
    *out = h;
    return 0;
}

void pskgw_health_free(pskgw_health_t *h)
{
    if (!h)
        return;
    free(h->memo);
    free(h);
}

/* The memo of (key, idx), created with seen/at when new; NULL when out of memory. */
static memo_t *memo_get(pskgw_health_t *h, const void *key, size_t idx, uint64_t seen, uint64_t at)
{
    for (size_t i = 0; i < h->n; i++) {
        if (h->memo[i].key == key && h->memo[i].idx == idx) {
            h->memo[i].touched = 1;
            return &h->memo[i];
        }
    }
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 16;
        memo_t *t = realloc(h->memo, ncap * sizeof(*t));

        if (!t)
            return NULL;
        h->memo = t;
        h->cap = ncap;
    }
    h->memo[h->n] = (memo_t){ key, idx, seen, at, 1 };
    return &h->memo[h->n++];
}

static void memo_sweep(pskgw_health_t *h)
{
    size_t o = 0;

    for (size_t i = 0; i < h->n; i++) {
        if (h->memo[i].touched) {
            h->memo[o] = h->memo[i];
            h->memo[o++].touched = 0;
        }
    }
    h->n = o;
}

/* ---- pure verdicts ---------------------------------------------------------------------- */

void pskgw_health_upstream_verdict(const pskgw_upstream_auth_status_t *a, int cache_serves,
                                   pskgw_health_verdict_t *v)
{
    v->ready = 0;
    if (a->token_valid) {
        v->ready = 1;
        snprintf(v->detail, sizeof(v->detail), "authenticated");
    } else if (a->last_error == PSKGW_EAUTH) {
        snprintf(v->detail, sizeof(v->detail),
                 "credentials refused by the security service (api.key_id / api.secret_file)");
    } else if (a->last_error == 0) {
        snprintf(v->detail, sizeof(v->detail), "authenticating");
    } else if (cache_serves) {
        v->ready = 1;
        snprintf(v->detail, sizeof(v->detail),
                 "security service unusable (%s): keys served from cache",
                 pskgw_strerror(a->last_error));
    } else {
        snprintf(v->detail, sizeof(v->detail),
                 "security service unusable (%s) and no cache to serve keys from",
                 pskgw_strerror(a->last_error));
    }
}

void pskgw_health_sink_verdict(const pskgw_sink_stats_t *st, const pskgw_sink_health_t *h,
                               int dropped_recently, pskgw_health_verdict_t *v)
{
    v->ready = 0;
    if (dropped_recently) {
        snprintf(v->detail, sizeof(v->detail), "dropping messages (%llu dropped so far)",
                 (unsigned long long)st->dropped);
    } else if (h->spool &&
               st->spool_bytes * 100 >= h->spool_max_bytes * PSKGW_HEALTH_SPOOL_FULL_PCT) {
        snprintf(v->detail, sizeof(v->detail), "spool full (%llu of %llu bytes)",
                 (unsigned long long)st->spool_bytes, (unsigned long long)h->spool_max_bytes);
    } else if (!h->spool && st->queue_depth >= h->queue_size) {
        snprintf(v->detail, sizeof(v->detail), "queue full (%llu messages) and no spool",
                 (unsigned long long)st->queue_depth);
    } else if (h->failing && !h->spool) {
        snprintf(v->detail, sizeof(v->detail), "target failing and no spool (%llu queued)",
                 (unsigned long long)st->queue_depth);
    } else if (h->failing) {
        v->ready = 1;
        snprintf(v->detail, sizeof(v->detail), "target failing: spooling (%llu of %llu bytes)",
                 (unsigned long long)st->spool_bytes, (unsigned long long)h->spool_max_bytes);
    } else {
        v->ready = 1;
        snprintf(v->detail, sizeof(v->detail), "accepting");
    }
}

/* ---- judging the domains ---------------------------------------------------------------- */

static void add(verdicts_t *vs, const char *domain, const char *part,
                const pskgw_health_verdict_t *v)
{
    char a[300];
    char b[300];
    char lab[620];
    json_t *p;

    p = json_pack("{s:s?,s:s,s:b,s:s}", "domain", domain, "part", part, "ready", v->ready, "detail",
                  v->detail);
    if (!p || json_array_append_new(vs->parts, p) < 0)
        vs->oom = 1;
    if (!v->ready) {
        vs->ready = 0;
        p = json_pack("{s:s?,s:s,s:s}", "domain", domain, "part", part, "reason", v->detail);
        if (!p || json_array_append_new(vs->failing, p) < 0)
            vs->oom = 1;
    }
    pskgw_metrics_label(a, sizeof(a), "domain", domain ? domain : "");
    pskgw_metrics_label(b, sizeof(b), "part", part);
    snprintf(lab, sizeof(lab), "%s,%s", a, b);
    pskgw_metrics_sample(vs->m, "pskgw_ready_part", lab, v->ready ? 1 : 0);
}

static void judge_listeners(pskgw_domain_t *d, verdicts_t *vs)
{
    for (size_t i = 0; i < d->nlis; i++) {
        pskgw_health_verdict_t v;
        char part[200];

        if (!d->lis[i]->cfg) /* removed by a reload, closing */
            continue;
        v.ready = d->lis[i]->l != NULL;
        snprintf(v.detail, sizeof(v.detail), "%s", v.ready ? "bound" : "closed");
        snprintf(part, sizeof(part), "listener/%s", d->lis[i]->cfg->name);
        add(vs, d->cfg->name, part, &v);
    }
}

/* A forwarding listener's backend: not ready while its last connect failed (refused, timeout)
 * within PSKGW_DOMAIN_DROP_HOLD_MS and none worked since; judged from the devices' own
 * connections (no probe), so a backend nobody has used yet is ready. */
static void judge_backends(pskgw_domain_t *d, uint64_t now, verdicts_t *vs)
{
    for (size_t i = 0; i < d->nlis; i++) {
        const pskgw_forward_counters_t *c;
        pskgw_health_verdict_t v;
        char part[200];

        if (!d->lis[i]->cfg || !d->lis[i]->l)
            continue;
        c = pskgw_listener_forward_counters(d->lis[i]->l);
        if (!c)
            continue;
        v.ready = !(c->backend_fail_ms > c->backend_ok_ms &&
                    now - c->backend_fail_ms < PSKGW_DOMAIN_DROP_HOLD_MS);
        if (!v.ready)
            snprintf(v.detail, sizeof(v.detail), "%.120s: connect failed (%s)",
                     d->lis[i]->cfg->forward, pskgw_fwd_fail_reasons[c->backend_fail_why]);
        else
            snprintf(v.detail, sizeof(v.detail), "%.120s: %s", d->lis[i]->cfg->forward,
                     c->backend_ok_ms > 0 ? "connected" : "not used yet");
        snprintf(part, sizeof(part), "backend/%s", d->lis[i]->cfg->name);
        add(vs, d->cfg->name, part, &v);
    }
}

static int cache_serves(const pskgw_keycache_t *c)
{
    pskgw_keycache_stats_t st;

    if (!c)
        return 0;
    pskgw_keycache_stats(c, &st);
    return st.redis_connected || st.entries > 0;
}

static void judge_upstream(pskgw_health_t *h, pskgw_domain_t *d, uint64_t now, verdicts_t *vs)
{
    pskgw_upstream_auth_status_t a;
    pskgw_health_verdict_t v;
    memo_t *memo;

    if (!d->up)
        return;
    pskgw_upstream_auth_status(d->up, &a);
    pskgw_health_upstream_verdict(&a, cache_serves(d->psk_cache), &v);
    add(vs, d->cfg->name, "upstream", &v);
    memo = memo_get(h, d->up, SIZE_MAX, 0, now);
    if (memo && !a.token_valid && !a.authenticating &&
        now - memo->at >= d->cfg->api.reauth_interval_ms) {
        memo->at = now;
        pskgw_upstream_warmup(d->up);
    }
}

static void judge_caches(pskgw_domain_t *d, verdicts_t *vs)
{
    const pskgw_keycache_t *caches[2] = { d->psk_cache, d->e2e_cache };
    static const char *const parts[2] = { "cache/psk", "cache/e2e" };

    if (!d->cfg->cache.has_redis)
        return;
    for (int c = 0; c < 2; c++) {
        pskgw_keycache_stats_t st;
        pskgw_health_verdict_t v;

        if (!caches[c])
            continue;
        pskgw_keycache_stats(caches[c], &st);
        v.ready = st.redis_connected != 0;
        snprintf(v.detail, sizeof(v.detail), "%s",
                 v.ready ? "redis connected" : "redis not connected");
        add(vs, d->cfg->name, parts[c], &v);
        if (c != 0)
            continue;
        /* the PSK cache's subscriber: revocations from the other gateways reach us */
        v.ready = st.broadcast_subscribed != 0;
        snprintf(v.detail, sizeof(v.detail), "%s",
                 v.ready ? "subscribed" : "not subscribed to invalidations");
        add(vs, d->cfg->name, "invalidation", &v);
    }
}

static void judge_sinks(pskgw_health_t *h, pskgw_domain_t *d, uint64_t now, verdicts_t *vs)
{
    size_t count = d->sinks ? pskgw_sinkset_count(d->sinks) : 0;

    for (size_t i = 0; i < count; i++) {
        pskgw_sink_stats_t st;
        pskgw_sink_health_t sh;
        pskgw_health_verdict_t v;
        const char *name = NULL;
        char part[200];
        memo_t *memo;
        int recent;

        if (pskgw_sinkset_stats(d->sinks, i, &name, &st) < 0 ||
            pskgw_sinkset_health(d->sinks, i, &sh) < 0)
            continue;
        memo = memo_get(h, d->sinks, i, st.dropped, 0);
        if (!memo) {
            vs->oom = 1;
            return;
        }
        if (st.dropped > memo->seen)
            memo->at = now ? now : 1;
        memo->seen = st.dropped;
        recent = memo->at && now - memo->at < PSKGW_DOMAIN_DROP_HOLD_MS;
        pskgw_health_sink_verdict(&st, &sh, recent, &v);
        /* The set names its sinks "<domain>-<sink>[-wN]" (spool file names); the part carries
         * the sink's name as configured, as the metrics' sink label does. */
        if (i < d->cfg->nsinks)
            name = d->cfg->sinks[i].name;
        snprintf(part, sizeof(part), "sink/%s", name);
        add(vs, d->cfg->name, part, &v);
    }
}

static void judge_domain(pskgw_health_t *h, pskgw_domain_t *d, uint64_t now, verdicts_t *vs)
{
    if (d->closing) {
        pskgw_health_verdict_t v = { 0, "closing" };

        add(vs, d->cfg->name, "domain", &v);
        return;
    }
    judge_listeners(d, vs);
    judge_backends(d, now, vs);
    judge_upstream(h, d, now, vs);
    judge_caches(d, vs);
    judge_sinks(h, d, now, vs);
}

int pskgw_health_judge(pskgw_health_t *h, pskgw_domain_t *const *domains, size_t n, int stopping,
                       uint64_t now_ms, pskgw_metrics_t *m, char **json)
{
    verdicts_t vs = { json_array(), json_array(), m, 1, 0 };
    json_t *root = NULL;
    char *text = NULL;
    size_t len;

    if (!vs.failing || !vs.parts)
        goto fail;
    pskgw_metrics_family(m, "pskgw_ready_part", "gauge",
                         "1 while the part (listener, upstream, cache, sink) is ready");
    if (stopping) {
        pskgw_health_verdict_t v = { 0, "stopping" };

        add(&vs, NULL, "gateway", &v);
    } else {
        for (size_t i = 0; i < n; i++)
            judge_domain(h, domains[i], now_ms, &vs);
        memo_sweep(h);
    }
    pskgw_metrics_family(m, "pskgw_ready", "gauge", "1 while every part of every domain is ready");
    pskgw_metrics_sample(m, "pskgw_ready", NULL, vs.ready ? 1 : 0);
    if (vs.oom)
        goto fail;
    root = json_pack("{s:b,s:s,s:o,s:o}", "ready", vs.ready, "status",
                     vs.ready   ? "ready"
                     : stopping ? "stopping"
                                : "not ready",
                     "failing", vs.failing, "parts", vs.parts);
    vs.failing = vs.parts = NULL; /* "o" stole them, even on failure */
    if (!root)
        goto fail;
    /* Into our own malloc'ed buffer: json_dumps() would allocate with jansson's allocator,
     * which the process may have replaced (main.c wipes what jansson frees). */
    len = json_dumpb(root, NULL, 0, JSON_COMPACT);
    text = len ? malloc(len + 1) : NULL;
    if (text && json_dumpb(root, text, len, JSON_COMPACT) != len) {
        free(text);
        text = NULL;
    }
    json_decref(root);
    if (!text)
        goto fail;
    text[len] = '\0';
    *json = text;
    return vs.ready;
fail:
    json_decref(vs.failing);
    json_decref(vs.parts);
    return PSKGW_ENOMEM;
}
