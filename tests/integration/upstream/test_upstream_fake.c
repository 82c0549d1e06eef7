/* pskgw_upstream against a scripted HTTP server (fakesrv.h) for what pskgw-sim cannot do: a
 * slow authenticate only, HTTP-date Retry-After, a malformed authenticate answer. Every test
 * ends with uv_loop_close() == 0 and the callback contract checked. */
#include "common/err.h"
#include "fakesrv.h"
#include "upstream/upstream.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define PSK_ID  "11010008002F33244B115B0AEEB9"
#define PSK_OK  "{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":\"0002000089282245\"}"
#define AUTH_OK "{\"AuthToken\":\"aaaa.bbbb.cccc\"}"
#define P_AUTH  "/v1/authenticate"
#define P_PSK   "/v1/GetPSK"

typedef struct {
    int calls;
    int status;
    uint64_t at_ms;
} res_t;

static uv_loop_t loop;
static uv_timer_t pump;
static pskgw_upstream_t *cli;
static fakesrv_t *srv;
static char url[64];
static int in_api;
static int done;
static int violated;
static int closed;
static char retry_after_hdr[128];

static void suite_fini(void)
{
    fakesrv_stop(srv);
    srv = NULL;
}

TestSuite(upstream_fake, .fini = suite_fini);

static void on_pump(uv_timer_t *t)
{
    (void)t;
}

static void on_closed(void *arg)
{
    (void)arg;
    closed++;
}

static uint32_t zero_random(void *arg)
{
    (void)arg;
    return 0;
}

static void psk_cb(void *arg, int status, const pskgw_upstream_psk_t *r)
{
    res_t *x = arg;

    if (in_api || x->calls || (status == 0) != (r != NULL))
        violated++;
    x->calls++;
    x->status = status;
    x->at_ms = uv_now(&loop);
    done++;
}

static void start(fake_handler h)
{
    pskgw_upstream_opts_t o;

    cr_assert_eq(fakesrv_start(&srv, h, NULL, url, sizeof(url)), 0);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_timer_init(&loop, &pump), 0);
    uv_timer_start(&pump, on_pump, 10, 10);
    pskgw_upstream_opts_init(&o);
    o.name = "fake";
    o.base_url = url;
    o.key_id = "k";
    o.secret = "s";
    o.backoff_base_ms = 50;
    o.backoff_max_ms = 400;
    o.random = zero_random;
    cr_assert_eq(pskgw_upstream_new(&loop, &o, &cli), 0);
    done = violated = closed = in_api = 0;
}

static void run_until(const int *counter, int target, uint64_t timeout_ms)
{
    uint64_t end;

    uv_update_time(&loop);
    end = uv_now(&loop) + timeout_ms;
    while (*counter < target && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
}

static int get_psk(uint32_t deadline, res_t *r)
{
    int rc;

    in_api = 1;
    rc = pskgw_upstream_get_psk(cli, PSK_ID, 128, deadline, psk_cb, r, NULL);
    in_api = 0;
    return rc;
}

static void finish(void)
{
    pskgw_upstream_close(cli, on_closed, NULL);
    cli = NULL;
    uv_close((uv_handle_t *)&pump, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(closed, 1);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles left open");
    cr_assert_eq(violated, 0, "callback contract violated %d times", violated);
    fakesrv_stop(srv);
    srv = NULL;
}

/* The first authenticate is quick, every later one takes 1.5 s. GetPSK: 503, then 401, then
 * keys. */
static void slow_reauth(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    if (strcmp(path, P_AUTH) == 0) {
        out->status = 200;
        out->body = AUTH_OK;
        out->delay_ms = n == 0 ? 0 : 1500;
    } else if (n == 0) {
        out->status = 503;
        out->body = "{\"error\":\"busy\"}";
    } else if (n == 1) {
        out->status = 401;
        out->body = "{\"error\":\"expired\"}";
    } else {
        out->status = 200;
        out->body = PSK_OK;
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
    run_until(&done, 2, 5000);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(a.status, PSKGW_ETIMEOUT, "%s", pskgw_strerror(a.status));
    cr_assert_eq(b.status, PSKGW_ETIMEOUT, "%s", pskgw_strerror(b.status));
    cr_assert_lt(a.at_ms - t, 850, "a ended after %llu ms", (unsigned long long)(a.at_ms - t));
    cr_assert_lt(b.at_ms - t, 850, "b ended after %llu ms", (unsigned long long)(b.at_ms - t));
    cr_assert_eq(fakesrv_count(srv, P_AUTH), 2);
    finish();
}

static void http_date_429(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    if (strcmp(path, P_AUTH) == 0) {
        out->status = 200;
        out->body = AUTH_OK;
    } else if (n == 0) {
        out->status = 429;
        out->headers = retry_after_hdr;
        out->body = "{\"error\":\"slow down\"}";
    } else {
        out->status = 200;
        out->body = PSK_OK;
    }
}

/* Retry-After as an HTTP-date (RFC 9110 10.2.3) is honoured like delay-seconds. */
Test(upstream_fake, retry_after_http_date_is_honoured)
{
    res_t a = { 0 };
    time_t when = time(NULL) + 2;
    struct tm tm;
    uint64_t t;

    gmtime_r(&when, &tm);
    cr_assert_gt(strftime(retry_after_hdr, sizeof(retry_after_hdr),
                          "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm),
                 0);
    start(http_date_429);
    uv_update_time(&loop);
    t = uv_now(&loop);
    cr_assert_eq(get_psk(6000, &a), 0);
    run_until(&done, 1, 8000);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.status, 0, "%s", pskgw_strerror(a.status));
    /* the date is 2 s ahead in whole seconds: at least 1 s from now */
    cr_assert_geq(a.at_ms - t, 900, "retried after %llu ms", (unsigned long long)(a.at_ms - t));
    cr_assert_eq(fakesrv_count(srv, P_PSK), 2);
    cr_assert_geq(pskgw_upstream_retry_after_ms_left(cli), 0);
    finish();
}

static void bad_auth(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    (void)n;
    out->status = 200;
    out->body = strcmp(path, P_AUTH) == 0 ? "{\"Token\":\"x\"}" : PSK_OK;
}

/* A malformed authenticate answer backs off like any failed authentication: requests made one
 * after another do not each hammer the service with a new authenticate. */
Test(upstream_fake, malformed_authenticate_answer_backs_off)
{
    uint64_t end;
    res_t r[512];
    int n = 0;

    memset(r, 0, sizeof(r));
    start(bad_auth);
    uv_update_time(&loop);
    end = uv_now(&loop) + 500;
    cr_assert_eq(get_psk(3000, &r[n++]), 0);
    while (uv_now(&loop) < end && n < 512) {
        uv_run(&loop, UV_RUN_ONCE);
        if (r[n - 1].calls) {
            cr_assert_eq(r[n - 1].status, PSKGW_EPARSE, "%s", pskgw_strerror(r[n - 1].status));
            cr_assert_eq(get_psk(3000, &r[n++]), 0);
        }
    }
    /* backoff 25, 50, 100, 200 ms ...: a handful in 500 ms, not one per request */
    cr_assert_leq(fakesrv_count(srv, P_AUTH), 8, "%u authenticate calls in 500 ms",
                  fakesrv_count(srv, P_AUTH));
    cr_assert_eq(fakesrv_count(srv, P_PSK), 0);
    finish();
    for (int i = 0; i < n; i++)
        cr_assert_eq(r[i].calls, 1);
}

static void hour_429(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    if (strcmp(path, P_AUTH) == 0) {
        out->status = 200;
        out->body = AUTH_OK;
    } else if (n == 0) {
        out->status = 429;
        out->headers = "Retry-After: 3600\r\n";
        out->body = "{\"error\":\"slow down\"}";
    } else {
        out->status = 200;
        out->body = PSK_OK;
    }
}

/* An absurd Retry-After (an hour) ends the request that got it, but holds the other requests
 * only for ratelimit_window_max_ms: one broken answer cannot stop the client for an hour. */
Test(upstream_fake, retry_after_window_is_capped_for_other_requests)
{
    pskgw_upstream_opts_t o;
    res_t a = { 0 };
    res_t b = { 0 };
    uint64_t t;

    cr_assert_eq(fakesrv_start(&srv, hour_429, NULL, url, sizeof(url)), 0);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_timer_init(&loop, &pump), 0);
    uv_timer_start(&pump, on_pump, 10, 10);
    pskgw_upstream_opts_init(&o);
    o.base_url = url;
    o.key_id = "k";
    o.secret = "s";
    o.random = zero_random;
    o.ratelimit_window_max_ms = 400;
    cr_assert_eq(pskgw_upstream_new(&loop, &o, &cli), 0);
    done = violated = closed = in_api = 0;
    cr_assert_eq(get_psk(3000, &a), 0);
    run_until(&done, 1, 3000);
    cr_assert_eq(a.status, PSKGW_ERATELIMIT, "%s", pskgw_strerror(a.status));
    cr_assert_leq(pskgw_upstream_retry_after_ms_left(cli), 400);
    uv_update_time(&loop);
    t = uv_now(&loop);
    cr_assert_eq(get_psk(3000, &b), 0);
    run_until(&done, 2, 3000);
    cr_assert_eq(b.status, 0, "%s", pskgw_strerror(b.status));
    cr_assert_lt(b.at_ms - t, 1000);
    cr_assert_eq(fakesrv_count(srv, P_PSK), 2);
    finish();
}
