/* pskgw-peerrx: the receiving end of a real peer for the gateway's shell tests.
 *
 *   pskgw-peerrx kafka TOPIC
 *       hosts librdkafka's mock cluster (3 brokers, TOPIC with 3 partitions), prints
 *       "bootstrap HOST:PORT,..." then consumes its partitions from the beginning and prints each
 *       message as "KEY<TAB>VALUE". SIGUSR1 takes every broker down (connections closed, new
 *       ones refused: rd_kafka_mock_broker_set_down), SIGUSR2 brings them up; each prints
 *       "brokers down" / "brokers up" once done.
 *   pskgw-peerrx mqtt PORT FILTER [USERNAME PASSWORD_FILE]
 *       subscribes to FILTER at QoS 2 on the broker at 127.0.0.1:PORT (MQTT 3.1.1), prints
 *       "subscribed" once the broker granted it, then each message as "QOS<TAB>TOPIC<TAB>PAYLOAD"
 *       (the QoS received is the QoS the message was published with).
 *
 * Lines go to stdout, flushed one by one. Runs until SIGTERM or SIGINT, then stops cleanly and
 * exits 0; exits 1 on a start-up error (named on stderr).
 */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t brokers_flag; /* 1: take them down, 2: bring them up */

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void on_brokers(int sig)
{
    brokers_flag = sig == SIGUSR1 ? 1 : 2;
}

static void brokers_apply(rd_kafka_mock_cluster_t *mc)
{
    int which = brokers_flag;

    if (!which)
        return;
    brokers_flag = 0;
    for (int32_t id = 1; id <= 3; id++)
        (void)(which == 1 ? rd_kafka_mock_broker_set_down(mc, id)
                          : rd_kafka_mock_broker_set_up(mc, id));
    printf("brokers %s\n", which == 1 ? "down" : "up");
    fflush(stdout);
}

/* ---- kafka ----------------------------------------------------------------------------- */

static int set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];

    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "peerrx: kafka %s: %s\n", k, err);
        return -1;
    }
    return 0;
}

static rd_kafka_t *consumer_new(const char *boot, const char *topic)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *tl;
    char err[256];
    rd_kafka_t *rk;

    if (set(c, "bootstrap.servers", boot) < 0 || set(c, "group.id", "peerrx") < 0 ||
        set(c, "enable.partition.eof", "false") < 0 || set(c, "enable.auto.commit", "false") < 0) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "peerrx: kafka consumer: %s\n", err);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    tl = rd_kafka_topic_partition_list_new(3);
    for (int p = 0; p < 3; p++)
        rd_kafka_topic_partition_list_add(tl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, tl) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "peerrx: kafka assign failed\n");
        rd_kafka_topic_partition_list_destroy(tl);
        rd_kafka_destroy(rk);
        return NULL;
    }
    rd_kafka_topic_partition_list_destroy(tl);
    return rk;
}

static int run_kafka(const char *topic)
{
    char err[256];
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof(err));
    rd_kafka_mock_cluster_t *mc = NULL;
    rd_kafka_t *rk = NULL;
    int rc = 1;

    if (!host) {
        fprintf(stderr, "peerrx: kafka: %s\n", err);
        return 1;
    }
    mc = rd_kafka_mock_cluster_new(host, 3);
    if (!mc || rd_kafka_mock_topic_create(mc, topic, 3, 3) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "peerrx: kafka mock cluster not created\n");
        goto out;
    }
    rk = consumer_new(rd_kafka_mock_cluster_bootstraps(mc), topic);
    if (!rk)
        goto out;
    printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (!stop_flag) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

        brokers_apply(mc);
        if (!m)
            continue;
        if (!m->err)
            printf("%.*s\t%.*s\n", (int)m->key_len, m->key ? (const char *)m->key : "", (int)m->len,
                   m->payload ? (const char *)m->payload : "");
        else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            fprintf(stderr, "peerrx: kafka: %s\n", rd_kafka_message_errstr(m));
        fflush(stdout);
        rd_kafka_message_destroy(m);
    }
    rc = 0;
out:
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
    return rc;
}

/* ---- mqtt ------------------------------------------------------------------------------ */

static const char *filter;

static void mq_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)obj;
    if (rc != 0) {
        fprintf(stderr, "peerrx: mqtt connect refused: %s\n", mosquitto_connack_string(rc));
        stop_flag = 1;
        return;
    }
    if (mosquitto_subscribe(m, NULL, filter, 2) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "peerrx: mqtt subscribe failed\n");
        stop_flag = 1;
    }
}

static void mq_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
    (void)m;
    (void)obj;
    (void)mid;
    if (n == 1 && granted[0] == 2)
        printf("subscribed\n");
    else
        fprintf(stderr, "peerrx: mqtt subscription not granted at qos 2\n");
    fflush(stdout);
}

static void mq_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    (void)m;
    (void)obj;
    printf("%d\t%s\t%.*s\n", msg->qos, msg->topic, msg->payloadlen, (const char *)msg->payload);
    fflush(stdout);
}

static int read_secret(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return -1;
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

static int run_mqtt(int port, const char *user, const char *pass_file)
{
    struct mosquitto *m;
    char pass[256] = "";
    int rc = 1;

    if (user && read_secret(pass_file, pass, sizeof(pass)) < 0) {
        fprintf(stderr, "peerrx: cannot read %s\n", pass_file);
        return 1;
    }
    mosquitto_lib_init();
    m = mosquitto_new("pskgw-peerrx", true, NULL);
    if (!m)
        goto out;
    mosquitto_connect_callback_set(m, mq_connect);
    mosquitto_subscribe_callback_set(m, mq_subscribe);
    mosquitto_message_callback_set(m, mq_message);
    if (user && mosquitto_username_pw_set(m, user, pass) != MOSQ_ERR_SUCCESS)
        goto out;
    if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "peerrx: cannot connect to mqtt 127.0.0.1:%d\n", port);
        goto out;
    }
    while (!stop_flag) {
        int r = mosquitto_loop(m, 100, 1);

        if (r != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "peerrx: mqtt connection lost: %s\n", mosquitto_strerror(r));
            goto out;
        }
    }
    mosquitto_disconnect(m);
    rc = 0;
out:
    memset(pass, 0, sizeof(pass));
    if (m)
        mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_brokers;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    if (argc == 3 && strcmp(argv[1], "kafka") == 0)
        return run_kafka(argv[2]);
    if ((argc == 4 || argc == 6) && strcmp(argv[1], "mqtt") == 0) {
        char *end = NULL;
        long port = strtol(argv[2], &end, 10);

        if (!end || *end || port < 1 || port > 65535) {
            fprintf(stderr, "peerrx: bad port \"%s\"\n", argv[2]);
            return 1;
        }
        filter = argv[3];
        return run_mqtt((int)port, argc == 6 ? argv[4] : NULL, argc == 6 ? argv[5] : NULL);
    }
    fprintf(stderr, "usage: pskgw-peerrx kafka TOPIC | mqtt PORT FILTER [USER PASSWORD_FILE]\n");
    return 1;
}
