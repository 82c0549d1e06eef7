/* The client's token life (upstream/auth.c) and its one backoff decision, against the scripted
 * HTTP server (tests/support/fakesrv.h) on loopback, in the upstream tests' fixture (upfix.h).
 * The jitter source is injected and counts its draws: a failed authentication draws one number
 * for its backoff, one answered with Retry-After draws none (it waits what it was told). Every
 * test ends with uv_loop_close() == 0 and the callback contract checked. */
#include "common/err.h"
#include "fakesrv.h"
#include "upfix.h"
#include "upstream/upstream.h"

#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

typedef upfix_res_t res_t;

static unsigned draws;

TestSuite(upstream_auth, .fini = upfix_fake_fini);

static uint32_t counting_random(void *arg)
{
    (void)arg;
    draws++;
    return 0;
}

static void start(fake_handler h)
{
    pskgw_upstream_opts_t o;

    upfix_fake_opts(h, "auth", &o);
    /* long enough that a request made right after a failure is made inside the backoff even on
     * a loaded machine (the injected random gives the lower half: 500 ms, then 1 s) */
    o.backoff_base_ms = 1000;
    o.backoff_max_ms = 2000;
    o.random = counting_random;
    upfix_start_client(&o);
    draws = 0;
}

static int get_psk(uint32_t deadline, res_t *r)
{
    return upfix_get_psk(UPFIX_PSK_ID, deadline, r);
}

/* authenticate: 503, 503, then a token; GetPSK: keys. */
static void busy_twice(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    if (strcmp(path, UPFIX_P_AUTH) == 0 && n < 2) {
        out->status = 503;
        out->body = "{\"error\":\"busy\"}";
        return;
    }
    out->status = 200;
    out->body = strcmp(path, UPFIX_P_AUTH) == 0 ? UPFIX_AUTH_OK : UPFIX_PSK_OK;
}

/* Requests that find no token share the one authentication, which backs off twice (one draw of
 * the jitter source each) and then serves every waiter once; success ends the failure count. */
Test(upstream_auth, transient_failures_back_off_then_every_waiter_is_served)
{
    enum { N = 5 };
    res_t r[N];
    pskgw_upstream_stats_t st;

    memset(r, 0, sizeof(r));
    start(busy_twice);
    for (int i = 0; i < N; i++)
        cr_assert_eq(get_psk(30000, &r[i]), 0);
    upfix_run_until(&done, N, 30000);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].status, 0, "request %d: %s", i, pskgw_strerror(r[i].status));
    }
    st = upfix_stats();
    cr_assert_eq(st.http_attempts[PSKGW_UPSTREAM_OP_AUTH], 3);
    cr_assert_eq(st.outcomes[PSKGW_UPSTREAM_OP_AUTH][PSKGW_UPSTREAM_OUT_UNAVAILABLE], 2);
    cr_assert_eq(st.outcomes[PSKGW_UPSTREAM_OP_AUTH][PSKGW_UPSTREAM_OUT_OK], 1);
    cr_assert_eq(st.token_renewals, 1);
    cr_assert_eq(st.token_valid, 1);
    cr_assert_eq(st.http_attempts[PSKGW_UPSTREAM_OP_PSK], N, "each waiter sent once");
    cr_assert_eq(draws, 2, "one jitter draw per failed authentication");
    cr_assert_eq(fakesrv_count(upfix_srv, UPFIX_P_AUTH), 3);
    upfix_fake_finish();
}

/* authenticate: 429 with Retry-After: 1, then a token. */
static void limited_once(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    if (strcmp(path, UPFIX_P_AUTH) == 0 && n == 0) {
        out->status = 429;
        out->headers = "Retry-After: 1\r\n";
        out->body = "{\"error\":\"slow down\"}";
        return;
    }
    out->status = 200;
    out->body = strcmp(path, UPFIX_P_AUTH) == 0 ? UPFIX_AUTH_OK : UPFIX_PSK_OK;
}

/* A rate-limited authenticate waits the Retry-After (no jitter drawn), opens the client's window
 * for the requests, and the waiter is served after it. */
Test(upstream_auth, retry_after_on_authenticate_is_waited_without_a_draw)
{
    res_t a = { 0 };
    int saw_window = 0;

    start(limited_once);
    cr_assert_eq(get_psk(30000, &a), 0);
    uv_update_time(&loop);
    for (uint64_t end = uv_now(&loop) + 30000; a.calls == 0 && uv_now(&loop) < end;) {
        uv_run(&loop, UV_RUN_ONCE);
        if (pskgw_upstream_retry_after_ms_left(cli) > 0) {
            saw_window = 1;
            cr_assert_eq(fakesrv_count(upfix_srv, UPFIX_P_AUTH), 1,
                         "authenticate sent inside the window");
        }
    }
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.status, 0, "%s", pskgw_strerror(a.status));
    cr_assert(saw_window, "the authenticate's Retry-After opened no window");
    cr_assert_eq(draws, 0, "a Retry-After wait draws no jitter");
    cr_assert_eq(fakesrv_count(upfix_srv, UPFIX_P_AUTH), 2);
    cr_assert_eq(upfix_stats().outcomes[PSKGW_UPSTREAM_OP_AUTH][PSKGW_UPSTREAM_OUT_RATELIMITED], 1);
    upfix_fake_finish();
}

/* authenticate: refused (401) every time. */
static void refused(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    (void)n;
    out->status = strcmp(path, UPFIX_P_AUTH) == 0 ? 401 : 200;
    out->body = strcmp(path, UPFIX_P_AUTH) == 0 ? "{\"error\":\"bad key\"}" : UPFIX_PSK_OK;
}

/* Refused credentials end the waiters with PSKGW_EAUTH and back off: a request made at once after
 * the refusal does not send a new authenticate from inside the call, it waits for the backoff
 * (one draw per refusal), and no GetPSK is ever sent. */
Test(upstream_auth, refused_credentials_end_the_waiters_and_back_off)
{
    enum { N = 4 };
    res_t r[N];

    memset(r, 0, sizeof(r));
    start(refused);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(get_psk(30000, &r[i]), 0);
        /* the first request authenticates from inside its call; later ones find the backoff */
        cr_assert_eq(upfix_stats().http_attempts[PSKGW_UPSTREAM_OP_AUTH],
                     (uint64_t)(i == 0 ? 1 : i),
                     "request %d started an authenticate at once, without a backoff", i + 1);
        upfix_run_until(&r[i].calls, 1, 30000);
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].status, PSKGW_EAUTH, "%s", pskgw_strerror(r[i].status));
        cr_assert_eq(draws, (unsigned)i + 1, "one jitter draw per refusal");
    }
    cr_assert_eq(upfix_stats().outcomes[PSKGW_UPSTREAM_OP_AUTH][PSKGW_UPSTREAM_OUT_AUTH], N);
    cr_assert_eq(fakesrv_count(upfix_srv, UPFIX_P_AUTH), N);
    cr_assert_eq(fakesrv_count(upfix_srv, UPFIX_P_PSK), 0);
    upfix_fake_finish();
}
