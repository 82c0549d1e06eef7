/* pskgw_upstream against a scripted HTTP server (fakesrv.h) for what pskgw-sim cannot do: a
 * slow authenticate only, HTTP-date Retry-After, a malformed authenticate answer. Every test
 * ends with uv_loop_close() == 0 and the callback contract checked. */
#include "common/err.h"
#include "fakesrv.h"
#include "upfix.h"
#include "upstream/upstream.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

typedef upfix_res_t res_t;

static char retry_after_hdr[128];

TestSuite(upstream_fake, .fini = upfix_fake_fini);

static uint32_t zero_random(void *arg)
{
    (void)arg;
    return 0;
}

static void start(fake_handler h)
{
    pskgw_upstream_opts_t o;

    upfix_fake_opts(h, "fake", &o);
    o.random = zero_random;
    upfix_start_client(&o);
}

static uint64_t psk_attempts(void)
{
    return upfix_stats().http_attempts[PSKGW_UPSTREAM_OP_PSK];
}

static int get_psk(uint32_t deadline, res_t *r)
{
    return upfix_get_psk(UPFIX_PSK_ID, deadline, r);
}

/* The first authenticate is quick, every later one takes a minute (longer than any test waits).
 * GetPSK: 503, then 401, then keys. */
static void slow_reauth(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    if (strcmp(path, UPFIX_P_AUTH) == 0) {
        out->status = 200;
        out->body = UPFIX_AUTH_OK;
        out->delay_ms = n == 0 ? 0 : 60000;
    } else if (n == 0) {
        out->status = 503;
        out->body = "{\"error\":\"busy\"}";
    } else if (n == 1) {
        out->status = 401;
        out->body = "{\"error\":\"expired\"}";
    } else {
        out->status = 200;
        out->body = UPFIX_PSK_OK;
    }
}

/* A request whose backoff ends while the token is gone (another request's 401 dropped it and the
 * re-authentication is slow) still ends at its deadline, not when the token arrives. */
Test(upstream_fake, deadline_holds_after_a_backoff_that_finds_no_token)
{
    res_t a = { 0 };
    res_t b = { 0 };
    uint64_t t;

    start(slow_reauth);
    uv_update_time(&loop);
    t = uv_now(&loop);
    cr_assert_eq(get_psk(600, &a), 0);
    cr_assert_eq(get_psk(600, &b), 0);
    /* the token comes back only after a minute: both ending means the deadline ended them */
    upfix_run_until(&done, 2, 30000);
    cr_assert_eq(a.calls, 1, "a waited for the token");
    cr_assert_eq(b.calls, 1, "b waited for the token");
    cr_assert_eq(a.status, PSKGW_ETIMEOUT, "%s", pskgw_strerror(a.status));
    cr_assert_eq(b.status, PSKGW_ETIMEOUT, "%s", pskgw_strerror(b.status));
    /* not before the deadline (loop time: a timer never fires early) */
    cr_assert_geq(a.at_ms - t, 600, "a ended after %llu ms", (unsigned long long)(a.at_ms - t));
    cr_assert_geq(b.at_ms - t, 600, "b ended after %llu ms", (unsigned long long)(b.at_ms - t));
    cr_assert_eq(fakesrv_count(upfix_srv, UPFIX_P_AUTH), 2);
    upfix_fake_finish();
}

static void http_date_429(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    if (strcmp(path, UPFIX_P_AUTH) == 0) {
        out->status = 200;
        out->body = UPFIX_AUTH_OK;
    } else if (n == 0) {
        out->status = 429;
        out->headers = retry_after_hdr;
        out->body = "{\"error\":\"slow down\"}";
    } else {
        out->status = 200;
        out->body = UPFIX_PSK_OK;
    }
}

/* Retry-After as an HTTP-date (RFC 9110 10.2.3) is honoured like delay-seconds. */
Test(upstream_fake, retry_after_http_date_is_honoured)
{
    res_t a = { 0 };
    time_t when = time(NULL) + 4;
    struct tm tm;
    bool saw_window = false;

    gmtime_r(&when, &tm);
    cr_assert_gt(strftime(retry_after_hdr, sizeof(retry_after_hdr),
                          "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm),
                 0);
    start(http_date_429);
    cr_assert_eq(get_psk(30000, &a), 0);
    /* The date (3 to 4 s ahead) opens a window; no retry is sent while it is open. The window
     * and the send decision use the same loop clock, so this holds on any machine. */
    uv_update_time(&loop);
    for (uint64_t end = uv_now(&loop) + 30000; a.calls == 0 && uv_now(&loop) < end;) {
        uv_run(&loop, UV_RUN_ONCE);
        if (pskgw_upstream_retry_after_ms_left(cli) > 0) {
            saw_window = true;
            cr_assert_eq(psk_attempts(), 1, "a retry was sent inside the Retry-After window");
        }
    }
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.status, 0, "%s", pskgw_strerror(a.status));
    cr_assert(saw_window, "the HTTP-date opened no window");
    cr_assert_eq(a.window_left, 0, "answered after the window");
    cr_assert_eq(fakesrv_count(upfix_srv, UPFIX_P_PSK), 2);
    upfix_fake_finish();
}

static void bad_auth(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    (void)n;
    out->status = 200;
    out->body = strcmp(path, UPFIX_P_AUTH) == 0 ? "{\"Token\":\"x\"}" : UPFIX_PSK_OK;
}

/* A malformed authenticate answer backs off like any failed authentication: requests made one
 * after another do not each start a new authenticate at once. Each request here is made as soon
 * as the previous one failed: without a backoff the client sends its authenticate from inside
 * the call; with one it only arms a timer, and the request fails with the next attempt. */
static uint64_t auth_attempts(void)
{
    pskgw_upstream_stats_t st;

    pskgw_upstream_stats(cli, &st);
    return st.http_attempts[PSKGW_UPSTREAM_OP_AUTH];
}

Test(upstream_fake, malformed_authenticate_answer_backs_off)
{
    enum { N = 6 };
    res_t r[N];

    memset(r, 0, sizeof(r));
    start(bad_auth);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(get_psk(30000, &r[i]), 0);
        if (i > 0)
            cr_assert_eq(auth_attempts(), (uint64_t)i,
                         "request %d started an authenticate at once, without a backoff", i + 1);
        upfix_run_until(&r[i].calls, 1, 30000);
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].status, PSKGW_EPARSE, "%s", pskgw_strerror(r[i].status));
        cr_assert_eq(auth_attempts(), (uint64_t)i + 1, "one authenticate per failure");
        cr_assert_eq(fakesrv_count(upfix_srv, UPFIX_P_AUTH), (unsigned)i + 1);
    }
    cr_assert_eq(fakesrv_count(upfix_srv, UPFIX_P_PSK), 0);
    upfix_fake_finish();
}

static void hour_429(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    if (strcmp(path, UPFIX_P_AUTH) == 0) {
        out->status = 200;
        out->body = UPFIX_AUTH_OK;
    } else if (n == 0) {
        out->status = 429;
        out->headers = "Retry-After: 3600\r\n";
        out->body = "{\"error\":\"slow down\"}";
    } else {
        out->status = 200;
        out->body = UPFIX_PSK_OK;
    }
}

/* An absurd Retry-After (an hour) ends the request that got it, but holds the other requests
 * only for ratelimit_window_max_ms: one broken answer cannot stop the client for an hour. */
Test(upstream_fake, retry_after_window_is_capped_for_other_requests)
{
    pskgw_upstream_opts_t o;
    res_t a = { 0 };
    res_t b = { 0 };

    cr_assert_eq(fakesrv_start(&upfix_srv, hour_429, NULL, upfix_url, sizeof(upfix_url)), 0);
    pskgw_upstream_opts_init(&o);
    o.base_url = upfix_url;
    o.key_id = "k";
    o.secret = "s";
    o.random = zero_random;
    o.ratelimit_window_max_ms = 400;
    upfix_start_client(&o);
    cr_assert_eq(get_psk(3000, &a), 0);
    upfix_run_until(&done, 1, 30000);
    cr_assert_eq(a.status, PSKGW_ERATELIMIT, "%s", pskgw_strerror(a.status));
    cr_assert_leq(pskgw_upstream_retry_after_ms_left(cli), 400);
    /* an hour-long window would refuse b at once (its deadline cannot see the end): b is sent
     * after the capped window and answered */
    cr_assert_eq(get_psk(30000, &b), 0);
    upfix_run_until(&done, 2, 30000);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(b.status, 0, "%s", pskgw_strerror(b.status));
    cr_assert_eq(b.window_left, 0);
    cr_assert_eq(fakesrv_count(upfix_srv, UPFIX_P_PSK), 2);
    upfix_fake_finish();
}
