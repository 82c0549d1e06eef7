/* redisconn in Sentinel mode against a real redis-server and a real redis-sentinel on loopback:
 * bad sentinel options refused, the master found through the second sentinel when the first
 * refuses connections, and a master demoted under a READY connection (REPLICAOF) left: its
 * READONLY reply reaches the command, the connection drops, and the address the sentinel still
 * names is refused by the ROLE gate on every reconnect; a close while the sentinel has not
 * answered yet. The failover itself (a replica promoted,
 * the gateway following it) is tests/integration/gateway/sentinel_failover.sh. Every test ends
 * with uv_loop_close() == 0. */
#define _GNU_SOURCE
#include "common/err.h"
#include "loopwait.h"
#include "proc.h"
#include "redisconn/redisconn.h"
#include "skip.h"

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define SENTINEL_BIN "/usr/bin/redis-sentinel"

static pskgw_test_proc_t master = { -1, -1 }, other = { -1, -1 }, sentinel = { -1, -1 };
static int master_port, other_port, sentinel_port;
static int sentinel_hold = -1; /* the sentinel's port reservation (pskgw_test_reserve_port) */
static char dir[256];
static bool paused; /* the sentinel is SIGSTOPped */
static uv_loop_t loop;
static uv_timer_t tick; /* wakes uv_run(UV_RUN_ONCE) so run_until() can check its condition */

typedef struct {
    pskgw_redisconn_t *c;
    int ups, downs, closed;
} conn_ctx_t;

typedef struct {
    int calls, status, type;
    char str[64];
} rep_t;

static conn_ctx_t *open_ctx;

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void setup(void)
{
    master.pid = other.pid = sentinel.pid = -1;
    sentinel_hold = -1;
    dir[0] = '\0';
    paused = false;
    open_ctx = NULL;
    cr_assert_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
}

static void on_closed(void *arg)
{
    ((conn_ctx_t *)arg)->closed++;
}

static void teardown(void)
{
    if (paused)
        kill(sentinel.pid, SIGCONT);
    if (open_ctx && !open_ctx->closed)
        pskgw_redisconn_close(open_ctx->c, on_closed, open_ctx);
    uv_close((uv_handle_t *)&tick, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
    pskgw_test_proc_t *procs[] = { &sentinel, &other, &master };
    for (int i = 0; i < 3; i++)
        if (procs[i]->pid > 0)
            pskgw_test_stop(procs[i], SIGTERM, 10000);
    if (sentinel_hold >= 0)
        close(sentinel_hold);
    sentinel_hold = -1;
    if (dir[0])
        pskgw_test_rmtree(dir);
}

TestSuite(sentinel, .init = setup, .fini = teardown, .timeout = 100);

/* Run the loop until cond(arg) (loopwait.h). */
static void run_until(bool (*cond)(void *), void *arg, const char *what)
{
    hwait_until(&loop, cond, arg, what);
}

/* One sentinel monitoring the master (quorum 1; down-after 60 s: no failover in these tests). */
static void start_servers(void)
{
    char conf[300];
    FILE *f;

    if (access(SENTINEL_BIN, X_OK) != 0)
        PSKGW_TEST_SKIP_MISSING("redis-sentinel (Debian: redis-sentinel)");
    cr_assert_eq(pskgw_test_redis_start(&master, &master_port), 0, "redis-server did not start");
    cr_assert_eq(pskgw_test_redis_start(&other, &other_port), 0, "redis-server did not start");
    cr_assert_eq(pskgw_test_tmpdir(dir, sizeof(dir)), 0);
    snprintf(conf, sizeof(conf), "%s/sentinel.conf", dir);
    /* the port stays reserved (never listening) until teardown: the sentinel binds beside the
     * reservation (SO_REUSEADDR, as redis-server does) and no other process can take it */
    char *argv[] = { SENTINEL_BIN, conf, NULL };

    sentinel_hold = pskgw_test_reserve_port(0, &sentinel_port);
    cr_assert_geq(sentinel_hold, 0, "no port for redis-sentinel");
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndir %s\nloglevel warning\n"
            "sentinel monitor pskgw 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds pskgw 60000\n",
            sentinel_port, dir, master_port);
    fclose(f);
    cr_assert_eq(pskgw_test_spawn_on_reserved(&sentinel, argv, sentinel_hold, sentinel_port, 30000),
                 0, "redis-sentinel did not start on its reserved port");
}

static void on_state(void *arg, bool ready)
{
    conn_ctx_t *x = arg;

    if (ready)
        x->ups++;
    else
        x->downs++;
}

static int make(conn_ctx_t *x, const char *sentinels, const char *name)
{
    pskgw_redisconn_opts_t o = { 0 };
    int rc;

    o.sentinels = sentinels;
    o.master_name = name;
    o.timeout_ms = 5000;
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 50;
    o.log_name = "test";
    o.on_state = on_state;
    o.arg = x;
    rc = pskgw_redisconn_new(&loop, &o, &x->c);
    if (rc == 0)
        open_ctx = x;
    return rc;
}

static void on_reply(void *arg, int status, const redisReply *r)
{
    rep_t *p = arg;

    p->calls++;
    p->status = status;
    if (r) {
        p->type = r->type;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->str)
            snprintf(p->str, sizeof(p->str), "%s", r->element[1]->str); /* CONFIG GET */
        else
            snprintf(p->str, sizeof(p->str), "%.*s", (int)(r->str ? r->len : 0),
                     r->str ? r->str : "");
    }
}

static bool replied(void *p)
{
    return ((rep_t *)p)->calls > 0;
}

/* Issue a command (arguments up to NULL) and wait for its reply. */
static rep_t call(conn_ctx_t *x, ...)
{
    const char *argv[8];
    size_t lens[8];
    int argc = 0;
    rep_t p = { 0 };
    va_list ap;

    va_start(ap, x);
    for (const char *a; argc < 8 && (a = va_arg(ap, const char *)) != NULL; argc++) {
        argv[argc] = a;
        lens[argc] = strlen(a);
    }
    va_end(ap);
    cr_assert_eq(pskgw_redisconn_command(x->c, argc, argv, lens, on_reply, &p, NULL), 0);
    run_until(replied, &p, argv[0]);
    return p;
}

static bool is_ready(void *x)
{
    return pskgw_redisconn_ready(((conn_ctx_t *)x)->c);
}

static bool is_closed(void *x)
{
    return ((conn_ctx_t *)x)->closed > 0;
}

static void close_and_wait(conn_ctx_t *x)
{
    pskgw_redisconn_close(x->c, on_closed, x);
    run_until(is_closed, x, "close");
    cr_assert_eq(x->closed, 1);
}

Test(sentinel, bad_options_refused)
{
    static conn_ctx_t x;
    static const char *const lists[] = { "", "h:0", "h:1,,h:2", "h:1,", "[::1:5", "h:99999" };

    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        cr_assert_eq(make(&x, lists[i], "pskgw"), PSKGW_EINVAL, "%s", lists[i]);
    cr_assert_eq(make(&x, "127.0.0.1:26379", NULL), PSKGW_EINVAL);
    cr_assert_eq(make(&x, "127.0.0.1:26379", ""), PSKGW_EINVAL);
    cr_assert_null(open_ctx);
}

Test(sentinel, master_found_past_a_refusing_sentinel)
{
    static conn_ctx_t x;
    char list[128], want[16];
    int dead_port;
    int dead = pskgw_test_reserve_port(0, &dead_port); /* bound, never listening: refused */

    cr_assert_geq(dead, 0);
    start_servers();
    snprintf(list, sizeof(list), "127.0.0.1:%d,127.0.0.1:%d", dead_port, sentinel_port);
    cr_assert_eq(make(&x, list, "pskgw"), 0);
    run_until(is_ready, &x, "ready on the master the sentinel names");
    rep_t r = call(&x, "CONFIG", "GET", "port", NULL);
    snprintf(want, sizeof(want), "%d", master_port);
    cr_assert_str_eq(r.str, want, "connected to port %s, the master is %d", r.str, master_port);
    cr_assert_eq(x.ups, 1);
    close_and_wait(&x);
    close(dead);
}

static bool refused_twice_more(void *arg)
{
    conn_ctx_t *x = arg;
    pskgw_redisconn_stats_t s;

    pskgw_redisconn_stats(x->c, &s);
    return x->downs >= 1 && s.errors >= 3; /* READONLY, then ROLE twice */
}

Test(sentinel, a_demoted_master_is_left)
{
    static conn_ctx_t x;
    char list[64], other_ps[16];
    pskgw_redisconn_stats_t s;

    start_servers();
    snprintf(list, sizeof(list), "127.0.0.1:%d", sentinel_port);
    snprintf(other_ps, sizeof(other_ps), "%d", other_port);
    cr_assert_eq(make(&x, list, "pskgw"), 0);
    run_until(is_ready, &x, "ready on the master");
    rep_t r = call(&x, "SET", "k", "v", NULL);
    cr_assert_eq(r.type, REDIS_REPLY_STATUS);
    /* the master becomes a replica under the connection (what a failover does to an old
     * master that comes back); the sentinel (down-after 60 s) still names it */
    r = call(&x, "REPLICAOF", "127.0.0.1", other_ps, NULL);
    cr_assert_eq(r.type, REDIS_REPLY_STATUS, "%s", r.str);
    r = call(&x, "SET", "k", "w", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.type, REDIS_REPLY_ERROR);
    cr_assert_eq(strncmp(r.str, "READONLY", 8), 0, "%s", r.str);
    /* dropped after the READONLY reply, then each reconnect to the address the sentinel still
     * gives is refused by ROLE: never READY again */
    run_until(refused_twice_more, &x, "two reconnects refused by the ROLE gate");
    pskgw_redisconn_stats(x.c, &s);
    cr_assert_eq(x.ups, 1);
    cr_assert_eq(x.downs, 1);
    cr_assert_geq(s.connects, 3);
    cr_assert_geq(s.disconnects, 3);
    close_and_wait(&x);
}

static bool asking(void *x)
{
    return pskgw_redisconn_state(((conn_ctx_t *)x)->c) == PSKGW_REDISCONN_RESOLVING;
}

/* Close while the sentinel has not answered the question: the ask is dropped, nothing calls
 * back after the close callback, every handle is released (teardown: uv_loop_close() == 0). */
Test(sentinel, close_while_the_sentinel_is_asked)
{
    static conn_ctx_t x;
    char list[64];
    redisContext *rc;
    redisReply *r;

    start_servers();
    snprintf(list, sizeof(list), "127.0.0.1:%d", sentinel_port);
    cr_assert_eq(make(&x, list, "pskgw"), 0);
    run_until(is_ready, &x, "ready on the master");
    cr_assert_eq(kill(sentinel.pid, SIGSTOP), 0);
    paused = true;
    /* the master drops our connection: the reconnect asks the stopped sentinel */
    rc = redisConnect("127.0.0.1", master_port);
    cr_assert(rc && !rc->err, "sync redis client");
    r = redisCommand(rc, "CLIENT KILL TYPE normal SKIPME yes");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
    freeReplyObject(r);
    redisFree(rc);
    run_until(asking, &x, "the reconnect asking the sentinel");
    cr_assert_eq(x.downs, 1);
    close_and_wait(&x);
    cr_assert_eq(x.ups, 1);
}
