/* The key cache with the real security-service client (upstream/) as its backend, against the
 * real simulator (pskgw-sim) on loopback. The sim's /_sim/stats count every GetPSK that reaches
 * it, which proves single-flight and caching end to end; its fault control proves stale-if-error.
 *
 * The backend adapter here is the test's own (the gateway's lives in gateway/): cache key = the
 * 14 identity bytes, value = psk_len (1) | PSK | ROTPublicUID.
 *
 * Every test ends with close_all(): the cache and the client closed (the loop closes with nothing
 * left), then pskgw-sim stopped with SIGTERM and judged (exit 0, no sanitizer report in its
 * captured stderr), inside the test: Criterion does not count a failure in a suite's fini. */
#include "common/codec.h"
#include "common/err.h"
#include "keycache/keycache.h"
#include "keycache/psk_value.h"
#include "proc.h"
#include "simctl.h"
#include "tools/rotkeys/rotkeys.h"
#include "upstream/upstream.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* ---- pskgw-sim (simctl.h: blocking libcurl easy calls, only between loop runs) ---- */

static sim_t sim = { .proc = { -1, -1 } };

/* calls.get_psk, and by_identity[id_hex] when id_hex is given (0 when absent). */
static long sim_get_psk_calls(const char *id_hex)
{
    json_t *j = sim_stats(&sim);
    json_t *x;
    long v;

    cr_assert_not_null(j, "GET /_sim/stats");
    if (id_hex)
        x = json_object_get(json_object_get(j, "by_identity"), id_hex);
    else
        x = json_object_get(json_object_get(j, "calls"), "get_psk");
    v = json_is_integer(x) ? (long)json_integer_value(x) : 0;
    json_decref(j);
    return v;
}

static void sim_faults(const char *json)
{
    cr_assert_eq(sim_post(&sim, "/_sim/faults", json), 200, "POST /_sim/faults %s", json);
}

/* ---- loop, clock, client, cache ---- */

static uv_loop_t loop;
static uv_timer_t tick;
static pskgw_upstream_t *up;
static pskgw_keycache_t *kc;
static uint64_t g_skew; /* added to the cache's clocks: lets a test age entries */
static int closed;
static uint32_t g_deadline_ms; /* per GetPSK: long for bulk tests, short while the sim fails */

static uint64_t kc_now(void *arg)
{
    (void)arg;
    return uv_hrtime() / 1000000 + g_skew;
}

static uint64_t kc_wall(void *arg)
{
    struct timespec ts;

    (void)arg;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + g_skew;
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* The backend adapter: one upstream GetPSK per cache fetch. */
typedef struct {
    pskgw_keycache_backend_done_cb done;
    void *done_arg;
    pskgw_upstream_req_t *req;
} call_t;

static void on_psk(void *arg, int status, const pskgw_upstream_psk_t *r)
{
    call_t *c = arg;
    uint8_t v[PSKGW_KEYCACHE_PSK_VALUE_MAX];
    size_t n = 0;

    if (status == 0)
        status = pskgw_keycache_psk_value_encode(r->key, r->key_len, r->rot_uid, v, sizeof(v), &n);
    c->done(c->done_arg, status, status == 0 ? v : NULL, n);
    memset(v, 0, sizeof(v));
    free(c);
}

static int be_fetch(void *ctx, const uint8_t *key, size_t key_len,
                    pskgw_keycache_backend_done_cb done, void *done_arg, void **handle)
{
    char hex[2 * PSKGW_ROT_IDENTITY_LEN + 1];
    call_t *c;
    int rc;

    (void)ctx;
    if (pskgw_hex_encode(key, key_len, hex, sizeof(hex), true) != 0)
        return PSKGW_EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return PSKGW_ENOMEM;
    c->done = done;
    c->done_arg = done_arg;
    rc = pskgw_upstream_get_psk(up, hex, 128, g_deadline_ms, on_psk, c, &c->req);
    if (rc < 0) {
        free(c);
        return rc;
    }
    *handle = c;
    return 0;
}

static void be_cancel(void *ctx, void *handle)
{
    (void)ctx;
    pskgw_upstream_cancel(((call_t *)handle)->req);
}

static void setup(void)
{
    pskgw_upstream_opts_t uo;
    pskgw_keycache_opts_t o;

    cr_assert_eq(sim_start(&sim, NULL), 0, "pskgw-sim did not start");

    closed = 0;
    g_skew = 0;
    g_deadline_ms = 30000;
    cr_assert_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);

    pskgw_upstream_opts_init(&uo);
    uo.name = "kc-test";
    uo.base_url = sim.url;
    uo.key_id = SIM_KEY;
    uo.secret = SIM_SECRET;
    uo.max_in_flight = 64;
    uo.queue_size = 20000;
    uo.backoff_base_ms = 50;
    uo.backoff_max_ms = 200;
    cr_assert_eq(pskgw_upstream_new(&loop, &uo, &up), 0);

    pskgw_keycache_opts_init(&o);
    o.loop = &loop;
    o.name = "psk";
    o.domain = "sim.example";
    o.backend.fetch = be_fetch;
    o.backend.cancel = be_cancel;
    o.entries = 10000;
    o.ttl_s = 60;
    o.stale_s = 600;
    o.stale_retry_ms = 500;
    o.now_ms = kc_now;
    o.wall_ms = kc_wall;
    cr_assert_eq(pskgw_keycache_new(&o, &kc), 0);
}

static void on_kc_closed(pskgw_keycache_t *c)
{
    (void)c;
    closed++;
}

static void on_up_closed(void *arg)
{
    (void)arg;
    closed++;
}

/* The end of every test: the cache first (it cancels its upstream calls), then the client, then
 * the loop; then pskgw-sim, stopped and judged. Once per test (finish() calls it again after a
 * test that ended early). */
static void close_all(void)
{
    if (up == NULL)
        return;
    if (kc) {
        pskgw_keycache_close(kc, on_kc_closed);
        while (closed < 1)
            uv_run(&loop, UV_RUN_ONCE);
        kc = NULL;
    }
    pskgw_upstream_close(up, on_up_closed, NULL);
    up = NULL;
    uv_close((uv_handle_t *)&tick, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(closed, 2);
    cr_assert_eq(uv_loop_close(&loop), 0);
    sim_stop(&sim);
}

static void finish(void)
{
    close_all();
    if (sim.proc.pid > 0) { /* a test that ended before close_all(): nothing left to judge */
        pskgw_test_stop(&sim.proc, SIGKILL, 5000);
        sim.proc.pid = -1;
    }
    if (sim.err[0] != '\0')
        unlink(sim.err);
    sim.err[0] = '\0';
}

TestSuite(keycache_upstream, .init = setup, .fini = finish, .timeout = 55);

/* timeout_ms is a guard against hanging only: raised to at least 30 s (the suite's timeout is
 * 55 s) so that a loaded machine cannot fail a wait. */
static void run_until_count(const int *counter, int target, int timeout_ms, const char *what)
{
    uint64_t deadline = uv_hrtime() / 1000000 + (uint64_t)(timeout_ms < 30000 ? 30000 : timeout_ms);

    while (*counter < target) {
        cr_assert(uv_hrtime() / 1000000 < deadline, "timed out waiting for %s (%d of %d)", what,
                  *counter, target);
        uv_run(&loop, UV_RUN_ONCE);
    }
}

/* What the sim's root of trust says device i's value is. */
static size_t expected_value(uint32_t dev, uint8_t *v)
{
    uint8_t psk[16];
    char uid[PSKGW_ROT_UID_LEN + 1];
    size_t kl = 0;
    size_t n = 0;

    cr_assert_eq(pskgw_rot_psk(SIM_SEED, dev, 128, psk, sizeof(psk), &kl), 0);
    cr_assert_eq(pskgw_rot_uid(SIM_SEED, dev, uid), 0);
    cr_assert_eq(pskgw_keycache_psk_value_encode(psk, kl, uid, v, PSKGW_KEYCACHE_PSK_VALUE_MAX, &n),
                 0);
    return n;
}

typedef struct {
    int calls;
    int status;
    bool stale;
    uint8_t source;
    size_t len;
    uint8_t value[PSKGW_KEYCACHE_PSK_VALUE_MAX];
} got_t;

static int total_done;
static int total_ok;
static int twice;

static void on_result(void *arg, const pskgw_keycache_result_t *res)
{
    got_t *g = arg;

    if (g->calls)
        twice++;
    g->calls++;
    g->status = res->status;
    g->stale = res->stale;
    g->source = res->source;
    g->len = res->value_len;
    if (res->status == PSKGW_OK && res->value_len <= sizeof(g->value))
        memcpy(g->value, res->value, res->value_len);
    total_done++;
    if (res->status == PSKGW_OK)
        total_ok++;
}

static bool value_is(const got_t *g, uint32_t dev)
{
    uint8_t v[PSKGW_KEYCACHE_PSK_VALUE_MAX];
    size_t n = expected_value(dev, v);

    return g->len == n && memcmp(g->value, v, n) == 0;
}

#define N_SF 1000

Test(keycache_upstream, thousand_concurrent_fetches_one_get_psk_at_the_sim)
{
    static got_t g[N_SF];
    uint8_t id[PSKGW_ROT_IDENTITY_LEN];
    char hex[PSKGW_ROT_IDENTITY_HEX_LEN + 1];

    memset(g, 0, sizeof(g));
    total_done = total_ok = twice = 0;
    cr_assert_eq(pskgw_rot_identity(SIM_SEED, 7, id), 0);
    cr_assert_eq(pskgw_rot_identity_hex(SIM_SEED, 7, hex), 0);
    for (int i = 0; i < N_SF; i++)
        cr_assert_eq(pskgw_keycache_fetch(kc, id, sizeof(id), on_result, &g[i], NULL), 0);
    run_until_count(&total_done, N_SF, 20000, "1000 callbacks");
    cr_assert_eq(twice, 0);
    cr_assert_eq(total_ok, N_SF);
    for (int i = 0; i < N_SF; i++) {
        cr_assert_eq(g[i].calls, 1);
        cr_assert(value_is(&g[i], 7), "waiter %d got a wrong value", i);
    }
    cr_assert_eq(sim_get_psk_calls(NULL), 1, "GetPSK calls at the sim");
    cr_assert_eq(sim_get_psk_calls(hex), 1);
    close_all();
}

#define N_DISTINCT 10000

Test(keycache_upstream, ten_thousand_identities_then_zero_calls_on_replay)
{
    static got_t g[N_DISTINCT];
    static uint8_t ids[N_DISTINCT][PSKGW_ROT_IDENTITY_LEN];
    pskgw_keycache_stats_t st;

    memset(g, 0, sizeof(g));
    total_done = total_ok = twice = 0;
    for (uint32_t i = 0; i < N_DISTINCT; i++)
        cr_assert_eq(pskgw_rot_identity(SIM_SEED, i, ids[i]), 0);
    for (int i = 0; i < N_DISTINCT; i++)
        cr_assert_eq(
            pskgw_keycache_fetch(kc, ids[i], PSKGW_ROT_IDENTITY_LEN, on_result, &g[i], NULL), 0);
    run_until_count(&total_done, N_DISTINCT, 45000, "10000 callbacks");
    cr_assert_eq(total_ok, N_DISTINCT);
    cr_assert_eq(twice, 0);
    for (uint32_t i = 0; i < N_DISTINCT; i += 997)
        cr_assert(value_is(&g[i], i), "identity %u got a wrong value", i);
    cr_assert_eq(sim_get_psk_calls(NULL), N_DISTINCT);

    memset(g, 0, sizeof(g));
    total_done = total_ok = 0;
    for (int i = 0; i < N_DISTINCT; i++)
        cr_assert_eq(
            pskgw_keycache_fetch(kc, ids[i], PSKGW_ROT_IDENTITY_LEN, on_result, &g[i], NULL), 0);
    run_until_count(&total_done, N_DISTINCT, 10000, "10000 replayed callbacks");
    cr_assert_eq(total_ok, N_DISTINCT);
    cr_assert_eq(sim_get_psk_calls(NULL), N_DISTINCT, "replay reached the service");
    pskgw_keycache_stats(kc, &st);
    cr_assert_eq(st.backend_calls, N_DISTINCT);
    cr_assert_eq(st.hits_l1, N_DISTINCT);
    cr_assert_eq(st.evictions, 0);
    close_all();
}

static got_t fetch_one(uint32_t dev)
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN];
    got_t g = { 0 };

    total_done = total_ok = twice = 0;
    cr_assert_eq(pskgw_rot_identity(SIM_SEED, dev, id), 0);
    cr_assert_eq(pskgw_keycache_fetch(kc, id, sizeof(id), on_result, &g, NULL), 0);
    run_until_count(&g.calls, 1, 10000, "callback");
    cr_assert_eq(twice, 0);
    return g;
}

Test(keycache_upstream, stale_served_while_the_sim_returns_503_fresh_after_recovery)
{
    got_t g;
    long calls;

    g = fetch_one(42);
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_not(g.stale);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert(value_is(&g, 42));

    g_skew += 61000;      /* past ttl_s (60), inside stale_s (600) */
    g_deadline_ms = 1000; /* the client retries 503s until this deadline */
    sim_faults("{\"error_rate\":1,\"error_status\":503}");
    calls = sim_get_psk_calls(NULL);
    g = fetch_one(42);
    cr_assert_eq(g.status, PSKGW_OK, "%s", pskgw_strerror(g.status));
    cr_assert(g.stale, "not flagged stale");
    cr_assert(value_is(&g, 42));
    cr_assert_gt(sim_get_psk_calls(NULL), calls, "no refresh attempted");

    /* A device never seen before gets the service's failure. */
    g = fetch_one(43);
    cr_assert_eq(g.status, PSKGW_EUNAVAIL, "%s", pskgw_strerror(g.status));

    pskgw_keycache_stats_t st;
    pskgw_keycache_stats(kc, &st);
    cr_assert_eq(st.stale_serves, 1);

    sim_faults("{\"error_rate\":0}");
    g_skew += 1000; /* past stale_retry_ms */
    calls = sim_get_psk_calls(NULL);
    g = fetch_one(42);
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_not(g.stale, "still stale after recovery");
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert(value_is(&g, 42));
    cr_assert_eq(sim_get_psk_calls(NULL), calls + 1);
    g = fetch_one(42);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_L1);
    cr_assert_eq(sim_get_psk_calls(NULL), calls + 1);
    close_all();
}

Test(keycache_upstream, refusals_cached_and_close_cancels_upstream_calls)
{
    got_t g = { 0 };
    got_t pending[3] = { { 0 } };
    uint8_t id[PSKGW_ROT_IDENTITY_LEN];
    uint8_t unknown[PSKGW_ROT_IDENTITY_LEN];
    long calls;
    pskgw_upstream_stats_t ust;
    uint64_t sent;

    /* An identity that is not from the sim's seed: 404, cached as a refusal. */
    cr_assert_eq(pskgw_rot_identity(SIM_SEED, 1, unknown), 0);
    unknown[13] ^= 0xff;
    cr_assert_eq(pskgw_keycache_fetch(kc, unknown, sizeof(unknown), on_result, &g, NULL), 0);
    run_until_count(&g.calls, 1, 10000, "404");
    cr_assert_eq(g.status, PSKGW_ENOTFOUND);
    calls = sim_get_psk_calls(NULL);
    memset(&g, 0, sizeof(g));
    cr_assert_eq(pskgw_keycache_fetch(kc, unknown, sizeof(unknown), on_result, &g, NULL), 0);
    run_until_count(&g.calls, 1, 10000, "cached 404");
    cr_assert_eq(g.status, PSKGW_ENOTFOUND);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_L1);
    cr_assert_eq(sim_get_psk_calls(NULL), calls);

    /* Requests held at the sim by latency (a minute: longer than anything here waits) when the
     * cache closes: ECANCELED, exactly once. */
    sim_faults("{\"latency_ms\":60000}");
    pskgw_upstream_stats(up, &ust);
    sent = ust.http_attempts[PSKGW_UPSTREAM_OP_PSK];
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pskgw_rot_identity(SIM_SEED, 100 + (uint32_t)i, id), 0);
        cr_assert_eq(pskgw_keycache_fetch(kc, id, sizeof(id), on_result, &pending[i], NULL), 0);
    }
    /* wait until the three GetPSK requests are sent (then held by the sim) */
    uv_update_time(&loop);
    for (uint64_t end = uv_now(&loop) + 30000;
         ust.http_attempts[PSKGW_UPSTREAM_OP_PSK] < sent + 3;) {
        cr_assert_lt(uv_now(&loop), end, "the GetPSK requests were not sent");
        uv_run(&loop, UV_RUN_ONCE);
        pskgw_upstream_stats(up, &ust);
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pending[i].calls, 0);
    pskgw_keycache_close(kc, on_kc_closed);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pending[i].calls, 1);
        cr_assert_eq(pending[i].status, PSKGW_ECANCELED);
    }
    while (closed < 1)
        uv_run(&loop, UV_RUN_ONCE);
    kc = NULL; /* finish() closes the client */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pending[i].calls, 1);
    close_all();
}
