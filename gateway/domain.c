/* One domain: the wiring between the modules (see domain.h). The adapters here translate one
 * module's asynchronous contract into another's; every one of them keeps the rule "fails at once
 * or calls back exactly once", so ownership of each small request record is simple: it is freed
 * by the callback that completes it. */
#include "gateway/domain.h"
#include "gateway/admin_routes.h"
#include "gateway/domain_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "keycache/psk_identity.h"
#include "keycache/psk_value.h"
#include "e2e/e2e.h"
#include "e2e/replay.h"
#include "gateway/forward_config.h"
#include "gateway/listen_api.h"
#include "keycache/keycache.h"
#include "sinks/sinkset.h"
#include "upstream/upstream.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>

/* ---- layer 3 of the caches: the upstream client ------------------------------------------ */

/* One backend fetch; freed by the upstream callback that completes it. */
struct bfetch {
    pskgw_keycache_backend_done_cb done;
    void *done_arg;
    pskgw_upstream_req_t *req;
};

static void psk_upstream_done(void *arg, int status, const pskgw_upstream_psk_t *res)
{
    struct bfetch *b = arg;
    uint8_t val[PSKGW_KEYCACHE_PSK_VALUE_MAX];
    size_t n = 0;

    if (status == 0 && pskgw_keycache_psk_value_encode(res->key, res->key_len, res->rot_uid, val,
                                                       sizeof(val), &n) < 0)
        status = PSKGW_EPARSE;
    b->done(b->done_arg, status, status == 0 ? val : NULL, n);
    pskgw_wipe(val, sizeof(val));
    free(b);
}

static void e2e_upstream_done(void *arg, int status, const pskgw_upstream_e2e_t *res)
{
    struct bfetch *b = arg;
    uint8_t val[PSKGW_E2E_PARAMS_ENCODED_MAX];
    size_t n = 0;

    if (status == 0) {
        pskgw_e2e_params_t p;
        size_t ulen = strnlen(res->rot_uid, sizeof(res->rot_uid));

        memset(&p, 0, sizeof(p));
        memcpy(p.key, res->key, sizeof(p.key));
        memcpy(p.nonce, res->nonce, res->nonce_len);
        p.nonce_len = res->nonce_len;
        p.mac_bits = res->mac_bits;
        if (ulen > PSKGW_E2E_UID_MAX_LEN ||
            pskgw_e2e_suite_parse(res->cipher_suite, strlen(res->cipher_suite), &p.suite) < 0)
            status = PSKGW_EPARSE;
        else
            memcpy(p.rot_uid, res->rot_uid, ulen + 1);
        if (status == 0 && pskgw_e2e_params_encode(&p, val, sizeof(val), &n) < 0)
            status = PSKGW_EPARSE;
        pskgw_e2e_params_wipe(&p);
    }
    b->done(b->done_arg, status, status == 0 ? val : NULL, n);
    pskgw_wipe(val, sizeof(val));
    free(b);
}

/* Starts one upstream call for a cache backend: the key (identity or KI hex) as a string. */
typedef int (*upstream_start_fn)(pskgw_domain_t *d, const char *key, struct bfetch *b);

static int start_get_psk(pskgw_domain_t *d, const char *key, struct bfetch *b)
{
    return pskgw_upstream_get_psk(d->up, key, d->cfg->api.psk_key_bits, 0, psk_upstream_done, b,
                                  &b->req);
}

static int start_get_e2e(pskgw_domain_t *d, const char *key, struct bfetch *b)
{
    return pskgw_upstream_get_e2e(d->up, key, 0, e2e_upstream_done, b, &b->req);
}

static int backend_fetch(pskgw_domain_t *d, upstream_start_fn start, const uint8_t *key,
                         size_t key_len, pskgw_keycache_backend_done_cb done, void *done_arg,
                         void **handle)
{
    char str[PSKGW_KEYCACHE_KEY_MAX + 1];
    struct bfetch *b;
    int rc;

    if (key_len == 0 || key_len >= sizeof(str) || memchr(key, '\0', key_len))
        return PSKGW_EINVAL;
    memcpy(str, key, key_len);
    str[key_len] = '\0';
    b = calloc(1, sizeof(*b));
    if (!b)
        return PSKGW_ENOMEM;
    b->done = done;
    b->done_arg = done_arg;
    rc = start(d, str, b);
    if (rc < 0) {
        free(b);
        return rc;
    }
    *handle = b;
    return 0;
}

static int psk_backend_fetch(void *ctx, const uint8_t *key, size_t key_len,
                             pskgw_keycache_backend_done_cb done, void *done_arg, void **handle)
{
    return backend_fetch(ctx, start_get_psk, key, key_len, done, done_arg, handle);
}

static int e2e_backend_fetch(void *ctx, const uint8_t *key, size_t key_len,
                             pskgw_keycache_backend_done_cb done, void *done_arg, void **handle)
{
    return backend_fetch(ctx, start_get_e2e, key, key_len, done, done_arg, handle);
}

static void backend_cancel(void *ctx, void *handle)
{
    (void)ctx;
    pskgw_upstream_cancel(((struct bfetch *)handle)->req);
}

/* ---- the PSK resolver given to the listeners: the PSK cache ------------------------------ */

/* deny_file: a listed identity is refused before any cache layer or call (resolve() fails at
 * once, the handshake is dropped like a failed lookup), counted and logged. */
static bool identity_denied(pskgw_domain_t *d, const char *identity, bool count)
{
    if (!pskgw_config_denied(d->cfg, identity))
        return false;
    if (count) {
        d->c.identities_denied++;
        PSKGW_LOG_RL(PSKGW_LOG_NOTICE, "denied",
                     "domain \"%s\": identity \"%s\" refused without a lookup: denied "
                     "(deny_file)",
                     d->cfg->name, identity);
    }
    return true;
}

struct rfetch {
    pskgw_domain_t *d;
    pskgw_psk_done_cb cb;
    void *arg;
    pskgw_keycache_req_t *req;
};

static void resolve_done(void *arg, const pskgw_keycache_result_t *res)
{
    struct rfetch *r = arg;
    uint8_t psk[PSKGW_PSK_MAX];
    size_t psk_len = 0;
    char uid[PSKGW_KEYCACHE_UID_MAX + 1];
    int status = res->status;

    if (status == 0 && pskgw_keycache_psk_value_decode(res->value, res->value_len, psk, sizeof(psk),
                                                       &psk_len, uid, sizeof(uid)) < 0) {
        PSKGW_LOG_RL(PSKGW_LOG_ERR, "psk-value",
                     "psk cache: undecodable value, treated as "
                     "unavailable");
        status = PSKGW_EUNAVAIL;
    }
    if (status == 0 && pskgw_config_denied(r->d->cfg, uid)) {
        r->d->c.identities_denied++;
        PSKGW_LOG_RL(PSKGW_LOG_NOTICE, "denied",
                     "domain \"%s\": ROTPublicUID \"%s\" denied (deny_file): handshake refused",
                     r->d->cfg->name, uid);
        status = PSKGW_EDENIED;
    }
    r->cb(r->arg, status, status == 0 ? psk : NULL, status == 0 ? psk_len : 0,
          status == 0 ? uid : NULL);
    pskgw_wipe(psk, sizeof(psk));
    free(r);
}

static int resolver_resolve(void *ctx, const char *identity, pskgw_psk_done_cb cb, void *arg,
                            void **handle)
{
    pskgw_domain_t *d = ctx;
    struct rfetch *r;
    int rc;

    if (d->closing)
        return PSKGW_ECLOSED;
    if (identity_denied(d, identity, true))
        return PSKGW_EDENIED;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PSKGW_ENOMEM;
    r->d = d;
    r->cb = cb;
    r->arg = arg;
    rc = pskgw_keycache_fetch(d->psk_cache, (const uint8_t *)identity, strlen(identity),
                              resolve_done, r, &r->req);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *handle = r;
    return 0;
}

static void resolver_cancel(void *ctx, void *handle)
{
    (void)ctx;
    pskgw_keycache_cancel(((struct rfetch *)handle)->req);
}

static int resolver_lookup(void *ctx, const char *identity, uint8_t *psk, size_t *psk_len,
                           char *uid, size_t uid_cap)
{
    pskgw_domain_t *d = ctx;
    pskgw_keycache_result_t res;
    int rc;

    if (identity_denied(d, identity, false))
        return PSKGW_EDENIED; /* resolve() refuses it, counted there */
    rc = pskgw_keycache_lookup(d->psk_cache, (const uint8_t *)identity, strlen(identity), &res);

    if (rc == PSKGW_EAGAIN && !res.stale)
        return PSKGW_ENOTFOUND; /* EAGAIN: a stale key is known (the listener's admission) */
    if (rc < 0)
        return rc;
    if (res.status != 0)
        return res.status;
    rc = pskgw_keycache_psk_value_decode(res.value, res.value_len, psk, *psk_len, psk_len, uid,
                                         uid_cap);
    if (rc == 0 && pskgw_config_denied(d->cfg, uid)) {
        pskgw_wipe(psk, *psk_len);
        return PSKGW_EDENIED; /* resolve() refuses it, counted and logged there */
    }
    return rc;
}

/* ---- the E2E parameters source: the E2E cache -------------------------------------------- */

struct efetch {
    pskgw_e2e_params_done_cb done;
    void *arg;
    pskgw_keycache_req_t *req;
};

static void e2e_cache_done(void *arg, const pskgw_keycache_result_t *res)
{
    struct efetch *e = arg;
    pskgw_e2e_params_t p;
    int status = res->status;

    if (status == 0 && pskgw_e2e_params_decode(res->value, res->value_len, &p) < 0)
        status = PSKGW_EUNAVAIL;
    e->done(e->arg, status, status == 0 ? &p : NULL);
    pskgw_e2e_params_wipe(&p);
    free(e);
}

static int e2e_src_fetch(void *ctx, const char *ki_hex, pskgw_e2e_params_done_cb done, void *arg,
                         void **handle)
{
    pskgw_domain_t *d = ctx;
    struct efetch *e = calloc(1, sizeof(*e));
    int rc;

    if (!e)
        return PSKGW_ENOMEM;
    e->done = done;
    e->arg = arg;
    rc = pskgw_keycache_fetch(d->e2e_cache, (const uint8_t *)ki_hex, strlen(ki_hex), e2e_cache_done,
                              e, &e->req);
    if (rc < 0) {
        free(e);
        return rc;
    }
    *handle = e;
    return 0;
}

static void e2e_src_cancel(void *ctx, void *handle)
{
    (void)ctx;
    pskgw_keycache_cancel(((struct efetch *)handle)->req);
}

static int e2e_src_lookup(void *ctx, const char *ki_hex, pskgw_e2e_params_t *out)
{
    pskgw_domain_t *d = ctx;
    pskgw_keycache_result_t res;
    int rc = pskgw_keycache_lookup(d->e2e_cache, (const uint8_t *)ki_hex, strlen(ki_hex), &res);

    if (rc < 0)
        return rc;
    if (res.status != 0)
        return res.status;
    return pskgw_e2e_params_decode(res.value, res.value_len, out);
}

/* ---- the message path: listener -> e2e -> sinks -> ack ----------------------------------- */

/* One message between the listener and the sink set; released when the sink set is done with it
 * (ack listeners) or right after the submit. Strings live in buf. Slots whose strings fit
 * MSG_SLOT_BUF bytes go back to their listener context's freelist (at most MSG_SLOTS_KEEP):
 * no malloc per message in steady state. */
#define MSG_SLOT_BUF   320
#define MSG_SLOTS_KEEP 4096u

struct msg {
    struct lctx *lc;
    struct msg *next_free;
    size_t buf_cap;
    uint64_t session_id;
    uint64_t seq;
    uint64_t received_at_ms;
    const char *peer;
    const char *identity;
    const char *uid;
    char buf[];
};

static void msg_free(struct msg *m)
{
    struct lctx *lc = m->lc;

    if (m->buf_cap == MSG_SLOT_BUF && lc->nfree_msgs < MSG_SLOTS_KEEP) {
        m->next_free = lc->free_msgs;
        lc->free_msgs = m;
        lc->nfree_msgs++;
    } else {
        free(m);
    }
    pskgw_domain_lctx_unref(lc); /* frees the freelist with the context */
}

static struct msg *msg_alloc(struct lctx *lc, size_t need)
{
    struct msg *m;

    if (need <= MSG_SLOT_BUF && lc->free_msgs) {
        m = lc->free_msgs;
        lc->free_msgs = m->next_free;
        lc->nfree_msgs--;
        return m;
    }
    if (need <= MSG_SLOT_BUF)
        need = MSG_SLOT_BUF;
    m = malloc(sizeof(*m) + need);
    if (m)
        m->buf_cap = need;
    return m;
}

/* "ACK <seq>" without printf: the per-message path formats nothing through stdio. */
static size_t format_ack(char *out, uint64_t seq)
{
    char digits[20];
    size_t n = 0;
    size_t len = 4;

    memcpy(out, "ACK ", 4);
    do {
        digits[n++] = (char)('0' + seq % 10);
        seq /= 10;
    } while (seq);
    while (n)
        out[len++] = digits[--n];
    return len;
}

static void sink_done(void *arg, int status)
{
    pskgw_domain_t *d = arg;

    if (status < 0)
        d->c.sink_failed++;
}

static void sink_done_ack(void *arg, int status)
{
    struct msg *m = arg;
    pskgw_domain_t *d = m->lc->d;
    char ack[32];
    size_t n;

    if (status < 0) {
        d->c.sink_failed++;
    } else if (m->lc->l) {
        n = format_ack(ack, m->seq);
        if (pskgw_listener_send(m->lc->l, m->session_id, (const uint8_t *)ack, n) == 0)
            d->c.acks_sent++;
        else
            d->c.acks_undelivered++;
    } else {
        d->c.acks_undelivered++;
    }
    msg_free(m);
}

static void reject_decrypted(struct msg *m, const char *reason, const char *detail)
{
    pskgw_domain_t *d = m->lc->d;

    d->c.rejected_e2e++;
    PSKGW_LOG_RL(PSKGW_LOG_WARNING, m->identity,
                 "domain \"%s\": message %" PRIu64 " of session %" PRIu64
                 " (identity \"%s\") rejected: %s (%s)",
                 d->cfg->name, m->seq, m->session_id, m->identity, reason, detail);
    msg_free(m);
}

/* A decrypted payload is the session's device's only when the parameters' ROTPublicUID is the
 * session's (from GetPSK): a device cannot pass off another device's E2E payload as its own.
 * Then a key identity this device already sent within the window is a replay. 0: forward it
 * (*replay set); -1: rejected and freed. */
static int bind_e2e(struct msg *m, const pskgw_e2e_info_t *x, int *replay)
{
    pskgw_domain_t *d = m->lc->d;
    const char *puid = x->rot_uid ? x->rot_uid : "";
    int seen;

    *replay = 0;
    if (!m->uid[0] || strcmp(puid, m->uid) != 0) {
        d->c.e2e_uid_mismatch++;
        reject_decrypted(m, "uid_mismatch", "the E2E parameters belong to another device");
        return -1;
    }
    seen = d->replay ? pskgw_e2e_replay_seen(d->replay, m->uid, x->ki_hex, uv_now(d->loop)) : 0;
    if (seen != 1)
        return 0;
    d->c.e2e_replays++;
    if (d->cfg->e2e_replay == PSKGW_CONFIG_E2E_REPLAY_REJECT) {
        d->c.e2e_replay_rejected++;
        reject_decrypted(m, "replay", "key identity seen again from this device");
        return -1;
    }
    *replay = 1;
    return 0;
}

static void e2e_done(void *arg, const pskgw_e2e_result_t *r)
{
    struct msg *m = arg;
    struct lctx *lc = m->lc;
    pskgw_domain_t *d = lc->d;
    pskgw_envelope_e2e_t e2e;
    pskgw_envelope_t env;
    int replay = 0;
    int rc;

    if (r->kind == PSKGW_E2E_DECRYPTED && r->e2e && bind_e2e(m, r->e2e, &replay) < 0)
        return;
    if (r->kind == PSKGW_E2E_REJECTED) {
        if (r->reason != PSKGW_E2E_REASON_CANCELED) {
            d->c.rejected_e2e++;
            PSKGW_LOG_RL(PSKGW_LOG_WARNING, m->identity,
                         "domain \"%s\": message %" PRIu64 " of session %" PRIu64
                         " (identity \"%s\") rejected: %s (%s)",
                         d->cfg->name, m->seq, m->session_id, m->identity,
                         pskgw_e2e_reason_name(r->reason), pskgw_strerror(r->status));
        }
        msg_free(m);
        return;
    }
    memset(&env, 0, sizeof(env));
    env.domain = d->cfg->name;
    env.listener = lc->name;
    env.transport = lc->udp ? "dtls" : "tls";
    env.peer = m->peer;
    env.psk_identity = m->identity;
    env.rot_public_uid = m->uid;
    env.session_id = m->session_id;
    env.seq = m->seq;
    env.received_at_ms = m->received_at_ms;
    env.payload = r->data;
    env.payload_len = r->len;
    if (r->kind == PSKGW_E2E_DECRYPTED && r->e2e) {
        e2e.version = (unsigned)r->e2e->version;
        e2e.key_identity = r->e2e->ki_hex;
        e2e.cipher_suite = r->e2e->cipher_suite;
        e2e.rot_public_uid = r->e2e->rot_uid;
        e2e.replay = replay;
        env.e2e = &e2e;
    }
    rc = pskgw_sinkset_submit(d->sinks, &env, lc->ack ? sink_done_ack : sink_done,
                              lc->ack ? (void *)m : (void *)d, NULL);
    if (rc < 0) {
        d->c.submit_failed++;
        PSKGW_LOG_RL(PSKGW_LOG_ERR, "sink-submit",
                     "domain \"%s\": message %" PRIu64 " of session %" PRIu64
                     " not accepted by the sinks: %s",
                     d->cfg->name, m->seq, m->session_id, pskgw_strerror(rc));
        msg_free(m);
        return;
    }
    d->c.forwarded++;
    if (!lc->ack)
        msg_free(m);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_message(void *arg, const pskgw_msg_meta_t *meta, const uint8_t *data, size_t len)
{
    struct lctx *lc = arg;
    pskgw_domain_t *d = lc->d;
    const char *uid = meta->rot_public_uid ? meta->rot_public_uid : "";
    size_t lp = strlen(meta->peer) + 1;
    size_t li = strlen(meta->identity) + 1;
    size_t lu = strlen(uid) + 1;
    struct msg *m;
    int rc;

    if (d->closing)
        return;
    m = msg_alloc(lc, lp + li + lu);
    if (!m) {
        d->c.submit_failed++;
        return;
    }
    m->lc = lc;
    lc->refs++;
    m->session_id = meta->session_id;
    m->seq = meta->seq;
    m->received_at_ms = wall_ms();
    memcpy(m->buf, meta->peer, lp);
    memcpy(m->buf + lp, meta->identity, li);
    memcpy(m->buf + lp + li, uid, lu);
    m->peer = m->buf;
    m->identity = m->buf + lp;
    m->uid = m->buf + lp + li;
    rc = pskgw_e2e_process(d->e2e, d->mode, data, len, e2e_done, m, NULL);
    if (rc < 0) {
        d->c.submit_failed++;
        PSKGW_LOG_RL(PSKGW_LOG_ERR, "e2e-process", "domain \"%s\": message not processed: %s",
                     d->cfg->name, pskgw_strerror(rc));
        msg_free(m);
    }
}

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

/* The PSK cache's key_check: identities no module can produce are refused before any layer or
 * call (keycache/psk_identity.h), counted by reason. */
static int psk_identity_check(void *arg, const uint8_t *key, size_t len)
{
    pskgw_domain_t *d = arg;
    pskgw_psk_id_reason_t r = pskgw_psk_identity_check((const char *)key, len);
    if (r == PSKGW_PSK_ID_OK)
        return 0;
    d->c.identities_refused[r]++;
    PSKGW_LOG_RL(PSKGW_LOG_NOTICE, pskgw_psk_id_reason_name(r),
                 "domain \"%s\": identity refused without a lookup: %s (%zu characters)",
                 d->cfg->name, pskgw_psk_id_reason_name(r), len);
    return PSKGW_EINVAL;
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
    if (strcmp(name, "psk") == 0) {
        o.key_check = psk_identity_check;
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
    int rc = pskgw_domain_sink_opts(d, d->cfg, &b, &opts);

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
    rc = pskgw_forward_opts_from_config(l, &o); /* forward = "tcp://..." | "udp://..." */
    if (rc == 0)
        rc = pskgw_listener_new(d->loop, &o, &d->resolver, on_message, lc, &lc->l, &why);
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

static int start_replay(pskgw_domain_t *d)
{
    uint8_t seed[16];
    int rc;

    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        PSKGW_ERR("domain \"%s\": getrandom: %s", d->cfg->name, strerror(errno));
        return PSKGW_EIO;
    }
    rc = pskgw_e2e_replay_new(d->cfg->e2e_replay_entries,
                              (uint64_t)d->cfg->e2e_replay_window_s * 1000u, seed, &d->replay);
    pskgw_wipe(seed, sizeof(seed));
    return rc;
}

int pskgw_domain_start_lookup(pskgw_domain_t *d)
{
    const pskgw_config_domain_t *cfg = d->cfg;
    pskgw_keycache_backend_t psk_backend = { psk_backend_fetch, backend_cancel, d };
    pskgw_keycache_backend_t e2e_backend = { e2e_backend_fetch, backend_cancel, d };
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
    d->resolver = (pskgw_psk_resolver_t){ resolver_resolve, resolver_cancel, resolver_lookup, d };
    d->e2e_src = (pskgw_e2e_params_source_t){ d, e2e_src_fetch, e2e_src_cancel, e2e_src_lookup };
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
        rc = start_replay(d);
    if (rc < 0)
        goto fail;
    rc = start_sinks(d);
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

    if (d->closing || !d->sinks)
        return 0;
    for (size_t i = 0; i < pskgw_sinkset_count(d->sinks); i++) {
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

static void close_caches_phase(pskgw_domain_t *d)
{
    pskgw_keycache_t *caches[2] = { d->psk_cache, d->e2e_cache };

    d->psk_cache = d->e2e_cache = NULL;
    d->pending = (caches[0] != NULL) + (caches[1] != NULL);
    if (d->pending == 0) {
        close_upstream_phase(d);
        return;
    }
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

struct lctx *pskgw_domain_lctx_new(pskgw_domain_t *d, const pskgw_config_listener_t *cfg)
{
    struct lctx *lc = calloc(1, sizeof(*lc));

    if (!lc)
        return NULL;
    lc->name = strdup(cfg->name);
    if (!lc->name) {
        free(lc);
        return NULL;
    }
    lc->d = d;
    lc->cfg = cfg;
    lc->udp = cfg->proto == PSKGW_CONFIG_PROTO_UDP;
    lc->ack = cfg->ack == PSKGW_CONFIG_ACK_ACCEPTED;
    lc->refs = 1; /* the domain's (lis[], or the close of a removed listener) */
    return lc;
}

void pskgw_domain_lctx_unref(struct lctx *lc)
{
    if (!lc || --lc->refs > 0)
        return;
    while (lc->free_msgs) {
        struct msg *m = lc->free_msgs;
        lc->free_msgs = m->next_free;
        free(m);
    }
    free(lc->name);
    free(lc);
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
