/* Reload, the listeners' part: see reload_listeners.h. */
#include "gateway/reload_listeners.h"
#include "gateway/listen_reload.h"

#include "common/err.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The settings that need a new listener (socket, framing, forwarding flows). The rest applies
 * to a running one: ack in place, the DTLS/TLS settings through a new context
 * (listen_reload.h). */
static int listener_eq(const pskgw_config_listener_t *a, const pskgw_config_listener_t *b)
{
    return str_eq(a->name, b->name) && a->proto == b->proto && str_eq(a->address, b->address) &&
           a->port == b->port && a->framing == b->framing && str_eq(a->forward, b->forward) &&
           a->proxy_protocol == b->proxy_protocol &&
           a->forward_connect_timeout_ms == b->forward_connect_timeout_ms &&
           a->forward_buffer_bytes == b->forward_buffer_bytes;
}

/* The DTLS/TLS settings of listener l of domain c, as pskgw_domain_start_listener gives them. */
static void dtls_opts(const pskgw_config_domain_t *c, const pskgw_config_listener_t *l,
                      pskgw_listener_dtls_t *o)
{
    memset(o, 0, sizeof(*o));
    o->ciphers = c->ciphers;
    o->max_message = l->max_message_bytes;
    o->max_identity_len = c->limits.max_identity_len;
    o->max_parked_bytes = c->limits.max_parked_bytes;
    o->handshake_timeout_ms = c->limits.handshake_timeout_ms;
    o->half_open_timeout_ms = c->limits.half_open_timeout_ms;
    o->idle_timeout_s = c->limits.idle_timeout_s;
    o->cookie_rotate_s = l->cookie_rotate_s;
    o->hibernate_after_s = l->hibernate_after_s ? l->hibernate_after_s : UINT32_MAX;
    o->cid_len = l->cid == PSKGW_CONFIG_CID_ON ? (uint8_t)l->cid_length : 0;
}

/* The limits a running listener takes at reload (listen_reload.h). */
static void set_limits(pskgw_listener_t *l, const pskgw_config_limits_t *c)
{
    pskgw_listener_limits_t lim = {
        .max_sessions = c->max_sessions,
        .max_pending_handshakes = c->max_pending_handshakes,
        .handshakes_per_s = c->per_ip_handshakes_per_s,
        .handshake_burst = c->per_ip_handshake_burst,
        .identity_fail_max = c->identity_fail_max,
        .source_fail_max = c->source_fail_max,
        .fail_period_s = c->identity_block_s,
        .half_open_per_source = c->half_open_per_source,
        .ipv6_source_prefix = c->ipv6_source_prefix,
    };

    pskgw_listener_set_limits(l, &lim);
}

struct lctx *pskgw_reload_find_listener(pskgw_domain_t *d, const pskgw_config_listener_t *l)
{
    for (size_t i = 0; i < d->nlis; i++)
        if (d->lis[i]->cfg && d->lis[i]->l && listener_eq(d->lis[i]->cfg, l))
            return d->lis[i];
    return NULL;
}

/* The new listener list: kept ones (not yet repointed) and started ones. On error the started
 * ones are closed again and nothing changed. */
int pskgw_reload_build_listeners(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg,
                                 struct lctx **next)
{
    const pskgw_config_domain_t *ocfg = d->cfg;
    size_t i;
    int rc = 0;

    /* new listeners read d->cfg (limits, ciphers, name): the new configuration's */
    d->cfg = ncfg;
    for (i = 0; i < ncfg->nlisteners && rc == 0; i++) {
        next[i] = pskgw_reload_find_listener(d, &ncfg->listeners[i]);
        if (next[i])
            continue;
        next[i] = pskgw_domain_lctx_new(d, &ncfg->listeners[i]);
        rc = next[i] ? pskgw_domain_start_listener(d, next[i]) : PSKGW_ENOMEM;
        if (rc < 0 && next[i]) {
            pskgw_domain_lctx_unref(next[i]);
            next[i] = NULL;
        }
    }
    d->cfg = ocfg;
    if (rc == 0)
        return 0;
    for (size_t j = 0; j < i; j++)
        if (next[j] && !pskgw_reload_find_listener(d, &ncfg->listeners[j]))
            pskgw_domain_listener_retire(d, next[j]);
    return rc;
}

/* New DTLS contexts for the listeners this reload keeps (listen_reload.h), made before
 * anything changes; ctxs[i] NULL for a listener started by this reload (it took everything). */
int pskgw_reload_prepare_dtls(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg,
                              struct lctx **next, pskgw_dtls_ctx_t **ctxs)
{
    for (size_t i = 0; i < ncfg->nlisteners; i++) {
        pskgw_listener_dtls_t o;
        const char *why = NULL;
        int rc;

        if (pskgw_reload_find_listener(d, &ncfg->listeners[i]) == NULL)
            continue;
        dtls_opts(ncfg, &ncfg->listeners[i], &o);
        rc = pskgw_listener_dtls_make(next[i]->l, &o, &ctxs[i], &why);
        if (rc < 0) {
            PSKGW_ERR("domain \"%s\": listener \"%s\": new DTLS settings refused: %s", ncfg->name,
                      ncfg->listeners[i].name, why ? why : pskgw_strerror(rc));
            for (size_t j = 0; j < i; j++) {
                pskgw_dtls_ctx_free(ctxs[j]);
                ctxs[j] = NULL;
            }
            return rc;
        }
    }
    return 0;
}

static const pskgw_config_listener_t *find_named(const pskgw_config_domain_t *c, const char *name)
{
    for (size_t i = 0; i < c->nlisteners; i++)
        if (str_eq(c->listeners[i].name, name))
            return &c->listeners[i];
    return NULL;
}

/* The reload's session_cache on a kept listener's session-ID cache (its keys just replaced). */
static void apply_session_cache(const char *domain, struct lctx *x, uint32_t entries)
{
    size_t evicted = 0;
    int rc = pskgw_listener_apply_session_cache(x->l, &evicted);

    if (rc == PSKGW_EUNSUPPORTED)
        PSKGW_WARN("domain \"%s\": listener \"%s\": session_cache %u: the listener was started "
                   "without a session-ID cache: applies to a new listener or after a restart",
                   domain, x->name, (unsigned)entries);
    else if (rc < 0)
        PSKGW_WARN("domain \"%s\": listener \"%s\": session_cache %u not applied: %s", domain,
                   x->name, (unsigned)entries, pskgw_strerror(rc));
    else if (evicted > 0)
        PSKGW_NOTICE("domain \"%s\": listener \"%s\": session_cache %u: %zu session ID(s) "
                     "dropped (%s)",
                     domain, x->name, (unsigned)entries, evicted,
                     entries == 0 ? "all: no session-ID resumption" : "the least recently used");
}

/* commit: listeners not kept close (their sessions end), kept ones read the new config and
 * take their new DTLS context (ctxs[i], taken). */
void pskgw_reload_commit_listeners(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg,
                                   struct lctx **next, pskgw_dtls_ctx_t **ctxs,
                                   pskgw_ticket_keys_t *nk)
{
    for (size_t i = 0; i < d->nlis; i++) {
        size_t j = 0;

        while (j < ncfg->nlisteners && next[j] != d->lis[i])
            j++;
        if (j < ncfg->nlisteners)
            continue;
        if (find_named(ncfg, d->lis[i]->name) != NULL)
            PSKGW_NOTICE("domain \"%s\": listener \"%s\" replaced: its proto, address, port, "
                         "framing or forwarding changed, which takes a new socket (the old "
                         "one's sessions end)",
                         ncfg->name, d->lis[i]->name);
        else
            PSKGW_NOTICE("domain \"%s\": listener \"%s\" closed", ncfg->name, d->lis[i]->name);
        pskgw_domain_listener_retire(d, d->lis[i]);
    }
    for (size_t i = 0; i < ncfg->nlisteners; i++) {
        next[i]->cfg = &ncfg->listeners[i];
        next[i]->ack = ncfg->listeners[i].ack == PSKGW_CONFIG_ACK_ACCEPTED;
        set_limits(next[i]->l, &ncfg->limits);
        if (ctxs[i] != NULL) {
            pskgw_listener_dtls_t o;

            dtls_opts(ncfg, &ncfg->listeners[i], &o);
            pskgw_listener_dtls_swap(next[i]->l, &o, ctxs[i]);
            ctxs[i] = NULL;
        }
        if (nk != NULL && pskgw_listener_set_tickets(next[i]->l, nk) < 0)
            PSKGW_WARN("domain \"%s\": listener \"%s\": resumption switched on by a reload: "
                       "applies to a new listener or after a restart",
                       ncfg->name, next[i]->name);
        else if (nk != NULL)
            apply_session_cache(ncfg->name, next[i], pskgw_ticket_keys_session_cache(nk));
    }
}
