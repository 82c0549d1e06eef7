/* One domain: the wiring between the modules (see domain.h): building them from the config,
 * health, and the close in dependency order. The lookup adapters between the modules live in
 * domain_resolve.c, the message path (E2E, sinks, acks) in domain_e2e.c. */
#include "gateway/domain.h"
#include "gateway/admin_routes.h"
#include "gateway/domain_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "e2e/e2e.h"
#include "e2e/replay.h"
#include "gateway/forward_config.h"
#include "gateway/listen_api.h"
#include "gateway/sessredis.h"
#include "keycache/keycache.h"
#include "sinks/sinkset.h"
#include "upstream/upstream.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- building the domain ----------------------------------------------------------------- */

static int start_upstream(pskgw_domain_t *d)
{
    const pskgw_config_api_t *a = &d->cfg->api;
    pskgw_upstream_opts_t o;
    int rc;

    pskgw_upstream_opts_init(&o);
    o.name = d->cfg->name;
    o.base_url = a->url;
    o.key_id = a->key_id;
    o.secret = a->secret.data;
    o.auth_mode = a->auth_header == PSKGW_CONFIG_AUTH_BEARER ? PSKGW_UPSTREAM_AUTH_BEARER
                                                             : PSKGW_UPSTREAM_AUTH_RAW;
    o.psk_key_bits = a->psk_key_bits;
    o.timeout_ms = a->timeout_ms;
    o.deadline_ms = a->deadline_ms;
    o.max_in_flight = a->max_in_flight;
    o.queue_size = a->queue_size;
    o.max_connections = a->max_connections;
    o.ca_file = a->ca_file;
    o.path_authenticate = a->paths.authenticate;
    o.path_get_psk = a->paths.get_psk;
    o.path_e2e_params = a->paths.e2e_params;
    o.backoff_base_ms = a->retry_min_ms;
    o.backoff_max_ms = a->retry_max_ms;
    rc = pskgw_upstream_new(d->loop, &o, &d->up);
    if (rc == 0)
        pskgw_upstream_warmup(d->up);
    return rc;
}

static int start_cache(pskgw_domain_t *d, const char *name, size_t entries, uint32_t ttl_s,
                       pskgw_keycache_backend_t backend, pskgw_keycache_t **out)
{
    const pskgw_config_cache_t *c = &d->cfg->cache;
    pskgw_keycache_opts_t o;

    pskgw_keycache_opts_init(&o);
    o.loop = d->loop;
    o.name = name;
    o.domain = d->cfg->name;
    o.backend = backend;
    o.entries = entries;
    o.ttl_s = ttl_s;
    o.negative_ttl_s = c->negative_ttl_s;
    o.negative_entries = c->negative_entries;
    o.stale_s = c->stale_s;
    if (c->max_waiters)
        o.max_waiters = c->max_waiters;
    o.max_key_len = 2 * (size_t)d->cfg->limits.max_identity_len;
    if (o.max_key_len < 64)
        o.max_key_len = 64;
    if (o.max_key_len > PSKGW_KEYCACHE_KEY_MAX)
        o.max_key_len = PSKGW_KEYCACHE_KEY_MAX;
    if (c->has_redis) {
        o.redis_host = c->redis.host;
        o.redis_port = c->redis.port;
        o.redis_sentinels = c->redis.sentinels;
        o.redis_master_name = c->redis.master_name;
        o.redis_db = (int)c->redis.db;
        o.redis_password = c->redis.password.data;
        if (c->redis_timeout_ms)
            o.redis_timeout_ms = c->redis_timeout_ms;
        o.kek = c->has_kek ? c->kek : NULL;
        o.kek_id = 1;
    }
    if (strcmp(name, "e2e") == 0) { /* parameters kept decoded: a hit is a copy */
        o.decode = pskgw_e2e_params_decode_hook;
        o.decoded_size = sizeof(pskgw_e2e_params_t);
    }
    if (strcmp(name, "psk") == 0) {
        o.key_check = pskgw_domain_psk_identity_check;
        o.key_check_arg = d;
        o.broadcast = true; /* revocations across gateways (admin_routes.h) */
        o.on_remote = pskgw_admin_routes_remote;
        o.remote_arg = d;
    }
    o.data = d;
    return pskgw_keycache_new(&o, out);
}

static int start_sinks(pskgw_domain_t *d)
{
    struct pskgw_domain_sink_opts *b = NULL;
    const pskgw_sink_options_t *opts = NULL;
    int rc;

    if (d->cfg->nsinks == 0) /* forward-only domain: d->sinks stays NULL */
        return 0;
    rc = pskgw_domain_sink_opts(d, d->cfg, &b, &opts);
    if (rc < 0)
        return rc;
    rc = pskgw_sinkset_new(d->loop, opts, d->cfg->nsinks, &d->sinks);
    if (rc < 0)
        PSKGW_ERR("domain \"%s\": sinks not started: %s", d->cfg->name, pskgw_strerror(rc));
    pskgw_domain_sink_opts_free(b);
    return rc;
}

int pskgw_domain_start_listener(pskgw_domain_t *d, struct lctx *lc)
{
    const pskgw_config_listener_t *l = lc->cfg;
    const pskgw_config_limits_t *lim = &d->cfg->limits;
    pskgw_listener_opts_t o;
    const char *why = NULL;
    int rc;

    memset(&o, 0, sizeof(o));
    o.domain = d->cfg->name;
    o.name = l->name;
    o.proto = l->proto == PSKGW_CONFIG_PROTO_UDP ? PSKGW_LISTEN_UDP : PSKGW_LISTEN_TCP;
    o.address = l->address;
    o.port = l->port;
    o.framing = l->framing == PSKGW_CONFIG_FRAMING_LEN16     ? PSKGW_FRAMING_LEN16
                : l->framing == PSKGW_CONFIG_FRAMING_NEWLINE ? PSKGW_FRAMING_NEWLINE
                                                             : PSKGW_FRAMING_RECORD;
    o.max_message = l->max_message_bytes;
    o.ciphers = d->cfg->ciphers;
    o.max_sessions = lim->max_sessions;
    o.max_pending_handshakes = lim->max_pending_handshakes;
    o.handshake_timeout_ms = lim->handshake_timeout_ms;
    o.idle_timeout_s = lim->idle_timeout_s;
    /* The listener reads 0 as "its default": "off" in the config becomes "never reached". */
    o.handshakes_per_ip = lim->per_ip_handshakes_per_s ? lim->per_ip_handshakes_per_s : UINT32_MAX;
    o.handshakes_per_ip_burst = lim->per_ip_handshakes_per_s ? lim->per_ip_handshake_burst : 0;
    o.identity_failure_max = lim->identity_fail_max ? lim->identity_fail_max : UINT32_MAX;
    o.source_failure_max = lim->source_fail_max ? lim->source_fail_max : UINT32_MAX;
    o.identity_block_s = lim->identity_block_s;
    o.half_open_timeout_ms = lim->half_open_timeout_ms;
    o.half_open_per_source = lim->half_open_per_source ? lim->half_open_per_source : UINT32_MAX;
    o.ipv6_source_prefix = lim->ipv6_source_prefix;
    o.max_identity_len = lim->max_identity_len;
    o.max_parked_bytes = lim->max_parked_bytes;
    o.cookie_rotate_s = l->cookie_rotate_s;
    o.hibernate_after_s = l->hibernate_after_s ? l->hibernate_after_s : UINT32_MAX;
    /* Lookup admission: by default the listeners share the upstream client's in-flight bound,
     * so that lookups wait in the fair per-source queues, not in the client's FIFO. */
    o.lookups_in_flight = lim->lookups_in_flight;
    if (o.lookups_in_flight == 0)
        o.lookups_in_flight =
            d->cfg->nlisteners > 0 && d->cfg->api.max_in_flight > d->cfg->nlisteners
                ? (uint32_t)(d->cfg->api.max_in_flight / d->cfg->nlisteners)
                : 1;
    o.lookups_per_source = lim->lookups_per_source;
    o.lookup_queue_per_source =
        lim->lookup_queue_per_source ? lim->lookup_queue_per_source : UINT32_MAX;
    o.lookups_per_source_per_s =
        lim->lookups_per_source_per_s ? lim->lookups_per_source_per_s : UINT32_MAX;
    o.lookup_burst = lim->lookup_burst;
    o.good_source_reserve =
        (uint32_t)((uint64_t)o.lookups_in_flight * lim->good_source_share_pct / 100);
    if (o.good_source_reserve == 0)
        o.good_source_reserve = UINT32_MAX;
    o.good_source_window_s = lim->good_source_window_s ? lim->good_source_window_s : UINT32_MAX;
    o.reuseport = d->worker >= 0;
    /* DTLS Connection ID: byte 0 of every CID names this worker (dtls/cid.h). */
    o.cid_len = l->cid == PSKGW_CONFIG_CID_ON ? (uint8_t)l->cid_length : 0;
    o.worker = d->worker > 0 ? (uint8_t)d->worker : 0;
    o.tickets = d->tickets;
    if (o.proto == PSKGW_LISTEN_UDP && l->forward == NULL && d->sessions != NULL) {
        o.sessions = d->sessions; /* hibernated sessions shared through Redis */
        o.sessions_park_per_source = d->cfg->sessions.park_per_source;
        o.sessions_park_total = d->cfg->sessions.park_total;
    }
    rc = pskgw_forward_opts_from_config(l, &o); /* forward = "tcp://..." | "udp://..." */
    if (rc == 0)
        rc = pskgw_listener_new(d->loop, &o, &d->resolver, pskgw_domain_on_message, lc, &lc->l,
                                &why);
    if (rc < 0) {
        PSKGW_ERR("domain \"%s\": listener \"%s\" on %s %s:%u not started: %s%s%s", d->cfg->name,
                  l->name, pskgw_config_proto_name(l->proto), l->address, (unsigned)l->port,
                  pskgw_strerror(rc), why ? ": " : "", why ? why : "");
        lc->l = NULL;
        return rc;
    }
    PSKGW_NOTICE("domain \"%s\": listener \"%s\" on %s %s:%u", d->cfg->name, l->name,
                 pskgw_config_proto_name(l->proto), l->address,
                 (unsigned)pskgw_listener_port(lc->l));
    return 0;
}

int pskgw_domain_start_lookup(pskgw_domain_t *d)
{
    const pskgw_config_domain_t *cfg = d->cfg;
    pskgw_keycache_backend_t psk_backend = pskgw_domain_psk_backend(d);
    pskgw_keycache_backend_t e2e_backend = pskgw_domain_e2e_backend(d);
    int rc = start_upstream(d);

    if (rc < 0) {
        PSKGW_ERR("domain \"%s\": security-service client not started: %s", cfg->name,
                  pskgw_strerror(rc));
        return rc;
    }
    rc = start_cache(d, "psk", cfg->cache.entries, cfg->cache.ttl_s, psk_backend, &d->psk_cache);
    if (rc == 0)
        rc = start_cache(d, "e2e", cfg->cache.e2e_entries, cfg->cache.e2e_ttl_s, e2e_backend,
                         &d->e2e_cache);
    if (rc < 0)
        PSKGW_ERR("domain \"%s\": key cache not started: %s", cfg->name, pskgw_strerror(rc));
    return rc;
}

int pskgw_domain_start(uv_loop_t *loop, const pskgw_config_domain_t *cfg, int worker,
                       pskgw_domain_t **out)
{
    bool later;

    return pskgw_domain_start_cb(loop, cfg, worker, out, NULL, NULL, &later);
}

int pskgw_domain_start_cb(uv_loop_t *loop, const pskgw_config_domain_t *cfg, int worker,
                          pskgw_domain_t **out, void (*failed_cb)(void *arg), void *arg,
                          bool *later)
{
    pskgw_domain_t *d = calloc(1, sizeof(*d));
    pskgw_e2e_opts_t e2e_opts;
    int rc;

    *later = false;
    if (!d)
        return PSKGW_ENOMEM; /* nothing to close: failed_cb does not fire */
    d->loop = loop;
    d->cfg = cfg;
    d->worker = worker;
    d->mode = cfg->e2e == PSKGW_CONFIG_E2E_REQUIRED ? PSKGW_E2E_MODE_REQUIRED
              : cfg->e2e == PSKGW_CONFIG_E2E_AUTO   ? PSKGW_E2E_MODE_AUTO
                                                    : PSKGW_E2E_MODE_OFF;
    e2e_opts.header_case = cfg->e2e_header_case == PSKGW_CONFIG_E2E_HEADER_UPPER
                               ? PSKGW_E2E_HEADER_UPPER
                               : PSKGW_E2E_HEADER_LOWER;
    e2e_opts.v2_layout =
        cfg->e2e_v2_layout == PSKGW_CONFIG_E2E_V2_PAD1 ? PSKGW_E2E_V2_PAD1 : PSKGW_E2E_V2_SEED;
    d->resolver = pskgw_domain_psk_resolver(d);
    d->e2e_src = pskgw_domain_e2e_source(d);
    d->lis = calloc(cfg->nlisteners, sizeof(*d->lis));
    if (!d->lis) {
        free(d);
        return PSKGW_ENOMEM; /* nothing to close: failed_cb does not fire */
    }
    for (; d->nlis < cfg->nlisteners; d->nlis++) {
        d->lis[d->nlis] = pskgw_domain_lctx_new(d, &cfg->listeners[d->nlis]);
        if (!d->lis[d->nlis]) {
            rc = PSKGW_ENOMEM;
            goto fail;
        }
    }

    rc = pskgw_domain_start_lookup(d);
    if (rc < 0)
        goto fail;
    rc = pskgw_e2e_new_opts(&d->e2e_src, &e2e_opts, &d->e2e);
    if (rc == 0 && d->mode != PSKGW_E2E_MODE_OFF)
        rc = pskgw_domain_start_replay(d);
    if (rc < 0)
        goto fail;
    rc = start_sinks(d);
    if (rc == 0)
        rc = pskgw_resume_keys(d->cfg, &d->tickets);
    if (rc == 0)
        rc = pskgw_domain_start_sessions(d);
    if (rc < 0)
        goto fail;
    for (size_t i = 0; i < d->nlis; i++) {
        rc = pskgw_domain_start_listener(d, d->lis[i]);
        if (rc < 0)
            goto fail;
    }
    *out = d;
    return 0;
fail:
    *later = true;
    pskgw_domain_close(d, failed_cb, arg);
    return rc;
}

void pskgw_domain_reopen(pskgw_domain_t *d)
{
    if (d->sinks)
        pskgw_sinkset_reopen(d->sinks);
}

int pskgw_domain_healthy(pskgw_domain_t *d)
{
    uint64_t drops = 0;
    uint64_t now;

    if (d->closing || (!d->sinks && d->cfg->nsinks > 0))
        return 0;
    for (size_t i = 0; d->sinks && i < pskgw_sinkset_count(d->sinks); i++) {
        pskgw_sink_stats_t st;
        const char *name;

        if (pskgw_sinkset_stats(d->sinks, i, &name, &st) == 0)
            drops += st.dropped;
    }
    now = uv_now(d->loop);
    if (drops > d->drops_seen) {
        d->drops_seen = drops;
        d->last_drop_ms = now ? now : 1;
    }
    if (d->last_drop_ms && now - d->last_drop_ms < PSKGW_DOMAIN_DROP_HOLD_MS)
        return 0;
    for (size_t i = 0; i < d->nlis; i++)
        if (!d->lis[i]->l)
            return 0;
    return 1;
}

/* ---- shutdown, in dependency order ------------------------------------------------------- */

static void close_upstream_phase(pskgw_domain_t *d);

static void upstream_closed(void *arg)
{
    pskgw_domain_t *d = arg;
    void (*cb)(void *) = d->close_cb;
    void *cb_arg = d->close_arg;

    pskgw_e2e_replay_free(d->replay);
    pskgw_ticket_keys_free(d->tickets);
    for (size_t i = 0; i < d->nlis; i++)
        pskgw_domain_lctx_unref(d->lis[i]);
    free(d->lis);
    free(d);
    if (cb)
        cb(cb_arg);
}

static void close_upstream_phase(pskgw_domain_t *d)
{
    if (d->up) {
        pskgw_upstream_close(d->up, upstream_closed, d);
        d->up = NULL;
    } else {
        upstream_closed(d);
    }
}

static void cache_closed(pskgw_keycache_t *kc)
{
    pskgw_domain_t *d = pskgw_keycache_data(kc);

    if (--d->pending == 0)
        close_upstream_phase(d);
}

static void sessions_closed(void *arg)
{
    pskgw_domain_t *d = arg;

    if (--d->pending == 0)
        close_upstream_phase(d);
}

static void close_caches_phase(pskgw_domain_t *d)
{
    pskgw_keycache_t *caches[2] = { d->psk_cache, d->e2e_cache };
    pskgw_sessredis_t *sessions = d->sessions;

    d->psk_cache = d->e2e_cache = NULL;
    d->sessions = NULL;
    d->pending = (caches[0] != NULL) + (caches[1] != NULL) + (sessions != NULL);
    if (d->pending == 0) {
        close_upstream_phase(d);
        return;
    }
    if (sessions != NULL) /* the listeners are closed: no lookup of theirs is left */
        pskgw_sessredis_close(sessions, sessions_closed, d);
    for (int i = 0; i < 2; i++)
        if (caches[i])
            pskgw_keycache_close(caches[i], cache_closed);
}

static void sinks_closed(void *arg)
{
    close_caches_phase(arg);
}

static void close_sinks_phase(pskgw_domain_t *d)
{
    pskgw_sinkset_t *s = d->sinks;

    /* Pending E2E requests end first (their callbacks see REASON_CANCELED and free their
     * messages); then the sinks flush or spool what they hold. */
    pskgw_e2e_free(d->e2e);
    d->e2e = NULL;
    if (!s) {
        close_caches_phase(d);
        return;
    }
    pskgw_sinkset_close(s, sinks_closed, d);
}

static void listener_closed(pskgw_listener_t *l, void *arg)
{
    pskgw_domain_t *d = arg;

    (void)l;
    if (--d->pending == 0) {
        close_sinks_phase(d);
    }
}

void pskgw_domain_retired_done(pskgw_domain_t *d)
{
    d->retiring--;
    if (d->closing)
        listener_closed(NULL, d);
}

static void retired_listener_closed(pskgw_listener_t *l, void *arg)
{
    struct lctx *lc = arg;
    pskgw_domain_t *d = lc->d;

    (void)l;
    pskgw_domain_lctx_unref(lc);
    pskgw_domain_retired_done(d);
}

void pskgw_domain_listener_retire(pskgw_domain_t *d, struct lctx *lc)
{
    pskgw_listener_t *l = lc->l;

    lc->cfg = NULL;
    if (!l) {
        pskgw_domain_lctx_unref(lc);
        return;
    }
    lc->l = NULL; /* acks from now on find no session */
    d->retiring++;
    pskgw_listener_close(l, retired_listener_closed, lc);
}

void pskgw_domain_close(pskgw_domain_t *d, void (*cb)(void *arg), void *arg)
{
    size_t n = 0;

    if (d->closing)
        return;
    d->closing = 1;
    d->close_cb = cb;
    d->close_arg = arg;
    for (size_t i = 0; i < d->nlis; i++)
        n += d->lis[i]->l != NULL;
    /* listeners a reload removed count too: their close callbacks come through here */
    d->pending = n + d->retiring;
    if (d->pending == 0) {
        close_sinks_phase(d);
        return;
    }
    for (size_t i = 0; i < d->nlis; i++) {
        pskgw_listener_t *l = d->lis[i]->l;

        if (l) {
            d->lis[i]->l = NULL; /* acks from now on find no session */
            pskgw_listener_close(l, listener_closed, d);
        }
    }
}
