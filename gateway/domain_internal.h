/* Inside a domain: shared by domain.c (wiring), domain_resolve.c (lookup adapters),
 * domain_e2e.c (message path), domain_metrics.c (rendering), domain_sinks.c and reload.c. */
#ifndef PSKGW_GATEWAY_DOMAIN_INTERNAL_H
#define PSKGW_GATEWAY_DOMAIN_INTERNAL_H

#include "e2e/e2e.h"
#include "e2e/replay.h"
#include "gateway/domain.h"
#include "gateway/listen_api.h"
#include "gateway/metrics.h"
#include "gateway/resume.h"
#include "keycache/keycache.h"
#include "sinks/sinkset.h"
#include "upstream/upstream.h"

/* One listener of the domain. Heap-owned by the domain through lis[] and, once a reload removed
 * it, by its references: the listener until its close callback, and each message of it still
 * in the E2E stage or the sinks. Freed when refs reaches 0 (lctx_unref). */
struct lctx {
    pskgw_domain_t *d;
    pskgw_listener_t *l;                /* NULL once its close started */
    const pskgw_config_listener_t *cfg; /* the config in force; NULL once removed by a reload */
    char *name;                         /* copied: messages outlive a reloaded config */
    size_t name_len, domain_len;        /* strlen(name), strlen(d->cfg->name): per message */
    int udp;
    int ack;
    size_t refs;
    /* domain_e2e.c: finished message slots, reused (no malloc per message); a stack, singly
     * linked on purpose (common/list.h is for lists walked or unlinked in the middle) */
    struct msg *free_msgs;
    size_t nfree_msgs;
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
    pskgw_ticket_keys_t *tickets;     /* resumption group: the listeners' ticket keys; else NULL */
    struct pskgw_sessredis *sessions; /* sessions group: shared through Redis; else NULL */
    struct lctx **lis;
    size_t nlis;
    size_t retiring; /* listeners a reload removed, and the lookup stack (old_lookup) a reload
                        replaced, whose close has not completed */
    struct pskgw_domain_old_lookup *old_lookup; /* reload.c; NULL: none draining */
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

/* Shared with reload.c (gateway/reload.h). */
struct lctx *pskgw_domain_lctx_new(pskgw_domain_t *d, const pskgw_config_listener_t *cfg);
void pskgw_domain_lctx_unref(struct lctx *lc);
int pskgw_domain_start_listener(pskgw_domain_t *d, struct lctx *lc);
void pskgw_domain_listener_retire(pskgw_domain_t *d, struct lctx *lc);
/* Something counted in d->retiring has closed (the domain's shutdown may go on). */
void pskgw_domain_retired_done(pskgw_domain_t *d);
/* The upstream client and both caches from d->cfg into d->up, d->psk_cache, d->e2e_cache
 * (logged). On error what was made is left in those fields. */
int pskgw_domain_start_lookup(pskgw_domain_t *d);
/* Sink options of cfg's sinks, as the domain names them; *out freed with
 * pskgw_domain_sink_opts_free(). Logs its errors. */
struct pskgw_domain_sink_opts;
int pskgw_domain_sink_opts(pskgw_domain_t *d, const pskgw_config_domain_t *cfg,
                           struct pskgw_domain_sink_opts **out, const pskgw_sink_options_t **opts);
void pskgw_domain_sink_opts_free(struct pskgw_domain_sink_opts *b);

/* d->sessions from d->cfg->sessions (sealed under cache.kek_file; logged). 0 or <0. */
int pskgw_domain_start_sessions(pskgw_domain_t *d);
/* pskgw_sessions_redis_{stores,store_errors,leases}_total{domain},
 * pskgw_sessions_redis_lookups_total{domain,result}, pskgw_sessions_redis_connected{domain}. */
void pskgw_domain_sessions_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m);

/* ---- domain_resolve.c: the adapters between the lookup modules ---- */
/* Backends of the PSK and E2E caches over d->up (GetPSK, GetE2EDecryptionParameters): the
 * upstream answer encoded as the cache value (keycache/psk_value.h, e2e params encoding); an
 * answer that cannot be encoded completes with PSKGW_EPARSE. fetch fails at once (PSKGW_EINVAL
 * for an empty key, one with a NUL or longer than PSKGW_KEYCACHE_KEY_MAX; PSKGW_ENOMEM; the
 * upstream's code) or calls done exactly once; cancel makes it call done with a cancel code. */
pskgw_keycache_backend_t pskgw_domain_psk_backend(pskgw_domain_t *d);
pskgw_keycache_backend_t pskgw_domain_e2e_backend(pskgw_domain_t *d);
/* The listeners' PSK resolver over d->psk_cache. resolve(): PSKGW_ECLOSED once the domain
 * closes, PSKGW_EDENIED for an identity in deny_file (counted in c.identities_denied, logged);
 * else the cache's result: an undecodable value is PSKGW_EUNAVAIL, a value whose ROTPublicUID
 * is denied is PSKGW_EDENIED (counted). lookup(): the same from memory without counting,
 * PSKGW_ENOTFOUND when nothing is cached (PSKGW_EAGAIN when only a stale key is). */
pskgw_psk_resolver_t pskgw_domain_psk_resolver(pskgw_domain_t *d);
/* The E2E stage's parameters source over d->e2e_cache; an undecodable value is
 * PSKGW_EUNAVAIL. */
pskgw_e2e_params_source_t pskgw_domain_e2e_source(pskgw_domain_t *d);
/* The PSK cache's key_check (arg: the domain): 0, or PSKGW_EINVAL for an identity no module can
 * produce (keycache/psk_identity.h), counted in c.identities_refused[reason] and logged. */
int pskgw_domain_psk_identity_check(void *arg, const uint8_t *key, size_t len);

/* ---- domain_e2e.c: the message path ---- */
/* The listeners' message callback (arg: the struct lctx): the message goes through d->e2e in
 * d->mode; a decrypted payload must carry the session's ROTPublicUID (else rejected:
 * c.e2e_uid_mismatch) and is checked against d->replay; then it goes to d->sinks
 * (c.forwarded), and on an ack listener "ACK <seq>" goes back to the session once every sink
 * accepted it. Each message holds a reference on its lctx until it is done. */
void pskgw_domain_on_message(void *arg, const pskgw_msg_meta_t *meta, const uint8_t *data,
                             size_t len);
/* "ACK <seq>" into out (at least 24 bytes), no NUL; returns its length. */
size_t pskgw_domain_format_ack(char *out, uint64_t seq);
/* d->replay from d->cfg (e2e_replay_entries, e2e_replay_window_s) with a random seed:
 * 0, PSKGW_EIO (getrandom, logged) or PSKGW_ENOMEM. */
int pskgw_domain_start_replay(pskgw_domain_t *d);

#endif
