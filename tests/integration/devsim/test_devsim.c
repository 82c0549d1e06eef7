/* pskgw-devsim, the real binary, against independent OpenSSL peers on loopback:
 * `openssl s_server` (one client at a time) and devsim_peer (many clients, acks, a file-sink
 * output). Every run is small and bounded by --duration. The peers bind port 0 and tell their
 * port; every pskgw-devsim and devsim_peer is judged by how it ended (exit status, no sanitizer
 * report in its captured stderr), inside the test. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "common/codec.h"
#include "proc.h"
#include "tools/devsim/payload.h"
#include "tools/rotkeys/rotkeys.h"

#define SEED     "devsim-test-seed"
#define GUARD_MS 60000 /* a guard against hanging only, never a statement about speed */

static char tmpdir[256];
static char path_json[512], path_sink[512], path_hand[512], devsim_err[512], peer_err[512];

static void setup(void)
{
    cr_assert_eq(pskgw_test_tmpdir(tmpdir, sizeof(tmpdir)), 0);
    snprintf(path_json, sizeof(path_json), "%s/summary.json", tmpdir);
    snprintf(path_sink, sizeof(path_sink), "%s/sink.jsonl", tmpdir);
    snprintf(path_hand, sizeof(path_hand), "%s/hand.jsonl", tmpdir);
    snprintf(devsim_err, sizeof(devsim_err), "%s/devsim.stderr", tmpdir);
    snprintf(peer_err, sizeof(peer_err), "%s/peer.stderr", tmpdir);
}

static void teardown(void)
{
    pskgw_test_rmtree(tmpdir);
}

/* Stop devsim_peer with SIGTERM and judge it: exit 0, no sanitizer report. */
static void peer_stop(pskgw_test_proc_t *peer)
{
    char why[256];

    cr_expect_eq(
        pskgw_test_stop_checked(peer, "devsim_peer", 0, peer_err, GUARD_MS, why, sizeof(why)), 0,
        "%s", why);
}

/* Run pskgw-devsim with the NULL-terminated arguments; stdout into out; exit status or -1 (and
 * its stderr judged). */
static int devsim(char *out, size_t cap, ...)
{
    pskgw_test_proc_t p;
    va_list ap;

    va_start(ap, cap);
    chain_devsim_spawn(&p, devsim_err, ap);
    va_end(ap);
    return chain_devsim_finish(&p, devsim_err, out, cap, GUARD_MS, 1);
}

static json_t *load_json(void)
{
    json_error_t e;
    json_t *j = json_load_file(path_json, 0, &e);
    cr_assert_not_null(j, "summary JSON does not parse: %s (line %d)", e.text, e.line);
    return j;
}

static json_int_t jint(json_t *root, const char *obj, const char *key)
{
    json_t *o = obj != NULL ? json_object_get(root, obj) : root;
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "%s.%s is not an integer", obj ? obj : "", key);
    return json_integer_value(v);
}

/* devsim_peer: "PORT n" on its first line. */
static int peer_start_ex(pskgw_test_proc_t *p, const char *mode, const char *framing, bool ack,
                         bool e2e, const char *idle_close)
{
    char *argv[20];
    int argc = 0;
    argv[argc++] = DEVSIM_PEER;
    argv[argc++] = (char *)mode;
    if (framing != NULL)
        argv[argc++] = (char *)framing;
    argv[argc++] = "--seed";
    argv[argc++] = SEED;
    argv[argc++] = "--out";
    argv[argc++] = path_sink;
    argv[argc++] = "--max-seconds";
    argv[argc++] = "50";
    if (ack)
        argv[argc++] = "--ack";
    if (e2e)
        argv[argc++] = "--e2e";
    if (idle_close != NULL) {
        argv[argc++] = "--idle-close";
        argv[argc++] = (char *)idle_close;
    }
    argv[argc] = NULL;
    cr_assert_eq(pskgw_test_spawn_logged(p, argv, 1, peer_err), 0);
    char line[128];
    cr_assert_eq(pskgw_test_read_line(p, line, sizeof(line), GUARD_MS), 0);
    int port = 0;
    cr_assert_eq(sscanf(line, "PORT %d", &port), 1, "peer said '%s'", line);
    return port;
}

static int peer_start(pskgw_test_proc_t *p, const char *mode, const char *framing, bool ack,
                      bool e2e)
{
    return peer_start_ex(p, mode, framing, ack, e2e, NULL);
}

static void target(char *buf, size_t cap, int port)
{
    snprintf(buf, cap, "127.0.0.1:%d", port);
}

/* ---- openssl s_server: one device ---- */

typedef struct {
    pskgw_test_proc_t p;
    int in_fd; /* kept open: s_server ends when its stdin ends */
} sserver_t;

/* s_server on a port the kernel picks (-accept 127.0.0.1:0: it then prints "ACCEPT
 * 127.0.0.1:PORT" once bound); the port. */
static int sserver_start(sserver_t *s, const char *identity, const char *psk_hex)
{
    int in[2], out[2];
    cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        execlp("openssl", "openssl", "s_server", "-dtls1_2", "-accept", "127.0.0.1:0", "-psk",
               psk_hex, "-psk_identity", identity, "-cipher", "PSK-AES128-CCM8", "-nocert",
               "-naccept", "1", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s->p.pid = pid;
    s->p.out_fd = out[0];
    s->in_fd = in[1];
    char line[256];
    int port = 0;
    while (pskgw_test_read_line(&s->p, line, sizeof(line), GUARD_MS) == 0)
        if (sscanf(line, "ACCEPT 127.0.0.1:%d", &port) == 1)
            break;
    cr_assert(port > 0 && port < 65536, "openssl s_server did not say where it listens");
    return port;
}

/* Append s_server's lines to out until one holds until (NULL: until its stdout ends, at its
 * exit). GUARD_MS only guards against hanging. */
static void sserver_read(sserver_t *s, const char *until, char *out, size_t cap)
{
    size_t n = strlen(out);
    char line[4096];
    while (pskgw_test_read_line(&s->p, line, sizeof(line), GUARD_MS) == 0) {
        int w = snprintf(out + n, cap - n, "%s\n", line);
        if (w > 0 && (size_t)w < cap - n)
            n += (size_t)w;
        if (until != NULL && strstr(line, until) != NULL)
            return;
    }
}

/* Everything s_server printed after ACCEPT into out: up to a line holding until (when not NULL:
 * the last thing the test waits for), then, after SIGTERM, the rest up to its exit. */
static void sserver_stop(sserver_t *s, const char *until, char *out, size_t cap)
{
    out[0] = '\0';
    if (until != NULL)
        sserver_read(s, until, out, cap);
    close(s->in_fd);
    kill(s->p.pid, SIGTERM);
    sserver_read(s, NULL, out, cap);
    cr_expect(pskgw_test_wait(&s->p, GUARD_MS) != -1,
              "openssl s_server still running at the guard deadline");
}

static void device0(char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], char psk_hex[65])
{
    uint8_t psk[32];
    size_t n;
    cr_assert_eq(pskgw_rot_identity_hex(SEED, 0, id), 0);
    cr_assert_eq(pskgw_rot_psk(SEED, 0, 128, psk, sizeof(psk), &n), 0);
    cr_assert_eq(pskgw_hex_encode(psk, n, psk_hex, 65, false), 0);
}

Test(devsim_sserver, one_device_handshakes_and_sends, .init = setup, .fini = teardown)
{
    char id[29], psk[65], tgt[64], out[8192], srv[16384];
    device0(id, psk);
    sserver_t s;
    int port = sserver_start(&s, id, psk);
    target(tgt, sizeof(tgt), port);
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "1", "--messages", "3",
                    "--rate", "50", "--seed", SEED, "--run-id", "0badc0de", "--duration", "20",
                    "--json", path_json, "--quiet", NULL);
    sserver_stop(&s, "0badc0de:0:2;", srv, sizeof(srv));
    cr_assert_eq(rc, 0, "devsim failed:\n%s", out);
    cr_assert(strstr(out, "result               PASS") != NULL, "%s", out);
    /* s_server printed the three messages it decrypted */
    for (int n = 0; n < 3; n++) {
        char head[32];
        snprintf(head, sizeof(head), "0badc0de:0:%d;", n);
        cr_assert(strstr(srv, head) != NULL, "s_server did not get %s:\n%s", head, srv);
    }
    json_t *j = load_json();
    cr_assert_eq(jint(j, "handshakes", "ok"), 1);
    cr_assert_eq(jint(j, "messages", "sent"), 3);
    cr_assert_eq(jint(j, NULL, "errors_total"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(j, "cipher")), "PSK-AES128-CCM8");
    cr_assert(json_is_true(json_object_get(j, "ok")));
    cr_assert(json_array_size(json_object_get(j, "samples")) >= 1);
    json_decref(j);
}

Test(devsim_sserver, wrong_psk_is_an_expected_failure, .init = setup, .fini = teardown)
{
    char id[29], psk[65], tgt[64], out[8192], srv[16384];
    device0(id, psk);
    sserver_t s;
    int port = sserver_start(&s, id, psk);
    target(tgt, sizeof(tgt), port);
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "1", "--messages", "3",
                    "--seed", SEED, "--wrong-psk-share", "1", "--handshake-timeout", "1",
                    "--duration", "20", "--json", path_json, "--quiet", NULL);
    sserver_stop(&s, NULL, srv, sizeof(srv));
    cr_assert_eq(rc, 0, "%s", out);
    json_t *j = load_json();
    cr_assert_eq(jint(j, "handshakes", "ok"), 0);
    cr_assert_eq(jint(j, "expected_failures", "wrong_psk"), 1);
    cr_assert_eq(jint(j, NULL, "errors_total"), 0);
    cr_assert_eq(jint(j, "messages", "sent"), 0);
    json_decref(j);
}

/* ---- devsim_peer: many devices ---- */

Test(devsim_peer, fleet_with_bad_devices_acks_and_verify, .init = setup, .fini = teardown)
{
    pskgw_test_proc_t peer;
    char tgt[64], out[8192];
    target(tgt, sizeof(tgt), peer_start(&peer, "--udp", NULL, true, false));
    int rc =
        devsim(out, sizeof(out), "--target", tgt, "--devices", "20", "--messages", "5", "--rate",
               "50", "--seed", SEED, "--unknown-share", "0.1", "--wrong-psk-share", "0.1",
               "--handshake-timeout", "1", "--expect-ack", "--devices-per-ip", "3", "--duration",
               "20", "--json", path_json, "--verify-file", path_sink, "--quiet", NULL);
    peer_stop(&peer);
    cr_assert_eq(rc, 0, "%s", out);
    json_t *j = load_json();
    cr_assert_eq(jint(j, "devices", "good"), 16);
    cr_assert_eq(jint(j, "devices", "completed"), 16);
    cr_assert_eq(jint(j, "handshakes", "ok"), 16);
    cr_assert_eq(jint(j, "expected_failures", "unknown"), 2);
    cr_assert_eq(jint(j, "expected_failures", "wrong_psk"), 2);
    cr_assert_eq(jint(j, "messages", "sent"), 80);
    cr_assert_eq(jint(j, "messages", "acks"), 80);
    json_t *lat = json_object_get(json_object_get(j, "messages"), "ack_latency_us");
    cr_assert_eq(jint(lat, NULL, "count"), 80);
    cr_assert_eq(jint(j, "verify", "delivered"), 80);
    cr_assert_eq(jint(j, "verify", "missing"), 0);
    cr_assert_eq(jint(j, "verify", "duplicated"), 0);
    cr_assert_eq(jint(j, "verify", "corrupted"), 0);
    cr_assert_eq(jint(j, "verify", "misattributed"), 0);
    cr_assert_eq(jint(j, NULL, "errors_total"), 0);
    json_decref(j);
}

Test(devsim_peer, reconnect_and_nat_rebind, .init = setup, .fini = teardown)
{
    pskgw_test_proc_t peer;
    char tgt[64], out[8192];
    target(tgt, sizeof(tgt), peer_start(&peer, "--udp", NULL, false, false));
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "4", "--messages", "6",
                    "--rate", "100", "--seed", SEED, "--reconnect-every", "2", "--duration", "20",
                    "--json", path_json, "--verify-file", path_sink, "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", out);
    json_t *j = load_json();
    cr_assert_eq(jint(j, "handshakes", "ok"), 12);
    cr_assert_eq(jint(j, "counters", "reconnects"), 8);
    cr_assert_eq(jint(j, "verify", "delivered"), 24);
    json_decref(j);
    rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "4", "--messages", "6", "--rate",
                "100", "--seed", SEED, "--nat-rebind-every", "3", "--duration", "20", "--json",
                path_json, "--verify-file", path_sink, "--quiet", NULL);
    peer_stop(&peer);
    cr_assert_eq(rc, 0, "%s", out);
    j = load_json();
    cr_assert_eq(jint(j, "handshakes", "ok"), 8);
    cr_assert_eq(jint(j, "counters", "rebinds"), 4);
    cr_assert_eq(jint(j, "verify", "delivered"), 24);
    cr_assert_eq(jint(j, "verify", "foreign"), 24); /* the first run's lines, ignored */
    json_decref(j);
}

Test(devsim_peer, e2e_v1_and_v2, .init = setup, .fini = teardown)
{
    pskgw_test_proc_t peer;
    char tgt[64], out[8192];
    target(tgt, sizeof(tgt), peer_start(&peer, "--udp", NULL, false, true));
    const char *versions[] = { "v1", "v2" };
    for (int i = 0; i < 2; i++) {
        int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "3", "--messages", "3",
                        "--rate", "100", "--seed", SEED, "--e2e", versions[i], "--e2e-fresh-ki",
                        "--size", "100", "--duration", "20", "--json", path_json, "--verify-file",
                        path_sink, "--quiet", NULL);
        cr_assert_eq(rc, 0, "%s: %s", versions[i], out);
        json_t *j = load_json();
        cr_assert_eq(jint(j, "verify", "delivered"), 9);
        cr_assert_eq(jint(j, "verify", "e2e_mismatch"), 0);
        /* on the wire: cleartext + KI + tag */
        cr_assert_eq(jint(j, "messages", "bytes"), 9 * (100 + (i == 0 ? 32 : 19)));
        json_decref(j);
    }
    peer_stop(&peer);
}

Test(devsim_peer, tls_over_tcp_each_framing, .init = setup, .fini = teardown)
{
    const char *framings[] = { "len16", "newline", "record" };
    for (int i = 0; i < 3; i++) {
        pskgw_test_proc_t peer;
        char tgt[64], out[8192];
        target(tgt, sizeof(tgt), peer_start(&peer, "--tcp", framings[i], true, false));
        int rc = devsim(out, sizeof(out), "--tcp", tgt, "--framing", framings[i], "--devices", "5",
                        "--messages", "4", "--rate", "100", "--seed", SEED, "--wrong-psk-share",
                        "0.2", "--unknown-share", "0.2", "--handshake-timeout", "2",
                        "--reconnect-every", "2", "--expect-ack", "--duration", "20", "--json",
                        path_json, "--verify-file", path_sink, "--quiet", NULL);
        peer_stop(&peer);
        cr_assert_eq(rc, 0, "%s: %s", framings[i], out);
        json_t *j = load_json();
        cr_assert_str_eq(json_string_value(json_object_get(j, "transport")), "tls");
        cr_assert_eq(jint(j, "verify", "delivered"), 12, "%s", framings[i]);
        cr_assert_eq(jint(j, "messages", "acks"), 12);
        cr_assert_eq(jint(j, "expected_failures", "total"), 2);
        cr_assert_eq(jint(j, "handshakes", "ok"), 6);
        json_decref(j);
    }
}

Test(devsim_peer, ramp_hold_and_handshake_per_message, .init = setup, .fini = teardown)
{
    pskgw_test_proc_t peer;
    char tgt[64], out[8192];
    target(tgt, sizeof(tgt), peer_start(&peer, "--udp", NULL, false, false));
    /* 10 devices at 20/s: the last starts 0.45 s after the first; each holds its session 0.3 s */
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "10", "--ramp", "20",
                    "--messages", "2", "--rate", "100", "--handshake-per-message", "--hold", "0.3",
                    "--seed", SEED, "--duration", "20", "--json", path_json, "--verify-file",
                    path_sink, "--quiet", NULL);
    peer_stop(&peer);
    cr_assert_eq(rc, 0, "%s", out);
    json_t *j = load_json();
    double el = json_real_value(json_object_get(j, "elapsed_s"));
    /* a lower bound (devsim's own clock: its timers never fire early; load only adds) */
    cr_assert(el >= 0.7, "elapsed %.2f: ramp and hold not applied", el);
    cr_assert_eq(jint(j, "handshakes", "ok"), 20);
    cr_assert_eq(jint(j, "counters", "reconnects"), 10);
    cr_assert_eq(jint(j, "verify", "delivered"), 20);
    json_decref(j);
}

Test(devsim_peer, idle_devices_handshake_again_after_the_gateway_closed, .init = setup,
     .fini = teardown)
{
    pskgw_test_proc_t peer;
    char tgt[64], out[8192];
    /* the peer closes sessions idle for 0.3 s; idle devices send every 0.8 s */
    target(tgt, sizeof(tgt), peer_start_ex(&peer, "--udp", NULL, false, false, "0.3"));
    int rc =
        devsim(out, sizeof(out), "--target", tgt, "--devices", "4", "--messages", "3", "--rate",
               "100", "--idle-interval", "0.8", "--idle-share", "0.5", "--seed", SEED, "--duration",
               "20", "--json", path_json, "--verify-file", path_sink, "--quiet", NULL);
    peer_stop(&peer);
    cr_assert_eq(rc, 0, "%s", out);
    json_t *j = load_json();
    cr_assert_eq(jint(j, "devices", "idle"), 2);
    cr_assert_eq(jint(j, "verify", "delivered"), 12);
    /* each idle device: closed twice by the peer, three handshakes */
    cr_assert_eq(jint(j, "counters", "peer_closes"), 4);
    cr_assert_eq(jint(j, "handshakes", "ok"), 2 + 2 * 3);
    cr_assert(json_real_value(json_object_get(j, "elapsed_s")) >= 1.6);
    json_decref(j);
}

/* ---- bounds ---- */

Test(devsim_bounds, duration_caps_a_run_that_cannot_finish, .init = setup, .fini = teardown)
{
    pskgw_test_proc_t peer;
    char tgt[64], out[8192];
    target(tgt, sizeof(tgt), peer_start(&peer, "--udp", NULL, false, false));
    /* 1000 messages at 2/s would take 500 s: --duration stops it at 1.5 s (a run that ignored
     * it would outlast devsim()'s guards and be killed: rc -1) */
    int rc =
        devsim(out, sizeof(out), "--target", tgt, "--devices", "3", "--messages", "1000", "--rate",
               "2", "--seed", SEED, "--duration", "1.5", "--json", path_json, "--quiet", NULL);
    peer_stop(&peer);
    cr_assert_eq(rc, 1, "%s", out);
    json_t *j = load_json();
    cr_assert_eq(jint(j, "errors", "unfinished"), 3);
    cr_assert(json_is_false(json_object_get(j, "ok")));
    cr_assert_eq(jint(j, NULL, "exit_status"), 1);
    double el = json_real_value(json_object_get(j, "elapsed_s"));
    cr_assert(el >= 1.4, "elapsed %.2f: stopped before --duration", el);
    json_decref(j);
}

Test(devsim_bounds, sigterm_ends_the_run_with_a_summary, .init = setup, .fini = teardown)
{
    pskgw_test_proc_t peer, ds;
    char tgt[64];
    target(tgt, sizeof(tgt), peer_start(&peer, "--udp", NULL, false, false));
    char *argv[] = { NULL,   "--target", tgt,       "--devices", "2",  "--messages",
                     "1000", "--rate",   "5",       "--seed",    SEED, "--duration",
                     "60",   "--json",   path_json, "--quiet",   NULL };
    static char bin[4096];
    snprintf(bin, sizeof(bin), "%s", pskgw_test_bin("pskgw-devsim"));
    argv[0] = bin;
    cr_assert_eq(pskgw_test_spawn_logged(&ds, argv, 1, devsim_err), 0);
    /* wait until the devices are sending: the peer's sink file (opened before it said PORT) gets
     * its first line, a JSON object */
    cr_assert_eq(pskgw_test_wait_log(path_sink, "{", ds.pid, NULL, 0, GUARD_MS), 0,
                 "no message reached the peer");
    char why[256];
    /* exit 1: interrupted before every device finished */
    cr_assert_eq(
        pskgw_test_stop_checked(&ds, "pskgw-devsim", 1, devsim_err, GUARD_MS, why, sizeof(why)), 0,
        "%s", why);
    peer_stop(&peer);
    json_t *j = load_json();
    cr_assert(json_is_true(json_object_get(j, "interrupted")));
    cr_assert_eq(jint(j, "errors", "unfinished"), 2);
    cr_assert(jint(j, "messages", "sent") >= 1);
    json_decref(j);
}

Test(devsim_bounds, nobody_listening_fails_by_timeout, .init = setup, .fini = teardown)
{
    char tgt[64], out[8192];
    int port = 0;
    int hold = pskgw_test_reserve_port(1, &port); /* bound, never read: nobody answers */
    cr_assert_geq(hold, 0);
    target(tgt, sizeof(tgt), port);
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "2", "--seed", SEED,
                    "--handshake-timeout", "0.5", "--duration", "10", "--json", path_json,
                    "--quiet", NULL);
    close(hold);
    cr_assert_eq(rc, 1, "%s", out);
    json_t *j = load_json();
    cr_assert_eq(jint(j, "errors", "hs_timeout"), 2);
    json_decref(j);
}

Test(devsim_cli, help_usage_and_refusals, .init = setup, .fini = teardown)
{
    char out[16384];
    cr_assert_eq(devsim(out, sizeof(out), "--help", NULL), 0);
    const char *flags[] = { "--target",
                            "--tcp",
                            "--framing",
                            "--devices",
                            "--ramp",
                            "--messages",
                            "--rate",
                            "--size",
                            "--e2e",
                            "--e2e-fresh-ki",
                            "--reconnect-every",
                            "--handshake-per-message",
                            "--nat-rebind-every",
                            "--idle-interval",
                            "--idle-share",
                            "--unknown-share",
                            "--wrong-psk-share",
                            "--unknown-index-base",
                            "--seed",
                            "--psk-bits",
                            "--cipher",
                            "--mtu",
                            "--devices-per-ip",
                            "--duration",
                            "--handshake-timeout",
                            "--expect-ack",
                            "--ack-timeout",
                            "--hold",
                            "--json",
                            "--verify-file",
                            "--verify-timeout",
                            "--run-id",
                            "--progress-interval",
                            "--quiet",
                            "--version",
                            "Exit status" };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        cr_expect(strstr(out, flags[i]) != NULL, "--help does not mention %s", flags[i]);
    cr_assert_eq(devsim(out, sizeof(out), "--target", "10.0.0.1:5684", NULL), 2);
    cr_assert_eq(devsim(out, sizeof(out), "--devices", "5", NULL), 2);
    cr_assert_eq(devsim(out, sizeof(out), "--target", "127.0.0.1:5684", "--cipher",
                        "NO-SUCH-CIPHER", "--duration", "1", NULL),
                 2);
}

/* --verify-file on a hand-made file: the run sends 3 messages; the file holds one of them once,
 * one twice, and not the third. */
Test(devsim_verify, hand_made_file_missing_and_duplicate, .init = setup, .fini = teardown)
{
    FILE *f = fopen(path_hand, "w");
    cr_assert_not_null(f);
    char id[29];
    cr_assert_eq(pskgw_rot_identity_hex(SEED, 0, id), 0);
    const int msgs[] = { 0, 1, 1 };
    for (int i = 0; i < 3; i++) {
        uint8_t pl[40];
        char b64[64];
        cr_assert_eq(pskgw_devsim_payload_make(0x0badc0de, 0, (uint32_t)msgs[i], 40, pl, 40), 0);
        cr_assert_eq(pskgw_b64_encode(pl, 40, b64, sizeof(b64)), 0);
        fprintf(
            f,
            "{\"message_id\":\"m%d\",\"domain\":\"d\",\"listener\":\"l\",\"transport\":"
            "\"dtls\",\"peer\":\"127.1.0.1:4000\",\"psk_identity\":\"%s\","
            "\"rot_public_uid\":\"0002\",\"session_id\":1,\"seq\":%d,\"received_at\":"
            "\"2026-11-21T00:00:00.000Z\",\"payload\":\"%s\",\"payload_len\":40,\"e2e\":null}\n",
            i, id, i, b64);
    }
    fclose(f);
    pskgw_test_proc_t peer;
    char tgt[64], out[8192];
    target(tgt, sizeof(tgt), peer_start(&peer, "--udp", NULL, false, false));
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "1", "--messages", "3",
                    "--rate", "100", "--size", "40", "--seed", SEED, "--run-id", "0badc0de",
                    "--duration", "20", "--verify-file", path_hand, "--verify-timeout", "0.3",
                    "--json", path_json, "--quiet", NULL);
    peer_stop(&peer);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "missing 1, duplicated 1") != NULL, "%s", out);
    json_t *j = load_json();
    cr_assert_eq(jint(j, "verify", "expected"), 3);
    cr_assert_eq(jint(j, "verify", "delivered"), 2);
    cr_assert_eq(jint(j, "verify", "missing"), 1);
    cr_assert_eq(jint(j, "verify", "duplicated"), 1);
    cr_assert_eq(jint(j, NULL, "errors_total"), 0); /* the devices themselves did fine */
    json_decref(j);
}
