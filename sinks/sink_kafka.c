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
 * Fatal errors (error callback with RD_KAFKA_RESP_ERR__FATAL, the idempotent producer's
 * unrecoverable state; rd_kafka_fatal_error() tells the cause): the instance is unusable until
 * destroyed. The sink goes disconnected, logs the cause (rate-limited) and, from a timer (not
 * inside rd_kafka_poll()), reports every message the instance still holds failed (transient:
 * the core retries it; one Kafka did store may then be duplicated, none is lost), retires the
 * instance like close does (purge, rd_kafka_destroy() on the thread pool, its late reports
 * only free their bookkeeping) and creates a fresh producer from the same configuration after
 * the capped backoff (100 ms doubling per consecutive fatal error up to retry_max_ms).
 * Readiness probe: the sink goes disconnected when librdkafka reports every broker down or a
 * delivery fails, and only a delivery used to bring it back. While it is disconnected, every
 * PROBE_TICKS polls (2 s) a metadata request (rd_kafka_metadata(), blocking: on the thread
 * pool, PROBE_TIMEOUT_MS) asks the brokers; an answer makes the sink connected again without
 * traffic (and retries what waited in backoff). One probe per producer at a time; a producer
 * retired meanwhile is destroyed once its probe returned.
 */
#define _GNU_SOURCE /* pipe2 */
#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "common/wipe.h"
#include "sinks/internal.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLL_MS          100
#define BACKOFF_BASE_MS  100
#define PROBE_TICKS      20 /* polls between two probes of a disconnected sink */
#define PROBE_TIMEOUT_MS 1500

typedef struct kafka_sink kafka_sink_t;

typedef struct kreq {
    pskgw_list_t link; /* in its producer's reqs */
    void *token;
} kreq_t;

/* One librdkafka producer instance. The sink has at most one current producer; after a fatal
 * error it is retired (its tokens reported failed at once, retried by the core) and destroyed
 * on the thread pool while, after a backoff, a fresh one is created from the same
 * configuration. */
typedef struct {
    kafka_sink_t *k;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    pskgw_list_t reqs; /* kreq_t.link: messages handed to rk and not reported yet */
    bool retired;      /* no longer current: callbacks only free their kreq_t */
    uv_work_t work;
    bool probing;                  /* probe_work under way: the destroy waits for it */
    uv_work_t probe_work;          /* the metadata request (thread pool) */
    rd_kafka_resp_err_t probe_err; /* written by the work, read in its done callback */
} kprod_t;

struct kafka_sink {
    pskgw_sink_t *core;
    uv_loop_t *loop;
    rd_kafka_conf_t *conf; /* template: every producer gets a copy */
    kprod_t *prod;         /* NULL between a fatal error and the replacement */
    char *topic;
    bool raw;
    bool fatal;      /* prod raised a fatal error: retired at the next restart tick */
    bool down;       /* told the core it is disconnected: the probe runs */
    unsigned ticks;  /* polls, for the probe's period */
    unsigned streak; /* fatal errors since the last delivery: the backoff attempt */
    uint64_t retry_max_ms;
    uint64_t resets; /* producers replaced after a fatal error */
    int pipefd[2];
    uv_poll_t poll;
    uv_timer_t timer;
    uv_timer_t restart;
    bool closing;
    unsigned pending;         /* handles closing + destroy jobs outstanding */
    struct kafka_sink *tnext; /* live kafka sinks (test hook) */
    /* kreq_t of the current producer, given back on the loop thread: none allocated per message
     * in steady state (a retired producer's, reported on the thread pool, are freed) */
    pskgw_sink_freelist_t free_reqs;
};

static kafka_sink_t *live; /* loop thread only: pskgw_sink_kafka_test_producer() */

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

static void req_unlink(kprod_t *p, kreq_t *q)
{
    (void)p;
    pskgw_list_remove(&q->link);
}

/* The core's connection state, remembered for the probe. */
static void set_up(kafka_sink_t *k, bool up)
{
    k->down = !up;
    pskgw_sink_set_connected(k->core, up);
}

/* Runs inside rd_kafka_poll() on the loop thread, the result goes to the core from here (the
 * core may produce again, which librdkafka allows from a delivery report callback). A retired
 * producer (fatal error or close) may also run it inside rd_kafka_destroy() on the thread
 * pool: then it only frees its kreq_t (its token was already reported or forgotten, and the
 * loop thread does not touch p->reqs until the destroy job is done). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kprod_t *p = opaque;
    kafka_sink_t *k = p->k;
    kreq_t *q = m->_private;
    void *token;
    int status;

    (void)rk;
    if (!q)
        return;
    req_unlink(p, q);
    token = q->token;
    if (p->retired) {
        free(q); /* maybe on the thread pool, inside rd_kafka_destroy() */
        return;
    }
    pskgw_sink_fl_put(&k->free_reqs, q);
    status = classify(m->err);
    if (status < 0)
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(k->core), "sink \"%s\": kafka: %s",
                     pskgw_sink_name(k->core), rd_kafka_err2str(m->err));
    if (status == 0)
        k->streak = 0;
    /* after a fatal error the sink stays disconnected until the replacement delivers */
    set_up(k, !k->fatal && (status == 0 || status == PSKGW_EBADREQ));
    pskgw_sink_result(k->core, token, status);
}

/* librdkafka's logs and errors are queued (log.queue) and served by rd_kafka_poll() on the
 * loop thread, so they go through our (single-threaded) logger, rate-limited. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kprod_t *p = rd_kafka_opaque(rk);
    kafka_sink_t *k;

    (void)fac;
    if (!p || p->retired)
        return; /* maybe on the thread pool: our logger is not thread-safe */
    k = p->k;
    if (level <= 4)
        PSKGW_LOG_RL(level <= 3 ? PSKGW_LOG_WARNING : PSKGW_LOG_INFO, pskgw_sink_name(k->core),
                     "sink \"%s\": librdkafka: %s", pskgw_sink_name(k->core), buf);
}

static void restart_tick(uv_timer_t *t);

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kprod_t *p = opaque;
    kafka_sink_t *k = p->k;
    char cause[512];
    rd_kafka_resp_err_t ferr;

    if (p->retired)
        return;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* the instance is unusable until destroyed: retire it outside of rd_kafka_poll() */
        if (k->fatal || k->closing)
            return;
        k->fatal = true;
        k->resets++;
        k->streak++;
        cause[0] = 0;
        ferr = rd_kafka_fatal_error(rk, cause, sizeof(cause));
        PSKGW_LOG_RL(PSKGW_LOG_ERR, pskgw_sink_name(k->core),
                     "sink \"%s\": kafka producer fatal error %s: %s: replacing the producer, "
                     "messages in flight are retried",
                     pskgw_sink_name(k->core), rd_kafka_err2name(ferr), cause[0] ? cause : reason);
        set_up(k, false);
        uv_timer_start(&k->restart, restart_tick, 0, 0);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        set_up(k, false);
    PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(k->core), "sink \"%s\": kafka: %s: %s",
                 pskgw_sink_name(k->core), rd_kafka_err2name(err), reason);
}

static void serve(kafka_sink_t *k)
{
    if (k->prod && !k->closing)
        rd_kafka_poll(k->prod->rk, 0);
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

static void probe_start(kafka_sink_t *k);

static void timer_cb(uv_timer_t *t)
{
    kafka_sink_t *k = t->data;

    serve(k);
    if (++k->ticks % PROBE_TICKS == 0)
        probe_start(k);
}

/* ---- producer instances ----------------------------------------------------------------- */

/* A fresh producer from the template configuration; its reports wake our poll handle. */
static int prod_new(kafka_sink_t *k, kprod_t **out)
{
    rd_kafka_conf_t *conf;
    char errstr[512];
    kprod_t *p = calloc(1, sizeof(*p));

    if (!p)
        return PSKGW_ENOMEM;
    p->k = k;
    pskgw_list_init(&p->reqs);
    conf = rd_kafka_conf_dup(k->conf);
    if (!conf) {
        free(p);
        return PSKGW_ENOMEM;
    }
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!p->rk) {
        PSKGW_ERR("sink \"%s\": kafka producer: %s", pskgw_sink_name(k->core), errstr);
        rd_kafka_conf_destroy(conf); /* still ours */
        free(p);
        return PSKGW_ECONFIG;
    }
    rd_kafka_set_log_queue(p->rk, NULL); /* logs to the main queue, served by our polls */
    p->mainq = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(p->mainq, k->pipefd[1], "1", 1);
    *out = p;
    return 0;
}

static void release(kafka_sink_t *k);
static void destroy_queue(kafka_sink_t *k, kprod_t *p);

/* ---- readiness probe ------------------------------------------------------------------------ */

static void probe_work(uv_work_t *w)
{
    kprod_t *p = w->data;
    const struct rd_kafka_metadata *md = NULL;

    /* brokers only (no topic list): any answer means a broker serves requests */
    p->probe_err = rd_kafka_metadata(p->rk, 0, NULL, &md, PROBE_TIMEOUT_MS);
    if (md)
        rd_kafka_metadata_destroy(md);
}

static void probe_done(uv_work_t *w, int status)
{
    kprod_t *p = w->data;
    kafka_sink_t *k = p->k;

    p->probing = false;
    k->pending--; /* the probe's; a destroy still counts, so k stays */
    if (p->retired) {
        destroy_queue(k, p); /* prod_retire waited for the probe */
        return;
    }
    if (status == 0 && p->probe_err == RD_KAFKA_RESP_ERR_NO_ERROR && k->down && !k->fatal &&
        !k->closing) {
        PSKGW_NOTICE("sink \"%s\": kafka: the brokers answer again (metadata): connected",
                     pskgw_sink_name(k->core));
        set_up(k, true);
    }
}

static void probe_start(kafka_sink_t *k)
{
    kprod_t *p = k->prod;

    if (!k->down || k->closing || k->fatal || !p || p->probing)
        return;
    p->probing = true;
    k->pending++;
    p->probe_work.data = p;
    if (uv_queue_work(k->loop, &p->probe_work, probe_work, probe_done) != 0) {
        p->probing = false;
        k->pending--;
    }
}

/* ---- producer destruction --------------------------------------------------------------- */

static void destroy_work(uv_work_t *w)
{
    kprod_t *p = w->data;

    rd_kafka_destroy(p->rk); /* joins librdkafka's threads: off the loop */
}

static void destroy_done(uv_work_t *w, int status)
{
    kprod_t *p = w->data;
    kafka_sink_t *k = p->k;

    (void)status;
    while (!pskgw_list_empty(&p->reqs)) { /* reports librdkafka dropped without calling back */
        kreq_t *q = pskgw_container_of(pskgw_list_first(&p->reqs), kreq_t, link);
        req_unlink(p, q);
        free(q);
    }
    free(p);
    release(k);
}

/* Take p out of service (loop thread, never inside rd_kafka_poll()): what it still holds is
 * purged and its reports ignored; rd_kafka_destroy() runs on the thread pool. The caller has
 * reported or forgotten every token of p->reqs. */
static void prod_retire(kafka_sink_t *k, kprod_t *p)
{
    p->retired = true;
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                              RD_KAFKA_PURGE_F_NON_BLOCKING);
    rd_kafka_queue_io_event_enable(p->mainq, -1, NULL, 0);
    rd_kafka_queue_destroy(p->mainq);
    p->mainq = NULL;
    k->pending++;
    if (!p->probing) /* else probe_done queues it: rd_kafka_destroy() would pull rk from it */
        destroy_queue(k, p);
}

static void destroy_queue(kafka_sink_t *k, kprod_t *p)
{
    p->work.data = p;
    if (uv_queue_work(k->loop, &p->work, destroy_work, destroy_done) != 0) {
        destroy_work(&p->work);
        destroy_done(&p->work, 0);
    }
}

/* After a fatal error (k->fatal, k->prod set): fail every message of the dead producer back
 * to the core (transient: retried with backoff, maybe duplicated, never lost), retire it and
 * create its replacement after the backoff. Without a producer: create one, or back off. */
static void restart_tick(uv_timer_t *t)
{
    kafka_sink_t *k = t->data;
    kprod_t *p = k->prod;
    uint64_t delay;
    int rc;

    if (k->closing)
        return;
    if (p) {
        pskgw_list_t *pos;

        /* k->prod is NULL: a send the core starts from inside a result fails now (retried) */
        k->prod = NULL;
        set_up(k, false);
        pskgw_list_foreach(pos, &p->reqs)
        {
            kreq_t *q = pskgw_container_of(pos, kreq_t, link);
            void *token = q->token;
            q->token = NULL; /* q stays: rk may still report it (then it is only freed) */
            if (k->closing)
                continue; /* the core forgot every token */
            pskgw_sink_result(k->core, token, PSKGW_EUNAVAIL);
        }
        prod_retire(k, p);
        if (k->closing)
            return; /* a result completed a close: close_tick does the rest */
        delay =
            pskgw_sink_backoff_ms(k->streak, BACKOFF_BASE_MS, k->retry_max_ms, (uint32_t)rand());
        uv_timer_start(&k->restart, restart_tick, delay, 0);
        return;
    }
    rc = prod_new(k, &k->prod);
    if (rc < 0) {
        k->streak++;
        delay =
            pskgw_sink_backoff_ms(k->streak, BACKOFF_BASE_MS, k->retry_max_ms, (uint32_t)rand());
        PSKGW_LOG_RL(PSKGW_LOG_ERR, pskgw_sink_name(k->core),
                     "sink \"%s\": kafka producer not recreated (%s): retried in %llu ms",
                     pskgw_sink_name(k->core), pskgw_strerror(rc), (unsigned long long)delay);
        uv_timer_start(&k->restart, restart_tick, delay, 0);
        return;
    }
    k->fatal = false;
    PSKGW_INFO("sink \"%s\": kafka producer recreated", pskgw_sink_name(k->core));
}

void *pskgw_sink_kafka_test_producer(const char *name, uint64_t *resets)
{
    for (kafka_sink_t *k = live; k; k = k->tnext) {
        if (strcmp(pskgw_sink_name(k->core), name) == 0) {
            if (resets)
                *resets = k->resets;
            return k->prod && !k->fatal ? k->prod->rk : NULL;
        }
    }
    if (resets)
        *resets = 0;
    return NULL;
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

    if (!k->prod || k->fatal)
        return PSKGW_EUNAVAIL; /* the producer is being replaced: retried with backoff */
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
    q = pskgw_sink_fl_get(&k->free_reqs, sizeof(*q));
    if (!q) {
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        return PSKGW_ENOMEM;
    }
    q->token = token;
    if (hdrs)
        err = rd_kafka_producev(
            k->prod->rk, RD_KAFKA_V_TOPIC(k->topic), RD_KAFKA_V_KEY(dev, strlen(dev)),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(q), RD_KAFKA_V_END);
    else
        err = rd_kafka_producev(
            k->prod->rk, RD_KAFKA_V_TOPIC(k->topic), RD_KAFKA_V_KEY(dev, strlen(dev)),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(q), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (hdrs)
            rd_kafka_headers_destroy(hdrs); /* not taken over on failure */
        pskgw_sink_fl_put(&k->free_reqs, q);
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(k->core),
                     "sink \"%s\": kafka produce of \"%s\": %s", pskgw_sink_name(k->core), msg->id,
                     rd_kafka_err2str(err));
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return PSKGW_EAGAIN;
        return classify(err) == PSKGW_EBADREQ ? PSKGW_EBADREQ : PSKGW_EUNAVAIL;
    }
    pskgw_list_insert_head(&k->prod->reqs, &q->link);
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
    k->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : 30000; /* the core's default */
    k->pipefd[0] = k->pipefd[1] = -1;
    k->topic = strdup(o->kafka.topic);
    k->conf = rd_kafka_conf_new();
    if (!k->topic || !k->conf)
        goto fail;
    if ((rc = set_prop(k->conf, o->name, "bootstrap.servers", o->kafka.brokers)) < 0 ||
        (rc = set_prop(k->conf, o->name, "acks", "all")) < 0 ||
        (rc = set_prop(k->conf, o->name, "enable.idempotence", "true")) < 0)
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
        if ((rc = set_prop(k->conf, o->name, kv->key, kv->value)) < 0)
            goto fail;
    }
    if ((rc = set_prop(k->conf, o->name, "log.queue", "true")) < 0)
        goto fail;
    rd_kafka_conf_set_log_cb(k->conf, log_cb);
    rd_kafka_conf_set_error_cb(k->conf, error_cb);
    rd_kafka_conf_set_dr_msg_cb(k->conf, dr_cb);
    if (pipe2(k->pipefd, O_NONBLOCK | O_CLOEXEC) < 0) {
        rc = PSKGW_EIO;
        goto fail;
    }
    if ((rc = prod_new(k, &k->prod)) < 0)
        goto fail;
    uv_poll_init(loop, &k->poll, k->pipefd[0]);
    k->poll.data = k;
    uv_poll_start(&k->poll, UV_READABLE, poll_cb);
    uv_timer_init(loop, &k->timer);
    k->timer.data = k;
    uv_timer_start(&k->timer, timer_cb, POLL_MS, POLL_MS);
    uv_timer_init(loop, &k->restart);
    k->restart.data = k;
    k->tnext = live;
    live = k;
    *impl = k;
    return 0;
fail:
    if (k->conf)
        rd_kafka_conf_destroy(k->conf); /* sensitive values are cleared by librdkafka */
    if (k->pipefd[0] >= 0) {
        close(k->pipefd[0]);
        close(k->pipefd[1]);
    }
    free(k->topic);
    free(k);
    return rc;
}

/* Freed once closing and every handle and destroy job is done. */
static void release(kafka_sink_t *k)
{
    pskgw_sink_t *core;

    if (--k->pending > 0 || !k->closing)
        return;
    for (kafka_sink_t **pp = &live; *pp; pp = &(*pp)->tnext) {
        if (*pp == k) {
            *pp = k->tnext;
            break;
        }
    }
    core = k->core;
    close(k->pipefd[0]);
    close(k->pipefd[1]);
    rd_kafka_conf_destroy(k->conf);
    pskgw_sink_fl_free(&k->free_reqs);
    free(k->topic);
    free(k);
    pskgw_sink_backend_closed(core);
}

static void handle_closed(uv_handle_t *h)
{
    release(h->data);
}

/* The teardown runs from a timer callback: close may be called from inside dr_cb, that is
 * inside rd_kafka_poll(), where purging and destroying the instance is not allowed. */
static void close_tick(uv_timer_t *t)
{
    kafka_sink_t *k = t->data;
    kprod_t *p = k->prod;

    uv_close((uv_handle_t *)&k->poll, handle_closed);
    uv_close((uv_handle_t *)&k->timer, handle_closed);
    uv_close((uv_handle_t *)&k->restart, handle_closed);
    k->prod = NULL;
    if (p) /* what librdkafka still holds is reported purged (ignored: retired) */
        prod_retire(k, p);
}

static void kafka_close(void *impl)
{
    kafka_sink_t *k = impl;

    k->closing = true;
    k->pending += 3; /* poll, timer, restart (+ destroy jobs, counted when queued) */
    uv_poll_stop(&k->poll);
    uv_timer_stop(&k->restart);
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
