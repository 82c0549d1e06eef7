/* kafka sink against librdkafka's mock cluster (3 brokers), consumed back with an rdkafka
 * consumer: exact envelopes and keys, raw value with headers, brokers down then up, kill -9
 * replay, spool limit, a poison message (over message.max.bytes) dead-lettered, a fatal error
 * of the idempotent producer while messages are in flight (producer replaced, nothing lost). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "proc.h"
#include "sinks/envelope.h"
#include "sinks/internal.h" /* pskgw_sink_kafka_test_producer */
#include "sinktest.h"

#define TOPIC "pskgw-up"
#define NPART 3

static char tmp[256];
static char spooldir[300];
static char dlq[300];
static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mc;
static char boot[256];
static int dead_fd = -1; /* a reserved port nobody answers on (dead_broker) */

static void setup(void)
{
    char err[256];

    cr_assert_eq(pskgw_test_tmpdir(tmp, sizeof(tmp)), 0);
    snprintf(spooldir, sizeof(spooldir), "%s/spool", tmp);
    snprintf(dlq, sizeof(dlq), "%s/dead.jsonl", tmp);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof(err));
    cr_assert_not_null(mock_rk, "%s", err);
    mc = rd_kafka_mock_cluster_new(mock_rk, 3);
    cr_assert_not_null(mc);
    snprintf(boot, sizeof(boot), "%s", rd_kafka_mock_cluster_bootstraps(mc));
    cr_assert_eq(rd_kafka_mock_topic_create(mc, TOPIC, NPART, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void teardown(void)
{
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(mock_rk);
    if (dead_fd >= 0)
        close(dead_fd);
    dead_fd = -1;
    pskgw_test_rmtree(tmp);
}

/* A broker address on 127.0.0.1 that refuses connections for the whole test: its port is
 * reserved (bound, never listening) until teardown, so no other test's server can take it. */
static void dead_broker(char *buf, size_t cap)
{
    int p;

    dead_fd = pskgw_test_reserve_port(0, &p);
    cr_assert_geq(dead_fd, 0);
    snprintf(buf, cap, "127.0.0.1:%d", p);
}

TestSuite(sink_kafka, .init = setup, .fini = teardown, .timeout = 90);

static const pskgw_sink_kv_t props[] = { { "message.max.bytes", "3000" }, { "linger.ms", "5" } };

static pskgw_sink_options_t kafka_opts(size_t queue_size, const char *brokers)
{
    pskgw_sink_options_t o;

    memset(&o, 0, sizeof(o));
    o.name = "kafka";
    o.type = PSKGW_SINK_KAFKA;
    o.kafka.brokers = brokers;
    o.kafka.topic = TOPIC;
    o.kafka.props = props;
    o.kafka.n_props = 2;
    o.queue_size = queue_size;
    o.in_flight = 32;
    o.retry_max_ms = 300;
    o.dead_letter_path = dlq;
    o.spool.path = spooldir;
    o.spool.max_bytes = 8u << 20;
    return o;
}

typedef struct {
    char key[64];
    char *value;
    size_t len;
    char hdr_id[PSKGW_MESSAGE_ID_LEN + 1];
    uint64_t hdr_seq;
} kmsg_t;

static kmsg_t km[ST_MAX * 2];
static st_rx_t got[ST_MAX * 2];
static int stop_distinct; /* consume(): also stop once this many distinct ids were read */

static void free_km(int n)
{
    for (int i = 0; i < n; i++)
        free(km[i].value);
}

/* Consume the topic from the beginning until `want` messages or timeout_ms. */
static int consume(int want, int timeout_ms, bool raw)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *c;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(NPART);
    struct timespec t0;
    struct timespec t1;
    int n = 0;
    int distinct = 0;

    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", boot, err, sizeof(err)),
                 RD_KAFKA_CONF_OK);
    cr_assert_eq(rd_kafka_conf_set(conf, "group.id", "pskgw-test", err, sizeof(err)),
                 RD_KAFKA_CONF_OK);
    cr_assert_eq(rd_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof(err)),
                 RD_KAFKA_CONF_OK);
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    for (int p = 0; p < NPART; p++)
        rd_kafka_topic_partition_list_add(parts, TOPIC, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert_eq(rd_kafka_assign(c, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (n < want && !(stop_distinct && distinct >= stop_distinct)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms) {
            if (m)
                rd_kafka_message_destroy(m);
            break;
        }
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && n < ST_MAX * 2) {
            kmsg_t *k = &km[n];
            rd_kafka_headers_t *h = NULL;
            const void *v;
            size_t vl;

            memset(k, 0, sizeof(*k));
            snprintf(k->key, sizeof(k->key), "%.*s", (int)m->key_len, (const char *)m->key);
            k->value = malloc(m->len + 1);
            memcpy(k->value, m->payload, m->len);
            k->value[m->len] = 0;
            k->len = m->len;
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (rd_kafka_header_get_last(h, "message_id", &v, &vl) == 0 &&
                    vl == PSKGW_MESSAGE_ID_LEN)
                    memcpy(k->hdr_id, v, vl);
                if (rd_kafka_header_get_last(h, "seq", &v, &vl) == 0) {
                    char tmpn[24];
                    snprintf(tmpn, sizeof(tmpn), "%.*s", (int)vl, (const char *)v);
                    k->hdr_seq = strtoull(tmpn, NULL, 10);
                }
            }
            if (raw) {
                memcpy(got[n].id, k->hdr_id, sizeof(got[n].id));
                snprintf(got[n].dev, sizeof(got[n].dev), "%s", k->key);
                got[n].seq = k->hdr_seq;
            } else {
                cr_assert_eq(st_parse_json(k->value, k->len, &got[n]), 0);
            }
            distinct++;
            for (int j = 0; j < n; j++)
                if (strcmp(got[j].id, got[n].id) == 0) {
                    distinct--;
                    break;
                }
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return n;
}

/* A message of device dev consumed as want, keyed by dev. */
static bool keyed_match(void *arg, int j, const char *want, size_t wl, const char *dev)
{
    (void)arg;
    if (km[j].len != wl || memcmp(km[j].value, want, wl) != 0)
        return false;
    cr_assert_str_eq(km[j].key, dev);
    return true;
}

Test(sink_kafka, delivers_exact_envelopes_keyed_by_device)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = kafka_opts(256, boot);
    pskgw_sink_stats_t st;
    int n;

    st_open(&c, &o);
    st_submit(&c, 0, 200, 6);
    st_run_until(&c.loop, st_all_done, &c, 30000);
    cr_assert_eq(c.done_ok, 200);
    st_wait_delivered(&c, 200, 30000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert(st.connected);
    cr_assert_eq(st.dead_lettered, 0);
    st_close(&c);
    st_loop_fini(&c);
    n = consume(200, 20000, false);
    cr_assert_eq(n, 200);
    st_expect_envelopes(&c, 200, 6, n, keyed_match, NULL);
    cr_assert_eq(st_check_delivery(got, n, c.ids, 200), 200);
    free_km(n);
}

Test(sink_kafka, raw_value_with_headers)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = kafka_opts(64, boot);
    int n;

    o.payload = PSKGW_SINK_PAYLOAD_RAW;
    st_open(&c, &o);
    st_submit(&c, 0, 30, 3);
    st_run_until(&c.loop, st_all_done, &c, 30000);
    st_wait_delivered(&c, 30, 30000);
    st_close(&c);
    st_loop_fini(&c);
    n = consume(30, 20000, true);
    cr_assert_eq(n, 30);
    for (int j = 0; j < n; j++) {
        int i = (int)km[j].hdr_seq;
        cr_assert_str_eq(km[j].hdr_id, c.ids[i]);
        cr_assert_eq(km[j].len, c.payload_len[i]);
        cr_assert_eq(memcmp(km[j].value, c.payload[i], c.payload_len[i]), 0);
    }
    cr_assert_eq(st_check_delivery(got, n, c.ids, 30), 30);
    free_km(n);
}

/* Every message submitted is acknowledged (spooled) or waits in the memory queue. */
static bool all_taken(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    pskgw_sinkset_stats(c->set, 0, NULL, &st);
    return (uint64_t)(c->done_ok + c->done_err) + st.queue_depth >= (uint64_t)c->done_total;
}

Test(sink_kafka, brokers_down_then_up_loses_nothing)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = kafka_opts(16, boot);
    pskgw_sink_stats_t st;
    int n;

    for (int b = 1; b <= 3; b++)
        rd_kafka_mock_broker_set_down(mc, b);
    memset(&c, 0, sizeof(c));
    o.in_flight = 8;
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 120, 4);
    /* the brokers are down until the sink has taken every message (spooled or queued) */
    st_run_until(&c.loop, all_taken, &c, 30000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.delivered, 0);
    for (int b = 1; b <= 3; b++)
        rd_kafka_mock_broker_set_up(mc, b);
    st_run_until(&c.loop, st_all_done, &c, 40000);
    cr_assert_eq(c.done_ok, 120);
    st_wait_delivered(&c, 120, 40000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_gt(st.spooled, 0);
    cr_assert_eq(st.dropped, 0);
    st_close(&c);
    st_loop_fini(&c);
    n = consume(120, 20000, false);
    cr_assert_eq(st_check_delivery(got, n, c.ids, 120), 120);
    free_km(n);
}

typedef struct {
    int done;
    int status;
} poison_t;

static void poison_done(void *arg, int status)
{
    poison_t *p = arg;

    p->status = status;
    p->done = 1;
}

Test(sink_kafka, poison_too_large_dead_lettered_queue_goes_on)
{
    static st_ctx_t c;
    static uint8_t big[4000];
    pskgw_sink_options_t o = kafka_opts(64, boot);
    pskgw_sink_stats_t st;
    pskgw_envelope_t env;
    uint8_t pl[24];
    size_t pl_len;
    char dev[32];
    char bad_id[PSKGW_MESSAGE_ID_LEN + 1];
    poison_t pd = { 0, -1 };
    int n;

    st_open(&c, &o);
    st_submit(&c, 0, 10, 2);
    st_envelope(0, 2, pl, &pl_len, dev, sizeof(dev), &env); /* device ROT0000 */
    memset(big, 'x', sizeof(big));
    env.payload = big;
    env.payload_len = sizeof(big); /* over message.max.bytes = 3000 */
    cr_assert_eq(pskgw_sinkset_submit(c.set, &env, poison_done, &pd, bad_id), 0);
    st_submit(&c, 10, 10, 2);
    st_run_until(&c.loop, st_all_done, &c, 30000);
    st_wait_delivered(&c, 20, 30000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.dead_lettered, 1);
    st_close(&c);
    st_loop_fini(&c);
    cr_assert(pd.done);
    cr_assert_eq(pd.status, 0);
    n = consume(20, 20000, false);
    cr_assert_eq(st_check_delivery(got, n, c.ids, 20), 20);
    for (int i = 0; i < n; i++)
        cr_assert_str_neq(got[i].id, bad_id);
    free_km(n);
    {
        FILE *f = fopen(dlq, "r");
        static char line[8192];
        st_rx_t d;
        cr_assert_not_null(f);
        cr_assert_not_null(fgets(line, sizeof(line), f));
        cr_assert_eq(st_parse_json(line, strlen(line) - 1, &d), 0);
        cr_assert_str_eq(d.id, bad_id);
        fclose(f);
    }
}

static const pskgw_sink_kv_t dead_props[] = { { "message.timeout.ms", "600000" } };

Test(sink_kafka, spool_limit_counts_drops)
{
    static st_ctx_t c;
    char dead[64];
    pskgw_sink_options_t o;
    pskgw_sink_stats_t st;

    dead_broker(dead, sizeof(dead));
    o = kafka_opts(4, dead);
    o.kafka.props = dead_props;
    o.kafka.n_props = 1;
    o.in_flight = 4;
    o.spool.max_bytes = 4096;
    memset(&c, 0, sizeof(c));
    st_spool_limit_drops(&c, &o, &st);
    cr_assert_eq(st.delivered, 0);
}

Test(sink_kafka, spool_replayed_after_kill9)
{
    static st_ctx_t c;
    static char acked[ST_MAX][PSKGW_MESSAGE_ID_LEN + 1];
    char dead[64];
    pskgw_sink_options_t co;
    st_child_t ca = { &co, 100, 4 };
    pskgw_sink_options_t o = kafka_opts(16, boot);
    int nacked;
    int n;

    dead_broker(dead, sizeof(dead));
    co = kafka_opts(4, dead);
    co.kafka.props = dead_props;
    co.kafka.n_props = 1;
    co.in_flight = 4;
    nacked = st_fork_kill9(st_child_spool, &ca, acked, ST_MAX, 20000);
    cr_assert_geq(nacked, 92, "acknowledged %d", nacked);

    st_open(&c, &o);
    st_wait_delivered(&c, (uint64_t)nacked, 30000);
    st_close(&c);
    st_loop_fini(&c);
    n = consume(nacked, 20000, false);
    cr_assert_eq(st_check_delivery(got, n, acked, nacked), nacked);
    free_km(n);
}

/* Close while librdkafka holds messages in flight: every callback fires, nothing leaks, and
 * a new set on the same spool delivers whatever the first one had acknowledged. */
Test(sink_kafka, close_in_flight_then_restart_delivers)
{
    static st_ctx_t c;
    static char acked[ST_MAX][PSKGW_MESSAGE_ID_LEN + 1];
    pskgw_sink_options_t o = kafka_opts(64, boot);
    int nacked = 0;
    int n;

    memset(&c, 0, sizeof(c));
    o.close_timeout_ms = 1;
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 1, 1);
    st_run_until(&c.loop, st_all_done, &c, 10000);
    st_submit(&c, 1, 150, 150); /* distinct devices: all in flight at once */
    for (int i = 0; i < 5; i++)
        uv_run(&c.loop, UV_RUN_NOWAIT);
    st_close(&c);
    cr_assert_eq(c.done_ok + c.done_err, 151);
    for (int i = 0; i < 151; i++)
        if (c.status[i] == 1)
            memcpy(acked[nacked++], c.ids[i], sizeof(acked[0]));
    st_loop_fini(&c);

    memset(&c.loop, 0, sizeof(c.loop));
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_run_until(&c.loop, st_drained, &c, 30000);
    st_close(&c);
    st_loop_fini(&c);
    /* until nacked distinct ids: a message in flight at the close may have reached the broker
     * and been replayed from the spool too (at least once), and a count of messages that
     * includes such a duplicate stops short of the last id */
    stop_distinct = nacked;
    n = consume(ST_MAX * 2, 20000, false);
    stop_distinct = 0;
    cr_assert_eq(st_check_delivery(got, n, acked, nacked), nacked);
    free_km(n);
}

typedef struct {
    st_ctx_t *c;
    void *rk;  /* the producer the fatal error was raised on */
    int phase; /* 0 waiting for the first deliveries, 1 fatal raised */
    int first; /* messages submitted before the fatal error */
    int total;
} fatal_ctx_t;

static bool fatal_step(void *arg)
{
    fatal_ctx_t *f = arg;
    pskgw_sink_stats_t st;
    uint64_t resets;
    void *rk;

    cr_assert_eq(pskgw_sinkset_stats(f->c->set, 0, NULL, &st), 0);
    if (f->phase == 0) {
        if (st.delivered < 20)
            return false;
        /* messages of many devices are in flight now: the producer turns unusable */
        f->rk = pskgw_sink_kafka_test_producer("kafka", &resets);
        cr_assert_not_null(f->rk);
        cr_assert_eq(resets, 0);
        cr_assert_lt(st.delivered, (uint64_t)f->first, "nothing left in flight");
        cr_assert_eq(rd_kafka_test_fatal_error(
                         f->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "test"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        st_submit(f->c, f->first, f->total - f->first, 60); /* and more keep coming */
        f->phase = 1;
        return false;
    }
    rk = pskgw_sink_kafka_test_producer("kafka", &resets);
    return st.delivered >= (uint64_t)f->total && rk && rk != f->rk && st.connected;
}

/* The idempotent producer raises a fatal error while messages of 60 devices are in flight:
 * the sink replaces the producer and delivers everything, in order per device. */
Test(sink_kafka, fatal_error_replaces_producer_loses_nothing)
{
    static st_ctx_t c;
    static fatal_ctx_t f;
    pskgw_sink_options_t o = kafka_opts(128, boot);
    pskgw_sink_stats_t st;
    uint64_t resets;
    int n;

    memset(&c, 0, sizeof(c));
    memset(&f, 0, sizeof(f));
    f.c = &c;
    f.first = 200;
    f.total = 400;
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, f.first, 60);
    st_run_until(&c.loop, fatal_step, &f, 20000);
    st_run_until(&c.loop, st_all_done, &c, 10000);
    cr_assert_eq(c.done_ok, f.total);
    cr_assert_not_null(pskgw_sink_kafka_test_producer("kafka", &resets));
    cr_assert_eq(resets, 1);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert(st.connected);
    cr_assert_eq(st.dropped, 0);
    cr_assert_eq(st.dead_lettered, 0);
    cr_assert_gt(st.retried, 0);
    st_close(&c);
    st_loop_fini(&c);
    cr_assert_null(pskgw_sink_kafka_test_producer("kafka", NULL)); /* closed */
    stop_distinct = f.total;
    n = consume(ST_MAX * 2, 20000, false);
    stop_distinct = 0;
    cr_assert_eq(st_check_delivery(got, n, c.ids, f.total), f.total);
    free_km(n);
}

static bool fatal_raised(void *arg)
{
    uint64_t resets;

    (void)arg;
    return pskgw_sink_kafka_test_producer("kafka", &resets) == NULL && resets == 1;
}

/* Close while the producer that raised a fatal error is being replaced: every callback fires,
 * nothing leaks, and a new set on the same spool delivers whatever the first one acknowledged. */
Test(sink_kafka, close_during_fatal_recovery_then_restart_delivers)
{
    static st_ctx_t c;
    static char acked[ST_MAX][PSKGW_MESSAGE_ID_LEN + 1];
    pskgw_sink_options_t o = kafka_opts(128, boot); /* no spooling before close */
    pskgw_sink_stats_t st;
    void *rk;
    int nacked = 0;
    int n;

    memset(&c, 0, sizeof(c));
    o.close_timeout_ms = 1;
    o.retry_max_ms = 5000; /* the replacement waits: close finds no current producer */
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 1, 1);
    st_run_until(&c.loop, st_all_done, &c, 10000);
    st_submit(&c, 1, 100, 50);
    for (int i = 0; i < 3; i++)
        uv_run(&c.loop, UV_RUN_NOWAIT);
    rk = pskgw_sink_kafka_test_producer("kafka", NULL);
    cr_assert_not_null(rk);
    cr_assert_eq(
        rd_kafka_test_fatal_error(rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "test"),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    st_run_until(&c.loop, fatal_raised, NULL, 10000);
    for (int i = 0; i < 3; i++) /* let the retirement run: its destroy job is in flight */
        uv_run(&c.loop, UV_RUN_NOWAIT);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert(!st.connected);
    st_close(&c);
    cr_assert_eq(c.done_ok + c.done_err, 101);
    for (int i = 0; i < 101; i++)
        if (c.status[i] == 1)
            memcpy(acked[nacked++], c.ids[i], sizeof(acked[0]));
    st_loop_fini(&c);

    memset(&c.loop, 0, sizeof(c.loop));
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_run_until(&c.loop, st_drained, &c, 30000);
    st_close(&c);
    st_loop_fini(&c);
    stop_distinct = nacked; /* duplicates possible, as in close_in_flight_then_restart_delivers */
    n = consume(ST_MAX * 2, 20000, false);
    stop_distinct = 0;
    cr_assert_eq(st_check_delivery(got, n, acked, nacked), nacked);
    free_km(n);
}

/* Issue 13: in steady state the kafka sink (the envelope rendered into the message's pooled
 * buffer, the delivery record from a freelist) makes no allocation per message: 768 produces
 * after a warm-up, counted on the loop thread (tests/support/allocfail.h; librdkafka, which
 * copies the value, is not counted); every value is still the exact envelope, keyed by device. */
Test(sink_kafka, steady_state_allocates_nothing_per_message)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = kafka_opts(512, boot);
    int total;
    int n;

    total = st_steady_state_no_allocs(&c, &o, NULL, 30000);
    n = consume(total, 30000, false);
    cr_assert_eq(n, total);
    st_expect_envelopes(&c, total, 6, n, keyed_match, NULL);
    free_km(n);
}
