/* The lookup adapters of a domain (see domain_internal.h): the upstream client as the third
 * layer of the PSK and E2E caches, the PSK cache as the listeners' resolver, the E2E cache as the
 * E2E stage's parameters source, and the PSK cache's identity check. Every adapter keeps the rule
 * "fails at once or calls back exactly once", so each small request record is freed by the
 * callback that completes it. */
#include "gateway/domain_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "keycache/psk_identity.h"
#include "keycache/psk_value.h"

#include <stdbool.h>
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
    if (res.decoded) { /* kept decoded with the entry (the cache's decode hook) */
        memcpy(out, res.decoded, sizeof(*out));
        return 0;
    }
    return pskgw_e2e_params_decode(res.value, res.value_len, out);
}

/* The PSK cache's key_check: identities no module can produce are refused before any layer or
 * call (keycache/psk_identity.h), counted by reason. */
int pskgw_domain_psk_identity_check(void *arg, const uint8_t *key, size_t len)
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

pskgw_keycache_backend_t pskgw_domain_psk_backend(pskgw_domain_t *d)
{
    return (pskgw_keycache_backend_t){ psk_backend_fetch, backend_cancel, d };
}

pskgw_keycache_backend_t pskgw_domain_e2e_backend(pskgw_domain_t *d)
{
    return (pskgw_keycache_backend_t){ e2e_backend_fetch, backend_cancel, d };
}

pskgw_psk_resolver_t pskgw_domain_psk_resolver(pskgw_domain_t *d)
{
    return (pskgw_psk_resolver_t){ resolver_resolve, resolver_cancel, resolver_lookup, d };
}

pskgw_e2e_params_source_t pskgw_domain_e2e_source(pskgw_domain_t *d)
{
    return (pskgw_e2e_params_source_t){ d, e2e_src_fetch, e2e_src_cancel, e2e_src_lookup };
}
