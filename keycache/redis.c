/* Layer 2 commands of the key cache on a pskgw_redisconn (keycache/redis.h). The connection
 * itself (adapter, resolution, gate, backoff, watchdog) is redisconn/redisconn.c. */
#include "keycache/redis.h"

#include "common/err.h"
#include "common/log.h"
#include "redisconn/redisconn.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pskgw_kc_redis {
    pskgw_redisconn_t *conn;
    uint64_t reply_errors; /* error replies, GET answers that are not strings */
    void (*close_cb)(void *arg);
    void *close_arg;
};

struct pskgw_kc_redis_op {
    pskgw_kc_redis_t *r;
    pskgw_kc_redis_get_cb cb; /* NULL once detached */
    void *arg;
};

int pskgw_kc_redis_new(uv_loop_t *loop, const pskgw_kc_redis_opts_t *opts, pskgw_kc_redis_t **out)
{
    pskgw_redisconn_opts_t co = { 0 };
    pskgw_kc_redis_t *r;
    int rc;

    if (!loop || !opts || !out)
        return PSKGW_EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PSKGW_ENOMEM;
    co.host = opts->host;
    co.port = opts->port;
    co.sentinels = opts->sentinels;
    co.master_name = opts->master_name;
    co.password = opts->password;
    co.db = opts->db;
    co.timeout_ms = opts->timeout_ms;
    co.backoff_min_ms = opts->backoff_min_ms;
    co.backoff_max_ms = opts->backoff_max_ms;
    co.log_name = "keycache";
    if ((rc = pskgw_redisconn_new(loop, &co, &r->conn)) < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

bool pskgw_kc_redis_ready(const pskgw_kc_redis_t *r)
{
    return r && pskgw_redisconn_connected(r->conn);
}

static void count_error_reply(pskgw_kc_redis_t *r, const redisReply *reply)
{
    r->reply_errors++;
    if (reply->type == REDIS_REPLY_ERROR)
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "keycache-redis-reply",
                     "keycache: redis error reply: \"%.*s\"",
                     (int)(reply->len > 200 ? 200 : reply->len), reply->str ? reply->str : "");
}

static void get_done(void *arg, int status, const redisReply *reply)
{
    pskgw_kc_redis_op_t *op = arg;
    const uint8_t *data = NULL;
    size_t len = 0;

    if (status == 0 && reply->type == REDIS_REPLY_STRING) {
        data = (const uint8_t *)reply->str;
        len = reply->len;
    } else if (status == 0 && reply->type == REDIS_REPLY_NIL) {
        status = PSKGW_ENOTFOUND;
    } else if (status == 0) {
        count_error_reply(op->r, reply); /* an error reply, or not a string */
        status = PSKGW_EIO;
    }
    if (op->cb)
        op->cb(op->arg, status, data, len);
    free(op);
}

int pskgw_kc_redis_get(pskgw_kc_redis_t *r, const char *key, size_t key_len,
                       pskgw_kc_redis_get_cb cb, void *arg, pskgw_kc_redis_op_t **out)
{
    const char *argv[2] = { "GET", key };
    size_t lens[2] = { 3, key_len };
    pskgw_kc_redis_op_t *op;
    int rc;

    if (!pskgw_kc_redis_ready(r))
        return PSKGW_EUNAVAIL;
    op = calloc(1, sizeof(*op));
    if (!op)
        return PSKGW_ENOMEM;
    op->r = r;
    op->cb = cb;
    op->arg = arg;
    if ((rc = pskgw_redisconn_command(r->conn, 2, argv, lens, get_done, op, NULL)) < 0) {
        free(op);
        return rc;
    }
    if (out)
        *out = op;
    return 0;
}

void pskgw_kc_redis_op_detach(pskgw_kc_redis_op_t *op)
{
    if (op)
        op->cb = NULL;
}

/* SET and DEL: only failures matter (connection failures are counted by the connection). */
static void write_done(void *arg, int status, const redisReply *reply)
{
    pskgw_kc_redis_t *r = arg;

    if (status == 0 && reply->type != REDIS_REPLY_STATUS && reply->type != REDIS_REPLY_INTEGER)
        count_error_reply(r, reply);
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
    return pskgw_redisconn_command(r->conn, 5, argv, lens, write_done, r, NULL);
}

int pskgw_kc_redis_del(pskgw_kc_redis_t *r, const char *key, size_t key_len)
{
    const char *argv[2] = { "DEL", key };
    size_t lens[2] = { 3, key_len };

    if (!pskgw_kc_redis_ready(r))
        return PSKGW_EUNAVAIL;
    return pskgw_redisconn_command(r->conn, 2, argv, lens, write_done, r, NULL);
}

int pskgw_kc_redis_publish(pskgw_kc_redis_t *r, const char *channel, const char *msg,
                           size_t msg_len)
{
    const char *argv[3] = { "PUBLISH", channel, msg };
    size_t lens[3] = { 7, strlen(channel), msg_len };

    if (!pskgw_kc_redis_ready(r))
        return PSKGW_EUNAVAIL;
    return pskgw_redisconn_command(r->conn, 3, argv, lens, write_done, r, NULL);
}

void pskgw_kc_redis_stats(const pskgw_kc_redis_t *r, pskgw_kc_redis_stats_t *out)
{
    pskgw_redisconn_stats_t cs;

    pskgw_redisconn_stats(r->conn, &cs);
    out->errors = cs.errors + r->reply_errors;
    out->connects = cs.connects;
    out->disconnects = cs.disconnects;
    out->connected = cs.connected;
}

static void conn_closed(void *arg)
{
    pskgw_kc_redis_t *r = arg;
    void (*cb)(void *arg) = r->close_cb;
    void *cb_arg = r->close_arg;

    free(r);
    if (cb)
        cb(cb_arg);
}

void pskgw_kc_redis_close(pskgw_kc_redis_t *r, void (*cb)(void *arg), void *arg)
{
    r->close_cb = cb;
    r->close_arg = arg;
    pskgw_redisconn_close(r->conn, conn_closed, r);
}
