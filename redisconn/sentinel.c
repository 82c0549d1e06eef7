/* Master discovery through Redis Sentinel: the contract is in sentinel.h.
 *
 * Each sentinel is a plain pskgw_redisconn (no password, database 0), so resolution off the
 * loop, the gate, the backoff, the watchdog and safe freeing are the ones the data connection
 * has. An ask walks the READY sentinels in list order, one command at a time. */
#include "redisconn/sentinel.h"

#include "common/err.h"
#include "common/log.h"
#include "redisconn/redisconn.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENTINELS_MAX 16
#define SENTINEL_PORT 26379

struct pskgw_redisconn_sentinels {
    char *master_name;
    char *log_name;
    void (*up)(void *arg);
    void *arg;
    size_t n;
    pskgw_redisconn_t *conn[SENTINELS_MAX];
    unsigned open;              /* connections not yet closed */
    pskgw_redisconn_cmd_t *cmd; /* the ask in flight, NULL when none */
    size_t at;                  /* the sentinel it was sent to */
    pskgw_redisconn_master_cb cb;
    void *cb_arg;
    bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* One "host[:port]" or "[v6][:port]" of len bytes into host and port. 0 or PSKGW_EINVAL. */
static int parse_one(const char *s, size_t len, char *host, size_t hostsz, uint16_t *port)
{
    const char *end = s + len;
    const char *h = s, *hend, *p;
    unsigned long v = SENTINEL_PORT;

    if (len > 0 && s[0] == '[') {
        h = s + 1;
        hend = memchr(h, ']', (size_t)(end - h));
        if (!hend)
            return PSKGW_EINVAL;
        p = hend + 1;
    } else {
        hend = memchr(s, ':', len);
        if (!hend)
            hend = end;
        p = hend;
    }
    if (hend == h || (size_t)(hend - h) >= hostsz)
        return PSKGW_EINVAL;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    if (strpbrk(host, " /@?#[]") || (s[0] != '[' && strchr(host, ':')))
        return PSKGW_EINVAL;
    if (p < end) {
        char digits[8];
        char *e;

        if (*p != ':' || end - p - 1 < 1 || end - p - 1 > 5)
            return PSKGW_EINVAL;
        memcpy(digits, p + 1, (size_t)(end - p - 1));
        digits[end - p - 1] = '\0';
        if (digits[0] < '0' || digits[0] > '9')
            return PSKGW_EINVAL;
        v = strtoul(digits, &e, 10);
        if (*e != '\0' || v < 1 || v > 65535)
            return PSKGW_EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

/* Calls each(host, port, ctx) for each entry of list; 0 or the first error. */
static int walk(const char *list, int (*each)(const char *host, uint16_t port, void *ctx),
                void *ctx)
{
    const char *p = list;
    size_t n = 0;

    if (!list || !list[0])
        return PSKGW_EINVAL;
    for (;;) {
        size_t len = strcspn(p, ",");
        char host[256];
        uint16_t port;
        int rc;

        if (++n > SENTINELS_MAX || parse_one(p, len, host, sizeof(host), &port) < 0)
            return PSKGW_EINVAL;
        if (each && (rc = each(host, port, ctx)) < 0)
            return rc;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

int pskgw_redisconn_sentinels_check(const char *list)
{
    return walk(list, NULL, NULL);
}

static void conn_state(void *arg, bool ready)
{
    pskgw_redisconn_sentinels_t *s = arg;

    if (ready && !s->closing && s->up)
        s->up(s->arg);
}

typedef struct {
    pskgw_redisconn_sentinels_t *s;
    uv_loop_t *loop;
    const pskgw_redisconn_opts_t *base;
} add_ctx_t;

static int add_one(const char *host, uint16_t port, void *ctx_v)
{
    add_ctx_t *ctx = ctx_v;
    pskgw_redisconn_opts_t o = *ctx->base;
    char log_name[320];
    int rc;

    snprintf(log_name, sizeof(log_name), "%s: sentinel \"%s:%u\"", ctx->s->log_name, host,
             (unsigned)port);
    o.host = host;
    o.port = port;
    o.log_name = log_name;
    rc = pskgw_redisconn_new(ctx->loop, &o, &ctx->s->conn[ctx->s->n]);
    if (rc == 0) {
        ctx->s->n++;
        ctx->s->open++;
    }
    return rc;
}

static void set_free(pskgw_redisconn_sentinels_t *s)
{
    free(s->master_name);
    free(s->log_name);
    free(s);
}

static void conn_closed(void *arg)
{
    pskgw_redisconn_sentinels_t *s = arg;
    void (*cb)(void *) = s->close_cb;
    void *cb_arg = s->close_arg;

    if (--s->open > 0)
        return;
    set_free(s);
    if (cb)
        cb(cb_arg);
}

int pskgw_redisconn_sentinels_new(uv_loop_t *loop, const char *list, const char *master_name,
                                  uint32_t timeout_ms, uint32_t backoff_min_ms,
                                  uint32_t backoff_max_ms, const char *log_name,
                                  void (*up)(void *arg), void *arg,
                                  pskgw_redisconn_sentinels_t **out)
{
    pskgw_redisconn_opts_t base = { 0 };
    pskgw_redisconn_sentinels_t *s;
    add_ctx_t ctx;
    int rc;

    if (!loop || !master_name || !master_name[0] || !out || walk(list, NULL, NULL) < 0)
        return PSKGW_EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return PSKGW_ENOMEM;
    s->master_name = strdup(master_name);
    s->log_name = strdup(log_name ? log_name : "redis");
    if (!s->master_name || !s->log_name) {
        set_free(s);
        return PSKGW_ENOMEM;
    }
    s->up = up;
    s->arg = arg;
    base.timeout_ms = timeout_ms;
    base.backoff_min_ms = backoff_min_ms;
    base.backoff_max_ms = backoff_max_ms;
    base.on_state = conn_state;
    base.arg = s;
    ctx = (add_ctx_t){ s, loop, &base };
    rc = walk(list, add_one, &ctx);
    if (rc < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    if (s->n == 0) {
        set_free(s);
        return rc;
    }
    pskgw_redisconn_sentinels_close(s, NULL, NULL); /* frees s from the close callbacks */
    return rc;
}

static int send_from(pskgw_redisconn_sentinels_t *s, size_t from);

static void finish(pskgw_redisconn_sentinels_t *s, int status, const char *host, uint16_t port)
{
    pskgw_redisconn_master_cb cb = s->cb;

    s->cmd = NULL;
    s->cb = NULL;
    if (cb)
        cb(s->cb_arg, status, host, port);
}

/* [ip, port] into host and port; false when the reply is anything else. */
static bool master_addr(const redisReply *r, char *host, size_t hostsz, uint16_t *port)
{
    char digits[8];
    char *end;
    unsigned long v;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[0]->len == 0 || r->element[0]->len >= hostsz || r->element[1]->len == 0 ||
        r->element[1]->len >= sizeof(digits))
        return false;
    memcpy(digits, r->element[1]->str, r->element[1]->len);
    digits[r->element[1]->len] = '\0';
    v = strtoul(digits, &end, 10);
    if (*end != '\0' || v < 1 || v > 65535)
        return false;
    memcpy(host, r->element[0]->str, r->element[0]->len);
    host[r->element[0]->len] = '\0';
    *port = (uint16_t)v;
    return true;
}

static void ask_reply(void *arg, int status, const redisReply *reply)
{
    pskgw_redisconn_sentinels_t *s = arg;
    char host[256];
    uint16_t port;

    s->cmd = NULL;
    if (status == 0 && master_addr(reply, host, sizeof(host), &port)) {
        finish(s, 0, host, port);
        return;
    }
    if (status == 0)
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, s->log_name,
                     "%s: sentinel %zu of %zu has no address for master \"%s\"%s%.*s", s->log_name,
                     s->at + 1, s->n, s->master_name, reply->type == REDIS_REPLY_ERROR ? ": " : "",
                     reply->type == REDIS_REPLY_ERROR ? (int)(reply->len > 200 ? 200 : reply->len)
                                                      : 0,
                     reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str : "");
    if (s->closing || send_from(s, s->at + 1) < 0)
        finish(s, PSKGW_EUNAVAIL, NULL, 0);
}

/* Send the ask to the first READY sentinel at or after from. */
static int send_from(pskgw_redisconn_sentinels_t *s, size_t from)
{
    static const char *const words[2] = { "SENTINEL", "get-master-addr-by-name" };
    const char *argv[3] = { words[0], words[1], s->master_name };
    size_t lens[3] = { 8, 23, strlen(s->master_name) };

    for (size_t i = from; i < s->n; i++) {
        if (!pskgw_redisconn_ready(s->conn[i]))
            continue;
        if (pskgw_redisconn_command(s->conn[i], 3, argv, lens, ask_reply, s, &s->cmd) == 0) {
            s->at = i;
            return 0;
        }
    }
    return PSKGW_EUNAVAIL;
}

int pskgw_redisconn_sentinels_ask(pskgw_redisconn_sentinels_t *s, pskgw_redisconn_master_cb cb,
                                  void *arg)
{
    int rc;

    if (s->closing)
        return PSKGW_EUNAVAIL;
    if (s->cb)
        return PSKGW_EBUSY;
    s->cb = cb;
    s->cb_arg = arg;
    rc = send_from(s, 0);
    if (rc < 0)
        s->cb = NULL;
    return rc;
}

void pskgw_redisconn_sentinels_cancel(pskgw_redisconn_sentinels_t *s)
{
    if (s->cmd)
        pskgw_redisconn_cmd_detach(s->cmd);
    s->cmd = NULL;
    s->cb = NULL;
}

uint64_t pskgw_redisconn_sentinels_errors(const pskgw_redisconn_sentinels_t *s)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < s->n; i++) {
        pskgw_redisconn_stats_t st;

        pskgw_redisconn_stats(s->conn[i], &st);
        sum += st.errors;
    }
    return sum;
}

void pskgw_redisconn_sentinels_close(pskgw_redisconn_sentinels_t *s, void (*cb)(void *arg),
                                     void *arg)
{
    size_t n = s->n;

    if (s->closing)
        return;
    pskgw_redisconn_sentinels_cancel(s);
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    for (size_t i = 0; i < n; i++)
        pskgw_redisconn_close(s->conn[i], conn_closed, s);
}
