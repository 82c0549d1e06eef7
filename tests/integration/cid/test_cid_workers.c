/* Two workers that keep following the device (issue 15 section 3): pskgw --worker 0 and
 * --worker 1 share one UDP port (SO_REUSEPORT, bound in that order: socket index = worker index),
 * each issuing CIDs whose byte 0 is its index, and the CID steering program (gateway/cid_steer.h)
 * attached to the group. mbedTLS's ssl_client2 asks for a CID and sends 16 messages through the
 * NAT-rebinding proxy, which gives every message after the first a new source port: the kernel's
 * hash alone would send each to either worker (all 15 new ports landing on the session's worker
 * by chance: 2^-15); the steering sends every one to the worker that issued the CID, the session
 * continues, and all 16 arrive after one handshake.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
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
#include "tools/devsim/creds.h"

#define SEED     "cid-workers-seed"
#define GUARD_MS 60000 /* a guard against hanging only */
#define MESSAGES 16

static chain_t ch = CHAIN_INIT;
static pskgw_test_proc_t w1 = { -1, -1 };
static char w1_err[600], sink1[600];

static void write_conf(const char *path, const char *sink, int port)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "domain = \"cw\";\n"
            "api = { url = \"%s\"; key_id = \"k\"; secret_file = \"%s\"; psk_key_bits = 128;\n"
            "        timeout_ms = 30000; deadline_ms = 60000; };\n"
            "listeners = (\n"
            "  { name = \"udp\"; proto = \"udp\"; address = \"127.0.0.1\"; port = %d;\n"
            "    ack = \"accepted\"; cid = \"on\"; }\n"
            ");\n"
            "ciphers = \"PSK-AES128-CCM8\";\n"
            "sinks = ( { type = \"file\"; path = \"%s\"; } );\n"
            "admin = { address = \"127.0.0.1\"; port = 0; };\n",
            ch.sim_url, ch.secret, port, sink);
    fclose(f);
}

static long lines_of(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = 0;
    int c;

    if (f == NULL)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static long long metric_at(int admin_port, const char *family)
{
    return chain_udp_metric(admin_port, "cw", family);
}

static void pause_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void fini(void)
{
    char why[256];

    if (w1.pid > 0)
        (void)pskgw_test_stop_checked(&w1, "pskgw --worker 1", 0, w1_err, GUARD_MS, why,
                                      sizeof(why));
    chain_fini(&ch);
}

TestSuite(cid_workers, .fini = fini, .timeout = 300);

Test(cid_workers, a_rebinding_device_stays_with_the_worker_that_issued_its_cid)
{
    char client[4096], conf1[600], port_arg[32], psk_arg[200], id_arg[200], hex[80], why[256];
    static char gwbin[4096];
    pskgw_test_proc_t cli;
    pskgw_natproxy_t *proxy;
    pskgw_natproxy_stats_t st;
    pskgw_devsim_creds_t cr;
    int port, admin0, admin1, status;

    snprintf(client, sizeof(client), "%s", pskgw_test_src(".deps/mbedtls/bin/ssl_client2"));
    if (access(client, X_OK) != 0)
        PSKGW_TEST_SKIP_MISSING("mbedTLS ssl_client2 (scripts/build-mbedtls)");
    chain_start_sim(&ch, "w0.conf", SEED, NULL);
    snprintf(conf1, sizeof(conf1), "%s/w1.conf", ch.dir);
    snprintf(sink1, sizeof(sink1), "%s/sink1.jsonl", ch.dir);
    snprintf(w1_err, sizeof(w1_err), "%s/w1.stderr", ch.dir);
    /* worker 0 binds port 0 and reports the port; worker 1 joins it (SO_REUSEPORT) */
    write_conf(ch.conf, ch.sink, 0);
    /* worker 0 binds first, then worker 1: their sockets' indexes in the group */
    snprintf(gwbin, sizeof(gwbin), "%s", pskgw_test_bin("pskgw"));
    char *a0[] = { gwbin, "--config", ch.conf, "--log-level", "notice", "--worker", "0", NULL };
    cr_assert_eq(pskgw_test_spawn_logged(&ch.gw, a0, 0, ch.gw_err), 0);
    port = pskgw_test_log_port(ch.gw_err, "on udp 127.0.0.1:", ch.gw.pid, GUARD_MS);
    cr_assert_gt(port, 0);
    write_conf(conf1, sink1, port);
    admin0 =
        pskgw_test_log_port(ch.gw_err, "admin endpoint on http://127.0.0.1:", ch.gw.pid, GUARD_MS);
    char *a1[] = { gwbin, "--config", conf1, "--log-level", "notice", "--worker", "1", NULL };
    cr_assert_eq(pskgw_test_spawn_logged(&w1, a1, 0, w1_err), 0);
    cr_assert_eq(pskgw_test_log_port(w1_err, "on udp 127.0.0.1:", w1.pid, GUARD_MS), port);
    admin1 = pskgw_test_log_port(w1_err, "admin endpoint on http://127.0.0.1:", w1.pid, GUARD_MS);
    cr_assert(admin0 > 0 && admin1 > 0);

    struct sockaddr_in gw = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    gw.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pskgw_natproxy_opts_t po = { .server = (struct sockaddr *)&gw,
                                 .rebind_every = 1,
                                 .count_app = true };
    cr_assert_eq(pskgw_natproxy_start(&po, &proxy), 0);
    cr_assert_eq(pskgw_devsim_creds_get(SEED, 0, PSKGW_DEVSIM_GOOD, 128, UINT64_MAX, &cr), 0);
    for (size_t i = 0; i < cr.psk_len; i++)
        snprintf(hex + 2 * i, 3, "%02X", cr.psk[i]);
    snprintf(psk_arg, sizeof(psk_arg), "psk=%s", hex);
    snprintf(id_arg, sizeof(id_arg), "psk_identity=%s", cr.identity);
    pskgw_devsim_creds_wipe(&cr);
    snprintf(port_arg, sizeof(port_arg), "server_port=%u", (unsigned)pskgw_natproxy_port(proxy));
    char *ca[] = { client,
                   "server_addr=127.0.0.1",
                   port_arg,
                   "dtls=1",
                   psk_arg,
                   id_arg,
                   "force_ciphersuite=TLS-PSK-WITH-AES-128-CCM-8",
                   "cid=1",
                   "exchanges=16",
                   "read_timeout=60000",
                   NULL };
    cr_assert_eq(pskgw_test_spawn(&cli, ca, 0), 0);
    /* every exchange answered ("ACK n" read back): ssl_client2 ends with 0 */
    status = pskgw_test_wait(&cli, 2 * GUARD_MS);
    pskgw_natproxy_stats(proxy, &st);
    pskgw_natproxy_stop(proxy);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "ssl_client2 did not get every answer (status %d)", status);
    /* Every message after the first went from a new port (the close_notify after the last one
     * is a CID record too, counted when the proxy forwarded it before ssl_client2 ended). */
    cr_assert_geq(st.rebinds, MESSAGES - 1, "%u rebinds, %llu counted", (unsigned)st.rebinds,
                  (unsigned long long)st.counted);
    cr_assert_eq(lines_of(ch.sink) + lines_of(sink1), MESSAGES);
    /* one handshake between the two workers (snapshots are renewed once a second) */
    long long h0 = -1, h1 = -1;
    for (int i = 0; i < GUARD_MS / 100; i++) {
        h0 = metric_at(admin0, "pskgw_listener_handshakes_completed_total");
        h1 = metric_at(admin1, "pskgw_listener_handshakes_completed_total");
        if (h0 + h1 >= 1)
            break;
        pause_ms(100);
    }
    cr_assert_eq(h0 + h1, 1, "worker 0: %lld, worker 1: %lld handshakes", h0, h1);
    cr_assert_eq(
        pskgw_test_stop_checked(&w1, "pskgw --worker 1", 0, w1_err, GUARD_MS, why, sizeof(why)), 0,
        "%s", why);
    chain_stop(&ch);
}
