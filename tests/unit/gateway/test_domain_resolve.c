/* The lookup adapters of a domain (gateway/domain_resolve.c): the PSK resolver and the E2E
 * parameters source over real key caches (a backend of the test answering when told), the
 * identity check, and the cache backends over the real upstream client against pskgw-sim. */
#include "gateway/domain_internal.h"

#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "keycache/psk_value.h"
#include "loopwait.h"
#include "simctl.h"
#include "tools/rotkeys/rotkeys.h"
#include "upfix.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define ID_A  "11010008002F33244B115B0AEEB9"
#define UID_A "0F1E2D3C4B5A6978"
#define UID_B "8796A5B4C3D2E1F0"

static const uint8_t psk_a[16] = { 0xE5, 0xDE, 0x45, 0xB3, 0x67, 0xDB, 0x69, 0x0F,
                                   0x2E, 0x17, 0xCF, 0x9D, 0x80, 0xA1, 0x8E, 0x87 };

static pskgw_config_domain_t cfg;
static pskgw_domain_t dom;
static char *deny[2];

/* ---- the test's backend: one fetch outstanding, answered by tb_answer() ---- */
static struct {
    pskgw_keycache_backend_done_cb done;
    void *done_arg;
    int calls;
    int cancels;
} tb;

static int tb_fetch(void *ctx, const uint8_t *key, size_t key_len,
                    pskgw_keycache_backend_done_cb cb, void *done_arg, void **handle)
{
    (void)ctx;
    (void)key;
    (void)key_len;
    cr_assert_null(tb.done, "one fetch at a time in these tests");
    tb.done = cb;
    tb.done_arg = done_arg;
    tb.calls++;
    *handle = &tb;
    return 0;
}

static void tb_cancel(void *ctx, void *handle)
{
    (void)ctx;
    (void)handle;
    tb.cancels++;
    if (tb.done) {
        pskgw_keycache_backend_done_cb cb = tb.done;
        tb.done = NULL;
        cb(tb.done_arg, PSKGW_ECANCELED, NULL, 0);
    }
}

static void tb_answer(int status, const uint8_t *value, size_t len)
{
    pskgw_keycache_backend_done_cb cb = tb.done;

    cr_assert_not_null(cb, "no fetch outstanding");
    tb.done = NULL;
    cb(tb.done_arg, status, value, len);
}

static uv_loop_t lp;
static int caches_closed;

static pskgw_keycache_t *cache_new(const char *name)
{
    pskgw_keycache_opts_t o;
    pskgw_keycache_t *kc = NULL;

    pskgw_keycache_opts_init(&o);
    o.loop = &lp;
    o.name = name;
    o.domain = cfg.name;
    o.backend = (pskgw_keycache_backend_t){ tb_fetch, tb_cancel, NULL };
    o.entries = 16;
    o.ttl_s = 60;
    cr_assert_eq(pskgw_keycache_new(&o, &kc), 0);
    return kc;
}

static void cache_closed(pskgw_keycache_t *kc)
{
    (void)kc;
    caches_closed++;
}

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    memset(&dom, 0, sizeof(dom));
    memset(&tb, 0, sizeof(tb));
    caches_closed = 0;
    cfg.name = "t";
    cfg.api.psk_key_bits = 128;
    cr_assert_eq(uv_loop_init(&lp), 0);
    dom.loop = &lp;
    dom.cfg = &cfg;
    dom.psk_cache = cache_new("psk");
    dom.e2e_cache = cache_new("e2e");
}

static void teardown(void)
{
    if (dom.psk_cache)
        pskgw_keycache_close(dom.psk_cache, cache_closed);
    if (dom.e2e_cache)
        pskgw_keycache_close(dom.e2e_cache, cache_closed);
    cr_expect_eq(hloop_finish(&lp), 0);
    cr_expect_eq(caches_closed, 2);
}

/* Runs the loop until *counter reaches target (loopwait.h: a guard only against hanging). */
static void run_until(const int *counter, int target)
{
    cr_assert(hrun_until_count(&lp, counter, target), "timed out");
}

/* ---- the PSK resolver ---- */
typedef struct {
    int calls;
    int status;
    uint8_t psk[PSKGW_PSK_MAX];
    size_t psk_len;
    char uid[PSKGW_UID_CAP];
} psk_res_t;

static void psk_done(void *arg, int status, const uint8_t *psk, size_t psk_len, const char *uid)
{
    psk_res_t *r = arg;

    r->calls++;
    r->status = status;
    cr_expect_eq(status == 0, psk != NULL);
    cr_expect_eq(status == 0, uid != NULL);
    if (psk) {
        cr_assert_leq(psk_len, sizeof(r->psk));
        memcpy(r->psk, psk, psk_len);
        r->psk_len = psk_len;
        snprintf(r->uid, sizeof(r->uid), "%s", uid);
    }
}

static size_t psk_value(const char *uid, uint8_t *out, size_t cap)
{
    size_t n = 0;

    cr_assert_eq(pskgw_keycache_psk_value_encode(psk_a, sizeof(psk_a), uid, out, cap, &n), 0);
    return n;
}

/* resolve() with the backend answering value (len 0: status) */
static void resolve_answered(const char *id, int status, const uint8_t *value, size_t len,
                             psk_res_t *r)
{
    pskgw_psk_resolver_t res = pskgw_domain_psk_resolver(&dom);
    void *h = NULL;

    cr_assert_eq(res.resolve(res.ctx, id, psk_done, r, &h), 0);
    cr_assert_not_null(h);
    cr_assert_eq(r->calls, 0, "called back from inside resolve()");
    tb_answer(status, value, len);
    run_until(&r->calls, 1);
    cr_assert_eq(r->calls, 1);
}

TestSuite(domain_resolve, .init = setup, .fini = teardown);

Test(domain_resolve, resolver_decodes_the_cached_value_and_lookup_finds_it)
{
    uint8_t val[PSKGW_KEYCACHE_PSK_VALUE_MAX];
    size_t n = psk_value(UID_A, val, sizeof(val));
    pskgw_psk_resolver_t res = pskgw_domain_psk_resolver(&dom);
    psk_res_t r = { 0 };
    uint8_t psk[PSKGW_PSK_MAX];
    size_t psk_len = sizeof(psk);
    char uid[PSKGW_UID_CAP];

    cr_assert_eq(res.lookup(res.ctx, ID_A, psk, &psk_len, uid, sizeof(uid)), PSKGW_ENOTFOUND);
    resolve_answered(ID_A, 0, val, n, &r);
    cr_assert_eq(r.status, 0, "%s", pskgw_strerror(r.status));
    cr_assert_eq(r.psk_len, sizeof(psk_a));
    cr_assert(memcmp(r.psk, psk_a, sizeof(psk_a)) == 0);
    cr_assert_str_eq(r.uid, UID_A);
    /* now in layer 1: the synchronous lookup answers */
    cr_assert_eq(res.lookup(res.ctx, ID_A, psk, &psk_len, uid, sizeof(uid)), 0);
    cr_assert_eq(psk_len, sizeof(psk_a));
    cr_assert(memcmp(psk, psk_a, sizeof(psk_a)) == 0);
    cr_assert_str_eq(uid, UID_A);
    cr_assert_eq(tb.calls, 1);
}

Test(domain_resolve, undecodable_value_is_unavailable)
{
    const uint8_t junk[3] = { 0xFF, 0x00, 0x01 };
    psk_res_t r = { 0 };

    resolve_answered(ID_A, 0, junk, sizeof(junk), &r);
    cr_assert_eq(r.status, PSKGW_EUNAVAIL, "%s", pskgw_strerror(r.status));
}

Test(domain_resolve, backend_failure_passes_through)
{
    psk_res_t r = { 0 };

    resolve_answered(ID_A, PSKGW_ENOTFOUND, NULL, 0, &r);
    cr_assert_eq(r.status, PSKGW_ENOTFOUND, "%s", pskgw_strerror(r.status));
}

Test(domain_resolve, denied_identity_refused_at_once_and_counted)
{
    pskgw_psk_resolver_t res = pskgw_domain_psk_resolver(&dom);
    psk_res_t r = { 0 };
    uint8_t psk[PSKGW_PSK_MAX];
    size_t psk_len = sizeof(psk);
    char uid[PSKGW_UID_CAP];
    void *h = NULL;

    deny[0] = ID_A;
    cfg.deny = deny;
    cfg.ndeny = 1;
    cr_assert_eq(res.resolve(res.ctx, ID_A, psk_done, &r, &h), PSKGW_EDENIED);
    cr_assert_eq(dom.c.identities_denied, 1);
    cr_assert_eq(res.lookup(res.ctx, ID_A, psk, &psk_len, uid, sizeof(uid)), PSKGW_EDENIED);
    cr_assert_eq(dom.c.identities_denied, 1, "lookup() does not count");
    cr_assert_eq(tb.calls, 0, "no cache layer asked");
    cr_assert_eq(r.calls, 0);
}

Test(domain_resolve, denied_uid_refused_after_the_lookup)
{
    uint8_t val[PSKGW_KEYCACHE_PSK_VALUE_MAX];
    size_t n = psk_value(UID_B, val, sizeof(val));
    pskgw_psk_resolver_t res = pskgw_domain_psk_resolver(&dom);
    psk_res_t r = { 0 };
    uint8_t psk[PSKGW_PSK_MAX];
    size_t psk_len = sizeof(psk);
    char uid[PSKGW_UID_CAP];

    deny[0] = UID_B;
    cfg.deny = deny;
    cfg.ndeny = 1;
    resolve_answered(ID_A, 0, val, n, &r);
    cr_assert_eq(r.status, PSKGW_EDENIED, "%s", pskgw_strerror(r.status));
    cr_assert_eq(dom.c.identities_denied, 1);
    cr_assert_eq(res.lookup(res.ctx, ID_A, psk, &psk_len, uid, sizeof(uid)), PSKGW_EDENIED);
    cr_assert_eq(dom.c.identities_denied, 1);
}

Test(domain_resolve, closing_domain_refuses)
{
    pskgw_psk_resolver_t res = pskgw_domain_psk_resolver(&dom);
    psk_res_t r = { 0 };
    void *h = NULL;

    dom.closing = 1;
    cr_assert_eq(res.resolve(res.ctx, ID_A, psk_done, &r, &h), PSKGW_ECLOSED);
    cr_assert_eq(tb.calls, 0);
}

Test(domain_resolve, cancel_calls_back_once_canceled)
{
    pskgw_psk_resolver_t res = pskgw_domain_psk_resolver(&dom);
    psk_res_t r = { 0 };
    void *h = NULL;

    cr_assert_eq(res.resolve(res.ctx, ID_A, psk_done, &r, &h), 0);
    res.cancel(res.ctx, h);
    run_until(&r.calls, 1);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.status, PSKGW_ECANCELED, "%s", pskgw_strerror(r.status));
}

/* ---- the identity check ---- */
Test(domain_resolve, identity_check_counts_by_reason)
{
    cr_assert_eq(pskgw_domain_psk_identity_check(&dom, (const uint8_t *)ID_A, strlen(ID_A)), 0);
    cr_assert_eq(pskgw_domain_psk_identity_check(&dom, (const uint8_t *)"1101", 4), PSKGW_EINVAL);
    cr_assert_eq(
        pskgw_domain_psk_identity_check(&dom, (const uint8_t *)"11010008002F33244B115B0AEEBZ", 28),
        PSKGW_EINVAL);
    cr_assert_eq(dom.c.identities_refused[PSKGW_PSK_ID_LENGTH], 1);
    cr_assert_eq(dom.c.identities_refused[PSKGW_PSK_ID_CHARSET], 1);
    cr_assert_eq(dom.c.identities_refused[PSKGW_PSK_ID_OK], 0);
}

/* ---- the E2E parameters source ---- */
typedef struct {
    int calls;
    int status;
    pskgw_e2e_params_t p;
} e2e_res_t;

static void params_done(void *arg, int status, const pskgw_e2e_params_t *p)
{
    e2e_res_t *r = arg;

    r->calls++;
    r->status = status;
    cr_expect_eq(status == 0, p != NULL);
    if (p)
        r->p = *p;
}

static void params_sample(pskgw_e2e_params_t *p)
{
    memset(p, 0, sizeof(*p));
    memcpy(p->key, psk_a, sizeof(p->key));
    memset(p->nonce, 0x5A, 12);
    p->nonce_len = 12;
    p->mac_bits = 64;
    p->suite = PSKGW_E2E_SUITE_AES_128_CCM_8;
    strcpy(p->rot_uid, UID_A);
}

Test(domain_resolve, e2e_source_decodes_and_lookup_finds_it)
{
    pskgw_e2e_params_source_t src = pskgw_domain_e2e_source(&dom);
    pskgw_e2e_params_t p, q;
    uint8_t val[PSKGW_E2E_PARAMS_ENCODED_MAX];
    size_t n = 0;
    e2e_res_t r = { 0 };
    void *h = NULL;

    params_sample(&p);
    cr_assert_eq(pskgw_e2e_params_encode(&p, val, sizeof(val), &n), 0);
    cr_assert_eq(src.lookup(src.ctx, "0A0B0C", &q), PSKGW_EAGAIN);
    cr_assert_eq(src.fetch(src.ctx, "0A0B0C", params_done, &r, &h), 0);
    cr_assert_eq(r.calls, 0);
    tb_answer(0, val, n);
    run_until(&r.calls, 1);
    cr_assert_eq(r.status, 0, "%s", pskgw_strerror(r.status));
    cr_assert(memcmp(r.p.key, p.key, sizeof(p.key)) == 0);
    cr_assert_eq(r.p.nonce_len, 12);
    cr_assert_eq(r.p.mac_bits, 64);
    cr_assert_str_eq(r.p.rot_uid, UID_A);
    cr_assert_eq(src.lookup(src.ctx, "0A0B0C", &q), 0);
    cr_assert_eq(q.suite, PSKGW_E2E_SUITE_AES_128_CCM_8);
}

Test(domain_resolve, e2e_source_undecodable_is_unavailable)
{
    pskgw_e2e_params_source_t src = pskgw_domain_e2e_source(&dom);
    const uint8_t junk[2] = { 0xFF, 0xFF };
    e2e_res_t r = { 0 };
    void *h = NULL;

    cr_assert_eq(src.fetch(src.ctx, "0A0B0C", params_done, &r, &h), 0);
    tb_answer(0, junk, sizeof(junk));
    run_until(&r.calls, 1);
    cr_assert_eq(r.status, PSKGW_EUNAVAIL, "%s", pskgw_strerror(r.status));
}

/* ---- the cache backends over the upstream client, against pskgw-sim ---- */
typedef struct {
    int calls;
    int status;
    uint8_t val[PSKGW_E2E_PARAMS_ENCODED_MAX + PSKGW_KEYCACHE_PSK_VALUE_MAX];
    size_t len;
} bres_t;

static void backend_done(void *arg, int status, const uint8_t *value, size_t len)
{
    bres_t *r = arg;

    if (in_api || r->calls || (status == 0) != (value != NULL))
        violated++;
    r->calls++;
    r->status = status;
    if (value) {
        cr_assert_leq(len, sizeof(r->val));
        memcpy(r->val, value, len);
        r->len = len;
    }
    done++;
}

static int backend_fetch(const pskgw_keycache_backend_t *b, const char *key, size_t len, bres_t *r)
{
    void *h = NULL;
    int rc;

    in_api = 1;
    rc = b->fetch(b->ctx, (const uint8_t *)key, len, backend_done, r, &h);
    in_api = 0;
    cr_assert_eq(rc == 0, h != NULL);
    return rc;
}

static void backend_fini(void)
{
    sim_stop(&sim);
}

TestSuite(domain_backend, .fini = backend_fini);

Test(domain_backend, psk_and_e2e_answers_encoded_as_cache_values)
{
    pskgw_upstream_opts_t o;
    pskgw_keycache_backend_t pb, eb;
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    char uid[PSKGW_ROT_UID_LEN + 1], got_uid[PSKGW_UID_CAP];
    uint8_t key[32], got[PSKGW_PSK_MAX], ki[PSKGW_ROT_KI_MAX_LEN];
    char ki_hex[2 * PSKGW_ROT_KI_MAX_LEN + 1];
    size_t n = 0, got_n = 0, ki_n = 0;
    pskgw_rot_e2e_params_t want;
    pskgw_e2e_params_t p;
    bres_t r[2];

    memset(r, 0, sizeof(r));
    memset(&cfg, 0, sizeof(cfg));
    memset(&dom, 0, sizeof(dom));
    cfg.name = "t";
    cfg.api.psk_key_bits = 128;
    start_sim(NULL);
    upfix_opts(&o, "t", sim.url);
    upfix_start_client(&o);
    dom.loop = &loop;
    dom.cfg = &cfg;
    dom.up = cli;
    pb = pskgw_domain_psk_backend(&dom);
    eb = pskgw_domain_e2e_backend(&dom);
    /* keys no service call can carry are refused at once */
    cr_assert_eq(backend_fetch(&pb, "", 0, &r[0]), PSKGW_EINVAL);
    cr_assert_eq(backend_fetch(&pb, "AB\0CD", 5, &r[0]), PSKGW_EINVAL);

    cr_assert_eq(pskgw_rot_identity_hex(SIM_SEED, 3, id), 0);
    cr_assert_eq(pskgw_rot_e2e_ki(SIM_SEED, 3, 2, 7, ki, sizeof(ki), &ki_n), 0);
    cr_assert_eq(pskgw_hex_encode(ki, ki_n, ki_hex, sizeof(ki_hex), true), 0);
    cr_assert_eq(backend_fetch(&pb, id, strlen(id), &r[0]), 0);
    cr_assert_eq(backend_fetch(&eb, ki_hex, strlen(ki_hex), &r[1]), 0);
    upfix_run_until(&done, 2, UPFIX_GUARD_MS);
    cr_assert_eq(violated, 0);

    cr_assert_eq(r[0].status, 0, "%s", pskgw_strerror(r[0].status));
    cr_assert_eq(pskgw_keycache_psk_value_decode(r[0].val, r[0].len, got, sizeof(got), &got_n,
                                                 got_uid, sizeof(got_uid)),
                 0);
    cr_assert_eq(pskgw_rot_psk(SIM_SEED, 3, 128, key, sizeof(key), &n), 0);
    cr_assert_eq(got_n, n);
    cr_assert(memcmp(got, key, n) == 0);
    cr_assert_eq(pskgw_rot_uid(SIM_SEED, 3, uid), 0);
    cr_assert_str_eq(got_uid, uid);

    cr_assert_eq(r[1].status, 0, "%s", pskgw_strerror(r[1].status));
    cr_assert_eq(pskgw_e2e_params_decode(r[1].val, r[1].len, &p), 0);
    cr_assert_eq(pskgw_rot_e2e_params(SIM_SEED, ki, ki_n, &want), 0);
    cr_assert(memcmp(p.key, want.key, sizeof(p.key)) == 0);
    cr_assert_eq(p.nonce_len, want.nonce_len);
    cr_assert(memcmp(p.nonce, want.nonce, want.nonce_len) == 0);
    cr_assert_eq(p.mac_bits, want.mac_bits);
    cr_assert_eq(p.suite, PSKGW_E2E_SUITE_AES_128_CCM_8);
    cr_assert_str_eq(p.rot_uid, uid);
    pskgw_rot_e2e_params_wipe(&want);
    pskgw_e2e_params_wipe(&p);
    upfix_finish();
}
