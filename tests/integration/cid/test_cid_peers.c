/* Devices that change address (issue 15), against the real chain pskgw-sim <- pskgw:
 *   - pskgw-devsim --rebind-every: the socket under a live session is replaced (new port);
 *   - mbedTLS's ssl_client2 (scripts/build-mbedtls: a DTLS 1.2 client nobody here wrote) through
 *     the NAT-rebinding proxy (tests/support/natproxy.h), which moves it to a new source port
 *     between its first and its second message.
 * The gateway offers CIDs (listener cid = "on"). A client that does not ask for one is found by
 * address and port only: after the rebind its record arrives from a peer without a session
 * (pskgw_listener_bad_datagrams_total), the message is lost, and the device must handshake
 * again. A client that asks for one (ssl_client2 cid=1, pskgw-devsim --cid) keeps its session:
 * every message arrives without a new handshake, also when its session hibernated in between
 * (hibernate_after_s = 1; the other tests send faster than that).
 * Every process is stopped and judged inside the test (exit 0, no sanitizer report).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "natproxy.h"
#include "proc.h"
#include "skip.h"
#include "tools/devsim/client.h"
#include "tools/devsim/creds.h"

#define SEED     "cid-peers-seed"
#define GUARD_MS 60000 /* a guard against hanging only, never a statement about speed */

static chain_t ch = CHAIN_INIT;
static char tgt[64];

static void start_chain(void)
{
    chain_start_sim(&ch, "cid.conf", SEED, NULL);
    FILE *f = fopen(ch.conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "domain = \"cid\";\n"
            "api = { url = \"%s\"; key_id = \"k\"; secret_file = \"%s\"; psk_key_bits = 128;\n"
            "        timeout_ms = 30000; deadline_ms = 60000; };\n"
            "listeners = (\n"
            "  { name = \"udp\"; proto = \"udp\"; address = \"127.0.0.1\"; port = 0;\n"
            "    ack = \"accepted\"; cid = \"on\"; hibernate_after_s = 1; },\n"
            "  { proto = \"tcp\"; address = \"127.0.0.1\"; port = 0; framing = \"len16\"; }\n"
            ");\n"
            "ciphers = \"PSK-AES128-CCM8:PSK-AES128-GCM-SHA256\";\n"
            "cache = { entries = 1000; ttl_s = 3600; negative_ttl_s = 60; stale_s = 86400; };\n"
            "sinks = ( { type = \"file\"; path = \"%s\"; } );\n"
            "limits = { max_sessions = 1000; max_pending_handshakes = 1000;\n"
            "           handshake_timeout_ms = 30000; };\n"
            "admin = { address = \"127.0.0.1\"; port = 0; };\n",
            ch.sim_url, ch.secret, ch.sink);
    fclose(f);
    chain_start_gw(&ch, 1);
    snprintf(tgt, sizeof(tgt), "127.0.0.1:%d", ch.udp_port);
}

static void fini_chain(void)
{
    chain_fini(&ch);
}

TestSuite(cid_peers, .init = start_chain, .fini = fini_chain, .timeout = 300);

/* A counter of the UDP listener in pskgw's /metrics, or -1 when absent. */
static long long gw_metric(const char *family)
{
    return chain_udp_metric(ch.admin_port, "cid", family);
}

static void pause_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Wait until the gateway's counter reaches at least want; the last value read. */
static long long wait_metric(const char *family, long long want)
{
    return chain_wait_udp_metric(ch.admin_port, "cid", family, want);
}

/* Lines in the file sink (0 when it does not exist yet). */
static long sink_lines(void)
{
    FILE *f = fopen(ch.sink, "r");
    long n = 0;
    int c;

    if (f == NULL)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static long wait_sink_lines(long want)
{
    long v = 0;

    for (int i = 0; i < GUARD_MS / 50; i++) {
        v = sink_lines();
        if (v >= want)
            break;
        pause_ms(50);
    }
    return v;
}

static json_int_t jint(json_t *root, const char *obj, const char *key)
{
    json_t *v = json_object_get(json_object_get(root, obj), key);
    cr_assert(json_is_integer(v), "%s.%s missing", obj, key);
    return json_integer_value(v);
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

/* Two devices, four messages each; every message after a session's first comes when the device
 * has moved to a new port (--rebind-every 0.2 s, a message every 0.25 s). Without CID each move
 * loses the session: 3 per device, each followed by a new handshake, and the message sent into
 * the lost session is sent again on the new one: every message is delivered exactly once. */
Test(cid_peers, devsim_rebind_every_loses_the_session_without_cid)
{
    char out[8192];
    json_error_t e;
    json_t *j;
    int rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "2", "--messages", "4",
                    "--rate", "4", "--seed", SEED, "--expect-ack", "--ack-timeout", "2",
                    "--rebind-every", "0.2", "--duration", "120", "--verify-file", ch.sink,
                    "--json", ch.json_path, "--quiet", NULL);

    cr_assert_eq(rc, 0, "%s", out);
    j = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(j, "%s", e.text);
    cr_assert_eq(jint(j, "rebind", "socket_rebinds"), 6);
    cr_assert_eq(jint(j, "rebind", "followed"), 0);
    cr_assert_eq(jint(j, "rebind", "sessions_lost"), 6);
    cr_assert_eq(jint(j, "rebind", "rehandshakes"), 6);
    cr_assert_eq(jint(j, "rebind", "lost_messages"), 6);
    cr_assert_eq(jint(j, "handshakes", "ok"), 8);
    cr_assert_eq(jint(j, "verify", "delivered"), 8);
    cr_assert_eq(jint(j, "verify", "duplicated"), 0);
    json_decref(j);
    /* the gateway saw each of the six from a peer without a session */
    cr_assert_geq(wait_metric("pskgw_listener_bad_datagrams_total", 6), 6);
    chain_stop(&ch);
}

/* ---- mbedTLS ssl_client2 through the NAT-rebinding proxy ---------------------------------- */

static const char *ssl_client2_path(void)
{
    static char path[4096];

    snprintf(path, sizeof(path), "%s", pskgw_test_src(".deps/mbedtls/bin/ssl_client2"));
    return access(path, X_OK) == 0 ? path : NULL;
}

typedef struct {
    pskgw_natproxy_t *proxy;
    pskgw_test_proc_t client;
} mbed_run_t;

/* ssl_client2 as device `index` of the seed, DTLS 1.2, PSK-AES128-CCM8, two request/response
 * exchanges (the gateway's "ACK n" is the response), through a proxy that moves it to a new
 * source port before its second application datagram. cid: ask for a Connection ID; cid_val:
 * the client's own CID (hex, what the gateway puts in its records), NULL for none; hold: the
 * proxy holds the second application datagram until pskgw_natproxy_release(). */
static void mbed_start(mbed_run_t *r, uint32_t index, int cid, const char *cid_val, bool hold)
{
    const char *bin = ssl_client2_path();
    struct sockaddr_in gw = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ch.udp_port) };
    pskgw_natproxy_opts_t po = { .rebind_after = 1, .count_app = true, .hold_after = hold ? 1 : 0 };
    pskgw_devsim_creds_t cr;
    static char a_port[32], a_psk[80], a_id[80], a_cid[16], a_cid_val[80];
    char hex[2 * PSKGW_ROT_PSK_MAX_LEN + 1];

    if (bin == NULL)
        PSKGW_TEST_SKIP_MISSING("mbedTLS ssl_client2 (scripts/build-mbedtls)");
    gw.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    po.server = (struct sockaddr *)&gw;
    cr_assert_eq(pskgw_natproxy_start(&po, &r->proxy), 0);
    cr_assert_eq(pskgw_devsim_creds_get(SEED, index, PSKGW_DEVSIM_GOOD, 128, UINT64_MAX, &cr), 0);
    for (size_t i = 0; i < cr.psk_len; i++)
        snprintf(hex + 2 * i, 3, "%02X", cr.psk[i]);
    snprintf(a_port, sizeof(a_port), "server_port=%u", (unsigned)pskgw_natproxy_port(r->proxy));
    snprintf(a_psk, sizeof(a_psk), "psk=%s", hex);
    snprintf(a_id, sizeof(a_id), "psk_identity=%s", cr.identity);
    snprintf(a_cid, sizeof(a_cid), "cid=%d", cid);
    snprintf(a_cid_val, sizeof(a_cid_val), "cid_val=%s", cid_val != NULL ? cid_val : "");
    pskgw_devsim_creds_wipe(&cr);
    char *argv[] = { (char *)bin,
                     "server_addr=127.0.0.1",
                     a_port,
                     "dtls=1",
                     a_psk,
                     a_id,
                     "force_ciphersuite=TLS-PSK-WITH-AES-128-CCM-8",
                     a_cid,
                     "exchanges=2",
                     "hs_timeout=1000-60000",
                     "read_timeout=60000",
                     "max_resend=0",
                     cid_val != NULL ? a_cid_val : NULL,
                     NULL };
    cr_assert_eq(pskgw_test_spawn(&r->client, argv, 0), 0);
}

static void mbed_stop(mbed_run_t *r, int *status)
{
    *status = r->client.pid > 0 ? pskgw_test_stop(&r->client, SIGTERM, GUARD_MS) : -1;
    pskgw_natproxy_stop(r->proxy);
}

/* No CID: the first message arrives, the proxy rebinds, the second comes from a peer without a
 * session (counted by the gateway) and never reaches the sink; one handshake only. */
Test(cid_peers, mbedtls_client_through_natproxy_loses_the_session_without_cid)
{
    mbed_run_t r;
    pskgw_natproxy_stats_t st;
    int status;

    mbed_start(&r, 0, 0, NULL, false);
    cr_assert_eq(wait_sink_lines(1), 1, "the first message never arrived");
    cr_assert_geq(wait_metric("pskgw_listener_bad_datagrams_total", 1), 1,
                  "the second message was not seen from a peer without a session");
    pskgw_natproxy_stats(r.proxy, &st);
    cr_assert_eq(st.rebinds, 1);
    cr_assert_eq(sink_lines(), 1, "a message arrived after the rebind without CID");
    cr_assert_eq(gw_metric("pskgw_listener_handshakes_completed_total"), 1);
    mbed_stop(&r, &status);
    chain_stop(&ch);
}

/* ---- devsim --cid (wolfSSL clients) against mbedTLS's ssl_server2 -------------------------- */

/* The wolfSSL client path negotiates an RFC 9146 CID with a server nobody here wrote, and its
 * CID records are understood: every message is answered. */
Test(cid_peers, devsim_cid_negotiates_with_mbedtls_server)
{
    char path[4096], port_arg[32], psk_arg[200], id_arg[200], target[64], out[8192],
        hex[2 * PSKGW_ROT_PSK_MAX_LEN + 1];
    pskgw_devsim_creds_t cr;
    pskgw_test_proc_t srv;
    json_error_t e;
    json_t *j;
    int port, rc;

    snprintf(path, sizeof(path), "%s", pskgw_test_src(".deps/mbedtls/bin/ssl_server2"));
    if (access(path, X_OK) != 0)
        PSKGW_TEST_SKIP_MISSING("mbedTLS ssl_server2 (scripts/build-mbedtls)");
    if (!pskgw_devsim_client_cid_available())
        PSKGW_TEST_SKIP_MISSING("a wolfSSL with DTLS 1.2 CID (scripts/build-wolfssl, >= 5.7.4)");
    cr_assert_eq(pskgw_devsim_creds_get(SEED, 0, PSKGW_DEVSIM_GOOD, 128, UINT64_MAX, &cr), 0);
    for (size_t i = 0; i < cr.psk_len; i++)
        snprintf(hex + 2 * i, 3, "%02X", cr.psk[i]);
    snprintf(psk_arg, sizeof(psk_arg), "psk=%s", hex);
    snprintf(id_arg, sizeof(id_arg), "psk_identity=%s", cr.identity);
    pskgw_devsim_creds_wipe(&cr);
    /* ssl_server2 binds port 0 (an ephemeral port nobody else holds); /proc tells which */
    snprintf(port_arg, sizeof(port_arg), "server_port=0");
    char *argv[] = { path,          "server_addr=127.0.0.1",
                     port_arg,      "dtls=1",
                     psk_arg,       id_arg,
                     "cid=1",       "cid_val=0102030405060708",
                     "exchanges=3", "read_timeout=60000",
                     NULL };
    cr_assert_eq(pskgw_test_spawn(&srv, argv, 0), 0);
    port = pskgw_test_wait_bound_port(srv.pid, 1, GUARD_MS);
    cr_assert_gt(port, 0, "ssl_server2 did not bind a udp port");
    snprintf(target, sizeof(target), "127.0.0.1:%d", port);
    rc = devsim(out, sizeof(out), "--target", target, "--devices", "1", "--messages", "3", "--rate",
                "5", "--seed", SEED, "--cid", "--expect-ack", "--duration", "60", "--json",
                ch.json_path, "--quiet", NULL);
    (void)pskgw_test_stop(&srv, SIGTERM, GUARD_MS);
    cr_assert_eq(rc, 0, "%s", out);
    j = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(j, "%s", e.text);
    cr_assert_eq(jint(j, "rebind", "cid_sessions"), 1, "no Connection ID negotiated");
    cr_assert_eq(jint(j, "messages", "acks"), 3);
    json_decref(j);
    chain_stop(&ch);
}

/* ---- with a Connection ID: the session follows the device -------------------------------- */

/* CID: the second message comes from the new port with the CID the gateway issued; the session
 * follows the device, both messages arrive, one handshake. ssl_client2 ends with 0 only once it
 * read both answers ("ACK 1", "ACK 2": the second sent to the new address). */
Test(cid_peers, mbedtls_client_through_natproxy_keeps_the_session_with_cid)
{
    mbed_run_t r;
    pskgw_natproxy_stats_t st;
    int status;

    mbed_start(&r, 1, 1, NULL, false);
    status = pskgw_test_wait(&r.client, 2 * GUARD_MS);
    pskgw_natproxy_stats(r.proxy, &st);
    pskgw_natproxy_stop(r.proxy);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "ssl_client2 did not get both answers (status %d)", status);
    cr_assert_eq(st.rebinds, 1);
    cr_assert_eq(wait_sink_lines(2), 2);
    cr_assert_eq(wait_metric("pskgw_listener_handshakes_completed_total", 1), 1);
    chain_stop(&ch);
}

/* devsim --cid: every rebind is followed (the first message's ack comes to the new port), no
 * session is lost, one handshake per device, every message delivered once. */
Test(cid_peers, devsim_rebind_every_keeps_the_session_with_cid)
{
    char out[8192];
    json_error_t e;
    json_t *j;
    int rc;

    if (!pskgw_devsim_client_cid_available())
        PSKGW_TEST_SKIP_MISSING("a wolfSSL with DTLS 1.2 CID (scripts/build-wolfssl, >= 5.7.4)");
    rc = devsim(out, sizeof(out), "--target", tgt, "--devices", "2", "--messages", "4", "--rate",
                "4", "--seed", SEED, "--cid", "--expect-ack", "--ack-timeout", "20",
                "--rebind-every", "0.2", "--duration", "120", "--verify-file", ch.sink, "--json",
                ch.json_path, "--quiet", NULL);
    cr_assert_eq(rc, 0, "%s", out);
    j = json_load_file(ch.json_path, 0, &e);
    cr_assert_not_null(j, "%s", e.text);
    cr_assert_eq(jint(j, "rebind", "cid_sessions"), 2);
    cr_assert_eq(jint(j, "rebind", "socket_rebinds"), 6);
    cr_assert_eq(jint(j, "rebind", "followed"), 6);
    cr_assert_eq(jint(j, "rebind", "sessions_lost"), 0);
    cr_assert_eq(jint(j, "handshakes", "ok"), 2);
    cr_assert_eq(jint(j, "verify", "delivered"), 8);
    cr_assert_eq(jint(j, "verify", "duplicated"), 0);
    json_decref(j);
    chain_stop(&ch);
}

/* A hibernated CID session and a client nobody here wrote, with a CID of its own: the proxy
 * holds ssl_client2's second request until the gateway has hibernated the session, then
 * forwards it from a new port. The record finds the session by CID, thaws it (our CID and the
 * client's put back on the imported wolfSSL object), moves it, and "ACK 2" reaches the client
 * in a record that carries the client's CID, which mbedTLS checks: one handshake. */
Test(cid_peers, mbedtls_client_with_its_own_cid_thaws_a_hibernated_session_from_a_new_port)
{
    mbed_run_t r;
    pskgw_natproxy_stats_t st;
    int status;

    mbed_start(&r, 2, 1, "C1C2C3C4C5", true);
    cr_assert_eq(wait_sink_lines(1), 1, "the first message never arrived");
    cr_assert_geq(wait_metric("pskgw_listener_hibernated", 1), 1, "the session never hibernated");
    pskgw_natproxy_release(r.proxy);
    status = pskgw_test_wait(&r.client, 2 * GUARD_MS);
    pskgw_natproxy_stats(r.proxy, &st);
    pskgw_natproxy_stop(r.proxy);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "ssl_client2 did not get both answers (status %d)", status);
    cr_assert_eq(st.rebinds, 1);
    cr_assert_eq(wait_sink_lines(2), 2);
    cr_assert_eq(wait_metric("pskgw_listener_thaws_total", 1), 1);
    cr_assert_eq(gw_metric("pskgw_listener_thaw_failures_total"), 0);
    cr_assert_eq(wait_metric("pskgw_listener_cid_address_changes_total", 1), 1);
    cr_assert_eq(gw_metric("pskgw_listener_handshakes_completed_total"), 1);
    chain_stop(&ch);
}
