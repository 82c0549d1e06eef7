/* pskgw-devsim's pure modules: payload format, histogram, device kinds, options, verifier. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "proc.h"
#include "tools/devsim/creds.h"
#include "tools/devsim/hist.h"
#include "tools/devsim/opts.h"
#include "tools/devsim/payload.h"
#include "tools/devsim/verify.h"

Test(devsim_payload, round_trip_and_exact_size)
{
    uint8_t b[PSKGW_DEVSIM_PAYLOAD_MAX];
    cr_assert_eq(pskgw_devsim_payload_make(0x0badc0de, 17, 3, 32, b, sizeof(b)), 0);
    cr_assert_eq(memcmp(b, "0badc0de:17:3;qrstuvwxyzabcdefgh", 32), 0);
    uint32_t r, d, n;
    cr_assert_eq(pskgw_devsim_payload_parse(b, 32, &r, &d, &n), 0);
    cr_assert_eq(r, 0x0badc0de);
    cr_assert_eq(d, 17);
    cr_assert_eq(n, 3);
    /* the largest header fits the minimum size */
    cr_assert_eq(pskgw_devsim_payload_make(0xffffffff, UINT32_MAX, UINT32_MAX, 32, b, 32), 0);
    cr_assert_eq(pskgw_devsim_payload_parse(b, 32, &r, &d, &n), 0);
    cr_assert_eq(d, UINT32_MAX);
    cr_assert_eq(n, UINT32_MAX);
    /* different messages differ in the padding too */
    uint8_t c[64];
    pskgw_devsim_payload_make(1, 1, 2, 64, b, sizeof(b));
    pskgw_devsim_payload_make(1, 2, 1, 64, c, sizeof(c));
    cr_assert_neq(memcmp(b + 20, c + 20, 44), 0);
}

Test(devsim_payload, rejects)
{
    uint8_t b[64];
    uint32_t r, d, n;
    cr_assert_eq(pskgw_devsim_payload_make(1, 1, 1, 31, b, sizeof(b)), PSKGW_EINVAL);
    cr_assert_eq(pskgw_devsim_payload_make(1, 1, 1, 64, b, 63), PSKGW_ETOOBIG);
    const char *bad[] = { "",
                          "0badc0de",
                          "0badc0de:17:3",
                          "0BADC0DE:1:2;",
                          "0badc0d:1:2;",
                          "0badc0de::2;",
                          "0badc0de:1:;",
                          "0badc0de:99999999999:1;",
                          "0badc0de:-1:2;",
                          "HELLO" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(
            pskgw_devsim_payload_parse((const uint8_t *)bad[i], strlen(bad[i]), &r, &d, &n),
            PSKGW_EPARSE, "accepted '%s'", bad[i]);
}

Test(devsim_hist, quantiles_within_precision)
{
    pskgw_devsim_hist_t h;
    pskgw_devsim_hist_reset(&h);
    cr_assert_eq(pskgw_devsim_hist_quantile(&h, 0.5), 0);
    for (uint64_t v = 1; v <= 10000; v++)
        pskgw_devsim_hist_add(&h, v * 100); /* 100 us .. 1 s */
    uint64_t p50 = pskgw_devsim_hist_quantile(&h, 0.5), p99 = pskgw_devsim_hist_quantile(&h, 0.99);
    cr_assert(p50 > 500000 * 0.96 && p50 < 500000 * 1.04, "p50 %llu", (unsigned long long)p50);
    cr_assert(p99 > 990000 * 0.96 && p99 < 990000 * 1.04, "p99 %llu", (unsigned long long)p99);
    cr_assert_eq(pskgw_devsim_hist_quantile(&h, 1.0), 1000000);
    pskgw_devsim_hist_reset(&h);
    for (int i = 0; i < 10; i++)
        pskgw_devsim_hist_add(&h, 42);
    cr_assert_eq(pskgw_devsim_hist_quantile(&h, 0.99), 42);
    pskgw_devsim_hist_add(&h, UINT64_MAX); /* clamped, no overflow */
    cr_assert(pskgw_devsim_hist_quantile(&h, 1.0) > 1000000000ull);
}

Test(devsim_creds, kinds_spread_and_counted)
{
    uint32_t good = 0, unk = 0, wrong = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        pskgw_devsim_kind_t k = pskgw_devsim_kind_of(i, 0.1, 0.05);
        good += k == PSKGW_DEVSIM_GOOD;
        unk += k == PSKGW_DEVSIM_UNKNOWN;
        wrong += k == PSKGW_DEVSIM_WRONG_PSK;
    }
    cr_assert_eq(unk, 100);
    cr_assert_eq(wrong, 50);
    cr_assert_eq(good, 850);
    cr_assert_eq(pskgw_devsim_kind_of(0, 0, 1), PSKGW_DEVSIM_WRONG_PSK);
    cr_assert_eq(pskgw_devsim_kind_of(0, 0, 0), PSKGW_DEVSIM_GOOD);
}

Test(devsim_creds, bad_devices_differ_from_the_good_one)
{
    pskgw_devsim_creds_t g, u, w, ui;
    cr_assert_eq(pskgw_devsim_creds_get("s", 5, PSKGW_DEVSIM_GOOD, 128, UINT64_MAX, &g), 0);
    cr_assert_eq(pskgw_devsim_creds_get("s", 5, PSKGW_DEVSIM_UNKNOWN, 128, UINT64_MAX, &u), 0);
    cr_assert_eq(pskgw_devsim_creds_get("s", 5, PSKGW_DEVSIM_WRONG_PSK, 128, UINT64_MAX, &w), 0);
    cr_assert_eq(pskgw_devsim_creds_get("s", 5, PSKGW_DEVSIM_UNKNOWN, 128, 1000, &ui), 0);
    char want[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    pskgw_rot_identity_hex("s", 5, want);
    cr_assert_str_eq(g.identity, want);
    cr_assert_eq(g.identity_len, 28);
    cr_assert_eq(g.psk_len, 16);
    uint32_t dev;
    cr_assert_eq(pskgw_rot_identity_check_hex("s", g.identity, 28, &dev), 0);
    cr_assert_eq(pskgw_rot_identity_check_hex("s", u.identity, 28, &dev), PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_rot_identity_check_hex("s", ui.identity, 28, &dev), 0);
    cr_assert_eq(dev, 1005);
    cr_assert_str_eq(w.identity, g.identity);
    cr_assert_neq(memcmp(w.psk, g.psk, 16), 0);
    cr_assert_eq(memcmp(w.psk + 1, g.psk + 1, 15), 0);
    pskgw_devsim_creds_wipe(&g);
    pskgw_devsim_creds_wipe(&u);
    pskgw_devsim_creds_wipe(&w);
    pskgw_devsim_creds_wipe(&ui);
}

/* --identity-per-session: each session its own identity and PSK, resolvable to the device; the
 * bad kinds stay bad. */
Test(devsim_creds, per_session_identities)
{
    pskgw_devsim_creds_t a, b, fixed, u, w;
    pskgw_rot_id_info_t info;
    uint8_t psk[16];
    size_t n = 0;

    cr_assert_eq(
        pskgw_devsim_creds_get_session("s", 5, PSKGW_DEVSIM_GOOD, 128, UINT64_MAX, true, 1, &a), 0);
    cr_assert_eq(
        pskgw_devsim_creds_get_session("s", 5, PSKGW_DEVSIM_GOOD, 128, UINT64_MAX, true, 2, &b), 0);
    cr_assert_eq(pskgw_devsim_creds_get("s", 5, PSKGW_DEVSIM_GOOD, 128, UINT64_MAX, &fixed), 0);
    cr_assert_str_neq(a.identity, b.identity);
    cr_assert_str_neq(a.identity, fixed.identity);
    cr_assert_neq(memcmp(a.psk, b.psk, 16), 0);
    cr_assert_eq(pskgw_rot_identity_resolve_hex("s", a.identity, a.identity_len, &info), 0);
    cr_assert_eq(info.device, 5);
    cr_assert(info.per_session);
    cr_assert_eq(info.session, 1);
    /* What pskgw-sim answers for that identity is the device's PSK for this session. */
    cr_assert_eq(
        pskgw_rot_identity_psk_hex("s", a.identity, a.identity_len, 128, psk, sizeof(psk), &n), 0);
    cr_assert_arr_eq(psk, a.psk, 16);
    cr_assert_eq(
        pskgw_devsim_creds_get_session("s", 5, PSKGW_DEVSIM_UNKNOWN, 128, UINT64_MAX, true, 1, &u),
        0);
    cr_assert_eq(pskgw_rot_identity_resolve_hex("s", u.identity, u.identity_len, &info),
                 PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_devsim_creds_get_session("s", 5, PSKGW_DEVSIM_WRONG_PSK, 128, UINT64_MAX,
                                                true, 1, &w),
                 0);
    cr_assert_str_eq(w.identity, a.identity);
    cr_assert_neq(memcmp(w.psk, a.psk, 16), 0);
    pskgw_devsim_creds_wipe(&a);
    pskgw_devsim_creds_wipe(&b);
    pskgw_devsim_creds_wipe(&fixed);
    pskgw_devsim_creds_wipe(&u);
    pskgw_devsim_creds_wipe(&w);
}

static int parse(pskgw_devsim_opts_t *o, char *err, int argc, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, argc);
    argv[0] = "pskgw-devsim";
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return pskgw_devsim_opts_parse(argc, argv, o, err, 256);
}

Test(devsim_opts, defaults_and_scenarios)
{
    pskgw_devsim_opts_t o;
    char err[256];
    cr_assert_eq(parse(&o, err, 3, "--target", "127.0.0.1:5684"), 0, "%s", err);
    cr_assert_eq(o.transport, PSKGW_DEVSIM_DTLS);
    cr_assert_eq(o.devices, 10);
    cr_assert_eq(o.messages, 10);
    /* A module-like ClientHello: several PSK suites, the gateway's defaults among them. */
    cr_assert_str_eq(o.cipher, PSKGW_DEVSIM_MODULE_CIPHERS);
    cr_assert(strstr(o.cipher, "PSK-AES128-CCM8:") && strstr(o.cipher, "PSK-AES128-GCM-SHA256:") &&
              strstr(o.cipher, "PSK-AES128-CBC-SHA256:") && strstr(o.cipher, "PSK-AES128-CBC-SHA"));
    cr_assert_str_eq(o.seed, "pskgw-sim");
    /* Modules: a new E2E key identity per message by default; one identity per device unless
     * asked; V2 layout "seed". */
    cr_assert_not(o.e2e_fixed_ki);
    cr_assert_not(o.identity_per_session);
    cr_assert_eq(o.e2e_v2_layout, PSKGW_ROT_V2_SEED);
    cr_assert_eq(
        parse(&o, err, 6, "--tcp", "localhost:8883", "--handshake-per-message", "--e2e", "v2"), 0,
        "%s", err);
    cr_assert_eq(o.transport, PSKGW_DEVSIM_TLS);
    cr_assert_eq(o.framing, PSKGW_DEVSIM_FRAMING_LEN16);
    cr_assert_eq(o.reconnect_every, 1);
    cr_assert_eq(o.e2e, 2);
    cr_assert_str_eq(o.target_text, "127.0.0.1:8883");
    cr_assert_eq(parse(&o, err, 5, "--target", "[::1]:5684", "--idle-interval", "30"), 0, "%s",
                 err);
    cr_assert_eq(o.idle_share, 1.0);
    cr_assert_eq(parse(&o, err, 2, "--help"), 1);
    cr_assert_eq(parse(&o, err, 9, "--target", "127.0.0.1:1", "--identity-per-session", "--e2e",
                       "v2", "--e2e-v2-layout", "pad1", "--e2e-fixed-ki"),
                 0, "%s", err);
    cr_assert(o.identity_per_session);
    cr_assert_eq(o.e2e_v2_layout, PSKGW_ROT_V2_PAD1);
    cr_assert(o.e2e_fixed_ki);
    /* 65536 messages is the most a 16-bit KI counter gives without reuse. */
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--e2e", "v1", "--messages", "65536"),
                 0, "%s", err);
}

/* --rebind-every needs DTLS and --expect-ack (the ack tells whether the session followed). */
Test(devsim_opts, rebind_every)
{
    pskgw_devsim_opts_t o;
    char err[256];
    cr_assert_eq(
        parse(&o, err, 6, "--target", "127.0.0.1:1", "--rebind-every", "60", "--expect-ack"), 0,
        "%s", err);
    cr_assert_eq(o.rebind_every_s, 60.0);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--rebind-every", "60"),
                 PSKGW_EINVAL);
    cr_assert(strstr(err, "--expect-ack") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 6, "--tcp", "127.0.0.1:1", "--rebind-every", "60", "--expect-ack"),
                 PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 8, "--target", "127.0.0.1:1", "--rebind-every", "60",
                       "--expect-ack", "--nat-rebind-every", "2"),
                 PSKGW_EINVAL);
    cr_assert_eq(
        parse(&o, err, 6, "--target", "127.0.0.1:1", "--rebind-every", "0", "--expect-ack"),
        PSKGW_EINVAL);
}

Test(devsim_opts, refusals)
{
    pskgw_devsim_opts_t o;
    char err[256];
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--first-device", "12"), 0, "%s",
                 err);
    cr_assert_eq(o.first_device, 12);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--first-device", "-1"),
                 PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 9, "--target", "127.0.0.1:1", "--first-device", "1", "--messages",
                       "1", "--verify-file", "/dev/null"),
                 PSKGW_EINVAL);
    cr_assert(strstr(err, "--first-device") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 3, "--target", "192.0.2.1:5684"), PSKGW_EINVAL);
    cr_assert(strstr(err, "non-loopback") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 3, "--target", "[2001:db8::1]:5684"), PSKGW_EINVAL);
    cr_assert(strstr(err, "non-loopback") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 3, "--tcp", "example.com:443"), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 1), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--devices", "0"), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--devices", "1000001"),
                 PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--duration", "86401"), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--size", "12x"), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--framing", "len16"), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 7, "--tcp", "127.0.0.1:1", "--framing", "newline", "--e2e", "v1"),
                 PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--unknown-share", "0.6",
                       "--wrong-psk-share", "0.6"),
                 PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--size", "1400"), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 4, "--target", "127.0.0.1:1", "extra"), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--e2e-v2-layout", "pad2"),
                 PSKGW_EINVAL);
    /* More messages than KI counter values: a key identity and nonce would be reused. */
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--e2e", "v1", "--messages", "65537"),
                 PSKGW_EINVAL);
    cr_assert(strstr(err, "reuse") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 8, "--target", "127.0.0.1:1", "--e2e", "v1", "--messages", "65537",
                       "--e2e-fixed-ki"),
                 0, "%s", err);
    /* pad1 V2 is 9 bytes longer than seed: the MTU check counts it. 1400 - 13 - 16 - 2 - 28. */
    cr_assert_eq(parse(&o, err, 9, "--target", "127.0.0.1:1", "--e2e", "v2", "--e2e-v2-layout",
                       "pad1", "--size", "1341"),
                 0, "%s", err);
    cr_assert_eq(parse(&o, err, 9, "--target", "127.0.0.1:1", "--e2e", "v2", "--e2e-v2-layout",
                       "pad1", "--size", "1342"),
                 PSKGW_EINVAL);
}

/* ---- verifier on hand-made files ---- */

static char tmpdir[256];

static void write_env(FILE *f, const uint8_t *payload, size_t len, const char *identity,
                      json_t *e2e)
{
    char b64[4096];
    cr_assert_eq(pskgw_b64_encode(payload, len, b64, sizeof(b64)), 0);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:I, s:o}", "message_id",
                  "m", "domain", "d", "listener", "l", "transport", "dtls", "peer",
                  "127.1.0.1:5000", "psk_identity", identity, "rot_public_uid", "0002000000000000",
                  "session_id", 1, "seq", 1, "received_at", "2026-11-21T10:00:00.000Z", "payload",
                  b64, "payload_len", (json_int_t)len, "e2e", e2e != NULL ? e2e : json_null());
    char *s = json_dumps(o, JSON_COMPACT);
    fprintf(f, "%s\n", s);
    free(s);
    json_decref(o);
}

static void write_msg(FILE *f, uint32_t run, uint32_t dev, uint32_t n, size_t size)
{
    uint8_t b[256];
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    pskgw_devsim_payload_make(run, dev, n, size, b, sizeof(b));
    pskgw_rot_identity_hex("vseed", dev, id);
    write_env(f, b, size, id, NULL);
}

Test(devsim_verify, counts_missing_duplicated_corrupted_and_ignores_others)
{
    cr_assert_eq(pskgw_test_tmpdir(tmpdir, sizeof(tmpdir)), 0);
    char path[512];
    snprintf(path, sizeof(path), "%s/sink.jsonl", tmpdir);
    uint32_t sent[3] = { 3, 0, 2 }; /* device 1 is a bad device: sent nothing */
    pskgw_devsim_verify_t *v;
    cr_assert_eq(pskgw_devsim_verify_new(path, "vseed", 0xabcdef01, 40, 0, sent, 3, &v), 0);
    /* missing file: nothing yet */
    cr_assert_eq(pskgw_devsim_verify_poll(v), 0);
    cr_assert_not(pskgw_devsim_verify_complete(v));
    FILE *f = fopen(path, "w");
    write_msg(f, 0xabcdef01, 0, 0, 40);
    write_msg(f, 0xabcdef01, 0, 1, 40);
    write_msg(f, 0xabcdef01, 0, 1, 40); /* duplicate */
    write_msg(f, 0x11111111, 0, 2, 40); /* another run: ignored */
    write_msg(f, 0xabcdef01, 1, 0, 40); /* a device that sent nothing */
    write_msg(f, 0xabcdef01, 2, 5, 40); /* beyond what device 2 sent */
    uint8_t b[64];
    pskgw_devsim_payload_make(0xabcdef01, 2, 0, 40, b, sizeof(b));
    b[39] ^= 1; /* corrupted padding */
    char id2[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    pskgw_rot_identity_hex("vseed", 2, id2);
    write_env(f, b, 40, id2, NULL);
    fputs("this is not json\n", f);
    fputs("{\"payload\":\"SEVMTE8=\"", f); /* an unfinished line: not read yet */
    fclose(f);
    pskgw_devsim_verify_result_t r;
    cr_assert_eq(pskgw_devsim_verify_wait(v, 0.2, &r), 0);
    cr_assert_eq(r.expected, 5);
    cr_assert_eq(r.delivered, 3);
    cr_assert_eq(r.missing, 2); /* 0:2 and 2:1 */
    cr_assert_eq(r.duplicated, 1);
    cr_assert_eq(r.corrupted, 1);
    cr_assert_eq(r.foreign, 1);
    cr_assert_eq(r.unexpected, 2);
    cr_assert_eq(r.bad_lines, 1);
    cr_assert_not(pskgw_devsim_verify_ok(&r));
    /* the rest arrives, with a wrong identity for one message */
    f = fopen(path, "a");
    fputs(",\"x\":1}\n", f); /* completes the unfinished line: an envelope without keys */
    write_msg(f, 0xabcdef01, 0, 2, 40);
    uint8_t m[64];
    pskgw_devsim_payload_make(0xabcdef01, 2, 1, 40, m, sizeof(m));
    write_env(f, m, 40, "11010000000000000000000000FF", NULL);
    fclose(f);
    cr_assert_eq(pskgw_devsim_verify_wait(v, 5, &r), 0);
    cr_assert_eq(r.missing, 0);
    cr_assert_eq(r.delivered, 5);
    cr_assert_eq(r.misattributed, 1);
    cr_assert_eq(r.bad_lines, 2);
    pskgw_devsim_verify_free(v);
    pskgw_test_rmtree(tmpdir);
}

Test(devsim_verify, complete_file_is_ok_and_e2e_is_checked)
{
    cr_assert_eq(pskgw_test_tmpdir(tmpdir, sizeof(tmpdir)), 0);
    char path[512];
    snprintf(path, sizeof(path), "%s/sink.jsonl", tmpdir);
    uint32_t sent[2] = { 2, 1 };
    FILE *f = fopen(path, "w");
    for (uint32_t d = 0; d < 2; d++)
        for (uint32_t n = 0; n < sent[d]; n++)
            write_msg(f, 7, d, n, 33);
    fclose(f);
    pskgw_devsim_verify_t *v;
    pskgw_devsim_verify_result_t r;
    cr_assert_eq(pskgw_devsim_verify_new(path, "vseed", 7, 33, 0, sent, 2, &v), 0);
    cr_assert_eq(pskgw_devsim_verify_wait(v, 5, &r), 0);
    cr_assert(pskgw_devsim_verify_ok(&r));
    cr_assert_eq(r.delivered, 3);
    pskgw_devsim_verify_free(v);
    /* the same file read as an E2E run: the envelopes say e2e null */
    cr_assert_eq(pskgw_devsim_verify_new(path, "vseed", 7, 33, 1, sent, 2, &v), 0);
    cr_assert_eq(pskgw_devsim_verify_wait(v, 5, &r), 0);
    cr_assert_eq(r.e2e_mismatch, 3);
    cr_assert_not(pskgw_devsim_verify_ok(&r));
    pskgw_devsim_verify_free(v);
    pskgw_test_rmtree(tmpdir);
}

Test(devsim_opts, failover)
{
    pskgw_devsim_opts_t o;
    char err[256];
    cr_assert_eq(parse(&o, err, 8, "--target", "127.0.0.11:1", "--expect-ack", "--failover-to",
                       "127.0.0.12:2", "--failover-after", "1"),
                 0, "%s", err);
    cr_assert_eq(o.failover_after, 1);
    cr_assert_str_eq(o.failover_text, "127.0.0.12:2");
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.11:1", "--failover-to", "127.0.0.12:2"),
                 PSKGW_EINVAL);
    cr_assert(strstr(err, "go together") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.11:1", "--failover-to", "127.0.0.12:2",
                       "--failover-after", "1"),
                 PSKGW_EINVAL, "needs --expect-ack");
    cr_assert_eq(parse(&o, err, 8, "--tcp", "127.0.0.11:1", "--expect-ack", "--failover-to",
                       "127.0.0.12:2", "--failover-after", "1"),
                 PSKGW_EINVAL, "DTLS only");
    cr_assert_eq(parse(&o, err, 8, "--target", "127.0.0.11:1", "--expect-ack", "--failover-to",
                       "192.0.2.1:2", "--failover-after", "1"),
                 PSKGW_EINVAL);
    cr_assert(strstr(err, "non-loopback") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 8, "--target", "127.0.0.11:1", "--expect-ack", "--failover-to",
                       "127.0.0.12:2", "--failover-after", "0"),
                 PSKGW_EINVAL);
}

/* --preencrypt: DTLS devices with one session each; its barrier files and the damage hook need
 * it; --replay-damage names a device and message of the run. */
Test(devsim_opts, preencrypt)
{
    pskgw_devsim_opts_t o;
    char err[256];
    cr_assert_eq(parse(&o, err, 14, "--target", "127.0.0.1:1", "--preencrypt", "--ready-file",
                       "/tmp/r", "--start-file", "/tmp/s", "--devices", "4", "--messages", "9",
                       "--replay-damage", "3:8"),
                 0, "%s", err);
    cr_assert(o.preencrypt && o.damage);
    cr_assert_str_eq(o.ready_file, "/tmp/r");
    cr_assert_str_eq(o.start_file, "/tmp/s");
    cr_assert_eq(o.damage_device, 3);
    cr_assert_eq(o.damage_message, 8);
    cr_assert_eq(parse(&o, err, 8, "--target", "127.0.0.1:1", "--preencrypt", "--devices", "4",
                       "--replay-damage", "4:0"),
                 PSKGW_EINVAL, "device outside the run");
    cr_assert_eq(
        parse(&o, err, 6, "--target", "127.0.0.1:1", "--preencrypt", "--replay-damage", "0:-1"),
        PSKGW_EINVAL);
    cr_assert_eq(
        parse(&o, err, 6, "--target", "127.0.0.1:1", "--preencrypt", "--replay-damage", "1:2x"),
        PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--start-file", "/tmp/s"),
                 PSKGW_EINVAL, "needs --preencrypt");
    cr_assert(strstr(err, "--preencrypt") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 4, "--tcp", "127.0.0.1:1", "--preencrypt"), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--preencrypt", "--expect-ack"),
                 PSKGW_EINVAL);
    cr_assert_eq(
        parse(&o, err, 6, "--target", "127.0.0.1:1", "--preencrypt", "--reconnect-every", "2"),
        PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 8, "--target", "127.0.0.1:1", "--preencrypt", "--devices",
                       "1000000", "--messages", "1000"),
                 PSKGW_EINVAL, "every record in memory: bounded");
}
