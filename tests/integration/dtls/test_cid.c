/* DTLS 1.2 Connection ID (RFC 9146) on the UDP listener, real loopback sockets: a wolfSSL client
 * that asks for a CID changes its source port mid-session (new socket, same WOLFSSL object) and
 * keeps its session with cid on, loses it with cid off; spoofed CID records from a third port
 * move nothing and get no answer; an unknown CID is dropped and counted, in floods too. */
#include "harness.h"

#include "gateway/listen_internal.h"

#include "common/err.h"
#include "dtls/cid.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uv_loop_t loop;
static hres_t res;
static hmsgs_t msgs;
static hcli_t cli[2];
static pskgw_listener_t *lst;
static bool closed_cb_ran;
static int spoofer = -1;

static void setup(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&msgs, 0, sizeof(msgs));
    closed_cb_ran = false;
    lst = NULL;
    cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
}

static void on_closed(pskgw_listener_t *l, void *arg)
{
    (void)l;
    *(bool *)arg = true;
}

static void teardown(void)
{
    for (int i = 0; i < 2; i++)
        hcli_close(&cli[i]);
    if (spoofer >= 0)
        (void)close(spoofer);
    spoofer = -1;
    if (lst != NULL) {
        pskgw_listener_close(lst, on_closed, &closed_cb_ran);
        lst = NULL;
        (void)uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert(closed_cb_ran);
    }
    cr_assert_eq(hloop_finish(&loop), 0, "every handle closed");
    cr_assert_eq(res.outstanding, 0, "every lookup finished or cancelled");
    wolfSSL_Cleanup();
}

TestSuite(cid, .init = setup, .fini = teardown, .timeout = 120);

static void start(uint8_t cid_len, uint8_t worker)
{
    pskgw_listener_opts_t o = { 0 };
    const char *why = NULL;

    hres_init(&res, &loop, 0);
    res.sync_hits = true;
    hres_add(&res, H_ID, H_PSK);
    o.domain = "acme";
    o.name = "devices";
    o.address = "127.0.0.1";
    o.proto = PSKGW_LISTEN_UDP;
    o.cid_len = cid_len;
    o.worker = worker;
    cr_assert_eq(pskgw_listener_new(&loop, &o, &res.iface, hmsgs_cb, &msgs, &lst, &why), 0,
                 "listener: %s", why ? why : "");
    msgs.l = lst;
    msgs.reply = true; /* "ack" to every message, to the session's current address */
}

static const pskgw_listener_counters_t *ctr(void)
{
    return pskgw_listener_counters(lst);
}

typedef struct {
    int msgs;
    const char *got;
} want_t;

static bool reached(void *arg)
{
    const want_t *w = arg;

    return msgs.n >= w->msgs && (w->got == NULL || strcmp(cli[0].got, w->got) == 0);
}

static bool bad_datagram_seen(void *arg)
{
    return ctr()->bad_datagrams >= *(uint64_t *)arg;
}

static bool unknown_cid_seen(void *arg)
{
    return ctr()->cid_unknown_records >= *(uint64_t *)arg;
}

static void expect_peer(int i, uint16_t port)
{
    char want[64];

    (void)snprintf(want, sizeof(want), "127.0.0.1:%u", (unsigned)port);
    cr_assert_str_eq(msgs.peer[i], want, "message %d came from %s", i, want);
}

/* A plain UDP socket on 127.0.0.1 (a third port) sending to the listener. */
static void spoof(const uint8_t *d, size_t len)
{
    struct sockaddr_in to;

    if (spoofer < 0) {
        struct sockaddr_in any;

        spoofer = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(spoofer, 0);
        cr_assert_eq(uv_ip4_addr("127.0.0.1", 0, &any), 0);
        cr_assert_eq(bind(spoofer, (const struct sockaddr *)&any, sizeof(any)), 0);
    }
    cr_assert_eq(uv_ip4_addr("127.0.0.1", pskgw_listener_port(lst), &to), 0);
    cr_assert_eq(sendto(spoofer, d, len, 0, (const struct sockaddr *)&to, sizeof(to)),
                 (ssize_t)len);
}

static void client_write(const char *text)
{
    cr_assert_eq(wolfSSL_write(cli[0].ssl, text, (int)strlen(text)), (int)strlen(text));
}

Test(cid, rebinding_client_keeps_its_session_and_spoofs_move_nothing)
{
    want_t w = { 1, "ack" };
    uint8_t cid[32];
    unsigned int cid_sz = 0;
    uint16_t port1, port2;
    uint8_t rec[2048];
    size_t rec_len;
    uint64_t unknown = 1;
    char buf[64];

    start(8, 3);
    hcli_start_cid(&cli[0], &loop, pskgw_listener_port(lst), "PSK-AES128-CCM8", H_ID, H_PSK, "one");
    cr_assert(hrun_until(&loop, reached, &w, 10000));
    cr_assert_eq(ctr()->handshakes_completed, 1);
    cr_assert_eq(ctr()->cid_sessions, 1, "the session negotiated a CID");
    /* The CID the server chose: 8 bytes, byte 0 = the worker index. */
    cr_assert_eq(wolfSSL_dtls_cid_get_tx_size(cli[0].ssl, &cid_sz), WOLFSSL_SUCCESS);
    cr_assert_eq(cid_sz, 8);
    cr_assert_eq(wolfSSL_dtls_cid_get_tx(cli[0].ssl, cid, sizeof(cid)), WOLFSSL_SUCCESS);
    cr_assert_eq(cid[PSKGW_CID_WORKER_AT], 3);
    port1 = hcli_local_port(&cli[0]);
    expect_peer(0, port1);

    /* NAT rebinding: a new source port, the same session. */
    hcli_rebind(&cli[0]);
    port2 = hcli_local_port(&cli[0]);
    cr_assert_neq(port1, port2);
    client_write("two");
    w = (want_t){ 2, "ackack" }; /* the ack reached the new port: the old one reads nothing */
    cr_assert(hrun_until(&loop, reached, &w, 10000));
    expect_peer(1, port2);
    cr_assert_eq(ctr()->cid_address_changes, 1);
    cr_assert_eq(ctr()->handshakes_started, 1, "no new handshake");
    cr_assert_eq(ctr()->handshakes_completed, 1);
    cr_assert_eq(msgs.meta[1].session_id, msgs.meta[0].session_id);
    cr_assert_eq(cli[0].last[0], PSKGW_CT_TLS12_CID);

    /* Spoofs from a third port: the client's last record again (a replay), the same with a
     * higher sequence number and a flipped ciphertext byte, and a CID nobody was given. */
    rec_len = cli[0].last_len;
    memcpy(rec, cli[0].last, rec_len);
    spoof(rec, rec_len);
    rec[5] = rec[6] = 0x7F; /* sequence number far above the client's */
    rec[rec_len - 1] ^= 0x55;
    spoof(rec, rec_len);
    rec[PSKGW_CID_OFFSET + 1] ^= 0xFF; /* another CID */
    spoof(rec, rec_len);
    cr_assert(hrun_until(&loop, unknown_cid_seen, &unknown, 10000));
    /* The session goes on at the client's address, which did not move. */
    client_write("three");
    w = (want_t){ 3, "ackackack" };
    cr_assert(hrun_until(&loop, reached, &w, 10000));
    cr_assert_eq(msgs.n, 3, "no spoofed record was delivered");
    expect_peer(2, port2);
    cr_assert_eq(ctr()->cid_address_changes, 1, "the spoofs moved nothing");
    cr_assert_eq(ctr()->cid_unknown_records, 1);
    cr_assert_eq(ctr()->handshakes_completed, 1);
    /* Nothing was sent to the spoofer (the acks went to the client, after the spoofs). */
    cr_assert_eq(recv(spoofer, buf, sizeof(buf), MSG_DONTWAIT), -1);
    cr_assert(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Unknown CIDs and forged records under the session's CID in floods (issue 16's review): 2,000
 * records with random CIDs and 500 with the session's CID and a broken MAC, from a third port, in
 * bursts: each unknown one is counted, none is answered or delivered, the address does not move,
 * and the device's next record goes through at once. */
Test(cid, floods_of_unknown_and_forged_cid_records_move_and_answer_nothing)
{
    want_t w = { 1, "ack" };
    uint8_t rec[2048], junk[2048];
    size_t rec_len;
    uint64_t unknown = 0;
    uint16_t port;
    char buf[64];

    start(8, 0);
    hcli_start_cid(&cli[0], &loop, pskgw_listener_port(lst), "PSK-AES128-CCM8", H_ID, H_PSK, "one");
    cr_assert(hrun_until(&loop, reached, &w, 10000));
    port = hcli_local_port(&cli[0]);
    client_write("two");
    w = (want_t){ 2, "ackack" };
    cr_assert(hrun_until(&loop, reached, &w, 10000));
    rec_len = cli[0].last_len;
    memcpy(rec, cli[0].last, rec_len);
    cr_assert_eq(rec[0], PSKGW_CT_TLS12_CID);
    for (int burst = 0; burst < 20; burst++) {
        for (int i = 0; i < 100; i++) {
            memcpy(junk, rec, rec_len);
            for (size_t k = 0; k < 8; k++) /* a random-looking CID nobody was given */
                junk[PSKGW_CID_OFFSET + k] = (uint8_t)((burst * 100 + i) * 2654435761u >> (k * 3));
            spoof(junk, rec_len);
        }
        for (int i = 0; i < 25; i++) {
            memcpy(junk, rec, rec_len); /* the session's CID, a higher sequence, a broken MAC */
            junk[5] = 0x7F;
            junk[10] = (uint8_t)i;
            junk[rec_len - 1 - (size_t)i % 8] ^= 0x5A;
            spoof(junk, rec_len);
        }
        unknown += 100;
        cr_assert(hrun_until(&loop, unknown_cid_seen, &unknown, 10000), "burst %d", burst);
    }
    cr_assert_eq(ctr()->cid_unknown_records, 2000);
    client_write("three");
    w = (want_t){ 3, "ackackack" };
    cr_assert(hrun_until(&loop, reached, &w, 10000));
    cr_assert_eq(msgs.n, 3, "nothing forged was delivered");
    expect_peer(2, port);
    cr_assert_eq(ctr()->cid_address_changes, 0, "the floods moved nothing");
    cr_assert_eq(ctr()->handshakes_completed, 1);
    cr_assert_eq(recv(spoofer, buf, sizeof(buf), MSG_DONTWAIT), -1, "the spoofer got an answer");
    cr_assert(errno == EAGAIN || errno == EWOULDBLOCK);
}

static bool second_done(void *arg)
{
    (void)arg;
    return cli[1].done && msgs.n >= 2;
}

Test(cid, without_cid_a_rebinding_client_loses_its_session)
{
    want_t w = { 1, "ack" };
    uint64_t bad;

    start(0, 0);
    /* The client asks; a listener with cid off does not offer one. */
    hcli_start_cid(&cli[0], &loop, pskgw_listener_port(lst), "PSK-AES128-CCM8", H_ID, H_PSK, "one");
    cr_assert(hrun_until(&loop, reached, &w, 10000));
    cr_assert_eq(ctr()->cid_sessions, 0);
    {
        unsigned int sz = 0; /* the server gave the client no CID to put in its records */

        if (wolfSSL_dtls_cid_get_tx_size(cli[0].ssl, &sz) == WOLFSSL_SUCCESS)
            cr_assert_eq(sz, 0);
    }
    bad = ctr()->bad_datagrams + 1;
    hcli_rebind(&cli[0]);
    client_write("two");
    cr_assert(hrun_until(&loop, bad_datagram_seen, &bad, 10000));
    cr_assert_eq(msgs.n, 1, "the record from the new port found no session");
    /* The device has to shake hands again. */
    hcli_start(&cli[1], &loop, pskgw_listener_port(lst), false, "PSK-AES128-CCM8", H_ID, H_PSK,
               "two again");
    cr_assert(hrun_until(&loop, second_done, NULL, 10000));
    cr_assert_eq(ctr()->handshakes_completed, 2);
    cr_assert_eq(ctr()->cid_address_changes, 0);
}
