/* redisconn against a real redis-server: connect and commands, a host name resolved on the
 * thread pool (and a close while its lookup hangs), AUTH refused and accepted, SELECT done and
 * refused (nothing lands in database 0), commands held during the gate and sent in order, the
 * server killed and restarted on its port (reconnect with backoff), the reply watchdog on a
 * stopped server, and close from inside a reply callback and from inside the state callback.
 * Every test ends with uv_loop_close() == 0: no handle left behind. */
#define _GNU_SOURCE
#include "common/err.h"
#include "gai_slow.h"
#include "loopwait.h"
#include "proc.h"
#include "redistest.h"
#include "redisconn/redisconn.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define SLOW_NAME "redis.slow-dns.test"

static pskgw_test_proc_t redis = { -1, -1 };
static int redis_port;
static bool paused; /* redis is SIGSTOPped */
static uv_loop_t loop;
static uv_timer_t tick; /* wakes uv_run(UV_RUN_ONCE) so run_until() can check its condition */
static unsigned ticks;

typedef struct conn_ctx {
    pskgw_redisconn_t *c;
    int ups;
    int downs;
    int closed;
    bool close_on_up;
    bool close_on_down;
    struct rep *ping_on_up;
} conn_ctx_t;

typedef struct rep {
    int calls;
    int status;
    int type;
    long long integer;
    char str[64];
    conn_ctx_t *close_it; /* close this connection from inside the reply callback */
} rep_t;

/* Closed by teardown when a test failed half-way. Contexts and replies are static in the tests
 * (each test runs in its own process): callbacks may still reach them from teardown. */
static conn_ctx_t *open_ctx[4];

static void tick_cb(uv_timer_t *t)
{
    (void)t;
    ticks++;
}

static void setup(void)
{
    redis.pid = -1;
    paused = false;
    cr_assert_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
}

static void teardown(void)
{
    gai_slow_release();
    if (redis.pid > 0 && paused)
        kill(redis.pid, SIGCONT);
    for (int i = 0; i < 4; i++)
        if (open_ctx[i] && !open_ctx[i]->closed)
            pskgw_redisconn_close(open_ctx[i]->c, NULL, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
    if (redis.pid > 0)
        pskgw_test_stop(&redis, SIGTERM, 5000);
}

TestSuite(redisconn, .init = setup, .fini = teardown, .timeout = 100);

/* Run the loop until cond(arg) (loopwait.h). */
static void run_until(bool (*cond)(void *), void *arg, const char *what)
{
    hwait_until(&loop, cond, arg, what);
}

static uint64_t loop_now(void)
{
    uv_update_time(&loop);
    return uv_now(&loop);
}

/* ---- redis-server ---- */

static void start_redis(const char *password)
{
    int hold;

    if (!password) {
        cr_assert_eq(pskgw_test_redis_start(&redis, &redis_port), 0, "redis-server did not start");
        return;
    }
    hold = pskgw_test_redis_start_pw(&redis, &redis_port, password);
    cr_assert_geq(hold, 0, "redis-server with a password did not start");
    close(hold); /* the server holds the port now */
}

static void pause_redis(bool stop)
{
    cr_assert_eq(kill(redis.pid, stop ? SIGSTOP : SIGCONT), 0);
    paused = stop;
}

/* Kill redis-server and hold its port with a socket that never listens: reconnects are refused
 * and no other process can take the port before the restart. */
static int kill_redis_keep_port(void)
{
    struct sockaddr_in sa;
    int fd;

    pskgw_test_stop(&redis, SIGKILL, 30000);
    redis.pid = -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)redis_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int)), 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "port %d taken", redis_port);
    return fd;
}

/* The test's own synchronous client (redistest.h; blocking is fine here). */
static long long sync_exists(const char *password, int db, const char *key)
{
    return pskgw_test_redis_int(redis_port, password, db, "EXISTS", key);
}

/* ---- the connection under test ---- */

static void on_closed(void *arg)
{
    ((conn_ctx_t *)arg)->closed++;
}

static void on_reply(void *arg, int status, const redisReply *r)
{
    rep_t *p = arg;

    p->calls++;
    p->status = status;
    if (r) {
        p->type = r->type;
        p->integer = r->integer;
        snprintf(p->str, sizeof(p->str), "%.*s", (int)(r->str ? r->len : 0), r->str ? r->str : "");
    }
    if (p->close_it)
        pskgw_redisconn_close(p->close_it->c, on_closed, p->close_it);
}

/* Issue a command (arguments up to NULL) into *p. Returns what pskgw_redisconn_command did. */
static int issue(conn_ctx_t *x, rep_t *p, ...)
{
    const char *argv[8];
    size_t lens[8];
    int argc = 0;
    va_list ap;

    va_start(ap, p);
    for (const char *a; argc < 8 && (a = va_arg(ap, const char *)) != NULL; argc++) {
        argv[argc] = a;
        lens[argc] = strlen(a);
    }
    va_end(ap);
    return pskgw_redisconn_command(x->c, argc, argv, lens, on_reply, p, NULL);
}

static void on_state(void *arg, bool ready)
{
    conn_ctx_t *x = arg;

    if (ready)
        x->ups++;
    else
        x->downs++;
    if (ready && x->ping_on_up)
        cr_assert_eq(issue(x, x->ping_on_up, "PING", NULL), 0);
    if ((ready && x->close_on_up) || (!ready && x->close_on_down))
        pskgw_redisconn_close(x->c, on_closed, x);
}

static void make(conn_ctx_t *x, const char *host, const char *password, int db, uint32_t timeout_ms,
                 uint32_t backoff_min_ms, uint32_t backoff_max_ms)
{
    pskgw_redisconn_opts_t o = { 0 };

    o.host = host;
    o.port = (uint16_t)redis_port;
    o.password = password;
    o.db = db;
    o.timeout_ms = timeout_ms;
    o.backoff_min_ms = backoff_min_ms;
    o.backoff_max_ms = backoff_max_ms;
    o.log_name = "test";
    o.on_state = on_state;
    o.arg = x;
    cr_assert_eq(pskgw_redisconn_new(&loop, &o, &x->c), 0);
    for (int i = 0; i < 4; i++) {
        if (!open_ctx[i] || open_ctx[i]->closed) {
            open_ctx[i] = x;
            return;
        }
    }
    cr_assert_fail("too many connections");
}

static pskgw_redisconn_stats_t stats(conn_ctx_t *x)
{
    pskgw_redisconn_stats_t s;

    pskgw_redisconn_stats(x->c, &s);
    return s;
}

static bool is_ready(void *x)
{
    return pskgw_redisconn_ready(((conn_ctx_t *)x)->c);
}

static bool in_gate(void *x)
{
    return pskgw_redisconn_state(((conn_ctx_t *)x)->c) == PSKGW_REDISCONN_GATE;
}

static bool replied(void *p)
{
    return ((rep_t *)p)->calls > 0;
}

static bool is_closed(void *x)
{
    return ((conn_ctx_t *)x)->closed > 0;
}

static bool went_down(void *x)
{
    return ((conn_ctx_t *)x)->downs > 0;
}

static bool has_disconnected(void *x)
{
    return stats(x).disconnects >= 1;
}

static void close_and_wait(conn_ctx_t *x)
{
    pskgw_redisconn_close(x->c, on_closed, x);
    run_until(is_closed, x, "close");
    cr_assert_eq(x->closed, 1);
}

/* Issue a command and wait for its reply. */
static rep_t call(conn_ctx_t *x, const char *a0, const char *a1, const char *a2)
{
    static rep_t p; /* static: a failed wait leaves the command to teardown's close */

    memset(&p, 0, sizeof(p));
    cr_assert_eq(issue(x, &p, a0, a1, a2, NULL), 0, "%s refused", a0);
    run_until(replied, &p, a0);
    cr_assert_eq(p.calls, 1);
    return p;
}

/* ---- tests ---- */

Test(redisconn, connects_runs_commands_and_closes)
{
    static conn_ctx_t x;
    static rep_t p;
    pskgw_redisconn_stats_t s;

    start_redis(NULL);
    make(&x, "127.0.0.1", NULL, 0, 2000, 20, 200);
    /* never connects inside new(): nothing is accepted before the gate */
    cr_assert_eq(pskgw_redisconn_state(x.c), PSKGW_REDISCONN_IDLE);
    cr_assert_eq(issue(&x, &p, "PING", NULL), PSKGW_EUNAVAIL);
    run_until(is_ready, &x, "ready");
    cr_assert_eq(x.ups, 1);
    p = call(&x, "SET", "k", "v");
    cr_assert_eq(p.status, 0);
    cr_assert_eq(p.type, REDIS_REPLY_STATUS);
    cr_assert_str_eq(p.str, "OK");
    p = call(&x, "GET", "k", NULL);
    cr_assert_eq(p.type, REDIS_REPLY_STRING);
    cr_assert_str_eq(p.str, "v");
    p = call(&x, "HGET", "k", "f"); /* an error reply is a reply */
    cr_assert_eq(p.status, 0);
    cr_assert_eq(p.type, REDIS_REPLY_ERROR);
    s = stats(&x);
    cr_assert_eq(s.connects, 1);
    cr_assert_eq(s.connected, 1);
    cr_assert_eq(s.disconnects, 0);
    cr_assert_eq(s.errors, 0);
    close_and_wait(&x);
    cr_assert_eq(x.downs, 0);
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

Test(redisconn, host_name_resolved_on_the_thread_pool)
{
    static conn_ctx_t x;
    static rep_t p;
    unsigned until;

    start_redis(NULL);
    gai_slow_watch(SLOW_NAME);
    make(&x, SLOW_NAME, NULL, 0, 2000, 20, 200);
    run_until(lookup_started, NULL, "the lookup");
    cr_assert_eq(gai_slow_loop_thread_lookups(), 0, "a name was resolved on the loop thread");
    cr_assert_eq(pskgw_redisconn_state(x.c), PSKGW_REDISCONN_RESOLVING);
    cr_assert_eq(issue(&x, &p, "PING", NULL), PSKGW_EUNAVAIL);
    until = ticks + 5; /* the loop runs while the lookup hangs */
    run_until(ticked, &until, "timer ticks");
    cr_assert_eq(gai_slow_blocked(), 1);
    gai_slow_release();
    run_until(is_ready, &x, "ready");
    p = call(&x, "SET", "named", "1");
    cr_assert_eq(p.type, REDIS_REPLY_STATUS);
    cr_assert_eq(sync_exists(NULL, 0, "named"), 1);
    cr_assert_eq(gai_slow_loop_thread_lookups(), 0);
    close_and_wait(&x);
}

Test(redisconn, close_while_the_lookup_hangs)
{
    static conn_ctx_t x;
    unsigned until;

    redis_port = 6379; /* never connected to */
    gai_slow_watch(SLOW_NAME);
    make(&x, SLOW_NAME, NULL, 0, 2000, 20, 200);
    run_until(lookup_started, NULL, "the lookup");
    pskgw_redisconn_close(x.c, on_closed, &x);
    until = ticks + 5;
    run_until(ticked, &until, "timer ticks");
    cr_assert_eq(x.closed, 0, "closed while its lookup was still running");
    gai_slow_release();
    run_until(is_closed, &x, "close after the lookup");
    cr_assert_eq(x.ups, 0);
}

Test(redisconn, auth_refused_then_accepted)
{
    static conn_ctx_t bad;
    static conn_ctx_t good;
    static rep_t held;
    static rep_t p;

    start_redis("pw-s3cret");
    make(&bad, "127.0.0.1", "wrong", 0, 2000, 20, 200);
    run_until(in_gate, &bad, "the gate of the bad connection");
    cr_assert_eq(issue(&bad, &held, "SET", "k-bad", "1", NULL), 0); /* held */
    run_until(replied, &held, "the held command");
    cr_assert_eq(held.status, PSKGW_EIO);
    run_until(has_disconnected, &bad, "the refused connection dropped");
    cr_assert_geq(stats(&bad).errors, 2); /* AUTH refused + the held command */

    make(&good, "127.0.0.1", "pw-s3cret", 0, 2000, 20, 200);
    run_until(is_ready, &good, "ready with the right password");
    p = call(&good, "SET", "k-good", "1");
    cr_assert_eq(p.type, REDIS_REPLY_STATUS);
    cr_assert_eq(sync_exists("pw-s3cret", 0, "k-good"), 1);
    cr_assert_eq(sync_exists("pw-s3cret", 0, "k-bad"), 0);
    cr_assert_eq(bad.ups, 0, "a connection with a refused AUTH became ready");
    close_and_wait(&bad);
    close_and_wait(&good);
}

Test(redisconn, select_database_and_refused_select)
{
    static conn_ctx_t c3;
    static conn_ctx_t c100;
    static rep_t held;
    static rep_t p;

    start_redis(NULL);
    make(&c3, "127.0.0.1", NULL, 3, 2000, 20, 200);
    run_until(is_ready, &c3, "ready on db 3");
    p = call(&c3, "SET", "in3", "1");
    cr_assert_eq(p.type, REDIS_REPLY_STATUS);
    cr_assert_eq(sync_exists(NULL, 3, "in3"), 1);
    cr_assert_eq(sync_exists(NULL, 0, "in3"), 0);

    /* 16 databases: SELECT 100 is refused, and nothing may run in database 0 instead */
    make(&c100, "127.0.0.1", NULL, 100, 2000, 20, 200);
    run_until(in_gate, &c100, "the gate");
    cr_assert_eq(issue(&c100, &held, "SET", "in100", "1", NULL), 0);
    run_until(replied, &held, "the held command");
    cr_assert_eq(held.status, PSKGW_EIO);
    run_until(has_disconnected, &c100, "the refused connection dropped");
    cr_assert_eq(c100.ups, 0);
    cr_assert_eq(sync_exists(NULL, 0, "in100"), 0, "written to database 0");
    close_and_wait(&c100);
    close_and_wait(&c3);
}

Test(redisconn, commands_issued_during_the_gate_are_held_then_sent_in_order)
{
    static conn_ctx_t x;
    static rep_t set;
    static rep_t incr;

    start_redis(NULL);
    pause_redis(true); /* the kernel still accepts the TCP connection: the gate waits */
    make(&x, "127.0.0.1", NULL, 0, 20000, 20, 200);
    run_until(in_gate, &x, "the gate");
    cr_assert_eq(issue(&x, &set, "SET", "n", "41", NULL), 0);
    cr_assert_eq(issue(&x, &incr, "INCR", "n", NULL), 0);
    cr_assert_eq(stats(&x).connected, 1);
    pause_redis(false);
    run_until(replied, &incr, "the second held command");
    cr_assert_eq(set.calls, 1);
    cr_assert_eq(set.type, REDIS_REPLY_STATUS);
    cr_assert_eq(incr.type, REDIS_REPLY_INTEGER);
    cr_assert_eq(incr.integer, 42);
    cr_assert_eq(x.ups, 1);
    close_and_wait(&x);
}

/* Bounds: max_in_flight sent, the next ones held and sent in order as replies come, one more
 * than max_held refused at once and counted (a burst cannot grow the buffers without limit). */
Test(redisconn, commands_past_the_in_flight_bound_are_held_and_past_the_held_bound_dropped)
{
    static conn_ctx_t x;
    static rep_t r[4];
    static rep_t after;
    pskgw_redisconn_opts_t o = { 0 };

    start_redis(NULL);
    o.host = "127.0.0.1";
    o.port = (uint16_t)redis_port;
    o.timeout_ms = 20000;
    o.backoff_min_ms = 20;
    o.backoff_max_ms = 200;
    o.log_name = "test";
    o.on_state = on_state;
    o.arg = &x;
    o.max_in_flight = 1;
    o.max_held = 2;
    cr_assert_eq(pskgw_redisconn_new(&loop, &o, &x.c), 0);
    open_ctx[0] = &x;
    run_until(is_ready, &x, "ready");
    pause_redis(true); /* nothing is answered: the first INCR stays in flight */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(issue(&x, &r[i], "INCR", "n", NULL), 0, "INCR %d refused", i);
    cr_assert_eq(issue(&x, &r[3], "INCR", "n", NULL), PSKGW_EBUSY, "one in flight, two held");
    cr_assert_eq(stats(&x).dropped, 1);
    cr_assert_eq(r[3].calls, 0);
    pause_redis(false);
    run_until(replied, &r[2], "the last held command");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].type, REDIS_REPLY_INTEGER);
        cr_assert_eq(r[i].integer, i + 1, "sent in the order issued");
    }
    cr_assert_eq(issue(&x, &after, "INCR", "n", NULL), 0, "the bounds count down again");
    run_until(replied, &after, "a command after the burst");
    cr_assert_eq(after.integer, 4);
    cr_assert_eq(stats(&x).dropped, 1);
    close_and_wait(&x);
}

static uint64_t errors_target;

static bool errors_reached(void *x)
{
    return stats(x).errors >= errors_target;
}

static bool up_again(void *x)
{
    return ((conn_ctx_t *)x)->ups >= 2 && pskgw_redisconn_ready(((conn_ctx_t *)x)->c);
}

Test(redisconn, server_killed_and_restarted_reconnects_with_backoff)
{
    static conn_ctx_t x;
    static rep_t p;
    uint64_t t0;
    uint64_t elapsed;
    int hold;

    start_redis(NULL);
    make(&x, "127.0.0.1", NULL, 0, 2000, 50, 1000);
    run_until(is_ready, &x, "ready");
    t0 = loop_now();
    hold = kill_redis_keep_port();
    run_until(went_down, &x, "the loss noticed");
    cr_assert_eq(x.downs, 1);
    cr_assert_eq(stats(&x).disconnects, 1);
    cr_assert_eq(issue(&x, &p, "PING", NULL), PSKGW_EUNAVAIL);
    /* three refused attempts, each after its backoff delay: at least 80 % of 50 + 100 + 200 ms of
     * loop time (a lower bound: a loaded machine only adds to it) */
    errors_target = stats(&x).errors + 3;
    run_until(errors_reached, &x, "three refused reconnect attempts");
    elapsed = loop_now() - t0;
    cr_assert_geq(elapsed, 280, "reconnect attempts not backed off (%llu ms)",
                  (unsigned long long)elapsed);
    cr_assert_eq(stats(&x).connects, 1);
    cr_assert_eq(stats(&x).connected, 0);

    close(hold);
    cr_assert_eq(pskgw_test_redis_spawn_on(&redis, redis_port, NULL), 0, "restart on port %d",
                 redis_port);
    run_until(up_again, &x, "the reconnect");
    p = call(&x, "SET", "back", "1");
    cr_assert_eq(p.type, REDIS_REPLY_STATUS);
    cr_assert_eq(stats(&x).connects, 2);
    close_and_wait(&x);
}

Test(redisconn, watchdog_drops_a_stopped_server_then_reconnects)
{
    static conn_ctx_t x;
    static rep_t p;
    uint64_t t0;

    start_redis(NULL);
    make(&x, "127.0.0.1", NULL, 0, 300, 20, 200);
    run_until(is_ready, &x, "ready");
    pause_redis(true);
    t0 = loop_now();
    cr_assert_eq(issue(&x, &p, "GET", "k", NULL), 0);
    run_until(replied, &p, "the watchdog");
    cr_assert_eq(p.status, PSKGW_EIO);
    /* a lower bound of loop time (the 300 ms reply timeout cannot end early) */
    cr_assert_geq(loop_now() - t0, 300);
    cr_assert_eq(x.downs, 1);
    cr_assert_geq(stats(&x).errors, 2); /* the timeout + the command it failed */
    cr_assert_eq(stats(&x).disconnects, 1);
    pause_redis(false);
    run_until(up_again, &x, "the reconnect");
    p = call(&x, "PING", NULL, NULL);
    cr_assert_str_eq(p.str, "PONG");
    close_and_wait(&x);
}

Test(redisconn, close_from_inside_a_reply_callback)
{
    static conn_ctx_t x;
    static rep_t ping;
    static rep_t blocked;

    start_redis(NULL);
    make(&x, "127.0.0.1", NULL, 0, 20000, 20, 200);
    run_until(is_ready, &x, "ready");
    /* BLPOP on an empty list never answers: it is outstanding when the PING's callback closes */
    ping.close_it = &x;
    cr_assert_eq(issue(&x, &ping, "PING", NULL), 0);
    cr_assert_eq(issue(&x, &blocked, "BLPOP", "empty", "0", NULL), 0);
    run_until(is_closed, &x, "close");
    cr_assert_eq(x.closed, 1);
    cr_assert_eq(ping.calls, 1);
    cr_assert_eq(ping.status, 0);
    cr_assert_eq(blocked.calls, 1);
    cr_assert_eq(blocked.status, PSKGW_ECANCELED);
}

Test(redisconn, close_from_inside_the_state_callback)
{
    static conn_ctx_t x;
    static rep_t ping;

    start_redis(NULL);
    x.ping_on_up = &ping;
    x.close_on_up = true;
    make(&x, "127.0.0.1", NULL, 0, 20000, 20, 200);
    run_until(is_closed, &x, "close");
    cr_assert_eq(x.ups, 1);
    cr_assert_eq(x.downs, 0);
    cr_assert_eq(ping.calls, 1, "the command issued before close completed %d times", ping.calls);
    cr_assert(ping.status == 0 || ping.status == PSKGW_ECANCELED);
}

Test(redisconn, close_before_the_first_attempt)
{
    static conn_ctx_t x;

    redis_port = 6379; /* never connected to */
    make(&x, "127.0.0.1", NULL, 0, 2000, 20, 200);
    close_and_wait(&x);
    cr_assert_eq(x.ups, 0);
}

/* A refused AUTH drops the connection from inside hiredis' dispatch; the held command's failure
 * callback closes the connection right there. (Failed before the drop parked the context ahead of
 * the callbacks: close closed the reap timer, the parked context was never freed and the close
 * callback never came.) */
Test(redisconn, close_from_inside_a_held_command_failed_by_a_refused_gate)
{
    static conn_ctx_t x;
    static rep_t held;

    start_redis("pw-s3cret");
    make(&x, "127.0.0.1", "wrong", 0, 20000, 20, 200);
    run_until(in_gate, &x, "the gate");
    held.close_it = &x;
    cr_assert_eq(issue(&x, &held, "SET", "k", "1", NULL), 0);
    run_until(is_closed, &x, "close");
    cr_assert_eq(held.calls, 1);
    cr_assert_eq(held.status, PSKGW_EIO);
    cr_assert_eq(x.ups, 0);
}

/* The watchdog drops a stopped server; the state callback (ready = false) closes. */
Test(redisconn, close_from_inside_the_lost_state_callback)
{
    static conn_ctx_t x;
    static rep_t p;

    start_redis(NULL);
    x.close_on_down = true;
    make(&x, "127.0.0.1", NULL, 0, 300, 20, 200);
    run_until(is_ready, &x, "ready");
    pause_redis(true);
    cr_assert_eq(issue(&x, &p, "GET", "k", NULL), 0);
    run_until(is_closed, &x, "close");
    cr_assert_eq(x.downs, 1);
    cr_assert_eq(p.calls, 1);
    cr_assert_eq(p.status, PSKGW_EIO);
}

/* ---- subscriber mode ---- */

static char sub_got[8][32];
static int sub_n;

static void on_message(void *arg, const char *data, size_t len)
{
    (void)arg;
    if (sub_n < 8)
        snprintf(sub_got[sub_n], sizeof(sub_got[0]), "%.*s", (int)len, data);
    sub_n++;
}

static void make_sub(conn_ctx_t *x, const char *channel)
{
    pskgw_redisconn_opts_t o = { 0 };

    o.host = "127.0.0.1";
    o.port = (uint16_t)redis_port;
    o.timeout_ms = 2000;
    o.backoff_min_ms = 20;
    o.backoff_max_ms = 200;
    o.log_name = "test-sub";
    o.on_state = on_state;
    o.subscribe = channel;
    o.on_message = on_message;
    o.arg = x;
    cr_assert_eq(pskgw_redisconn_new(&loop, &o, &x->c), 0);
    for (int i = 0; i < 4; i++) {
        if (!open_ctx[i] || open_ctx[i]->closed) {
            open_ctx[i] = x;
            return;
        }
    }
    cr_assert_fail("too many connections");
}

static int sub_target;

static bool messages_reached(void *arg)
{
    (void)arg;
    return sub_n >= sub_target;
}

Test(redisconn, subscriber_gets_messages_refuses_commands_and_resubscribes)
{
    static conn_ctx_t sub, pub;
    static rep_t p;
    pskgw_redisconn_opts_t bad = { 0 };
    pskgw_redisconn_t *c = NULL;
    int hold;

    start_redis(NULL);
    bad.host = "127.0.0.1";
    bad.port = (uint16_t)redis_port;
    bad.timeout_ms = bad.backoff_min_ms = bad.backoff_max_ms = 100;
    bad.subscribe = "ch";
    cr_assert_eq(pskgw_redisconn_new(&loop, &bad, &c), PSKGW_EINVAL, "no on_message");
    bad.subscribe = "";
    bad.on_message = on_message;
    cr_assert_eq(pskgw_redisconn_new(&loop, &bad, &c), PSKGW_EINVAL, "empty channel");

    make_sub(&sub, "pskgw:test");
    make(&pub, "127.0.0.1", NULL, 0, 2000, 20, 200);
    run_until(is_ready, &sub, "subscribed");
    cr_assert_eq(sub.ups, 1, "READY (on_state) once the subscription is confirmed");
    run_until(is_ready, &pub, "publisher ready");
    cr_assert_eq(issue(&sub, &p, "PING", NULL), PSKGW_EINVAL, "a subscriber takes no command");
    /* the subscription is confirmed: PUBLISH reports one receiver */
    p = call(&pub, "PUBLISH", "pskgw:test", "one");
    cr_assert_eq(p.integer, 1);
    (void)call(&pub, "PUBLISH", "other", "not for us");
    p = call(&pub, "PUBLISH", "pskgw:test", "two");
    sub_target = 2;
    run_until(messages_reached, NULL, "two messages");
    cr_assert_str_eq(sub_got[0], "one");
    cr_assert_str_eq(sub_got[1], "two");
    cr_assert_eq(stats(&sub).messages, 2);

    hold = kill_redis_keep_port();
    run_until(went_down, &sub, "the loss noticed");
    close(hold);
    cr_assert_eq(pskgw_test_redis_spawn_on(&redis, redis_port, NULL), 0, "restart on port %d",
                 redis_port);
    run_until(up_again, &sub, "subscribed again");
    run_until(up_again, &pub, "publisher back");
    p = call(&pub, "PUBLISH", "pskgw:test", "three");
    cr_assert_eq(p.integer, 1, "subscribed again after the restart");
    sub_target = 3;
    run_until(messages_reached, NULL, "the message after the restart");
    cr_assert_str_eq(sub_got[2], "three");
    close_and_wait(&sub);
    close_and_wait(&pub);
}
