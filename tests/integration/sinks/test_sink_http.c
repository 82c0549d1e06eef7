/* http sink against a libmicrohttpd receiver: exact bodies and headers, 500s and hangs then
 * recovery, kill -9 replay, spool limit, a poison message (400) dead-lettered. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "httprx.h"
#include "proc.h"
#include "sinks/envelope.h"
#include "sinktest.h"

static char tmp[256];
static char spooldir[300];
static char dlq[300];
static char url[128];
static httprx_t *rx;
static int port;
static const pskgw_sink_kv_t hdrs[] = { { "Authorization", "Bearer s3cret-token" } };
static char *log_text; /* what the sinks logged, when a test captures it (capture_log) */
static size_t log_len;
static FILE *log_out;
static int dead_fd = -1; /* a reserved port nobody answers on (dead_url) */

static void setup(void)
{
    cr_assert_eq(pskgw_test_tmpdir(tmp, sizeof(tmp)), 0);
    snprintf(spooldir, sizeof(spooldir), "%s/spool", tmp);
    snprintf(dlq, sizeof(dlq), "%s/dead.jsonl", tmp);
    cr_assert_eq(httprx_start(&rx, &port), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ingest", port);
}

static void teardown(void)
{
    if (rx)
        httprx_stop(rx);
    rx = NULL;
    if (log_out) {
        pskgw_log_set_output(NULL);
        pskgw_log_set_ratelimit(5, 10000);
        fclose(log_out);
    }
    log_out = NULL;
    free(log_text);
    log_text = NULL;
    if (dead_fd >= 0)
        close(dead_fd);
    dead_fd = -1;
    pskgw_test_rmtree(tmp);
}

TestSuite(sink_http, .init = setup, .fini = teardown, .timeout = 60);

/* What the sinks log from now on, into memory, none of it rate-limited away. */
static void capture_log(void)
{
    log_out = open_memstream(&log_text, &log_len);
    cr_assert_not_null(log_out);
    pskgw_log_set_output(log_out);
    pskgw_log_set_ratelimit(1000000, 10000);
}

typedef struct {
    const char *needle;
    int want;
} log_wait_t;

/* The captured log holds needle at least want times. */
static bool logged(void *arg)
{
    log_wait_t *w = arg;
    int n = 0;

    fflush(log_out);
    for (const char *p = log_text; p && (p = strstr(p, w->needle)) != NULL; p++)
        n++;
    return n >= w->want;
}

/* An http URL on 127.0.0.1 that refuses connections for the whole test: its port is reserved
 * (bound, never listening) until teardown, so no other test's server can take it. */
static void dead_url(char *buf, size_t cap)
{
    int p;

    dead_fd = pskgw_test_reserve_port(0, &p);
    cr_assert_geq(dead_fd, 0);
    snprintf(buf, cap, "http://127.0.0.1:%d/", p);
}

static pskgw_sink_options_t http_opts(size_t queue_size, const char *u)
{
    pskgw_sink_options_t o;

    memset(&o, 0, sizeof(o));
    o.name = "hook";
    o.type = PSKGW_SINK_HTTP;
    o.http.url = u;
    o.http.headers = hdrs;
    o.http.n_headers = 1;
    o.http.timeout_ms = 2000;
    o.queue_size = queue_size;
    o.in_flight = 8;
    o.retry_max_ms = 300;
    o.dead_letter_path = dlq;
    o.spool.path = spooldir;
    o.spool.max_bytes = 8u << 20;
    return o;
}

typedef struct {
    int want;
    char (*ids)[PSKGW_MESSAGE_ID_LEN + 1];
} rx_wait_t;

static st_rx_t got[ST_MAX * 2];

static bool rx_has_all(void *arg)
{
    rx_wait_t *w = arg;
    int n = httprx_get(rx, got, NULL, ST_MAX * 2);

    for (int k = 0; k < w->want; k++) {
        bool found = false;
        for (int i = 0; i < n && !found; i++)
            found = strcmp(got[i].id, w->ids[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

Test(sink_http, delivers_exact_bodies_with_headers)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = http_opts(256, url);
    char **raw = calloc(ST_MAX * 2, sizeof(*raw));
    pskgw_sink_stats_t st;
    int n;

    st_open(&c, &o);
    st_submit(&c, 0, 200, 6);
    st_run_until(&c.loop, st_all_done, &c, 20000);
    cr_assert_eq(c.done_ok, 200);
    st_wait_delivered(&c, 200, 20000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.delivered, 200);
    cr_assert_eq(st.dead_lettered, 0);
    cr_assert(st.connected);
    st_close(&c);
    st_loop_fini(&c);

    cr_assert_str_eq(httprx_last_auth(rx), "Bearer s3cret-token");
    n = httprx_get(rx, got, raw, ST_MAX * 2);
    cr_assert_eq(n, 200);
    st_expect_exact_envelopes(&c, 200, 6, raw, n);
    cr_assert_eq(st_check_delivery(got, n, c.ids, 200), 200);
    for (int j = 0; j < n; j++)
        free(raw[j]);
    free(raw);
}

/* The outage was felt: attempts failed and the queue spilled into the spool. */
static bool outage_felt(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    pskgw_sinkset_stats(c->set, 0, NULL, &st);
    return st.retried > 0 && st.spooled > 0;
}

static void outage(httprx_mode_t mode, int timeout_ms)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = http_opts(16, url);
    pskgw_sink_stats_t st;
    int n;

    memset(&c, 0, sizeof(c));
    o.http.timeout_ms = (uint64_t)timeout_ms;
    httprx_set_mode(rx, mode);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 120, 5);
    st_run_until(&c.loop, outage_felt, &c, 30000);
    cr_assert_eq(httprx_count(rx), 0);
    httprx_set_mode(rx, HTTPRX_OK); /* the receiver recovers */
    st_run_until(&c.loop, st_all_done, &c, 30000);
    cr_assert_eq(c.done_ok, 120);
    {
        rx_wait_t w = { 120, c.ids };
        st_run_until(&c.loop, rx_has_all, &w, 40000);
    }
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_gt(st.retried, 0);
    cr_assert_gt(st.spooled, 0);
    cr_assert_eq(st.dropped, 0);
    cr_assert_eq(st.dead_lettered, 0);
    st_close(&c);
    st_loop_fini(&c);
    n = httprx_get(rx, got, NULL, ST_MAX * 2);
    cr_assert_eq(st_check_delivery(got, n, c.ids, 120), 120);
}

Test(sink_http, server_errors_then_recovery)
{
    outage(HTTPRX_FAIL, 2000);
}

Test(sink_http, hanging_server_times_out_then_recovery)
{
    outage(HTTPRX_HANG, 300);
}

Test(sink_http, poison_message_dead_lettered_queue_goes_on)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = http_opts(64, url);
    pskgw_sink_stats_t st;
    FILE *f;
    char line[2048];
    st_rx_t d;
    int n;

    memset(&c, 0, sizeof(c));
    httprx_set_poison(rx, 7);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 40, 2); /* seq 7 is device 1's 4th message; 9, 11, ... follow it */
    st_run_until(&c.loop, st_all_done, &c, 20000);
    {
        char(*rest)[PSKGW_MESSAGE_ID_LEN + 1] = calloc(40, sizeof(*rest));
        int k = 0;
        for (int i = 0; i < 40; i++)
            if (i != 7)
                memcpy(rest[k++], c.ids[i], sizeof(rest[0]));
        rx_wait_t w = { k, rest };
        st_run_until(&c.loop, rx_has_all, &w, 20000);
        free(rest);
    }
    st_wait_delivered(&c, 39, 10000); /* the receiver records before it answers */
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.dead_lettered, 1);
    cr_assert_eq(st.delivered, 39);
    st_close(&c);
    st_loop_fini(&c);
    n = httprx_get(rx, got, NULL, ST_MAX * 2);
    cr_assert_eq(n, 39);
    for (int i = 0; i < n; i++)
        cr_assert_neq(got[i].seq, 7);
    f = fopen(dlq, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_assert_eq(st_parse_json(line, strlen(line) - 1, &d), 0);
    cr_assert_str_eq(d.id, c.ids[7]);
    cr_assert_null(fgets(line, sizeof(line), f));
    fclose(f);
}

typedef struct {
    st_ctx_t *c;
    int i;
} one_done_t;

static bool one_done(void *arg)
{
    one_done_t *w = arg;

    return w->c->status[w->i] != 0;
}

/* A dead-letter file that cannot be written (its directory is missing) must not acknowledge the
 * poison message as dead-lettered: it waits (its device behind it) and is written once the
 * directory exists. (Without a spool, so that acknowledgements wait for the outcome.) */
Test(sink_http, dead_letter_write_failure_keeps_the_message)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = http_opts(64, url);
    pskgw_sink_stats_t st;
    char dlqdir[320];
    char dlqfile[360];
    FILE *f;
    char line[2048];
    st_rx_t d;

    snprintf(dlqdir, sizeof(dlqdir), "%s/dlq", tmp);
    snprintf(dlqfile, sizeof(dlqfile), "%s/dead.jsonl", dlqdir);
    o.dead_letter_path = dlqfile;
    o.retry_max_ms = 100;
    o.spool.path = NULL; /* acknowledged only once delivered or dead-lettered */
    memset(&c, 0, sizeof(c));
    capture_log();
    httprx_set_poison(rx, 3);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 10, 2); /* seq 3 is device 1's 2nd message */
    {
        char(*rest)[PSKGW_MESSAGE_ID_LEN + 1] = calloc(10, sizeof(*rest));
        int k = 0;
        for (int i = 0; i < 10; i += 2) /* device 0 goes on */
            memcpy(rest[k++], c.ids[i], sizeof(rest[0]));
        memcpy(rest[k++], c.ids[1], sizeof(rest[0]));
        rx_wait_t w = { k, rest };
        st_run_until(&c.loop, rx_has_all, &w, 20000);
        free(rest);
    }
    {
        log_wait_t w = { "not dead-lettered yet", 3 }; /* several dead-letter writes failed */
        st_run_until(&c.loop, logged, &w, 20000);
    }
    cr_assert_eq(c.status[3], 0, "poison message acknowledged although not dead-lettered");
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.dead_lettered, 0);
    for (int i = 5; i < 10; i += 2)
        cr_assert_eq(c.status[i], 0, "device 1's message %d overtook its poison message", i);
    cr_assert_eq(mkdir(dlqdir, 0700), 0);
    {
        one_done_t w = { &c, 3 };
        st_run_until(&c.loop, one_done, &w, 10000);
    }
    cr_assert_eq(c.status[3], 1);
    st_run_until(&c.loop, st_all_done, &c, 20000);
    cr_assert_eq(c.done_ok, 10);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.dead_lettered, 1);
    st_close(&c);
    st_loop_fini(&c);
    f = fopen(dlqfile, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_assert_eq(st_parse_json(line, strlen(line) - 1, &d), 0);
    cr_assert_str_eq(d.id, c.ids[3]);
    cr_assert_null(fgets(line, sizeof(line), f));
    fclose(f);
}

static bool one_dead(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    pskgw_sinkset_stats(c->set, 0, NULL, &st);
    return st.dead_lettered > 0;
}

/* The same with a spool: the messages are acknowledged when spooled and replayed from it; a
 * replayed poison message whose dead-letter line could not be written must stay in the spool
 * (not be committed past), so that the next start dead-letters it. */
Test(sink_http, dead_letter_write_failure_keeps_the_spool_record)
{
    static st_ctx_t c;
    char poison_id[PSKGW_MESSAGE_ID_LEN + 1];
    pskgw_sink_options_t o = http_opts(64, url);
    pskgw_sink_stats_t st;
    char dlqdir[320];
    char dlqfile[360];
    FILE *f;
    char line[2048];
    st_rx_t d;

    snprintf(dlqdir, sizeof(dlqdir), "%s/dlq", tmp);
    snprintf(dlqfile, sizeof(dlqfile), "%s/dead.jsonl", dlqdir);
    o.dead_letter_path = dlqfile;
    o.retry_max_ms = 100;
    o.close_timeout_ms = 200;
    memset(&c, 0, sizeof(c));
    capture_log();
    httprx_set_poison(rx, 3);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 4, 2);
    st_run_until(&c.loop, st_all_done, &c, 20000);
    {
        char(*want)[PSKGW_MESSAGE_ID_LEN + 1] = calloc(3, sizeof(*want));
        memcpy(want[0], c.ids[0], sizeof(want[0]));
        memcpy(want[1], c.ids[1], sizeof(want[0]));
        memcpy(want[2], c.ids[2], sizeof(want[0]));
        rx_wait_t w = { 3, want };
        st_run_until(&c.loop, rx_has_all, &w, 20000);
        free(want);
    }
    {
        log_wait_t w = { "not dead-lettered yet", 2 }; /* dead-letter writes failed */
        st_run_until(&c.loop, logged, &w, 20000);
    }
    memcpy(poison_id, c.ids[3], sizeof(poison_id));
    st_close(&c);
    st_loop_fini(&c);

    /* next start: the directory exists, the record is replayed and dead-lettered */
    cr_assert_eq(mkdir(dlqdir, 0700), 0);
    st_open(&c, &o);
    /* the replayed poison record is dead-lettered (a lost one never is: the guard fails) */
    st_run_until(&c.loop, one_dead, &c, 20000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.dead_lettered, 1, "the poison record was lost from the spool");
    st_close(&c);
    st_loop_fini(&c);
    f = fopen(dlqfile, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_assert_eq(st_parse_json(line, strlen(line) - 1, &d), 0);
    cr_assert_str_eq(d.id, poison_id);
    cr_assert_null(fgets(line, sizeof(line), f));
    fclose(f);
}

Test(sink_http, spool_limit_counts_drops)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = http_opts(4, url);
    pskgw_sink_stats_t st;

    memset(&c, 0, sizeof(c));
    httprx_set_mode(rx, HTTPRX_FAIL);
    o.spool.max_bytes = 4096;
    st_spool_limit_drops(&c, &o, &st);
    cr_assert_eq(st.delivered, 0);
}

Test(sink_http, spool_replayed_after_kill9)
{
    static st_ctx_t c;
    static char acked[ST_MAX][PSKGW_MESSAGE_ID_LEN + 1];
    char dead[64];
    pskgw_sink_options_t co;
    st_child_t ca = { &co, 100, 4 };
    pskgw_sink_options_t o = http_opts(16, url);
    int nacked;
    int n;

    dead_url(dead, sizeof(dead)); /* the child posts to a port nobody listens on */
    co = http_opts(4, dead);
    co.spool.fsync = PSKGW_SINK_FSYNC_ALWAYS;
    memset(&c, 0, sizeof(c));
    nacked = st_fork_kill9(st_child_spool, &ca, acked, ST_MAX, 20000);
    cr_assert_geq(nacked, 96, "acknowledged %d", nacked);

    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    {
        rx_wait_t w = { nacked, acked };
        st_run_until(&c.loop, rx_has_all, &w, 30000);
    }
    st_close(&c);
    st_loop_fini(&c);
    n = httprx_get(rx, got, NULL, ST_MAX * 2);
    cr_assert_eq(st_check_delivery(got, n, acked, nacked), nacked);
}

static bool five_dead(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    pskgw_sinkset_stats(c->set, 0, NULL, &st);
    return st.dead_lettered >= 5;
}

Test(sink_http, max_attempts_dead_letters_a_message_that_keeps_failing)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = http_opts(64, url);
    pskgw_sink_stats_t st;

    memset(&c, 0, sizeof(c));
    o.max_attempts = 3;
    o.retry_max_ms = 50;
    httprx_set_mode(rx, HTTPRX_FAIL);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 5, 5);
    st_run_until(&c.loop, st_all_done, &c, 20000);
    cr_assert_eq(c.done_ok, 5);
    st_run_until(&c.loop, five_dead, &c, 20000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.dead_lettered, 5);
    cr_assert_eq(st.retried, 10); /* attempts 1 and 2 retried, the 3rd dead-letters */
    cr_assert_eq(st.delivered, 0);
    cr_assert_eq(httprx_requests(rx), 15);
    st_close(&c);
    st_loop_fini(&c);
}

/* Fan-out: the done callback waits for every sink. The file sink delivers at once; the http
 * sink answers 500 until the receiver recovers: no acknowledgement before that. */
Test(sink_http, fan_out_done_waits_for_every_sink)
{
    static st_ctx_t c;
    char path[400];
    char fspool[400];
    pskgw_sink_options_t o[2];
    pskgw_sink_stats_t st;

    memset(&c, 0, sizeof(c));
    o[0] = http_opts(64, url);
    snprintf(path, sizeof(path), "%s/fan.jsonl", tmp);
    snprintf(fspool, sizeof(fspool), "%s/fspool", tmp);
    memset(&o[1], 0, sizeof(o[1]));
    o[1].name = "file";
    o[1].type = PSKGW_SINK_FILE;
    o[1].file.path = path;
    o[1].spool.path = fspool;
    httprx_set_mode(rx, HTTPRX_FAIL);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, o, 2, &c.set), 0);
    cr_assert_eq(pskgw_sinkset_count(c.set), 2);
    /* the first message is spooled by both (their spools are still opening) and acknowledged
     * once both appends are written: after that both sinks use their queues */
    st_submit(&c, 0, 1, 1);
    st_run_until(&c.loop, st_all_done, &c, 20000);
    cr_assert_eq(c.done_ok, 1);
    st_submit(&c, 1, 10, 11); /* devices 1..10: none has a message in a spool */
    {
        /* the file sink delivers all eleven; the http sink none */
        int spins = 0;
        do {
            uv_run(&c.loop, UV_RUN_ONCE);
            cr_assert_eq(pskgw_sinkset_stats(c.set, 1, NULL, &st), 0);
        } while (st.delivered < 11 && ++spins < 100000);
        cr_assert_eq(st.delivered, 11);
    }
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.delivered, 0);
    cr_assert_eq(st.queue_depth, 11);
    cr_assert_eq(c.done_ok, 1, "acknowledged before the http sink accepted");
    httprx_set_mode(rx, HTTPRX_OK); /* the receiver recovers */
    st_run_until(&c.loop, st_all_done, &c, 20000);
    cr_assert_eq(c.done_ok, 11);
    st_wait_delivered(&c, 11, 20000); /* the first one was acknowledged when spooled */
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.delivered, 11);
    st_close(&c);
    st_loop_fini(&c);
}

/* A third of all requests fail: every message still arrives exactly once (500s are not
 * recorded), in order per device, with the queue spilling into the spool. */
Test(sink_http, flaky_receiver_keeps_per_device_order)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = http_opts(24, url);
    pskgw_sink_stats_t st;
    int n;

    memset(&c, 0, sizeof(c));
    o.retry_max_ms = 50;
    httprx_set_mode(rx, HTTPRX_FLAKY);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 400, 10);
    st_run_until(&c.loop, st_all_done, &c, 30000);
    cr_assert_eq(c.done_ok, 400);
    {
        rx_wait_t w = { 400, c.ids };
        st_run_until(&c.loop, rx_has_all, &w, 40000);
    }
    st_wait_delivered(&c, 400, 10000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_gt(st.retried, 50);
    cr_assert_eq(st.delivered, 400);
    cr_assert_eq(st.dead_lettered, 0);
    st_close(&c);
    st_loop_fini(&c);
    n = httprx_get(rx, got, NULL, ST_MAX * 2);
    cr_assert_eq(n, 400);
    cr_assert_eq(st_check_delivery(got, n, c.ids, 400), 400);
}

static bool requests_hang(void *arg)
{
    (void)arg;
    return httprx_hanging(rx) > 0;
}

/* Close while requests hang in flight: every callback fires, nothing leaks, and a new set on
 * the same spool delivers whatever the first one had acknowledged. */
Test(sink_http, close_in_flight_then_restart_delivers)
{
    static st_ctx_t c;
    static char acked[ST_MAX][PSKGW_MESSAGE_ID_LEN + 1];
    pskgw_sink_options_t o = http_opts(64, url);
    int nacked = 0;

    memset(&c, 0, sizeof(c));
    o.close_timeout_ms = 50;
    o.in_flight = 32;
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 1, 1);
    st_run_until(&c.loop, st_all_done, &c, 10000);
    st_wait_delivered(&c, 1, 10000);
    httprx_set_mode(rx, HTTPRX_HANG);
    st_submit(&c, 1, 30, 30);
    st_run_until(&c.loop, requests_hang, NULL, 20000); /* closed with requests in flight */
    st_close(&c);
    cr_assert_eq(c.done_ok + c.done_err, 31);
    for (int i = 0; i < 31; i++)
        if (c.status[i] == 1)
            memcpy(acked[nacked++], c.ids[i], sizeof(acked[0]));
    cr_assert_eq(nacked, 31);
    st_loop_fini(&c);

    httprx_set_mode(rx, HTTPRX_OK); /* releases the hung requests (503) */
    memset(&c.loop, 0, sizeof(c.loop));
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    {
        rx_wait_t w = { nacked, acked };
        st_run_until(&c.loop, rx_has_all, &w, 30000);
    }
    st_run_until(&c.loop, st_drained, &c, 30000);
    st_close(&c);
    st_loop_fini(&c);
}

/* Issue 13: in steady state the http sink (the envelope rendered into the message's pooled
 * buffer, the request record, curlmulti's request with its easy handle and body buffer) makes no
 * allocation per message: 768 messages after a warm-up (8 bursts of 32 at least), counted on the loop thread
 * (tests/support/allocfail.h; libcurl and the receiver's threads are not counted); every body is
 * still the exact envelope. */
Test(sink_http, steady_state_allocates_nothing_per_message)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = http_opts(512, url);
    char **raw = calloc(ST_MAX * 2, sizeof(*raw));
    int total;
    int n;

    cr_assert_not_null(raw);
    total = st_steady_state_no_allocs(&c, &o, NULL, 20000);
    n = httprx_get(rx, got, raw, ST_MAX * 2);
    cr_assert_eq(n, total);
    st_expect_exact_envelopes(&c, total, 6, raw, n);
    st_free_raw(raw, n);
}
