/* The message path of a domain (gateway/domain_e2e.c): messages of a listener context through
 * the real E2E processor (parameters from the rotkeys derivation, as pskgw-sim answers them),
 * the device binding and the replay check, into a real sink set with one file sink, read back. */
#include "gateway/domain_internal.h"

#include "allocfail.h"
#include "common/codec.h"
#include "common/err.h"
#include "loopwait.h"
#include "tools/rotkeys/rotkeys.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define SEED "domain-e2e-test-seed"
#define ID   "11010008002F33244B115B0AEEB9"

static uv_loop_t lp;
static pskgw_config_domain_t cfg;
static pskgw_config_listener_t lcfg;
static pskgw_domain_t dom;
static struct lctx *lc;
static char dir[64];
static char out_path[128];
static int sinks_closed;
static int src_fetches;

/* ---- the parameters source: the derivation pskgw-sim answers from, in process ---- */
static int derive(const char *ki_hex, pskgw_e2e_params_t *out);

/* Derived once per key identity, as the E2E cache keeps them: the derivation (test code,
 * counted by allocfail) is not the gateway's per-message work. */
#define MEMO_MAX 8
static struct {
    char ki_hex[PSKGW_E2E_KI_HEX_MAX + 1];
    pskgw_e2e_params_t p;
} memo[MEMO_MAX];
static int nmemo;

static int src_lookup(void *ctx, const char *ki_hex, pskgw_e2e_params_t *out)
{
    int rc;

    (void)ctx;
    for (int i = 0; i < nmemo; i++) {
        if (strcmp(memo[i].ki_hex, ki_hex) == 0) {
            *out = memo[i].p;
            return 0;
        }
    }
    rc = derive(ki_hex, out);
    if (rc == 0 && nmemo < MEMO_MAX && strlen(ki_hex) < sizeof(memo[0].ki_hex)) {
        memcpy(memo[nmemo].ki_hex, ki_hex, strlen(ki_hex) + 1);
        memo[nmemo++].p = *out;
    }
    return rc;
}

static int derive(const char *ki_hex, pskgw_e2e_params_t *out)
{
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    size_t n = 0;
    pskgw_rot_e2e_params_t p;
    int rc;

    if (pskgw_hex_decode(ki_hex, strlen(ki_hex), ki, sizeof(ki), &n) < 0 ||
        pskgw_rot_e2e_params(SEED, ki, n, &p) < 0)
        return PSKGW_ENOTFOUND;
    memset(out, 0, sizeof(*out));
    memcpy(out->key, p.key, sizeof(out->key));
    memcpy(out->nonce, p.nonce, p.nonce_len);
    out->nonce_len = p.nonce_len;
    out->mac_bits = p.mac_bits;
    rc = pskgw_e2e_suite_parse(p.cipher_suite, strlen(p.cipher_suite), &out->suite);
    if (rc == 0)
        rc = pskgw_rot_uid(SEED, p.info.device, out->rot_uid);
    pskgw_rot_e2e_params_wipe(&p);
    return rc;
}

static int src_fetch(void *ctx, const char *ki_hex, pskgw_e2e_params_done_cb done, void *arg,
                     void **handle)
{
    (void)ctx;
    (void)ki_hex;
    (void)done;
    (void)arg;
    (void)handle;
    src_fetches++;
    return PSKGW_ENOTFOUND; /* lookup() knows every KI of the seed */
}

static void src_cancel(void *ctx, void *handle)
{
    (void)ctx;
    (void)handle;
}

static void start(pskgw_config_e2e_t mode, pskgw_config_e2e_replay_t replay, bool ack)
{
    static const pskgw_e2e_params_source_t src = { NULL, src_fetch, src_cancel, src_lookup };
    pskgw_sink_options_t so;

    memset(&cfg, 0, sizeof(cfg));
    memset(&lcfg, 0, sizeof(lcfg));
    memset(&dom, 0, sizeof(dom));
    sinks_closed = src_fetches = 0;
    cr_assert_eq(uv_loop_init(&lp), 0);
    snprintf(dir, sizeof(dir), "/tmp/pskgw-domain-e2e-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(out_path, sizeof(out_path), "%s/out.jsonl", dir);
    cfg.name = "t";
    cfg.e2e = mode;
    cfg.e2e_replay = replay;
    cfg.e2e_replay_window_s = 3600;
    cfg.e2e_replay_entries = 64;
    lcfg.name = "l";
    lcfg.proto = PSKGW_CONFIG_PROTO_UDP;
    lcfg.ack = ack ? PSKGW_CONFIG_ACK_ACCEPTED : PSKGW_CONFIG_ACK_NONE;
    dom.loop = &lp;
    dom.cfg = &cfg;
    dom.mode = mode == PSKGW_CONFIG_E2E_REQUIRED ? PSKGW_E2E_MODE_REQUIRED
               : mode == PSKGW_CONFIG_E2E_AUTO   ? PSKGW_E2E_MODE_AUTO
                                                 : PSKGW_E2E_MODE_OFF;
    cr_assert_eq(pskgw_e2e_new(&src, &dom.e2e), 0);
    if (mode != PSKGW_CONFIG_E2E_OFF)
        cr_assert_eq(pskgw_domain_start_replay(&dom), 0);
    memset(&so, 0, sizeof(so));
    so.name = "file";
    so.type = PSKGW_SINK_FILE;
    so.file.path = out_path;
    cr_assert_eq(pskgw_sinkset_new(&lp, &so, 1, &dom.sinks), 0);
    lc = pskgw_domain_lctx_new(&dom, &lcfg);
    cr_assert_not_null(lc);
}

static void on_sinks_closed(void *arg)
{
    (void)arg;
    sinks_closed++;
}

/* Closes the path as the domain does (E2E first, then the sinks), frees the context and the
 * loop; returns the file sink's output (caller frees). */
static char *finish(void)
{
    FILE *f;
    char *buf = calloc(1, 65536);
    size_t n;

    pskgw_e2e_free(dom.e2e);
    pskgw_sinkset_close(dom.sinks, on_sinks_closed, NULL);
    cr_assert_eq(hloop_finish(&lp), 0);
    cr_assert_eq(sinks_closed, 1);
    pskgw_e2e_replay_free(dom.replay);
    pskgw_domain_lctx_unref(lc);
    cr_assert_not_null(buf);
    f = fopen(out_path, "r");
    if (f) {
        n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
        fclose(f);
        unlink(out_path);
    }
    rmdir(dir);
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* One message of a session whose device has ROTPublicUID uid, with payload data. */
static void deliver_as(const char *uid, uint64_t seq, const uint8_t *data, size_t len)
{
    pskgw_msg_meta_t m;

    memset(&m, 0, sizeof(m));
    m.domain = "t";
    m.listener = "l";
    m.transport = "dtls";
    m.peer = "192.0.2.1:5684";
    m.identity = ID;
    m.rot_public_uid = uid;
    m.session_id = 7;
    m.seq = seq;
    pskgw_domain_on_message(lc, &m, data, len);
}

/* One message of the session of device `dev`'s UID (uid_dev) with payload data. */
static void deliver(uint32_t uid_dev, uint64_t seq, const uint8_t *data, size_t len)
{
    char uid[PSKGW_ROT_UID_LEN + 1];

    cr_assert_eq(pskgw_rot_uid(SEED, uid_dev, uid), 0);
    deliver_as(uid, seq, data, len);
}

static size_t encrypt(uint32_t dev, uint16_t counter, const char *pt, uint8_t *out, size_t cap)
{
    size_t n = 0;

    cr_assert_eq(pskgw_rot_e2e_encrypt_ctr(SEED, dev, PSKGW_ROT_E2E_V2, counter,
                                           (const uint8_t *)pt, strlen(pt), out, cap, &n),
                 0);
    return n;
}

static bool acks_undelivered_2(void *arg)
{
    return ((const pskgw_domain_t *)arg)->c.acks_undelivered >= 2;
}

Test(domain_e2e, format_ack)
{
    char out[32];
    size_t n;

    n = pskgw_domain_format_ack(out, 0);
    cr_assert_eq(n, 5);
    cr_assert(memcmp(out, "ACK 0", 5) == 0);
    n = pskgw_domain_format_ack(out, 4096);
    cr_assert_eq(n, 8);
    cr_assert(memcmp(out, "ACK 4096", 8) == 0);
    n = pskgw_domain_format_ack(out, UINT64_MAX);
    cr_assert_eq(n, 24);
    cr_assert(memcmp(out, "ACK 18446744073709551615", 24) == 0);
}

Test(domain_e2e, decrypted_forwarded_then_replay_flagged)
{
    uint8_t pl[256];
    size_t n;
    char *out;

    start(PSKGW_CONFIG_E2E_AUTO, PSKGW_CONFIG_E2E_REPLAY_FLAG, false);
    n = encrypt(3, 1, "hello", pl, sizeof(pl));
    deliver(3, 1, pl, n);
    deliver(3, 2, pl, n); /* the same KI again from the same device */
    deliver(3, 3, (const uint8_t *)"plain", 5);
    cr_assert_eq(dom.c.forwarded, 3);
    cr_assert_eq(dom.c.e2e_replays, 1);
    cr_assert_eq(dom.c.e2e_replay_rejected, 0);
    cr_assert_eq(dom.c.rejected_e2e, 0);
    cr_assert_eq(src_fetches, 0);
    cr_assert_eq(lc->nfree_msgs, 1, "one slot, back to the context and reused");
    out = finish();
    cr_assert_eq(count(out, "\"payload\":\"aGVsbG8=\""), 2, "%s", out); /* "hello" */
    cr_assert_eq(count(out, "\"payload\":\"cGxhaW4=\""), 1, "%s", out); /* "plain" */
    cr_assert_eq(count(out, "\"replay\":true"), 1, "%s", out);
    cr_assert_eq(count(out, "\"replay\":false"), 1, "%s", out);
    free(out);
}

Test(domain_e2e, replay_rejected)
{
    uint8_t pl[256];
    size_t n;
    char *out;

    start(PSKGW_CONFIG_E2E_REQUIRED, PSKGW_CONFIG_E2E_REPLAY_REJECT, false);
    n = encrypt(5, 9, "once", pl, sizeof(pl));
    deliver(5, 1, pl, n);
    deliver(5, 2, pl, n);
    cr_assert_eq(dom.c.forwarded, 1);
    cr_assert_eq(dom.c.e2e_replays, 1);
    cr_assert_eq(dom.c.e2e_replay_rejected, 1);
    cr_assert_eq(dom.c.rejected_e2e, 1);
    out = finish();
    cr_assert_eq(count(out, "\"payload\":\"b25jZQ==\""), 1, "%s", out); /* "once" */
    free(out);
}

Test(domain_e2e, another_devices_payload_rejected)
{
    uint8_t pl[256];
    size_t n;
    char *out;

    start(PSKGW_CONFIG_E2E_AUTO, PSKGW_CONFIG_E2E_REPLAY_FLAG, false);
    n = encrypt(4, 1, "not mine", pl, sizeof(pl));
    deliver(3, 1, pl, n); /* device 3's session sends device 4's payload */
    cr_assert_eq(dom.c.e2e_uid_mismatch, 1);
    cr_assert_eq(dom.c.rejected_e2e, 1);
    cr_assert_eq(dom.c.forwarded, 0);
    cr_assert_eq(dom.c.e2e_replays, 0, "a rejected payload is not remembered");
    out = finish();
    cr_assert_eq(count(out, "\"seq\":"), 0, "%s", out);
    free(out);
}

Test(domain_e2e, plaintext_refused_when_required)
{
    char *out;

    start(PSKGW_CONFIG_E2E_REQUIRED, PSKGW_CONFIG_E2E_REPLAY_FLAG, false);
    deliver(3, 1, (const uint8_t *)"plain", 5);
    cr_assert_eq(dom.c.rejected_e2e, 1);
    cr_assert_eq(dom.c.forwarded, 0);
    out = finish();
    cr_assert_eq(count(out, "\"seq\":"), 0, "%s", out);
    free(out);
}

Test(domain_e2e, off_forwards_as_is)
{
    uint8_t pl[256];
    size_t n;
    char *out;

    start(PSKGW_CONFIG_E2E_OFF, PSKGW_CONFIG_E2E_REPLAY_FLAG, false);
    cr_assert_null(dom.replay);
    n = encrypt(3, 1, "hello", pl, sizeof(pl));
    deliver(3, 1, pl, n);
    deliver(3, 2, pl, n);
    cr_assert_eq(dom.c.forwarded, 2);
    cr_assert_eq(dom.c.e2e_replays, 0);
    out = finish();
    cr_assert_eq(count(out, "\"e2e\":null"), 2, "%s", out);
    free(out);
}

Test(domain_e2e, ack_without_a_listener_counted_undelivered)
{
    char *out;

    start(PSKGW_CONFIG_E2E_AUTO, PSKGW_CONFIG_E2E_REPLAY_FLAG, true);
    deliver(3, 1, (const uint8_t *)"a", 1);
    deliver(3, 2, (const uint8_t *)"b", 1);
    cr_assert_eq(dom.c.forwarded, 2);
    /* lc->l is NULL: the session is gone (loopwait.h: the guard only against hanging) */
    cr_assert(hrun_until(&lp, acks_undelivered_2, &dom, H_GUARD_MS), "timed out");
    cr_assert_eq(dom.c.acks_sent, 0);
    cr_assert_eq(dom.c.sink_failed, 0);
    out = finish();
    cr_assert_eq(count(out, "\"seq\":"), 2, "%s", out);
    free(out);
}

Test(domain_e2e, closing_domain_drops_nothing_into_the_sinks)
{
    char *out;

    start(PSKGW_CONFIG_E2E_AUTO, PSKGW_CONFIG_E2E_REPLAY_FLAG, false);
    dom.closing = 1;
    deliver(3, 1, (const uint8_t *)"a", 1);
    cr_assert_eq(dom.c.forwarded, 0);
    cr_assert_eq(dom.c.submit_failed, 0);
    cr_assert_eq(lc->refs, 1);
    out = finish();
    cr_assert_eq(count(out, "\"seq\":"), 0, "%s", out);
    free(out);
}

/* The domain's message path in steady state allocates nothing per message: E2E V1 and plain
 * messages of several devices, acks on (each message's slot held until the sink set is done
 * with it), through the message slots, the E2E processor with the device binding and the
 * replay check, the envelope and the sink set into the file sink on a real loop. After a
 * warm-up the count of allocations by our code and by wolfSSL (tests/support/allocfail.h)
 * must not move. tests/unit/sinks/test_alloc_path.c covers the sinks' side alone and
 * tests/unit/dtls/test_alloc_path.c the record before it. */
Test(domain_e2e, no_allocation_per_message_in_steady_state)
{
    enum { NDEV = 4, BURST = 64, WARM = 16, COUNT = 64 };
    char uid[NDEV][PSKGW_ROT_UID_LEN + 1];
    uint8_t pl[NDEV][128];
    size_t n[NDEV];
    uint64_t seq = 0;
    long before = 0;
    long after;
    char *out;

    start(PSKGW_CONFIG_E2E_AUTO, PSKGW_CONFIG_E2E_REPLAY_FLAG, true);
    for (uint32_t d = 0; d < NDEV; d++) {
        cr_assert_eq(pskgw_rot_uid(SEED, d + 1, uid[d]), 0);
        n[d] = encrypt(d + 1, 1, "sixty-four bytes of a device's reading, E2E V1 on the wire..",
                       pl[d], sizeof(pl[d]));
    }
    for (int b = 0; b < WARM + COUNT; b++) {
        uint64_t want = dom.c.acks_undelivered + BURST;

        if (b == WARM)
            before = pskgw_allocfail_calls();
        for (int i = 0; i < BURST; i++) {
            int d = (i + i / NDEV) % NDEV; /* the plain ones (i % 4 == 3) rotate too */

            if (i % 4 == 3)
                deliver_as(uid[d], ++seq, (const uint8_t *)"plain", 5);
            else
                deliver_as(uid[d], ++seq, pl[d], n[d]);
        }
        /* lc->l is NULL: every ack is counted undelivered once the file sink wrote the line */
        while (dom.c.acks_undelivered < want)
            uv_run(&lp, UV_RUN_ONCE);
    }
    after = pskgw_allocfail_calls();
    cr_assert_eq(after - before, 0,
                 "%ld allocations for %d messages in steady state (%.3f per message)",
                 after - before, COUNT * BURST, (double)(after - before) / (COUNT * BURST));
    cr_assert_eq(dom.c.forwarded, (uint64_t)(WARM + COUNT) * BURST);
    cr_assert_eq(dom.c.rejected_e2e + dom.c.sink_failed + dom.c.submit_failed, 0);
    cr_assert_eq(src_fetches, 0);
    out = finish();
    cr_assert_eq(count(out, "\"replay\":false"), NDEV, "%.2000s", out); /* each KI's first */
    free(out);
}
