/* One Redis connection on the libuv loop: the contract is in redisconn.h. The hiredis-on-libuv
 * adapter and the safe freeing of contexts are in uvadapter.c.
 *
 * Re-entrancy: `depth` counts the frames of hiredis dispatch (redisAsyncHandleRead/Write and our
 * own redisAsyncFree, which calls the pending callbacks with NULL replies) on the stack. A drop
 * requested while depth > 0 parks the context in `doomed` and frees it from the reap timer.
 */
#include "redisconn/internal.h"
#include "redisconn/sentinel.h"
#include "redisconn/uvadapter.h"

#include "common/backoff.h"
#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pskgw_redisconn_cmd {
    pskgw_redisconn_t *c;
    pskgw_list_t link; /* in c->cmds */
    pskgw_list_t hold; /* in c->held_cmds while fmt is set */
    uint64_t issued;   /* uv_now */
    char *fmt;         /* formatted command while held (GATE, past max_in_flight), else NULL */
    int fmt_len;
    pskgw_redisconn_reply_cb cb; /* NULL once detached */
    void *arg;
    pskgw_redisconn_cmd_t *next_free; /* c->free_cmds */
};

#define FREE_CMDS_KEEP 256u

/* A zeroed command: from c's freelist when it has one. */
static pskgw_redisconn_cmd_t *cmd_take(pskgw_redisconn_t *c)
{
    pskgw_redisconn_cmd_t *q = c->free_cmds;

    if (!q)
        return calloc(1, sizeof(*q));
    c->free_cmds = q->next_free;
    c->nfree_cmds--;
    memset(q, 0, sizeof(*q));
    return q;
}

/* q (in no list, fmt freed) goes back to c's freelist, or is freed. */
static void cmd_give(pskgw_redisconn_t *c, pskgw_redisconn_cmd_t *q)
{
    if (c->nfree_cmds >= FREE_CMDS_KEEP) {
        free(q);
        return;
    }
    q->next_free = c->free_cmds;
    c->free_cmds = q;
    c->nfree_cmds++;
}

static void attempt(pskgw_redisconn_t *c);

/* ---- outstanding commands ---- */

static void cmd_link(pskgw_redisconn_t *c, pskgw_redisconn_cmd_t *q)
{
    q->issued = uv_now(c->loop);
    pskgw_list_insert_tail(&c->cmds, &q->link);
}

static void cmd_unlink(pskgw_redisconn_t *c, pskgw_redisconn_cmd_t *q)
{
    (void)c;
    pskgw_list_remove(&q->link);
}

/* The command after q (the oldest when q is NULL), or NULL at the end. */
static pskgw_redisconn_cmd_t *cmd_after(pskgw_redisconn_t *c, pskgw_redisconn_cmd_t *q)
{
    pskgw_list_t *n = q != NULL ? q->link.next : c->cmds.next;

    return n != &c->cmds ? pskgw_container_of(n, pskgw_redisconn_cmd_t, link) : NULL;
}

static void cmd_finish(pskgw_redisconn_cmd_t *q, int status, const redisReply *reply)
{
    pskgw_redisconn_reply_cb cb = q->cb;
    void *arg = q->arg;

    free(q->fmt);
    cmd_give(q->c, q);
    if (cb)
        cb(arg, status, reply);
}

static void drop(pskgw_redisconn_t *c, const char *why);
static void forget(pskgw_redisconn_t *c, const char *why);

static void op_timer_cb(uv_timer_t *t);

static void op_timer_arm(pskgw_redisconn_t *c)
{
    uint64_t now = uv_now(c->loop);
    uint64_t deadline;

    if (c->closing || pskgw_list_empty(&c->cmds)) {
        uv_timer_stop(&c->op_timer);
        return;
    }
    deadline = cmd_after(c, NULL)->issued + c->timeout_ms;
    uv_timer_start(&c->op_timer, op_timer_cb, deadline > now ? deadline - now : 0, 0);
}

static void op_timer_cb(uv_timer_t *t)
{
    pskgw_redisconn_t *c = t->data;

    pskgw_redisconn_cmd_t *oldest = cmd_after(c, NULL);

    if (!oldest || oldest->issued + c->timeout_ms > uv_now(c->loop)) {
        op_timer_arm(c);
        return;
    }
    PSKGW_LOG_RL(PSKGW_LOG_WARNING, c->log_name,
                 "%s: redis \"%s:%d\" did not answer within %u ms: reconnecting", c->log_name,
                 c->host, c->port, (unsigned)c->timeout_ms);
    c->stats.errors++;
    drop(c, "reply timeout");
}

/* Held commands cannot be sent any more (the gate failed, the connection went, or close). */
/* The oldest held command, or NULL. */
static pskgw_redisconn_cmd_t *first_held(pskgw_redisconn_t *c)
{
    return pskgw_list_empty(&c->held_cmds)
               ? NULL
               : pskgw_container_of(c->held_cmds.next, pskgw_redisconn_cmd_t, hold);
}

/* q is no longer held (sent, or failed). */
static void unhold(pskgw_redisconn_t *c, pskgw_redisconn_cmd_t *q)
{
    pskgw_list_remove(&q->hold);
    c->held--;
}

static void fail_held(pskgw_redisconn_t *c, int status)
{
    pskgw_redisconn_cmd_t *q;

    /* the oldest each time: a callback may issue or fail commands */
    while ((q = first_held(c)) != NULL) {
        unhold(c, q);
        cmd_unlink(c, q);
        if (status == PSKGW_EIO)
            c->stats.errors++;
        cmd_finish(q, status, NULL);
    }
    op_timer_arm(c);
}

static void send_held(pskgw_redisconn_t *c);

static void reply_cb(redisAsyncContext *ac, void *reply_v, void *priv)
{
    pskgw_redisconn_cmd_t *q = priv;
    pskgw_redisconn_t *c = q->c;
    int status = 0;

    redisReply *r = reply_v;
    /* Sentinel mode: a demoted master (a failover we have not seen yet) refuses writes */
    bool readonly = c->sentinels && r && r->type == REDIS_REPLY_ERROR && r->str &&
                    strncmp(r->str, "READONLY", 8) == 0;

    cmd_unlink(c, q);
    c->in_flight--;
    if (!reply_v) {
        status = c->closing ? PSKGW_ECANCELED : PSKGW_EIO;
        if (!c->closing)
            c->stats.errors++;
        if (ac == c->ac) /* hiredis is freeing it: no command may go to it any more */
            forget(c, ac->errstr[0] ? ac->errstr : "disconnected");
    }
    cmd_finish(q, status, reply_v);
    if (readonly && ac == c->ac && !c->closing) {
        c->stats.errors++;
        drop(c, "READONLY: no longer the master");
    }
    if (c->held > 0 && !c->closing && c->state == PSKGW_REDISCONN_READY)
        send_held(c); /* a place in flight came free */
    op_timer_arm(c);
}

static int send_formatted(pskgw_redisconn_t *c, pskgw_redisconn_cmd_t *q)
{
    int rc = redisAsyncFormattedCommand(c->ac, reply_cb, q, q->fmt, (size_t)q->fmt_len);

    free(q->fmt);
    q->fmt = NULL;
    unhold(c, q);
    if (rc != REDIS_OK)
        return PSKGW_EUNAVAIL;
    c->in_flight++;
    q->issued = uv_now(c->loop); /* its watchdog deadline counts from here */
    return 0;
}

static bool may_send(const pskgw_redisconn_t *c)
{
    return c->max_in_flight == 0 || c->in_flight < c->max_in_flight;
}

/* READY: the held commands go out in the order they were issued, while may_send(). */
static void send_held(pskgw_redisconn_t *c)
{
    pskgw_redisconn_cmd_t *q;

    while (c->ac && may_send(c) && (q = first_held(c)) != NULL) {
        if (send_formatted(c, q) < 0) {
            cmd_unlink(c, q);
            c->stats.errors++;
            cmd_finish(q, PSKGW_EIO, NULL);
        }
    }
}

/* ---- connection ---- */

static void conn_timer_cb(uv_timer_t *t);

static void schedule_attempt(pskgw_redisconn_t *c)
{
    if (c->closing)
        return;
    c->state = PSKGW_REDISCONN_IDLE;
    uv_timer_start(&c->conn_timer, conn_timer_cb, pskgw_backoff_next(&c->backoff), 0);
}

/* The current context is gone or going: forget it, fail what was held, back off. Called with
 * c->ac already cleared. */
static void lost(pskgw_redisconn_t *c, const char *why)
{
    bool was_ready = c->state == PSKGW_REDISCONN_READY;

    if (c->state == PSKGW_REDISCONN_GATE || was_ready) {
        c->stats.connected = 0;
        c->stats.disconnects++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, c->log_name, "%s: redis connection to \"%s:%d\" lost: %s",
                     c->log_name, c->host, c->port, why);
    }
    if (c->closing)
        return;
    uv_timer_stop(&c->conn_timer);
    schedule_attempt(c);
    fail_held(c, PSKGW_EIO);
    if (was_ready && c->on_state && !c->closing)
        c->on_state(c->arg, false);
}

/* hiredis frees ac itself (connect failed, connection lost): only forget it. */
static void forget(pskgw_redisconn_t *c, const char *why)
{
    c->ac = NULL;
    lost(c, why);
}

/* Drop the current context (the watchdog, the deadline, a refused gate). The context is
 * discarded before lost() runs the callbacks: one that closes finds no context and, when it was
 * parked, leaves the reap timer open for it. */
static void drop(pskgw_redisconn_t *c, const char *why)
{
    redisAsyncContext *ac = c->ac;

    if (!ac)
        return;
    c->ac = NULL;
    pskgw_rc_discard(c, ac);
    lost(c, why);
}

static void timer_closed(uv_handle_t *h)
{
    pskgw_redisconn_t *c = h->data;

    c->handles--;
    pskgw_rc_maybe_closed(c);
}

void pskgw_rc_close_handles(pskgw_redisconn_t *c)
{
    if (uv_is_closing((uv_handle_t *)&c->reap_timer))
        return;
    uv_close((uv_handle_t *)&c->conn_timer, timer_closed);
    uv_close((uv_handle_t *)&c->op_timer, timer_closed);
    uv_close((uv_handle_t *)&c->reap_timer, timer_closed);
}

static const char gate_auth[] = "AUTH";
static const char gate_select[] = "SELECT";
static const char gate_ping[] = "PING";
static const char gate_role[] = "ROLE";

/* Sentinel mode: the address the sentinels gave must be the master now (it may have been demoted
 * since they answered). */
static bool role_is_master(const redisReply *reply)
{
    const redisReply *r0 =
        reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 ? reply->element[0] : NULL;

    return r0 && r0->type == REDIS_REPLY_STRING && r0->len == 6 &&
           memcmp(r0->str, "master", 6) == 0;
}

static void become_ready(pskgw_redisconn_t *c)
{
    uv_timer_stop(&c->conn_timer);
    c->state = PSKGW_REDISCONN_READY;
    pskgw_backoff_reset(&c->backoff);
    PSKGW_INFO("%s: redis connected to \"%s:%d\"", c->log_name, c->host, c->port);
    send_held(c);
    op_timer_arm(c);
    if (c->on_state && c->state == PSKGW_REDISCONN_READY)
        c->on_state(c->arg, true);
}

/* Subscriber mode: the server confirmed the subscription (READY), or a message arrived. A NULL
 * reply: the context is being freed (hiredis runs subscription callbacks with NULL then). */
static void sub_cb(redisAsyncContext *ac, void *reply_v, void *priv)
{
    pskgw_redisconn_t *c = priv;
    const redisReply *r = reply_v;
    const redisReply *kind;

    if (!r || ac != c->ac || c->closing || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return;
    kind = r->element[0];
    if (kind->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(kind->str, "subscribe") == 0 && c->state == PSKGW_REDISCONN_GATE) {
        become_ready(c);
    } else if (strcmp(kind->str, "message") == 0 && r->elements == 3 &&
               r->element[2]->type == REDIS_REPLY_STRING) {
        c->stats.messages++;
        c->on_message(c->arg, r->element[2]->str, r->element[2]->len);
    }
}

static void subscribe(pskgw_redisconn_t *c)
{
    const char *argv[2] = { "SUBSCRIBE", c->channel };
    size_t lens[2] = { 9, strlen(c->channel) };

    /* no command is outstanding on a subscribed connection: keepalive notices a silent peer */
    (void)redisEnableKeepAlive(&c->ac->c);
    if (redisAsyncCommandArgv(c->ac, sub_cb, c, 2, argv, lens) != REDIS_OK) {
        c->stats.errors++;
        drop(c, "SUBSCRIBE not sent");
    }
}

/* AUTH, SELECT and PING, queued before any other command on the connection (commands run in
 * order). A refusal drops the connection; the PING answer makes it READY. */
static void gate_cb(redisAsyncContext *ac, void *reply_v, void *priv)
{
    pskgw_redisconn_t *c = ac->data;
    redisReply *reply = reply_v;
    const char *what = priv;
    char why[32];

    if (!c || ac != c->ac || !reply)
        return; /* an abandoned context, or this one going (on_disconnect) */
    if (reply->type == REDIS_REPLY_ERROR) {
        PSKGW_LOG_RL(PSKGW_LOG_ERR, c->log_name, "%s: redis \"%s:%d\" refused %s: \"%.*s\"",
                     c->log_name, c->host, c->port, what,
                     (int)(reply->len > 200 ? 200 : reply->len), reply->str ? reply->str : "");
        c->stats.errors++;
        snprintf(why, sizeof(why), "%s refused", what);
        drop(c, why);
        return;
    }
    if (what == gate_role && !role_is_master(reply)) {
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, c->log_name,
                     "%s: redis \"%s:%d\" is not the master (any more): asking the sentinels again",
                     c->log_name, c->host, c->port);
        c->stats.errors++;
        drop(c, "not the master");
        return;
    }
    if (what == gate_ping && c->channel)
        subscribe(c); /* READY once the subscription is confirmed, within the same deadline */
    else if (what == gate_ping)
        become_ready(c);
}

static void gate_send(pskgw_redisconn_t *c, redisAsyncContext *ac)
{
    const char *argv[2];
    size_t lens[2];
    char db[16];

    if (c->password) {
        argv[0] = gate_auth;
        argv[1] = c->password;
        lens[0] = 4;
        lens[1] = strlen(c->password);
        (void)redisAsyncCommandArgv(ac, gate_cb, (void *)gate_auth, 2, argv, lens);
    }
    if (c->db > 0) {
        snprintf(db, sizeof(db), "%d", c->db);
        argv[0] = gate_select;
        argv[1] = db;
        lens[0] = 6;
        lens[1] = strlen(db);
        (void)redisAsyncCommandArgv(ac, gate_cb, (void *)gate_select, 2, argv, lens);
    }
    if (c->sentinels) {
        argv[0] = gate_role;
        lens[0] = 4;
        (void)redisAsyncCommandArgv(ac, gate_cb, (void *)gate_role, 1, argv, lens);
    }
    /* also drives the connect: hiredis notices it when it has something to write */
    argv[0] = gate_ping;
    lens[0] = 4;
    (void)redisAsyncCommandArgv(ac, gate_cb, (void *)gate_ping, 1, argv, lens);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    pskgw_redisconn_t *c = ac->data;

    if (!c || ac != c->ac)
        return;
    if (status != REDIS_OK) {
        c->stats.errors++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, c->log_name, "%s: redis connect to \"%s:%d\" failed: %s",
                     c->log_name, c->host, c->port, ac->errstr[0] ? ac->errstr : "error");
        forget(c, "connect failed"); /* hiredis frees the context right after this callback */
        return;
    }
    c->state = PSKGW_REDISCONN_GATE;
    c->stats.connected = 1;
    c->stats.connects++;
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    pskgw_redisconn_t *c = ac->data;

    (void)status;
    if (c && ac == c->ac)
        forget(c, ac->errstr[0] ? ac->errstr : "disconnected");
}

static void connect_failed(pskgw_redisconn_t *c, redisAsyncContext *ac, const char *why)
{
    c->stats.errors++;
    PSKGW_LOG_RL(PSKGW_LOG_WARNING, c->log_name, "%s: redis connect to \"%s:%d\" failed: %s",
                 c->log_name, c->host, c->port, why);
    if (ac)
        redisAsyncFree(ac); /* no callback set yet */
    schedule_attempt(c);
}

static void connect_to(pskgw_redisconn_t *c, const char *ip)
{
    redisAsyncContext *ac;

    if (c->doomed) { /* from a timer or the resolver: outside any dispatch */
        redisAsyncContext *old = c->doomed;

        c->doomed = NULL;
        uv_timer_stop(&c->reap_timer);
        pskgw_rc_free_context(c, old);
    }
    ac = redisAsyncConnect(ip, c->port);
    if (!ac || ac->err) {
        connect_failed(c, ac, ac && ac->errstr[0] ? ac->errstr : "out of memory");
        return;
    }
    ac->data = c;
    if (pskgw_rc_attach(c, ac) < 0) {
        connect_failed(c, ac, "cannot watch the socket");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = PSKGW_REDISCONN_CONNECTING;
    gate_send(c, ac);
    uv_timer_start(&c->conn_timer, conn_timer_cb, c->timeout_ms, 0);
}

static void resolve_failed(pskgw_redisconn_t *c, int uv_status)
{
    c->stats.errors++;
    PSKGW_LOG_RL(PSKGW_LOG_WARNING, c->log_name, "%s: cannot resolve redis host \"%s\": %s",
                 c->log_name, c->host, uv_status < 0 ? uv_strerror(uv_status) : "no address");
    schedule_attempt(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    pskgw_redisconn_t *c = req->data;
    const struct addrinfo *pick = NULL;
    char ip[INET6_ADDRSTRLEN];
    bool ok = false;

    c->gai_pending = false;
    for (const struct addrinfo *ai = status == 0 ? res : NULL; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
        if (!pick && ai->ai_family == AF_INET6)
            pick = ai;
    }
    ok = pick && uv_ip_name(pick->ai_addr, ip, sizeof(ip)) == 0;
    uv_freeaddrinfo(res);
    if (c->closing) {
        pskgw_rc_maybe_closed(c);
        return;
    }
    if (!ok) {
        resolve_failed(c, status);
        return;
    }
    connect_to(c, ip);
}

/* A literal address is used as it is; a name goes to the thread pool. */
static void resolve(pskgw_redisconn_t *c)
{
    struct addrinfo hints;
    unsigned char buf[16];
    int rc;

    if (inet_pton(AF_INET, c->host, buf) == 1 || inet_pton(AF_INET6, c->host, buf) == 1) {
        connect_to(c, c->host);
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    rc = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->host, NULL, &hints);
    if (rc != 0) {
        resolve_failed(c, rc);
        return;
    }
    c->gai_pending = true;
    c->state = PSKGW_REDISCONN_RESOLVING;
}

/* Sentinel mode: the master's address, then resolve() it. */
static void on_master(void *arg, int status, const char *host, uint16_t port)
{
    pskgw_redisconn_t *c = arg;
    char *h;

    c->asking = false;
    if (c->closing) {
        pskgw_rc_maybe_closed(c);
        return;
    }
    h = status == 0 ? strdup(host) : NULL;
    if (!h) {
        c->stats.errors++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, c->log_name,
                     "%s: no sentinel gave the master's address: %s", c->log_name,
                     status < 0 ? pskgw_strerror(status) : "out of memory");
        schedule_attempt(c);
        return;
    }
    if (strcmp(h, c->host) != 0 || port != c->port)
        PSKGW_INFO("%s: sentinels name \"%s:%u\" the master", c->log_name, h, (unsigned)port);
    free(c->host);
    c->host = h;
    c->port = port;
    resolve(c);
}

static void attempt(pskgw_redisconn_t *c)
{
    int rc;

    if (!c->sentinels) {
        resolve(c);
        return;
    }
    rc = pskgw_redisconn_sentinels_ask(c->sentinels, on_master, c);
    if (rc == 0) {
        c->asking = true;
        c->state = PSKGW_REDISCONN_RESOLVING;
        return;
    }
    /* none READY: the first one that is calls sentinel_up(); until then, the backoff */
    c->no_sentinel = true;
    if (pskgw_redisconn_sentinels_errors(c->sentinels) > 0) {
        c->stats.errors++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, c->log_name, "%s: no sentinel reachable for the master",
                     c->log_name);
    }
    schedule_attempt(c);
}

static void sentinel_up(void *arg)
{
    pskgw_redisconn_t *c = arg;

    if (!c->no_sentinel || c->closing || c->state != PSKGW_REDISCONN_IDLE)
        return;
    c->no_sentinel = false;
    uv_timer_stop(&c->conn_timer);
    attempt(c);
}

static void conn_timer_cb(uv_timer_t *t)
{
    pskgw_redisconn_t *c = t->data;

    if (c->closing)
        return;
    if (c->state == PSKGW_REDISCONN_IDLE) {
        attempt(c);
        return;
    }
    if (c->state == PSKGW_REDISCONN_CONNECTING || c->state == PSKGW_REDISCONN_GATE) {
        c->stats.errors++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, c->log_name,
                     "%s: redis \"%s:%d\" not ready within %u ms: reconnecting", c->log_name,
                     c->host, c->port, (unsigned)c->timeout_ms);
        drop(c, "not ready in time");
    }
}

/* ---- public ---- */

static int copy_opts(pskgw_redisconn_t *c, const pskgw_redisconn_opts_t *o)
{
    c->host = strdup(o->sentinels ? "" : o->host);
    c->log_name = strdup(o->log_name ? o->log_name : "redis");
    if (o->password)
        c->password = strdup(o->password);
    if (!c->host || !c->log_name || (o->password && !c->password))
        return PSKGW_ENOMEM;
    c->port = o->port;
    c->db = o->db;
    c->max_in_flight = o->max_in_flight;
    c->max_held = o->max_held;
    c->timeout_ms = o->timeout_ms;
    pskgw_backoff_init(&c->backoff,
                       &(pskgw_backoff_policy_t){ o->backoff_min_ms, o->backoff_max_ms, 2, 20, 20 },
                       pskgw_backoff_seed(c));
    c->on_state = o->on_state;
    c->on_message = o->on_message;
    c->arg = o->arg;
    if (o->subscribe && !(c->channel = strdup(o->subscribe)))
        return PSKGW_ENOMEM;
    return 0;
}

static void free_conn(pskgw_redisconn_t *c)
{
    free(c->host);
    free(c->log_name);
    free(c->channel);
    pskgw_free_secret_str(c->password);
    while (c->free_cmds) {
        pskgw_redisconn_cmd_t *q = c->free_cmds;
        c->free_cmds = q->next_free;
        free(q);
    }
    free(c);
}

int pskgw_redisconn_new(uv_loop_t *loop, const pskgw_redisconn_opts_t *opts,
                        pskgw_redisconn_t **out)
{
    pskgw_redisconn_t *c;
    uv_timer_t *timers[3];

    if (!loop || !opts ||
        (!opts->sentinels && (!opts->host || !opts->host[0] || opts->port == 0)) ||
        (opts->sentinels && pskgw_redisconn_sentinels_check(opts->sentinels) < 0) ||
        (opts->sentinels && (!opts->master_name || !opts->master_name[0])) ||
        opts->timeout_ms == 0 || opts->backoff_min_ms == 0 ||
        opts->backoff_max_ms < opts->backoff_min_ms || opts->db < 0 || !out ||
        (opts->subscribe && (!opts->subscribe[0] || !opts->on_message)))
        return PSKGW_EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return PSKGW_ENOMEM;
    pskgw_list_init(&c->cmds);
    pskgw_list_init(&c->held_cmds);
    if (copy_opts(c, opts) < 0) {
        free_conn(c);
        return PSKGW_ENOMEM;
    }
    c->loop = loop;
    if (opts->sentinels) { /* before any handle of c exists: a failure frees c at once */
        int rc = pskgw_redisconn_sentinels_new(
            loop, opts->sentinels, opts->master_name, opts->timeout_ms, opts->backoff_min_ms,
            opts->backoff_max_ms, c->log_name, sentinel_up, c, &c->sentinels);

        if (rc < 0) {
            free_conn(c);
            return rc;
        }
    }
    timers[0] = &c->conn_timer;
    timers[1] = &c->op_timer;
    timers[2] = &c->reap_timer;
    for (int i = 0; i < 3; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = c;
    }
    c->handles = opts->sentinels ? 4 : 3; /* the sentinel set counts as one */
    c->state = PSKGW_REDISCONN_IDLE;
    uv_timer_start(&c->conn_timer, conn_timer_cb, 0, 0); /* never connect inside new() */
    *out = c;
    return 0;
}

pskgw_redisconn_state_t pskgw_redisconn_state(const pskgw_redisconn_t *c)
{
    return c->state;
}

bool pskgw_redisconn_ready(const pskgw_redisconn_t *c)
{
    return c && c->ac && c->state == PSKGW_REDISCONN_READY;
}

bool pskgw_redisconn_connected(const pskgw_redisconn_t *c)
{
    return c && c->ac && (c->state == PSKGW_REDISCONN_GATE || c->state == PSKGW_REDISCONN_READY);
}

int pskgw_redisconn_command(pskgw_redisconn_t *c, int argc, const char **argv,
                            const size_t *argvlen, pskgw_redisconn_reply_cb cb, void *arg,
                            pskgw_redisconn_cmd_t **out)
{
    pskgw_redisconn_cmd_t *q;

    if (!c || argc < 1 || !argv || !argvlen || c->channel)
        return PSKGW_EINVAL;
    if (!pskgw_redisconn_connected(c))
        return PSKGW_EUNAVAIL;
    q = cmd_take(c);
    if (!q)
        return PSKGW_ENOMEM;
    q->c = c;
    q->cb = cb;
    q->arg = arg;
    /* Held in GATE, and behind held ones or past max_in_flight: sent in order. */
    if (c->state == PSKGW_REDISCONN_GATE || c->held > 0 || !may_send(c)) {
        if (c->max_held > 0 && c->held >= c->max_held) {
            cmd_give(c, q);
            c->stats.dropped++;
            return PSKGW_EBUSY;
        }
        q->fmt_len = redisFormatCommandArgv(&q->fmt, argc, argv, argvlen);
        if (q->fmt_len < 0 || !q->fmt) {
            cmd_give(c, q);
            return PSKGW_ENOMEM;
        }
        c->held++;
        pskgw_list_insert_tail(&c->held_cmds, &q->hold);
    } else if (redisAsyncCommandArgv(c->ac, reply_cb, q, argc, argv, argvlen) != REDIS_OK) {
        cmd_give(c, q);
        c->stats.errors++;
        return PSKGW_EUNAVAIL;
    } else {
        c->in_flight++;
    }
    cmd_link(c, q);
    if (!uv_is_active((uv_handle_t *)&c->op_timer))
        op_timer_arm(c);
    if (out)
        *out = q;
    return 0;
}

uint32_t pskgw_redisconn_room(const pskgw_redisconn_t *c)
{
    if (c->max_held == 0)
        return UINT32_MAX;
    return c->held < c->max_held ? c->max_held - c->held : 0;
}

void pskgw_redisconn_cmd_detach(pskgw_redisconn_cmd_t *cmd)
{
    if (cmd)
        cmd->cb = NULL;
}

void pskgw_redisconn_stats(const pskgw_redisconn_t *c, pskgw_redisconn_stats_t *out)
{
    *out = c->stats;
}

void pskgw_rc_maybe_closed(pskgw_redisconn_t *c)
{
    void (*cb)(void *arg) = c->close_cb;
    void *arg = c->close_arg;

    if (!c->closing || c->handles > 0 || c->gai_pending || c->asking || c->ac || c->doomed ||
        !pskgw_list_empty(&c->cmds) || c->depth > 0)
        return;
    free_conn(c);
    if (cb)
        cb(arg);
}

static void sentinels_closed(void *arg)
{
    pskgw_redisconn_t *c = arg;

    c->handles--;
    pskgw_rc_maybe_closed(c);
}

void pskgw_redisconn_close(pskgw_redisconn_t *c, void (*cb)(void *arg), void *arg)
{
    redisAsyncContext *ac = c->ac;

    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_arg = arg;
    c->stats.connected = 0;
    c->state = PSKGW_REDISCONN_CLOSING;
    uv_timer_stop(&c->conn_timer);
    uv_timer_stop(&c->op_timer);
    if (c->gai_pending)
        (void)uv_cancel((uv_req_t *)&c->gai); /* on_resolved still fires */
    if (c->sentinels) { /* the ask will not answer; its connections count as one handle */
        c->asking = false;
        pskgw_redisconn_sentinels_close(c->sentinels, sentinels_closed, c);
        c->sentinels = NULL;
    }
    fail_held(c, PSKGW_ECANCELED);
    c->ac = NULL;
    if (ac)
        pskgw_rc_discard(c, ac); /* sent commands complete with PSKGW_ECANCELED */
    if (!c->doomed)
        pskgw_rc_close_handles(c);
}
