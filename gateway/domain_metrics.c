/* Prometheus metrics of the domains: every module's counters, labelled by domain (and
 * listener, cache, sink, operation...). Families are rendered one at a time across all domains,
 * as the text format requires. */
#include "gateway/domain.h"
#include "gateway/domain_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct field {
    const char *name;
    size_t off;
    const char *type; /* "counter" or "gauge" */
    const char *help;
};

#define LF(f, t, h)                                                        \
    {                                                                      \
        "pskgw_listener_" #f, offsetof(pskgw_listener_counters_t, f), t, h \
    }
static const struct field listener_fields[] = {
    LF(datagrams_in, "counter", "UDP datagrams or TCP reads received"),
    LF(datagrams_out, "counter", "UDP datagrams or TCP writes sent"),
    LF(send_dropped, "counter", "UDP datagrams the socket refused (full send buffer): lost"),
    LF(bad_datagrams, "counter", "datagrams from peers without a session that were no ClientHello"),
    LF(cookies_sent, "counter", "HelloVerifyRequests sent (no state kept)"),
    LF(cookie_verified, "counter", "ClientHellos with a valid cookie"),
    LF(connections, "counter", "TCP connections accepted"),
    LF(handshakes_started, "counter", "sessions created"),
    LF(handshakes_completed, "counter", "handshakes completed"),
    LF(handshakes_failed, "counter", "sessions that ended before completing the handshake"),
    LF(auth_failures, "counter", "handshakes failed on a wrong key or an unknown/refused identity"),
    LF(lookups_parked, "counter", "handshakes parked on an identity lookup"),
    LF(lookups_failed, "counter", "identity lookups that failed (service unavailable)"),
    LF(refused_max_sessions, "counter", "handshakes refused: max_sessions reached"),
    LF(refused_pending, "counter", "handshakes refused: max_pending_handshakes reached"),
    LF(rate_limited, "counter", "handshakes refused by the per-IP rate"),
    LF(blocked_identities, "counter", "handshakes of an identity throttled for its source"),
    LF(throttled_sources, "counter", "handshakes refused: their source failed too often"),
    LF(refused_half_open, "counter", "handshakes refused: half_open_per_source reached"),
    LF(half_open_timeouts, "counter", "handshakes ended without a key exchange in time"),
    LF(rehandshakes, "counter", "established sessions replaced by a completed new handshake"),
    LF(idle_closes, "counter", "sessions closed for idleness"),
    LF(messages, "counter", "application messages received"),
    LF(bytes, "counter", "application message bytes received"),
    LF(messages_dropped, "counter", "messages above max_message_bytes"),
    LF(sessions_active, "gauge", "sessions now (handshaking and established)"),
    LF(pending_lookups, "gauge", "handshakes waiting for an identity lookup now"),
    LF(lookups_admitted, "counter", "cold key lookups sent to the resolver at once"),
    LF(lookups_queued, "counter", "cold key lookups that waited for their source's turn"),
    LF(lookups_dequeued, "counter", "waiting cold key lookups sent to the resolver at their turn"),
    LF(lookups_good, "counter", "cold key lookups sent in the class of sources with a good record"),
    LF(lookups_refused_rate, "counter", "cold key lookups refused: lookups_per_source_per_s"),
    LF(lookups_refused_queue, "counter", "cold key lookups refused: lookup_queue_per_source full"),
    LF(lookups_withdrawn, "counter", "waiting cold key lookups whose handshake ended first"),
    LF(lookups_stale_known, "counter", "lookups of known identities with a stale key (never wait)"),
    LF(lookups_in_flight, "gauge", "cold key lookups at the resolver now"),
    LF(lookups_waiting, "gauge", "cold key lookups waiting for their turn now"),
    LF(cid_sessions, "gauge", "established DTLS sessions with a Connection ID now"),
    LF(cid_address_changes, "counter",
       "sessions whose peer address moved (a CID record authenticated from a new address)"),
    LF(cid_unknown_records, "counter", "datagrams with an unknown Connection ID (dropped)"),
    LF(hibernations, "counter",
       "idle established sessions that hibernated (wolfSSL state exported)"),
    LF(thaws, "counter", "hibernated sessions woken by a record or a write"),
    LF(thaw_failures, "counter", "hibernated sessions that could not be woken (ended)"),
    LF(hibernated, "gauge", "hibernated sessions now"),
    LF(redis_stored, "counter", "hibernations also handed to the sessions' Redis store"),
    LF(redis_parked, "counter",
       "datagrams held while their session was looked up in Redis (not held here) or claimed there "
       "(stored by this node)"),
    LF(redis_park_refused, "counter",
       "such datagrams dropped: a per-source or listener bound reached, or a lookup for that "
       "session already in flight"),
    LF(redis_imported, "counter", "sessions taken over from Redis, continued with no handshake"),
    LF(redis_forgotten, "counter",
       "stored sessions that woke here: claimed, their copy in Redis deleted (no other node may "
       "take it)"),
};

#define FF(f, t, h)                                                      \
    {                                                                    \
        "pskgw_forward_" #f, offsetof(pskgw_forward_counters_t, f), t, h \
    }
static const struct field forward_fields[] = {
    FF(sessions, "counter", "backend flows opened (forwarding listeners)"),
    FF(bytes_to_backend, "counter", "device bytes written to the backend"),
    FF(bytes_from_backend, "counter", "backend bytes sent to the device"),
    FF(datagrams_to_backend, "counter", "UDP datagrams (TCP writes) to the backend"),
    FF(datagrams_from_backend, "counter", "UDP datagrams (TCP reads) from the backend"),
    FF(datagrams_dropped, "counter", "UDP datagrams dropped: send queue full or too large"),
    FF(device_pauses, "counter", "device reads stopped: the backend's queue was full"),
    FF(backend_pauses, "counter", "backend reads stopped: the device's queue was full"),
    FF(backend_closes, "counter", "backend FINs passed to the device as close_notify"),
    FF(backend_errors, "counter", "backend resets or write errors that ended a session"),
    FF(sessions_active, "gauge", "backend flows open now"),
    FF(buffered_bytes, "gauge", "bytes queued towards backends now"),
};

#define KF(f, t, h)                                                     \
    {                                                                   \
        "pskgw_keycache_" #f, offsetof(pskgw_keycache_stats_t, f), t, h \
    }
static const struct field cache_fields[] = {
    KF(lookups, "counter", "synchronous layer-1 lookups"),
    KF(fetches, "counter", "asynchronous fetches"),
    KF(hits_l1, "counter", "fresh values served from the in-process LRU"),
    KF(hits_redis, "counter", "fresh values served from Redis"),
    KF(misses, "counter", "fetches that started a flight"),
    KF(coalesced, "counter", "fetches that joined a flight under way (single-flight)"),
    KF(negative_hits, "counter", "refusals served from the negative cache"),
    KF(stale_serves, "counter", "values served past their TTL because the service failed"),
    KF(backend_calls, "counter", "calls to the security service"),
    KF(backend_errors, "counter", "security-service calls that failed transiently"),
    KF(decode_failures, "counter", "Redis values that did not decrypt or parse"),
    KF(evictions, "counter", "LRU evictions of values"),
    KF(negative_evictions, "counter", "evictions of refusals (their own LRU: never a value)"),
    KF(refused_keys, "counter", "lookups refused without any call (impossible identities)"),
    KF(breaker_trips, "counter", "times the service was declared failing (breaker opened)"),
    KF(stale_at_once, "counter", "stale values served at once while the breaker was open"),
    KF(busy, "counter", "fetches refused as busy"),
    KF(canceled, "counter", "fetches canceled"),
    KF(redis_skipped, "counter", "flights that skipped Redis because it was down"),
    KF(redis_errors, "counter", "Redis command failures and lost connections"),
    KF(redis_connects, "counter", "Redis connections made"),
    KF(redis_disconnects, "counter", "Redis connections lost"),
    KF(redis_connected, "gauge", "1 while connected to Redis"),
    KF(entries, "gauge", "values in the in-process LRU"),
    KF(negative_entries, "gauge", "refusals in the in-process negative LRU"),
    KF(breaker_open, "gauge", "1 while the security service is known to be failing"),
    KF(flights, "gauge", "keys being fetched now"),
    KF(broadcasts_sent, "counter", "invalidations and revocations published to other gateways"),
    KF(broadcasts_received, "counter", "invalidations and revocations received and applied"),
    KF(broadcast_resyncs, "counter", "LRU emptied because the invalidation subscription was made"),
    KF(broadcast_subscribed, "gauge", "1 while subscribed to the invalidation channel"),
};

#define SF(f, t, h)                                             \
    {                                                           \
        "pskgw_sink_" #f, offsetof(pskgw_sink_stats_t, f), t, h \
    }
static const struct field sink_fields[] = {
    SF(queued, "counter", "messages queued in memory"),
    SF(delivered, "counter", "messages acknowledged by the target system"),
    SF(retried, "counter", "failed attempts retried"),
    SF(spooled, "counter", "messages written to the disk spool"),
    SF(replayed, "counter", "messages read back from the spool"),
    SF(dropped, "counter", "messages lost: queue and spool full"),
    SF(dead_lettered, "counter", "messages refused permanently (dead-letter file)"),
    SF(queue_depth, "gauge", "messages in memory now"),
    SF(spool_bytes, "gauge", "spool bytes now"),
};

#define DF(f, h)                                                                        \
    {                                                                                   \
        "pskgw_domain_" #f "_total", offsetof(pskgw_domain_counters_t, f), "counter", h \
    }
static const struct field domain_fields[] = {
    DF(forwarded, "messages handed to the sinks"),
    DF(rejected_e2e, "messages rejected by the E2E stage"),
    DF(e2e_replays, "E2E key identities seen again from the same device (flagged or rejected)"),
    DF(submit_failed, "messages the sinks did not accept"),
    DF(sink_failed, "messages a sink could neither deliver nor spool"),
    DF(acks_sent, "acknowledgement records sent to devices"),
    DF(acks_undelivered, "acknowledgements whose session had ended"),
};

/* snprintf(out, cap, "%s%s%s%s", a, b, c, d) without printf (the snapshot writes thousands of
 * labels a second); NULL parts are left out. */
static void cat(char *out, size_t cap, const char *a, const char *b, const char *c, const char *d)
{
    const char *parts[4] = { a, b, c, d };
    size_t o = 0;

    if (!cap)
        return;
    for (int i = 0; i < 4; i++) {
        size_t n = parts[i] ? strlen(parts[i]) : 0;

        if (n > cap - 1 - o)
            n = cap - 1 - o;
        memcpy(out + o, parts[i] ? parts[i] : "", n);
        o += n;
    }
    out[o] = '\0';
}

/* ",le=\"<bound in seconds>\"" of a histogram's n buckets and ",le=\"+Inf\"" at [n], formatted
 * once per snapshot (not once per series); *done set. */
#define LE_TEXT 32
static void le_texts(char out[][LE_TEXT], const uint32_t *bounds_ms, int n, int *done)
{
    for (int b = 0; b < n; b++)
        snprintf(out[b], LE_TEXT, ",le=\"%g\"", bounds_ms[b] / 1000.0);
    snprintf(out[n], LE_TEXT, ",le=\"+Inf\"");
    *done = 1;
}

static uint64_t field_at(const void *base, size_t off)
{
    uint64_t v;

    memcpy(&v, (const char *)base + off, sizeof(v));
    return v;
}

static void family(pskgw_metrics_t *m, const struct field *f, int total)
{
    char name[128];

    cat(name, sizeof(name), f->name, total && strcmp(f->type, "counter") == 0 ? "_total" : "", NULL,
        NULL);
    pskgw_metrics_family(m, name, f->type, f->help);
}

static void sample(pskgw_metrics_t *m, const struct field *f, int total, const char *labels,
                   uint64_t v)
{
    char name[128];

    cat(name, sizeof(name), f->name, total && strcmp(f->type, "counter") == 0 ? "_total" : "", NULL,
        NULL);
    pskgw_metrics_sample(m, name, labels, v);
}

static void labels2(char *out, size_t cap, const char *k1, const char *v1, const char *k2,
                    const char *v2)
{
    char a[256];
    char b[256];

    pskgw_metrics_label(a, sizeof(a), k1, v1);
    if (!k2) {
        cat(out, cap, a, NULL, NULL, NULL);
        return;
    }
    pskgw_metrics_label(b, sizeof(b), k2, v2);
    cat(out, cap, a, ",", b, NULL);
}

static void listener_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    for (size_t f = 0; f < sizeof(listener_fields) / sizeof(listener_fields[0]); f++) {
        family(m, &listener_fields[f], 1);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < ds[i]->nlis; j++) {
                const struct lctx *lc = ds[i]->lis[j];
                char lab[600];

                if (!lc->l)
                    continue;
                labels2(lab, sizeof(lab), "domain", ds[i]->cfg->name, "listener", lc->name);
                sample(m, &listener_fields[f], 1, lab,
                       field_at(pskgw_listener_counters(lc->l), listener_fields[f].off));
            }
        }
    }
}

/* Forwarding listeners only (forward.h): the families are always declared. */
static void forward_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    static const char *const H = "pskgw_forward_first_byte_seconds";
    char le[PSKGW_FWD_LAT_BUCKETS + 1][LE_TEXT];
    int le_done = 0;

    for (size_t f = 0; f <= sizeof(forward_fields) / sizeof(forward_fields[0]) + 1; f++) {
        size_t nf = sizeof(forward_fields) / sizeof(forward_fields[0]);

        if (f < nf)
            family(m, &forward_fields[f], 1);
        else if (f == nf)
            pskgw_metrics_family(m, "pskgw_forward_connect_failures_total", "counter",
                                 "backend connects that failed, by reason");
        else
            pskgw_metrics_family(m, H, "histogram",
                                 "backend latency to the first byte (from the first byte sent)");
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < ds[i]->nlis; j++) {
                const pskgw_forward_counters_t *c =
                    ds[i]->lis[j]->l ? pskgw_listener_forward_counters(ds[i]->lis[j]->l) : NULL;
                char a[600], lab[700];

                if (c == NULL)
                    continue;
                labels2(a, sizeof(a), "domain", ds[i]->cfg->name, "listener", ds[i]->lis[j]->name);
                if (f < nf) {
                    sample(m, &forward_fields[f], 1, a, field_at(c, forward_fields[f].off));
                    continue;
                }
                if (f == nf) {
                    for (int r = 0; r < PSKGW_FWD_FAIL_REASONS; r++) {
                        cat(lab, sizeof(lab), a, ",reason=\"", pskgw_fwd_fail_reasons[r], "\"");
                        pskgw_metrics_sample(m, "pskgw_forward_connect_failures_total", lab,
                                             c->connect_failed[r]);
                    }
                    continue;
                }
                if (!le_done)
                    le_texts(le, pskgw_fwd_latency_bounds_ms, PSKGW_FWD_LAT_BUCKETS, &le_done);
                for (int b = 0; b <= PSKGW_FWD_LAT_BUCKETS; b++) {
                    cat(lab, sizeof(lab), a, le[b], NULL, NULL);
                    pskgw_metrics_sample(m, "pskgw_forward_first_byte_seconds_bucket", lab,
                                         c->latency_le[b]);
                }
                pskgw_metrics_sample_milli(m, "pskgw_forward_first_byte_seconds_sum", a,
                                           c->latency_sum_ms);
                pskgw_metrics_sample(m, "pskgw_forward_first_byte_seconds_count", a,
                                     c->latency_count);
            }
        }
    }
}

static void cache_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    for (size_t f = 0; f < sizeof(cache_fields) / sizeof(cache_fields[0]); f++) {
        family(m, &cache_fields[f], 1);
        for (size_t i = 0; i < n; i++) {
            const pskgw_keycache_t *caches[2] = { ds[i]->psk_cache, ds[i]->e2e_cache };
            static const char *const names[2] = { "psk", "e2e" };

            for (int c = 0; c < 2; c++) {
                pskgw_keycache_stats_t st;
                char lab[600];

                if (!caches[c])
                    continue;
                pskgw_keycache_stats(caches[c], &st);
                labels2(lab, sizeof(lab), "domain", ds[i]->cfg->name, "cache", names[c]);
                sample(m, &cache_fields[f], 1, lab, field_at(&st, cache_fields[f].off));
            }
        }
    }
}

static void sink_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    for (size_t f = 0; f <= sizeof(sink_fields) / sizeof(sink_fields[0]); f++) {
        int connected = f == sizeof(sink_fields) / sizeof(sink_fields[0]);

        if (connected)
            pskgw_metrics_family(m, "pskgw_sink_connected", "gauge",
                                 "1 while the sink's target accepts messages");
        else
            family(m, &sink_fields[f], 1);
        for (size_t i = 0; i < n; i++) {
            size_t count = ds[i]->sinks ? pskgw_sinkset_count(ds[i]->sinks) : 0;

            for (size_t s = 0; s < count; s++) {
                pskgw_sink_stats_t st;
                const char *name = NULL;
                char lab[600];

                if (pskgw_sinkset_stats(ds[i]->sinks, s, &name, &st) < 0)
                    continue;
                /* The set names its sinks "<domain>-<sink>[-wN]" (spool file names); the label
                 * is the sink's name as configured, the same in every worker. */
                if (s < ds[i]->cfg->nsinks)
                    name = ds[i]->cfg->sinks[s].name;
                labels2(lab, sizeof(lab), "domain", ds[i]->cfg->name, "sink", name);
                if (connected)
                    pskgw_metrics_sample(m, "pskgw_sink_connected", lab, st.connected ? 1 : 0);
                else
                    sample(m, &sink_fields[f], 1, lab, field_at(&st, sink_fields[f].off));
            }
        }
    }
}

/* pskgw_sink_latency_seconds: one histogram per sink, its bounds (microseconds) formatted once
 * per snapshot. */
static void sink_latency_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    static const char *const H = "pskgw_sink_latency_seconds";
    char le[PSKGW_SINK_LAT_BUCKETS + 1][LE_TEXT];

    for (int b = 0; b < PSKGW_SINK_LAT_BUCKETS; b++)
        snprintf(le[b], LE_TEXT, ",le=\"%g\"", pskgw_sink_latency_bounds_us[b] / 1e6);
    snprintf(le[PSKGW_SINK_LAT_BUCKETS], LE_TEXT, ",le=\"+Inf\"");
    pskgw_metrics_family(m, H, "histogram",
                         "message latency, record decrypted to delivered by the sink");
    for (size_t i = 0; i < n; i++) {
        size_t count = ds[i]->sinks ? pskgw_sinkset_count(ds[i]->sinks) : 0;

        for (size_t s = 0; s < count; s++) {
            pskgw_sink_stats_t st;
            const char *name = NULL;
            char a[600], lab[700];

            if (pskgw_sinkset_stats(ds[i]->sinks, s, &name, &st) < 0)
                continue;
            if (s < ds[i]->cfg->nsinks)
                name = ds[i]->cfg->sinks[s].name; /* as in sink_metrics() */
            labels2(a, sizeof(a), "domain", ds[i]->cfg->name, "sink", name);
            for (int b = 0; b <= PSKGW_SINK_LAT_BUCKETS; b++) {
                cat(lab, sizeof(lab), a, le[b], NULL, NULL);
                pskgw_metrics_sample(m, "pskgw_sink_latency_seconds_bucket", lab, st.latency_le[b]);
            }
            pskgw_metrics_sample_micro(m, "pskgw_sink_latency_seconds_sum", a, st.latency_sum_us);
            pskgw_metrics_sample(m, "pskgw_sink_latency_seconds_count", a, st.latency_count);
        }
    }
}

static void upstream_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    char le[PSKGW_UPSTREAM_LAT_BUCKETS + 1][LE_TEXT];
    int le_done = 0;

    pskgw_metrics_family(m, "pskgw_upstream_requests_total", "counter",
                         "security-service requests by operation and outcome");
    for (size_t i = 0; i < n; i++) {
        pskgw_upstream_stats_t st;

        if (!ds[i]->up)
            continue;
        pskgw_upstream_stats(ds[i]->up, &st);
        for (int op = 0; op < PSKGW_UPSTREAM_OP_COUNT_; op++) {
            for (int o = 0; o < PSKGW_UPSTREAM_OUT_COUNT_; o++) {
                char a[600];
                char lab[800];

                labels2(a, sizeof(a), "domain", ds[i]->cfg->name, "op",
                        pskgw_upstream_op_name((pskgw_upstream_op_t)op));
                cat(lab, sizeof(lab), a, ",outcome=\"",
                    pskgw_upstream_outcome_name((pskgw_upstream_outcome_t)o), "\"");
                pskgw_metrics_sample(m, "pskgw_upstream_requests_total", lab, st.outcomes[op][o]);
            }
        }
    }
    /* Seconds, the base unit Prometheus expects (promtool flags _ms); the buckets are kept in
     * milliseconds by the upstream module and written here as seconds. */
    pskgw_metrics_family(m, "pskgw_upstream_latency_seconds", "histogram",
                         "security-service request latency, call to callback");
    for (size_t i = 0; i < n; i++) {
        pskgw_upstream_stats_t st;

        if (!ds[i]->up)
            continue;
        pskgw_upstream_stats(ds[i]->up, &st);
        for (int op = 0; op < PSKGW_UPSTREAM_OP_COUNT_; op++) {
            char a[600];
            char lab[800];

            labels2(a, sizeof(a), "domain", ds[i]->cfg->name, "op",
                    pskgw_upstream_op_name((pskgw_upstream_op_t)op));
            if (!le_done)
                le_texts(le, pskgw_upstream_latency_bounds_ms, PSKGW_UPSTREAM_LAT_BUCKETS,
                         &le_done);
            for (int b = 0; b <= PSKGW_UPSTREAM_LAT_BUCKETS; b++) {
                cat(lab, sizeof(lab), a, le[b], NULL, NULL);
                pskgw_metrics_sample(m, "pskgw_upstream_latency_seconds_bucket", lab,
                                     st.latency_le[op][b]);
            }
            pskgw_metrics_sample_milli(m, "pskgw_upstream_latency_seconds_sum", a,
                                       st.latency_sum_ms[op]);
            pskgw_metrics_sample(m, "pskgw_upstream_latency_seconds_count", a,
                                 st.latency_count[op]);
        }
    }
    static const struct {
        const char *name;
        const char *type;
        const char *help;
    } extra[] = {
        { "pskgw_upstream_retries_total", "counter", "HTTP attempts after the first" },
        { "pskgw_upstream_reauth_total", "counter", "401 answers that dropped the token" },
        { "pskgw_upstream_token_renewals_total", "counter", "successful authentications" },
        { "pskgw_upstream_in_flight", "gauge", "requests admitted now" },
        { "pskgw_upstream_queued", "gauge", "requests waiting for a slot now" },
        { "pskgw_upstream_token_valid", "gauge", "1 while a usable token is held" },
    };
    for (size_t e = 0; e < sizeof(extra) / sizeof(extra[0]); e++) {
        pskgw_metrics_family(m, extra[e].name, extra[e].type, extra[e].help);
        for (size_t i = 0; i < n; i++) {
            pskgw_upstream_stats_t st;
            uint64_t v[6];
            char lab[300];

            if (!ds[i]->up)
                continue;
            pskgw_upstream_stats(ds[i]->up, &st);
            v[0] = st.retries;
            v[1] = st.reauth_on_401;
            v[2] = st.token_renewals;
            v[3] = st.in_flight;
            v[4] = st.queued;
            v[5] = st.token_valid ? 1 : 0;
            pskgw_metrics_label(lab, sizeof(lab), "domain", ds[i]->cfg->name);
            pskgw_metrics_sample(m, extra[e].name, lab, v[e]);
        }
    }
}

static void e2e_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    pskgw_metrics_family(m, "pskgw_e2e_payloads_total", "counter",
                         "payloads by E2E outcome (plain, decrypted, rejected:<reason>)");
    for (size_t i = 0; i < n; i++) {
        pskgw_e2e_counters_t c;
        char a[300];
        char lab[400];

        if (!ds[i]->e2e)
            continue;
        pskgw_e2e_counters(ds[i]->e2e, &c);
        pskgw_metrics_label(a, sizeof(a), "domain", ds[i]->cfg->name);
        cat(lab, sizeof(lab), a, ",outcome=\"plain\"", NULL, NULL);
        pskgw_metrics_sample(m, "pskgw_e2e_payloads_total", lab, c.plain);
        cat(lab, sizeof(lab), a, ",outcome=\"decrypted\"", NULL, NULL);
        pskgw_metrics_sample(m, "pskgw_e2e_payloads_total", lab, c.decrypted);
        for (int r = PSKGW_E2E_REASON_NOT_E2E; r < PSKGW_E2E_REASON_COUNT_; r++) {
            if (r == PSKGW_E2E_REASON_CANCELED)
                continue;
            cat(lab, sizeof(lab), a, ",outcome=\"rejected\",reason=\"",
                pskgw_e2e_reason_name((pskgw_e2e_reason_t)r), "\"");
            pskgw_metrics_sample(m, "pskgw_e2e_payloads_total", lab, c.rejected_by[r]);
        }
        /* rejected by the gateway after decryption (also counted as decrypted above) */
        cat(lab, sizeof(lab), a, ",outcome=\"rejected\",reason=\"uid_mismatch\"", NULL, NULL);
        pskgw_metrics_sample(m, "pskgw_e2e_payloads_total", lab, ds[i]->c.e2e_uid_mismatch);
        cat(lab, sizeof(lab), a, ",outcome=\"rejected\",reason=\"replay\"", NULL, NULL);
        pskgw_metrics_sample(m, "pskgw_e2e_payloads_total", lab, ds[i]->c.e2e_replay_rejected);
    }
}

static void identity_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    pskgw_metrics_family(m, "pskgw_domain_identities_refused_total", "counter",
                         "PSK identities no module can produce, refused without any lookup");
    for (size_t i = 0; i < n; i++) {
        char a[300];
        char lab[400];

        pskgw_metrics_label(a, sizeof(a), "domain", ds[i]->cfg->name);
        for (int r = PSKGW_PSK_ID_LENGTH; r < PSKGW_PSK_ID_REASON_COUNT_; r++) {
            cat(lab, sizeof(lab), a, ",reason=\"",
                pskgw_psk_id_reason_name((pskgw_psk_id_reason_t)r), "\"");
            pskgw_metrics_sample(m, "pskgw_domain_identities_refused_total", lab,
                                 ds[i]->c.identities_refused[r]);
        }
        cat(lab, sizeof(lab), a, ",reason=\"denied\"", NULL, NULL);
        pskgw_metrics_sample(m, "pskgw_domain_identities_refused_total", lab,
                             ds[i]->c.identities_denied);
    }
}

void pskgw_domain_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    for (size_t f = 0; f < sizeof(domain_fields) / sizeof(domain_fields[0]); f++) {
        pskgw_metrics_family(m, domain_fields[f].name, domain_fields[f].type,
                             domain_fields[f].help);
        for (size_t i = 0; i < n; i++) {
            char lab[300];

            pskgw_metrics_label(lab, sizeof(lab), "domain", ds[i]->cfg->name);
            pskgw_metrics_sample(m, domain_fields[f].name, lab,
                                 field_at(&ds[i]->c, domain_fields[f].off));
        }
    }
    listener_metrics(ds, n, m);
    forward_metrics(ds, n, m);
    upstream_metrics(ds, n, m);
    cache_metrics(ds, n, m);
    identity_metrics(ds, n, m);
    e2e_metrics(ds, n, m);
    sink_metrics(ds, n, m);
    sink_latency_metrics(ds, n, m);
    pskgw_resume_metrics(ds, n, m);
    pskgw_domain_sessions_metrics(ds, n, m);
}
