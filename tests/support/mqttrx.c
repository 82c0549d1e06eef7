#define _GNU_SOURCE
#include "mqttrx.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RX_MAX (ST_MAX * 2)

struct mqttrx {
    struct mosquitto *mosq;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int subscribed;
    int n;
    mqttrx_msg_t msgs[RX_MAX];
};

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
                         const int *granted)
{
    mqttrx_t *rx = obj;

    (void)mosq;
    (void)mid;
    (void)qos_count;
    (void)granted;
    pthread_mutex_lock(&rx->mu);
    rx->subscribed = 1;
    pthread_cond_broadcast(&rx->cv);
    pthread_mutex_unlock(&rx->mu);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    mqttrx_t *rx = obj;
    mqttrx_msg_t m;
    const mosquitto_property *p;

    (void)mosq;
    memset(&m, 0, sizeof(m));
    snprintf(m.topic, sizeof(m.topic), "%s", msg->topic);
    m.payload = malloc((size_t)msg->payloadlen + 1);
    memcpy(m.payload, msg->payload, (size_t)msg->payloadlen);
    m.payload[msg->payloadlen] = 0;
    m.len = (size_t)msg->payloadlen;
    for (p = props; p; p = mosquitto_property_next(p)) {
        char *name = NULL;
        char *value = NULL;
        int id = mosquitto_property_identifier(p);

        if (id == MQTT_PROP_USER_PROPERTY &&
            mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, false)) {
            if (strcmp(name, "message_id") == 0)
                snprintf(m.prop_id, sizeof(m.prop_id), "%s", value);
            else if (strcmp(name, "rot_public_uid") == 0)
                snprintf(m.prop_dev, sizeof(m.prop_dev), "%s", value);
            else if (strcmp(name, "psk_identity") == 0)
                snprintf(m.prop_psk, sizeof(m.prop_psk), "%s", value);
            else if (strcmp(name, "seq") == 0)
                m.prop_seq = strtoull(value, NULL, 10);
        } else if (id == MQTT_PROP_CONTENT_TYPE &&
                   mosquitto_property_read_string(p, MQTT_PROP_CONTENT_TYPE, &value, false)) {
            snprintf(m.content_type, sizeof(m.content_type), "%s", value);
        }
        free(name);
        free(value);
    }
    pthread_mutex_lock(&rx->mu);
    if (rx->n < RX_MAX)
        rx->msgs[rx->n++] = m;
    else
        free(m.payload);
    pthread_mutex_unlock(&rx->mu);
}

int mqttrx_start(mqttrx_t **out, int port, const char *filter)
{
    mqttrx_t *rx = calloc(1, sizeof(*rx));
    struct timespec dl;
    int ok;

    if (!rx)
        return -1;
    mosquitto_lib_init();
    pthread_mutex_init(&rx->mu, NULL);
    pthread_cond_init(&rx->cv, NULL);
    rx->mosq = mosquitto_new(NULL, true, rx);
    mosquitto_int_option(rx->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_subscribe_callback_set(rx->mosq, on_subscribe);
    mosquitto_message_v5_callback_set(rx->mosq, on_message);
    if (mosquitto_connect(rx->mosq, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS ||
        mosquitto_subscribe(rx->mosq, NULL, filter, 1) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(rx->mosq) != MOSQ_ERR_SUCCESS) {
        mosquitto_destroy(rx->mosq);
        free(rx);
        return -1;
    }
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30; /* a guard against hanging only: a loaded machine may take seconds */
    pthread_mutex_lock(&rx->mu);
    while (!rx->subscribed)
        if (pthread_cond_timedwait(&rx->cv, &rx->mu, &dl) != 0)
            break;
    ok = rx->subscribed;
    pthread_mutex_unlock(&rx->mu);
    if (!ok) {
        mqttrx_stop(rx);
        return -1;
    }
    *out = rx;
    return 0;
}

int mqttrx_count(mqttrx_t *rx)
{
    int n;

    pthread_mutex_lock(&rx->mu);
    n = rx->n;
    pthread_mutex_unlock(&rx->mu);
    return n;
}

int mqttrx_get(mqttrx_t *rx, mqttrx_msg_t *out, int max)
{
    int n;

    pthread_mutex_lock(&rx->mu);
    n = rx->n < max ? rx->n : max;
    for (int i = 0; i < n; i++) {
        out[i] = rx->msgs[i];
        out[i].payload = malloc(rx->msgs[i].len + 1);
        memcpy(out[i].payload, rx->msgs[i].payload, rx->msgs[i].len + 1);
    }
    pthread_mutex_unlock(&rx->mu);
    return n;
}

void mqttrx_free_msgs(mqttrx_msg_t *m, int n)
{
    for (int i = 0; i < n; i++)
        free(m[i].payload);
}

void mqttrx_stop(mqttrx_t *rx)
{
    mosquitto_disconnect(rx->mosq);
    mosquitto_loop_stop(rx->mosq, true);
    mosquitto_destroy(rx->mosq);
    for (int i = 0; i < rx->n; i++)
        free(rx->msgs[i].payload);
    pthread_mutex_destroy(&rx->mu);
    pthread_cond_destroy(&rx->cv);
    free(rx);
    mosquitto_lib_cleanup();
}
