/* The key cache without Redis: a fake backend driven by the test, an injected clock, a real libuv
 * loop (every test ends with uv_loop_close() == 0). */
#include "common/err.h"
#include "fake_backend.h"
#include "keycache/keycache.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uint64_t g_now = 1000000;

static uint64_t test_now(void *arg)
{
    (void)arg;
    return g_now;
}

static uint64_t test_wall(void *arg)
{
    (void)arg;
    return 1700000000000ULL + g_now;
}

typedef struct {
    int calls;
    int status;
    bool stale;
    uint8_t source;
    size_t len;
    uint8_t value[300];
} got_t;

/* Set by finish(): a test aborted by a failed assertion (the torture's injected allocation
 * failures, tests/torture.sh) can leave requests pending whose got_t lived on its stack; the close
 * cancels them, and those callbacks must not touch it. */
static bool tearing_down;

static void on_result(void *arg, const pskgw_keycache_result_t *res)
{
    got_t *g = arg;

    if (tearing_down)
        return;
    g->calls++;
    g->status = res->status;
    g->stale = res->stale;
    g->source = res->source;
    g->len = res->value_len;
    if (res->status == PSKGW_OK) {
        cr_assert_not_null(res->value);
        cr_assert_leq(res->value_len, sizeof(g->value));
        memcpy(g->value, res->value, res->value_len);
    } else {
        cr_assert_null(res->value);
    }
}

static uv_loop_t loop;
static fake_backend_t fb;
static pskgw_keycache_t *kc;
static bool closed;

static void on_closed(pskgw_keycache_t *c)
{
    pskgw_keycache_stats_t st;

    cr_assert_eq(c, kc);
    pskgw_keycache_stats(c, &st); /* still valid here */
    closed = true;
}

static pskgw_keycache_opts_t base_opts(void)
{
    pskgw_keycache_opts_t o;

    pskgw_keycache_opts_init(&o);
    o.loop = &loop;
    o.name = "psk";
    o.domain = "example.com";
    fake_backend_init(&fb, &o.backend);
    o.now_ms = test_now;
    o.wall_ms = test_wall;
    o.ttl_s = 10;
    o.negative_ttl_s = 5;
    o.stale_s = 100;
    o.stale_retry_ms = 1000;
    return o;
}

static void setup_with(pskgw_keycache_opts_t *o)
{
    cr_assert_eq(pskgw_keycache_new(o, &kc), 0);
}

static void setup(void)
{
    pskgw_keycache_opts_t o;

    g_now = 1000000;
    closed = false;
    tearing_down = false;
    cr_assert_eq(uv_loop_init(&loop), 0);
    o = base_opts();
    setup_with(&o);
}

/* Run the loop until nothing is ready (the cache dispatches results from an idle handle). */
static void drain(void)
{
    for (int i = 0; i < 8; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

static void finish(void)
{
    tearing_down = true;
    if (kc && !closed)
        pskgw_keycache_close(kc, on_closed);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert(closed);
    kc = NULL;
    cr_assert_eq(fb.npending, 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

static void reinit(pskgw_keycache_opts_t *o)
{
    /* Replace the cache made by setup() with one built from o. */
    pskgw_keycache_close(kc, on_closed);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert(closed);
    closed = false;
    kc = NULL; /* freed: if the new one cannot be made, finish() has nothing to close */
    setup_with(o);
}

#define K(s) (const uint8_t *)(s), strlen(s)

static pskgw_keycache_stats_t stats(void)
{
    pskgw_keycache_stats_t st;

    pskgw_keycache_stats(kc, &st);
    return st;
}

TestSuite(keycache, .init = setup, .fini = finish);

Test(keycache, miss_then_hit_from_layer1)
{
    got_t g = { 0 };
    pskgw_keycache_result_t res;

    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev1"), &res), PSKGW_EAGAIN);
    cr_assert_not(res.stale);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
    cr_assert_eq(fb.calls, 1);
    drain();
    cr_assert_eq(g.calls, 0, "answered before the backend");
    cr_assert(fake_complete(&fb, K("dev1"), PSKGW_OK, "psk-1", 5));
    cr_assert_eq(g.calls, 0, "callback from inside the backend's callback");
    drain();
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert_not(g.stale);
    cr_assert_eq(g.len, 5);
    cr_assert(memcmp(g.value, "psk-1", 5) == 0);

    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev1"), &res), 0);
    cr_assert_eq(res.status, PSKGW_OK);
    cr_assert_eq(res.value_len, 5);
    cr_assert(memcmp(res.value, "psk-1", 5) == 0);
    cr_assert_not(res.stale);

    memset(&g, 0, sizeof(g));
    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
    cr_assert_eq(g.calls, 0, "a layer-1 hit must still call back later");
    drain();
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_L1);
    cr_assert_eq(fb.calls, 1);
    cr_assert_eq(stats().hits_l1, 2);
    cr_assert_eq(stats().misses, 1);
    cr_assert_eq(stats().backend_calls, 1);
    cr_assert_eq(stats().entries, 1);
}

Test(keycache, backend_failing_at_once_calls_back_later)
{
    got_t g = { 0 };

    fb.fail_at_once = PSKGW_EBUSY;
    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
    cr_assert_eq(g.calls, 0);
    drain();
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.status, PSKGW_EBUSY);
    cr_assert_eq(stats().backend_errors, 1);
    cr_assert_eq(stats().flights, 0);
}

Test(keycache, ttl_expiry_with_injected_clock)
{
    pskgw_keycache_opts_t o = base_opts();
    pskgw_keycache_result_t res;
    got_t g = { 0 };

    o.stale_s = 0;
    reinit(&o);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("dev1"), PSKGW_OK, "v1", 2);
    drain();
    g_now += 9999;
    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev1"), &res), 0);
    g_now += 1;
    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev1"), &res), PSKGW_EAGAIN);
    cr_assert_not(res.stale, "no stale window configured");
    cr_assert_eq(stats().entries, 0, "expired entry kept");
    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
    cr_assert_eq(fb.calls, 2);
    fake_complete(&fb, K("dev1"), PSKGW_OK, "v2", 2);
    drain();
    cr_assert_eq(g.calls, 2);
    cr_assert(memcmp(g.value, "v2", 2) == 0);
}

Test(keycache, negative_entries_and_their_expiry)
{
    pskgw_keycache_result_t res;
    got_t g = { 0 };

    cr_assert_eq(pskgw_keycache_fetch(kc, K("unknown"), on_result, &g, NULL), 0);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("refused"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("unknown"), PSKGW_ENOTFOUND, NULL, 0);
    fake_complete(&fb, K("refused"), PSKGW_EDENIED, NULL, 0);
    drain();
    cr_assert_eq(g.calls, 2);

    cr_assert_eq(pskgw_keycache_lookup(kc, K("unknown"), &res), 0);
    cr_assert_eq(res.status, PSKGW_ENOTFOUND);
    cr_assert_null(res.value);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("refused"), &res), 0);
    cr_assert_eq(res.status, PSKGW_EDENIED);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("refused"), on_result, &g, NULL), 0);
    drain();
    cr_assert_eq(g.status, PSKGW_EDENIED);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_L1);
    cr_assert_eq(fb.calls, 2, "negative entry not used");
    cr_assert_eq(stats().negative_hits, 3);

    g_now += 5000; /* negative_ttl_s = 5 */
    cr_assert_eq(pskgw_keycache_lookup(kc, K("refused"), &res), PSKGW_EAGAIN);
    cr_assert_not(res.stale, "a refusal is never served stale");
    cr_assert_eq(pskgw_keycache_fetch(kc, K("refused"), on_result, &g, NULL), 0);
    cr_assert_eq(fb.calls, 3);
    fake_complete(&fb, K("refused"), PSKGW_OK, "now-ok", 6);
    drain();
    cr_assert_eq(g.status, PSKGW_OK);
}

Test(keycache, negative_ttl_zero_caches_no_refusal)
{
    pskgw_keycache_opts_t o = base_opts();
    pskgw_keycache_result_t res;
    got_t g = { 0 };

    o.negative_ttl_s = 0;
    reinit(&o);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("x"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("x"), PSKGW_EDENIED, NULL, 0);
    drain();
    cr_assert_eq(g.status, PSKGW_EDENIED);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("x"), &res), PSKGW_EAGAIN);
}

Test(keycache, stale_served_on_transient_failure_then_fresh_after_recovery)
{
    pskgw_keycache_opts_t o = base_opts();
    pskgw_keycache_result_t res;
    got_t g = { 0 };

    o.breaker_failures = 0; /* the hold-off alone (the breaker has its own test below) */
    reinit(&o);

    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("dev1"), PSKGW_OK, "old", 3);
    drain();
    g_now += 11000; /* past ttl (10 s), inside stale (100 s) */
    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev1"), &res), PSKGW_EAGAIN);
    cr_assert(res.stale, "stale value not reported");

    const int transient[] = { PSKGW_EUNAVAIL, PSKGW_ETIMEOUT, PSKGW_EBUSY, PSKGW_ERATELIMIT };
    for (size_t i = 0; i < 4; i++) {
        memset(&g, 0, sizeof(g));
        cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
        cr_assert_eq(fb.calls, 2 + i, "refresh not attempted");
        fake_complete(&fb, K("dev1"), transient[i], NULL, 0);
        drain();
        cr_assert_eq(g.calls, 1);
        cr_assert_eq(g.status, PSKGW_OK, "%s", pskgw_strerror(transient[i]));
        cr_assert(g.stale);
        cr_assert(memcmp(g.value, "old", 3) == 0);

        /* Hold-off: within stale_retry_ms the stale value is served without a backend call. */
        cr_assert_eq(pskgw_keycache_lookup(kc, K("dev1"), &res), 0);
        cr_assert(res.stale);
        cr_assert_eq(res.status, PSKGW_OK);
        memset(&g, 0, sizeof(g));
        cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
        drain();
        cr_assert_eq(g.calls, 1);
        cr_assert(g.stale);
        cr_assert_eq(fb.calls, 2 + i);
        g_now += 1000;
    }
    cr_assert_eq(stats().stale_serves, 12);
    cr_assert_eq(stats().backend_errors, 4);

    /* The service recovers: the next fetch refreshes. */
    memset(&g, 0, sizeof(g));
    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
    cr_assert_eq(fb.calls, 6);
    fake_complete(&fb, K("dev1"), PSKGW_OK, "new", 3);
    drain();
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_not(g.stale);
    cr_assert(memcmp(g.value, "new", 3) == 0);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev1"), &res), 0);
    cr_assert_not(res.stale);
    cr_assert(memcmp(res.value, "new", 3) == 0);
}

Test(keycache, no_stale_for_refusals_permanent_errors_or_past_window)
{
    pskgw_keycache_result_t res;
    got_t g = { 0 };

    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("dev1"), PSKGW_OK, "old", 3);
    drain();
    g_now += 11000;
    /* A malformed request is not a reason to serve an old key. */
    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("dev1"), PSKGW_EBADREQ, NULL, 0);
    drain();
    cr_assert_eq(g.status, PSKGW_EBADREQ);
    /* A refusal replaces the stale value. */
    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("dev1"), PSKGW_EDENIED, NULL, 0);
    drain();
    cr_assert_eq(g.status, PSKGW_EDENIED);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev1"), &res), 0);
    cr_assert_eq(res.status, PSKGW_EDENIED);

    /* Past the stale window nothing is served. */
    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev2"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("dev2"), PSKGW_OK, "v", 1);
    drain();
    g_now += 110000;
    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev2"), &res), PSKGW_EAGAIN);
    cr_assert_not(res.stale);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("dev2"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("dev2"), PSKGW_EUNAVAIL, NULL, 0);
    drain();
    cr_assert_eq(g.status, PSKGW_EUNAVAIL);
    cr_assert_eq(stats().stale_serves, 0);
}

/* A 200 answer that does not parse (or is too big) is the service failing, not a refusal of the
 * identity: known devices keep their stale key. */
Test(keycache, stale_served_when_the_service_answers_garbage)
{
    static const int garbage[] = { PSKGW_EPARSE, PSKGW_ETOOBIG };
    got_t g = { 0 };

    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        memset(&g, 0, sizeof(g));
        cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
        fake_complete(&fb, K("dev1"), PSKGW_OK, "old", 3);
        drain();
        g_now += 11000; /* past ttl (10 s), inside stale (100 s) */
        cr_assert_eq(pskgw_keycache_fetch(kc, K("dev1"), on_result, &g, NULL), 0);
        fake_complete(&fb, K("dev1"), garbage[i], NULL, 0);
        drain();
        cr_assert_eq(g.status, PSKGW_OK, "%s: %s", pskgw_strerror(garbage[i]),
                     pskgw_strerror(g.status));
        cr_assert(g.stale);
        g_now += 2000; /* past the hold-off: the next fetch asks the backend again */
    }
    cr_assert(pskgw_keycache_status_transient(PSKGW_EPARSE));
    cr_assert(pskgw_keycache_status_transient(PSKGW_ETOOBIG));
    cr_assert_not(pskgw_keycache_status_transient(PSKGW_EBADREQ));
}

#define N_SF 1000

static int sf_calls[N_SF];
static int sf_ok;

static void on_sf(void *arg, const pskgw_keycache_result_t *res)
{
    int *c = arg;

    if (tearing_down)
        return;
    (*c)++;
    if (res->status == PSKGW_OK && res->value_len == 3 && memcmp(res->value, "psk", 3) == 0)
        sf_ok++;
}

Test(keycache, single_flight_1000_concurrent_fetches_one_backend_call)
{
    memset(sf_calls, 0, sizeof(sf_calls));
    sf_ok = 0;
    for (int i = 0; i < N_SF; i++)
        cr_assert_eq(pskgw_keycache_fetch(kc, K("cold"), on_sf, &sf_calls[i], NULL), 0);
    drain();
    cr_assert_eq(fb.calls, 1);
    cr_assert_eq(stats().coalesced, N_SF - 1);
    cr_assert_eq(stats().flights, 1);
    cr_assert(fake_complete(&fb, K("cold"), PSKGW_OK, "psk", 3));
    drain();
    for (int i = 0; i < N_SF; i++)
        cr_assert_eq(sf_calls[i], 1, "waiter %d called %d times", i, sf_calls[i]);
    cr_assert_eq(sf_ok, N_SF);
    cr_assert_eq(fb.calls, 1);
    cr_assert_eq(stats().flights, 0);
}

#define N_DISTINCT 10000

static int d_calls;
static int d_ok;

static void on_distinct(void *arg, const pskgw_keycache_result_t *res)
{
    const char *key = arg;

    if (tearing_down)
        return;
    d_calls++;
    if (res->status == PSKGW_OK && res->value_len == 2 + strlen(key) &&
        memcmp(res->value + 2, key, strlen(key)) == 0)
        d_ok++;
}

Test(keycache, ten_thousand_distinct_keys_then_zero_calls_on_replay)
{
    static char keys[N_DISTINCT][16];
    pskgw_keycache_opts_t o = base_opts();

    o.entries = N_DISTINCT;
    reinit(&o);
    d_calls = d_ok = 0;
    for (int i = 0; i < N_DISTINCT; i++) {
        snprintf(keys[i], sizeof(keys[i]), "dev%05d", i);
        cr_assert_eq(pskgw_keycache_fetch(kc, K(keys[i]), on_distinct, keys[i], NULL), 0);
    }
    cr_assert_eq(fb.calls, N_DISTINCT);
    cr_assert_eq(fake_complete_all(&fb, PSKGW_OK), N_DISTINCT);
    drain();
    cr_assert_eq(d_calls, N_DISTINCT);
    cr_assert_eq(d_ok, N_DISTINCT);

    d_calls = d_ok = 0;
    for (int i = 0; i < N_DISTINCT; i++)
        cr_assert_eq(pskgw_keycache_fetch(kc, K(keys[i]), on_distinct, keys[i], NULL), 0);
    drain();
    cr_assert_eq(fb.calls, N_DISTINCT, "replay reached the backend");
    cr_assert_eq(d_calls, N_DISTINCT);
    cr_assert_eq(d_ok, N_DISTINCT);
    cr_assert_eq(stats().evictions, 0);
    cr_assert_eq(stats().hits_l1, N_DISTINCT);
}

Test(keycache, lru_bound_evicts_least_recent)
{
    pskgw_keycache_opts_t o = base_opts();
    pskgw_keycache_result_t res;
    got_t g = { 0 };
    const char *keys[] = { "a", "b", "c", "d" };

    o.entries = 3;
    reinit(&o);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pskgw_keycache_fetch(kc, K(keys[i]), on_result, &g, NULL), 0);
    for (int i = 0; i < 3; i++) /* inserted in the order a, b, c */
        cr_assert(fake_complete(&fb, K(keys[i]), PSKGW_OK, "v", 1));
    drain();
    cr_assert_eq(pskgw_keycache_lookup(kc, K("a"), &res), 0); /* a is recent, b the oldest */
    cr_assert_eq(pskgw_keycache_fetch(kc, K("d"), on_result, &g, NULL), 0);
    fake_complete_all(&fb, PSKGW_OK);
    drain();
    cr_assert_eq(stats().evictions, 1);
    cr_assert_eq(stats().entries, 3);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("b"), &res), PSKGW_EAGAIN);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("a"), &res), 0);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("c"), &res), 0);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("d"), &res), 0);
}

Test(keycache, waiter_and_flight_bounds_give_ebusy_at_once)
{
    pskgw_keycache_opts_t o = base_opts();
    got_t g = { 0 };

    o.max_waiters = 5;
    o.max_flights = 2;
    reinit(&o);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(pskgw_keycache_fetch(kc, K("k1"), on_result, &g, NULL), 0);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("k1"), on_result, &g, NULL), PSKGW_EBUSY);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("k2"), on_result, &g, NULL), 0);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("k3"), on_result, &g, NULL), PSKGW_EBUSY);
    cr_assert_eq(stats().busy, 2);
    fake_complete_all(&fb, PSKGW_OK);
    drain();
    cr_assert_eq(g.calls, 6, "refused fetches must not call back");
    cr_assert_eq(pskgw_keycache_fetch(kc, K("k3"), on_result, &g, NULL), 0);
    fake_complete_all(&fb, PSKGW_OK);
    drain();
    cr_assert_eq(g.calls, 7);
}

Test(keycache, cancel_one_waiter_others_served)
{
    got_t g[3] = { { 0 } };
    pskgw_keycache_req_t *req[3];

    for (int i = 0; i < 3; i++)
        cr_assert_eq(pskgw_keycache_fetch(kc, K("k"), on_result, &g[i], &req[i]), 0);
    pskgw_keycache_cancel(req[1]);
    cr_assert_eq(g[1].calls, 1);
    cr_assert_eq(g[1].status, PSKGW_ECANCELED);
    cr_assert_eq(g[1].source, PSKGW_KEYCACHE_SRC_NONE);
    fake_complete(&fb, K("k"), PSKGW_OK, "val", 3);
    drain();
    cr_assert_eq(g[0].calls, 1);
    cr_assert_eq(g[2].calls, 1);
    cr_assert_eq(g[1].calls, 1);
    cr_assert_eq(g[0].status, PSKGW_OK);
    cr_assert_eq(g[2].status, PSKGW_OK);
    cr_assert_eq(stats().canceled, 1);

    /* Cancel all waiters: the flight still fills the cache. */
    cr_assert_eq(pskgw_keycache_fetch(kc, K("k2"), on_result, &g[0], &req[0]), 0);
    pskgw_keycache_cancel(req[0]);
    cr_assert_eq(g[0].calls, 2);
    fake_complete(&fb, K("k2"), PSKGW_OK, "v2", 2);
    drain();
    cr_assert_eq(g[0].calls, 2);
    pskgw_keycache_result_t res;
    cr_assert_eq(pskgw_keycache_lookup(kc, K("k2"), &res), 0);

    /* Cancel a result already queued (layer-1 hit not yet delivered). */
    cr_assert_eq(pskgw_keycache_fetch(kc, K("k2"), on_result, &g[2], &req[2]), 0);
    pskgw_keycache_cancel(req[2]);
    cr_assert_eq(g[2].calls, 2);
    cr_assert_eq(g[2].status, PSKGW_ECANCELED);
    drain();
    cr_assert_eq(g[2].calls, 2);
}

Test(keycache, close_with_pending_fetches_cancels_each_once)
{
    got_t g[5] = { { 0 } };

    cr_assert_eq(pskgw_keycache_fetch(kc, K("warm"), on_result, &g[0], NULL), 0);
    fake_complete(&fb, K("warm"), PSKGW_OK, "w", 1);
    drain();
    memset(g, 0, sizeof(g));
    cr_assert_eq(pskgw_keycache_fetch(kc, K("warm"), on_result, &g[0], NULL), 0); /* queued */
    cr_assert_eq(pskgw_keycache_fetch(kc, K("a"), on_result, &g[1], NULL), 0);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("a"), on_result, &g[2], NULL), 0);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("b"), on_result, &g[3], NULL), 0);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("c"), on_result, &g[4], NULL), 0);
    cr_assert_eq(fb.npending, 3);
    pskgw_keycache_close(kc, on_closed);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(g[i].calls, 1, "request %d", i);
        cr_assert_eq(g[i].status, PSKGW_ECANCELED);
    }
    cr_assert_eq(fb.cancels, 3);
    cr_assert_eq(fb.npending, 0);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("a"), on_result, &g[0], NULL), PSKGW_ECLOSED);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert(closed);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(g[i].calls, 1);
}

Test(keycache, close_waits_for_asynchronous_backend_cancel)
{
    got_t g = { 0 };

    fb.cancel_async = true;
    cr_assert_eq(pskgw_keycache_fetch(kc, K("a"), on_result, &g, NULL), 0);
    pskgw_keycache_close(kc, on_closed);
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.status, PSKGW_ECANCELED);
    drain();
    cr_assert_not(closed, "closed before the backend answered");
    cr_assert_eq(fake_complete_all(&fb, PSKGW_OK), 1);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert(closed);
    cr_assert_eq(g.calls, 1);
}

static got_t reent[3];

static void on_close_from_cb(void *arg, const pskgw_keycache_result_t *res)
{
    if (tearing_down)
        return;
    on_result(arg, res);
    if (arg == &reent[0]) {
        pskgw_keycache_close(kc, on_closed);
        cr_assert_eq(pskgw_keycache_fetch(kc, K("z"), on_result, &reent[2], NULL), PSKGW_ECLOSED);
    }
}

Test(keycache, close_from_inside_a_callback)
{
    memset(reent, 0, sizeof(reent));
    cr_assert_eq(pskgw_keycache_fetch(kc, K("a"), on_close_from_cb, &reent[0], NULL), 0);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("b"), on_close_from_cb, &reent[1], NULL), 0);
    fake_complete(&fb, K("a"), PSKGW_OK, "va", 2);
    drain();
    cr_assert(closed);
    cr_assert_eq(reent[0].calls, 1);
    cr_assert_eq(reent[0].status, PSKGW_OK);
    cr_assert_eq(reent[1].calls, 1);
    cr_assert_eq(reent[1].status, PSKGW_ECANCELED);
    cr_assert_eq(reent[2].calls, 0);
}

static pskgw_keycache_req_t *self_req[2];
static got_t self_got[2];

static void on_cancel_self(void *arg, const pskgw_keycache_result_t *res)
{
    got_t *g = arg;

    if (tearing_down)
        return;
    on_result(arg, res);
    pskgw_keycache_cancel(self_req[g == &self_got[0] ? 0 : 1]);
}

/* Cancel of the request whose callback is running (a caller tearing down from inside it) is a
 * no-op: no second callback, no double free, the other ready request still answered once. */
Test(keycache, cancel_from_its_own_callback_is_a_no_op)
{
    memset(self_got, 0, sizeof(self_got));
    cr_assert_eq(pskgw_keycache_fetch(kc, K("a"), on_cancel_self, &self_got[0], &self_req[0]), 0);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("a"), on_cancel_self, &self_got[1], &self_req[1]), 0);
    fake_complete(&fb, K("a"), PSKGW_OK, "va", 2);
    drain();
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(self_got[i].calls, 1);
        cr_assert_eq(self_got[i].status, PSKGW_OK);
    }
    cr_assert_eq(stats().canceled, 0);
}

static pskgw_keycache_req_t *recancel_req;

static void on_recancel(void *arg, const pskgw_keycache_result_t *res)
{
    if (tearing_down)
        return;
    on_result(arg, res);
    pskgw_keycache_cancel(recancel_req);
}

/* Cancel again from inside the ECANCELED callback (a caller whose teardown cancels what it still
 * holds) is a no-op, for a waiter of a flight and for a queued result alike. Found by the
 * allocation-failure torture (N=7 of cancel_from_its_own_callback_is_a_no_op: the close of the
 * aborted test canceled a request whose callback cancels it): endless recursion before. */
Test(keycache, cancel_from_its_own_canceled_callback_is_a_no_op)
{
    got_t g[2] = { { 0 } };

    cr_assert_eq(pskgw_keycache_fetch(kc, K("c"), on_recancel, &g[0], &recancel_req), 0);
    pskgw_keycache_cancel(recancel_req);
    cr_assert_eq(g[0].calls, 1);
    cr_assert_eq(g[0].status, PSKGW_ECANCELED);
    fake_complete(&fb, K("c"), PSKGW_OK, "vc", 2);
    drain();
    cr_assert_eq(g[0].calls, 1);

    cr_assert_eq(pskgw_keycache_fetch(kc, K("c"), on_recancel, &g[1], &recancel_req), 0);
    pskgw_keycache_cancel(recancel_req);
    cr_assert_eq(g[1].calls, 1);
    cr_assert_eq(g[1].status, PSKGW_ECANCELED);
    drain();
    cr_assert_eq(g[1].calls, 1);
    cr_assert_eq(stats().canceled, 2);
}

static int refetch_calls;

static void on_refetch(void *arg, const pskgw_keycache_result_t *res)
{
    got_t *g = arg;

    if (tearing_down)
        return;
    on_result(arg, res);
    if (g->calls == 1)
        cr_assert_eq(pskgw_keycache_fetch(kc, K("k"), on_refetch, arg, NULL), 0);
    refetch_calls++;
}

Test(keycache, fetch_again_from_inside_the_callback)
{
    got_t g = { 0 };

    refetch_calls = 0;
    cr_assert_eq(pskgw_keycache_fetch(kc, K("k"), on_refetch, &g, NULL), 0);
    fake_complete(&fb, K("k"), PSKGW_OK, "v", 1);
    drain();
    cr_assert_eq(refetch_calls, 2);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_L1);
    cr_assert_eq(fb.calls, 1);
}

Test(keycache, invalidate_and_bad_values)
{
    pskgw_keycache_result_t res;
    got_t g = { 0 };
    static uint8_t big[600];

    cr_assert_eq(pskgw_keycache_fetch(kc, K("k"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("k"), PSKGW_OK, "v", 1);
    drain();
    cr_assert_eq(pskgw_keycache_invalidate(kc, K("k")), 0);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("k"), &res), PSKGW_EAGAIN);

    /* A backend value larger than max_value_len (512) is a protocol error, not cached. */
    cr_assert_eq(pskgw_keycache_fetch(kc, K("k"), on_result, &g, NULL), 0);
    fake_complete(&fb, K("k"), PSKGW_OK, big, sizeof(big));
    drain();
    cr_assert_eq(g.status, PSKGW_EPROTO);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("k"), &res), PSKGW_EAGAIN);
}

Test(keycache, argument_checks)
{
    static uint8_t longkey[129];
    pskgw_keycache_result_t res;
    pskgw_keycache_opts_t o = base_opts();
    pskgw_keycache_t *other = NULL;
    got_t g = { 0 };

    cr_assert_eq(pskgw_keycache_fetch(kc, (const uint8_t *)"", 0, on_result, &g, NULL),
                 PSKGW_EINVAL);
    cr_assert_eq(pskgw_keycache_fetch(kc, longkey, sizeof(longkey), on_result, &g, NULL),
                 PSKGW_EINVAL);
    cr_assert_eq(pskgw_keycache_lookup(kc, longkey, sizeof(longkey), &res), PSKGW_EINVAL);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("k"), NULL, &g, NULL), PSKGW_EINVAL);

    o.name = "PSK"; /* upper case not allowed in a cache name */
    cr_assert_eq(pskgw_keycache_new(&o, &other), PSKGW_EINVAL);
    o = base_opts();
    o.domain = "a:b";
    cr_assert_eq(pskgw_keycache_new(&o, &other), PSKGW_EINVAL);
    o = base_opts();
    o.redis_host = "127.0.0.1"; /* without a KEK */
    cr_assert_eq(pskgw_keycache_new(&o, &other), PSKGW_EINVAL);
    o = base_opts();
    o.ttl_s = 0;
    cr_assert_eq(pskgw_keycache_new(&o, &other), PSKGW_EINVAL);
    o = base_opts();
    o.max_value_len = PSKGW_KEYCACHE_VALUE_MAX + 1;
    cr_assert_eq(pskgw_keycache_new(&o, &other), PSKGW_EINVAL);
    cr_assert_null(other);
    cr_assert(pskgw_keycache_status_transient(PSKGW_ETIMEOUT));
    cr_assert_not(pskgw_keycache_status_transient(PSKGW_EDENIED));
    cr_assert_not(pskgw_keycache_status_transient(PSKGW_ECANCELED));
}

/* Issue 16 §1: refusals live in their own bounded LRU: a flood of refused identities (an
 * attacker's random ones) never evicts a real device's key. */
Test(keycache, refusals_never_evict_a_value)
{
    pskgw_keycache_opts_t o = base_opts();
    pskgw_keycache_result_t res;
    got_t g = { 0 };
    char key[32];

    o.entries = 128;
    o.negative_entries = 64;
    reinit(&o);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("real-device"), on_result, &g, NULL), 0);
    cr_assert(fake_complete(&fb, K("real-device"), PSKGW_OK, "psk", 3));
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "random-%d", i);
        cr_assert_eq(pskgw_keycache_fetch(kc, K(key), on_result, &g, NULL), 0);
        cr_assert(fake_complete(&fb, K(key), i % 2 ? PSKGW_ENOTFOUND : PSKGW_EDENIED, NULL, 0));
        drain();
    }
    cr_assert_eq(g.calls, 301);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("real-device"), &res), 0, "the real key was evicted");
    cr_assert_eq(res.status, PSKGW_OK);
    cr_assert_not(res.stale);
    cr_assert_eq(stats().evictions, 0);
    cr_assert_eq(stats().entries, 1);
    cr_assert_eq(stats().negative_entries, 64);
    cr_assert_eq(stats().negative_evictions, 300 - 64);
    /* the newest refusals are still cached */
    cr_assert_eq(pskgw_keycache_lookup(kc, K("random-299"), &res), 0);
    cr_assert_eq(res.status, PSKGW_ENOTFOUND);
    /* a refused key that becomes valid moves to the values (and out of the refusals) */
    g_now += 5000; /* negative_ttl_s */
    cr_assert_eq(pskgw_keycache_fetch(kc, K("random-299"), on_result, &g, NULL), 0);
    cr_assert(fake_complete(&fb, K("random-299"), PSKGW_OK, "v", 1));
    drain();
    cr_assert_eq(stats().entries, 2);
    cr_assert_eq(pskgw_keycache_invalidate(kc, K("random-299")), 0);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("random-299"), &res), PSKGW_EAGAIN);
}

static int refuse_odd(void *arg, const uint8_t *key, size_t len)
{
    (void)key;
    (*(int *)arg)++;
    return len % 2 ? PSKGW_EINVAL : 0;
}

/* A key that key_check refuses is answered "not found" later, without a backend call, and is
 * not cached (nothing to evict with). */
Test(keycache, key_check_refuses_without_a_backend_call)
{
    pskgw_keycache_opts_t o = base_opts();
    pskgw_keycache_result_t res;
    got_t g = { 0 };
    int checks = 0;

    o.key_check = refuse_odd;
    o.key_check_arg = &checks;
    reinit(&o);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("odd"), on_result, &g, NULL), 0);
    cr_assert_eq(g.calls, 0, "called back from inside fetch");
    drain();
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.status, PSKGW_ENOTFOUND);
    cr_assert_eq(fb.calls, 0);
    cr_assert_eq(stats().refused_keys, 1);
    cr_assert_eq(stats().negative_entries, 0);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("odd"), &res), PSKGW_EAGAIN);
    cr_assert_eq(pskgw_keycache_fetch(kc, K("even"), on_result, &g, NULL), 0);
    cr_assert_eq(fb.calls, 1);
    cr_assert(fake_complete(&fb, K("even"), PSKGW_OK, "v", 1));
    drain();
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_eq(checks, 2);
    /* a cached key is not checked again */
    cr_assert_eq(pskgw_keycache_fetch(kc, K("even"), on_result, &g, NULL), 0);
    drain();
    cr_assert_eq(checks, 2);
}

static bool pending_for(const char *key)
{
    for (fake_call_t *c = fb.pending; c; c = c->next)
        if (c->key_len == strlen(key) && memcmp(c->key, key, c->key_len) == 0)
            return true;
    return false;
}

/* Issue 16 §1: while the service is known to be failing, a device whose key is stale gets it at
 * once: its result arrives while the background probe's backend call is still outstanding (the
 * call whose deadline it used to wait for); the probe's answer closes the breaker. */
Test(keycache, breaker_open_serves_stale_at_once_and_probes_in_the_background)
{
    pskgw_keycache_result_t res;
    got_t g = { 0 };
    got_t cold = { 0 };

    cr_assert_eq(pskgw_keycache_fetch(kc, K("known"), on_result, &g, NULL), 0);
    cr_assert(fake_complete(&fb, K("known"), PSKGW_OK, "old", 3));
    drain();
    g_now += 11000; /* past ttl (10 s), inside stale (100 s) */
    /* three other devices' lookups fail transiently: the breaker opens */
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof(key), "other-%d", i);
        cr_assert_eq(stats().breaker_open, 0);
        cr_assert_eq(pskgw_keycache_fetch(kc, K(key), on_result, &cold, NULL), 0);
        cr_assert(fake_complete(&fb, K(key), PSKGW_ETIMEOUT, NULL, 0));
        drain();
    }
    cr_assert_eq(stats().breaker_open, 1);
    cr_assert_eq(stats().breaker_trips, 1);

    g_now += 1000; /* breaker_probe_ms after the last failure: a probe is due */
    memset(&g, 0, sizeof(g));
    cr_assert_eq(pskgw_keycache_fetch(kc, K("known"), on_result, &g, NULL), 0);
    cr_assert(pending_for("known"), "no background probe");
    drain();
    cr_assert_eq(g.calls, 1, "the known device waited for the backend");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert(g.stale);
    cr_assert(memcmp(g.value, "old", 3) == 0);
    cr_assert(pending_for("known"), "served only after the backend call ended");
    cr_assert_eq(stats().stale_at_once, 1);

    /* a device without a stale value still waits for the backend */
    memset(&cold, 0, sizeof(cold));
    cr_assert_eq(pskgw_keycache_fetch(kc, K("new-device"), on_result, &cold, NULL), 0);
    drain();
    cr_assert_eq(cold.calls, 0);
    cr_assert(fake_complete(&fb, K("new-device"), PSKGW_OK, "n", 1));
    drain();
    cr_assert_eq(cold.status, PSKGW_OK);
    cr_assert_eq(stats().breaker_open, 0, "an answer closes the breaker");

    /* the probe answers: the entry is fresh again */
    cr_assert(fake_complete(&fb, K("known"), PSKGW_OK, "new", 3));
    drain();
    cr_assert_eq(pskgw_keycache_lookup(kc, K("known"), &res), 0);
    cr_assert_not(res.stale);
    cr_assert(memcmp(res.value, "new", 3) == 0);
}

/* While open, probes are rate-limited: more stale fetches within breaker_probe_ms start none. */
Test(keycache, breaker_probes_at_most_once_per_interval)
{
    got_t g = { 0 };
    const char *keys[] = { "k0", "k1", "k2", "k3" };

    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pskgw_keycache_fetch(kc, K(keys[i]), on_result, &g, NULL), 0);
        cr_assert(fake_complete(&fb, K(keys[i]), PSKGW_OK, "v", 1));
    }
    drain();
    g_now += 11000;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pskgw_keycache_fetch(kc, K(keys[i]), on_result, &g, NULL), 0);
        cr_assert(fake_complete(&fb, K(keys[i]), PSKGW_EUNAVAIL, NULL, 0));
        drain();
    }
    cr_assert_eq(stats().breaker_open, 1);
    g_now += 1000; /* past the hold-off of k0..k2 and the probe interval */
    memset(&g, 0, sizeof(g));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pskgw_keycache_fetch(kc, K(keys[i]), on_result, &g, NULL), 0);
    drain();
    cr_assert_eq(g.calls, 4);
    cr_assert_eq(fb.npending, 1, "one probe, not one call per device");
    fake_complete_all(&fb, PSKGW_EUNAVAIL);
    drain();
    cr_assert_eq(stats().breaker_open, 1);
}

/* ---- the decode hook: values kept decoded with their entry (issue 13) ---- */

typedef struct {
    uint32_t len;
    char text[48];
} dec_t;

static int decode_calls;

/* A value starting with 'x' does not decode. */
static int test_decode(void *arg, const uint8_t *value, size_t len, void *out)
{
    dec_t *d = out;

    cr_assert_eq(arg, &decode_calls);
    decode_calls++;
    if (len == 0 || value[0] == 'x' || len >= sizeof(d->text))
        return PSKGW_EPARSE;
    d->len = (uint32_t)len;
    memcpy(d->text, value, len);
    d->text[len] = '\0';
    return 0;
}

static void reinit_decoding(void)
{
    pskgw_keycache_opts_t o = base_opts();

    o.decode = test_decode;
    o.decode_arg = &decode_calls;
    o.decoded_size = sizeof(dec_t);
    decode_calls = 0;
    reinit(&o);
}

/* Fetch key and let the backend answer status (value); the result must be `want`. */
static void fill_want(const char *key, int status, const char *value, int want)
{
    got_t g = { 0 };

    cr_assert_eq(pskgw_keycache_fetch(kc, (const uint8_t *)key, strlen(key), on_result, &g, NULL),
                 0);
    cr_assert(fake_complete(&fb, (const uint8_t *)key, strlen(key), status, value,
                            value ? strlen(value) : 0));
    drain();
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.status, want);
}

static void fill(const char *key, int status, const char *value)
{
    fill_want(key, status, value, status);
}

/* A value is decoded once, when it enters layer 1; every lookup hit hands out that struct (no
 * decode per lookup). A value that does not decode is still served, without a struct; a refusal
 * has none; without a hook there is none either. */
Test(keycache, decode_hook_keeps_values_decoded)
{
    pskgw_keycache_result_t res;

    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev0"), &res), PSKGW_EAGAIN);
    fill("dev0", PSKGW_OK, "plain");
    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev0"), &res), 0);
    cr_assert_null(res.decoded, "no hook: no decoded struct");

    reinit_decoding();
    fill("dev1", PSKGW_OK, "psk-1");
    cr_assert_eq(decode_calls, 1);
    for (int i = 0; i < 5; i++) {
        const dec_t *d;

        cr_assert_eq(pskgw_keycache_lookup(kc, K("dev1"), &res), 0);
        cr_assert_eq(res.status, PSKGW_OK);
        d = res.decoded;
        cr_assert_not_null(d);
        cr_assert_eq(d->len, 5);
        cr_assert_str_eq(d->text, "psk-1");
        cr_assert_eq((uintptr_t)d % 16, 0, "the struct is aligned");
    }
    cr_assert_eq(decode_calls, 1, "decoded again on a hit");

    fill("dev2", PSKGW_OK, "xbad");
    cr_assert_eq(decode_calls, 2);
    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev2"), &res), 0);
    cr_assert_eq(res.status, PSKGW_OK);
    cr_assert_eq(res.value_len, 4);
    cr_assert_null(res.decoded);

    fill("dev3", PSKGW_EDENIED, NULL);
    cr_assert_eq(decode_calls, 2, "a refusal is not decoded");
    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev3"), &res), 0);
    cr_assert_eq(res.status, PSKGW_EDENIED);
    cr_assert_null(res.decoded);

    /* stale (served during the hold-off after a failed refresh): the struct comes along */
    g_now += 10000;                                    /* ttl_s = 10 */
    fill_want("dev1", PSKGW_EUNAVAIL, NULL, PSKGW_OK); /* served stale */
    cr_assert_eq(pskgw_keycache_lookup(kc, K("dev1"), &res), 0);
    cr_assert(res.stale);
    cr_assert_not_null(res.decoded);
    cr_assert_str_eq(((const dec_t *)res.decoded)->text, "psk-1");
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* The decoded struct is a secret like the value: it lives in the entry's don't-dump block and
 * is wiped when the entry goes (invalidation, replacement by a new value, eviction, close).
 * The struct's old address is read after the entry went: the arena keeps its blocks mapped. */
Test(keycache, decoded_struct_wiped_when_the_entry_goes)
{
    pskgw_keycache_result_t res;
    const void *p[4];
    pskgw_keycache_opts_t o = base_opts();

    o.decode = test_decode;
    o.decode_arg = &decode_calls;
    o.decoded_size = sizeof(dec_t);
    o.entries = 2;
    decode_calls = 0;
    reinit(&o);

    fill("inval", PSKGW_OK, "secret-a");
    cr_assert_eq(pskgw_keycache_lookup(kc, K("inval"), &res), 0);
    p[0] = res.decoded;
    cr_assert_not(all_zero(p[0], sizeof(dec_t)));
    cr_assert_eq(pskgw_keycache_invalidate(kc, K("inval")), 0);
    cr_assert(all_zero(p[0], sizeof(dec_t)), "not wiped at invalidation");

    fill("repl", PSKGW_OK, "secret-b");
    cr_assert_eq(pskgw_keycache_lookup(kc, K("repl"), &res), 0);
    p[1] = res.decoded;
    cr_assert(pskgw_keycache_invalidate(kc, K("nothing")) == 0);
    g_now += 10000; /* stale: the next fetch refreshes it */
    fill("repl", PSKGW_OK, "secret-c");
    cr_assert_eq(pskgw_keycache_lookup(kc, K("repl"), &res), 0);
    cr_assert_str_eq(((const dec_t *)res.decoded)->text, "secret-c");
    if (res.decoded != p[1])
        cr_assert(all_zero(p[1], sizeof(dec_t)), "not wiped at replacement");

    fill("ev1", PSKGW_OK, "secret-d");
    cr_assert_eq(pskgw_keycache_lookup(kc, K("ev1"), &res), 0);
    p[2] = res.decoded;
    fill("ev2", PSKGW_OK, "secret-e"); /* entries = 2: "repl" is the least recent */
    cr_assert_eq(pskgw_keycache_lookup(kc, K("ev2"), &res), 0);
    fill("ev3", PSKGW_OK, "secret-f"); /* evicts "ev1" */
    cr_assert_eq(pskgw_keycache_lookup(kc, K("ev1"), &res), PSKGW_EAGAIN);
    cr_assert(all_zero(p[2], sizeof(dec_t)) || ((const dec_t *)p[2])->len != 8 ||
                  strcmp(((const dec_t *)p[2])->text, "secret-d") != 0,
              "not wiped at eviction");

    cr_assert_eq(pskgw_keycache_lookup(kc, K("ev3"), &res), 0);
    p[3] = res.decoded;
    pskgw_keycache_close(kc, on_closed);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert(closed);
    kc = NULL;
    cr_assert(all_zero(p[3], sizeof(dec_t)), "not wiped at close");
}
