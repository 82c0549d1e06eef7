#define _GNU_SOURCE
#include "sinktest.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "allocfail.h"
#include "common/err.h"
#include "sinks/envelope.h"

void st_envelope(int i, int ndev, uint8_t *pl, size_t *pl_len, char *dev, size_t dev_cap,
                 pskgw_envelope_t *out)
{
    int n = snprintf((char *)pl, 24, "msg-%d-\x01\xff", i);

    snprintf(dev, dev_cap, "ROT%04d", i % ndev);
    *pl_len = (size_t)n;
    memset(out, 0, sizeof(*out));
    out->domain = "acme";
    out->listener = "dtls-main";
    out->transport = "dtls";
    out->peer = "127.0.0.1:5684";
    out->psk_identity = dev;
    out->rot_public_uid = dev;
    out->session_id = 7;
    out->seq = (uint64_t)i;
    out->received_at_ms = 1763719200000ull + (uint64_t)i;
    out->payload = pl;
    out->payload_len = *pl_len;
}

typedef struct {
    st_ctx_t *c;
    int i;
} st_arg_t;

/* Message i got its callback with status. */
static void record_done(st_ctx_t *c, int i, int status)
{
    c->status[i] = status == 0 ? 1 : -1;
    if (status == 0)
        c->done_ok++;
    else {
        c->done_err++;
        c->last_err = status;
    }
}

static void done_cb(void *arg, int status)
{
    st_arg_t *a = arg;

    cr_assert_eq(a->c->status[a->i], 0, "done twice for %d", a->i);
    record_done(a->c, a->i, status);
    free(a);
}

void st_open(st_ctx_t *c, const pskgw_sink_options_t *o)
{
    memset(c, 0, sizeof(*c));
    cr_assert_eq(uv_loop_init(&c->loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c->loop, o, 1, &c->set), 0);
}

void st_submit(st_ctx_t *c, int first, int n, int ndev)
{
    for (int i = first; i < first + n; i++) {
        pskgw_envelope_t env;
        char dev[32];
        st_arg_t *a = malloc(sizeof(*a));

        cr_assert_lt(i, ST_MAX);
        a->c = c;
        a->i = i;
        st_envelope(i, ndev, c->payload[i], &c->payload_len[i], dev, sizeof(dev), &env);
        cr_assert_eq(pskgw_sinkset_submit(c->set, &env, done_cb, a, c->ids[i]), 0);
        c->done_total++;
    }
}

/* st_steady_allocs()'s arguments: made before it counts, never freed. */
static st_arg_t steady_args[ST_MAX];

static void steady_done_cb(void *arg, int status)
{
    st_arg_t *a = arg;

    record_done(a->c, a->i, status);
}

/* Submit burst messages [first, first + burst) and run until each got its callback. */
static void steady_burst(st_ctx_t *c, int first, int burst, int ndev)
{
    for (int i = first; i < first + burst; i++) {
        pskgw_envelope_t env;
        char dev[32];

        steady_args[i].c = c;
        steady_args[i].i = i;
        st_envelope(i, ndev, c->payload[i], &c->payload_len[i], dev, sizeof(dev), &env);
        cr_assert_eq(pskgw_sinkset_submit(c->set, &env, steady_done_cb, &steady_args[i], c->ids[i]),
                     0);
        c->done_total++;
    }
    st_run_until(&c->loop, st_all_done, c, 30000);
    cr_assert_eq(c->done_err, 0, "%d failed (last %d)", c->done_err, c->last_err);
}

static uint64_t spooled(const st_ctx_t *c)
{
    pskgw_sink_stats_t st;

    cr_assert_eq(pskgw_sinkset_stats(c->set, 0, NULL, &st), 0);
    return st.spooled + st.replayed + st.retried;
}

long st_steady_allocs(st_ctx_t *c, int first, int burst, int warm, int count, int ndev)
{
    long start = pskgw_allocfail_thread_calls();
    int next = first;
    long before;
    uint64_t sp;

    /* Warm up: at least `warm` bursts, and on until one went through memory alone (a loaded
     * machine may open the spool or connect late: messages then went through the spool, and
     * their devices' next ones follow them there until it is read back). */
    for (int b = 0;; b++) {
        cr_assert_leq(next + burst * (count + 1), ST_MAX, "no burst through memory alone");
        sp = spooled(c);
        steady_burst(c, next, burst, ndev);
        next += burst;
        if (b + 1 >= warm && spooled(c) == sp)
            break;
    }
    /* the freelists start empty: a counter stuck at zero cannot pass */
    before = pskgw_allocfail_thread_calls();
    cr_assert_gt(before - start, 0, "no allocation counted while warming up");
    sp = spooled(c);
    for (int b = 0; b < count; b++, next += burst)
        steady_burst(c, next, burst, ndev);
    cr_assert_eq(spooled(c), sp, "counted messages went through the spool or were retried");
    return pskgw_allocfail_thread_calls() - before;
}

static bool all_delivered(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    cr_assert_eq(pskgw_sinkset_stats(c->set, 0, NULL, &st), 0);
    return st.delivered >= (uint64_t)c->done_total;
}

int st_steady_state_no_allocs(st_ctx_t *c, const pskgw_sink_options_t *o, bool (*arrived)(void *c),
                              int timeout_ms)
{
    long allocs;

    st_open(c, o);
    allocs = st_steady_allocs(c, 0, 32, 8, 24, 6);
    cr_assert_eq(allocs, 0, "%ld allocations for 768 messages (%.3f per message)", allocs,
                 (double)allocs / 768.0);
    /* the warm-up may take more bursts on a loaded machine: every message is checked */
    st_run_until(&c->loop, arrived != NULL ? arrived : all_delivered, c, timeout_ms);
    st_close(c);
    st_loop_fini(c);
    return c->done_total;
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

void st_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, int timeout_ms)
{
    uv_timer_t tick;
    uint64_t deadline;

    uv_update_time(loop);
    deadline = uv_now(loop) + (uint64_t)timeout_ms;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 20, 20);
    while (!pred(arg)) {
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
        if (uv_now(loop) > deadline)
            break;
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    cr_assert(pred(arg), "condition not reached within %d ms", timeout_ms);
}

bool st_all_done(void *arg)
{
    st_ctx_t *c = arg;

    return c->done_ok + c->done_err == c->done_total;
}

typedef struct {
    st_ctx_t *c;
    uint64_t want;
} deliv_t;

static bool delivered_enough(void *arg)
{
    deliv_t *d = arg;
    pskgw_sink_stats_t st;

    cr_assert_eq(pskgw_sinkset_stats(d->c->set, 0, NULL, &st), 0);
    return st.delivered >= d->want;
}

bool st_drained(void *arg)
{
    st_ctx_t *c = arg;
    pskgw_sink_stats_t st;

    pskgw_sinkset_stats(c->set, 0, NULL, &st);
    return st.spool_bytes == 0 && st.queue_depth == 0 && st.delivered > 0;
}

void st_wait_delivered(st_ctx_t *c, uint64_t want, int timeout_ms)
{
    deliv_t d = { c, want };

    st_run_until(&c->loop, delivered_enough, &d, timeout_ms);
}

static void closed_cb(void *arg)
{
    ((st_ctx_t *)arg)->closed = 1;
}

static bool is_closed(void *arg)
{
    return ((st_ctx_t *)arg)->closed;
}

void st_close(st_ctx_t *c)
{
    c->closed = 0;
    pskgw_sinkset_close(c->set, closed_cb, c);
    st_run_until(&c->loop, is_closed, c, 15000);
    c->set = NULL;
}

void st_loop_fini(st_ctx_t *c)
{
    uv_run(&c->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&c->loop), 0);
}

void st_expect_envelopes(const st_ctx_t *c, int nmsg, int ndev, int n, st_match_t match, void *arg)
{
    for (int i = 0; i < nmsg; i++) {
        pskgw_envelope_t env;
        uint8_t pl[24];
        size_t pl_len;
        char dev[32];
        char *want = NULL;
        size_t wl;
        int found = 0;

        st_envelope(i, ndev, pl, &pl_len, dev, sizeof(dev), &env);
        cr_assert_eq(pskgw_envelope_json(&env, c->ids[i], &want, &wl), 0);
        for (int j = 0; j < n; j++)
            found += match(arg, j, want, wl, dev);
        cr_assert_eq(found, 1, "message %d received %d times", i, found);
        free(want);
    }
}

static bool raw_match(void *arg, int j, const char *want, size_t wl, const char *dev)
{
    char *const *raw = arg;

    (void)wl;
    (void)dev;
    return strcmp(raw[j], want) == 0;
}

void st_expect_exact_envelopes(const st_ctx_t *c, int nmsg, int ndev, char *const *raw, int n)
{
    st_expect_envelopes(c, nmsg, ndev, n, raw_match, (void *)raw);
}

void st_free_raw(char **raw, int n)
{
    for (int j = 0; j < n; j++)
        free(raw[j]);
    free(raw);
}

void st_spool_limit_drops(st_ctx_t *c, const pskgw_sink_options_t *o, pskgw_sink_stats_t *st)
{
    cr_assert_eq(uv_loop_init(&c->loop), 0);
    cr_assert_eq(pskgw_sinkset_new(&c->loop, o, 1, &c->set), 0);
    st_submit(c, 0, 300, 3);
    while (c->done_ok + c->done_err + 4 < 300)
        uv_run(&c->loop, UV_RUN_ONCE);
    cr_assert_eq(pskgw_sinkset_stats(c->set, 0, NULL, st), 0);
    cr_assert_gt(c->done_err, 200);
    cr_assert_eq(c->last_err, PSKGW_EFULL);
    cr_assert_eq(st->dropped, (uint64_t)c->done_err);
    cr_assert_leq(st->spool_bytes, o->spool.max_bytes);
    st_close(c);
    st_loop_fini(c);
    cr_assert_eq(c->done_ok + c->done_err, 300);
}

int st_parse_json(const char *line, size_t len, st_rx_t *rx)
{
    static const char *const keys[] = {
        "message_id",   "domain",         "listener",   "transport", "peer",
        "psk_identity", "rot_public_uid", "session_id", "seq",       "received_at",
        "payload",      "payload_len",    "e2e"
    };
    json_error_t err;
    json_t *o = json_loadb(line, len, 0, &err);
    const char *id;
    const char *dev;

    if (!o)
        return -1;
    if (json_object_size(o) != sizeof(keys) / sizeof(keys[0]))
        goto fail;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!json_object_get(o, keys[i]))
            goto fail;
    id = json_string_value(json_object_get(o, "message_id"));
    dev = json_string_value(json_object_get(o, "rot_public_uid"));
    if (!id || !dev || strlen(id) != PSKGW_MESSAGE_ID_LEN || strlen(dev) >= sizeof(rx->dev))
        goto fail;
    memcpy(rx->id, id, PSKGW_MESSAGE_ID_LEN + 1);
    snprintf(rx->dev, sizeof(rx->dev), "%s", dev);
    rx->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    json_decref(o);
    return 0;
fail:
    json_decref(o);
    return -1;
}

int st_check_delivery(const st_rx_t *rx, int n, char (*want)[PSKGW_MESSAGE_ID_LEN + 1], int nwant)
{
    int distinct = 0;

    for (int i = 0; i < n; i++) {
        bool dup = false;
        for (int j = 0; j < i && !dup; j++)
            dup = strcmp(rx[i].id, rx[j].id) == 0;
        if (dup)
            continue;
        distinct++;
        /* per device: no later message of the same device before it (first occurrences) */
        for (int j = 0; j < i; j++)
            if (strcmp(rx[j].dev, rx[i].dev) == 0)
                cr_assert_lt(rx[j].seq, rx[i].seq + 1, "device %s: seq %llu delivered before %llu",
                             rx[i].dev, (unsigned long long)rx[j].seq,
                             (unsigned long long)rx[i].seq);
    }
    for (int k = 0; k < nwant; k++) {
        bool found = false;
        for (int i = 0; i < n && !found; i++)
            found = strcmp(rx[i].id, want[k]) == 0;
        cr_assert(found, "message %s (#%d) never delivered", want[k], k);
    }
    return distinct;
}

void st_write_line(int fd, const char *s)
{
    size_t n = strlen(s);

    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            _exit(3);
        s += w;
        n -= (size_t)w;
    }
}

int st_fork_kill9(void (*child)(void *arg, int fd), void *arg,
                  char (*ids)[PSKGW_MESSAGE_ID_LEN + 1], int max, int timeout_ms)
{
    int fds[2];
    pid_t pid;
    int n = 0;
    char line[128];
    size_t ll = 0;
    bool ready = false;
    int status;

    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child(arg, fds[1]);
        _exit(2); /* the child must never return */
    }
    close(fds[1]);
    while (!ready) {
        struct pollfd p = { fds[0], POLLIN, 0 };
        char ch;
        cr_assert_gt(poll(&p, 1, timeout_ms), 0, "child did not get ready");
        cr_assert_eq(read(fds[0], &ch, 1), 1, "child died before it was ready");
        if (ch != '\n') {
            cr_assert_lt(ll, sizeof(line) - 1);
            line[ll++] = ch;
            continue;
        }
        line[ll] = '\0';
        ll = 0;
        if (strcmp(line, "READY") == 0) {
            ready = true;
        } else {
            cr_assert_eq(strlen(line), PSKGW_MESSAGE_ID_LEN, "bad line from child: %s", line);
            cr_assert_lt(n, max);
            memcpy(ids[n++], line, PSKGW_MESSAGE_ID_LEN + 1);
        }
    }
    cr_assert_eq(kill(pid, SIGKILL), 0);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(fds[0]);
    return n;
}

static int child_acks;
static int child_fd = -1;

static void child_done(void *arg, int status)
{
    const char *id = arg;

    child_acks++;
    if (status == 0) {
        char line[PSKGW_MESSAGE_ID_LEN + 2];
        snprintf(line, sizeof(line), "%s\n", id);
        st_write_line(child_fd, line);
    }
}

void st_child_spool(void *arg, int fd)
{
    st_child_t *ca = arg;
    uv_loop_t loop;
    pskgw_sinkset_t *set;
    static char ids[ST_MAX][PSKGW_MESSAGE_ID_LEN + 1];
    pskgw_sink_stats_t st;

    child_fd = fd;
    if (uv_loop_init(&loop) != 0 || pskgw_sinkset_new(&loop, ca->o, 1, &set) != 0)
        _exit(4);
    for (int i = 0; i < ca->n; i++) {
        pskgw_envelope_t env;
        uint8_t pl[24];
        size_t pl_len;
        char dev[32];

        st_envelope(i, ca->ndev, pl, &pl_len, dev, sizeof(dev), &env);
        if (pskgw_sinkset_submit(set, &env, child_done, ids[i], ids[i]) != 0)
            _exit(5);
    }
    /* every message is either acknowledged (spooled) or waiting in the queue */
    do {
        uv_run(&loop, UV_RUN_ONCE);
        pskgw_sinkset_stats(set, 0, NULL, &st);
    } while ((uint64_t)child_acks + st.queue_depth < (uint64_t)ca->n);
    st_write_line(fd, "READY\n");
    for (;;)
        uv_run(&loop, UV_RUN_ONCE);
}
