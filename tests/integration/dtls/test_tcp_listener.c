/* The TCP TLS listener on loopback with `openssl s_client -tls1_2` peers: each framing (len16,
 * newline, record) with slow asynchronous lookups, replies, a wrong key, and shutdown. */
#include "harness.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static uv_loop_t loop;
static hres_t res;
static hmsgs_t msgs;
static hossl_t ossl;
static pskgw_listener_t *lst;
static bool closed_cb_ran;
static size_t parked_bound; /* max_parked_bytes of the next listener (0: the default) */

static void setup(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&msgs, 0, sizeof(msgs));
    lst = NULL;
    closed_cb_ran = false;
    parked_bound = 0;
}

static void on_closed(pskgw_listener_t *l, void *arg)
{
    (void)l;
    *(bool *)arg = true;
}

static void teardown(void)
{
    if (lst != NULL) {
        pskgw_listener_close(lst, on_closed, &closed_cb_ran);
        lst = NULL;
        (void)uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert(closed_cb_ran);
    }
    cr_assert_eq(hloop_finish(&loop), 0, "every handle closed");
    cr_assert_eq(res.outstanding, 0);
}

TestSuite(tcp, .init = setup, .fini = teardown, .timeout = 60);

static void start(pskgw_framing_t framing)
{
    pskgw_listener_opts_t o = { 0 };
    const char *why = NULL;

    o.domain = "acme";
    o.name = "tls-devices";
    o.address = "127.0.0.1";
    o.proto = PSKGW_LISTEN_TCP;
    o.framing = framing;
    o.identity_failure_max = 100;
    o.max_parked_bytes = parked_bound;
    cr_assert_eq(pskgw_listener_new(&loop, &o, &res.iface, hmsgs_cb, &msgs, &lst, &why), 0,
                 "listener: %s", why ? why : "");
    msgs.l = lst;
    msgs.reply = true;
}

static bool contains(const char *hay, size_t n, const char *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    }
    return false;
}

static int want;
static const char *reply;
static size_t reply_len;

static bool got_all(void *arg)
{
    (void)arg;
    return msgs.n >= want && contains(ossl.out_buf, ossl.out_len, reply, reply_len);
}

static void framing_case(pskgw_framing_t f, const char *input, size_t len, int n,
                         const char *expect[], const char *rep, size_t rep_len)
{
    hres_init(&res, &loop, 300);
    hres_add(&res, H_ID, H_PSK);
    start(f);
    want = n;
    reply = rep;
    reply_len = rep_len;
    hossl_start(&ossl, &loop, false, pskgw_listener_port(lst), "PSK-AES128-GCM-SHA256", H_ID, H_PSK,
                (const uint8_t *)input, len);
    cr_assert(hrun_until(&loop, got_all, NULL, 15000), "messages and reply through s_client");
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(msgs.data[i], expect[i]);
        cr_assert_str_eq(msgs.meta[i].transport, "tls");
        cr_assert_str_eq(msgs.identity[i], H_ID);
        cr_assert_str_eq(msgs.uid[i], H_UID);
        cr_assert_eq(msgs.meta[i].seq, (uint64_t)i + 1);
        cr_assert_eq(strncmp(msgs.peer[i], "127.0.0.1:", 10), 0);
    }
    cr_assert_eq(res.resolves, 1);
    cr_assert_eq(pskgw_listener_counters(lst)->lookups_parked, 1);
    cr_assert_eq(pskgw_listener_counters(lst)->handshakes_completed, 1);
    hossl_stop(&ossl);
}

Test(tcp, len16_framing)
{
    const char *expect[] = { "hello", "abc" };

    framing_case(PSKGW_FRAMING_LEN16,
                 "\x00\x05hello\x00\x03"
                 "abc",
                 12, 2, expect,
                 "\x00\x03"
                 "ack",
                 5);
}

Test(tcp, newline_framing)
{
    const char *expect[] = { "line one", "line two" };

    framing_case(PSKGW_FRAMING_NEWLINE, "line one\nline two\r\n", 19, 2, expect, "ack\n", 4);
}

Test(tcp, record_framing)
{
    const char *expect[] = { "one record" };

    framing_case(PSKGW_FRAMING_RECORD, "one record", 10, 1, expect, "ack", 3);
}

static bool failed(void *arg)
{
    (void)arg;
    return pskgw_listener_counters(lst)->handshakes_failed >= 1 && ossl.exited;
}

Test(tcp, wrong_key_fails_and_the_connection_closes)
{
    hres_init(&res, &loop, 50);
    hres_add(&res, H_ID, H_PSK);
    start(PSKGW_FRAMING_NEWLINE);
    hossl_start(&ossl, &loop, false, pskgw_listener_port(lst), "PSK-AES128-CBC-SHA256", H_ID,
                H_WRONG, (const uint8_t *)"x\n", 2);
    cr_assert(hrun_until(&loop, failed, NULL, 15000));
    cr_assert_eq(pskgw_listener_counters(lst)->auth_failures, 1);
    cr_assert_eq(msgs.n, 0);
    hossl_stop(&ossl);
}

/* max_parked_bytes bounds what a connection may send while its key is looked up: the client's
 * CKE/CCS/Finished flight (about 90 bytes) does not fit in 64, and TCP cannot drop bytes, so the
 * connection ends without completing; in 512 the same handshake completes. */
Test(tcp, max_parked_bytes_bounds_the_flight_held_during_a_lookup)
{
    hres_init(&res, &loop, 1000);
    hres_add(&res, H_ID, H_PSK);
    parked_bound = 64;
    start(PSKGW_FRAMING_NEWLINE);
    hossl_start(&ossl, &loop, false, pskgw_listener_port(lst), "PSK-AES128-GCM-SHA256", H_ID, H_PSK,
                (const uint8_t *)"x\n", 2);
    cr_assert(hrun_until(&loop, failed, NULL, 15000), "the connection ended");
    cr_assert_eq(pskgw_listener_counters(lst)->handshakes_completed, 0);
    cr_assert_eq(pskgw_listener_counters(lst)->auth_failures, 0, "not a key failure");
    cr_assert_eq(msgs.n, 0);
    hossl_stop(&ossl);
}

Test(tcp, a_flight_within_max_parked_bytes_completes)
{
    const char *expect[] = { "x" };

    parked_bound = 512;
    framing_case(PSKGW_FRAMING_NEWLINE, "x\n", 2, 1, expect, "ack\n", 4);
}

static bool established(void *arg)
{
    (void)arg;
    return pskgw_listener_counters(lst)->handshakes_completed >= 1 && msgs.n >= 1;
}

Test(tcp, shutdown_with_a_live_connection)
{
    hres_init(&res, &loop, 0);
    res.sync_hits = true;
    hres_add(&res, H_ID, H_PSK);
    start(PSKGW_FRAMING_NEWLINE);
    hossl_start(&ossl, &loop, false, pskgw_listener_port(lst), "PSK-AES128-CCM8", H_ID, H_PSK,
                (const uint8_t *)"up\n", 3);
    cr_assert(hrun_until(&loop, established, NULL, 15000));
    cr_assert_eq(pskgw_listener_counters(lst)->sessions_active, 1);
    pskgw_listener_close(lst, on_closed, &closed_cb_ran);
    lst = NULL;
    for (int k = 0; k < 200 && !closed_cb_ran; k++)
        (void)uv_run(&loop, UV_RUN_ONCE);
    cr_assert(closed_cb_ran);
    hossl_stop(&ossl);
}

Test(tcp, reuseport_binds_twice)
{
    pskgw_listener_opts_t o = { 0 };
    pskgw_listener_t *a = NULL;
    pskgw_listener_t *b = NULL;
    const char *why = NULL;

    hres_init(&res, &loop, 0);
    o.domain = "acme";
    o.name = "tls";
    o.address = "127.0.0.1";
    o.proto = PSKGW_LISTEN_TCP;
    o.reuseport = true;
    cr_assert_eq(pskgw_listener_new(&loop, &o, &res.iface, hmsgs_cb, &msgs, &a, &why), 0);
    o.port = pskgw_listener_port(a);
    cr_assert_eq(pskgw_listener_new(&loop, &o, &res.iface, hmsgs_cb, &msgs, &b, &why), 0, "%s",
                 why ? why : "");
    cr_assert_eq(pskgw_listener_port(b), o.port);
    pskgw_listener_close(a, NULL, NULL);
    pskgw_listener_close(b, NULL, NULL);
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

/* A device that stops reading (its socket buffers full) while the gateway still has bytes
 * queued for it must not hold its session struct, and the listener's close, forever. */
Test(tcp, a_peer_that_stops_reading_cannot_hold_the_close)
{
    static uint8_t big[4000];
    uint64_t sid;
    int rc = 0;
    bool closed_in_time;

    hres_init(&res, &loop, 0);
    res.sync_hits = true;
    hres_add(&res, H_ID, H_PSK);
    start(PSKGW_FRAMING_NEWLINE);
    msgs.reply = false;
    hossl_start(&ossl, &loop, false, pskgw_listener_port(lst), "PSK-AES128-GCM-SHA256", H_ID, H_PSK,
                (const uint8_t *)"up\n", 3);
    cr_assert(hrun_until(&loop, established, NULL, 15000));
    sid = msgs.meta[0].session_id;
    cr_assert_eq(uv_process_kill(&ossl.proc, SIGSTOP), 0);
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = '\n';
    for (int i = 0; i < 40000 && rc == 0; i++) {
        rc = pskgw_listener_send(lst, sid, big, sizeof(big));
        if (i % 16 == 0)
            (void)uv_run(&loop, UV_RUN_NOWAIT);
    }
    cr_assert_neq(rc, 0, "the stalled peer's queue filled up");
    pskgw_listener_close(lst, on_closed, &closed_cb_ran);
    lst = NULL;
    closed_in_time = hrun_until(&loop, flag_set, &closed_cb_ran, 5000);
    (void)uv_process_kill(&ossl.proc, SIGCONT);
    cr_assert(closed_in_time, "the listener closed although the peer stopped reading");
    hossl_stop(&ossl);
}
