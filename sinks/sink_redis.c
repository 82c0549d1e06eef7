/* redis-stream sink: XADD <stream> [MAXLEN ~ n] * <fields> on one Redis connection
 * (redisconn/redisconn.h: host names resolved on the thread pool, AUTH and SELECT then PING before
 * the connection is usable, so that no XADD lands in another database; a connection not ready
 * or a reply not received within redis.timeout_ms is dropped and its messages retried;
 * reconnects with capped jittered backoff from 100 ms to retry_max_ms). Pipelined.
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
 */
#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "redisconn/redisconn.h"
#include "sinks/internal.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONNECT_MIN_MS 100
#define WATCH_MS         1000 /* how often a connection that never came up is looked at */

typedef struct {
    pskgw_sink_t *core;
    uv_loop_t *loop;
    pskgw_redisconn_t *conn;
    char *host; /* until the connection is made (it copies) */
    int port;
    char *sentinels;   /* redis+sentinel: "h:p,h:p", until the connection is made; else NULL */
    char *master_name; /* redis+sentinel: the master's name */
    int db;
    char *password; /* secret: wiped on free, right after the connection copied it */
    char *stream;
    uint64_t maxlen;
    char maxlen_s[24]; /* maxlen as text, for the XADD */
    bool raw;
    pskgw_sink_freelist_t free_reqs; /* redis_req_t: none allocated per message in steady state */
    pskgw_sink_buf_t key_buf;        /* the stream key of the message being sent */
    bool closing;                    /* tokens are forgotten */
    /* The connection reports only the loss of a READY connection: a Redis down from the start
     * is seen by this timer (failed attempts while not READY), so an idle sink is not taken for
     * healthy. */
    uv_timer_t watch;
    uint64_t errors_seen;
    unsigned pending; /* closing: the connection and the timer */
} redis_sink_t;

typedef struct {
    redis_sink_t *r;
    void *token;
} redis_req_t;

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

static void reply_cb(void *arg, int status, const redisReply *rep)
{
    redis_req_t *q = arg;
    redis_sink_t *r = q->r;
    void *token = q->token;

    pskgw_sink_fl_put(&r->free_reqs, q);
    if (r->closing)
        return; /* tokens are forgotten at close */
    if (status < 0)
        status = PSKGW_EUNAVAIL; /* no reply: connection lost, dropped or hung */
    else if (rep->type == REDIS_REPLY_ERROR)
        status = transient_error(rep->str) ? PSKGW_EUNAVAIL : PSKGW_EBADREQ;
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
    const char *key;
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
    if (!pskgw_redisconn_ready(r->conn))
        return PSKGW_EUNAVAIL;
    if ((rc = pskgw_sink_template(r->stream, &msg->env, &r->key_buf, &key)) < 0)
        return rc;
    ARGS("XADD");
    ARGS(key);
    if (r->maxlen) {
        ARGS("MAXLEN");
        ARGS("~");
        ARGS(r->maxlen_s);
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
        if ((rc = pskgw_msg_json(msg, &json, &len)) < 0)
            return rc;
        ARGS("envelope");
        ARG(json, len);
    }
#undef ARG
#undef ARGS
    if (!(q = pskgw_sink_fl_get(&r->free_reqs, sizeof(*q))))
        return PSKGW_ENOMEM;
    q->r = r;
    q->token = token;
    /* the command is formatted now: argv may go after the call */
    rc = pskgw_redisconn_command(r->conn, argc, argv, lens, reply_cb, q, NULL);
    if (rc < 0)
        pskgw_sink_fl_put(&r->free_reqs, q);
    return rc;
}

/* redis+sentinel://h[:p],h[:p]/master[/db]: the list is checked by redisconn. */
static int parse_sentinel_url(redis_sink_t *r, const char *url)
{
    const char *p = url + 17;
    const char *lend = p + strcspn(p, "/");
    const char *name = *lend == '/' ? lend + 1 : lend;
    const char *nend = name + strcspn(name, "/");
    char *end;

    if (lend == p || nend == name || strchr(p, '@'))
        return PSKGW_ECONFIG;
    r->sentinels = strndup(p, (size_t)(lend - p));
    r->master_name = strndup(name, (size_t)(nend - name));
    if (!r->sentinels || !r->master_name)
        return PSKGW_ENOMEM;
    if (*nend == '/' && nend[1]) {
        long v = strtol(nend + 1, &end, 10);
        if (end == nend + 1 || *end || v < 0 || v > 1000000)
            return PSKGW_ECONFIG;
        r->db = (int)v;
    }
    return 0;
}

/* redis://[host][:port][/db]; host "[v6]" for IPv6; empty host: 127.0.0.1 */
static int parse_url(redis_sink_t *r, const char *url)
{
    const char *p;
    const char *hend;
    const char *rest;
    char *end;

    if (url && strncmp(url, "redis+sentinel://", 17) == 0)
        return parse_sentinel_url(r, url);
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

static void state_cb(void *arg, bool ready)
{
    redis_sink_t *r = arg;

    if (!r->closing)
        pskgw_sink_set_connected(r->core, ready);
}

static void sink_free(redis_sink_t *r)
{
    free(r->host);
    free(r->sentinels);
    free(r->master_name);
    free(r->stream);
    pskgw_free_secret_str(r->password);
    pskgw_sink_fl_free(&r->free_reqs);
    pskgw_sink_buf_free(&r->key_buf);
    free(r);
}

static int connect_start(redis_sink_t *r, const pskgw_sink_options_t *o)
{
    pskgw_redisconn_opts_t co = { 0 };
    char log_name[160];
    int rc;

    snprintf(log_name, sizeof(log_name), "sink \"%s\"", o->name ? o->name : "");
    co.host = r->host;
    co.port = (uint16_t)r->port;
    co.sentinels = r->sentinels;
    co.master_name = r->master_name;
    co.password = r->password;
    co.db = r->db;
    co.timeout_ms = o->redis.timeout_ms ? o->redis.timeout_ms : 10000;
    co.backoff_max_ms =
        o->retry_max_ms ? (uint32_t)(o->retry_max_ms < UINT32_MAX ? o->retry_max_ms : UINT32_MAX)
                        : 30000;
    co.backoff_min_ms = co.backoff_max_ms < RECONNECT_MIN_MS ? co.backoff_max_ms : RECONNECT_MIN_MS;
    co.log_name = log_name;
    co.on_state = state_cb;
    co.arg = r;
    rc = pskgw_redisconn_new(r->loop, &co, &r->conn);
    if (rc == PSKGW_EINVAL)
        rc = PSKGW_ECONFIG;
    return rc;
}

static void watch_cb(uv_timer_t *t)
{
    redis_sink_t *r = t->data;
    pskgw_redisconn_stats_t st;

    pskgw_redisconn_stats(r->conn, &st);
    if (st.errors != r->errors_seen && pskgw_redisconn_state(r->conn) != PSKGW_REDISCONN_READY)
        pskgw_sink_set_connected(r->core, false);
    r->errors_seen = st.errors;
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
    snprintf(r->maxlen_s, sizeof(r->maxlen_s), "%llu", (unsigned long long)r->maxlen);
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
    if (rc == 0)
        rc = connect_start(r, o); /* connects on the next loop turn, never inside create */
    if (rc < 0) {
        if (rc == PSKGW_ECONFIG)
            PSKGW_ERR("sink \"%s\": bad redis url or stream", o->name);
        sink_free(r);
        return rc;
    }
    free(r->host);
    r->host = NULL;
    free(r->sentinels);
    r->sentinels = NULL;
    free(r->master_name);
    r->master_name = NULL;
    pskgw_free_secret_str(r->password);
    r->password = NULL;
    uv_timer_init(loop, &r->watch);
    r->watch.data = r;
    uv_timer_start(&r->watch, watch_cb, WATCH_MS, WATCH_MS);
    *impl = r;
    return 0;
}

static void part_closed(redis_sink_t *r)
{
    pskgw_sink_t *core = r->core;

    if (--r->pending > 0)
        return;
    sink_free(r);
    pskgw_sink_backend_closed(core);
}

static void conn_closed(void *arg)
{
    part_closed(arg);
}

static void watch_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

/* Outstanding XADDs complete with PSKGW_ECANCELED (ignored: closing); the connection calls back
 * from a libuv close callback, never inside this call. */
static void redis_close(void *impl)
{
    redis_sink_t *r = impl;

    r->closing = true;
    r->pending = 2;
    uv_close((uv_handle_t *)&r->watch, watch_closed);
    pskgw_redisconn_close(r->conn, conn_closed, r);
}

const pskgw_sink_backend_t pskgw_sink_backend_redis = {
    .type = "redis-stream",
    .raw_ok = true,
    .create = redis_create,
    .send = redis_send,
    .reopen = NULL,
    .close = redis_close,
};
