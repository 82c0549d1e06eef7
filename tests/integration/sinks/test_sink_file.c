/* file sink through a sink set: exact content, outage + recovery, kill -9 replay, spool limit,
 * reopen (log rotation). The "outage" of a file sink is a directory that does not exist yet. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "proc.h"
#include "sinks/envelope.h"
#include "sinktest.h"

static char tmp[256];
static char outdir[300];
static char outpath[400];
static char spooldir[300];

static void setup(void)
{
    cr_assert_eq(pskgw_test_tmpdir(tmp, sizeof(tmp)), 0);
    snprintf(outdir, sizeof(outdir), "%s/out", tmp);
    snprintf(outpath, sizeof(outpath), "%s/out/messages.jsonl", tmp);
    snprintf(spooldir, sizeof(spooldir), "%s/spool", tmp);
}

static void teardown(void)
{
    pskgw_test_rmtree(tmp);
}

TestSuite(sink_file, .init = setup, .fini = teardown, .timeout = 60);

static pskgw_sink_options_t file_opts(size_t queue_size)
{
    pskgw_sink_options_t o;

    memset(&o, 0, sizeof(o));
    o.name = "jsonl";
    o.type = PSKGW_SINK_FILE;
    o.file.path = outpath;
    o.queue_size = queue_size;
    o.in_flight = 8;
    o.retry_max_ms = 200;
    o.spool.path = spooldir;
    o.spool.max_bytes = 8u << 20;
    o.spool.fsync = PSKGW_SINK_FSYNC_BATCH;
    return o;
}

/* Read the output file into rx; returns the number of lines. */
/* strict: every line must be complete (after the writer is done); otherwise a last line
 * without its newline is still being written from the thread pool and is left for the next poll. */
static int read_lines_mode(const char *path, st_rx_t *rx, int max, char ***raw, bool strict)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0;

    if (!f)
        return 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (!strict && line[len - 1] != '\n')
            break;
        cr_assert_eq(line[len - 1], '\n', "line without newline");
        cr_assert_lt(n, max);
        cr_assert_eq(st_parse_json(line, (size_t)len - 1, &rx[n]), 0, "bad line: %s", line);
        if (raw)
            (*raw)[n] = strndup(line, (size_t)len - 1);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static int read_lines(const char *path, st_rx_t *rx, int max, char ***raw)
{
    return read_lines_mode(path, rx, max, raw, true);
}

typedef struct {
    const char *path;
    int want;
    char (*ids)[PSKGW_MESSAGE_ID_LEN + 1];
} file_wait_t;

static st_rx_t rxbuf[ST_MAX * 2];

static bool file_has_all(void *arg)
{
    file_wait_t *w = arg;
    int n = read_lines_mode(w->path, rxbuf, ST_MAX * 2, NULL, false);

    if (n < w->want)
        return false;
    for (int k = 0; k < w->want; k++) {
        bool found = false;
        for (int i = 0; i < n && !found; i++)
            found = strcmp(rxbuf[i].id, w->ids[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

Test(sink_file, delivers_exact_json_lines)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(64);
    char **raw = calloc(ST_MAX, sizeof(*raw));
    const char *name;
    pskgw_sink_stats_t st;
    int n;

    memset(&c, 0, sizeof(c));
    mkdir(outdir, 0700);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 300, 5);
    st_run_until(&c.loop, st_all_done, &c, 20000);
    cr_assert_eq(c.done_ok, 300);
    st_wait_delivered(&c, 300, 20000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, &name, &st), 0);
    cr_assert_str_eq(name, "jsonl");
    cr_assert_eq(st.delivered + 0, 300);
    cr_assert_eq(st.dropped, 0);
    cr_assert_eq(st.queued + st.spooled, 300);
    st_close(&c);
    st_loop_fini(&c);

    n = read_lines(outpath, rxbuf, ST_MAX, &raw);
    cr_assert_eq(n, 300);
    for (int i = 0; i < 300; i++) {
        /* each message exactly once, byte for byte the envelope rendering */
        pskgw_envelope_t env;
        uint8_t pl[24];
        size_t pl_len;
        char dev[32];
        char *want = NULL;
        size_t wl;
        int found = -1;

        st_envelope(i, 5, pl, &pl_len, dev, sizeof(dev), &env);
        cr_assert_eq(pskgw_envelope_json(&env, c.ids[i], &want, &wl), 0);
        for (int j = 0; j < n; j++)
            if (strcmp(raw[j], want) == 0) {
                cr_assert_eq(found, -1, "message %d twice", i);
                found = j;
            }
        cr_assert_neq(found, -1, "message %d missing or different", i);
        free(want);
    }
    cr_assert_eq(st_check_delivery(rxbuf, n, c.ids, 300), 300);
    for (int j = 0; j < n; j++)
        free(raw[j]);
    free(raw);
}

/* A dispatch looks at one entry per device that can start one, not at every message queued
 * behind a device whose message is in flight: 2,000 messages of 4 devices submitted at once
 * (each device's order kept) cost about one visit each. Walking every waiting entry per
 * dispatch made it about n * n / 2 (2,000,000 here), the cost per message growing with the
 * queue. */
Test(sink_file, dispatch_visits_one_entry_per_ready_device)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(4096);
    const char *name;
    pskgw_sink_stats_t st;
    int n;

    memset(&c, 0, sizeof(c));
    mkdir(outdir, 0700);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 2000, 4);
    st_run_until(&c.loop, st_all_done, &c, 60000);
    cr_assert_eq(c.done_ok, 2000);
    st_wait_delivered(&c, 2000, 20000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, &name, &st), 0);
    cr_assert_eq(st.delivered + 0, 2000);
    cr_assert_leq(st.dispatch_visits, 3 * 2000, "%llu entries visited for 2000 messages",
                  (unsigned long long)st.dispatch_visits);
    st_close(&c);
    st_loop_fini(&c);
    n = read_lines(outpath, rxbuf, ST_MAX, NULL);
    cr_assert_eq(n, 2000);
    cr_assert_eq(st_check_delivery(rxbuf, n, c.ids, 2000), 2000);
}

/* pskgw_sink_latency_seconds: a delivered message with a decryption time is observed once,
 * decrypted -> write(2) returned, in the buckets at or above its latency; a message without one
 * (a spool replay) is not. Lower bounds only (time only moves forward): messages decrypted 2 s
 * before the submit stand above every bound, 300 ms before above 250 ms. */
Test(sink_file, latency_histogram_observes_each_delivered_message_once)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(64);
    pskgw_sink_stats_t st;
    uint64_t now;

    o.spool.path = NULL; /* a spool still opening takes the first messages (replayed: no time) */
    memset(&c, 0, sizeof(c));
    mkdir(outdir, 0700);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    now = uv_hrtime();
    for (int i = 0; i < 15; i++) {
        pskgw_envelope_t env;
        uint8_t pl[24];
        size_t pl_len;
        char dev[32];

        st_envelope(i, 3, pl, &pl_len, dev, sizeof(dev), &env);
        env.decrypted_ns = i < 10 ? now - 2000000000u : i < 12 ? now - 300000000u : 0;
        cr_assert_eq(pskgw_sinkset_submit(c.set, &env, NULL, NULL, NULL), 0);
    }
    st_wait_delivered(&c, 15, 20000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.latency_count, 12, "observed %" PRIu64, st.latency_count);
    cr_assert_eq(st.latency_le[PSKGW_SINK_LAT_BUCKETS], 12);
    for (int b = 0; b < PSKGW_SINK_LAT_BUCKETS; b++) {
        cr_assert_leq(st.latency_le[b], st.latency_le[b + 1], "cumulative at %d", b);
        if (pskgw_sink_latency_bounds_us[b] < 300000)
            cr_assert_eq(st.latency_le[b], 0, "bucket %d", b);
    }
    cr_assert_leq(st.latency_le[PSKGW_SINK_LAT_BUCKETS - 1], 2, "2 s stands above 1 s");
    cr_assert_geq(st.latency_sum_us, 10u * 2000000u + 2u * 300000u);
    st_close(&c);
    st_loop_fini(&c);
}

static void mkdir_cb(uv_timer_t *t)
{
    mkdir(outdir, 0700);
    uv_close((uv_handle_t *)t, NULL);
}

Test(sink_file, outage_then_recovery_keeps_order_loses_nothing)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(8);
    pskgw_sink_stats_t st;
    uv_timer_t later;
    int n;

    st_open(&c, &o);
    /* the directory appears after 700 ms: until then every attempt fails */
    uv_timer_init(&c.loop, &later);
    uv_timer_start(&later, mkdir_cb, 700, 0);
    st_submit(&c, 0, 150, 4);
    st_run_until(&c.loop, st_all_done, &c, 30000);
    cr_assert_eq(c.done_ok, 150);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_gt(st.spooled, 100, "spooled %llu", (unsigned long long)st.spooled);
    cr_assert_eq(st.delivered, 0);
    cr_assert_eq(st.dropped, 0);
    /* more while the spool drains: they queue behind their device's spooled messages */
    st_submit(&c, 150, 50, 4);
    st_run_until(&c.loop, st_all_done, &c, 30000);
    {
        file_wait_t w = { outpath, 200, c.ids };
        st_run_until(&c.loop, file_has_all, &w, 30000);
    }
    st_wait_delivered(&c, 200, 10000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.delivered, 200);
    cr_assert_eq(st.queue_depth, 0);
    cr_assert_gt(st.retried, 0);
    cr_assert_eq(st.replayed, st.spooled);
    st_close(&c);
    st_loop_fini(&c);
    n = read_lines(outpath, rxbuf, ST_MAX * 2, NULL);
    cr_assert_eq(st_check_delivery(rxbuf, n, c.ids, 200), 200);
}

static bool retried_once(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    pskgw_sinkset_stats(c->set, 0, NULL, &st);
    return st.retried > 0;
}

Test(sink_file, spool_limit_counts_drops)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(4);
    pskgw_sink_stats_t st;

    memset(&c, 0, sizeof(c));
    o.spool.max_bytes = 4096; /* about 15 records */
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    /* one message first: it waits in the spool or the queue; once it is being retried the
     * spool's open scan is over and the queue is in use */
    st_submit(&c, 0, 1, 3);
    st_run_until(&c.loop, retried_once, &c, 10000);
    st_submit(&c, 1, 199, 3);
    while (c.done_ok + c.done_err < 196)
        uv_run(&c.loop, UV_RUN_ONCE);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_gt(c.done_err, 150);
    cr_assert_eq(c.last_err, PSKGW_EFULL);
    cr_assert_eq(st.dropped, (uint64_t)c.done_err);
    cr_assert_eq(st.spooled, (uint64_t)c.done_ok);
    cr_assert_leq(st.spool_bytes, 4096);
    cr_assert_leq(st.queue_depth, 4);
    /* close with the sink still down: the queued four go to the spool if there is room,
     * else they are counted as dropped; every callback fires */
    st_close(&c);
    st_loop_fini(&c);
    cr_assert_eq(c.done_ok + c.done_err, 200);
}

static bool retried_n(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    cr_assert_eq(pskgw_sinkset_stats(c->set, 0, NULL, &st), 0);
    return st.retried >= 3;
}

/* A disk that fills up in the middle of a write: write(2) takes part of a batch (ending in the
 * middle of a line), the next write fails. The failed lines are written again later; they must
 * each be a line of their own, not glued to the torn one (a JSON-lines reader would lose the
 * first of them). RLIMIT_FSIZE plays the full disk. */
Test(sink_file, torn_write_then_retry_keeps_every_line_parseable)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(64);
    struct rlimit old;
    struct rlimit lim;
    struct stat sb;
    int n;

    o.spool.path = NULL;
    o.retry_max_ms = 100;
    cr_assert_eq(mkdir(outdir, 0700), 0);
    st_open(&c, &o);
    st_submit(&c, 0, 1, 1);
    st_run_until(&c.loop, st_all_done, &c, 10000);
    cr_assert_eq(stat(outpath, &sb), 0);
    /* room for the first line and a half */
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)sb.st_size + (rlim_t)sb.st_size / 2;
    signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    st_submit(&c, 1, 6, 1);
    st_run_until(&c.loop, retried_n, &c, 10000);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0); /* space again */
    st_run_until(&c.loop, st_all_done, &c, 10000);
    cr_assert_eq(c.done_ok, 7);
    st_close(&c);
    st_loop_fini(&c);
    /* whole lines parse; the torn fragment may stand on a line of its own */
    {
        FILE *f = fopen(outpath, "r");
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int bad = 0;

        cr_assert_not_null(f);
        n = 0;
        while ((len = getline(&line, &cap, f)) > 0) {
            cr_assert_lt(n, ST_MAX);
            if (len > 1 && st_parse_json(line, (size_t)len - 1, &rxbuf[n]) == 0)
                n++;
            else
                bad++;
        }
        free(line);
        fclose(f);
        cr_assert_leq(bad, 1);
    }
    for (int k = 0; k < 7; k++) {
        bool found = false;
        for (int i = 0; i < n && !found; i++)
            found = strcmp(rxbuf[i].id, c.ids[k]) == 0;
        cr_assert(found, "message %d is not on a line of its own", k);
    }
}

Test(sink_file, reopen_after_rotation)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(64);
    char rotated[500];
    st_rx_t *rx = rxbuf;
    int n1;
    int n2;

    memset(&c, 0, sizeof(c));
    mkdir(outdir, 0700);
    snprintf(rotated, sizeof(rotated), "%s.1", outpath);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 10, 2);
    st_run_until(&c.loop, st_all_done, &c, 10000);
    st_wait_delivered(&c, 10, 10000);
    cr_assert_eq(rename(outpath, rotated), 0);
    pskgw_sinkset_reopen(c.set);
    st_submit(&c, 10, 10, 2);
    st_run_until(&c.loop, st_all_done, &c, 10000);
    st_wait_delivered(&c, 20, 10000);
    st_close(&c);
    st_loop_fini(&c);
    n1 = read_lines(rotated, rx, ST_MAX, NULL);
    n2 = read_lines(outpath, rx + n1, ST_MAX, NULL);
    cr_assert_eq(n1, 10);
    cr_assert_eq(n2, 10);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(rx[n1 + i].seq >= 10, 1);
}

/* ---- kill -9 ---------------------------------------------------------------------------- */

Test(sink_file, spool_replayed_after_kill9)
{
    static st_ctx_t c;
    static char acked[ST_MAX][PSKGW_MESSAGE_ID_LEN + 1];
    pskgw_sink_options_t co = file_opts(4);
    st_child_t ca = { &co, 120, 3 };
    pskgw_sink_options_t o = file_opts(16);
    int nacked;
    int n;

    memset(&c, 0, sizeof(c));
    co.spool.fsync = PSKGW_SINK_FSYNC_NEVER; /* kill -9 keeps the page cache */
    nacked = st_fork_kill9(st_child_spool, &ca, acked, ST_MAX, 20000);
    cr_assert_geq(nacked, 116, "acknowledged %d", nacked);

    /* a new process (here: a new set) on the same spool, with the sink up */
    mkdir(outdir, 0700);
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    {
        file_wait_t w = { outpath, nacked, acked };
        st_run_until(&c.loop, file_has_all, &w, 30000);
    }
    {
        pskgw_sink_stats_t st;
        cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
        cr_assert_geq(st.replayed, (uint64_t)nacked);
    }
    st_close(&c);
    st_loop_fini(&c);
    n = read_lines(outpath, rxbuf, ST_MAX * 2, NULL);
    cr_assert_eq(st_check_delivery(rxbuf, n, acked, nacked), nacked);
}

/* Close with the sink down: what waits in memory goes to the spool (and is acknowledged then),
 * and the next set on the same spool delivers all of it. */
Test(sink_file, close_spools_the_queue_and_next_start_delivers)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(64);
    pskgw_sink_stats_t st;
    int n;

    memset(&c, 0, sizeof(c));
    o.close_timeout_ms = 200;
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 1, 1); /* spooled while the spool opens */
    st_run_until(&c.loop, st_all_done, &c, 10000);
    st_submit(&c, 1, 20, 21); /* devices without spooled messages: they queue */
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.queued, 20);
    cr_assert_eq(c.done_ok, 1);
    st_close(&c);
    cr_assert_eq(c.done_ok, 21, "every callback fires before the close callback");
    st_loop_fini(&c);

    mkdir(outdir, 0700);
    memset(&c.loop, 0, sizeof(c.loop));
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    {
        file_wait_t w = { outpath, 21, c.ids };
        st_run_until(&c.loop, file_has_all, &w, 20000);
    }
    st_close(&c);
    st_loop_fini(&c);
    n = read_lines(outpath, rxbuf, ST_MAX * 2, NULL);
    cr_assert_eq(st_check_delivery(rxbuf, n, c.ids, 21), 21);
}

/* Close with the sink down after some devices overflowed into the spool: each such device has
 * older messages in the memory queue and newer ones in the spool. The next set on the same
 * spool must deliver every message once and in order per device (the queued ones must not be
 * appended behind their device's spooled ones). */
Test(sink_file, close_after_overflow_keeps_device_order_across_restart)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(64);
    pskgw_sink_stats_t st;
    int n;

    memset(&c, 0, sizeof(c));
    o.close_timeout_ms = 200;
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 1, 50); /* spooled while the spool opens; then the queue is in use */
    st_run_until(&c.loop, st_all_done, &c, 10000);
    /* 100 more over 50 devices without running the loop: about 63 fit in the queue, the rest
     * (devices 14..49 and 0) overflow into the spool behind their queued first message */
    st_submit(&c, 1, 100, 50);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_gt(st.spooled, 30, "spooled %llu", (unsigned long long)st.spooled);
    cr_assert_eq(st.dropped, 0);
    st_close(&c);
    cr_assert_eq(c.done_ok, 101, "every callback fires before the close callback");
    cr_assert_eq(c.done_err, 0);
    st_loop_fini(&c);

    mkdir(outdir, 0700);
    memset(&c.loop, 0, sizeof(c.loop));
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    {
        file_wait_t w = { outpath, 101, c.ids };
        st_run_until(&c.loop, file_has_all, &w, 20000);
    }
    st_close(&c);
    st_loop_fini(&c);
    n = read_lines(outpath, rxbuf, ST_MAX * 2, NULL);
    cr_assert_eq(st_check_delivery(rxbuf, n, c.ids, 101), 101);
    cr_assert_eq(n, 101, "each message once (nothing was delivered before the restart)");
}

/* "-" writes the JSON lines to stdout: a child process with its stdout on a pipe. */
Test(sink_file, stdout_dash)
{
    int fds[2];
    pid_t pid;
    int status;
    FILE *in;
    char line[2048];
    int n = 0;

    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        static st_ctx_t c;
        pskgw_sink_options_t o = file_opts(16);
        pskgw_sink_stats_t st;

        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        o.file.path = "-";
        o.spool.path = NULL;
        if (uv_loop_init(&c.loop) != 0 || pskgw_sinkset_new(&c.loop, &o, 1, &c.set) != 0)
            _exit(4);
        for (int i = 0; i < 5; i++) {
            pskgw_envelope_t env;
            uint8_t pl[24];
            size_t pl_len;
            char dev[32];
            st_envelope(i, 2, pl, &pl_len, dev, sizeof(dev), &env);
            if (pskgw_sinkset_submit(c.set, &env, NULL, NULL, NULL) != 0)
                _exit(5);
        }
        do {
            uv_run(&c.loop, UV_RUN_ONCE);
            pskgw_sinkset_stats(c.set, 0, NULL, &st);
        } while (st.delivered < 5);
        pskgw_sinkset_close(c.set, NULL, NULL);
        uv_run(&c.loop, UV_RUN_DEFAULT);
        _exit(uv_loop_close(&c.loop) == 0 ? 0 : 6);
    }
    close(fds[1]);
    in = fdopen(fds[0], "r");
    cr_assert_not_null(in);
    while (fgets(line, sizeof(line), in)) {
        st_rx_t rx;
        cr_assert_eq(st_parse_json(line, strlen(line) - 1, &rx), 0, "bad line: %s", line);
        cr_assert_eq(rx.seq, (uint64_t)n);
        n++;
    }
    fclose(in);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    cr_assert_eq(n, 5);
}

/* Reload: a sink replaced while messages are still queued in it delivers them where it was
 * going; the messages submitted after the update go to the new sink only. */
Test(sink_file, update_replaces_sink_keeping_its_queued_messages)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(64);
    pskgw_sink_options_t o2 = file_opts(64);
    char path2[500];
    bool keep = false;
    st_rx_t *rx = rxbuf;
    int n1;
    int n2;

    memset(&c, 0, sizeof(c));
    mkdir(outdir, 0700);
    snprintf(path2, sizeof(path2), "%s.new", outpath);
    o.spool.path = NULL;
    o2.spool.path = NULL;
    o2.name = "jsonl-new";
    o2.file.path = path2;
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 10, 2); /* not yet delivered: in the first sink's queue */
    cr_assert_eq(pskgw_sinkset_update(c.set, &o2, &keep, 1), 0);
    cr_assert_eq(pskgw_sinkset_count(c.set), 1);
    st_submit(&c, 10, 10, 2);
    st_run_until(&c.loop, st_all_done, &c, 10000);
    cr_assert_eq(c.done_ok, 20);
    st_close(&c);
    st_loop_fini(&c);
    n1 = read_lines(outpath, rx, ST_MAX, NULL);
    n2 = read_lines(path2, rx + n1, ST_MAX, NULL);
    cr_assert_eq(n1, 10);
    cr_assert_eq(n2, 10);
    for (int i = 0; i < 10; i++) {
        cr_assert_lt(rx[i].seq, 10, "message %d of the first file", i);
        cr_assert_geq(rx[n1 + i].seq, 10, "message %d of the second file", i);
    }
}

/* A kept sink goes on as it was: same counters, same file (the options given are not read). */
Test(sink_file, update_keeps_an_unchanged_sink)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(64);
    pskgw_sink_options_t o2 = file_opts(64);
    char path2[500];
    bool keep = true;
    pskgw_sink_stats_t st;
    const char *name;

    memset(&c, 0, sizeof(c));
    mkdir(outdir, 0700);
    snprintf(path2, sizeof(path2), "%s.new", outpath);
    o2.file.path = path2;
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 5, 1);
    cr_assert_eq(pskgw_sinkset_update(c.set, &o2, &keep, 1), 0);
    st_submit(&c, 5, 5, 1);
    st_run_until(&c.loop, st_all_done, &c, 10000);
    st_wait_delivered(&c, 10, 10000);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, &name, &st), 0);
    cr_assert_str_eq(name, "jsonl");
    cr_assert_eq(st.delivered, 10);
    st_close(&c);
    st_loop_fini(&c);
    cr_assert_eq(read_lines(outpath, rxbuf, ST_MAX, NULL), 10);
    cr_assert_eq(access(path2, F_OK), -1, "the kept sink never opened the other path");
}

/* All or nothing: an update that cannot be applied leaves the set as it was. */
Test(sink_file, failed_update_changes_nothing)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(64);
    pskgw_sink_options_t two[2] = { file_opts(64), file_opts(64) };
    bool keep[2] = { false, true };
    char path2[500];

    memset(&c, 0, sizeof(c));
    mkdir(outdir, 0700);
    snprintf(path2, sizeof(path2), "%s.new", outpath);
    two[0].name = "made-then-dropped";
    two[0].file.path = path2;
    two[0].spool.path = NULL;
    two[1].name = "no-such-sink";
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    cr_assert_eq(pskgw_sinkset_update(c.set, two, keep, 2), PSKGW_EINVAL);
    cr_assert_eq(pskgw_sinkset_count(c.set), 1);
    st_submit(&c, 0, 5, 1);
    st_run_until(&c.loop, st_all_done, &c, 10000);
    cr_assert_eq(c.done_ok, 5);
    st_wait_delivered(&c, 5, 10000); /* (spooled first while the spool opened) */
    st_close(&c);
    st_loop_fini(&c);
    cr_assert_eq(read_lines(outpath, rxbuf, ST_MAX, NULL), 5);
}

/* A close right after an update waits for the replaced sink too: every submit is called back,
 * nothing is left open. */
Test(sink_file, close_right_after_update_waits_for_the_replaced_sink)
{
    static st_ctx_t c;
    pskgw_sink_options_t o = file_opts(64);
    pskgw_sink_options_t o2 = file_opts(64);
    char path2[500];
    bool keep = false;

    memset(&c, 0, sizeof(c));
    mkdir(outdir, 0700);
    snprintf(path2, sizeof(path2), "%s.new", outpath);
    o.spool.path = NULL;
    o2.spool.path = NULL;
    o2.name = "jsonl-new";
    o2.file.path = path2;
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o, 1, &c.set), 0);
    st_submit(&c, 0, 10, 2);
    cr_assert_eq(pskgw_sinkset_update(c.set, &o2, &keep, 1), 0);
    st_close(&c); /* asserts the close callback */
    cr_assert_eq(c.done_total, 10);
    cr_assert_eq(c.done_ok, 10);
    st_loop_fini(&c); /* asserts uv_loop_close() == 0 */
    cr_assert_eq(read_lines(outpath, rxbuf, ST_MAX, NULL), 10);
}

static bool spooled_at_least_10(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    return pskgw_sinkset_stats(c->set, 0, NULL, &st) == 0 && st.spooled >= 10;
}

/* A set whose sink (target down, queue of 4) spooled most of 21 messages of 4 devices. */
static void start_down_spooled(st_ctx_t *c)
{
    pskgw_sink_options_t o = file_opts(4);

    memset(c, 0, sizeof(*c));
    o.close_timeout_ms = 200;
    cr_assert_eq(uv_loop_init(&c->loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c->loop, &o, 1, &c->set), 0);
    st_submit(c, 0, 1, 1); /* spooled while the spool opens */
    st_run_until(&c->loop, st_all_done, c, 10000);
    st_submit(c, 1, 20, 4);
    st_run_until(&c->loop, spooled_at_least_10, c, 10000);
}

/* Reload of a sink with a spool changed under the same name (its target down, messages spooled)
 * to a live path: the new sink takes the spool over once the old one has closed, holds what
 * arrives meanwhile, and every message lands in the new file exactly once. Failed before the
 * hand-over: the update returned PSKGW_EBUSY (the old sink held the spool). */
Test(sink_file, update_under_the_same_name_takes_the_spool_over)
{
    static st_ctx_t c;
    pskgw_sink_options_t o2 = file_opts(64);
    char path2[500];
    bool keep = false;
    pskgw_sink_stats_t st;
    int n;

    snprintf(path2, sizeof(path2), "%s/live.jsonl", tmp);
    o2.file.path = path2;
    start_down_spooled(&c);
    cr_assert_eq(pskgw_sinkset_update(c.set, &o2, &keep, 1), 0);
    st_submit(&c, 21, 10, 4);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.queued, 10, "held in memory while the old sink holds the spool");
    cr_assert_eq(st.dropped, 0);
    {
        file_wait_t w = { path2, 31, c.ids };
        st_run_until(&c.loop, file_has_all, &w, 20000);
    }
    st_run_until(&c.loop, st_all_done, &c, 10000);
    cr_assert_eq(c.done_ok, 31);
    cr_assert_eq(pskgw_sinkset_stats(c.set, 0, NULL, &st), 0);
    cr_assert_eq(st.dropped, 0);
    cr_assert_geq(st.replayed, 10, "the old sink's records replayed by the new one");
    st_close(&c);
    st_loop_fini(&c);
    n = read_lines(path2, rxbuf, ST_MAX * 2, NULL);
    cr_assert_eq(n, 31, "each message exactly once (%d lines)", n);
    cr_assert_eq(access(outpath, F_OK), -1, "nothing reached the old target");
}

/* The set closes right after such an update: the new sink's close waits for the spool, spools
 * what it held, and every message is delivered once by the next start. */
Test(sink_file, close_during_the_spool_hand_over_spools_what_was_held)
{
    static st_ctx_t c;
    pskgw_sink_options_t o2 = file_opts(64);
    char path2[500];
    bool keep = false;
    int n;

    snprintf(path2, sizeof(path2), "%s/live.jsonl", tmp);
    o2.file.path = path2;
    start_down_spooled(&c);
    cr_assert_eq(pskgw_sinkset_update(c.set, &o2, &keep, 1), 0);
    st_submit(&c, 21, 10, 4);
    st_close(&c);
    cr_assert_eq(c.done_ok, 31, "every message spooled (%d ok, %d failed)", c.done_ok, c.done_err);
    st_loop_fini(&c);

    memset(&c.loop, 0, sizeof(c.loop));
    cr_assert_eq(uv_loop_init(&c.loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c.loop, &o2, 1, &c.set), 0);
    {
        file_wait_t w = { path2, 31, c.ids };
        st_run_until(&c.loop, file_has_all, &w, 20000);
    }
    st_close(&c);
    st_loop_fini(&c);
    n = read_lines(path2, rxbuf, ST_MAX * 2, NULL);
    cr_assert_eq(n, 31, "each message exactly once (%d lines)", n);
}
