/* The curl-multi driver (curlmulti/) against a real HTTP server on loopback (echosrv, on
 * libmicrohttpd): concurrent requests with their own headers and bodies, methods, a captured
 * header, the response bound, cancel in flight, close with requests in flight and from inside a
 * callback, a server that closes connections (new sockets on reused fd numbers), timeouts.
 * Every test ends with the loop closed cleanly (uv_loop_close() == 0). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/err.h"
#include "curlmulti/curlmulti.h"
#include "echosrv.h"

#define GUARD_MS 30000 /* only against hanging: every wait is for an event */

static uv_loop_t loop;
static uv_timer_t tick;  /* wakes the loop to look at the server's counters */
static uv_timer_t guard; /* the deadline against hanging */
static int guard_fired;
static echosrv_t *srv;
static int port;
static pskgw_curlmulti_t *m;
static int closed_calls;

typedef struct {
    int calls;
    int err;
    long status;
    char body[600];
    size_t body_len;
    char header[64];
    int has_header;
    pskgw_curlmulti_req_t *req;
} done_t;

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
    guard_fired = 1;
}

static void on_closed(void *arg)
{
    (void)arg;
    closed_calls++;
}

static void setup(void)
{
    pskgw_curlmulti_opts_t mo = { .max_connections = 8 };

    cr_assert_eq(echosrv_start(&srv, &port), 0);
    cr_assert_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_init(&loop, &guard);
    closed_calls = 0;
    cr_assert_eq(pskgw_curlmulti_new(&loop, &mo, &m), 0);
}

/* Runs the loop until cond(arg) holds; false when the guard fired first. */
static bool run_until(bool (*cond)(void *), void *arg)
{
    guard_fired = 0;
    uv_timer_start(&tick, on_tick, 5, 5);
    uv_timer_start(&guard, on_guard, GUARD_MS, 0);
    while (!cond(arg) && !guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&tick);
    uv_timer_stop(&guard);
    return cond(arg);
}

static bool driver_closed(void *arg)
{
    (void)arg;
    return closed_calls > 0;
}

static void teardown(void)
{
    if (m && !closed_calls)
        pskgw_curlmulti_close(m, on_closed, NULL);
    cr_assert(run_until(driver_closed, NULL));
    cr_assert_eq(closed_calls, 1);
    m = NULL;
    uv_close((uv_handle_t *)&tick, NULL);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
    echosrv_stop(srv);
}

TestSuite(curlmulti, .init = setup, .fini = teardown, .timeout = 120);

static void on_done(void *arg, const pskgw_curlmulti_result_t *res)
{
    done_t *d = arg;

    d->calls++;
    d->err = res->err;
    d->status = res->status;
    d->body_len = res->body_len < sizeof(d->body) - 1 ? res->body_len : sizeof(d->body) - 1;
    memcpy(d->body, res->body, d->body_len);
    d->body[d->body_len] = '\0';
    d->has_header = res->header != NULL;
    if (res->header)
        snprintf(d->header, sizeof(d->header), "%s", res->header);
}

typedef struct {
    done_t *d;
    int n;
} all_t;

static bool all_called(void *arg)
{
    all_t *a = arg;

    for (int i = 0; i < a->n; i++)
        if (a->d[i].calls == 0)
            return false;
    return true;
}

static bool server_hanging(void *arg)
{
    return echosrv_hanging(srv) >= *(int *)arg;
}

static void url_of(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", port, path);
}

static int submit_cb(const char *path, const char *method, const char *body, int seq,
                     uint32_t timeout_ms, pskgw_curlmulti_cb cb, done_t *d)
{
    char url[128];
    char seqh[32];
    const char *hdrs[1] = { seqh };
    pskgw_curlmulti_req_opts_t ro = { 0 };

    url_of(url, sizeof(url), path);
    snprintf(seqh, sizeof(seqh), "X-Seq: %d", seq);
    ro.method = method;
    ro.url = url;
    ro.headers = hdrs;
    ro.n_headers = 1;
    ro.body = body;
    ro.body_len = body ? strlen(body) : 0;
    ro.timeout_ms = timeout_ms;
    ro.max_body = 512;
    ro.capture_header = "retry-after";
    return pskgw_curlmulti_submit(m, &ro, cb, d, &d->req);
}

static int submit(const char *path, const char *method, const char *body, int seq,
                  uint32_t timeout_ms, done_t *d)
{
    return submit_cb(path, method, body, seq, timeout_ms, on_done, d);
}

Test(curlmulti, concurrent_requests_each_with_its_headers_and_body)
{
    enum { N = 24 };
    static done_t d[N];
    all_t a = { d, N };
    char body[64];

    memset(d, 0, sizeof(d));
    for (int i = 0; i < N; i++) {
        snprintf(body, sizeof(body), "{\"n\":%d}", i);
        cr_assert_eq(submit("/echo", NULL, body, i, 10000, &d[i]), 0);
        cr_assert_eq(d[i].calls, 0, "never called back inside submit");
    }
    cr_assert_eq(pskgw_curlmulti_active(m), N);
    cr_assert(run_until(all_called, &a));
    for (int i = 0; i < N; i++) {
        char want[96];
        snprintf(want, sizeof(want), "POST %d {\"n\":%d}", i, i);
        cr_assert_eq(d[i].calls, 1);
        cr_assert_eq(d[i].err, 0, "%d: %s", i, pskgw_strerror(d[i].err));
        cr_assert_eq(d[i].status, 200);
        cr_assert_str_eq(d[i].body, want);
        cr_assert(d[i].has_header);
        cr_assert_str_eq(d[i].header, "7");
    }
    cr_assert_eq(pskgw_curlmulti_active(m), 0);
}

Test(curlmulti, methods_body_bound_and_discarded_body)
{
    static done_t d[4];
    all_t a = { d, 4 };
    char url[128];
    pskgw_curlmulti_req_opts_t ro = { 0 };

    memset(d, 0, sizeof(d));
    cr_assert_eq(submit("/echo", NULL, NULL, 1, 10000, &d[0]), 0);
    cr_assert_eq(submit("/echo", "PUT", "put-body", 2, 10000, &d[1]), 0);
    cr_assert_eq(submit("/big", NULL, NULL, 3, 10000, &d[2]), 0); /* 4096 > max_body 512 */
    url_of(url, sizeof(url), "/big");
    ro.url = url;
    ro.timeout_ms = 10000; /* max_body 0: read and discarded */
    cr_assert_eq(pskgw_curlmulti_submit(m, &ro, on_done, &d[3], NULL), 0);
    cr_assert(run_until(all_called, &a));
    cr_assert_eq(d[0].err, 0);
    cr_assert_str_eq(d[0].body, "GET 1 ");
    cr_assert_eq(d[1].err, 0);
    cr_assert_str_eq(d[1].body, "PUT 2 put-body");
    cr_assert_eq(d[2].err, PSKGW_ETOOBIG);
    cr_assert_eq(d[3].err, 0);
    cr_assert_eq(d[3].status, 200);
    cr_assert_eq(d[3].body_len, 0);
    cr_assert_not(d[3].has_header, "no header asked for");
}

Test(curlmulti, submit_refuses_what_it_cannot_send)
{
    static done_t d;
    const char *bad[1] = { "X-Evil: a\r\nX-Injected: b" };
    pskgw_curlmulti_req_opts_t ro = { 0 };
    char url[128];

    url_of(url, sizeof(url), "/echo");
    ro.url = url;
    cr_assert_eq(pskgw_curlmulti_submit(m, &ro, on_done, &d, NULL), PSKGW_EINVAL, "no timeout");
    ro.timeout_ms = 1000;
    ro.headers = bad;
    ro.n_headers = 1;
    cr_assert_eq(pskgw_curlmulti_submit(m, &ro, on_done, &d, NULL), PSKGW_EINVAL);
    cr_assert_eq(d.calls, 0);
    cr_assert_eq(pskgw_curlmulti_active(m), 0);
}

Test(curlmulti, cancel_in_flight_calls_back_once_inside_cancel)
{
    enum { N = 4 };
    static done_t d[N];
    all_t a = { d, N };
    int want = N;

    memset(d, 0, sizeof(d));
    for (int i = 0; i < N; i++)
        cr_assert_eq(submit("/hang", NULL, "x", i, 20000, &d[i]), 0);
    cr_assert(run_until(server_hanging, &want), "the server holds all %d", N);
    pskgw_curlmulti_cancel(d[1].req);
    pskgw_curlmulti_cancel(d[3].req);
    cr_assert_eq(d[1].calls, 1);
    cr_assert_eq(d[1].err, PSKGW_ECANCELED);
    cr_assert_eq(d[3].calls, 1);
    cr_assert_eq(d[3].err, PSKGW_ECANCELED);
    cr_assert_eq(pskgw_curlmulti_active(m), 2);
    echosrv_release(srv);
    cr_assert(run_until(all_called, &a));
    for (int i = 0; i < N; i++)
        cr_assert_eq(d[i].calls, 1, "%d", i);
    cr_assert_eq(d[0].err, 0);
    cr_assert_eq(d[0].status, 503);
    cr_assert_eq(d[2].status, 503);
    cr_assert_eq(d[1].err, PSKGW_ECANCELED, "a cancelled one is never called again");
}

Test(curlmulti, close_with_requests_in_flight_cancels_each_once)
{
    enum { N = 5 };
    static done_t d[N];
    int want = N;

    memset(d, 0, sizeof(d));
    for (int i = 0; i < N; i++)
        cr_assert_eq(submit("/hang", NULL, "x", i, 20000, &d[i]), 0);
    cr_assert(run_until(server_hanging, &want));
    pskgw_curlmulti_close(m, on_closed, NULL);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(d[i].calls, 1, "%d", i);
        cr_assert_eq(d[i].err, PSKGW_ECANCELED);
    }
    cr_assert_eq(closed_calls, 0, "the close callback comes later");
    cr_assert_eq(submit("/echo", NULL, NULL, 9, 1000, &d[0]), PSKGW_ECLOSED);
    cr_assert(run_until(driver_closed, NULL));
    for (int i = 0; i < N; i++)
        cr_assert_eq(d[i].calls, 1, "%d", i);
}

/* A callback that closes the driver: the first answered request closes it, and the requests
 * still held by the server are called back with ECANCELED; a submit from inside those fails. */
static done_t close_d[4];
static int close_resubmit_rc;

static void on_done_close(void *arg, const pskgw_curlmulti_result_t *res)
{
    on_done(arg, res);
    if (arg == &close_d[0])
        pskgw_curlmulti_close(m, on_closed, NULL);
    else
        close_resubmit_rc = submit("/echo", NULL, NULL, 9, 1000, &close_d[3]);
}

Test(curlmulti, close_from_inside_a_completion_callback)
{
    char url[128];
    pskgw_curlmulti_req_opts_t ro = { 0 };
    int want = 2;

    memset(close_d, 0, sizeof(close_d));
    ro.timeout_ms = 20000;
    url_of(url, sizeof(url), "/hang");
    ro.url = url;
    cr_assert_eq(pskgw_curlmulti_submit(m, &ro, on_done_close, &close_d[1], NULL), 0);
    cr_assert_eq(pskgw_curlmulti_submit(m, &ro, on_done_close, &close_d[2], NULL), 0);
    cr_assert(run_until(server_hanging, &want));
    url_of(url, sizeof(url), "/echo");
    cr_assert_eq(pskgw_curlmulti_submit(m, &ro, on_done_close, &close_d[0], NULL), 0);
    cr_assert(run_until(driver_closed, NULL));
    cr_assert_eq(close_d[0].calls, 1);
    cr_assert_eq(close_d[0].err, 0);
    cr_assert_eq(close_d[1].calls, 1);
    cr_assert_eq(close_d[1].err, PSKGW_ECANCELED);
    cr_assert_eq(close_d[2].calls, 1);
    cr_assert_eq(close_d[2].err, PSKGW_ECANCELED);
    cr_assert_eq(close_resubmit_rc, PSKGW_ECLOSED);
    cr_assert_eq(close_d[3].calls, 0);
}

/* One request after the other, each submitted from the previous one's callback: the server
 * closes every other connection after answering, and drops every fifth without an answer, so
 * curl keeps closing sockets and opening new ones that get the same fd numbers while the old
 * uv_poll handles are still closing. Each request must get its own answer. */
enum { SEQ_N = 60 };
static done_t seq_d[SEQ_N];
static int seq_next;

static void on_seq(void *arg, const pskgw_curlmulti_result_t *res);

static void seq_submit(void)
{
    int i = seq_next++;
    const char *path = i % 5 == 4 ? "/drop" : i % 2 ? "/echo?close=1" : "/echo";
    char body[32];

    snprintf(body, sizeof(body), "b%d", i);
    cr_assert_eq(submit_cb(path, NULL, body, i, 10000, on_seq, &seq_d[i]), 0);
}

static void on_seq(void *arg, const pskgw_curlmulti_result_t *res)
{
    on_done(arg, res);
    if (seq_next < SEQ_N)
        seq_submit();
}

Test(curlmulti, server_closing_connections_new_sockets_on_reused_fds)
{
    all_t a = { seq_d, SEQ_N };

    memset(seq_d, 0, sizeof(seq_d));
    seq_next = 0;
    seq_submit();
    cr_assert(run_until(all_called, &a));
    for (int i = 0; i < SEQ_N; i++) {
        char want[64];
        cr_assert_eq(seq_d[i].calls, 1, "%d", i);
        if (i % 5 == 4) {
            cr_assert_eq(seq_d[i].err, PSKGW_EUNAVAIL, "%d dropped: %s", i,
                         pskgw_strerror(seq_d[i].err));
            continue;
        }
        snprintf(want, sizeof(want), "POST %d b%d", i, i);
        cr_assert_eq(seq_d[i].err, 0, "%d: %s", i, pskgw_strerror(seq_d[i].err));
        cr_assert_str_eq(seq_d[i].body, want);
    }
    cr_assert_geq(echosrv_connections(srv), SEQ_N / 2, "the server did close connections");
}

Test(curlmulti, timeout_then_the_next_request_succeeds)
{
    static done_t d[2];
    all_t a = { d, 1 };
    all_t b = { d + 1, 1 };

    memset(d, 0, sizeof(d));
    cr_assert_eq(submit("/hang", NULL, "x", 0, 300, &d[0]), 0);
    cr_assert(run_until(all_called, &a));
    cr_assert_eq(d[0].calls, 1);
    cr_assert_eq(d[0].err, PSKGW_ETIMEOUT, "%s", pskgw_strerror(d[0].err));
    echosrv_release(srv);
    cr_assert_eq(submit("/echo", NULL, "after", 1, 10000, &d[1]), 0);
    cr_assert(run_until(all_called, &b));
    cr_assert_eq(d[1].err, 0);
    cr_assert_str_eq(d[1].body, "POST 1 after");
}

Test(curlmulti, refused_connection_and_bad_scheme_are_called_back_later)
{
    static done_t d[2];
    all_t a = { d, 2 };
    pskgw_curlmulti_req_opts_t ro = { 0 };
    char url[128];
    int lport;
    static uv_tcp_t reserve; /* closed by the teardown's loop run: outlives this frame */
    struct sockaddr_in sa;
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    /* A port bound and not listening: connections are refused, nobody else can take it. */
    uv_tcp_init(&loop, &reserve);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    cr_assert_eq(uv_tcp_bind(&reserve, (const struct sockaddr *)&sa, 0), 0);
    uv_tcp_getsockname(&reserve, (struct sockaddr *)&ss, &len);
    lport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    memset(d, 0, sizeof(d));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", lport);
    ro.url = url;
    ro.timeout_ms = 10000;
    cr_assert_eq(pskgw_curlmulti_submit(m, &ro, on_done, &d[0], NULL), 0);
    ro.url = "ftp://127.0.0.1/x";
    cr_assert_eq(pskgw_curlmulti_submit(m, &ro, on_done, &d[1], NULL), 0);
    cr_assert_eq(d[0].calls + d[1].calls, 0);
    cr_assert(run_until(all_called, &a));
    cr_assert_eq(d[0].err, PSKGW_EUNAVAIL);
    cr_assert_eq(d[1].err, PSKGW_EINVAL);
    uv_close((uv_handle_t *)&reserve, NULL);
}

/* A completion callback cancels another request still in flight: that one is called back at
 * once with ECANCELED, inside the cancel, and never again. */
static done_t other_d[2];

static void on_done_cancel_other(void *arg, const pskgw_curlmulti_result_t *res)
{
    on_done(arg, res);
    pskgw_curlmulti_cancel(other_d[1].req);
    cr_assert_eq(other_d[1].calls, 1);
}

Test(curlmulti, cancel_another_request_from_inside_a_callback)
{
    all_t a = { other_d, 2 };
    int want = 1;

    memset(other_d, 0, sizeof(other_d));
    cr_assert_eq(submit("/hang", NULL, "x", 1, 20000, &other_d[1]), 0);
    cr_assert(run_until(server_hanging, &want));
    cr_assert_eq(submit_cb("/echo", NULL, "y", 0, 10000, on_done_cancel_other, &other_d[0]), 0);
    cr_assert(run_until(all_called, &a));
    cr_assert_eq(other_d[0].err, 0);
    cr_assert_str_eq(other_d[0].body, "POST 0 y");
    cr_assert_eq(other_d[1].err, PSKGW_ECANCELED);
    cr_assert_eq(pskgw_curlmulti_active(m), 0);
    echosrv_release(srv);
    cr_assert_eq(other_d[1].calls, 1);
}
