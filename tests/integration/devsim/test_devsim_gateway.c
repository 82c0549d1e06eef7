/* pskgw-devsim against the real chain: pskgw-sim <- pskgw (wolfSSL) <- pskgw-devsim (OpenSSL).
 * A file sink is verified with --verify-file: every message of every good device delivered once,
 * unchanged, with the right identity, E2E decrypted. Fails when pskgw or pskgw-sim is not built
 * (they are part of the build the suite runs in: a missing one is a broken build, not a skip).
 * (The lead's demo/bench end-to-end tests are elsewhere; this one proves the simulator's interop.)
 * pskgw listens on port 0 and the test reads its ports back from its log (it binds with
 * SO_REUSEPORT, so a port picked beforehand could be shared with another test's gateway). Every
 * process is judged by how it ended: exit status 0 and no sanitizer report in its stderr.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "proc.h"
#include "tools/rotkeys/rotkeys.h"

#define SEED "devsim-gateway-seed"

#define GUARD_MS 60000 /* a guard against hanging only, never a statement about speed */

static chain_t ch = CHAIN_INIT;

static void start_chain(void)
{
    chain_start_sim(&ch, "devsim.conf", SEED, NULL);
    FILE *f = fopen(ch.conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "domain = \"devsim\";\n"
            "api = { url = \"%s\"; key_id = \"k\"; secret_file = \"%s\"; psk_key_bits = 128;\n"
            "        timeout_ms = 3000; };\n"
            "listeners = (\n"
            "  { proto = \"udp\"; address = \"127.0.0.1\"; port = 0; },\n"
            "  { proto = \"tcp\"; address = \"127.0.0.1\"; port = 0; framing = \"len16\"; }\n"
            ");\n"
            "ciphers = \"PSK-AES128-CCM8:PSK-AES128-GCM-SHA256\";\n"
            "cache = { entries = 1000; ttl_s = 3600; negative_ttl_s = 60; stale_s = 86400; };\n"
            "e2e = \"auto\";\n"
            "sinks = ( { type = \"file\"; path = \"%s\"; } );\n"
            "limits = { max_sessions = 1000; max_pending_handshakes = 1000;\n"
            "           handshake_timeout_ms = 10000; idle_timeout_s = 1; };\n",
            ch.sim_url, ch.secret, ch.sink);
    fclose(f);
    chain_start_gw(&ch, 0);
}

static void fini_chain(void)
{
    chain_fini(&ch);
}

static int devsim(char *out, size_t cap, ...)
{
    pskgw_test_proc_t p;
    va_list ap;

    va_start(ap, cap);
    chain_devsim_spawn(&p, ch.devsim_err, ap);
    va_end(ap);
    return chain_devsim_finish(&p, ch.devsim_err, out, cap, GUARD_MS, 0);
}

static json_int_t jint(json_t *root, const char *obj, const char *key)
{
    json_t *v = json_object_get(json_object_get(root, obj), key);
    cr_assert(json_is_integer(v), "%s.%s missing", obj, key);
    return json_integer_value(v);
}

TestSuite(devsim_gateway, .init = start_chain, .fini = fini_chain, .timeout = 100);

Test(devsim_gateway, dtls_fleet_e2e_and_bad_devices_verified)
{
    char tgt[64], out[8192];
    snprintf(tgt, sizeof(tgt), "127.0.0.1:%d", ch.udp_port);
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "30", "--messages", "4",
                    "--rate", "20", "--seed", SEED, "--e2e", "v1", "--size", "80",
                    "--unknown-share", "0.1", "--wrong-psk-share", "0.1", "--handshake-timeout",
                    "3", "--reconnect-every", "2", "--duration", "40", "--verify-file", ch.sink,
                    "--json", ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", out);
    json_error_t e;
    json_t *j = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(j);
    cr_assert_eq(jint(j, "devices", "completed"), 24);
    cr_assert_eq(jint(j, "expected_failures", "total"), 6);
    cr_assert_eq(jint(j, "handshakes", "ok"), 48);
    cr_assert_eq(jint(j, "verify", "delivered"), 96);
    cr_assert_eq(jint(j, "verify", "e2e_mismatch"), 0);
    json_decref(j);
    chain_stop(&ch);
}

Test(devsim_gateway, tls_len16_and_nat_rebinding)
{
    char tgt[64], out[8192];
    snprintf(tgt, sizeof(tgt), "127.0.0.1:%d", ch.tcp_port);
    int rc = devsim(out, sizeof(out), "--tcp", tgt, "--framing", "len16", "--devices", "5",
                    "--messages", "4", "--rate", "20", "--seed", SEED, "--duration", "40",
                    "--verify-file", ch.sink, "--json", ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", out);
    snprintf(tgt, sizeof(tgt), "127.0.0.1:%d", ch.udp_port);
    rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "5", "--messages", "4", "--rate",
                "20", "--seed", SEED, "--nat-rebind-every", "2", "--duration", "40",
                "--verify-file", ch.sink, "--json", ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", out);
    json_error_t e;
    json_t *j = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(j);
    cr_assert_eq(jint(j, "counters", "rebinds"), 5);
    cr_assert_eq(jint(j, "verify", "delivered"), 20);
    json_decref(j);
    chain_stop(&ch);
}

/* pskgw closes sessions idle for 1 s (close_notify): idle devices handshake again, lose nothing. */
Test(devsim_gateway, idle_devices_after_the_idle_timeout)
{
    char tgt[64], out[8192];
    snprintf(tgt, sizeof(tgt), "127.0.0.1:%d", ch.udp_port);
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "3", "--messages", "2",
                    "--idle-interval", "1.8", "--seed", SEED, "--duration", "40", "--verify-file",
                    ch.sink, "--json", ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", out);
    json_error_t e;
    json_t *j = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(j);
    cr_assert_eq(jint(j, "counters", "peer_closes"), 3);
    cr_assert_eq(jint(j, "handshakes", "ok"), 6);
    cr_assert_eq(jint(j, "verify", "delivered"), 6);
    json_decref(j);
    chain_stop(&ch);
}

/* --first-device 7: the run's devices 0..2 are devices 7..9 of the fleet: their identities (the
 * gateway's GetPSK answers them), E2E keys (the gateway decrypts with device 7 + i's parameters)
 * and source addresses (127.1.0.8 ..). Two processes can so play two halves of one fleet. */
Test(devsim_gateway, first_device_shifts_identity_keys_and_source)
{
    char tgt[64], out[8192];
    snprintf(tgt, sizeof(tgt), "127.0.0.1:%d", ch.udp_port);
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "3", "--first-device", "7",
                    "--messages", "1", "--e2e", "v1", "--seed", SEED, "--duration", "40", "--json",
                    ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", out);
    json_error_t e;
    json_t *j = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(j);
    cr_assert_eq(jint(j, "handshakes", "ok"), 3);
    cr_assert_eq(jint(j, "config", "first_device"), 7);
    json_decref(j);
    unsigned seen = 0;                                        /* bit d - 7 for device d */
    for (int tries = 0; tries < 200 && seen != 7u; tries++) { /* the sink writes asynchronously */
        FILE *f = fopen(ch.sink, "r");
        char line[4096];
        seen = 0;
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            json_t *o = json_loads(line, 0, &e);
            cr_assert_not_null(o, "%s", line);
            const char *id = json_string_value(json_object_get(o, "psk_identity"));
            const char *peer = json_string_value(json_object_get(o, "peer"));
            pskgw_rot_id_info_t idi;
            cr_assert(id != NULL && peer != NULL);
            cr_assert_eq(pskgw_rot_identity_resolve_hex(SEED, id, strlen(id), &idi), 0, "%s", id);
            cr_assert(idi.device >= 7 && idi.device <= 9, "device %u", idi.device);
            char want[32];
            snprintf(want, sizeof(want), "127.1.0.%u:", idi.device + 1);
            cr_assert(strncmp(peer, want, strlen(want)) == 0, "device %u from %s", idi.device,
                      peer);
            cr_assert(json_is_object(json_object_get(o, "e2e")), "%s", line);
            seen |= 1u << (idi.device - 7);
            json_decref(o);
        }
        if (f != NULL)
            fclose(f);
        if (seen != 7u) { /* poll the file again: the deadline only guards against hanging */
            struct timespec ts = { 0, 50 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    cr_assert_eq(seen, 7u, "devices 7..9 not all in the sink (seen %#x)", seen);
}

static void devsim_spawn(pskgw_test_proc_t *p, ...)
{
    va_list ap;

    va_start(ap, p);
    chain_devsim_spawn(p, ch.devsim_err, ap);
    va_end(ap);
}

/* Whether process pid has exited (a zombie not yet reaped, or gone). */
static bool exited(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren == NULL || paren[1] == '\0' || paren[2] == 'Z' || paren[2] == 'X';
}

/* Waits until path exists (the devsim writes it whole, by rename); false when the process
 * ended without it, or at the guard (against hanging only). */
static bool wait_file(const char *path, const pskgw_test_proc_t *p)
{
    for (int i = 0; i < GUARD_MS / 10; i++) {
        if (access(path, F_OK) == 0)
            return true;
        if (exited(p->pid))
            return access(path, F_OK) == 0;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return false;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* --preencrypt: every device handshakes, makes its 40 E2E V1 records ahead of time and waits
 * for the start file; nothing reaches the gateway before it; then every record is delivered
 * once and unchanged (the gateway decrypted them as any other), and the JSON says what making
 * and sending them cost. */
Test(devsim_gateway, preencrypt_records_wait_for_the_start_and_are_delivered_once)
{
    char tgt[64], out[8192], ready[600], start[600];
    snprintf(tgt, sizeof(tgt), "127.0.0.1:%d", ch.udp_port);
    snprintf(ready, sizeof(ready), "%s/ready", ch.dir);
    snprintf(start, sizeof(start), "%s/start", ch.dir);
    pskgw_test_proc_t p;
    devsim_spawn(&p, "--target", tgt, "--devices", "12", "--messages", "40", "--rate", "2000",
                 "--seed", SEED, "--e2e", "v1", "--size", "64", "--preencrypt", "--ready-file",
                 ready, "--start-file", start, "--duration", "40", "--verify-file", ch.sink,
                 "--json", ch.json_path, "--quiet", NULL);
    cr_assert(wait_file(ready, &p), "no ready file");
    /* Ready: every device has its session (the sink sees nothing of a handshake) and all its
     * records; none was sent. */
    cr_assert_eq(file_size(ch.sink), 0, "records sent before the start file");
    FILE *f = fopen(start, "w");
    cr_assert_not_null(f);
    fclose(f);
    int rc = chain_devsim_finish(&p, ch.devsim_err, out, sizeof(out), GUARD_MS, 0);
    cr_assert_eq(rc, 0, "%s", out);
    json_error_t e;
    json_t *j = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(j);
    cr_assert_eq(jint(j, "handshakes", "ok"), 12);
    cr_assert_eq(jint(j, "replay", "devices_ready"), 12);
    cr_assert_eq(jint(j, "replay", "records"), 480);
    cr_assert_eq(jint(j, "replay", "sent"), 480);
    cr_assert_eq(jint(j, "replay", "damaged"), 0);
    cr_assert_eq(jint(j, "messages", "sent"), 480);
    cr_assert_eq(jint(j, "verify", "delivered"), 480);
    cr_assert_eq(jint(j, "verify", "duplicated"), 0);
    cr_assert_eq(jint(j, "verify", "corrupted"), 0);
    cr_assert_eq(jint(j, "verify", "e2e_mismatch"), 0);
    json_t *cpu = json_object_get(json_object_get(j, "replay"), "cpu_us_per_message");
    cr_assert(json_is_number(cpu) && json_number_value(cpu) > 0, "replay.cpu_us_per_message");
    json_decref(j);
    chain_stop(&ch);
}

/* One record damaged in flight (a bit of its tag flipped after encryption): the gateway drops
 * it, the verifier counts it missing and the run fails; the other records are delivered. */
Test(devsim_gateway, preencrypt_damaged_record_is_an_error_not_delivered)
{
    char tgt[64], out[8192];
    snprintf(tgt, sizeof(tgt), "127.0.0.1:%d", ch.udp_port);
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "5", "--messages", "20",
                    "--rate", "500", "--seed", SEED, "--preencrypt", "--replay-damage", "3:7",
                    "--duration", "40", "--verify-file", ch.sink, "--verify-timeout", "3", "--json",
                    ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 1, "%s", out);
    json_error_t e;
    json_t *j = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(j);
    cr_assert_eq(jint(j, "replay", "damaged"), 1);
    cr_assert_eq(jint(j, "replay", "sent"), 100);
    cr_assert_eq(jint(j, "verify", "missing"), 1);
    cr_assert_eq(jint(j, "verify", "delivered"), 99);
    cr_assert_eq(jint(j, "verify", "corrupted"), 0);
    json_decref(j);
    chain_stop(&ch);
}
