/* mqtt sink: libmosquitto driven by the libuv loop, no extra thread. Its socket is watched by
 * a uv_poll handle (readable always, writable while mosquitto_want_write()); a uv_timer calls
 * mosquitto_loop_misc() (keepalive) and reconnects with backoff. MQTT v5, QoS from the options
 * (default 1): a message is delivered when the PUBACK arrives (QoS 1/2) or when it was written
 * (QoS 0).
 *
 * Topic: a template with {domain} {rot_public_uid} {psk_identity} {listener}; a topic that is
 * not a valid MQTT topic name (it contains + or #, for example) is a permanent failure.
 * payload "json" (default): the JSON envelope, content type application/json. payload "raw": the
 * raw payload with the metadata of pskgw_sink_meta() as v5 user properties.
 * PUBACK reason codes 0x87 (not authorized), 0x90 (topic name invalid) and 0x99 (payload
 * format invalid) are permanent; other failures are transient.
 *
 * A CONNACK or PUBACK later than mqtt.timeout_ms (a hung broker: TCP still up) drops the
 * connection; the messages are published again after reconnecting.
 *
 * libmosquitto's callbacks only record what happened; it is acted on (results to the core,
 * which may publish again) after the mosquitto_* call returned, never inside it.
 * When the connection drops, every message in flight is reported failed (transient) and will
 * be published again; libmosquitto may also resend its copy after reconnecting: a receiver can
 * see a message twice (de-duplicate on message_id), never lose it.
 * The host name is resolved on the thread pool (uv_getaddrinfo) before every connect and
 * libmosquitto gets the numeric address: no name lookup on the loop thread.
 */
#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "common/wipe.h"
#include "sinks/internal.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MISC_MS          250
#define RECONNECT_MIN_MS 100

static unsigned lib_users;

typedef struct mq_req {
    pskgw_list_t link; /* m->reqs */
    uint64_t sent;
    int mid;
    void *token;
    bool done;
    int status;
} mq_req_t;

typedef struct {
    pskgw_sink_t *core;
    uv_loop_t *loop;
    struct mosquitto *mosq;
    char *host;
    int port;
    char *topic;
    int qos;
    int keepalive;
    /* The request inside mosquitto_publish_v5(): a QoS 0 message is written, and reported by
     * on_publish, before that call returns its mid. */
    mq_req_t *publishing;
    bool raw;
    uint64_t retry_max_ms;
    uint64_t timeout_ms;

    uv_poll_t *poll;
    int poll_fd;
    uv_timer_t misc;

    pskgw_sink_resolve_t *res; /* host name lookup (thread pool) in progress */
    bool connecting;
    bool connected;
    uint64_t connect_started;
    uint64_t next_reconnect;
    unsigned attempts;

    /* recorded by libmosquitto callbacks, acted on afterwards */
    bool ev_connected;
    bool ev_lost;
    int ev_connack;

    pskgw_list_t reqs;               /* publishes in flight (mq_req_t), newest first */
    pskgw_sink_freelist_t free_reqs; /* mq_req_t: none allocated per message in steady state */
    pskgw_sink_buf_t topic_buf;      /* the topic of the message being published */
    mosquitto_property *json_props;  /* JSON mode's properties, made once (NULL in raw mode) */
    bool closing;
    unsigned pending;
} mqtt_sink_t;

static void process(mqtt_sink_t *m);

/* ---- poll handle follows mosquitto's socket --------------------------------------------- */

static void release(mqtt_sink_t *m)
{
    pskgw_sink_t *core;

    if (--m->pending > 0)
        return;
    core = m->core;
    free(m->host);
    free(m->topic);
    pskgw_sink_fl_free(&m->free_reqs);
    pskgw_sink_buf_free(&m->topic_buf);
    mosquitto_property_free_all(&m->json_props);
    free(m);
    if (--lib_users == 0)
        mosquitto_lib_cleanup();
    pskgw_sink_backend_closed(core);
}

static void poll_closed(uv_handle_t *h)
{
    mqtt_sink_t *m = h->data;

    free(h);
    if (m->closing)
        release(m);
}

static void drop_poll(mqtt_sink_t *m)
{
    if (!m->poll)
        return;
    uv_poll_stop(m->poll);
    if (m->closing)
        m->pending++;
    uv_close((uv_handle_t *)m->poll, poll_closed);
    m->poll = NULL;
    m->poll_fd = -1;
}

static void poll_cb(uv_poll_t *h, int status, int events);

static void sync_poll(mqtt_sink_t *m)
{
    int fd = m->closing ? -1 : mosquitto_socket(m->mosq);
    int ev;

    if (fd != m->poll_fd)
        drop_poll(m);
    if (fd < 0)
        return;
    if (!m->poll) {
        m->poll = malloc(sizeof(*m->poll));
        if (!m->poll || uv_poll_init_socket(m->loop, m->poll, fd) != 0) {
            free(m->poll);
            m->poll = NULL;
            return;
        }
        m->poll->data = m;
        m->poll_fd = fd;
    }
    ev = UV_READABLE | (mosquitto_want_write(m->mosq) ? UV_WRITABLE : 0);
    uv_poll_start(m->poll, ev, poll_cb);
}

/* ---- libmosquitto callbacks: record only ------------------------------------------------ */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    mqtt_sink_t *m = obj;

    (void)mosq;
    (void)flags;
    (void)props;
    if (rc == 0) {
        m->ev_connected = true;
    } else {
        m->ev_connack = rc;
        m->ev_lost = true;
    }
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
    mqtt_sink_t *m = obj;

    (void)mosq;
    (void)rc;
    (void)props;
    m->ev_lost = true;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
    mqtt_sink_t *m = obj;

    (void)mosq;
    (void)props;
    pskgw_list_t *pos;

    pskgw_list_foreach(pos, &m->reqs)
    {
        mq_req_t *q = pskgw_container_of(pos, mq_req_t, link);

        if (q->mid == mid && !q->done) {
            q->done = true;
            if (reason < 0x80)
                q->status = 0;
            else if (reason == MQTT_RC_NOT_AUTHORIZED || reason == MQTT_RC_TOPIC_NAME_INVALID ||
                     reason == MQTT_RC_PAYLOAD_FORMAT_INVALID)
                q->status = PSKGW_EBADREQ;
            else
                q->status = PSKGW_EUNAVAIL;
            return;
        }
    }
    if (m->publishing && !m->publishing->done) {
        m->publishing->done = true; /* QoS 0, written during the publish call */
        m->publishing->status = 0;
        return;
    }
    /* a resend from before a reconnect, already reported failed: nothing to do */
}

/* ---- state ------------------------------------------------------------------------------ */

static void schedule_reconnect(mqtt_sink_t *m)
{
    m->next_reconnect = uv_now(m->loop) + pskgw_sink_backoff_ms(++m->attempts, RECONNECT_MIN_MS,
                                                                m->retry_max_ms, (uint32_t)rand());
}

static void lost(mqtt_sink_t *m, const char *why)
{
    bool was = m->connected;
    pskgw_list_t failed, *first;

    m->connected = false;
    m->connecting = false;
    if (was)
        PSKGW_WARN("sink \"%s\": mqtt connection to %s:%d lost: %s", pskgw_sink_name(m->core),
                   m->host, m->port, why);
    else
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(m->core),
                     "sink \"%s\": cannot connect to mqtt %s:%d: %s", pskgw_sink_name(m->core),
                     m->host, m->port, why);
    schedule_reconnect(m);
    sync_poll(m);
    /* also when it never connected: an idle sink whose broker is down from the start is not
     * healthy (readiness, the connected gauge) */
    pskgw_sink_set_connected(m->core, false);
    /* everything in flight failed: the core publishes it again */
    pskgw_list_init(&failed); /* taken aside: results may publish again into m->reqs */
    while ((first = pskgw_list_first(&m->reqs)) != NULL) {
        pskgw_list_remove(first);
        pskgw_list_insert_tail(&failed, first);
    }
    while ((first = pskgw_list_first(&failed)) != NULL) {
        mq_req_t *q = pskgw_container_of(first, mq_req_t, link);

        pskgw_list_remove(first);
        if (!m->closing)
            pskgw_sink_result(m->core, q->token, q->done ? q->status : PSKGW_EUNAVAIL);
        pskgw_sink_fl_put(&m->free_reqs, q);
    }
}

static mq_req_t *first_done(mqtt_sink_t *m)
{
    pskgw_list_t *pos;

    pskgw_list_foreach(pos, &m->reqs)
    {
        mq_req_t *q = pskgw_container_of(pos, mq_req_t, link);

        if (q->done)
            return q;
    }
    return NULL;
}

/* Act on what the callbacks recorded, then report finished publishes. */
static void process(mqtt_sink_t *m)
{
    if (m->closing)
        return;
    if (m->ev_connected) {
        m->ev_connected = false;
        m->connected = true;
        m->connecting = false;
        m->attempts = 0;
        PSKGW_INFO("sink \"%s\": connected to mqtt %s:%d", pskgw_sink_name(m->core), m->host,
                   m->port);
        pskgw_sink_set_connected(m->core, true);
    }
    if (m->ev_lost) {
        char why[64];
        m->ev_lost = false;
        if (m->ev_connack)
            snprintf(why, sizeof(why), "%s",
                     mosquitto_reason_string(m->ev_connack)); /* MQTT v5 reason code */
        else
            snprintf(why, sizeof(why), "disconnected");
        m->ev_connack = 0;
        lost(m, why);
        return;
    }
    /* from the head again after each result: the list may have changed under it */
    for (mq_req_t *q; (q = first_done(m)) != NULL;) {
        void *token = q->token;
        int st = q->status;

        pskgw_list_remove(&q->link);
        pskgw_sink_fl_put(&m->free_reqs, q);
        pskgw_sink_result(m->core, token, st);
        if (m->closing)
            return;
    }
    sync_poll(m);
}

static void after_call(mqtt_sink_t *m, int rc)
{
    if (rc != MOSQ_ERR_SUCCESS && !m->closing)
        m->ev_lost = true; /* also when the connect never completed */
    process(m);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    mqtt_sink_t *m = h->data;
    int rc = MOSQ_ERR_SUCCESS;

    if (status < 0)
        events = UV_READABLE | UV_WRITABLE; /* let libmosquitto find the socket error */
    if (events & UV_READABLE)
        rc = mosquitto_loop_read(m->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && (events & UV_WRITABLE) && mosquitto_socket(m->mosq) >= 0)
        rc = mosquitto_loop_write(m->mosq, 1);
    after_call(m, rc);
}

/* The host name was resolved on the thread pool: libmosquitto gets the numeric address (and
 * does no name lookup on the loop thread). */
static void resolved(void *arg, int status, const char *ip)
{
    mqtt_sink_t *m = arg;
    int rc;

    m->res = NULL;
    if (m->closing) {
        release(m);
        return;
    }
    if (!m->connecting)
        return; /* the connect timed out meanwhile: lost() scheduled the next try */
    if (status < 0) {
        m->ev_lost = false;
        lost(m, "cannot resolve the host name");
        return;
    }
    rc = mosquitto_connect_async(m->mosq, ip, m->port, m->keepalive);
    if (rc != MOSQ_ERR_SUCCESS) {
        m->ev_lost = false;
        lost(m, rc == MOSQ_ERR_ERRNO ? "connect failed" : mosquitto_strerror(rc));
        return;
    }
    process(m);
}

static void try_connect(mqtt_sink_t *m)
{
    if (m->res)
        return; /* the previous lookup is still running */
    m->connecting = true;
    m->connect_started = uv_now(m->loop);
    if (pskgw_sink_resolve(m->loop, m->host, resolved, m, &m->res) < 0) {
        m->res = NULL;
        m->ev_lost = false;
        lost(m, "cannot resolve the host name");
    }
}

static void misc_cb(uv_timer_t *t)
{
    mqtt_sink_t *m = t->data;
    uint64_t now = uv_now(m->loop);

    if (m->closing)
        return;
    if (m->connected) {
        pskgw_list_t *pos;

        pskgw_list_foreach(pos, &m->reqs)
        {
            mq_req_t *q = pskgw_container_of(pos, mq_req_t, link);

            if (!q->done && now - q->sent > m->timeout_ms) {
                PSKGW_WARN("sink \"%s\": no PUBACK from mqtt %s:%d within %llu ms: reconnecting",
                           pskgw_sink_name(m->core), m->host, m->port,
                           (unsigned long long)m->timeout_ms);
                mosquitto_disconnect(m->mosq);
                m->ev_lost = false;
                lost(m, "publish timed out");
                return;
            }
        }
        after_call(m, mosquitto_loop_misc(m->mosq));
        return;
    }
    if (m->connecting && now - m->connect_started > m->timeout_ms) {
        mosquitto_disconnect(m->mosq);
        m->ev_lost = false;
        lost(m, "connect timed out");
        return;
    }
    if (!m->connecting && now >= m->next_reconnect)
        try_connect(m);
}

/* ---- backend ---------------------------------------------------------------------------- */

/* JSON mode's properties (the same for every message): made once, at create. */
static int json_props(mosquitto_property **props)
{
    int rc = mosquitto_property_add_string(props, MQTT_PROP_CONTENT_TYPE, "application/json");

    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_property_add_byte(props, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, 1);
    return rc;
}

/* Raw mode's properties: the message's metadata as user properties. */
static int raw_props(const pskgw_msg_t *msg, mosquitto_property **props)
{
    pskgw_sink_meta_t meta;

    pskgw_sink_meta(msg, &meta);
    for (size_t i = 0; i < meta.n; i++) {
        int rc = mosquitto_property_add_string_pair(props, MQTT_PROP_USER_PROPERTY, meta.name[i],
                                                    meta.value[i]);
        if (rc != MOSQ_ERR_SUCCESS)
            return rc;
    }
    return MOSQ_ERR_SUCCESS;
}

static int publish_status(int rc)
{
    switch (rc) {
    case MOSQ_ERR_SUCCESS:
        return 0;
    case MOSQ_ERR_NOMEM:
        return PSKGW_ENOMEM;
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_PAYLOAD_SIZE:
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_OVERSIZE_PACKET:
    case MOSQ_ERR_QOS_NOT_SUPPORTED:
    case MOSQ_ERR_DUPLICATE_PROPERTY:
        return PSKGW_EBADREQ;
    default:
        return PSKGW_EUNAVAIL;
    }
}

static int mqtt_send(void *impl, pskgw_msg_t *msg, void *token)
{
    mqtt_sink_t *m = impl;
    mosquitto_property *props = NULL;
    const char *topic;
    const void *payload;
    size_t len;
    mq_req_t *q;
    int mid = 0;
    int rc;

    if (!m->connected)
        return PSKGW_EUNAVAIL;
    if ((rc = pskgw_sink_template(m->topic, &msg->env, &m->topic_buf, &topic)) < 0)
        return rc;
    if (mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS ||
        mosquitto_validate_utf8(topic, (int)strlen(topic)) != MOSQ_ERR_SUCCESS) {
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, pskgw_sink_name(m->core),
                     "sink \"%s\": message \"%s\": invalid mqtt topic", pskgw_sink_name(m->core),
                     msg->id);
        return PSKGW_EBADREQ;
    }
    if (m->raw) {
        payload = msg->env.payload;
        len = msg->env.payload_len;
    } else {
        const char *json;
        if ((rc = pskgw_msg_json(msg, &json, &len)) < 0)
            return rc;
        payload = json;
    }
    q = pskgw_sink_fl_get(&m->free_reqs, sizeof(*q));
    if (!q)
        return PSKGW_ENOMEM;
    rc = m->raw ? raw_props(msg, &props) : MOSQ_ERR_SUCCESS;
    if (rc == MOSQ_ERR_SUCCESS) {
        m->publishing = q;
        rc = mosquitto_publish_v5(m->mosq, &mid, topic, (int)len, payload, m->qos, false,
                                  m->raw ? props : m->json_props);
        m->publishing = NULL;
    }
    mosquitto_property_free_all(&props);
    if ((rc = publish_status(rc)) < 0) {
        pskgw_sink_fl_put(&m->free_reqs, q);
        return rc;
    }
    q->mid = mid;
    q->token = token;
    q->sent = uv_now(m->loop);
    pskgw_list_insert_head(&m->reqs, &q->link);
    /* QoS 0: libmosquitto reports it sent via on_publish (maybe already during the publish
     * call, see publishing); process() picks it up */
    sync_poll(m);
    return 0;
}

static int mqtt_create(pskgw_sink_t *core, uv_loop_t *loop, const pskgw_sink_options_t *o,
                       void **impl)
{
    mqtt_sink_t *m;
    char idbuf[128];
    const char *cid = o->mqtt.client_id;
    int rc = PSKGW_ENOMEM;

    if (!o->mqtt.host || !o->mqtt.host[0] || !o->mqtt.topic || !o->mqtt.topic[0] ||
        o->mqtt.qos < 0 || o->mqtt.qos > 2 || o->mqtt.port < 0 || o->mqtt.port > 65535) {
        PSKGW_ERR("sink \"%s\": mqtt needs host, topic, qos 0..2", o->name);
        return PSKGW_ECONFIG;
    }
    if (lib_users++ == 0)
        mosquitto_lib_init();
    m = calloc(1, sizeof(*m));
    if (!m)
        goto fail;
    m->core = core;
    m->loop = loop;
    pskgw_list_init(&m->reqs);
    m->port = o->mqtt.port ? o->mqtt.port : 1883;
    m->qos = o->mqtt.qos;
    m->keepalive = o->mqtt.keepalive ? o->mqtt.keepalive : 30;
    m->raw = o->payload == PSKGW_SINK_PAYLOAD_RAW;
    m->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : 30000;
    m->timeout_ms = o->mqtt.timeout_ms ? o->mqtt.timeout_ms : 10000;
    m->poll_fd = -1;
    m->host = strdup(o->mqtt.host);
    m->topic = strdup(o->mqtt.topic);
    if (!cid) {
        snprintf(idbuf, sizeof(idbuf), "pskgw-%ld-%s", (long)getpid(), o->name);
        cid = idbuf;
    }
    if (!m->host || !m->topic)
        goto fail;
    if (!m->raw && json_props(&m->json_props) != MOSQ_ERR_SUCCESS)
        goto fail;
    m->mosq = mosquitto_new(cid, true, m);
    if (!m->mosq)
        goto fail;
    mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    if (o->mqtt.username && mosquitto_username_pw_set(m->mosq, o->mqtt.username,
                                                      o->mqtt.password) != MOSQ_ERR_SUCCESS) {
        rc = PSKGW_ECONFIG;
        goto fail;
    }
    mosquitto_connect_v5_callback_set(m->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(m->mosq, on_publish);
    uv_timer_init(loop, &m->misc);
    m->misc.data = m;
    /* first connect from the timer: never from inside create */
    uv_timer_start(&m->misc, misc_cb, 0, MISC_MS);
    *impl = m;
    return 0;
fail:
    if (m) {
        if (m->mosq)
            mosquitto_destroy(m->mosq);
        free(m->host);
        free(m->topic);
        mosquitto_property_free_all(&m->json_props);
        free(m);
    }
    if (--lib_users == 0)
        mosquitto_lib_cleanup();
    return rc;
}

static void misc_closed(uv_handle_t *h)
{
    release(h->data);
}

static void mqtt_close(void *impl)
{
    mqtt_sink_t *m = impl;

    m->closing = true;
    m->pending = 1; /* the timer; drop_poll adds the poll handle, a lookup adds itself */
    if (m->res) {
        m->pending++;
        pskgw_sink_resolve_cancel(m->res); /* its callback still comes: release() */
    }
    drop_poll(m); /* stop watching before libmosquitto closes the socket */
    for (pskgw_list_t *first; (first = pskgw_list_first(&m->reqs)) != NULL;) {
        pskgw_list_remove(first);
        pskgw_sink_fl_put(&m->free_reqs, pskgw_container_of(first, mq_req_t, link));
    }
    if (m->connected)
        mosquitto_disconnect(m->mosq);
    mosquitto_destroy(m->mosq);
    m->mosq = NULL;
    uv_timer_stop(&m->misc);
    uv_close((uv_handle_t *)&m->misc, misc_closed);
}

const pskgw_sink_backend_t pskgw_sink_backend_mqtt = {
    .type = "mqtt",
    .raw_ok = true,
    .create = mqtt_create,
    .send = mqtt_send,
    .reopen = NULL,
    .close = mqtt_close,
};
