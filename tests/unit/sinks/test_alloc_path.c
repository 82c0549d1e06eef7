/* No allocation per message in steady state on the path a record's cleartext takes:
 * pskgw_e2e_process (E2E V1 decrypt through an in-process parameters hit, and plain payloads)
 * -> the envelope, as gateway/domain.c fills it -> pskgw_sinkset_submit -> the file sink (the
 * envelope rendered into the appender's batch, written by uv_fs on a real loop into a real
 * file) -> the done callback. Bursts of messages from several devices warm the freelists up;
 * then many more bursts go through while tests/support/allocfail counts every allocation of our
 * code and of wolfSSL: the count must not move. The file is checked afterwards: every message
 * once, in order, byte for byte the envelope pskgw_envelope_json() renders.
 * (libuv's and libc's own allocations are not counted: shared libraries.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "allocfail.h"
#include "common/codec.h"
#include "e2e/e2e.h"
#include "sinks/envelope.h"
#include "sinks/sinkset.h"
#include "util.h"

#define NDEV   6
#define PT_LEN 64

/* messages per loop turn (3 of 4 E2E V1, 1 of 4 plain), bursts to warm up, bursts counted */
static size_t burst, warm_bursts, count_bursts, nmsg;

static const uint8_t ki1[16] = { 0x11, 0x01, 0x00, 0x00, 0x00, 0x07, 0x01, 0x02,
                                 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x00, 0x00 };
static pskgw_e2e_params_t params;

typedef struct {
    uint8_t payload[PT_LEN + 64];
    size_t len;
    uint8_t pt[PT_LEN];
    int e2e; /* 1: E2E V1; 0: plain (mode off) */
    char id[PSKGW_MESSAGE_ID_LEN + 1];
    char ki_hex[PSKGW_E2E_KI_HEX_MAX + 1];
    int forwarded;
} tmsg_t;

static tmsg_t *msgs;
static pskgw_sinkset_t *set;
static unsigned done_ok;
static unsigned done_err;
static bool set_closed;
static const char *const devs[NDEV] = { "dev-0", "dev-1", "dev-2", "dev-3", "dev-4", "dev-5" };

static int lookup(void *ctx, const char *ki_hex, pskgw_e2e_params_t *out)
{
    (void)ctx;
    (void)ki_hex;
    *out = params;
    return 0;
}

static int fetch(void *ctx, const char *ki_hex, pskgw_e2e_params_done_cb done, void *arg,
                 void **handle)
{
    (void)ctx;
    (void)ki_hex;
    (void)done;
    (void)arg;
    (void)handle;
    return -1; /* never reached: every lookup hits */
}

static void cancel(void *ctx, void *handle)
{
    (void)ctx;
    (void)handle;
}

static void sink_done(void *arg, int status)
{
    (void)arg;
    if (status == 0)
        done_ok++;
    else
        done_err++;
}

static void fill_env(pskgw_envelope_t *env, pskgw_envelope_e2e_t *x, size_t i, const uint8_t *data,
                     size_t len, const pskgw_e2e_info_t *info)
{
    memset(env, 0, sizeof(*env));
    env->domain = "acme";
    env->listener = "dtls";
    env->transport = "dtls";
    env->peer = "127.0.0.1:40001";
    env->psk_identity = devs[i % NDEV];
    env->rot_public_uid = "";
    env->session_id = 1000 + i % NDEV;
    env->seq = i;
    env->received_at_ms = 1765000000000ull + i * 7; /* crosses seconds: the time-stamp cache */
    env->payload = data;
    env->payload_len = len;
    if (info) {
        x->version = (unsigned)info->version;
        x->key_identity = info->ki_hex;
        x->cipher_suite = info->cipher_suite;
        x->rot_public_uid = info->rot_uid;
        x->replay = 0;
        env->e2e = x;
    }
}

/* What gateway/domain.c's e2e_done does with a result. */
static void on_result(void *arg, const pskgw_e2e_result_t *r)
{
    size_t i = (size_t)(uintptr_t)arg;
    pskgw_envelope_t env;
    pskgw_envelope_e2e_t x;

    cr_assert_neq(r->kind, PSKGW_E2E_REJECTED, "message %zu rejected", i);
    cr_assert_eq(r->len, PT_LEN);
    cr_assert(memcmp(r->data, msgs[i].pt, PT_LEN) == 0);
    if (r->kind == PSKGW_E2E_DECRYPTED)
        memcpy(msgs[i].ki_hex, r->e2e->ki_hex, sizeof(msgs[i].ki_hex));
    fill_env(&env, &x, i, r->data, r->len, r->kind == PSKGW_E2E_DECRYPTED ? r->e2e : NULL);
    cr_assert_eq(pskgw_sinkset_submit(set, &env, sink_done, NULL, msgs[i].id), 0);
    msgs[i].forwarded = 1;
}

static void run_burst(uv_loop_t *loop, pskgw_e2e_t *e2e, size_t first)
{
    unsigned want = done_ok + (unsigned)burst;

    for (size_t i = first; i < first + burst; i++)
        cr_assert_eq(pskgw_e2e_process(e2e, msgs[i].e2e ? PSKGW_E2E_MODE_AUTO : PSKGW_E2E_MODE_OFF,
                                       msgs[i].payload, msgs[i].len, on_result,
                                       (void *)(uintptr_t)i, NULL),
                     0);
    while (done_ok + done_err < want)
        uv_run(loop, UV_RUN_ONCE);
    cr_assert_eq(done_err, 0);
}

static void set_closed_cb(void *arg)
{
    (void)arg;
    set_closed = true;
}

static void check_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t i = 0;

    cr_assert_not_null(f);
    while ((n = getline(&line, &cap, f)) > 0) {
        pskgw_envelope_t env;
        pskgw_envelope_e2e_t x;
        pskgw_e2e_info_t info;
        char *want;
        size_t want_len;

        cr_assert_lt(i, nmsg, "more lines than messages");
        memset(&info, 0, sizeof(info));
        info.version = 1;
        memcpy(info.ki_hex, msgs[i].ki_hex, sizeof(info.ki_hex));
        info.cipher_suite = "AES_128_CCM";
        info.rot_uid = params.rot_uid;
        fill_env(&env, &x, i, msgs[i].pt, PT_LEN, msgs[i].e2e ? &info : NULL);
        cr_assert_eq(pskgw_envelope_json(&env, msgs[i].id, &want, &want_len), 0);
        cr_assert_eq((size_t)n, want_len + 1, "line %zu: length", i);
        cr_assert(memcmp(line, want, want_len) == 0, "line %zu:\n%s\nwant\n%s", i, line, want);
        free(want);
        i++;
    }
    cr_assert_eq(i, nmsg, "%zu lines for %zu messages", i, nmsg);
    free(line);
    fclose(f);
}

static void run_path(size_t b, size_t warm, size_t count)
{
    char dir[] = "/tmp/pskgw-allocpath-XXXXXX";
    char path[128];
    uv_loop_t loop;
    pskgw_e2e_params_source_t src = { NULL, fetch, cancel, lookup };
    pskgw_sink_options_t o;
    pskgw_e2e_t *e2e;
    long before;
    long after;

    burst = b;
    warm_bursts = warm;
    count_bursts = count;
    nmsg = (warm + count) * b;
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/out.jsonl", dir);
    th_params(1, 3, &params);
    msgs = calloc(nmsg, sizeof(*msgs));
    cr_assert_not_null(msgs);
    for (size_t i = 0; i < nmsg; i++) {
        for (size_t k = 0; k < PT_LEN; k++)
            msgs[i].pt[k] = (uint8_t)(i * 31 + k * 7);
        msgs[i].e2e = i % 4 != 3;
        if (msgs[i].e2e) {
            msgs[i].len = th_make_payload(&params, ki1, sizeof(ki1), msgs[i].pt, PT_LEN,
                                          msgs[i].payload, sizeof(msgs[i].payload));
        } else {
            memcpy(msgs[i].payload, msgs[i].pt, PT_LEN);
            msgs[i].len = PT_LEN;
        }
    }
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(pskgw_e2e_new(&src, &e2e), 0);
    memset(&o, 0, sizeof(o));
    o.name = "file";
    o.type = PSKGW_SINK_FILE;
    o.file.path = path;
    o.queue_size = 4096;
    cr_assert_eq(pskgw_sinkset_new(&loop, &o, 1, &set), 0);

    for (size_t i = 0; i < warm_bursts; i++)
        run_burst(&loop, e2e, i * burst);
    before = pskgw_allocfail_calls();
    for (size_t i = warm_bursts; i < warm_bursts + count_bursts; i++)
        run_burst(&loop, e2e, i * burst);
    after = pskgw_allocfail_calls();
    cr_assert_eq(after - before, 0,
                 "%ld allocations for %zu messages in steady state (%.3f per message)",
                 after - before, count_bursts * burst,
                 (double)(after - before) / (double)(count_bursts * burst));
    cr_assert_eq(done_ok, (unsigned)nmsg);

    pskgw_sinkset_close(set, set_closed_cb, NULL);
    while (!set_closed)
        uv_run(&loop, UV_RUN_ONCE);
    pskgw_e2e_free(e2e);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    check_file(path);
    unlink(path);
    rmdir(dir);
    free(msgs);
}

Test(alloc_path, e2e_envelope_file_sink_allocate_nothing_per_message)
{
    run_path(48, 40, 200);
}

/* Thousands of messages in the sink's queue at once (a burst the window cannot take at once):
 * the freelists keep enough for that steady state too. */
Test(alloc_path, thousands_queued_allocate_nothing_per_message)
{
    run_path(3000, 4, 8);
}

/* The counter itself counts: a sink set made and closed allocates (so a broken counter, stuck
 * at zero, cannot pass the test above). */
Test(alloc_path, the_counter_sees_allocations)
{
    long before = pskgw_allocfail_calls();
    char *json;
    size_t len;
    pskgw_envelope_t env = { .domain = "d" };

    cr_assert_eq(pskgw_envelope_json(&env, "00112233445566778899aabbccddeeff", &json, &len), 0);
    free(json);
    cr_assert_gt(pskgw_allocfail_calls() - before, 0);
}
