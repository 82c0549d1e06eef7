/* mqtt sink against a real mosquitto, checked with a libmosquitto subscriber: exact envelopes
 * and topics, raw payload with v5 user properties, broker down then up, broker restart
 * (reconnect), kill -9 replay, spool limit, a poison message (invalid topic) dead-lettered. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "gai_slow.h"
#include "mqttrx.h"
#include "proc.h"
#include "sinks/envelope.h"
#include "sinktest.h"

static char tmp[256];
static char spooldir[300];
static char dlq[300];
static pskgw_test_proc_t broker = { -1, -1 };
static int port;
static int port_fd = -1; /* holds port reserved (reserve_port) until teardown */
static mqttrx_t *sub;
static char conf[400];

static void setup(void)
{
    cr_assert_eq(pskgw_test_tmpdir(tmp, sizeof(tmp)), 0);
    snprintf(spooldir, sizeof(spooldir), "%s/spool", tmp);
    snprintf(dlq, sizeof(dlq), "%s/dead.jsonl", tmp);
    broker.pid = -1;
    sub = NULL;
}

static void teardown(void)
{
    if (broker.pid > 0)
        kill(broker.pid, SIGCONT); /* in case a test stopped it */
    if (sub)
        mqttrx_stop(sub);
    if (broker.pid > 0)
        pskgw_test_stop(&broker, SIGTERM, 5000);
    if (port_fd >= 0)
        close(port_fd);
    port_fd = -1;
    pskgw_test_rmtree(tmp);
}

TestSuite(sink_mqtt, .init = setup, .fini = teardown, .timeout = 60);

/* A port of this test's until teardown: bound on 127.0.0.1, never listening, so connections to
 * it are refused (broker down) and no other test can take it. */
static void reserve_port(void)
{
    port_fd = pskgw_test_reserve_port(0, &port);
    cr_assert_geq(port_fd, 0);
}

/* mosquitto on the reserved port (for "down, then up on the same address"), then the
 * subscriber; the broker is used once it is this mosquitto that listens there. */
static void start_broker_on_reserved_port(void)
{
    char *argv[] = { "/usr/sbin/mosquitto", "-c", conf, NULL };
    FILE *f;

    snprintf(conf, sizeof(conf), "%s/mosquitto-%d.conf", tmp, port);
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port);
    fclose(f);
    cr_assert_eq(pskgw_test_spawn_on_reserved(&broker, argv, port_fd, port, 30000), 0,
                 "mosquitto did not start on its reserved port %d", port);
    if (sub)
        mqttrx_stop(sub);
    sub = NULL;
    cr_assert_eq(mqttrx_start(&sub, port, "#"), 0);
}

static void start_broker(void)
{
    cr_assert_eq(pskgw_test_mosquitto_start(&broker, &port), 0);
    cr_assert_eq(mqttrx_start(&sub, port, "#"), 0);
}

static pskgw_sink_options_t mqtt_opts(size_t queue_size, int p, const char *topic)
{
    pskgw_sink_options_t o;

    memset(&o, 0, sizeof(o));
    o.name = "mq";
    o.type = PSKGW_SINK_MQTT;
    o.mqtt.host = "127.0.0.1";
    o.mqtt.port = p;
    o.mqtt.topic = topic;
    o.mqtt.qos = 1;
    o.queue_size = queue_size;
    o.in_flight = 16;
    o.retry_max_ms = 300;
    o.dead_letter_path = dlq;
    o.spool.path = spooldir;
    o.spool.max_bytes = 8u << 20;
    return o;
}

static mqttrx_msg_t msgs[ST_MAX * 2];
static st_rx_t got[ST_MAX * 2];

/* Received messages as st_rx_t (json mode parses the envelope; raw mode the properties). */
static int received(bool raw)
{
    int n = mqttrx_get(sub, msgs, ST_MAX * 2);

    for (int i = 0; i < n; i++) {
        if (raw) {
            memcpy(got[i].id, msgs[i].prop_id, sizeof(got[i].id));
            snprintf(got[i].dev, sizeof(got[i].dev), "%s", msgs[i].prop_dev);
            got[i].seq = msgs[i].prop_seq;
        } else {
            cr_assert_eq(st_parse_json((const char *)msgs[i].payload, msgs[i].len, &got[i]), 0);
        }
    }
    return n;
}

typedef struct {
    int want;
    char (*ids)[PSKGW_MESSAGE_ID_LEN + 1];
    bool raw;
} mwait_t;

static bool sub_has_all(void *arg)
{
    mwait_t *w = arg;
    int n;
    bool all = true;

    if (!sub || mqttrx_count(sub) < w->want)
        return false;
    n = received(w->raw);
    for (int k = 0; k < w->want && all; k++) {
        bool found = false;
        for (int i = 0; i < n && !found; i++)
            found = strcmp(got[i].id, w->ids[k]) == 0;
        all = found;
    }
    mqttrx_free_msgs(msgs, n);
    return all;
}

/* A message of device dev received as want on topic gw/acme/<dev>/up (arg: non-NULL, also with
 * content type application/json). */
static bool topic_match(void *arg, int j, const char *want, size_t wl, const char *dev)
{
    char topic[128];

    if (msgs[j].len != wl || memcmp(msgs[j].payload, want, wl) != 0)
        return false;
    snprintf(topic, sizeof(topic), "gw/acme/%s/up", dev);
    cr_assert_str_eq(msgs[j].topic, topic);
    if (arg != NULL)
        cr_assert_str_eq(msgs[j].content_type, "application/json");
    return true;
}

/* The subscriber has every message submitted to the st_ctx_t arg. */
static bool sub_has_every(void *arg)
{
    st_ctx_t *c = arg;
    mwait_t w = { c->done_total, c->ids, false };

    return sub_has_all(&w);
}

static bool done_or_looked_up(void *arg)
{
    return gai_slow_loop_thread_lookups() > 0 || st_all_done(arg);
}

/* The host-name tests need "localhost" to resolve on this machine (/etc/hosts). Name lookups
 * on the loop thread (the test's main thread) are counted by the interposer (gai_slow.h): the
 * sink must resolve host names off the loop (a stalled DNS server would otherwise stall every
 * session). Numeric addresses (resolved without any I/O) are not counted. */
static void need_localhost(void)
{
    if (!gai_slow_resolves("localhost"))
        cr_skip_test("this machine cannot resolve \"localhost\" (no /etc/hosts entry)");
}

/* A host name (here "localhost") is resolved on the thread pool, never on the loop thread, at
 * the first connect and after a reconnect; the messages are delivered. */
Test(sink_mqtt, host_name_resolved_off_the_loop)
{
    static st_ctx_t c;
    pskgw_sink_options_t o;
    need_localhost();

    start_broker();
    o = mqtt_opts(64, port, "lk/{rot_public_uid}");
    o.mqtt.host = "localhost";
    o.spool.path = NULL;
    memset(&c, 0, sizeof(c));
    gai_slow_watch(NULL);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 4, 2);
    st_run_until(&c.loop, done_or_looked_up, &c, 20000);
    gai_slow_unwatch();
    cr_assert_eq(gai_slow_loop_thread_lookups(), 0,
                 "getaddrinfo(\"localhost\") ran on the loop thread");
    cr_assert_eq(c.done_ok, 4);
    {
        mwait_t w = { 4, c.ids, false };
        st_run_until(&c.loop, sub_has_all, &w, 20000);
    }
    st_close(&c);
    st_loop_fini(&c);
}

Test(sink_mqtt, delivers_exact_envelopes_on_templated_topics)
{
    static st_ctx_t c;
    pskgw_sink_options_t o;
    pskgw_sink_stats_t st;
    int n;

    start_broker();
    o = mqtt_opts(256, port, "gw/{domain}/{rot_public_uid}/up");
    st_open(&c, &o);
    st_submit(&c, 0, 150, 5);
    st_run_until(&c.loop, st_all_done, &c, 20000);
    cr_assert_eq(c.done_ok, 150);
    {
        mwait_t w = { 150, c.ids, false };
        st_run_until(&c.loop, sub_has_all, &w, 20000);
    }
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert(st.connected);
    cr_assert_eq(st.dead_lettered, 0);
    st_close(&c);
    st_loop_fini(&c);
    n = received(false);
    st_expect_envelopes(&c, 150, 5, n, topic_match, "content type");
    cr_assert_eq(st_check_delivery(got, n, c.ids, 150), 150);
    mqttrx_free_msgs(msgs, n);
}

Test(sink_mqtt, raw_payload_with_user_properties)
{
    static st_ctx_t c;
    pskgw_sink_options_t o;
    int n;

    start_broker();
    o = mqtt_opts(64, port, "raw/{psk_identity}");
    o.payload = PSKGW_SINK_PAYLOAD_RAW;
    st_open(&c, &o);
    st_submit(&c, 0, 30, 3);
    st_run_until(&c.loop, st_all_done, &c, 20000);
    {
        mwait_t w = { 30, c.ids, true };
        st_run_until(&c.loop, sub_has_all, &w, 20000);
    }
    st_close(&c);
    st_loop_fini(&c);
    n = received(true);
    cr_assert_eq(n, 30);
    for (int j = 0; j < n; j++) {
        int i = (int)msgs[j].prop_seq;
        char topic[80];

        cr_assert_str_eq(msgs[j].prop_id, c.ids[i]);
        cr_assert_eq(msgs[j].len, c.payload_len[i]);
        cr_assert_eq(memcmp(msgs[j].payload, c.payload[i], c.payload_len[i]), 0);
        snprintf(topic, sizeof(topic), "raw/%s", msgs[j].prop_psk);
        cr_assert_str_eq(msgs[j].topic, topic);
    }
    cr_assert_eq(st_check_delivery(got, n, c.ids, 30), 30);
    mqttrx_free_msgs(msgs, n);
}

/* Every message submitted is acknowledged (spooled) or waits in the memory queue. */
static bool all_taken(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    pskgw_sinkset_stats(c->set, 0, NULL, &st);
    return (uint64_t)(c->done_ok + c->done_err) + st.queue_depth >= (uint64_t)c->done_total;
}

Test(sink_mqtt, broker_down_then_up_loses_nothing)
{
    static st_ctx_t c;
    pskgw_sink_options_t o;
    pskgw_sink_stats_t st;
    int n;

    reserve_port();
    o = mqtt_opts(16, port, "gw/{rot_public_uid}");
    st_open(&c, &o);
    st_submit(&c, 0, 120, 4);
    /* the broker is down until the sink has taken every message (spooled or queued) */
    st_run_until(&c.loop, all_taken, &c, 30000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.delivered, 0);
    start_broker_on_reserved_port();
    st_run_until(&c.loop, st_all_done, &c, 30000);
    cr_assert_eq(c.done_ok, 120);
    {
        mwait_t w = { 120, c.ids, false };
        st_run_until(&c.loop, sub_has_all, &w, 30000);
    }
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_gt(st.spooled, 0);
    cr_assert_eq(st.dropped, 0);
    cr_assert(st.connected);
    st_close(&c);
    st_loop_fini(&c);
    n = received(false);
    cr_assert_eq(st_check_delivery(got, n, c.ids, 120), 120);
    mqttrx_free_msgs(msgs, n);
}

static bool sink_disconnected(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    pskgw_sinkset_stats(c->set, 0, NULL, &st);
    return !st.connected;
}

Test(sink_mqtt, reconnects_after_broker_restart)
{
    static st_ctx_t c;
    pskgw_sink_options_t o;
    int n;

    reserve_port();
    start_broker_on_reserved_port();
    o = mqtt_opts(16, port, "gw/{rot_public_uid}");
    st_open(&c, &o);
    st_submit(&c, 0, 40, 4);
    {
        mwait_t w = { 40, c.ids, false };
        st_run_until(&c.loop, sub_has_all, &w, 20000);
    }
    /* the broker goes away (kill -9) and comes back on the same port */
    pskgw_test_stop(&broker, SIGKILL, 5000);
    st_run_until(&c.loop, sink_disconnected, &c, 10000);
    st_submit(&c, 40, 60, 4);
    /* back once the sink has taken the new messages while the broker was away */
    st_run_until(&c.loop, all_taken, &c, 30000);
    start_broker_on_reserved_port();
    {
        /* the new subscriber sees what was published after the restart */
        mwait_t w = { 60, c.ids + 40, false };
        st_run_until(&c.loop, sub_has_all, &w, 30000);
    }
    st_run_until(&c.loop, st_all_done, &c, 10000);
    cr_assert_eq(c.done_ok, 100);
    st_close(&c);
    st_loop_fini(&c);
    n = received(false);
    /* All 60 arrive in order per device; a message of the first 40 whose PUBACK died with the
     * old broker is legitimately sent again (at-least-once), so more may arrive. */
    cr_assert_geq(st_check_delivery(got, n, c.ids + 40, 60), 60);
    mqttrx_free_msgs(msgs, n);
}

typedef struct {
    st_ctx_t *c;
    int done;
} poison_t;

static void poison_done(void *arg, int status)
{
    poison_t *p = arg;

    cr_assert_eq(status, 0);
    p->done = 1;
}

Test(sink_mqtt, poison_topic_dead_lettered_queue_goes_on)
{
    static st_ctx_t c;
    pskgw_sink_options_t o;
    pskgw_sink_stats_t st;
    pskgw_envelope_t env;
    uint8_t pl[24];
    size_t pl_len;
    char dev[32];
    char bad_id[PSKGW_MESSAGE_ID_LEN + 1];
    poison_t pd = { &c, 0 };
    FILE *f;
    char line[2048];
    st_rx_t d;

    start_broker();
    o = mqtt_opts(64, port, "up/{psk_identity}");
    st_open(&c, &o);
    st_submit(&c, 0, 10, 2);
    /* a device whose identity makes an invalid topic ("up/bad+id") */
    st_envelope(999, 1, pl, &pl_len, dev, sizeof(dev), &env);
    env.psk_identity = "bad+id";
    env.rot_public_uid = "ROTBAD";
    cr_assert_eq(pskgw_sinkset_submit(c.set, &env, poison_done, &pd, bad_id), 0);
    st_submit(&c, 10, 10, 2);
    st_run_until(&c.loop, st_all_done, &c, 20000);
    {
        mwait_t w = { 20, c.ids, false };
        st_run_until(&c.loop, sub_has_all, &w, 20000);
    }
    st_wait_delivered(&c, 20, 10000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.dead_lettered, 1);
    st_close(&c);
    st_loop_fini(&c);
    cr_assert(pd.done);
    f = fopen(dlq, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_assert_eq(st_parse_json(line, strlen(line) - 1, &d), 0);
    cr_assert_str_eq(d.id, bad_id);
    fclose(f);
}

Test(sink_mqtt, spool_limit_counts_drops)
{
    static st_ctx_t c;
    pskgw_sink_options_t o;
    pskgw_sink_stats_t st;

    reserve_port(); /* nobody answers there */
    o = mqtt_opts(4, port, "t");
    o.spool.max_bytes = 4096;
    memset(&c, 0, sizeof(c));
    st_spool_limit_drops(&c, &o, &st);
    cr_assert_not(st.connected);
}

Test(sink_mqtt, spool_replayed_after_kill9)
{
    static st_ctx_t c;
    static char acked[ST_MAX][PSKGW_MESSAGE_ID_LEN + 1];
    pskgw_sink_options_t co;
    st_child_t ca = { &co, 100, 4 };
    pskgw_sink_options_t o;
    int nacked;
    int n;

    reserve_port(); /* the child's broker is down: nobody answers there */
    co = mqtt_opts(4, port, "gw/{rot_public_uid}");
    nacked = st_fork_kill9(st_child_spool, &ca, acked, ST_MAX, 20000);
    cr_assert_geq(nacked, 96, "acknowledged %d", nacked);

    start_broker();
    o = mqtt_opts(16, port, "gw/{rot_public_uid}");
    st_open(&c, &o);
    {
        mwait_t w = { nacked, acked, false };
        st_run_until(&c.loop, sub_has_all, &w, 30000);
    }
    st_close(&c);
    st_loop_fini(&c);
    n = received(false);
    cr_assert_eq(st_check_delivery(got, n, acked, nacked), nacked);
    mqttrx_free_msgs(msgs, n);
}

static bool retried_some(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    pskgw_sinkset_stats(c->set, 0, NULL, &st);
    return st.retried > 0;
}

/* A hung broker (SIGSTOP, TCP still accepted): no PUBACK within mqtt.timeout_ms drops the
 * connection; everything arrives once the broker resumes. */
Test(sink_mqtt, hung_broker_times_out_then_resumes)
{
    static st_ctx_t c;
    pskgw_sink_options_t o;
    int n;

    start_broker();
    o = mqtt_opts(32, port, "gw/{rot_public_uid}");
    o.mqtt.timeout_ms = 300;
    st_open(&c, &o);
    st_submit(&c, 0, 10, 2);
    st_wait_delivered(&c, 10, 10000);
    cr_assert_eq(kill(broker.pid, SIGSTOP), 0);
    st_submit(&c, 10, 40, 4);
    st_run_until(&c.loop, retried_some, &c, 10000); /* a PUBACK timed out */
    cr_assert_eq(kill(broker.pid, SIGCONT), 0);
    {
        mwait_t w = { 50, c.ids, false };
        st_run_until(&c.loop, sub_has_all, &w, 30000);
    }
    st_close(&c);
    st_loop_fini(&c);
    n = received(false);
    cr_assert_eq(st_check_delivery(got, n, c.ids, 50), 50);
    mqttrx_free_msgs(msgs, n);
}

/* Close with publishes waiting for PUBACKs from a hung broker: every callback fires, nothing
 * leaks, and a new set delivers what was acknowledged once the broker resumes. */
Test(sink_mqtt, close_in_flight_then_restart_delivers)
{
    static st_ctx_t c;
    static char acked[ST_MAX][PSKGW_MESSAGE_ID_LEN + 1];
    pskgw_sink_options_t o;
    int nacked = 0;
    int n;

    start_broker();
    o = mqtt_opts(64, port, "gw/{rot_public_uid}");
    o.close_timeout_ms = 50;
    st_open(&c, &o);
    st_submit(&c, 0, 1, 1);
    st_wait_delivered(&c, 1, 10000);
    cr_assert_eq(kill(broker.pid, SIGSTOP), 0);
    st_submit(&c, 1, 30, 30);
    for (int i = 0; i < 20; i++)
        uv_run(&c.loop, UV_RUN_NOWAIT);
    st_close(&c);
    cr_assert_eq(c.done_ok, 31);
    for (int i = 0; i < 31; i++)
        memcpy(acked[nacked++], c.ids[i], sizeof(acked[0]));
    st_loop_fini(&c);
    kill(broker.pid, SIGCONT);

    memset(&c.loop, 0, sizeof(c.loop));
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    {
        mwait_t w = { nacked, acked, false };
        st_run_until(&c.loop, sub_has_all, &w, 30000);
    }
    st_run_until(&c.loop, st_drained, &c, 30000);
    st_close(&c);
    st_loop_fini(&c);
    n = received(false);
    cr_assert_eq(st_check_delivery(got, n, acked, nacked), nacked);
    mqttrx_free_msgs(msgs, n);
}

/* Issue 13: in steady state the mqtt sink (the topic template rendered into the sink's buffer,
 * the envelope into the message's pooled buffer, the publish record from a freelist, JSON mode's
 * properties made once) makes no allocation per message: 768 QoS 1 publishes after a warm-up,
 * counted on the loop thread (tests/support/allocfail.h; libmosquitto and the subscriber's
 * thread are not counted); every payload is still the exact envelope on its topic. */
Test(sink_mqtt, steady_state_allocates_nothing_per_message)
{
    static st_ctx_t c;
    pskgw_sink_options_t o;
    int total;
    int n;

    start_broker();
    o = mqtt_opts(512, port, "gw/{domain}/{rot_public_uid}/up");
    total = st_steady_state_no_allocs(&c, &o, sub_has_every, 20000);
    n = received(false);
    st_expect_envelopes(&c, total, 6, n, topic_match, NULL);
    mqttrx_free_msgs(msgs, n);
}
