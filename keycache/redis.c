#include "keycache/redis.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <stdlib.h>
#include <string.h>

typedef enum { OP_GET, OP_SET, OP_CTL } op_kind_t;

struct pskgw_kc_redis_op {
    pskgw_kc_redis_t *r;
    pskgw_kc_redis_op_t *prev;
    pskgw_kc_redis_op_t *next;
    uint64_t issued; /* uv_now */
    op_kind_t kind;
    pskgw_kc_redis_get_cb cb; /* NULL once detached (or for SET/CTL) */
    void *arg;
};

/* Our libuv adapter for one hiredis context (cf. hiredis/adapters/libuv.h). Freed in the poll
 * handle's close callback; the owner counts those. */
typedef struct {
    pskgw_kc_redis_t *r;
    redisAsyncContext *ac; /* NULL once hiredis has cleaned up */
    uv_poll_t poll;
    int events;
} adapter_t;

struct pskgw_kc_redis {
    uv_loop_t *loop;
    char *host;
    char *password;
    int port;
    int db;
    uint32_t timeout_ms;
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
    uint32_t backoff_ms;
    uint64_t jitter_state;

    redisAsyncContext *ac; /* current context, NULL when none */
    bool connected;
    bool closing;

    uv_timer_t conn_timer;         /* reconnect backoff, or connect deadline */
    uv_timer_t op_timer;           /* reply deadline of the oldest outstanding command */
    pskgw_kc_redis_op_t *ops_head; /* outstanding commands, oldest first */
    pskgw_kc_redis_op_t *ops_tail;

    int open_handles; /* our two timers + adapters' poll handles not yet closed */
    void (*close_cb)(void *arg);
    void *close_arg;

    pskgw_kc_redis_stats_t stats;
};

static void start_connect(pskgw_kc_redis_t *r);

/* ---- adapter ---- */

static void adapter_poll_cb(uv_poll_t *h, int status, int events)
{
    adapter_t *a = h->data;

    if (status < 0 && a->ac) {
        /* Let hiredis see the socket error through a read. */
        events = UV_READABLE;
    }
    if (a->ac && (events & UV_READABLE))
        redisAsyncHandleRead(a->ac);
    if (a->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(a->ac);
}

static void adapter_update(adapter_t *a, int events)
{
    a->events = events;
    if (uv_is_closing((uv_handle_t *)&a->poll))
        return;
    if (events)
        uv_poll_start(&a->poll, events, adapter_poll_cb);
    else
        uv_poll_stop(&a->poll);
}

static void adapter_add_read(void *p)
{
    adapter_t *a = p;
    adapter_update(a, a->events | UV_READABLE);
}

static void adapter_del_read(void *p)
{
    adapter_t *a = p;
    adapter_update(a, a->events & ~UV_READABLE);
}

static void adapter_add_write(void *p)
{
    adapter_t *a = p;
    adapter_update(a, a->events | UV_WRITABLE);
}

static void adapter_del_write(void *p)
{
    adapter_t *a = p;
    adapter_update(a, a->events & ~UV_WRITABLE);
}

static void maybe_closed(pskgw_kc_redis_t *r);

static void adapter_closed(uv_handle_t *h)
{
    adapter_t *a = h->data;
    pskgw_kc_redis_t *r = a->r;

    free(a);
    r->open_handles--;
    maybe_closed(r);
}

static void adapter_cleanup(void *p)
{
    adapter_t *a = p;

    a->ac = NULL; /* the context is being freed */
    uv_close((uv_handle_t *)&a->poll, adapter_closed);
}

static int adapter_attach(pskgw_kc_redis_t *r, redisAsyncContext *ac)
{
    adapter_t *a = calloc(1, sizeof(*a));

    if (!a)
        return PSKGW_ENOMEM;
    if (uv_poll_init(r->loop, &a->poll, ac->c.fd) != 0) {
        free(a);
        return PSKGW_EIO;
    }
    a->r = r;
    a->ac = ac;
    a->poll.data = a;
    r->open_handles++;
    ac->ev.data = a;
    ac->ev.addRead = adapter_add_read;
    ac->ev.delRead = adapter_del_read;
    ac->ev.addWrite = adapter_add_write;
    ac->ev.delWrite = adapter_del_write;
    ac->ev.cleanup = adapter_cleanup;
    return 0;
}

/* ---- outstanding commands ---- */

static void teardown(pskgw_kc_redis_t *r, const char *why);

static void op_timer_cb(uv_timer_t *t)
{
    pskgw_kc_redis_t *r = t->data;
    uint64_t now = uv_now(r->loop);
    uint64_t deadline;

    if (!r->ops_head)
        return;
    deadline = r->ops_head->issued + r->timeout_ms;
    if (deadline <= now) {
        teardown(r, "reply timeout");
        return;
    }
    uv_timer_start(&r->op_timer, op_timer_cb, deadline - now, 0);
}

static void op_timer_arm(pskgw_kc_redis_t *r)
{
    uint64_t now = uv_now(r->loop);
    uint64_t deadline;

    if (r->closing || !r->ops_head) {
        uv_timer_stop(&r->op_timer);
        return;
    }
    deadline = r->ops_head->issued + r->timeout_ms;
    uv_timer_start(&r->op_timer, op_timer_cb, deadline > now ? deadline - now : 0, 0);
}

static void op_unlink(pskgw_kc_redis_t *r, pskgw_kc_redis_op_t *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        r->ops_head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        r->ops_tail = op->prev;
    op->prev = op->next = NULL;
}

static void op_link(pskgw_kc_redis_t *r, pskgw_kc_redis_op_t *op)
{
    op->issued = uv_now(r->loop);
    op->prev = r->ops_tail;
    op->next = NULL;
    if (r->ops_tail)
        r->ops_tail->next = op;
    else
        r->ops_head = op;
    r->ops_tail = op;
}

/* ---- connection ---- */

static uint32_t jitter(pskgw_kc_redis_t *r, uint32_t ms)
{
    uint64_t x = r->jitter_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->jitter_state = x;
    /* 80 % .. 120 % of ms */
    return (uint32_t)((uint64_t)ms * (80 + x % 41) / 100);
}

static void conn_timer_cb(uv_timer_t *t);

static void schedule_reconnect(pskgw_kc_redis_t *r)
{
    uint32_t delay;

    if (r->closing)
        return;
    delay = jitter(r, r->backoff_ms);
    if (delay == 0)
        delay = 1;
    r->backoff_ms = r->backoff_ms >= r->backoff_max_ms / 2 ? r->backoff_max_ms : r->backoff_ms * 2;
    uv_timer_start(&r->conn_timer, conn_timer_cb, delay, 0);
}

/* The current context is gone or going (hiredis frees it): forget it and reconnect later. */
static void lost(pskgw_kc_redis_t *r, const char *why)
{
    if (r->connected) {
        r->connected = false;
        r->stats.connected = 0;
        r->stats.disconnects++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "keycache-redis-lost",
                     "keycache: redis connection to \"%s:%d\" lost: %s", r->host, r->port, why);
    }
    r->ac = NULL;
    schedule_reconnect(r);
}

/* Drop the current context from outside hiredis' callbacks (or from a reply callback, where
 * hiredis defers the free until it returns). */
static void teardown(pskgw_kc_redis_t *r, const char *why)
{
    redisAsyncContext *ac = r->ac;

    if (!ac)
        return;
    r->stats.errors++;
    lost(r, why);
    redisAsyncFree(ac);
}

static void op_reply(redisAsyncContext *ac, void *reply_v, void *privdata)
{
    pskgw_kc_redis_op_t *op = privdata;
    pskgw_kc_redis_t *r = op->r;
    redisReply *reply = reply_v;
    int status = PSKGW_EIO;
    const uint8_t *data = NULL;
    size_t len = 0;

    op_unlink(r, op);
    if (!reply) {
        /* The context is being freed: no new command may go to it. */
        if (r->ac == ac)
            lost(r, ac->errstr[0] ? ac->errstr : "disconnected");
        r->stats.errors++;
    } else if (reply->type == REDIS_REPLY_STRING) {
        status = 0;
        data = (const uint8_t *)reply->str;
        len = reply->len;
    } else if (reply->type == REDIS_REPLY_NIL) {
        status = PSKGW_ENOTFOUND;
    } else if (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_INTEGER) {
        status = 0;
    } else {
        r->stats.errors++;
        if (reply->type == REDIS_REPLY_ERROR)
            PSKGW_LOG_RL(PSKGW_LOG_WARNING, "keycache-redis-reply",
                         "keycache: redis error reply: \"%.*s\"",
                         (int)(reply->len > 200 ? 200 : reply->len), reply->str ? reply->str : "");
    }
    if (op->kind == OP_CTL && reply && status != 0) {
        /* AUTH or SELECT refused: this connection is useless; retry later with backoff. Inside a
         * reply callback hiredis defers the free until we return. */
        if (r->ac == ac)
            teardown(r, "redis refused AUTH or SELECT");
    }
    if (op->kind == OP_GET && status == 0 && !data) {
        status = PSKGW_EIO; /* GET answered with something other than a string */
        r->stats.errors++;
    }
    if (op->cb)
        op->cb(op->arg, status, data, len);
    free(op);
    op_timer_arm(r);
}

static int issue(pskgw_kc_redis_t *r, op_kind_t kind, pskgw_kc_redis_get_cb cb, void *arg, int argc,
                 const char **argv, const size_t *argvlen, pskgw_kc_redis_op_t **out)
{
    pskgw_kc_redis_op_t *op;

    if (!r->ac)
        return PSKGW_EUNAVAIL;
    op = calloc(1, sizeof(*op));
    if (!op)
        return PSKGW_ENOMEM;
    op->r = r;
    op->kind = kind;
    op->cb = cb;
    op->arg = arg;
    if (redisAsyncCommandArgv(r->ac, op_reply, op, argc, argv, argvlen) != REDIS_OK) {
        free(op);
        r->stats.errors++;
        return PSKGW_EUNAVAIL;
    }
    op_link(r, op);
    if (!uv_is_active((uv_handle_t *)&r->op_timer))
        op_timer_arm(r);
    if (out)
        *out = op;
    return 0;
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    pskgw_kc_redis_t *r = ac->data;

    if (r->ac != ac)
        return; /* abandoned */
    if (status != REDIS_OK) {
        r->stats.errors++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "keycache-redis-connect",
                     "keycache: redis connect to \"%s:%d\" failed: %s", r->host, r->port,
                     ac->errstr[0] ? ac->errstr : "error");
        /* hiredis frees the context right after this callback. */
        lost(r, "connect failed");
        return;
    }
    uv_timer_stop(&r->conn_timer);
    r->connected = true;
    r->stats.connected = 1;
    r->stats.connects++;
    r->backoff_ms = r->backoff_min_ms;
    PSKGW_LOG_RL(PSKGW_LOG_INFO, "keycache-redis-connected",
                 "keycache: redis connected to \"%s:%d\"", r->host, r->port);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    pskgw_kc_redis_t *r = ac->data;

    (void)status;
    if (r->ac == ac)
        lost(r, ac->errstr[0] ? ac->errstr : "disconnected");
}

static void start_connect(pskgw_kc_redis_t *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);

    if (!ac || ac->err) {
        r->stats.errors++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "keycache-redis-connect",
                     "keycache: redis connect to \"%s:%d\" failed: %s", r->host, r->port,
                     ac && ac->errstr[0] ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    if (adapter_attach(r, ac) < 0) {
        r->stats.errors++;
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    if (r->password) {
        const char *argv[2] = { "AUTH", r->password };
        size_t lens[2] = { 4, strlen(r->password) };
        (void)issue(r, OP_CTL, NULL, NULL, 2, argv, lens, NULL);
    }
    if (r->db > 0) {
        char db[16];
        int n = snprintf(db, sizeof(db), "%d", r->db);
        const char *argv[2] = { "SELECT", db };
        size_t lens[2] = { 6, (size_t)n };
        (void)issue(r, OP_CTL, NULL, NULL, 2, argv, lens, NULL);
    }
    uv_timer_start(&r->conn_timer, conn_timer_cb, r->timeout_ms, 0);
}

static void conn_timer_cb(uv_timer_t *t)
{
    pskgw_kc_redis_t *r = t->data;

    if (r->closing)
        return;
    if (r->ac && !r->connected) {
        redisAsyncContext *ac = r->ac;

        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "keycache-redis-connect",
                     "keycache: redis connect to \"%s:%d\" timed out", r->host, r->port);
        r->stats.errors++;
        r->ac = NULL;
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    if (!r->ac)
        start_connect(r);
}

/* ---- public ---- */

int pskgw_kc_redis_new(uv_loop_t *loop, const pskgw_kc_redis_opts_t *opts, pskgw_kc_redis_t **out)
{
    pskgw_kc_redis_t *r;

    if (!loop || !opts || !opts->host || !opts->host[0] || opts->port == 0 ||
        opts->timeout_ms == 0 || opts->backoff_min_ms == 0 ||
        opts->backoff_max_ms < opts->backoff_min_ms || !out)
        return PSKGW_EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PSKGW_ENOMEM;
    r->host = strdup(opts->host);
    if (opts->password)
        r->password = strdup(opts->password);
    if (!r->host || (opts->password && !r->password)) {
        free(r->host);
        pskgw_free_secret_str(r->password);
        free(r);
        return PSKGW_ENOMEM;
    }
    r->loop = loop;
    r->port = opts->port;
    r->db = opts->db;
    r->timeout_ms = opts->timeout_ms;
    r->backoff_min_ms = opts->backoff_min_ms;
    r->backoff_max_ms = opts->backoff_max_ms;
    r->backoff_ms = opts->backoff_min_ms;
    r->jitter_state = (uint64_t)(uintptr_t)r ^ uv_hrtime() ^ 0x9e3779b97f4a7c15ULL;
    if (r->jitter_state == 0)
        r->jitter_state = 1;
    uv_timer_init(loop, &r->conn_timer);
    uv_timer_init(loop, &r->op_timer);
    r->conn_timer.data = r;
    r->op_timer.data = r;
    r->open_handles = 2;
    start_connect(r);
    *out = r;
    return 0;
}

bool pskgw_kc_redis_ready(const pskgw_kc_redis_t *r)
{
    return r && r->connected && r->ac && !r->closing;
}

int pskgw_kc_redis_get(pskgw_kc_redis_t *r, const char *key, size_t key_len,
                       pskgw_kc_redis_get_cb cb, void *arg, pskgw_kc_redis_op_t **op)
{
    const char *argv[2] = { "GET", key };
    size_t lens[2] = { 3, key_len };

    if (!pskgw_kc_redis_ready(r))
        return PSKGW_EUNAVAIL;
    return issue(r, OP_GET, cb, arg, 2, argv, lens, op);
}

void pskgw_kc_redis_op_detach(pskgw_kc_redis_op_t *op)
{
    if (op)
        op->cb = NULL;
}

int pskgw_kc_redis_set(pskgw_kc_redis_t *r, const char *key, size_t key_len, const uint8_t *value,
                       size_t value_len, uint64_t px_ms)
{
    char px[24];
    int n = snprintf(px, sizeof(px), "%llu", (unsigned long long)(px_ms ? px_ms : 1));
    const char *argv[5] = { "SET", key, (const char *)value, "PX", px };
    size_t lens[5] = { 3, key_len, value_len, 2, (size_t)n };

    if (!pskgw_kc_redis_ready(r))
        return PSKGW_EUNAVAIL;
    return issue(r, OP_SET, NULL, NULL, 5, argv, lens, NULL);
}

int pskgw_kc_redis_del(pskgw_kc_redis_t *r, const char *key, size_t key_len)
{
    const char *argv[2] = { "DEL", key };
    size_t lens[2] = { 3, key_len };

    if (!pskgw_kc_redis_ready(r))
        return PSKGW_EUNAVAIL;
    return issue(r, OP_SET, NULL, NULL, 2, argv, lens, NULL);
}

void pskgw_kc_redis_stats(const pskgw_kc_redis_t *r, pskgw_kc_redis_stats_t *out)
{
    *out = r->stats;
}

static void maybe_closed(pskgw_kc_redis_t *r)
{
    void (*cb)(void *arg);
    void *arg;

    if (!r->closing || r->open_handles > 0 || r->ac || r->ops_head)
        return;
    cb = r->close_cb;
    arg = r->close_arg;
    free(r->host);
    pskgw_free_secret_str(r->password);
    free(r);
    if (cb)
        cb(arg);
}

static void timer_closed(uv_handle_t *h)
{
    pskgw_kc_redis_t *r = h->data;

    r->open_handles--;
    maybe_closed(r);
}

void pskgw_kc_redis_close(pskgw_kc_redis_t *r, void (*cb)(void *arg), void *arg)
{
    redisAsyncContext *ac = r->ac;

    r->closing = true;
    r->close_cb = cb;
    r->close_arg = arg;
    uv_close((uv_handle_t *)&r->conn_timer, timer_closed);
    uv_close((uv_handle_t *)&r->op_timer, timer_closed);
    if (ac) {
        if (r->connected) {
            r->connected = false;
            r->stats.connected = 0;
        }
        r->ac = NULL;
        redisAsyncFree(ac); /* deferred by hiredis when called from a reply callback */
    }
}
