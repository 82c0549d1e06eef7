/* pskgw-devsim's hostile scenarios (--attack) against the real chain pskgw-sim <- pskgw, on
 * loopback: each scenario does what it says, counted where it lands (pskgw's /metrics, pskgw-sim's
 * /_sim/stats, the answers the gateway sent to each source), is bounded, and refuses addresses
 * outside loopback. Counts and outcomes only, never elapsed time; waits are on events (a counter
 * reaching a value, end of output) with generous deadlines that only guard against hanging.
 *
 * What the gateway should do about each attack (issue 16, being added by others) is not asserted
 * here: only what the attack does, so that these tests hold for today's gateway and tomorrow's.
 * Each test starts its own simulator and gateway (fresh cache, fresh counters). pskgw binds port
 * 0 and the test reads its ports back from its log; every process is stopped with SIGTERM and
 * judged inside the test (exit status, no sanitizer report in its captured stderr).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "proc.h"
#include "tools/rotkeys/rotkeys.h"

#define SEED     "devsim-hostile-seed"
#define GUARD_MS 60000 /* a guard against hanging, never a measurement */

static chain_t ch = CHAIN_INIT;
static char ids_path[512];
static char tgt[64];

static void write_conf(const char *url)
{
    FILE *f = fopen(ch.conf, "w");
    cr_assert_not_null(f);
    /* Long API timeouts (no retry on a loaded machine changes the simulator's counts); acks on
     * the UDP listener so that the replay's victim can tell whether its session survived. */
    fprintf(f,
            "domain = \"hostile\";\n"
            "api = { url = \"%s\"; key_id = \"k\"; secret_file = \"%s\"; psk_key_bits = 128;\n"
            "        timeout_ms = 30000; deadline_ms = 60000; };\n"
            "listeners = (\n"
            "  { name = \"udp\"; proto = \"udp\"; address = \"127.0.0.1\"; port = 0;\n"
            "    ack = \"accepted\"; },\n"
            "  { proto = \"tcp\"; address = \"127.0.0.1\"; port = 0; framing = \"len16\"; }\n"
            ");\n"
            "cache = { entries = 1000; ttl_s = 3600; negative_ttl_s = 60; stale_s = 86400; };\n"
            "sinks = ( { type = \"file\"; path = \"%s\"; } );\n"
            "limits = { max_sessions = 1000; max_pending_handshakes = 1000;\n"
            "           handshake_timeout_ms = 30000; };\n"
            "admin = { address = \"127.0.0.1\"; port = 0; };\n",
            url, ch.secret, ch.sink);
    fclose(f);
}

static void start_chain(void)
{
    chain_start_sim(&ch, "hostile.conf", SEED, NULL);
    snprintf(ids_path, sizeof(ids_path), "%s/ids.txt", ch.dir);
    write_conf(ch.sim_url);
    chain_start_gw(&ch, 1);
    snprintf(tgt, sizeof(tgt), "127.0.0.1:%d", ch.udp_port);
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
    return chain_devsim_finish(&p, ch.devsim_err, out, cap, 120000, 1);
}

/* A counter of the UDP listener in pskgw's /metrics, or -1 when absent. */
static long long gw_metric(const char *family)
{
    /* the listener is named in the configuration: its default name holds the port (0) */
    return chain_udp_metric(ch.admin_port, "hostile", family);
}

static void pause_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Wait until the gateway's counter reaches at least `want`; returns the last value read. */
static long long wait_metric(const char *family, long long want)
{
    return chain_wait_udp_metric(ch.admin_port, "hostile", family, want);
}

static json_t *attack_of(json_t **root)
{
    json_error_t e;
    *root = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(*root, "%s", e.text);
    json_t *a = json_object_get(*root, "attack");
    cr_assert(json_is_object(a), "no attack object");
    return a;
}

static json_int_t ji(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "%s missing", key);
    return json_integer_value(v);
}

/* GetPSK calls pskgw-sim saw for one identity (its by_identity counts KeyIDs, upper-case hex). */
static json_int_t sim_calls_for(json_t *stats, const char *identity)
{
    json_t *v = json_object_get(json_object_get(stats, "by_identity"), identity);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* The identities a cke-flood wrote, checked to be module-shaped and distinct. */
static size_t read_identities(char ids[][32], size_t cap)
{
    FILE *f = fopen(ids_path, "r");
    cr_assert_not_null(f, "no --attack-identities file");
    size_t n = 0;
    char line[128];
    while (n < cap && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        cr_assert_eq(strlen(line), 28, "not 28 characters: '%s'", line);
        cr_assert_eq(strncmp(line, "1101", 4), 0, "not module-shaped: '%s'", line);
        for (size_t i = 0; i < 28; i++)
            cr_assert(isxdigit((unsigned char)line[i]) && !islower((unsigned char)line[i]));
        for (size_t k = 0; k < n; k++)
            cr_assert_str_neq(ids[k], line, "identity sent twice");
        snprintf(ids[n++], 32, "%.28s", line);
    }
    fclose(f);
    return n;
}

TestSuite(devsim_hostile, .init = start_chain, .fini = fini_chain, .timeout = 200);

/* Every ClientKeyExchange of the flood carries a fresh module-shaped identity, reaches the gateway
 * after a real cookie exchange, and costs it one GetPSK at the service. One attempt per source,
 * so that per-source bounds (coming) do not change what this test counts. */
Test(devsim_hostile, cke_flood_costs_a_getpsk_per_fresh_identity)
{
    char out[16384];
    int rc = devsim(out, sizeof(out), "--target", tgt, "--seed", SEED, "--attack", "cke-flood",
                    "--attack-count", "30", "--attack-sources", "30", "--attack-rate", "20",
                    "--attack-timeout", "30", "--attack-identities", ids_path, "--duration", "150",
                    "--json", ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "attack               cke-flood: 30 / 30 attempts") != NULL, "%s", out);
    json_t *root, *a = attack_of(&root);
    cr_assert(json_is_true(json_object_get(a, "done")));
    cr_assert_eq(ji(a, "attempts"), 30);
    cr_assert_eq(ji(a, "sources_used"), 30);
    cr_assert_eq(ji(a, "cookie_exchanges"), 30);
    cr_assert_eq(ji(a, "server_flights"), 30);
    cr_assert_eq(ji(a, "sources_answered"), 30);
    cr_assert_eq(ji(a, "ckes_sent"), 30);
    cr_assert_eq(ji(a, "accepted"), 0);
    json_decref(root);

    static char ids[64][32];
    cr_assert_eq(read_identities(ids, 64), 30);
    /* The gateway created a session for each verified cookie, and asked the service about each
     * identity exactly once. */
    cr_assert_geq(wait_metric("pskgw_listener_cookie_verified_total", 30), 30);
    json_int_t total = 0;
    for (int i = 0; i < GUARD_MS / 100 && total < 30; i++) {
        json_t *s = chain_sim_stats(&ch);
        total = 0;
        for (size_t k = 0; k < 30; k++)
            total += sim_calls_for(s, ids[k]);
        json_decref(s);
        if (total < 30)
            pause_ms(100);
    }
    cr_assert_eq(total, 30, "GetPSK calls for the flood's identities");
    json_t *s = chain_sim_stats(&ch);
    for (size_t k = 0; k < 30; k++)
        cr_assert_eq(sim_calls_for(s, ids[k]), 1, "identity %s", ids[k]);
    json_decref(s);
    chain_stop(&ch);
}

/* The legitimate fleet runs in the same process as the flood; its handshakes are reported (p50,
 * p99, failures) next to the attack's counts, in the text and the JSON. */
Test(devsim_hostile, fleet_alongside_a_flood_reports_its_handshakes)
{
    char out[16384];
    (void)devsim(out, sizeof(out), "--target", tgt, "--seed", SEED, "--devices", "10", "--messages",
                 "1", "--handshake-timeout", "60", "--attack", "cke-flood", "--attack-count", "40",
                 "--attack-sources", "10", "--attack-rate", "40", "--attack-timeout", "30",
                 "--duration", "150", "--json", ch.json_path, "--quiet", NULL);
    cr_assert(strstr(out, "handshake latency    p50 ") != NULL, "%s", out);
    cr_assert(strstr(out, "attack outcome       cookie exchanges 40") != NULL, "%s", out);
    json_t *root, *a = attack_of(&root);
    cr_assert_eq(ji(a, "ckes_sent"), 40);
    json_t *hs = json_object_get(root, "handshakes");
    cr_assert_eq(ji(hs, "started"), 10);
    cr_assert_eq(ji(hs, "ok") + ji(hs, "failed"), 10, "every fleet handshake ended one way");
    json_t *lat = json_object_get(hs, "latency_us");
    if (ji(hs, "ok") > 0) {
        cr_assert_eq(ji(lat, "count"), ji(hs, "ok"));
        cr_assert_geq(ji(lat, "p99"), ji(lat, "p50"));
    }
    json_decref(root);
    chain_stop(&ch);
}

/* Wrong-key handshakes with a victim's identity: each reaches the key check (the gateway looks the
 * victim's identity up and counts an authentication failure) and none gets through. Three: fewer
 * than any lockout or throttle threshold of the gateway, so each one is judged on its key. */
Test(devsim_hostile, wrong_key_attempts_on_a_victim_are_refused)
{
    char out[16384];
    int rc = devsim(out, sizeof(out), "--target", tgt, "--seed", SEED, "--attack", "wrong-key",
                    "--attack-count", "3", "--attack-victim", "11", "--attack-source", "127.0.0.2",
                    "--attack-rate", "10", "--attack-timeout", "5", "--duration", "150", "--json",
                    ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", out);
    json_t *root, *a = attack_of(&root);
    cr_assert_eq(ji(a, "attempts"), 3);
    cr_assert_eq(ji(a, "accepted"), 0);
    cr_assert_eq(ji(a, "refused") + ji(a, "timeouts"), 3);
    cr_assert_str_eq(json_string_value(json_object_get(a, "source_base")), "127.0.0.2");
    json_decref(root);
    cr_assert_geq(wait_metric("pskgw_listener_auth_failures_total", 3), 3);
    cr_assert_eq(gw_metric("pskgw_listener_handshakes_completed_total"), 0);
    char victim[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    cr_assert_eq(pskgw_rot_identity_hex(SEED, 11, victim), 0);
    json_t *s = chain_sim_stats(&ch);
    cr_assert_geq(sim_calls_for(s, victim), 1, "the victim's identity was looked up");
    json_decref(s);
    chain_stop(&ch);
}

/* 100 wrong-key handshakes with device 0's identity from 127.0.0.2 throttle that source only:
 * device 0 then connects at once from its own address (127.1.0.1). With an identity-wide block
 * (five failures from anywhere blocked the identity for 300 s) the device was locked out. */
Test(devsim_hostile, wrong_keys_from_one_source_never_lock_the_victim_out)
{
    char out[16384];
    int rc = devsim(out, sizeof(out), "--target", tgt, "--seed", SEED, "--devices", "0", "--attack",
                    "wrong-key", "--attack-count", "100", "--attack-victim", "0", "--attack-source",
                    "127.0.0.2", "--attack-rate", "200", "--attack-timeout", "5", "--duration",
                    "150", "--json", ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", out);
    json_t *root, *a = attack_of(&root);
    cr_assert_eq(ji(a, "attempts"), 100);
    cr_assert_eq(ji(a, "accepted"), 0);
    json_decref(root);
    cr_assert_geq(wait_metric("pskgw_listener_auth_failures_total", 5), 5);

    rc = devsim(out, sizeof(out), "--target", tgt, "--seed", SEED, "--devices", "1", "--messages",
                "1", "--rate", "10", "--handshake-timeout", "60", "--duration", "150", "--json",
                ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 0, "the victim could not connect: %s", out);
    json_error_t e;
    root = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(root, "%s", e.text);
    json_t *hs = json_object_get(root, "handshakes");
    cr_assert_eq(ji(hs, "ok"), 1, "%s", out);
    cr_assert_eq(ji(hs, "failed"), 0, "%s", out);
    json_decref(root);
    chain_stop(&ch);
}

/* The victim device handshakes, ends that session, handshakes again from the same address and
 * port; the first session's ClientHello (with its cookie) is then replayed from there. The
 * gateway answers the replay; the victim learns (acks) whether its session survived. */
Test(devsim_hostile, replay_of_an_earlier_hello_from_the_same_address_and_port)
{
    char out[16384];
    (void)devsim(out, sizeof(out), "--target", tgt, "--seed", SEED, "--attack", "replay",
                 "--attack-victim", "12", "--attack-delay", "0.2", "--attack-timeout", "15",
                 "--duration", "150", "--json", ch.json_path, "--quiet", NULL);
    cr_assert(strstr(out, "session survived the replay: ") != NULL, "%s", out);
    json_t *root, *a = attack_of(&root);
    json_t *r = json_object_get(a, "replay");
    cr_assert(json_is_object(r), "%s", out);
    cr_assert_eq(ji(r, "victim_handshakes"), 2, "%s", out);
    cr_assert_eq(ji(r, "replays_sent"), 1);
    cr_assert_geq(ji(r, "victim_acks"), 1, "the message before the replay was acknowledged");
    cr_assert_geq(ji(r, "answer_hello_verify") + ji(r, "answer_server_hello") +
                      ji(r, "answer_alert"),
                  1, "the gateway answered the replayed hello: %s", out);
    /* An established session is replaced only by a handshake that completes (RFC 6347 4.2.8):
     * the replayed hello, whose sender has no key, leaves the victim's session working. */
    cr_assert(json_is_true(json_object_get(r, "victim_survived")), "%s", out);
    cr_assert(json_is_true(json_object_get(a, "done")));
    json_decref(root);
    cr_assert_geq(wait_metric("pskgw_listener_handshakes_completed_total", 2), 2);
    chain_stop(&ch);
}

/* Half-open handshakes from 8 source addresses, held: the gateway answers every source and holds
 * every session; SIGTERM ends the run early with the summary. */
Test(devsim_hostile, fill_holds_half_open_sessions_from_distinct_sources)
{
    pskgw_test_proc_t p;
    const char *args[] = { "--target",         tgt,    "--seed",          SEED,
                           "--attack",         "fill", "--attack-count",  "24",
                           "--attack-sources", "8",    "--attack-source", "127.3.0.1",
                           "--attack-hold",    "600",  "--attack-rate",   "50",
                           "--duration",       "600",  "--json",          ch.json_path,
                           "--quiet" };
    char *argv[64];
    int argc = 0;
    static char bin[4096];
    snprintf(bin, sizeof(bin), "%s", pskgw_test_bin("pskgw-devsim"));
    argv[argc++] = bin;
    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    cr_assert_eq(pskgw_test_spawn_logged(&p, argv, 1, ch.devsim_err), 0);
    long long held = wait_metric("pskgw_listener_sessions_active", 24);
    kill(p.pid, SIGTERM);
    char out[16384];
    int rc = chain_devsim_finish(&p, ch.devsim_err, out, sizeof(out), 120000, 1);
    cr_assert_geq(held, 24, "the gateway holds the half-open sessions (%lld)", held);
    cr_assert_eq(rc, 0, "%s", out);
    json_t *root, *a = attack_of(&root);
    cr_assert(json_is_true(json_object_get(root, "interrupted")));
    cr_assert_eq(ji(a, "attempts"), 24);
    cr_assert_eq(ji(a, "sources_used"), 8);
    cr_assert_eq(ji(a, "server_flights"), 24);
    cr_assert_eq(ji(a, "sources_answered"), 8);
    cr_assert_eq(ji(a, "half_open_max"), 24);
    cr_assert_eq(ji(a, "ckes_sent"), 0, "a fill never sends a key exchange");
    json_decref(root);
    cr_assert_eq(gw_metric("pskgw_listener_lookups_parked_total"), 0, "no lookup without a CKE");
    chain_stop(&ch);
}

/* Bounded: against a port where nobody answers, every attempt ends at --attack-timeout and the
 * run ends by itself (not by --duration). */
Test(devsim_hostile, attempts_end_by_themselves_when_nobody_answers)
{
    int port = 0;
    int fd = pskgw_test_reserve_port(1, &port);
    cr_assert_geq(fd, 0);
    char silent[64], out[16384];
    snprintf(silent, sizeof(silent), "127.0.0.1:%d", port);
    int rc = devsim(out, sizeof(out), "--target", silent, "--attack", "cke-flood", "--attack-count",
                    "5", "--attack-rate", "100", "--attack-timeout", "0.5", "--duration", "600",
                    "--json", ch.json_path, "--quiet", NULL);
    close(fd);
    cr_assert_eq(rc, 0, "%s", out);
    json_t *root, *a = attack_of(&root);
    cr_assert(json_is_true(json_object_get(a, "done")));
    cr_assert(json_is_false(json_object_get(root, "interrupted")));
    cr_assert_eq(ji(a, "attempts"), 5);
    cr_assert_eq(ji(a, "timeouts"), 5);
    cr_assert_eq(ji(a, "cookie_exchanges"), 0);
    json_decref(root);
    chain_stop(&ch);
}

/* Sources and targets outside loopback are refused before anything is sent. */
Test(devsim_hostile, refuses_non_loopback_sources_and_targets)
{
    int port = 0;
    int fd = pskgw_test_reserve_port(1, &port);
    cr_assert_geq(fd, 0);
    char reserved[64], out[4096];
    snprintf(reserved, sizeof(reserved), "127.0.0.1:%d", port);
    cr_assert_eq(devsim(out, sizeof(out), "--target", reserved, "--attack", "fill",
                        "--attack-source", "10.1.2.3", NULL),
                 2);
    cr_assert_eq(devsim(out, sizeof(out), "--target", reserved, "--attack", "fill",
                        "--attack-source", "::ffff:10.1.2.3", NULL),
                 2);
    cr_assert_eq(
        devsim(out, sizeof(out), "--target", "198.51.100.7:5684", "--attack", "cke-flood", NULL),
        2);
    uint8_t b[64];
    ssize_t got = recv(fd, b, sizeof(b), MSG_DONTWAIT);
    cr_assert(got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "a datagram was sent");
    close(fd);
    chain_stop(&ch);
}
