/* The key cache with a Redis host name whose lookup is slow (issue 18): the name is resolved on
 * the thread pool, so the loop keeps serving (timers fire, a lookup goes to the backend and is
 * answered) while the lookup hangs; once it finishes the cache connects and uses Redis. Before
 * redisconn, keycache/redis.c handed the name to redisAsyncConnect, whose getaddrinfo() ran on
 * the loop thread at every (re)connect: this test then failed on the loop-thread count. */
#include "common/err.h"
#include "fake_backend.h"
#include "gai_slow.h"
#include "keycache/keycache.h"
#include "loopwait.h"
#include "proc.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <string.h>
#include <uv.h>

#define SLOW_NAME "redis.slow-dns.test"
#define K(s)      (const uint8_t *)(s), strlen(s)

static const uint8_t kek[32] = { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static pskgw_test_proc_t redis = { -1, -1 };
static int redis_port;
static uv_loop_t loop;
static uv_timer_t tick;
static unsigned ticks;
static pskgw_keycache_t *open_kc; /* closed by teardown when a test failed half-way */

static void tick_cb(uv_timer_t *t)
{
    (void)t;
    ticks++;
}

static void setup(void)
{
    cr_assert_eq(pskgw_test_redis_start(&redis, &redis_port), 0, "redis-server did not start");
    cr_assert_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
}

static void teardown(void)
{
    gai_slow_release(); /* a failed test must not leave a lookup hanging */
    if (open_kc)
        pskgw_keycache_close(open_kc, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    if (redis.pid > 0)
        pskgw_test_stop(&redis, SIGTERM, 5000);
}

TestSuite(keycache_slow_dns, .init = setup, .fini = teardown, .timeout = 100);

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Run the loop until cond(arg) (loopwait.h). */
static void run_until(bool (*cond)(void *), void *arg, const char *what)
{
    hwait_until(&loop, cond, arg, what);
}

static pskgw_keycache_stats_t st(pskgw_keycache_t *kc)
{
    pskgw_keycache_stats_t s;

    pskgw_keycache_stats(kc, &s);
    return s;
}

static bool lookup_started(void *arg)
{
    (void)arg;
    return gai_slow_blocked() > 0 || gai_slow_loop_thread_lookups() > 0;
}

static bool ticked(void *until)
{
    return ticks >= *(unsigned *)until;
}

static bool connected(void *kc)
{
    return st(kc).redis_connected == 1;
}

typedef struct {
    int calls;
    int status;
    uint8_t source;
} got_t;

static void on_result(void *arg, const pskgw_keycache_result_t *res)
{
    got_t *g = arg;

    g->calls++;
    g->status = res->status;
    g->source = res->source;
}

static got_t fetch_answer(pskgw_keycache_t *kc, fake_backend_t *fb, const char *key)
{
    got_t g = { 0 };
    uint64_t deadline = mono_ms() + 60000; /* a guard */

    cr_assert_eq(pskgw_keycache_fetch(kc, K(key), on_result, &g, NULL), 0);
    while (g.calls == 0) {
        cr_assert(mono_ms() < deadline, "no answer for %s", key);
        if (fb->npending > 0)
            cr_assert_eq(fake_complete_all(fb, PSKGW_OK), 1);
        else
            uv_run(&loop, UV_RUN_ONCE);
    }
    return g;
}

static bool in_redis(const char *key)
{
    redisContext *c = redisConnect("127.0.0.1", redis_port);
    redisReply *r;
    bool yes;

    cr_assert(c && !c->err, "sync redis client");
    r = redisCommand(c, "EXISTS %s", key);
    yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    redisFree(c);
    return yes;
}

static bool key_in_redis(void *key)
{
    return in_redis(key);
}

static int closed;

static void on_closed(pskgw_keycache_t *kc)
{
    (void)kc;
    closed++;
}

static bool is_closed(void *arg)
{
    (void)arg;
    return closed == 1;
}

Test(keycache_slow_dns, slow_redis_host_lookup_never_stalls_the_loop)
{
    pskgw_keycache_opts_t o;
    pskgw_keycache_t *kc = NULL;
    fake_backend_t fb;
    unsigned until;
    got_t g;

    memset(&fb, 0, sizeof(fb));
    gai_slow_watch(SLOW_NAME);
    pskgw_keycache_opts_init(&o);
    o.loop = &loop;
    o.name = "psk";
    o.domain = "example.com";
    fake_backend_init(&fb, &o.backend);
    o.redis_host = SLOW_NAME;
    o.redis_port = (uint16_t)redis_port;
    o.redis_timeout_ms = 2000;
    o.redis_backoff_min_ms = 20;
    o.redis_backoff_max_ms = 200;
    o.kek = kek;
    o.kek_id = 1;
    cr_assert_eq(pskgw_keycache_new(&o, &kc), 0);
    open_kc = kc;

    run_until(lookup_started, NULL, "the redis host lookup");
    cr_assert_eq(gai_slow_loop_thread_lookups(), 0,
                 "the redis host name was resolved on the loop thread");
    cr_assert_eq(gai_slow_blocked(), 1);

    /* The lookup hangs; the loop does not: timers fire, and a fetch goes to the backend (Redis is
     * not connected yet) and is answered. */
    until = ticks + 5;
    run_until(ticked, &until, "timer ticks during the lookup");
    g = fetch_answer(kc, &fb, "dev01");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert_eq(st(kc).redis_connected, 0);
    cr_assert_geq(st(kc).redis_skipped, 1);
    cr_assert_eq(gai_slow_blocked(), 1, "the lookup should still be hanging");

    /* The lookup finishes: the cache connects to the address it got and uses Redis. */
    gai_slow_release();
    run_until(connected, kc, "the redis connection");
    g = fetch_answer(kc, &fb, "dev02");
    cr_assert_eq(g.status, PSKGW_OK);
    run_until(key_in_redis, "pskgw:example.com:psk:6465763032", "the value in redis");
    cr_assert_eq(gai_slow_loop_thread_lookups(), 0);

    open_kc = NULL;
    pskgw_keycache_close(kc, on_closed);
    run_until(is_closed, NULL, "close");
}
