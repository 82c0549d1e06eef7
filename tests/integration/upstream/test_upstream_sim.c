/* pskgw_upstream against the real simulator (pskgw-sim) on loopback: authentication and token
 * lifecycle, refusals, 401 recovery, 429 with Retry-After, transient failures, deadlines, the
 * in-flight cap and queue, 1,000 concurrent requests without blocking the loop, cancel and close
 * with requests in flight. Every test ends with uv_loop_close() == 0. */
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "simctl.h"
#include "upfix.h"
#include "tools/rotkeys/rotkeys.h"
#include "upstream/upstream.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

typedef struct {
    int calls;
    int status;
    uint64_t at_ms;       /* loop time of the callback */
    int seq;              /* order of the callback among all callbacks (1, 2, ...) */
    uint64_t window_left; /* the client's Retry-After window left at the callback, ms */
    pskgw_upstream_psk_t psk;
    pskgw_upstream_e2e_t e2e;
    pskgw_upstream_req_t *req;
} res_t;

static int seq; /* callbacks in order */

/* A failed assertion ends the test early: never leave the simulator running. */
static void suite_fini(void)
{
    sim_stop(&sim);
}

TestSuite(upstream_sim, .fini = suite_fini);

static void psk_cb(void *arg, int status, const pskgw_upstream_psk_t *r)
{
    res_t *x = arg;

    if (in_api || x->calls)
        violated++;
    x->calls++;
    x->status = status;
    x->at_ms = uv_now(&loop);
    x->seq = ++seq;
    x->window_left = cli ? pskgw_upstream_retry_after_ms_left(cli) : 0;
    if ((status == 0) != (r != NULL))
        violated++;
    if (r)
        x->psk = *r;
    done++;
}

static void e2e_cb(void *arg, int status, const pskgw_upstream_e2e_t *r)
{
    res_t *x = arg;

    if (in_api || x->calls)
        violated++;
    x->calls++;
    x->status = status;
    x->at_ms = uv_now(&loop);
    x->seq = ++seq;
    x->window_left = cli ? pskgw_upstream_retry_after_ms_left(cli) : 0;
    if ((status == 0) != (r != NULL))
        violated++;
    if (r)
        x->e2e = *r;
    done++;
}

static void opts_base(pskgw_upstream_opts_t *o)
{
    upfix_opts(o, "test", sim.url);
}

static void start_client(const pskgw_upstream_opts_t *o)
{
    upfix_start_client(o);
    seq = 0;
}

/* Run the loop until pred() holds; fails the test after timeout_ms (a guard only). */
static void run_until_pred(bool (*pred)(void), uint64_t timeout_ms, const char *what)
{
    uint64_t end = uv_now(&loop) + timeout_ms;

    while (!pred()) {
        cr_assert_lt(uv_now(&loop), end, "timed out waiting for %s", what);
        uv_run(&loop, UV_RUN_ONCE);
    }
}

static pskgw_upstream_stats_t stats_now(void)
{
    pskgw_upstream_stats_t st;

    pskgw_upstream_stats(cli, &st);
    return st;
}

static int get_psk(unsigned dev, unsigned bits, uint32_t deadline, res_t *r)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    int rc;

    cr_assert_eq(pskgw_rot_identity_hex(SIM_SEED, dev, id), 0);
    in_api = 1;
    rc = pskgw_upstream_get_psk(cli, id, bits, deadline, psk_cb, r, &r->req);
    in_api = 0;
    return rc;
}

static void check_psk(unsigned dev, unsigned bits, const res_t *r)
{
    uint8_t key[32];
    size_t n = 0;
    char uid[PSKGW_ROT_UID_LEN + 1];

    cr_assert_eq(r->calls, 1);
    cr_assert_eq(r->status, 0, "device %u: %s", dev, pskgw_strerror(r->status));
    cr_assert_eq(pskgw_rot_psk(SIM_SEED, dev, bits, key, sizeof(key), &n), 0);
    cr_assert_eq(r->psk.key_len, n);
    cr_assert(memcmp(r->psk.key, key, n) == 0, "device %u: wrong key", dev);
    cr_assert_eq(pskgw_rot_uid(SIM_SEED, dev, uid), 0);
    cr_assert_str_eq(r->psk.rot_uid, uid);
}

static void set_faults(const char *json)
{
    cr_assert_eq(sim_post(&sim, "/_sim/faults", json), 200, "faults %s", json);
}

/* One request to get a token (so that later faults hit the call under test, not authenticate). */
static void warm_up(void)
{
    res_t r = { 0 };

    cr_assert_eq(get_psk(1, 128, 0, &r), 0);
    upfix_run_until(&r.calls, 1, 10000);
    check_psk(1, 128, &r);
}

Test(upstream_sim, authenticate_once_then_psk_and_e2e)
{
    pskgw_upstream_opts_t o;
    res_t r[8];
    res_t e[2];
    pskgw_upstream_stats_t st;

    memset(r, 0, sizeof(r));
    memset(e, 0, sizeof(e));
    start_sim(NULL);
    opts_base(&o);
    start_client(&o);
    /* eight requests before any token: they share one authentication */
    for (unsigned i = 0; i < 8; i++)
        cr_assert_eq(get_psk(10 + i, i % 2 ? 256 : 128, 0, &r[i]), 0);
    cr_assert_eq(done, 0, "a callback ran inside the call");
    upfix_run_until(&done, 8, 10000);
    for (unsigned i = 0; i < 8; i++)
        check_psk(10 + i, i % 2 ? 256 : 128, &r[i]);
    cr_assert_eq(sim_calls(&sim, "authenticate"), 1);
    cr_assert_eq(sim_calls(&sim, "get_psk"), 8);

    /* E2E V1 and V2 */
    for (int v = 1; v <= 2; v++) {
        uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
        char hex[2 * PSKGW_ROT_KI_MAX_LEN + 1];
        size_t n = 0;
        cr_assert_eq(pskgw_rot_e2e_ki(SIM_SEED, 5, v, 3, ki, sizeof(ki), &n), 0);
        cr_assert_eq(pskgw_hex_encode(ki, n, hex, sizeof(hex), v == 2), 0); /* any case */
        in_api = 1;
        cr_assert_eq(pskgw_upstream_get_e2e(cli, hex, 0, e2e_cb, &e[v - 1], NULL), 0);
        in_api = 0;
    }
    upfix_run_until(&done, 10, 10000);
    for (int v = 1; v <= 2; v++) {
        uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
        size_t n = 0;
        pskgw_rot_e2e_params_t p;
        const res_t *x = &e[v - 1];
        cr_assert_eq(pskgw_rot_e2e_ki(SIM_SEED, 5, v, 3, ki, sizeof(ki), &n), 0);
        cr_assert_eq(pskgw_rot_e2e_params(SIM_SEED, ki, n, &p), 0);
        cr_assert_eq(x->status, 0, "V%d: %s", v, pskgw_strerror(x->status));
        cr_assert(memcmp(x->e2e.key, p.key, 16) == 0);
        cr_assert_eq(x->e2e.nonce_len, p.nonce_len);
        cr_assert(memcmp(x->e2e.nonce, p.nonce, p.nonce_len) == 0);
        cr_assert_eq(x->e2e.mac_bits, p.mac_bits);
        cr_assert_str_eq(x->e2e.cipher_suite, p.cipher_suite);
        pskgw_rot_e2e_params_wipe(&p);
    }
    pskgw_upstream_stats(cli, &st);
    cr_assert_eq(st.outcomes[PSKGW_UPSTREAM_OP_PSK][PSKGW_UPSTREAM_OUT_OK], 8);
    cr_assert_eq(st.outcomes[PSKGW_UPSTREAM_OP_E2E][PSKGW_UPSTREAM_OUT_OK], 2);
    cr_assert_eq(st.outcomes[PSKGW_UPSTREAM_OP_AUTH][PSKGW_UPSTREAM_OUT_OK], 1);
    cr_assert_eq(st.latency_count[PSKGW_UPSTREAM_OP_PSK], 8);
    cr_assert_eq(st.latency_le[PSKGW_UPSTREAM_OP_PSK][PSKGW_UPSTREAM_LAT_BUCKETS], 8);
    cr_assert_eq(st.http_attempts[PSKGW_UPSTREAM_OP_PSK], 8);
    cr_assert_eq(st.token_valid, 1);
    cr_assert_eq(st.in_flight, 0);
    upfix_finish();
}

/* The simulator records the Authorization form of every call, and --strict (simctl) refuses the
 * form the domain is not configured for: the client must send "Bearer <token>" in bearer mode
 * and the raw token otherwise (issue 17 §3: this test passed whatever form pskgw sent). */
Test(upstream_sim, bearer_header_mode)
{
    static const char *const bearer[] = { "--auth-header", "bearer", NULL };
    pskgw_upstream_opts_t o;

    start_sim(bearer);
    opts_base(&o);
    o.auth_mode = PSKGW_UPSTREAM_AUTH_BEARER;
    start_client(&o);
    warm_up();
    cr_assert_eq(sim_stat(&sim, "auth_header", "bearer"), 1);
    cr_assert_eq(sim_stat(&sim, "auth_header", "raw"), 0);
    cr_assert_eq(sim_stat(&sim, "auth_header", "none"), 0);
    cr_assert_eq(sim_stat(&sim, NULL, "strict_refused"), 0);
    cr_assert_eq(sim_status_count(&sim, 401), 0);
    upfix_finish();

    /* the default form is the raw token */
    start_sim(NULL);
    opts_base(&o);
    start_client(&o);
    warm_up();
    cr_assert_eq(sim_stat(&sim, "auth_header", "raw"), 1);
    cr_assert_eq(sim_stat(&sim, "auth_header", "bearer"), 0);
    cr_assert_eq(sim_status_count(&sim, 401), 0);
    upfix_finish();
}

Test(upstream_sim, refusals_are_final)
{
    static const char *const extra[] = { "--devices", "100", "--disabled-every", "10", NULL };
    pskgw_upstream_opts_t o;
    res_t nf = { 0 };
    res_t den = { 0 };
    res_t junk = { 0 };
    pskgw_upstream_stats_t st;

    start_sim(extra);
    opts_base(&o);
    start_client(&o);
    warm_up();
    cr_assert_eq(get_psk(150, 128, 0, &nf), 0); /* a valid identity of an unknown device */
    cr_assert_eq(get_psk(9, 128, 0, &den), 0);  /* provisioning disabled */
    in_api = 1;
    cr_assert_eq(
        pskgw_upstream_get_psk(cli, "00112233445566778899AABBCCDD", 128, 0, psk_cb, &junk, NULL),
        0);
    in_api = 0;
    upfix_run_until(&done, 4, 10000);
    cr_assert_eq(nf.status, PSKGW_ENOTFOUND, "%s", pskgw_strerror(nf.status));
    cr_assert_eq(den.status, PSKGW_EDENIED, "%s", pskgw_strerror(den.status));
    cr_assert_eq(junk.status, PSKGW_ENOTFOUND, "%s", pskgw_strerror(junk.status));
    /* no retries for final answers */
    cr_assert_eq(sim_calls(&sim, "get_psk"), 4);
    pskgw_upstream_stats(cli, &st);
    cr_assert_eq(st.outcomes[PSKGW_UPSTREAM_OP_PSK][PSKGW_UPSTREAM_OUT_NOTFOUND], 2);
    cr_assert_eq(st.outcomes[PSKGW_UPSTREAM_OP_PSK][PSKGW_UPSTREAM_OUT_DENIED], 1);
    /* invalid arguments fail at once */
    in_api = 1;
    cr_assert_eq(pskgw_upstream_get_psk(cli, "XYZ", 128, 0, psk_cb, &junk, NULL), PSKGW_EINVAL);
    cr_assert_eq(pskgw_upstream_get_psk(cli, "AABB", 192, 0, psk_cb, &junk, NULL), PSKGW_EINVAL);
    in_api = 0;
    upfix_finish();
}

Test(upstream_sim, wrong_secret_is_eauth)
{
    pskgw_upstream_opts_t o;
    res_t r[3];

    memset(r, 0, sizeof(r));
    start_sim(NULL);
    opts_base(&o);
    o.secret = "not-the-secret";
    start_client(&o);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(get_psk(1, 128, 0, &r[i]), 0);
    upfix_run_until(&done, 3, 10000);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(r[i].status, PSKGW_EAUTH, "%s", pskgw_strerror(r[i].status));
    cr_assert_eq(sim_calls(&sim, "authenticate"), 1);
    cr_assert_eq(sim_calls(&sim, "get_psk"), 0);
    upfix_finish();
}

/* A request every 200 ms for 4.5 s with a 2 s token: renewed in the background (at 1.6 s,
 * 3.2 s), never used expired, no 401. */
typedef struct {
    uv_timer_t t;
    int sent;
    res_t r[30];
} feeder_t;

static void on_feed(uv_timer_t *t)
{
    feeder_t *f = t->data;

    if (f->sent >= 23) {
        uv_timer_stop(t);
        return;
    }
    cr_assert_eq(get_psk(20 + (unsigned)f->sent, 128, 0, &f->r[f->sent]), 0);
    f->sent++;
}

Test(upstream_sim, proactive_renewal)
{
    static const char *const extra[] = { "--token-ttl", "2", NULL };
    pskgw_upstream_opts_t o;
    feeder_t f;
    pskgw_upstream_stats_t st;

    memset(&f, 0, sizeof(f));
    start_sim(extra);
    opts_base(&o);
    start_client(&o);
    cr_assert_eq(uv_timer_init(&loop, &f.t), 0);
    f.t.data = &f;
    uv_timer_start(&f.t, on_feed, 0, 200);
    upfix_run_until(&done, 23, 15000);
    uv_close((uv_handle_t *)&f.t, NULL);
    for (int i = 0; i < 23; i++)
        check_psk(20 + (unsigned)i, 128, &f.r[i]);
    cr_assert_geq(sim_calls(&sim, "authenticate"), 3, "renewals: %ld",
                  sim_calls(&sim, "authenticate"));
    cr_assert_eq(sim_status_count(&sim, 401), 0, "a request used an expired token");
    pskgw_upstream_stats(cli, &st);
    cr_assert_eq(st.reauth_on_401, 0);
    cr_assert_geq(st.token_renewals, 3);
    upfix_finish();
}

static void on_busy(uv_timer_t *t)
{
    uint64_t end = uv_hrtime() + 3000000;

    (void)t;
    while (uv_hrtime() < end) /* a busy gateway: timers fire a few ms late */
        ;
}

static bool renewed_twice(void)
{
    return stats_now().token_renewals >= 2;
}

/* A short-lived token is renewed in the background too (at 80 % of its lifetime, even when the
 * timer fires a little late), not only when the next request finds it gone: with no request
 * made after the warm-up, a second authentication can only come from the renewal timer. */
Test(upstream_sim, short_token_renewed_in_the_background_while_idle)
{
    static const char *const extra[] = { "--token-ttl", "2", NULL };
    pskgw_upstream_opts_t o;
    pskgw_upstream_stats_t st;
    uv_timer_t busy;

    start_sim(extra);
    opts_base(&o);
    start_client(&o);
    warm_up();
    cr_assert_eq(sim_calls(&sim, "authenticate"), 1);
    cr_assert_eq(uv_timer_init(&loop, &busy), 0);
    uv_timer_start(&busy, on_busy, 1, 1);
    run_until_pred(renewed_twice, 30000, "a background renewal");
    uv_close((uv_handle_t *)&busy, NULL);
    cr_assert_eq(sim_calls(&sim, "authenticate"), 2);
    cr_assert_eq(sim_calls(&sim, "get_psk"), 1, "the warm-up only: nothing asked for a token");
    pskgw_upstream_stats(cli, &st);
    cr_assert_eq(st.http_attempts[PSKGW_UPSTREAM_OP_PSK], 1);
    cr_assert_eq(st.token_valid, 1);
    upfix_finish();
}

Test(upstream_sim, recovers_from_401_with_one_reauth)
{
    pskgw_upstream_opts_t o;
    res_t r[4];
    pskgw_upstream_stats_t st;

    memset(r, 0, sizeof(r));
    start_sim(NULL);
    opts_base(&o);
    start_client(&o);
    warm_up();
    cr_assert_eq(sim_post(&sim, "/_sim/expire-tokens", "{}"), 200);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(get_psk(30 + (unsigned)i, 128, 0, &r[i]), 0);
    upfix_run_until(&done, 5, 10000);
    for (int i = 0; i < 4; i++)
        check_psk(30 + (unsigned)i, 128, &r[i]);
    /* four 401s at most, but one shared re-authentication */
    cr_assert_eq(sim_calls(&sim, "authenticate"), 2);
    cr_assert_leq(sim_status_count(&sim, 401), 4);
    cr_assert_geq(sim_status_count(&sim, 401), 1);
    pskgw_upstream_stats(cli, &st);
    cr_assert_geq(st.reauth_on_401, 1);
    cr_assert_eq(st.outcomes[PSKGW_UPSTREAM_OP_PSK][PSKGW_UPSTREAM_OUT_OK], 5);
    upfix_finish();
}

Test(upstream_sim, ratelimit_honours_retry_after)
{
    pskgw_upstream_opts_t o;
    res_t a = { 0 };
    res_t b = { 0 };
    uint64_t t;

    start_sim(NULL);
    opts_base(&o);
    start_client(&o);
    warm_up();
    /* one 429 with Retry-After: 1 -> the retry comes after the window (>= 1 s of loop time:
     * a timer never fires early; load only makes it later) and succeeds */
    set_faults("{\"ratelimit_next\":1,\"retry_after_s\":1}");
    uv_update_time(&loop);
    t = uv_now(&loop);
    cr_assert_eq(get_psk(40, 128, 30000, &a), 0);
    upfix_run_until(&a.calls, 1, 60000);
    check_psk(40, 128, &a);
    cr_assert_geq(a.at_ms - t, 1000, "retried after %llu ms", (unsigned long long)(a.at_ms - t));
    cr_assert_eq(a.window_left, 0, "answered after the window");
    cr_assert_eq(sim_status_count(&sim, 429), 1);
    cr_assert_eq(stats_now().http_attempts[PSKGW_UPSTREAM_OP_PSK], 1 + 2, "the 429 and one retry");
    /* Retry-After: 5 does not fit a 2 s deadline: ERATELIMIT at once (inside the window, without
     * a retry), hint available */
    set_faults("{\"ratelimit_next\":1,\"retry_after_s\":5}");
    cr_assert_eq(get_psk(41, 128, 2000, &b), 0);
    upfix_run_until(&b.calls, 1, 60000);
    cr_assert_eq(b.status, PSKGW_ERATELIMIT, "%s", pskgw_strerror(b.status));
    cr_assert_gt(b.window_left, 0, "refused while the window was open, not after waiting");
    cr_assert_leq(b.window_left, 5000);
    cr_assert_eq(stats_now().http_attempts[PSKGW_UPSTREAM_OP_PSK], 3 + 1, "never retried");
    cr_assert_eq(sim_status_count(&sim, 429), 2);
    upfix_finish();
}

static bool window_open(void)
{
    return pskgw_upstream_retry_after_ms_left(cli) > 0;
}

/* Retry-After holds for the whole client: requests made while the window is open wait for its
 * end instead of being sent into it (or end with ERATELIMIT at once when it passes their
 * deadline). */
Test(upstream_sim, retry_after_window_holds_new_requests)
{
    pskgw_upstream_opts_t o;
    res_t a = { 0 };
    res_t r[4];
    res_t late = { 0 };
    uint64_t attempts;

    memset(r, 0, sizeof(r));
    start_sim(NULL);
    opts_base(&o);
    start_client(&o);
    warm_up();
    /* a 3 s window: long enough that the checks below run inside it on a loaded machine */
    set_faults("{\"ratelimit_next\":1,\"retry_after_s\":3}");
    cr_assert_eq(sim_post(&sim, "/_sim/reset", "{}"), 200);
    cr_assert_eq(get_psk(50, 128, 30000, &a), 0);
    run_until_pred(window_open, 30000, "the 429");
    attempts = stats_now().http_attempts[PSKGW_UPSTREAM_OP_PSK];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(get_psk(51 + (unsigned)i, 128, 30000, &r[i]), 0);
    /* a 300 ms deadline cannot see the window end: refused at once (inside the window), never
     * sent */
    cr_assert_eq(get_psk(55, 128, 300, &late), 0);
    upfix_run_until(&late.calls, 1, 30000);
    cr_assert_eq(late.calls, 1);
    cr_assert_eq(late.status, PSKGW_ERATELIMIT, "%s", pskgw_strerror(late.status));
    cr_assert_gt(late.window_left, 0, "refused at once, not after waiting");
    cr_assert_eq(stats_now().http_attempts[PSKGW_UPSTREAM_OP_PSK], attempts,
                 "requests sent into the Retry-After window");
    cr_assert_eq(sim_calls(&sim, "get_psk"), 1, "requests sent into the Retry-After window");
    upfix_run_until(&done, 7, 60000);
    check_psk(50, 128, &a);
    for (int i = 0; i < 4; i++) {
        check_psk(51 + (unsigned)i, 128, &r[i]);
        cr_assert_eq(r[i].window_left, 0, "request %d answered inside the window", i);
        cr_assert_gt(r[i].seq, late.seq);
    }
    cr_assert_eq(sim_status_count(&sim, 429), 1);
    upfix_finish();
}

Test(upstream_sim, transient_failures_are_retried)
{
    pskgw_upstream_opts_t o;
    res_t a = { 0 };
    res_t b = { 0 };
    pskgw_upstream_stats_t st;

    start_sim(NULL);
    opts_base(&o);
    start_client(&o);
    warm_up();
    /* two 503s, then success */
    set_faults("{\"error_next\":2,\"error_status\":503}");
    cr_assert_eq(get_psk(50, 128, 5000, &a), 0);
    upfix_run_until(&a.calls, 1, 10000);
    check_psk(50, 128, &a);
    cr_assert_eq(sim_calls(&sim, "get_psk"), 4); /* warm-up + 3 */
    /* a dropped connection, then a 500, then success */
    set_faults("{\"drop_next\":1,\"error_next\":1,\"error_status\":500}");
    cr_assert_eq(get_psk(51, 128, 5000, &b), 0);
    upfix_run_until(&b.calls, 1, 10000);
    check_psk(51, 128, &b);
    /* curl itself retries a request whose reused connection died, once: 3 or 4 here */
    pskgw_upstream_stats(cli, &st);
    cr_assert(st.retries == 3 || st.retries == 4, "retries %llu", (unsigned long long)st.retries);
    upfix_finish();
}

Test(upstream_sim, unavailable_within_the_deadline)
{
    pskgw_upstream_opts_t o;
    res_t a = { 0 };

    start_sim(NULL);
    opts_base(&o);
    start_client(&o);
    warm_up();
    set_faults("{\"error_rate\":1.0,\"error_status\":502}");
    cr_assert_eq(get_psk(60, 128, 1500, &a), 0);
    upfix_run_until(&a.calls, 1, 60000);
    cr_assert_eq(a.calls, 1, "the deadline ended the request");
    cr_assert_eq(a.status, PSKGW_EUNAVAIL, "%s", pskgw_strerror(a.status));
    /* bounded backoff: several attempts, never a storm */
    cr_assert_geq(sim_calls(&sim, "get_psk"), 1 + 3);
    cr_assert_leq(sim_calls(&sim, "get_psk"), 1 + 12);
    upfix_finish();
}

Test(upstream_sim, deadline_exceeded)
{
    pskgw_upstream_opts_t o;
    res_t a = { 0 };
    uint64_t t;

    start_sim(NULL);
    opts_base(&o);
    start_client(&o);
    warm_up();
    /* the answer would come after 60 s: ETIMEOUT means the 300 ms deadline ended it first */
    set_faults("{\"latency_ms\":60000}");
    uv_update_time(&loop);
    t = uv_now(&loop);
    cr_assert_eq(get_psk(70, 128, 300, &a), 0);
    upfix_run_until(&a.calls, 1, 30000);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.status, PSKGW_ETIMEOUT, "%s", pskgw_strerror(a.status));
    /* not before the deadline (loop time: a timer never fires early) */
    cr_assert_geq(a.at_ms - t, 300, "ended after %llu ms", (unsigned long long)(a.at_ms - t));
    set_faults("{\"latency_ms\":0}");
    upfix_finish();
}

Test(upstream_sim, queue_full_is_busy_at_once)
{
    pskgw_upstream_opts_t o;
    res_t r[6];
    pskgw_upstream_stats_t st;
    json_t *stats;

    memset(r, 0, sizeof(r));
    start_sim(NULL);
    opts_base(&o);
    o.max_in_flight = 2;
    o.queue_size = 3;
    start_client(&o);
    warm_up();
    set_faults("{\"latency_ms\":150}");
    cr_assert_eq(sim_post(&sim, "/_sim/reset", "{}"), 200);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(get_psk(80 + (unsigned)i, 128, 0, &r[i]), 0);
    pskgw_upstream_stats(cli, &st);
    cr_assert_eq(st.in_flight, 2);
    cr_assert_eq(st.queued, 3);
    cr_assert_eq(get_psk(85, 128, 0, &r[5]), PSKGW_EBUSY);
    upfix_run_until(&done, 6, 10000); /* 5 + warm-up */
    for (int i = 0; i < 5; i++)
        check_psk(80 + (unsigned)i, 128, &r[i]);
    cr_assert_eq(r[5].calls, 0, "a refused request called back");
    stats = sim_stats(&sim);
    cr_assert_not_null(stats);
    cr_assert_leq(json_integer_value(json_object_get(stats, "max_in_flight")), 2);
    json_decref(stats);
    pskgw_upstream_stats(cli, &st);
    cr_assert_eq(st.outcomes[PSKGW_UPSTREAM_OP_PSK][PSKGW_UPSTREAM_OUT_BUSY], 1);
    /* FIFO: the queued ones finish after the first two */
    cr_assert_lt(r[0].seq, r[2].seq);
    cr_assert_lt(r[1].seq, r[4].seq);
    upfix_finish();
}

/* ---- 1,000 concurrent requests; the loop keeps ticking ---- */

typedef struct {
    uv_timer_t t;
    int n;               /* requests made */
    unsigned ticks;      /* all ticks */
    unsigned ticks_busy; /* ticks while some requests were answered and others still pending */
} ticker_t;

static void on_tick(uv_timer_t *t)
{
    ticker_t *k = t->data;

    k->ticks++;
    if (done > 0 && done < k->n)
        k->ticks_busy++;
}

Test(upstream_sim, thousand_concurrent_requests_do_not_block_the_loop)
{
    static const char *const extra[] = { "--latency-ms", "20", "--jitter-ms", "20", NULL };
    enum { N = 1000 };
    pskgw_upstream_opts_t o;
    res_t *r = calloc(N, sizeof(*r));
    ticker_t k;
    pskgw_upstream_stats_t st;

    cr_assert_not_null(r);
    memset(&k, 0, sizeof(k));
    start_sim(extra);
    opts_base(&o);
    o.max_in_flight = N;
    o.max_connections = 64;
    o.deadline_ms = 60000;
    o.timeout_ms = 30000;
    start_client(&o);
    cr_assert_eq(uv_timer_init(&loop, &k.t), 0);
    k.t.data = &k;
    k.n = N;
    uv_timer_start(&k.t, on_tick, 10, 10);
    for (unsigned i = 0; i < N; i++)
        cr_assert_eq(get_psk(1000 + i, 128, 0, &r[i]), 0);
    upfix_run_until(&done, N, 60000);
    uv_close((uv_handle_t *)&k.t, NULL);
    cr_assert_eq(done, N);
    for (unsigned i = 0; i < N; i++)
        check_psk(1000 + i, 128, &r[i]);
    /* 1000 answers of >= 20 ms over at most 64 connections: the loop serviced its timer many
     * times between the first answer and the last (a loop blocked on the transfers would not) */
    cr_assert_geq(k.ticks_busy, 3, "%u of %u ticks while requests were pending", k.ticks_busy,
                  k.ticks);
    cr_assert_eq(sim_calls(&sim, "authenticate"), 1);
    pskgw_upstream_stats(cli, &st);
    cr_assert_eq(st.outcomes[PSKGW_UPSTREAM_OP_PSK][PSKGW_UPSTREAM_OUT_OK], N);
    free(r);
    upfix_finish();
}

/* ---- cancel and close ---- */

typedef struct {
    res_t a;
    res_t b;
    int closed_from_cb;
} chain_t;

static chain_t chain;

static void chain_b_cb(void *arg, int status, const pskgw_upstream_psk_t *r)
{
    psk_cb(arg, status, r);
    /* close from inside a callback, with requests still pending */
    pskgw_upstream_close(cli, upfix_on_closed, NULL);
    cli = NULL;
    chain.closed_from_cb = 1;
}

static void chain_a_cb(void *arg, int status, const pskgw_upstream_psk_t *r)
{
    psk_cb(arg, status, r);
    /* cancel another request from inside this callback; its own cancel is a no-op */
    pskgw_upstream_cancel(chain.a.req);
    in_api = 1;
    pskgw_upstream_cancel(chain.b.req);
    in_api = 0;
}

static void on_cancel_timer(uv_timer_t *t)
{
    in_api = 1;
    pskgw_upstream_cancel(chain.a.req);
    in_api = 0;
    uv_close((uv_handle_t *)t, NULL);
}

Test(upstream_sim, cancel_and_close_with_requests_in_flight)
{
    enum { M = 40 };
    pskgw_upstream_opts_t o;
    res_t r[M];
    uv_timer_t ct;
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1];

    memset(r, 0, sizeof(r));
    memset(&chain, 0, sizeof(chain));
    start_sim(NULL);
    opts_base(&o);
    o.max_in_flight = 10; /* some in flight, some queued */
    start_client(&o);
    warm_up();
    /* answers after 60 s: every callback before that is a cancellation that did not wait for
     * the server (the run below gives up long before) */
    set_faults("{\"latency_ms\":60000}");
    cr_assert_eq(pskgw_rot_identity_hex(SIM_SEED, 90, id), 0);
    cr_assert_eq(pskgw_upstream_get_psk(cli, id, 128, 0, chain_a_cb, &chain.a, &chain.a.req), 0);
    cr_assert_eq(pskgw_upstream_get_psk(cli, id, 128, 0, chain_b_cb, &chain.b, &chain.b.req), 0);
    for (int i = 0; i < M; i++)
        cr_assert_eq(get_psk(100 + (unsigned)i, 128, 0, &r[i]), 0);
    /* cancel is never synchronous */
    in_api = 1;
    pskgw_upstream_cancel(r[3].req);
    pskgw_upstream_cancel(r[30].req); /* a queued one */
    in_api = 0;
    cr_assert_eq(r[3].calls, 0);
    cr_assert_eq(uv_timer_init(&loop, &ct), 0);
    uv_timer_start(&ct, on_cancel_timer, 100, 0);
    upfix_run_until(&chain.closed_from_cb, 1, 30000);
    cr_assert_eq(chain.closed_from_cb, 1, "cancellations waited for the server");
    cr_assert_eq(chain.a.status, PSKGW_ECANCELED);
    cr_assert_eq(chain.b.status, PSKGW_ECANCELED);
    cr_assert_eq(r[3].status, PSKGW_ECANCELED);
    cr_assert_eq(r[30].status, PSKGW_ECANCELED);
    /* upfix_finish(): runs the loop to the end; every request must have been called back once */
    upfix_finish();
    cr_assert_eq(chain.a.calls, 1);
    cr_assert_eq(chain.b.calls, 1);
    for (int i = 0; i < M; i++) {
        cr_assert_eq(r[i].calls, 1, "request %d called back %d times", i, r[i].calls);
        cr_assert_eq(r[i].status, PSKGW_ECANCELED);
    }
}

static bool authenticate_sent(void)
{
    return stats_now().http_attempts[PSKGW_UPSTREAM_OP_AUTH] >= 1;
}

Test(upstream_sim, close_while_authenticating)
{
    pskgw_upstream_opts_t o;
    res_t r[5];

    memset(r, 0, sizeof(r));
    start_sim(NULL);
    set_faults("{\"latency_ms\":60000}"); /* authenticate hangs */
    opts_base(&o);
    start_client(&o);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(get_psk(1 + (unsigned)i, 128, 0, &r[i]), 0);
    run_until_pred(authenticate_sent, 30000, "the authenticate request");
    cr_assert_eq(done, 0);
    in_api = 1;
    pskgw_upstream_close(cli, upfix_on_closed, NULL);
    cr_assert_eq(pskgw_upstream_get_psk(cli, "AABB", 128, 0, psk_cb, &r[0], NULL), PSKGW_ECLOSED);
    in_api = 0;
    cr_assert_eq(done, 0, "close called back synchronously");
    cli = NULL;
    upfix_finish();
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].status, PSKGW_ECANCELED);
    }
}

Test(upstream_sim, connection_refused_is_unavailable)
{
    pskgw_upstream_opts_t o;
    res_t a = { 0 };
    char url[64];
    int port = 0;
    int hold = pskgw_test_reserve_port(0, &port); /* bound, never listening: refused */

    cr_assert_geq(hold, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    memset(&sim, 0, sizeof(sim));
    sim.proc.pid = -1;
    opts_base(&o);
    o.base_url = url;
    start_client(&o);
    cr_assert_eq(get_psk(1, 128, 800, &a), 0);
    upfix_run_until(&a.calls, 1, 30000);
    cr_assert_eq(a.calls, 1);
    cr_assert(a.status == PSKGW_EUNAVAIL || a.status == PSKGW_ETIMEOUT, "%s",
              pskgw_strerror(a.status));
    upfix_finish();
    close(hold);
}

/* ---- TLS: verification is always on ---- */

static void tls_case(int trust, int want)
{
    static char dir[512];
    char ca[600];
    const char *extra[] = { "--tls", "--cert-out", ca, NULL };
    pskgw_upstream_opts_t o;
    res_t a = { 0 };

    cr_assert_eq(pskgw_test_tmpdir(dir, sizeof(dir)), 0);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    start_sim(extra);
    cr_assert(strncmp(sim.url, "https://", 8) == 0, "%s", sim.url);
    opts_base(&o);
    if (trust)
        o.ca_file = ca;
    start_client(&o);
    cr_assert_eq(get_psk(7, 256, 5000, &a), 0);
    upfix_run_until(&a.calls, 1, 10000);
    if (want == 0)
        check_psk(7, 256, &a);
    else
        cr_assert_eq(a.status, want, "%s", pskgw_strerror(a.status));
    upfix_finish();
    pskgw_test_rmtree(dir);
}

Test(upstream_sim, https_with_the_configured_ca)
{
    tls_case(1, 0);
}

Test(upstream_sim, https_with_an_untrusted_certificate_fails)
{
    tls_case(0, PSKGW_ETLS);
}

Test(upstream_sim, e2e_alias_path)
{
    pskgw_upstream_opts_t o;
    res_t e = { 0 };
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    char hex[2 * PSKGW_ROT_KI_MAX_LEN + 1];
    size_t n = 0;
    json_t *stats;

    start_sim(NULL);
    opts_base(&o);
    o.path_e2e_params = "/v1/e2e/uplink/protectionparameters/get";
    start_client(&o);
    cr_assert_eq(pskgw_rot_e2e_ki(SIM_SEED, 8, PSKGW_ROT_E2E_V1, 0, ki, sizeof(ki), &n), 0);
    cr_assert_eq(pskgw_hex_encode(ki, n, hex, sizeof(hex), true), 0);
    in_api = 1;
    cr_assert_eq(pskgw_upstream_get_e2e(cli, hex, 0, e2e_cb, &e, NULL), 0);
    in_api = 0;
    upfix_run_until(&e.calls, 1, 10000);
    cr_assert_eq(e.status, 0, "%s", pskgw_strerror(e.status));
    cr_assert_eq(e.e2e.mac_bits, 128);
    stats = sim_stats(&sim);
    cr_assert_not_null(stats);
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(stats, "by_key_identity"), hex)), 1);
    json_decref(stats);
    upfix_finish();
}

/* ---- secrets never reach a log ---- */

Test(upstream_sim, logs_hold_no_secret_token_or_key)
{
    static const char *const extra[] = { "--devices", "100", NULL };
    pskgw_upstream_opts_t o;
    res_t r[4];
    FILE *logf = tmpfile();
    char *text;
    long len;
    uint8_t key[32];
    char key_hex[65];
    size_t n = 0;

    memset(r, 0, sizeof(r));
    cr_assert_not_null(logf);
    pskgw_log_set_output(logf);
    pskgw_log_set_level(PSKGW_LOG_DEBUG);
    start_sim(extra);
    opts_base(&o);
    start_client(&o);
    warm_up();
    cr_assert_eq(sim_post(&sim, "/_sim/expire-tokens", "{}"), 200);
    set_faults("{\"error_next\":1,\"error_status\":503}");
    cr_assert_eq(get_psk(2, 128, 0, &r[0]), 0);
    upfix_run_until(&r[0].calls, 1, 10000);
    cr_assert_eq(get_psk(150, 128, 0, &r[1]), 0); /* 404 */
    upfix_run_until(&r[1].calls, 1, 10000);
    check_psk(2, 128, &r[0]);
    cr_assert_eq(r[1].status, PSKGW_ENOTFOUND);
    upfix_finish();
    pskgw_log_set_output(NULL);
    pskgw_log_set_level(PSKGW_LOG_INFO);

    fflush(logf);
    len = ftell(logf);
    cr_assert_gt(len, 0, "nothing was logged");
    text = calloc(1, (size_t)len + 1);
    cr_assert_not_null(text);
    rewind(logf);
    cr_assert_eq(fread(text, 1, (size_t)len, logf), (size_t)len);
    fclose(logf);
    cr_assert_null(strstr(text, SIM_SECRET), "the API secret was logged");
    cr_assert_null(strstr(text, "eyJ"), "a JWT was logged:\n%s", text);
    cr_assert_eq(pskgw_rot_psk(SIM_SEED, 2, 128, key, sizeof(key), &n), 0);
    cr_assert_eq(pskgw_hex_encode(key, n, key_hex, sizeof(key_hex), true), 0);
    cr_assert_null(strstr(text, key_hex), "a PSK was logged");
    cr_assert_eq(pskgw_hex_encode(key, n, key_hex, sizeof(key_hex), false), 0);
    cr_assert_null(strstr(text, key_hex), "a PSK was logged");
    cr_assert_not_null(strstr(text, "401"), "the 401 recovery was not logged:\n%s", text);
    free(text);
}

/* ---- socket churn: dropped connections and errors, fd numbers reused under curl ---- */

Test(upstream_sim, churn_with_dropped_connections)
{
    static const char *const extra[] = { "--drop-rate", "0.3", "--error-rate", "0.2", NULL };
    enum { N = 300 };
    pskgw_upstream_opts_t o;
    res_t *r = calloc(N, sizeof(*r));
    int ok = 0;
    json_t *stats;

    cr_assert_not_null(r);
    start_sim(extra);
    opts_base(&o);
    o.max_in_flight = 50;
    o.max_connections = 8;
    o.backoff_base_ms = 10;
    o.backoff_max_ms = 80;
    o.deadline_ms = 8000;
    start_client(&o);
    for (unsigned i = 0; i < N; i++)
        cr_assert_eq(get_psk(2000 + i, 128, 0, &r[i]), 0);
    upfix_run_until(&done, N, 30000);
    cr_assert_eq(done, N);
    for (unsigned i = 0; i < N; i++) {
        cr_assert_eq(r[i].calls, 1);
        if (r[i].status == 0) {
            check_psk(2000 + i, 128, &r[i]);
            ok++;
        } else {
            cr_assert(r[i].status == PSKGW_EUNAVAIL || r[i].status == PSKGW_ETIMEOUT, "%s",
                      pskgw_strerror(r[i].status));
        }
    }
    cr_assert_gt(ok, N * 9 / 10, "only %d of %d succeeded", ok, N);
    stats = sim_stats(&sim);
    cr_assert_not_null(stats);
    cr_assert_gt(json_integer_value(json_object_get(stats, "dropped")), 10);
    json_decref(stats);
    free(r);
    upfix_finish();
}
