/* The processor: modes, the params source contract (exactly once, cancel, failures at once,
 * completions from inside fetch), service errors, counters. The source here is a small fake
 * cache driven by the test: fetches stay pending until fake_run() answers them, as the real key
 * cache answers from its loop. */
#include "e2e/e2e.h"
#include "util.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* ---- fake params source ---- */

typedef struct {
    char ki_hex[PSKGW_E2E_KI_HEX_MAX + 1];
    pskgw_e2e_params_t params;
    bool cached; /* in the cache (served even when the service is down: stale) */
} entry_t;

typedef struct {
    bool active;
    bool cancel_requested;
    char ki_hex[PSKGW_E2E_KI_HEX_MAX + 1];
    pskgw_e2e_params_done_cb done;
    void *arg;
} fetch_t;

typedef struct {
    entry_t entries[8]; /* what the service knows */
    size_t nentries;
    bool service_down;
    int fail_now;       /* fetch returns this at once when non-zero */
    bool done_in_fetch; /* answer from inside fetch() */
    bool cancel_now;    /* cancel() calls done(ECANCELED) at once, else on the next run */
    bool use_lookup;
    int deny; /* when non-zero, the service answers this instead (e.g. EDENIED) */
    fetch_t fetches[64];
    int fetch_calls, cancel_calls, lookup_calls;
} fake_t;

static fake_t fake;

static entry_t *fake_find(const char *ki_hex)
{
    for (size_t i = 0; i < fake.nentries; i++)
        if (strcmp(fake.entries[i].ki_hex, ki_hex) == 0)
            return &fake.entries[i];
    return NULL;
}

static void fake_add(const char *ki_hex, const pskgw_e2e_params_t *p, bool cached)
{
    entry_t *e = &fake.entries[fake.nentries++];
    snprintf(e->ki_hex, sizeof(e->ki_hex), "%s", ki_hex);
    e->params = *p;
    e->cached = cached;
}

/* Answer one fetch as a cache in front of the service would. The slot forgets the request
 * first, so that LeakSanitizer sees a request the processor fails to free as a leak. */
static void fake_answer(fetch_t *f)
{
    entry_t *e = fake_find(f->ki_hex);
    pskgw_e2e_params_done_cb done = f->done;
    void *arg = f->arg;

    f->active = false;
    f->done = NULL;
    f->arg = NULL;
    if (f->cancel_requested) {
        done(arg, PSKGW_ECANCELED, NULL);
        return;
    }
    if (e && e->cached) {
        done(arg, 0, &e->params);
        return;
    }
    if (fake.service_down) {
        done(arg, PSKGW_EUNAVAIL, NULL);
        return;
    }
    if (fake.deny) {
        done(arg, fake.deny, NULL);
        return;
    }
    if (!e) {
        done(arg, PSKGW_ENOTFOUND, NULL);
        return;
    }
    e->cached = true;
    done(arg, 0, &e->params);
}

static int fake_run(void)
{
    int n = 0;
    for (size_t i = 0; i < sizeof(fake.fetches) / sizeof(fake.fetches[0]); i++) {
        if (fake.fetches[i].active) {
            fake_answer(&fake.fetches[i]);
            n++;
        }
    }
    return n;
}

static int fake_fetch(void *ctx, const char *ki_hex, pskgw_e2e_params_done_cb done, void *arg,
                      void **handle)
{
    cr_assert_eq(ctx, &fake);
    fake.fetch_calls++;
    if (fake.fail_now)
        return fake.fail_now;
    for (size_t i = 0; i < sizeof(fake.fetches) / sizeof(fake.fetches[0]); i++) {
        fetch_t *f = &fake.fetches[i];
        if (f->active)
            continue;
        memset(f, 0, sizeof(*f));
        f->active = true;
        snprintf(f->ki_hex, sizeof(f->ki_hex), "%s", ki_hex);
        f->done = done;
        f->arg = arg;
        *handle = f;
        if (fake.done_in_fetch)
            fake_answer(f);
        return 0;
    }
    return PSKGW_EBUSY;
}

static void fake_cancel(void *ctx, void *handle)
{
    fetch_t *f = handle;

    cr_assert_eq(ctx, &fake);
    fake.cancel_calls++;
    cr_assert(f->active, "cancel of a finished fetch");
    f->cancel_requested = true;
    if (fake.cancel_now)
        fake_answer(f);
}

static int fake_lookup(void *ctx, const char *ki_hex, pskgw_e2e_params_t *out)
{
    entry_t *e = fake_find(ki_hex);

    cr_assert_eq(ctx, &fake);
    fake.lookup_calls++;
    if (!fake.use_lookup || !e || !e->cached)
        return PSKGW_ENOTFOUND;
    *out = e->params;
    return 0;
}

/* ---- results ---- */

typedef struct {
    int calls;
    pskgw_e2e_kind_t kind;
    int status;
    pskgw_e2e_reason_t reason;
    uint8_t data[256];
    size_t len;
    bool has_e2e;
    int version;
    char ki_hex[PSKGW_E2E_KI_HEX_MAX + 1];
    char suite[16];
    char uid[PSKGW_E2E_UID_MAX_LEN + 1];
} rec_t;

/* Set by teardown: a test aborted by a failed assertion (the torture's injected allocation
 * failures, tests/torture.sh) can leave requests pending whose rec_t lived on its stack; freeing
 * the processor cancels them, and those callbacks must not write there. */
static bool tearing_down;

static void on_result(void *arg, const pskgw_e2e_result_t *r)
{
    rec_t *rec = arg;

    if (tearing_down)
        return;
    rec->calls++;
    rec->kind = r->kind;
    rec->status = r->status;
    rec->reason = r->reason;
    rec->len = r->len;
    cr_assert_leq(r->len, sizeof(rec->data));
    if (r->len)
        memcpy(rec->data, r->data, r->len);
    if (r->kind == PSKGW_E2E_REJECTED)
        cr_assert_null(r->data);
    rec->has_e2e = r->e2e != NULL;
    if (r->e2e) {
        rec->version = r->e2e->version;
        snprintf(rec->ki_hex, sizeof(rec->ki_hex), "%s", r->e2e->ki_hex);
        snprintf(rec->suite, sizeof(rec->suite), "%s",
                 r->e2e->cipher_suite ? r->e2e->cipher_suite : "");
        snprintf(rec->uid, sizeof(rec->uid), "%s", r->e2e->rot_uid ? r->e2e->rot_uid : "");
    }
}

/* ---- fixtures ---- */

static pskgw_e2e_t *e2e;
static pskgw_e2e_params_t p1, p2;
static const uint8_t ki1[16] = { 0x11, 0x01, 0x00, 0x00, 0x00, 0x07, 0x01, 0x02,
                                 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x00, 0x00 };
static const uint8_t ki2[11] = { 0x21, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x0a, 0x0b, 0x0c, 0x0d };
static const char ki1_hex[] = "11010000000701020304050607080000";
static const char ki2_hex[] = "210000000700000a0b0c0d";
static const char msg[] = "{\"temp\":21.5,\"door\":\"open\"}";
static uint8_t pl1[128], pl2[128];
static size_t pl1_len, pl2_len;

static void setup(void)
{
    pskgw_e2e_params_source_t src = { &fake, fake_fetch, fake_cancel, fake_lookup };

    memset(&fake, 0, sizeof(fake));
    tearing_down = false;
    th_params(1, 1, &p1);
    th_params(2, 2, &p2);
    pl1_len = th_make_payload(&p1, ki1, 16, (const uint8_t *)msg, strlen(msg), pl1, sizeof(pl1));
    pl2_len = th_make_payload(&p2, ki2, 11, (const uint8_t *)msg, strlen(msg), pl2, sizeof(pl2));
    fake_add(ki1_hex, &p1, false);
    fake_add(ki2_hex, &p2, false);
    cr_assert_eq(pskgw_e2e_new(&src, &e2e), 0);
}

static void teardown(void)
{
    tearing_down = true;
    pskgw_e2e_free(e2e);
    e2e = NULL;
    /* Every fetch the processor started has been answered or canceled. */
    for (size_t i = 0; i < sizeof(fake.fetches) / sizeof(fake.fetches[0]); i++)
        cr_assert_not(fake.fetches[i].active && !fake.fetches[i].cancel_requested);
    fake_run(); /* deliver late cancel confirmations: the detached requests free themselves */
}

static void counters(pskgw_e2e_counters_t *c)
{
    pskgw_e2e_counters(e2e, c);
    uint64_t sum = 0;
    for (int i = 0; i < PSKGW_E2E_REASON_COUNT_; i++)
        sum += c->rejected_by[i];
    cr_assert_eq(sum, c->rejected);
}

static void assert_decrypted(const rec_t *r, int version, const char *ki_hex,
                             const pskgw_e2e_params_t *p)
{
    cr_assert_eq(r->calls, 1);
    cr_assert_eq(r->kind, PSKGW_E2E_DECRYPTED);
    cr_assert_eq(r->status, 0);
    cr_assert_eq(r->reason, PSKGW_E2E_REASON_NONE);
    cr_assert_eq(r->len, strlen(msg));
    cr_assert_arr_eq(r->data, msg, strlen(msg));
    cr_assert(r->has_e2e);
    cr_assert_eq(r->version, version);
    cr_assert_str_eq(r->ki_hex, ki_hex);
    cr_assert_str_eq(r->suite, pskgw_e2e_suite_name(p->suite));
    cr_assert_str_eq(r->uid, p->rot_uid);
}

static void assert_rejected(const rec_t *r, int status, pskgw_e2e_reason_t reason)
{
    cr_assert_eq(r->calls, 1);
    cr_assert_eq(r->kind, PSKGW_E2E_REJECTED);
    cr_assert_eq(r->status, status, "status %s", pskgw_err_name(r->status));
    cr_assert_eq(r->reason, reason, "reason %s", pskgw_e2e_reason_name(r->reason));
    cr_assert_eq(r->len, 0);
}

TestSuite(e2e_process, .init = setup, .fini = teardown);

Test(e2e_process, mode_names)
{
    pskgw_e2e_mode_t m;

    cr_assert_eq(pskgw_e2e_mode_parse("off", &m), 0);
    cr_assert_eq(m, PSKGW_E2E_MODE_OFF);
    cr_assert_eq(pskgw_e2e_mode_parse("auto", &m), 0);
    cr_assert_eq(m, PSKGW_E2E_MODE_AUTO);
    cr_assert_eq(pskgw_e2e_mode_parse("required", &m), 0);
    cr_assert_eq(m, PSKGW_E2E_MODE_REQUIRED);
    cr_assert_eq(pskgw_e2e_mode_parse("Auto", &m), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_mode_parse("", &m), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_mode_parse(NULL, &m), PSKGW_EINVAL);
    cr_assert_str_eq(pskgw_e2e_mode_name(PSKGW_E2E_MODE_REQUIRED), "required");
    cr_assert_str_eq(pskgw_e2e_reason_name(PSKGW_E2E_REASON_BAD_MAC), "bad_mac");
}

Test(e2e_process, off_forwards_everything_untouched)
{
    rec_t a = { 0 }, b = { 0 };
    pskgw_e2e_req_t *req = (pskgw_e2e_req_t *)&a;
    pskgw_e2e_counters_t c;

    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_OFF, pl1, pl1_len, on_result, &a, &req), 0);
    cr_assert_null(req);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.kind, PSKGW_E2E_PLAIN);
    cr_assert_eq(a.len, pl1_len);
    cr_assert_arr_eq(a.data, pl1, pl1_len);
    cr_assert_not(a.has_e2e);
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_OFF, NULL, 0, on_result, &b, NULL), 0);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(b.kind, PSKGW_E2E_PLAIN);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(fake.fetch_calls, 0);
    counters(&c);
    cr_assert_eq(c.plain, 2);
    cr_assert_eq(c.decrypted + c.rejected, 0);
}

Test(e2e_process, auto_decrypts_e2e_and_forwards_plain)
{
    rec_t a = { 0 }, b = { 0 }, s = { 0 }, v2 = { 0 };
    pskgw_e2e_req_t *req = NULL;
    pskgw_e2e_counters_t c;

    /* Plain JSON: forwarded at once. */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, (const uint8_t *)msg, strlen(msg),
                                   on_result, &a, &req),
                 0);
    cr_assert_null(req);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.kind, PSKGW_E2E_PLAIN);
    cr_assert_arr_eq(a.data, msg, strlen(msg));
    /* A version nibble but too short for a header: not a valid E2E header, so plain. */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, 23, on_result, &s, NULL), 0);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.kind, PSKGW_E2E_PLAIN);
    cr_assert_eq(s.len, 23);

    /* E2E V1: waits for the parameters, then decrypts. */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &b, &req), 0);
    cr_assert_not_null(req);
    cr_assert_eq(b.calls, 0);
    cr_assert_eq(pskgw_e2e_pending(e2e), 1);
    cr_assert_str_eq(fake.fetches[0].ki_hex, ki1_hex, "EncryptedHeader is lower-case hex");
    memset(pl1, 0, pl1_len); /* the processor copied the payload */
    cr_assert_eq(fake_run(), 1);
    assert_decrypted(&b, 1, ki1_hex, &p1);
    cr_assert_eq(pskgw_e2e_pending(e2e), 0);

    /* E2E V2 (AES_128_CCM_8). */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &v2, NULL),
                 0);
    cr_assert_eq(fake_run(), 1);
    assert_decrypted(&v2, 2, ki2_hex, &p2);

    counters(&c);
    cr_assert_eq(c.plain, 2);
    cr_assert_eq(c.decrypted, 2);
    cr_assert_eq(c.rejected, 0);
    cr_assert_eq(fake.fetch_calls, 2);
}

/* The documented caveat of auto: a plain payload that starts with 0x1_/0x2_ is taken as E2E. */
Test(e2e_process, auto_takes_plain_starting_with_a_version_nibble_as_e2e)
{
    static const char plain[] = "!alarm: door open at gate 7"; /* '!' = 0x21 */
    rec_t a = { 0 }, b = { 0 };

    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, (const uint8_t *)plain, strlen(plain),
                                   on_result, &a, NULL),
                 0);
    fake_run();
    assert_rejected(&a, PSKGW_ENOTFOUND, PSKGW_E2E_REASON_UNKNOWN_KI);
    cr_assert_eq(a.version, 2);
    /* ... which is why such domains use off. */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_OFF, (const uint8_t *)plain, strlen(plain),
                                   on_result, &b, NULL),
                 0);
    cr_assert_eq(b.kind, PSKGW_E2E_PLAIN);
}

Test(e2e_process, required_rejects_non_e2e)
{
    rec_t a = { 0 }, e = { 0 }, t = { 0 }, ok = { 0 };
    pskgw_e2e_req_t *req = (pskgw_e2e_req_t *)&a;
    pskgw_e2e_counters_t c;

    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_REQUIRED, (const uint8_t *)msg, strlen(msg),
                                   on_result, &a, &req),
                 0);
    cr_assert_null(req);
    assert_rejected(&a, PSKGW_EPROTO, PSKGW_E2E_REASON_NOT_E2E);
    cr_assert_not(a.has_e2e);
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_REQUIRED, NULL, 0, on_result, &e, NULL), 0);
    assert_rejected(&e, PSKGW_EPROTO, PSKGW_E2E_REASON_NOT_E2E);
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_REQUIRED, pl1, 20, on_result, &t, NULL), 0);
    assert_rejected(&t, PSKGW_EPARSE, PSKGW_E2E_REASON_TRUNCATED);
    cr_assert_eq(
        pskgw_e2e_process(e2e, PSKGW_E2E_MODE_REQUIRED, pl1, pl1_len, on_result, &ok, NULL), 0);
    fake_run();
    assert_decrypted(&ok, 1, ki1_hex, &p1);
    cr_assert_eq(fake.fetch_calls, 1);
    counters(&c);
    cr_assert_eq(c.rejected, 3);
    cr_assert_eq(c.rejected_by[PSKGW_E2E_REASON_NOT_E2E], 2);
    cr_assert_eq(c.rejected_by[PSKGW_E2E_REASON_TRUNCATED], 1);
    cr_assert_eq(c.decrypted, 1);
    cr_assert_eq(c.plain, 0);
}

Test(e2e_process, bad_mac_is_rejected_in_auto_and_required)
{
    rec_t a = { 0 }, r = { 0 };
    pskgw_e2e_counters_t c;

    pl1[pl1_len - 1] ^= 0x01; /* flipped tag bit */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, NULL), 0);
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_REQUIRED, pl1, pl1_len, on_result, &r, NULL),
                 0);
    cr_assert_eq(fake_run(), 2);
    assert_rejected(&a, PSKGW_EBADMAC, PSKGW_E2E_REASON_BAD_MAC);
    assert_rejected(&r, PSKGW_EBADMAC, PSKGW_E2E_REASON_BAD_MAC);
    /* The parameters were known: who sent it is reported (for the operator), content is not. */
    cr_assert_str_eq(a.uid, p1.rot_uid);
    cr_assert_str_eq(a.ki_hex, ki1_hex);
    counters(&c);
    cr_assert_eq(c.rejected_by[PSKGW_E2E_REASON_BAD_MAC], 2);
    cr_assert_eq(c.plain + c.decrypted, 0);
}

Test(e2e_process, truncated_for_the_real_tag_length)
{
    rec_t a = { 0 };

    /* 28 bytes: a valid header (>= 24) but shorter than KI + the 16-byte tag of AES_128_CCM. */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, 28, on_result, &a, NULL), 0);
    cr_assert_eq(a.calls, 0);
    fake_run();
    assert_rejected(&a, PSKGW_EPARSE, PSKGW_E2E_REASON_TRUNCATED);
}

Test(e2e_process, unknown_key_identity)
{
    rec_t a = { 0 }, d = { 0 };
    pskgw_e2e_counters_t c;

    pl1[3] ^= 0x40; /* another KI, which the service does not know: 404 */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, NULL), 0);
    fake_run();
    assert_rejected(&a, PSKGW_ENOTFOUND, PSKGW_E2E_REASON_UNKNOWN_KI);
    cr_assert_eq(a.version, 1);
    cr_assert_str_eq(a.suite, "");
    /* 403 (device not assigned / E2E disabled): the same class. */
    fake.deny = PSKGW_EDENIED;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &d, NULL), 0);
    fake_run();
    assert_rejected(&d, PSKGW_EDENIED, PSKGW_E2E_REASON_UNKNOWN_KI);
    counters(&c);
    cr_assert_eq(c.rejected_by[PSKGW_E2E_REASON_UNKNOWN_KI], 2);
}

Test(e2e_process, service_down_without_cached_entry)
{
    rec_t a = { 0 }, b = { 0 };
    pskgw_e2e_counters_t c;

    fake.service_down = true;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, NULL), 0);
    fake_run();
    assert_rejected(&a, PSKGW_EUNAVAIL, PSKGW_E2E_REASON_UNAVAIL);
    cr_assert_eq(a.version, 1);
    /* Service back: the same payload now decrypts (the caller may retry an UNAVAIL). */
    fake.service_down = false;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &b, NULL), 0);
    fake_run();
    assert_decrypted(&b, 1, ki1_hex, &p1);
    counters(&c);
    cr_assert_eq(c.rejected_by[PSKGW_E2E_REASON_UNAVAIL], 1);
    cr_assert_eq(c.decrypted, 1);
}

Test(e2e_process, service_down_with_cached_entry_serves_stale)
{
    rec_t a = { 0 }, b = { 0 };

    /* First message fills the cache. */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &a, NULL), 0);
    fake_run();
    assert_decrypted(&a, 2, ki2_hex, &p2);
    /* Service down: the source answers with its (stale) entry, decryption goes on. */
    fake.service_down = true;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &b, NULL), 0);
    fake_run();
    assert_decrypted(&b, 2, ki2_hex, &p2);
}

Test(e2e_process, fetch_failing_at_once)
{
    rec_t a = { 0 }, b = { 0 };
    pskgw_e2e_req_t *req = (pskgw_e2e_req_t *)&a;

    fake.fail_now = PSKGW_EBUSY;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, &req), 0);
    cr_assert_null(req);
    assert_rejected(&a, PSKGW_EBUSY, PSKGW_E2E_REASON_UNAVAIL);
    /* A negative cache entry answered at once. */
    fake.fail_now = PSKGW_ENOTFOUND;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_REQUIRED, pl2, pl2_len, on_result, &b, NULL),
                 0);
    assert_rejected(&b, PSKGW_ENOTFOUND, PSKGW_E2E_REASON_UNKNOWN_KI);
    cr_assert_eq(pskgw_e2e_pending(e2e), 0);
}

Test(e2e_process, lookup_hit_is_synchronous)
{
    rec_t a = { 0 }, b = { 0 };
    pskgw_e2e_req_t *req = (pskgw_e2e_req_t *)&a;

    fake.use_lookup = true;
    /* Miss: goes to fetch. */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, &req), 0);
    cr_assert_not_null(req);
    cr_assert_eq(fake.lookup_calls, 1);
    fake_run();
    assert_decrypted(&a, 1, ki1_hex, &p1);
    /* Hit: decrypted before process() returns, no fetch. */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &b, &req), 0);
    cr_assert_null(req);
    assert_decrypted(&b, 1, ki1_hex, &p1);
    cr_assert_eq(fake.fetch_calls, 1);
    cr_assert_eq(fake.lookup_calls, 2);
}

Test(e2e_process, done_from_inside_fetch)
{
    rec_t a = { 0 }, b = { 0 };
    pskgw_e2e_req_t *req = (pskgw_e2e_req_t *)&a;

    fake.done_in_fetch = true;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, &req), 0);
    cr_assert_null(req);
    assert_decrypted(&a, 1, ki1_hex, &p1);
    fake.service_down = true;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &b, &req), 0);
    assert_rejected(&b, PSKGW_EUNAVAIL, PSKGW_E2E_REASON_UNAVAIL);
    cr_assert_eq(fake_run(), 0);
    cr_assert_eq(pskgw_e2e_pending(e2e), 0);
}

static void cancel_case(bool cancel_now)
{
    rec_t a = { 0 }, b = { 0 };
    pskgw_e2e_req_t *ra = NULL, *rb = NULL;
    pskgw_e2e_counters_t c;

    fake.cancel_now = cancel_now;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, &ra), 0);
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &b, &rb), 0);
    cr_assert_eq(pskgw_e2e_pending(e2e), 2);
    pskgw_e2e_cancel(e2e, ra);
    assert_rejected(&a, PSKGW_ECANCELED, PSKGW_E2E_REASON_CANCELED);
    cr_assert_eq(fake.cancel_calls, 1);
    cr_assert_eq(pskgw_e2e_pending(e2e), 1);
    /* The source confirms (now or at the next run); the other request completes normally; the
     * canceled one is never reported again. */
    fake_run();
    cr_assert_eq(a.calls, 1);
    assert_decrypted(&b, 2, ki2_hex, &p2);
    counters(&c);
    cr_assert_eq(c.canceled, 1);
    cr_assert_eq(c.rejected, 0);
    cr_assert_eq(c.decrypted, 1);
}

Test(e2e_process, cancel_confirmed_at_once)
{
    cancel_case(true);
}

Test(e2e_process, cancel_confirmed_later)
{
    cancel_case(false);
}

Test(e2e_process, source_cancels_on_its_own)
{
    rec_t a = { 0 };
    pskgw_e2e_req_t *req = NULL;

    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, &req), 0);
    fake.fetches[0].cancel_requested = true; /* e.g. the cache is shutting down */
    fake_run();
    assert_rejected(&a, PSKGW_ECANCELED, PSKGW_E2E_REASON_CANCELED);
}

Test(e2e_process, bad_params_from_the_source)
{
    rec_t a = { 0 };
    pskgw_e2e_counters_t c;

    fake.entries[0].params.mac_bits = 64; /* AES_128_CCM with MACLength 64 */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, NULL), 0);
    fake_run();
    assert_rejected(&a, PSKGW_EINVAL, PSKGW_E2E_REASON_BAD_PARAMS);
    counters(&c);
    cr_assert_eq(c.rejected_by[PSKGW_E2E_REASON_BAD_PARAMS], 1);
}

Test(e2e_process, undecodable_value_from_the_source)
{
    rec_t a = { 0 };

    fake.deny = PSKGW_EPARSE; /* e.g. a cached value that pskgw_e2e_params_decode refuses */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, NULL), 0);
    fake_run();
    assert_rejected(&a, PSKGW_EPARSE, PSKGW_E2E_REASON_BAD_PARAMS);
}

/* Many requests in every state, each reported exactly once; free() reports the pending ones. */
Test(e2e_process, exactly_once_and_free_with_pending)
{
    rec_t recs[40];
    pskgw_e2e_req_t *reqs[40];
    pskgw_e2e_counters_t c;

    memset(recs, 0, sizeof(recs));
    for (int i = 0; i < 40; i++) {
        const uint8_t *p = (i % 2) ? pl1 : pl2;
        size_t len = (i % 2) ? pl1_len : pl2_len;
        pskgw_e2e_mode_t mode = (pskgw_e2e_mode_t)(i % 3);
        if (i % 5 == 0) {
            p = (const uint8_t *)msg;
            len = strlen(msg);
        }
        reqs[i] = NULL;
        cr_assert_eq(pskgw_e2e_process(e2e, mode, p, len, on_result, &recs[i], &reqs[i]), 0);
        if (i == 20)
            fake_run(); /* answer the first half */
    }
    for (int i = 0; i < 40; i += 7) {
        if (reqs[i] && recs[i].calls == 0)
            pskgw_e2e_cancel(e2e, reqs[i]);
    }
    fake.cancel_now = false; /* free() leaves confirmations for later: teardown delivers them */
    counters(&c);
    pskgw_e2e_free(e2e);
    e2e = NULL;
    for (int i = 0; i < 40; i++)
        cr_assert_eq(recs[i].calls, 1, "request %d reported %d times", i, recs[i].calls);
    cr_assert_gt(fake.cancel_calls, 0);
}

static pskgw_e2e_t *to_free;

static void free_in_callback(void *arg, const pskgw_e2e_result_t *r)
{
    on_result(arg, r);
    pskgw_e2e_free(to_free);
}

Test(e2e_process, free_from_inside_a_callback)
{
    rec_t a = { 0 }, b = { 0 };

    cr_assert_eq(
        pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, free_in_callback, &a, NULL), 0);
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &b, NULL), 0);
    to_free = e2e;
    e2e = NULL;
    /* The first answer frees the processor from its callback; the second request is canceled by
     * that free and reported once; the source's later answer for it is absorbed. */
    fake_run();
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.kind, PSKGW_E2E_DECRYPTED);
    assert_rejected(&b, PSKGW_ECANCELED, PSKGW_E2E_REASON_CANCELED);
}

Test(e2e_process, invalid_arguments_never_call_back)
{
    rec_t a = { 0 };
    pskgw_e2e_t *x = NULL;
    pskgw_e2e_params_source_t bad = { &fake, NULL, fake_cancel, NULL };

    cr_assert_eq(pskgw_e2e_process(NULL, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, on_result, &a, NULL),
                 PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, pl1, pl1_len, NULL, &a, NULL),
                 PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, NULL, 5, on_result, &a, NULL),
                 PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_process(e2e, (pskgw_e2e_mode_t)7, pl1, pl1_len, on_result, &a, NULL),
                 PSKGW_EINVAL);
    cr_assert_eq(a.calls, 0);
    cr_assert_eq(pskgw_e2e_new(&bad, &x), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_new(NULL, &x), PSKGW_EINVAL);
    {
        pskgw_e2e_params_source_t src = { &fake, fake_fetch, fake_cancel, NULL };
        pskgw_e2e_opts_t o = { (pskgw_e2e_header_case_t)2, PSKGW_E2E_V2_SEED };
        cr_assert_eq(pskgw_e2e_new_opts(&src, &o, &x), PSKGW_EINVAL);
        o = (pskgw_e2e_opts_t){ PSKGW_E2E_HEADER_LOWER, PSKGW_E2E_V2_COUNT_ };
        cr_assert_eq(pskgw_e2e_new_opts(&src, &o, &x), PSKGW_EINVAL);
    }
    cr_assert_null(x);
}

Test(e2e_process, header_case_names)
{
    pskgw_e2e_header_case_t c;

    cr_assert_eq(pskgw_e2e_header_case_parse("lower", &c), 0);
    cr_assert_eq(c, PSKGW_E2E_HEADER_LOWER);
    cr_assert_eq(pskgw_e2e_header_case_parse("upper", &c), 0);
    cr_assert_eq(c, PSKGW_E2E_HEADER_UPPER);
    cr_assert_eq(pskgw_e2e_header_case_parse("Upper", &c), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_header_case_parse(NULL, &c), PSKGW_EINVAL);
    cr_assert_str_eq(pskgw_e2e_header_case_name(PSKGW_E2E_HEADER_LOWER), "lower");
    cr_assert_str_eq(pskgw_e2e_header_case_name(PSKGW_E2E_HEADER_UPPER), "upper");
}

/* e2e_header_case = "upper": the source (hence GetE2EDecryptionParameters) gets the KI in upper
 * case, for fetch and lookup alike; results still carry it in lower case. */
Test(e2e_process, header_case_upper_asks_the_source_in_upper_case)
{
    pskgw_e2e_params_source_t src = { &fake, fake_fetch, fake_cancel, fake_lookup };
    pskgw_e2e_opts_t o = { PSKGW_E2E_HEADER_UPPER, PSKGW_E2E_V2_SEED };
    pskgw_e2e_t *up = NULL;
    rec_t a = { 0 }, b = { 0 };

    fake.nentries = 0;
    fake_add("11010000000701020304050607080000", &p1, false); /* no letters: same either way */
    fake_add("210000000700000A0B0C0D", &p2, false);
    cr_assert_eq(pskgw_e2e_new_opts(&src, &o, &up), 0);
    cr_assert_eq(pskgw_e2e_process(up, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &a, NULL), 0);
    cr_assert_str_eq(fake.fetches[0].ki_hex, "210000000700000A0B0C0D");
    cr_assert_eq(fake_run(), 1);
    assert_decrypted(&a, 2, ki2_hex, &p2); /* lower case in the result */
    fake.use_lookup = true;
    cr_assert_eq(pskgw_e2e_process(up, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &b, NULL), 0);
    cr_assert_eq(fake.lookup_calls, 2);
    assert_decrypted(&b, 2, ki2_hex, &p2); /* the lookup found the upper-case key */
    pskgw_e2e_free(up);
}

/* V2 layout "pad1": one byte between the KI and the ciphertext, 16-byte tag: 28 bytes of
 * overhead as u-blox's tests measure. The same bytes read with "seed" fail to authenticate
 * (the byte would be taken as ciphertext). */
Test(e2e_process, v2_pad1_layout_reads_28_bytes_of_overhead)
{
    pskgw_e2e_params_source_t src = { &fake, fake_fetch, fake_cancel, NULL };
    pskgw_e2e_opts_t o = { PSKGW_E2E_HEADER_LOWER, PSKGW_E2E_V2_PAD1 };
    pskgw_e2e_t *pad = NULL;
    pskgw_e2e_params_t p;
    uint8_t head[12], pl[128];
    size_t len;
    rec_t a = { 0 }, b = { 0 }, c = { 0 };

    th_params(1, 9, &p); /* AES_128_CCM, 16-byte tag */
    memcpy(head, ki2, 11);
    head[11] = 0xa5;
    len = th_make_payload(&p, head, 12, (const uint8_t *)msg, strlen(msg), pl, sizeof(pl));
    cr_assert_eq(len, strlen(msg) + 28);
    fake.nentries = 0;
    fake_add(ki2_hex, &p, false);
    cr_assert_eq(pskgw_e2e_new_opts(&src, &o, &pad), 0);
    cr_assert_eq(pskgw_e2e_process(pad, PSKGW_E2E_MODE_REQUIRED, pl, len, on_result, &a, NULL), 0);
    cr_assert_str_eq(fake.fetches[0].ki_hex, ki2_hex, "the extra byte is not sent");
    cr_assert_eq(fake_run(), 1);
    assert_decrypted(&a, 2, ki2_hex, &p);
    /* The extra byte is not authenticated. */
    pl[11] ^= 0xff;
    cr_assert_eq(pskgw_e2e_process(pad, PSKGW_E2E_MODE_REQUIRED, pl, len, on_result, &b, NULL), 0);
    cr_assert_eq(fake_run(), 1);
    assert_decrypted(&b, 2, ki2_hex, &p);
    /* The default layout reads the same bytes wrong. */
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_REQUIRED, pl, len, on_result, &c, NULL), 0);
    cr_assert_eq(fake_run(), 1);
    cr_assert_eq(c.kind, PSKGW_E2E_REJECTED);
    cr_assert_eq(c.reason, PSKGW_E2E_REASON_BAD_MAC);
    /* pad1 V2 needs 11 + 1 + 8 bytes for a header; V1 is not affected. */
    cr_assert_eq(pskgw_e2e_process(pad, PSKGW_E2E_MODE_AUTO, pl, 19, on_result, &c, NULL), 0);
    cr_assert_eq(c.kind, PSKGW_E2E_PLAIN);
    pskgw_e2e_free(pad);
}

/* A reload replaces the options of a running processor: a request already waiting keeps what it
 * was read with, the next one is read with the new case; bad options change nothing. */
Test(e2e_process, set_opts_applies_to_the_next_payload)
{
    pskgw_e2e_params_source_t src = { &fake, fake_fetch, fake_cancel, NULL };
    pskgw_e2e_opts_t lower = { PSKGW_E2E_HEADER_LOWER, PSKGW_E2E_V2_SEED };
    pskgw_e2e_opts_t upper = { PSKGW_E2E_HEADER_UPPER, PSKGW_E2E_V2_SEED };
    pskgw_e2e_opts_t bad = { (pskgw_e2e_header_case_t)2, PSKGW_E2E_V2_SEED };
    pskgw_e2e_t *x = NULL;
    rec_t a = { 0 }, b = { 0 };

    fake.nentries = 0;
    fake_add(ki2_hex, &p2, false);
    fake_add("210000000700000A0B0C0D", &p2, false);
    cr_assert_eq(pskgw_e2e_new_opts(&src, &lower, &x), 0);
    cr_assert_eq(pskgw_e2e_process(x, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &a, NULL), 0);
    cr_assert_eq(pskgw_e2e_set_opts(x, &bad), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_set_opts(NULL, &upper), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_set_opts(x, &upper), 0);
    cr_assert_eq(pskgw_e2e_process(x, PSKGW_E2E_MODE_AUTO, pl2, pl2_len, on_result, &b, NULL), 0);
    cr_assert_str_eq(fake.fetches[0].ki_hex, ki2_hex, "the waiting request: lower case");
    cr_assert_str_eq(fake.fetches[1].ki_hex, "210000000700000A0B0C0D", "the next: upper case");
    cr_assert_eq(fake_run(), 2);
    assert_decrypted(&a, 2, ki2_hex, &p2);
    assert_decrypted(&b, 2, ki2_hex, &p2);
    pskgw_e2e_free(x);
}
