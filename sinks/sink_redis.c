/* redis-stream sink: XADD <stream> [MAXLEN ~ n] * <fields> through hiredis async on the loop
 * (with our own libuv adapter, below). One connection, pipelined; AUTH and SELECT first when
 * configured, and no XADD before they (and a PING) answered: a failed SELECT drops the
 * connection (XADDs would land in another database), so does no answer within timeout_ms;
 * reconnects with backoff.
 *
 * Fields: payload "json" (default): one field `envelope` = the JSON envelope. payload "raw":
 * the metadata fields of pskgw_sink_meta() (message_id, domain, ..., payload_len, e2e_*) and
 * `payload` = the raw bytes.
 * The stream name is a template ({domain}, {rot_public_uid}, {psk_identity}, {listener}).
 * Replies: an ID delivered; no reply (connection lost) transient; error replies LOADING, BUSY,
 * OOM, TRYAGAIN, MASTERDOWN, READONLY, MISCONF (writes stopped after a failed save),
 * CLUSTERDOWN, NOREPLICAS, NOAUTH, WRONGPASS, NOPERM, "ERR max number of clients" (a
 * configuration problem, not the message's) transient; any other error
 * (WRONGTYPE, ERR ...) permanent: the message is dead-lettered.
 * hiredis has no command timeout: a watchdog (every 250 ms) drops the connection when the
 * oldest outstanding XADD is older than redis.timeout_ms (a hung server); its messages are
 * retried on the next connection.
 * The context is never freed inside a hiredis callback: close and the watchdog free it from
 * timer callbacks.
 *
 * Our own libuv adapter instead of hiredis' adapters/libuv.h: that one ignores a poll error
 * status, so a refused connect is never noticed (no connect callback, ever). Ours hands errors
 * to hiredis (which then reads the socket error) and counts its handles, so the backend reports
 * itself closed only after the last one is closed.
 */
#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "sinks/internal.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONNECT_MIN_MS 100

typedef struct redis_req redis_req_t;

typedef struct {
    pskgw_sink_t *core;
    uv_loop_t *loop;
    redisAsyncContext *ac;
    char *host;
    int port;
    int db;
    char *password; /* secret: wiped on free */
    char *stream;
    uint64_t maxlen;
    bool raw;
    bool connected;      /* usable: AUTH, SELECT and PING answered */
    bool select_failed;  /* on the current connection */
    uint64_t connect_at; /* uv_now when the current connection was started */
    bool closing;
    unsigned attempts; /* failed connects in a row */
    uint64_t retry_max_ms;
    uv_timer_t timer; /* reconnect; on close: the deferred free */
    uv_timer_t watch; /* reply timeout */
    uint64_t timeout_ms;
    unsigned handles;          /* our timers not closed yet, and the name lookup in progress */
    pskgw_sink_resolve_t *res; /* host name lookup (thread pool) in progress */
    unsigned adapters;         /* adapter poll handles not closed yet */
    redis_req_t *reqs;
} redis_sink_t;

typedef struct {
    redisAsyncContext *ac;
    redis_sink_t *r;
    uv_poll_t poll;
    int events;
} adapter_t;

static void maybe_closed(redis_sink_t *r);

static void ad_poll_cb(uv_poll_t *h, int status, int events)
{
    adapter_t *a = h->data;

    if (status < 0) /* let hiredis find the socket error (refused connect, reset) */
        events = a->events & UV_WRITABLE ? UV_WRITABLE : UV_READABLE;
    if (a->ac && (events & UV_READABLE))
        redisAsyncHandleRead(a->ac);
    if (a->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(a->ac);
}

static void ad_update(adapter_t *a, int add, int del)
{
    a->events = (a->events | add) & ~del;
    if (a->events)
        uv_poll_start(&a->poll, a->events, ad_poll_cb);
    else
        uv_poll_stop(&a->poll);
}

static void ad_add_read(void *p)
{
    ad_update(p, UV_READABLE, 0);
}

static void ad_del_read(void *p)
{
    ad_update(p, 0, UV_READABLE);
}

static void ad_add_write(void *p)
{
    ad_update(p, UV_WRITABLE, 0);
}

static void ad_del_write(void *p)
{
    ad_update(p, 0, UV_WRITABLE);
}

static void ad_closed(uv_handle_t *h)
{
    adapter_t *a = h->data;
    redis_sink_t *r = a->r;

    free(a);
    r->adapters--;
    maybe_closed(r);
}

static void ad_cleanup(void *p)
{
    adapter_t *a = p;

    a->ac = NULL; /* the context is going away */
    uv_close((uv_handle_t *)&a->poll, ad_closed);
}

static int ad_attach(redis_sink_t *r, redisAsyncContext *ac)
{
    adapter_t *a = calloc(1, sizeof(*a));

    if (!a)
        return PSKGW_ENOMEM;
    if (uv_poll_init(r->loop, &a->poll, ac->c.fd) != 0) {
        free(a);
        return PSKGW_EIO;
    }
    a->ac = ac;
    a->r = r;
    a->poll.data = a;
    r->adapters++;
    ac->ev.data = a;
    ac->ev.addRead = ad_add_read;
    ac->ev.delRead = ad_del_read;
    ac->ev.addWrite = ad_add_write;
    ac->ev.delWrite = ad_del_write;
    ac->ev.cleanup = ad_cleanup;
    return 0;
}

struct redis_req {
    redis_req_t *prev;
    redis_req_t *next;
    redis_sink_t *r;
    void *token;
    uint64_t sent; /* uv_now at send */
};

static void connect_now(redis_sink_t *r, const char *ip);
static void resolve_now(redis_sink_t *r);

static void req_unlink(redis_sink_t *r, redis_req_t *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        r->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
}

static void timer_cb(uv_timer_t *t)
{
    redis_sink_t *r = t->data;

    if (!r->closing)
        resolve_now(r);
}

static void lost(redis_sink_t *r);

/* Drop the connection now (from a timer callback only): pending replies come back NULL
 * (transient failures), then we reconnect. */
static void drop_connection(redis_sink_t *r)
{
    redisAsyncContext *ac = r->ac;

    lost(r); /* r->ac = NULL and connected = false first: no send reaches the dying context */
    if (ac) {
        ac->data = NULL; /* its connect/disconnect callbacks find no sink */
        redisAsyncFree(ac);
    }
}

static void watch_cb(uv_timer_t *t)
{
    redis_sink_t *r = t->data;
    uint64_t now = uv_now(r->loop);

    if (r->closing || !r->ac)
        return;
    if (!r->connected && now - r->connect_at > r->timeout_ms) {
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(r->core),
                     "sink \"%s\": redis %s:%d not ready within %llu ms: reconnecting",
                     pskgw_sink_name(r->core), r->host, r->port, (unsigned long long)r->timeout_ms);
        drop_connection(r);
        return;
    }
    for (redis_req_t *q = r->reqs; q; q = q->next)
        if (now - q->sent > r->timeout_ms) {
            PSKGW_WARN("sink \"%s\": redis %s:%d did not answer within %llu ms: reconnecting",
                       pskgw_sink_name(r->core), r->host, r->port,
                       (unsigned long long)r->timeout_ms);
            drop_connection(r);
            return;
        }
}

static void schedule_reconnect(redis_sink_t *r)
{
    uint64_t d;

    if (r->closing || uv_is_active((uv_handle_t *)&r->timer))
        return;
    d = pskgw_sink_backoff_ms(++r->attempts, RECONNECT_MIN_MS, r->retry_max_ms, (uint32_t)rand());
    uv_timer_start(&r->timer, timer_cb, d, 0);
}

static void lost(redis_sink_t *r)
{
    r->ac = NULL; /* hiredis frees it after this callback */
    if (r->connected)
        PSKGW_WARN("sink \"%s\": redis connection lost", pskgw_sink_name(r->core));
    r->connected = false;
    pskgw_sink_set_connected(r->core, false);
    schedule_reconnect(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    redis_sink_t *r = ac->data;

    if (!r || r->closing)
        return;
    if (status != REDIS_OK) {
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(r->core),
                     "sink \"%s\": cannot connect to redis %s:%d: %s", pskgw_sink_name(r->core),
                     r->host, r->port, ac->errstr);
        lost(r);
        return;
    }
    /* usable once AUTH and SELECT answered: ready_cb */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_sink_t *r = ac->data;

    (void)status;
    if (!r || r->closing)
        return;
    lost(r);
}

static void auth_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_sink_t *r = ac->data;
    redisReply *rep = reply;

    (void)priv;
    if (r && rep && rep->type == REDIS_REPLY_ERROR)
        PSKGW_LOG_RL(PSKGW_LOG_ERR, pskgw_sink_name(r->core), "sink \"%s\": redis AUTH: %s",
                     pskgw_sink_name(r->core), rep->str);
}

static void select_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_sink_t *r = ac->data;
    redisReply *rep = reply;

    (void)priv;
    if (r && ac == r->ac && rep && rep->type == REDIS_REPLY_ERROR) {
        PSKGW_LOG_RL(PSKGW_LOG_ERR, pskgw_sink_name(r->core), "sink \"%s\": redis SELECT %d: %s",
                     pskgw_sink_name(r->core), r->db, rep->str);
        r->select_failed = true;
    }
}

/* The PING sent after AUTH and SELECT answered: the connection is usable, unless SELECT failed
 * (then every XADD would go to another database: drop it and retry later). */
static void ready_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_sink_t *r = ac->data;

    (void)priv;
    if (!r || r->closing || ac != r->ac || !reply)
        return; /* no reply: the connection is gone (on_disconnect) */
    if (r->select_failed) {
        redisAsyncDisconnect(ac); /* deferred by hiredis until this callback returned */
        return;
    }
    PSKGW_INFO("sink \"%s\": connected to redis %s:%d", pskgw_sink_name(r->core), r->host, r->port);
    r->connected = true;
    r->attempts = 0;
    pskgw_sink_set_connected(r->core, true);
}

static void resolved(void *arg, int status, const char *ip)
{
    redis_sink_t *r = arg;

    r->res = NULL;
    r->handles--;
    if (r->closing) {
        maybe_closed(r);
        return;
    }
    if (status < 0) {
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(r->core),
                     "sink \"%s\": cannot resolve redis host %s", pskgw_sink_name(r->core),
                     r->host);
        schedule_reconnect(r);
        return;
    }
    connect_now(r, ip);
}

/* The host name is resolved on the thread pool: hiredis then gets a numeric address and does
 * no name lookup on the loop thread. */
static void resolve_now(redis_sink_t *r)
{
    if (r->res)
        return;
    if (pskgw_sink_resolve(r->loop, r->host, resolved, r, &r->res) < 0) {
        r->res = NULL;
        schedule_reconnect(r);
        return;
    }
    r->handles++;
}

static void connect_now(redis_sink_t *r, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, r->port);

    if (!ac || ac->err) {
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(r->core),
                     "sink \"%s\": cannot connect to redis %s:%d: %s", pskgw_sink_name(r->core),
                     r->host, r->port, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    r->select_failed = false;
    r->connect_at = uv_now(r->loop);
    if (ad_attach(r, ac) < 0) {
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
        redisAsyncCommandArgv(ac, auth_cb, NULL, 2, argv, lens);
    }
    if (r->db > 0) {
        char db[16];
        const char *argv[2] = { "SELECT", db };
        size_t lens[2];

        snprintf(db, sizeof(db), "%d", r->db);
        lens[0] = 6;
        lens[1] = strlen(db);
        /* queued before any XADD on this connection: commands run in order */
        redisAsyncCommandArgv(ac, select_cb, NULL, 2, argv, lens);
    }
    /* also drives the connect (hiredis notices it only when it has something to write); its
     * answer makes the connection usable */
    {
        const char *argv[1] = { "PING" };
        size_t lens[1] = { 4 };
        redisAsyncCommandArgv(ac, ready_cb, NULL, 1, argv, lens);
    }
}

static bool transient_error(const char *s)
{
    /* server conditions and configuration problems, not the message's fault: MISCONF (a
     * failed RDB save stops writes until it is fixed), NOPERM (ACL), too many clients */
    static const char *const t[] = { "LOADING",
                                     "BUSY",
                                     "OOM",
                                     "TRYAGAIN",
                                     "MASTERDOWN",
                                     "READONLY",
                                     "MISCONF",
                                     "CLUSTERDOWN",
                                     "NOREPLICAS",
                                     "NOAUTH",
                                     "WRONGPASS",
                                     "NOPERM",
                                     "ERR max number of clients" };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strncmp(s, t[i], strlen(t[i])) == 0)
            return true;
    return false;
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    redis_req_t *q = priv;
    redis_sink_t *r = q->r;
    redisReply *rep = reply;
    void *token = q->token;
    int status;

    (void)ac;
    req_unlink(r, q);
    free(q);
    if (r->closing)
        return; /* tokens are forgotten at close */
    if (!rep)
        status = PSKGW_EUNAVAIL;
    else if (rep->type == REDIS_REPLY_ERROR)
        status = transient_error(rep->str) ? PSKGW_EUNAVAIL : PSKGW_EBADREQ;
    else
        status = 0;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(r->core), "sink \"%s\": XADD: %s",
                     pskgw_sink_name(r->core), rep->str);
    pskgw_sink_result(r->core, token, status);
}

static int redis_send(void *impl, pskgw_msg_t *msg, void *token)
{
    redis_sink_t *r = impl;
    const char *argv[48];
    size_t lens[48];
    int argc = 0;
    char maxlen[24];
    char *key = NULL;
    pskgw_sink_meta_t meta;
    redis_req_t *q;
    int rc;

#define ARG(s, n)         \
    do {                  \
        argv[argc] = (s); \
        lens[argc] = (n); \
        argc++;           \
    } while (0)
#define ARGS(s) ARG((s), strlen(s))
    if (!r->connected || !r->ac)
        return PSKGW_EUNAVAIL;
    if ((rc = pskgw_sink_template(r->stream, &msg->env, &key)) < 0)
        return rc;
    q = calloc(1, sizeof(*q));
    if (!q) {
        free(key);
        return PSKGW_ENOMEM;
    }
    ARGS("XADD");
    ARGS(key);
    if (r->maxlen) {
        snprintf(maxlen, sizeof(maxlen), "%llu", (unsigned long long)r->maxlen);
        ARGS("MAXLEN");
        ARGS("~");
        ARGS(maxlen);
    }
    ARGS("*");
    if (r->raw) {
        pskgw_sink_meta(msg, &meta);
        for (size_t i = 0; i < meta.n; i++) {
            ARGS(meta.name[i]);
            ARGS(meta.value[i]);
        }
        ARGS("payload");
        ARG((const char *)msg->env.payload, msg->env.payload_len);
    } else {
        const char *json;
        size_t len;
        if ((rc = pskgw_msg_json(msg, &json, &len)) < 0) {
            free(key);
            free(q);
            return rc;
        }
        ARGS("envelope");
        ARG(json, len);
    }
#undef ARG
#undef ARGS
    q->r = r;
    q->token = token;
    q->sent = uv_now(r->loop);
    /* hiredis formats the command into its output buffer now: argv may go after the call */
    if (redisAsyncCommandArgv(r->ac, reply_cb, q, argc, argv, lens) != REDIS_OK) {
        free(key);
        free(q);
        return PSKGW_EUNAVAIL;
    }
    free(key);
    q->next = r->reqs;
    if (r->reqs)
        r->reqs->prev = q;
    r->reqs = q;
    return 0;
}

/* redis://[host][:port][/db]; host "[v6]" for IPv6; empty host: 127.0.0.1 */
static int parse_url(redis_sink_t *r, const char *url)
{
    const char *p;
    const char *hend;
    const char *rest;
    char *end;

    if (!url || strncmp(url, "redis://", 8) != 0)
        return PSKGW_ECONFIG;
    p = url + 8;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (!hend)
            return PSKGW_ECONFIG;
        r->host = strndup(p + 1, (size_t)(hend - p - 1));
        rest = hend + 1;
    } else {
        hend = p + strcspn(p, ":/");
        r->host = hend == p ? strdup("127.0.0.1") : strndup(p, (size_t)(hend - p));
        rest = hend;
    }
    if (!r->host)
        return PSKGW_ENOMEM;
    if (strchr(r->host, '@'))
        return PSKGW_ECONFIG; /* credentials belong in the password option */
    r->port = 6379;
    if (*rest == ':') {
        long v = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || v <= 0 || v > 65535 || (*end && *end != '/'))
            return PSKGW_ECONFIG;
        r->port = (int)v;
        rest = end;
    }
    if (*rest == '/' && rest[1]) {
        long v = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || *end || v < 0 || v > 1000000)
            return PSKGW_ECONFIG;
        r->db = (int)v;
    } else if (*rest && strcmp(rest, "/") != 0) {
        return PSKGW_ECONFIG;
    }
    return 0;
}

static int redis_create(pskgw_sink_t *core, uv_loop_t *loop, const pskgw_sink_options_t *o,
                        void **impl)
{
    redis_sink_t *r = calloc(1, sizeof(*r));
    int rc;

    if (!r)
        return PSKGW_ENOMEM;
    r->core = core;
    r->loop = loop;
    r->raw = o->payload == PSKGW_SINK_PAYLOAD_RAW;
    r->maxlen = o->redis.maxlen;
    r->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : 30000;
    if (o->redis.host) {
        r->host = strdup(o->redis.host);
        r->port = o->redis.port ? o->redis.port : 6379;
        r->db = (int)o->redis.db;
        rc = r->host ? 0 : PSKGW_ENOMEM;
        if (r->port < 0 || r->port > 65535)
            rc = PSKGW_ECONFIG;
    } else {
        rc = parse_url(r, o->redis.url);
    }
    if (rc == 0 && o->redis.password && !(r->password = strdup(o->redis.password)))
        rc = PSKGW_ENOMEM;
    if (rc == 0 && (!o->redis.stream || !o->redis.stream[0]))
        rc = PSKGW_ECONFIG;
    if (rc == 0 && !(r->stream = strdup(o->redis.stream)))
        rc = PSKGW_ENOMEM;
    if (rc < 0) {
        if (rc == PSKGW_ECONFIG)
            PSKGW_ERR("sink \"%s\": bad redis url or stream", o->name);
        free(r->host);
        free(r->stream);
        pskgw_free_secret_str(r->password);
        free(r);
        return rc;
    }
    r->timeout_ms = o->redis.timeout_ms ? o->redis.timeout_ms : 10000;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    uv_timer_init(loop, &r->watch);
    r->watch.data = r;
    r->handles = 2;
    /* connect on the next loop turn, never from inside create */
    uv_timer_start(&r->timer, timer_cb, 0, 0);
    uv_timer_start(&r->watch, watch_cb, 250, 250);
    *impl = r;
    return 0;
}

static void maybe_closed(redis_sink_t *r)
{
    pskgw_sink_t *core = r->core;

    if (!r->closing || r->handles > 0 || r->adapters > 0)
        return;
    free(r->host);
    free(r->stream);
    pskgw_free_secret_str(r->password);
    free(r);
    pskgw_sink_backend_closed(core);
}

static void timer_closed(uv_handle_t *h)
{
    redis_sink_t *r = h->data;

    r->handles--;
    maybe_closed(r);
}

static void close_cb(uv_timer_t *t)
{
    redis_sink_t *r = t->data;

    if (r->res)
        pskgw_sink_resolve_cancel(r->res); /* its callback still comes, then frees nothing */

    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac); /* pending replies come back NULL: ignored, their reqs freed */
    }
    while (r->reqs) {
        redis_req_t *q = r->reqs;
        req_unlink(r, q);
        free(q);
    }
    uv_close((uv_handle_t *)&r->timer, timer_closed);
    uv_close((uv_handle_t *)&r->watch, timer_closed);
}

static void redis_close(void *impl)
{
    redis_sink_t *r = impl;

    r->closing = true;
    uv_timer_stop(&r->timer);
    uv_timer_stop(&r->watch);
    uv_timer_start(&r->timer, close_cb, 0, 0);
}

const pskgw_sink_backend_t pskgw_sink_backend_redis = {
    .type = "redis-stream",
    .raw_ok = true,
    .create = redis_create,
    .send = redis_send,
    .reopen = NULL,
    .close = redis_close,
};
