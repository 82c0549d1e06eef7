/* The key cache against a real redis-server started by the test on a reserved loopback port
 * (reserved for the whole test, so that a restart finds it again): shared
 * layer 2 between two cache instances (two gateways) and between two processes, encrypted
 * values, negative entries, wrong KEK / corrupted values, KEK rotation, Redis stopped and
 * restarted, a hung Redis, and closing with Redis commands in flight. */
#define _GNU_SOURCE
#include "common/err.h"
#include "fake_backend.h"
#include "keycache/keycache.h"
#include "proc.h"
#include "redistest.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

static const uint8_t kek1[32] = { 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b,
                                  0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76,
                                  0x77, 0x78, 0x79, 0x7a, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35 };
static const uint8_t kek2[32] = { 0xee, 0xdd, 0xcc };

static pskgw_test_proc_t redis;
static int redis_port;
static int redis_hold = -1; /* the reservation of redis_port, for the whole test */
static uv_loop_t loop;
static uv_timer_t tick; /* wakes uv_run(UV_RUN_ONCE) so run_until() can check its condition */
static int closed;
static uint32_t g_ttl_s = 60;  /* ttl_s of the caches make_cache creates */
static const char *g_password; /* their redis_password */
static int g_db;               /* their redis_db */
static bool g_broadcast;       /* their broadcast (on_remote: remote_seen) */

#define K(s) (const uint8_t *)(s), strlen(s)

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void setup(void)
{
    closed = 0;
    g_ttl_s = 60;
    g_password = NULL;
    g_db = 0;
    redis_hold = pskgw_test_redis_start_held(&redis, &redis_port);
    cr_assert_geq(redis_hold, 0, "redis-server did not start");
    cr_assert_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
}

/* Caches not yet closed: finish() closes them when a test failed half-way (so the loop and
 * redis-server still end). */
static pskgw_keycache_t *open_caches[8];

static void track(pskgw_keycache_t *kc, bool open)
{
    for (size_t i = 0; i < 8; i++) {
        if (open ? open_caches[i] == NULL : open_caches[i] == kc) {
            open_caches[i] = open ? kc : NULL;
            return;
        }
    }
    cr_assert_fail("too many caches");
}

static void finish(void)
{
    for (size_t i = 0; i < 8; i++) {
        if (open_caches[i]) {
            pskgw_keycache_close(open_caches[i], NULL);
            open_caches[i] = NULL;
        }
    }
    uv_close((uv_handle_t *)&tick, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    if (redis.pid > 0)
        pskgw_test_stop(&redis, SIGTERM, 5000);
    if (redis_hold >= 0)
        close(redis_hold);
    redis_hold = -1;
}

TestSuite(keycache_redis, .init = setup, .fini = finish, .timeout = 50);

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Run the loop until cond(arg) holds; fails the test after timeout_ms, a guard against hanging
 * only: raised to at least 30 s so that a loaded machine cannot fail a wait (the suite's 50 s
 * timeout stays above it). */
static void run_until(bool (*cond)(void *), void *arg, int timeout_ms, const char *what)
{
    uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms < 30000 ? 30000 : timeout_ms);

    while (!cond(arg)) {
        cr_assert(mono_ms() < deadline, "timed out waiting for %s", what);
        uv_run(&loop, UV_RUN_ONCE);
    }
}

static pskgw_keycache_stats_t st(pskgw_keycache_t *kc)
{
    pskgw_keycache_stats_t s;

    pskgw_keycache_stats(kc, &s);
    return s;
}

static bool is_connected(void *kc)
{
    return st(kc).redis_connected == 1;
}

static bool is_disconnected(void *kc)
{
    return st(kc).redis_connected == 0;
}

typedef struct {
    int calls;
    int status;
    bool stale;
    uint8_t source;
    size_t len;
    uint8_t value[64];
} got_t;

static void on_result(void *arg, const pskgw_keycache_result_t *res)
{
    got_t *g = arg;

    g->calls++;
    g->status = res->status;
    g->stale = res->stale;
    g->source = res->source;
    g->len = res->value_len;
    if (res->status == PSKGW_OK && res->value_len <= sizeof(g->value))
        memcpy(g->value, res->value, res->value_len);
}

static bool got_one(void *g)
{
    return ((got_t *)g)->calls >= 1;
}

static void on_closed(pskgw_keycache_t *kc)
{
    (void)kc;
    closed++;
}

static bool closed_n(void *n)
{
    return closed >= *(int *)n;
}

/* Wall clock with a per-cache skew (clock_arg points at it): a cache "in the future" sees the
 * expiry sealed into Redis values pass. */
static uint64_t skewed_wall(void *arg)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + *(uint64_t *)arg;
}

static uint64_t no_skew;

/* Monotonic clock with the same per-cache skew. */
static uint64_t skewed_mono(void *arg)
{
    return uv_hrtime() / 1000000 + *(uint64_t *)arg;
}

static pskgw_keycache_t *make_cache_skewed(fake_backend_t *fb, const uint8_t *kek, uint8_t kek_id,
                                           const uint8_t *prev, uint8_t prev_id, int port,
                                           uint64_t *skew);

/* on_remote of the caches made with g_broadcast: the last op and key, per cache (by backend). */
static struct {
    const fake_backend_t *fb;
    int calls;
    pskgw_keycache_op_t op;
    char key[32];
} remote_seen[2];

static void on_remote(void *arg, pskgw_keycache_op_t op, const uint8_t *key, size_t len)
{
    for (int i = 0; i < 2; i++) {
        if (remote_seen[i].fb == NULL || remote_seen[i].fb == arg) {
            remote_seen[i].fb = arg;
            remote_seen[i].calls++;
            remote_seen[i].op = op;
            snprintf(remote_seen[i].key, sizeof(remote_seen[i].key), "%.*s", (int)len,
                     (const char *)key);
            return;
        }
    }
}

static pskgw_keycache_t *make_cache(fake_backend_t *fb, const uint8_t *kek, uint8_t kek_id,
                                    const uint8_t *prev, uint8_t prev_id, int port)
{
    return make_cache_skewed(fb, kek, kek_id, prev, prev_id, port, &no_skew);
}

static pskgw_keycache_t *make_cache_skewed(fake_backend_t *fb, const uint8_t *kek, uint8_t kek_id,
                                           const uint8_t *prev, uint8_t prev_id, int port,
                                           uint64_t *skew)
{
    pskgw_keycache_opts_t o;
    pskgw_keycache_t *kc = NULL;

    pskgw_keycache_opts_init(&o);
    o.loop = &loop;
    o.name = "psk";
    o.domain = "example.com";
    fake_backend_init(fb, &o.backend);
    o.ttl_s = g_ttl_s;
    o.stale_s = 600;
    o.negative_ttl_s = 30;
    o.redis_host = "127.0.0.1";
    o.redis_port = (uint16_t)port;
    o.redis_timeout_ms = 300;
    o.redis_backoff_min_ms = 20;
    o.redis_backoff_max_ms = 200;
    o.kek = kek;
    o.kek_id = kek_id;
    o.kek_prev = prev;
    o.kek_prev_id = prev_id;
    o.redis_password = g_password;
    o.redis_db = g_db;
    o.wall_ms = skewed_wall;
    o.now_ms = skewed_mono;
    o.clock_arg = skew;
    o.broadcast = g_broadcast;
    o.on_remote = on_remote;
    o.remote_arg = fb;
    cr_assert_eq(pskgw_keycache_new(&o, &kc), 0);
    track(kc, true);
    return kc;
}

static void close_caches(pskgw_keycache_t *a, pskgw_keycache_t *b)
{
    int want = closed + (a != NULL) + (b != NULL);

    if (a) {
        track(a, false);
        pskgw_keycache_close(a, on_closed);
    }
    if (b) {
        track(b, false);
        pskgw_keycache_close(b, on_closed);
    }
    run_until(closed_n, &want, 5000, "close");
}

/* A synchronous client for the test's own checks (blocking is fine here, not in the cache). */
static redisContext *sync_client(void)
{
    redisContext *c = redisConnect("127.0.0.1", redis_port);

    cr_assert(c && !c->err, "sync redis client");
    return c;
}

static const char *rkey_dev1 = "pskgw:example.com:psk:6465763031"; /* hex("dev01") */

/* Wait until Redis holds key (the cache's SET is fire-and-forget). */
static void wait_redis_key(const char *key)
{
    redisContext *c = sync_client();
    uint64_t deadline = mono_ms() + 30000; /* a guard */

    for (;;) {
        redisReply *r = redisCommand(c, "EXISTS %s", key);
        long long n = r ? r->integer : 0;
        freeReplyObject(r);
        if (n == 1)
            break;
        cr_assert(mono_ms() < deadline, "key %s never written to redis", key);
        uv_run(&loop, UV_RUN_ONCE);
    }
    redisFree(c);
}

static bool has_pending(void *fb)
{
    return ((fake_backend_t *)fb)->npending > 0;
}

/* Fetch key through kc; when the backend is asked, answer (status, value). Returns the result. */
static got_t fetch_answer(pskgw_keycache_t *kc, fake_backend_t *fb, const char *key, int status,
                          const char *value)
{
    got_t g = { 0 };

    cr_assert_eq(pskgw_keycache_fetch(kc, K(key), on_result, &g, NULL), 0);
    while (g.calls == 0) {
        if (fb->npending > 0)
            cr_assert(fake_complete(fb, K(key), status, value, value ? strlen(value) : 0));
        else
            uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_eq(g.calls, 1);
    return g;
}

Test(keycache_redis, second_instance_gets_value_from_redis_without_backend_call)
{
    fake_backend_t fa, fb;
    pskgw_keycache_t *a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    pskgw_keycache_t *b = make_cache(&fb, kek1, 1, NULL, 0, redis_port);
    redisContext *c;
    redisReply *r;
    got_t g;

    run_until(is_connected, a, 5000, "redis connection a");
    run_until(is_connected, b, 5000, "redis connection b");
    g = fetch_answer(a, &fa, "dev01", PSKGW_OK, "psk-of-dev01");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert_eq(fa.calls, 1);
    wait_redis_key(rkey_dev1);

    /* What Redis holds: sealed (no PSK in clear), format 1, KEK id 1, TTL = ttl + stale. */
    c = sync_client();
    r = redisCommand(c, "GET %s", rkey_dev1);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_eq((size_t)r->len, pskgw_keycache_codec_sealed_len(12));
    cr_assert_eq((uint8_t)r->str[0], 1);
    cr_assert_eq((uint8_t)r->str[1], 1);
    cr_assert_null(memmem(r->str, r->len, "psk-of", 6));
    freeReplyObject(r);
    r = redisCommand(c, "PTTL %s", rkey_dev1);
    cr_assert(r->integer > 600000 && r->integer <= 660000, "pttl %lld", r->integer);
    freeReplyObject(r);
    redisFree(c);

    g = fetch_answer(b, &fb, "dev01", PSKGW_OK, "wrong");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_REDIS);
    cr_assert_eq(g.len, 12);
    cr_assert(memcmp(g.value, "psk-of-dev01", 12) == 0);
    cr_assert_eq(fb.calls, 0, "second gateway asked the service");
    cr_assert_eq(st(b).hits_redis, 1);
    cr_assert_eq(st(b).misses, 1);

    /* Now in b's layer 1 too. */
    pskgw_keycache_result_t res;
    cr_assert_eq(pskgw_keycache_lookup(b, K("dev01"), &res), 0);
    close_caches(a, b);
}

Test(keycache_redis, second_process_gets_value_from_redis)
{
    fake_backend_t fa;
    pskgw_keycache_t *a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    pid_t pid;
    int status = 0;

    run_until(is_connected, a, 5000, "redis connection");
    (void)fetch_answer(a, &fa, "dev01", PSKGW_OK, "psk-of-dev01");
    wait_redis_key(rkey_dev1);
    close_caches(a, NULL);

    fflush(NULL);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* The "second gateway": its own loop and cache; exit code says what it saw. */
        uv_loop_t l2;
        fake_backend_t f2;
        pskgw_keycache_opts_t o;
        pskgw_keycache_t *kc2 = NULL;
        got_t g = { 0 };
        uint64_t deadline = mono_ms() + 30000; /* a guard */
        int code = 0;

        if (uv_loop_init(&l2) != 0)
            _exit(10);
        pskgw_keycache_opts_init(&o);
        o.loop = &l2;
        o.name = "psk";
        o.domain = "example.com";
        memset(&f2, 0, sizeof(f2));
        o.backend.fetch = fake_fetch;
        o.backend.cancel = fake_cancel;
        o.backend.ctx = &f2;
        o.redis_host = "127.0.0.1";
        o.redis_port = (uint16_t)redis_port;
        o.kek = kek1;
        o.kek_id = 1;
        if (pskgw_keycache_new(&o, &kc2) != 0)
            _exit(11);
        while (st(kc2).redis_connected == 0 && mono_ms() < deadline)
            uv_run(&l2, UV_RUN_ONCE);
        if (pskgw_keycache_fetch(kc2, K("dev01"), on_result, &g, NULL) != 0)
            _exit(12);
        while (g.calls == 0 && f2.npending == 0 && mono_ms() < deadline)
            uv_run(&l2, UV_RUN_ONCE);
        if (g.calls != 1)
            code = 13;
        else if (g.status != PSKGW_OK || g.source != PSKGW_KEYCACHE_SRC_REDIS || g.len != 12 ||
                 memcmp(g.value, "psk-of-dev01", 12) != 0)
            code = 14;
        else if (f2.calls != 0)
            code = 15;
        if (f2.npending)
            fake_complete_all(&f2, PSKGW_EUNAVAIL);
        pskgw_keycache_close(kc2, NULL);
        uv_run(&l2, UV_RUN_DEFAULT);
        if (uv_loop_close(&l2) != 0 && code == 0)
            code = 16;
        _exit(code);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "child process: code %d", WEXITSTATUS(status));
}

Test(keycache_redis, negative_entry_in_redis_seen_by_second_instance)
{
    fake_backend_t fa, fb;
    pskgw_keycache_t *a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    pskgw_keycache_t *b = make_cache(&fb, kek1, 1, NULL, 0, redis_port);
    got_t g;

    run_until(is_connected, a, 5000, "redis connection a");
    run_until(is_connected, b, 5000, "redis connection b");
    g = fetch_answer(a, &fa, "dev01", PSKGW_EDENIED, NULL);
    cr_assert_eq(g.status, PSKGW_EDENIED);
    g = fetch_answer(a, &fa, "ghost", PSKGW_ENOTFOUND, NULL);
    cr_assert_eq(g.status, PSKGW_ENOTFOUND);
    wait_redis_key(rkey_dev1);
    wait_redis_key("pskgw:example.com:psk:67686f7374");

    g = fetch_answer(b, &fb, "dev01", PSKGW_OK, "x");
    cr_assert_eq(g.status, PSKGW_EDENIED);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_REDIS);
    g = fetch_answer(b, &fb, "ghost", PSKGW_OK, "x");
    cr_assert_eq(g.status, PSKGW_ENOTFOUND);
    cr_assert_eq(fb.calls, 0);
    cr_assert_eq(st(b).negative_hits, 2);

    /* The negative entry's Redis TTL is negative_ttl_s. */
    redisContext *c = sync_client();
    redisReply *r = redisCommand(c, "PTTL %s", rkey_dev1);
    cr_assert(r->integer > 20000 && r->integer <= 30000, "pttl %lld", r->integer);
    freeReplyObject(r);
    redisFree(c);
    close_caches(a, b);
}

Test(keycache_redis, wrong_kek_or_corrupted_value_is_a_miss_and_refetch)
{
    fake_backend_t fa, fb, fc;
    pskgw_keycache_t *a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    pskgw_keycache_t *b = make_cache(&fb, kek2, 1, NULL, 0, redis_port);
    got_t g;

    run_until(is_connected, a, 5000, "redis connection a");
    run_until(is_connected, b, 5000, "redis connection b");
    (void)fetch_answer(a, &fa, "dev01", PSKGW_OK, "psk-of-dev01");
    wait_redis_key(rkey_dev1);

    g = fetch_answer(b, &fb, "dev01", PSKGW_OK, "psk-from-service");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert_eq(fb.calls, 1);
    cr_assert_eq(st(b).decode_failures, 1);

    /* Garbage and a truncated value in Redis: misses, counted, never a crash. */
    redisContext *c = sync_client();
    redisReply *r =
        redisCommand(c, "SET %s %b", "pskgw:example.com:psk:6465763032", "garbage", (size_t)7);
    freeReplyObject(r);
    r = redisCommand(c, "GET %s", rkey_dev1);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    redisReply *t = redisCommand(c, "SET %s %b", "pskgw:example.com:psk:6465763033", r->str,
                                 (size_t)r->len - 1);
    freeReplyObject(t);
    freeReplyObject(r);
    redisFree(c);
    g = fetch_answer(a, &fa, "dev02", PSKGW_OK, "fresh-2");
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    g = fetch_answer(a, &fa, "dev03", PSKGW_OK, "fresh-3");
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert_eq(st(a).decode_failures, 2);

    /* KEK rotation: a reader with a new KEK (id 2) and the old one as previous (id 1). The value
     * written by b under kek2/id 1 is not readable, the one written by a under kek1 is. */
    close_caches(b, NULL);
    wait_redis_key("pskgw:example.com:psk:6465763033");
    pskgw_keycache_t *rot = make_cache(&fc, kek2, 2, kek1, 1, redis_port);
    run_until(is_connected, rot, 5000, "redis connection rot");
    g = fetch_answer(rot, &fc, "dev03", PSKGW_OK, "from-service");
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_REDIS);
    cr_assert(memcmp(g.value, "fresh-3", 7) == 0);
    cr_assert_eq(fc.calls, 0);
    close_caches(a, rot);
}

/* redis-server again on redis_port, still reserved by redis_hold (a restart): 0 once it is the
 * process that listens there, -1 otherwise. */
static int restart_redis(pskgw_test_proc_t *p)
{
    char portbuf[16];
    char *argv[] = {
        "/usr/bin/redis-server", "--port", portbuf, "--bind", "127.0.0.1",  "--save",  "",
        "--appendonly",          "no",     "--dir", "/tmp",   "--loglevel", "warning", NULL
    };

    snprintf(portbuf, sizeof(portbuf), "%d", redis_port);
    return pskgw_test_spawn_on_reserved(p, argv, redis_hold, redis_port, 30000);
}

static bool reconnected(void *kc)
{
    pskgw_keycache_stats_t s = st(kc);

    return s.redis_connected == 1 && s.redis_connects >= 2;
}

static uint64_t errors_target;

static bool errors_reached(void *kc)
{
    return st(kc).redis_errors >= errors_target;
}

Test(keycache_redis, redis_stopped_then_restarted_on_the_same_port)
{
    fake_backend_t fa;
    pskgw_keycache_t *a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    pskgw_keycache_result_t res;
    got_t g;
    char k[16];

    run_until(is_connected, a, 5000, "redis connection");
    for (int i = 0; i < 5; i++) {
        snprintf(k, sizeof(k), "known%d", i);
        g = fetch_answer(a, &fa, k, PSKGW_OK, "psk-known");
        cr_assert_eq(g.status, PSKGW_OK);
    }
    cr_assert_eq(fa.calls, 5);

    /* The port stays reserved by redis_hold, a socket that never listens: the cache's reconnect
     * attempts are refused, and no other process can take the port before the restart. */
    pskgw_test_stop(&redis, SIGTERM, 30000);
    run_until(is_disconnected, a, 30000, "the cache to notice redis is gone");
    cr_assert_geq(st(a).redis_disconnects, 1);

    /* Known identities keep resolving from layer 1, new ones through the backend. */
    for (int i = 0; i < 5; i++) {
        snprintf(k, sizeof(k), "known%d", i);
        cr_assert_eq(pskgw_keycache_lookup(a, K(k), &res), 0);
        g = fetch_answer(a, &fa, k, PSKGW_EUNAVAIL, NULL);
        cr_assert_eq(g.status, PSKGW_OK);
        cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_L1);
    }
    g = fetch_answer(a, &fa, "newcomer", PSKGW_OK, "psk-new");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert_geq(st(a).redis_skipped, 1);
    cr_assert_eq(fa.calls, 6);
    /* Two reconnect attempts fail (refused by the held port), counted as errors. */
    errors_target = st(a).redis_errors + 2;
    run_until(errors_reached, a, 30000, "two failed reconnect attempts");
    cr_assert_eq(st(a).redis_connects, 1);
    cr_assert_eq(st(a).redis_connected, 0);

    cr_assert_eq(restart_redis(&redis), 0, "redis restart on port %d", redis_port);
    /* the backoff is capped at 200 ms: the reconnect comes; the deadline only guards */
    run_until(reconnected, a, 30000, "reconnect");
    g = fetch_answer(a, &fa, "after", PSKGW_OK, "psk-after");
    cr_assert_eq(g.status, PSKGW_OK);
    wait_redis_key("pskgw:example.com:psk:6166746572"); /* layer 2 used again */
    close_caches(a, NULL);
}

Test(keycache_redis, hung_redis_times_out_and_backend_answers)
{
    fake_backend_t fa;
    pskgw_keycache_t *a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    got_t g = { 0 };
    uint64_t t0;

    run_until(is_connected, a, 5000, "redis connection");
    kill(redis.pid, SIGSTOP);
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    cr_assert_eq(pskgw_keycache_fetch(a, K("dev01"), on_result, &g, NULL), 0);
    run_until(has_pending, &fa, 30000, "backend call after the redis reply timeout");
    /* a lower bound of loop time (the 300 ms reply timeout cannot end early; load only delays) */
    cr_assert_geq(uv_now(&loop) - t0, 250, "did not wait for the reply timeout");
    cr_assert(fake_complete(&fa, K("dev01"), PSKGW_OK, "psk", 3));
    run_until(got_one, &g, 1000, "result");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_geq(st(a).redis_errors, 1);
    kill(redis.pid, SIGCONT);
    run_until(reconnected, a, 5000, "reconnect after the hang");
    /* Redis works again: a new entry reaches it (the connection made while it was stopped may
     * time out once more first; the fetch is answered either way). */
    memset(&g, 0, sizeof(g));
    cr_assert_eq(pskgw_keycache_fetch(a, K("after"), on_result, &g, NULL), 0);
    run_until(has_pending, &fa, 3000, "backend call");
    cr_assert(fake_complete(&fa, K("after"), PSKGW_OK, "psk2", 4));
    run_until(got_one, &g, 1000, "result");
    run_until(is_connected, a, 5000, "connected");
    cr_assert_eq(pskgw_keycache_invalidate(a, K("after")), 0);
    memset(&g, 0, sizeof(g));
    g = fetch_answer(a, &fa, "after", PSKGW_OK, "psk3");
    wait_redis_key("pskgw:example.com:psk:6166746572");
    close_caches(a, NULL);
}

Test(keycache_redis, close_with_redis_reads_in_flight)
{
    fake_backend_t fa;
    pskgw_keycache_t *a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    got_t g[3] = { { 0 } };

    run_until(is_connected, a, 5000, "redis connection");
    cr_assert_eq(pskgw_keycache_fetch(a, K("x1"), on_result, &g[0], NULL), 0);
    cr_assert_eq(pskgw_keycache_fetch(a, K("x1"), on_result, &g[1], NULL), 0);
    cr_assert_eq(pskgw_keycache_fetch(a, K("x2"), on_result, &g[2], NULL), 0);
    cr_assert_eq(st(a).backend_calls, 0, "reads should be waiting on redis");
    close_caches(a, NULL);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(g[i].calls, 1);
        cr_assert_eq(g[i].status, PSKGW_ECANCELED);
    }
    cr_assert_eq(fa.calls, 0);
}

Test(keycache_redis, unreachable_redis_layer1_and_backend_only)
{
    fake_backend_t fa;
    int port = 0;
    int hold = pskgw_test_reserve_port(0, &port); /* bound, never listening: refused */
    pskgw_keycache_t *a;
    got_t g;

    cr_assert_geq(hold, 0);
    a = make_cache(&fa, kek1, 1, NULL, 0, port);
    errors_target = 1;
    run_until(errors_reached, a, 30000, "a refused connect");
    cr_assert_eq(st(a).redis_connected, 0);
    cr_assert_eq(st(a).redis_connects, 0);
    cr_assert_geq(st(a).redis_errors, 1);
    g = fetch_answer(a, &fa, "dev01", PSKGW_OK, "psk");
    cr_assert_eq(g.status, PSKGW_OK);
    g = fetch_answer(a, &fa, "dev01", PSKGW_OK, "psk");
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_L1);
    cr_assert_eq(st(a).redis_skipped, 1);
    close_caches(a, NULL); /* with a reconnect timer pending */
    close(hold);
}

Test(keycache_redis, stale_value_from_redis_served_when_the_backend_fails)
{
    static uint64_t future = 61000; /* past ttl_s (60), inside stale_s (600) */
    fake_backend_t fa, fb;
    pskgw_keycache_t *a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    pskgw_keycache_t *b = make_cache_skewed(&fb, kek1, 1, NULL, 0, redis_port, &future);
    pskgw_keycache_result_t res;
    got_t g;

    run_until(is_connected, a, 5000, "redis connection a");
    run_until(is_connected, b, 5000, "redis connection b");
    (void)fetch_answer(a, &fa, "dev01", PSKGW_OK, "psk-of-dev01");
    wait_redis_key(rkey_dev1);

    /* b (a gateway started later, nothing in layer 1) finds only a stale value in Redis: it asks
     * the service, which is down, and serves the stale value. */
    g = fetch_answer(b, &fb, "dev01", PSKGW_EUNAVAIL, NULL);
    cr_assert_eq(fb.calls, 1, "stale redis value not refreshed");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert(g.stale);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_REDIS);
    cr_assert(memcmp(g.value, "psk-of-dev01", 12) == 0);
    cr_assert_eq(st(b).stale_serves, 1);
    cr_assert_eq(st(b).hits_redis, 0);
    /* Kept in b's layer 1 for the hold-off. */
    cr_assert_eq(pskgw_keycache_lookup(b, K("dev01"), &res), 0);
    cr_assert(res.stale);

    /* Without a backend failure the stale value is replaced. */
    cr_assert_eq(pskgw_keycache_invalidate(b, K("dev01")), 0);
    (void)fetch_answer(a, &fa, "dev02", PSKGW_OK, "psk-of-dev02");
    wait_redis_key("pskgw:example.com:psk:6465763032");
    g = fetch_answer(b, &fb, "dev02", PSKGW_OK, "psk-renewed!");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_not(g.stale);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert(memcmp(g.value, "psk-renewed!", 12) == 0);
    close_caches(a, b);
}

Test(keycache_redis, lifetimes_from_redis_capped_by_the_readers_ttl)
{
    static uint64_t bskew;
    fake_backend_t fa, fb;
    pskgw_keycache_t *a;
    pskgw_keycache_t *b;
    pskgw_keycache_result_t res;
    got_t g;

    g_ttl_s = 3600; /* a writes values fresh for an hour */
    a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    g_ttl_s = 60; /* b keeps them fresh for a minute at most */
    bskew = 0;
    b = make_cache_skewed(&fb, kek1, 1, NULL, 0, redis_port, &bskew);
    run_until(is_connected, a, 5000, "redis connection a");
    run_until(is_connected, b, 5000, "redis connection b");
    (void)fetch_answer(a, &fa, "dev01", PSKGW_OK, "psk-of-dev01");
    wait_redis_key(rkey_dev1);
    g = fetch_answer(b, &fb, "dev01", PSKGW_OK, "x");
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_REDIS);
    bskew = 59000;
    cr_assert_eq(pskgw_keycache_lookup(b, K("dev01"), &res), 0);
    bskew = 61000;
    cr_assert_eq(pskgw_keycache_lookup(b, K("dev01"), &res), PSKGW_EAGAIN,
                 "an entry from redis outlived the reader's ttl");
    cr_assert(res.stale);

    close_caches(a, b);
}

static bool has_disconnected(void *kc)
{
    return st(kc).redis_disconnects >= 1;
}

Test(keycache_redis, password_and_database)
{
    pskgw_test_proc_t pw_redis;
    int port;
    fake_backend_t fa, fb;
    pskgw_keycache_t *a;
    pskgw_keycache_t *b;
    got_t g;

    int hold = pskgw_test_redis_start_pw(&pw_redis, &port, "s3cret-pass");
    cr_assert_geq(hold, 0, "redis-server with a password did not start");

    g_password = "s3cret-pass";
    g_db = 3;
    a = make_cache(&fa, kek1, 1, NULL, 0, port);
    g_password = "wrong";
    b = make_cache(&fb, kek1, 1, NULL, 0, port);
    run_until(is_connected, a, 5000, "redis connection a");
    run_until(is_connected, b, 5000, "redis connection b");
    (void)fetch_answer(a, &fa, "dev01", PSKGW_OK, "psk-of-dev01");

    /* The value is in database 3, behind the password. */
    redisContext *c = pskgw_test_redis_connect(port, "s3cret-pass", 3);
    redisReply *r;
    uint64_t deadline = mono_ms() + 30000; /* a guard */
    for (;;) {
        r = redisCommand(c, "EXISTS %s", rkey_dev1);
        long long n = r->integer;
        freeReplyObject(r);
        if (n == 1)
            break;
        cr_assert(mono_ms() < deadline, "not written to db 3");
        uv_run(&loop, UV_RUN_ONCE);
    }
    redisFree(c);

    /* With the wrong password every command fails: the cache still answers through the backend
     * and counts the errors. */
    g = fetch_answer(b, &fb, "dev01", PSKGW_OK, "psk-from-service");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert_geq(st(b).redis_errors, 1);
    run_until(has_disconnected, b, 5000, "the cache to drop the refused connection");
    close_caches(a, b);
    pskgw_test_stop(&pw_redis, SIGTERM, 30000);
    close(hold);
}

static bool is_subscribed(void *kc)
{
    return st(kc).broadcast_subscribed == 1;
}

static uint64_t received_target;

static bool received(void *kc)
{
    return st(kc).broadcasts_received >= received_target;
}

Test(keycache_redis, broadcast_revoke_and_invalidate_reach_the_other_cache)
{
    fake_backend_t fa, fb;
    pskgw_keycache_t *a, *b;
    pskgw_keycache_result_t res;
    redisContext *c;
    redisReply *r;
    got_t g;

    g_broadcast = true;
    a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    b = make_cache(&fb, kek1, 1, NULL, 0, redis_port);
    run_until(is_subscribed, a, 5000, "a subscribed");
    run_until(is_subscribed, b, 5000, "b subscribed");
    run_until(is_connected, a, 5000, "redis connection a");
    cr_assert_eq(st(b).broadcast_resyncs, 1, "the first subscription empties layer 1 too");

    g = fetch_answer(a, &fa, "dev01", PSKGW_OK, "v1");
    cr_assert_eq(g.status, PSKGW_OK);
    g = fetch_answer(a, &fa, "dev02", PSKGW_OK, "v2");
    wait_redis_key(rkey_dev1);
    wait_redis_key("pskgw:example.com:psk:6465763032");
    g = fetch_answer(b, &fb, "dev01", PSKGW_OK, "x");
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_REDIS);
    g = fetch_answer(b, &fb, "dev02", PSKGW_OK, "x");
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_REDIS);
    cr_assert_eq(pskgw_keycache_lookup(b, K("dev01"), &res), 0, "dev01 in b's layer 1");

    /* revoke on a: b drops dev01, is told (on_remote), and its next fetch finds the refusal a
     * stored in Redis, without a backend call */
    cr_assert_eq(pskgw_keycache_broadcast(a, PSKGW_KEYCACHE_OP_REVOKE, K("dev01")), 0);
    cr_assert_eq(st(a).broadcasts_sent, 1);
    received_target = 1;
    run_until(received, b, 5000, "b received the revoke");
    cr_assert_eq(remote_seen[0].fb, &fb);
    cr_assert_eq(remote_seen[0].op, PSKGW_KEYCACHE_OP_REVOKE);
    cr_assert_str_eq(remote_seen[0].key, "dev01");
    cr_assert_eq(pskgw_keycache_lookup(b, K("dev01"), &res), PSKGW_EAGAIN, "left b's layer 1");
    g = fetch_answer(b, &fb, "dev01", PSKGW_OK, "x");
    cr_assert_eq(g.status, PSKGW_EDENIED);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_REDIS);
    cr_assert_eq(fb.calls, 0);
    g = fetch_answer(a, &fa, "dev01", PSKGW_OK, "x");
    cr_assert_eq(g.status, PSKGW_EDENIED, "the revoking cache refuses it too");
    cr_assert_eq(st(a).broadcasts_received, 0, "a cache skips its own messages");

    /* a malformed message is ignored; an invalidate drops dev02 (no refusal: b asks again) */
    c = sync_client();
    r = redisCommand(c, "PUBLISH pskgw:inval:example.com:psk %s", "1 zz r 6465763032");
    cr_assert(r && r->integer == 2, "two subscribers");
    freeReplyObject(r);
    redisFree(c);
    cr_assert_eq(pskgw_keycache_broadcast(a, PSKGW_KEYCACHE_OP_INVALIDATE, K("dev02")), 0);
    received_target = 2;
    run_until(received, b, 5000, "b received the invalidate");
    cr_assert_eq(st(b).broadcasts_received, 2, "the malformed message was not applied");
    cr_assert_eq(remote_seen[0].op, PSKGW_KEYCACHE_OP_INVALIDATE);
    g = fetch_answer(b, &fb, "dev02", PSKGW_OK, "v2b");
    cr_assert_eq(g.status, PSKGW_OK);
    cr_assert_eq(g.source, PSKGW_KEYCACHE_SRC_BACKEND);
    cr_assert_eq(fb.calls, 1);
    close_caches(a, b);
}

Test(keycache_redis, broadcast_without_redis_connection_is_local_only)
{
    fake_backend_t fa;
    pskgw_keycache_t *a;
    pskgw_keycache_result_t res;
    got_t g;

    g_broadcast = true;
    a = make_cache(&fa, kek1, 1, NULL, 0, redis_port);
    run_until(is_subscribed, a, 5000, "a subscribed");
    g = fetch_answer(a, &fa, "dev01", PSKGW_OK, "v1");
    cr_assert_eq(g.status, PSKGW_OK);
    pskgw_test_stop(&redis, SIGKILL, 30000);
    run_until(is_disconnected, a, 5000, "redis gone");
    cr_assert_eq(pskgw_keycache_broadcast(a, PSKGW_KEYCACHE_OP_REVOKE, K("dev01")), PSKGW_EUNAVAIL);
    cr_assert_eq(st(a).broadcasts_sent, 0);
    cr_assert_eq(pskgw_keycache_lookup(a, K("dev01"), &res), 0, "the refusal is in layer 1");
    cr_assert_eq(res.status, PSKGW_EDENIED);
    cr_assert_eq(pskgw_keycache_broadcast(a, 7, K("dev01")), PSKGW_EINVAL);
    close_caches(a, NULL);
}
