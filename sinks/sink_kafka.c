/* kafka sink: a librdkafka producer (acks=all, enable.idempotence=true), key = the device
 * (rot_public_uid, else psk_identity), so one device's messages land in one partition in order.
 *
 * Loop integration: librdkafka runs its own threads; the loop only serves the delivery reports.
 * The main queue's IO event writes a byte to a pipe watched by a uv_poll handle when reports
 * arrive; a 100 ms uv_timer polls as well (the event fires only on empty -> non-empty). Both
 * call rd_kafka_poll(rk, 0), which runs the delivery report callback on the loop thread.
 * Reports: no error delivered; MSG_SIZE_TOO_LARGE, INVALID_MSG(_SIZE), INVALID_RECORD,
 * RECORD_LIST_TOO_LARGE, TOPIC_AUTHORIZATION_FAILED permanent; anything else (timeouts, brokers
 * down) transient. rd_kafka_producev() failing with MSG_SIZE_TOO_LARGE is permanent too.
 * payload "json" (default): value = the JSON envelope. payload "raw": value = the raw payload,
 * the metadata of pskgw_sink_meta() as headers.
 * librdkafka keeps a message up to message.timeout.ms (default 300000, settable through the
 * extra properties) before reporting it failed; the in-flight window bounds how many it holds.
 * Close purges what librdkafka still holds (reported undelivered to the core, which spools
 * it) and runs rd_kafka_destroy(), which joins librdkafka's threads, on the thread pool.
 */
#define _GNU_SOURCE /* pipe2 */
#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "sinks/internal.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLL_MS 100

typedef struct kreq {
    struct kreq *prev;
    struct kreq *next;
    void *token;
} kreq_t;

typedef struct {
    pskgw_sink_t *core;
    uv_loop_t *loop;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    char *topic;
    bool raw;
    int pipefd[2];
    uv_poll_t poll;
    uv_timer_t timer;
    uv_work_t work;
    kreq_t *reqs;
    bool closing;
    unsigned pending;
} kafka_sink_t;

static int classify(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return 0;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return PSKGW_EBADREQ;
    default:
        return PSKGW_EUNAVAIL;
    }
}

static void req_unlink(kafka_sink_t *k, kreq_t *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        k->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
}

/* Runs inside rd_kafka_poll() on the loop thread, the result goes to the core from here (the
 * core may produce again, which librdkafka allows from a delivery report callback). After
 * close it may also run inside rd_kafka_destroy() on the thread pool: then it only frees its
 * kreq_t (the loop thread does not touch k->reqs until the destroy job is done). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_sink_t *k = opaque;
    kreq_t *q = m->_private;
    void *token;
    int status;

    (void)rk;
    if (!q)
        return;
    req_unlink(k, q);
    token = q->token;
    free(q);
    if (k->closing)
        return;
    status = classify(m->err);
    if (status < 0)
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(k->core), "sink \"%s\": kafka: %s",
                     pskgw_sink_name(k->core), rd_kafka_err2str(m->err));
    pskgw_sink_set_connected(k->core, status == 0 || status == PSKGW_EBADREQ);
    pskgw_sink_result(k->core, token, status);
}

/* librdkafka's logs and errors are queued (log.queue) and served by rd_kafka_poll() on the
 * loop thread, so they go through our (single-threaded) logger, rate-limited. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kafka_sink_t *k = rd_kafka_opaque(rk);

    (void)fac;
    if (level <= 4)
        PSKGW_LOG_RL(level <= 3 ? PSKGW_LOG_WARNING : PSKGW_LOG_INFO, pskgw_sink_name(k->core),
                     "sink \"%s\": librdkafka: %s", pskgw_sink_name(k->core), buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_sink_t *k = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        pskgw_sink_set_connected(k->core, false);
    PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(k->core), "sink \"%s\": kafka: %s: %s",
                 pskgw_sink_name(k->core), rd_kafka_err2name(err), reason);
}

static void serve(kafka_sink_t *k)
{
    if (k->rk && !k->closing)
        rd_kafka_poll(k->rk, 0);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    kafka_sink_t *k = h->data;
    char buf[64];

    (void)status;
    (void)events;
    while (read(k->pipefd[0], buf, sizeof(buf)) > 0)
        ;
    serve(k);
}

static void timer_cb(uv_timer_t *t)
{
    serve(t->data);
}

static int kafka_send(void *impl, pskgw_msg_t *msg, void *token)
{
    kafka_sink_t *k = impl;
    const char *dev = pskgw_msg_device(msg);
    rd_kafka_headers_t *hdrs = NULL;
    const void *value;
    size_t len;
    kreq_t *q;
    rd_kafka_resp_err_t err;
    int rc;

    if (k->raw) {
        pskgw_sink_meta_t meta;
        value = msg->env.payload;
        len = msg->env.payload_len;
        pskgw_sink_meta(msg, &meta);
        hdrs = rd_kafka_headers_new(meta.n);
        if (!hdrs)
            return PSKGW_ENOMEM;
        for (size_t i = 0; i < meta.n; i++)
            rd_kafka_header_add(hdrs, meta.name[i], -1, meta.value[i], -1);
    } else {
        const char *json;
        if ((rc = pskgw_msg_json(msg, &json, &len)) < 0)
            return rc;
        value = json;
    }
    q = calloc(1, sizeof(*q));
    if (!q) {
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        return PSKGW_ENOMEM;
    }
    q->token = token;
    if (hdrs)
        err = rd_kafka_producev(k->rk, RD_KAFKA_V_TOPIC(k->topic), RD_KAFKA_V_KEY(dev, strlen(dev)),
                                RD_KAFKA_V_VALUE((void *)value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                                RD_KAFKA_V_OPAQUE(q), RD_KAFKA_V_END);
    else
        err = rd_kafka_producev(k->rk, RD_KAFKA_V_TOPIC(k->topic), RD_KAFKA_V_KEY(dev, strlen(dev)),
                                RD_KAFKA_V_VALUE((void *)value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(q),
                                RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (hdrs)
            rd_kafka_headers_destroy(hdrs); /* not taken over on failure */
        free(q);
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(k->core),
                     "sink \"%s\": kafka produce of \"%s\": %s", pskgw_sink_name(k->core), msg->id,
                     rd_kafka_err2str(err));
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return PSKGW_EAGAIN;
        return classify(err) == PSKGW_EBADREQ ? PSKGW_EBADREQ : PSKGW_EUNAVAIL;
    }
    q->next = k->reqs;
    if (k->reqs)
        k->reqs->prev = q;
    k->reqs = q;
    return 0;
}

static int set_prop(rd_kafka_conf_t *conf, const char *name, const char *key, const char *value)
{
    char errstr[256];

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        /* the value may be secret: only the key and librdkafka's reason are logged */
        PSKGW_ERR("sink \"%s\": kafka property \"%s\": %s", name, key, errstr);
        return PSKGW_ECONFIG;
    }
    return 0;
}

static int kafka_create(pskgw_sink_t *core, uv_loop_t *loop, const pskgw_sink_options_t *o,
                        void **impl)
{
    kafka_sink_t *k;
    rd_kafka_conf_t *conf = NULL;
    char errstr[512];
    int rc = PSKGW_ENOMEM;

    if (!o->kafka.brokers || !o->kafka.brokers[0] || !o->kafka.topic || !o->kafka.topic[0]) {
        PSKGW_ERR("sink \"%s\": kafka needs brokers and topic", o->name);
        return PSKGW_ECONFIG;
    }
    k = calloc(1, sizeof(*k));
    if (!k)
        return PSKGW_ENOMEM;
    k->core = core;
    k->loop = loop;
    k->raw = o->payload == PSKGW_SINK_PAYLOAD_RAW;
    k->pipefd[0] = k->pipefd[1] = -1;
    k->topic = strdup(o->kafka.topic);
    conf = rd_kafka_conf_new();
    if (!k->topic || !conf)
        goto fail;
    if ((rc = set_prop(conf, o->name, "bootstrap.servers", o->kafka.brokers)) < 0 ||
        (rc = set_prop(conf, o->name, "acks", "all")) < 0 ||
        (rc = set_prop(conf, o->name, "enable.idempotence", "true")) < 0)
        goto fail;
    for (size_t i = 0; i < o->kafka.n_props; i++) {
        const pskgw_sink_kv_t *kv = &o->kafka.props[i];
        if (!kv->key || !kv->value || strcmp(kv->key, "acks") == 0 ||
            strcmp(kv->key, "enable.idempotence") == 0) {
            PSKGW_ERR("sink \"%s\": kafka property \"%s\" cannot be set", o->name,
                      kv->key ? kv->key : "");
            rc = PSKGW_ECONFIG;
            goto fail;
        }
        if ((rc = set_prop(conf, o->name, kv->key, kv->value)) < 0)
            goto fail;
    }
    if ((rc = set_prop(conf, o->name, "log.queue", "true")) < 0)
        goto fail;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, k);
    if (pipe2(k->pipefd, O_NONBLOCK | O_CLOEXEC) < 0) {
        rc = PSKGW_EIO;
        goto fail;
    }
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!k->rk) {
        PSKGW_ERR("sink \"%s\": kafka producer: %s", o->name, errstr);
        rc = PSKGW_ECONFIG;
        goto fail; /* conf still ours */
    }
    conf = NULL;                         /* owned by rk now */
    rd_kafka_set_log_queue(k->rk, NULL); /* logs to the main queue, served by our polls */
    k->mainq = rd_kafka_queue_get_main(k->rk);
    rd_kafka_queue_io_event_enable(k->mainq, k->pipefd[1], "1", 1);
    uv_poll_init(loop, &k->poll, k->pipefd[0]);
    k->poll.data = k;
    uv_poll_start(&k->poll, UV_READABLE, poll_cb);
    uv_timer_init(loop, &k->timer);
    k->timer.data = k;
    uv_timer_start(&k->timer, timer_cb, POLL_MS, POLL_MS);
    *impl = k;
    return 0;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (k->pipefd[0] >= 0) {
        close(k->pipefd[0]);
        close(k->pipefd[1]);
    }
    free(k->topic);
    free(k);
    return rc;
}

static void release(kafka_sink_t *k)
{
    pskgw_sink_t *core;

    if (--k->pending > 0)
        return;
    core = k->core;
    close(k->pipefd[0]);
    close(k->pipefd[1]);
    free(k->topic);
    free(k);
    pskgw_sink_backend_closed(core);
}

static void handle_closed(uv_handle_t *h)
{
    release(h->data);
}

static void destroy_work(uv_work_t *w)
{
    kafka_sink_t *k = w->data;

    rd_kafka_destroy(k->rk); /* joins librdkafka's threads: off the loop */
}

static void destroy_done(uv_work_t *w, int status)
{
    kafka_sink_t *k = w->data;

    (void)status;
    k->rk = NULL;
    while (k->reqs) { /* reports librdkafka dropped without calling back */
        kreq_t *q = k->reqs;
        req_unlink(k, q);
        free(q);
    }
    release(k);
}

/* The teardown runs from a timer callback: close may be called from inside dr_cb, that is
 * inside rd_kafka_poll(), where purging and destroying the instance is not allowed. */
static void close_tick(uv_timer_t *t)
{
    kafka_sink_t *k = t->data;

    /* what librdkafka still holds is reported purged (ignored: closing) */
    rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                              RD_KAFKA_PURGE_F_NON_BLOCKING);
    rd_kafka_queue_io_event_enable(k->mainq, -1, NULL, 0);
    rd_kafka_queue_destroy(k->mainq);
    k->mainq = NULL;
    uv_close((uv_handle_t *)&k->poll, handle_closed);
    uv_close((uv_handle_t *)&k->timer, handle_closed);
    k->work.data = k;
    if (uv_queue_work(k->loop, &k->work, destroy_work, destroy_done) != 0) {
        destroy_work(&k->work);
        destroy_done(&k->work, 0);
    }
}

static void kafka_close(void *impl)
{
    kafka_sink_t *k = impl;

    k->closing = true;
    k->pending = 3; /* poll, timer, destroy job */
    uv_poll_stop(&k->poll);
    uv_timer_stop(&k->timer);
    uv_timer_start(&k->timer, close_tick, 0, 0);
}

const pskgw_sink_backend_t pskgw_sink_backend_kafka = {
    .type = "kafka",
    .raw_ok = true,
    .create = kafka_create,
    .send = kafka_send,
    .reopen = NULL,
    .close = kafka_close,
};
