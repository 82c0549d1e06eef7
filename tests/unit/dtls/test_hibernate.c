/* dtls/session.h hibernation in process: a wolfSSL client against a pskgw_dtls_session through
 * memory queues. The session hibernates (its wolfSSL object exported and freed) and thaws on the
 * client's next record or on a write, with no new handshake; the write sequence number jumps on
 * every import, so no record sequence number (the AES-CCM nonce) is used twice. */
#include "pair.h"

#include "common/err.h"
#include "common/wipe.h"
#include "dtls/internal.h" /* the blob, to damage it */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define ID  "11010008002F33244B115B0AEEB9"
#define PSK "E5DE45B367DB690F2E17CF9D80A18E87"
#define UID "A1B2C3D4E5F60718"

static pskgw_dtls_ctx_t *mkctx(uint32_t cid_len)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;

    o.dtls = true;
    o.framing = PSKGW_FRAMING_RECORD;
    o.idle_timeout_s = 30;
    o.cid_len = cid_len;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    return c;
}

static void established(tpair_t *p, tres_t *r, pskgw_dtls_ctx_t *c, const char *cipher)
{
    tres_init(r);
    tres_add(r, ID, PSK, UID);
    tpair_init(p, c, r, true, cipher, ID, PSK);
    tpair_pump(p);
    cr_assert(p->cli_done, "client error %d", p->cli_error);
    cr_assert_eq(p->established, 1);
}

static void cli_says(tpair_t *p, const char *msg)
{
    cr_assert_eq(wolfSSL_write(p->cli, msg, (int)strlen(msg)), (int)strlen(msg));
    tpair_pump(p);
}

/* The server writes msg; returns the 48-bit record sequence number of its datagram, after
 * checking that the client reads msg from it. */
static uint64_t srv_says(tpair_t *p, const char *msg)
{
    char buf[64];
    const uint8_t *d;
    uint64_t seq = 0;

    cr_assert_eq(p->to_client.count, 0);
    cr_assert_eq(pskgw_dtls_session_write(p->srv, (const uint8_t *)msg, strlen(msg)), 0);
    cr_assert_eq(p->to_client.count, 1);
    d = p->to_client.data[p->to_client.head];
    cr_assert_geq(p->to_client.len[p->to_client.head], 13);
    cr_assert_eq(d[0], 23, "application data");
    cr_assert_eq((d[3] << 8) | d[4], 1, "epoch 1");
    for (int i = 5; i < 11; i++)
        seq = seq << 8 | d[i];
    cr_assert_eq(wolfSSL_read(p->cli, buf, sizeof(buf) - 1), (int)strlen(msg));
    buf[strlen(msg)] = '\0';
    cr_assert_str_eq(buf, msg);
    return seq;
}

static void round_trip(const char *cipher)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(0);
    uint64_t seq, prev;

    established(&p, &r, c, cipher);
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), PSKGW_EAGAIN,
                 "%s: the client has not confirmed the handshake yet", cipher);
    cli_says(&p, "one");
    prev = srv_says(&p, "ack1");
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0, "%s round %d", cipher, round);
        cr_assert(pskgw_dtls_session_hibernated(p.srv));
        cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), PSKGW_EEXISTS);
        cr_assert_gt(pskgw_dtls_session_blob_size(p.srv), 0);
        cr_assert_str_eq(pskgw_dtls_session_cipher(p.srv), cipher);
        cr_assert_str_eq(pskgw_dtls_session_identity(p.srv), ID);
        cr_assert_str_eq(pskgw_dtls_session_uid(p.srv), UID);
        cli_says(&p, "again");
        cr_assert_not(pskgw_dtls_session_hibernated(p.srv), "the client's record thawed it");
        cr_assert_eq(p.thawed, round + 1);
        cr_assert_eq(p.nmsgs, round + 2);
        cr_assert_str_eq(p.msgs[round + 1], "again");
        cr_assert_eq(p.last_seq, (uint64_t)round + 2);
        seq = srv_says(&p, "ack");
        cr_assert_geq(seq, prev + PSKGW_DTLS_SEQ_JUMP, "%s: write sequence %llu after %llu", cipher,
                      (unsigned long long)seq, (unsigned long long)prev);
        prev = seq;
    }
    cr_assert_eq(p.established, 1, "no new handshake");
    cr_assert_eq(p.thaw_failed, 0);
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(hibernate, round_trip_thaws_on_the_next_record_with_the_write_sequence_jumped)
{
    round_trip("PSK-AES128-CCM-8");
    round_trip("PSK-AES128-GCM-SHA256");
}

Test(hibernate, a_write_thaws_it_too_and_the_sequence_jumps_on_every_import)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(0);
    uint64_t a, b;

    established(&p, &r, c, "PSK-AES128-CCM-8");
    cli_says(&p, "one");
    a = srv_says(&p, "x");
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    b = srv_says(&p, "y");
    cr_assert_geq(b, a + PSKGW_DTLS_SEQ_JUMP);
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    a = srv_says(&p, "z");
    cr_assert_geq(a, b + PSKGW_DTLS_SEQ_JUMP);
    cr_assert_eq(p.thawed, 2);
    cli_says(&p, "two");
    cr_assert_eq(p.nmsgs, 2);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(hibernate, idle_timeout_of_a_hibernated_session_and_free_while_hibernated)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(0);

    established(&p, &r, c, "PSK-AES128-CCM-8");
    cli_says(&p, "one");
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    cr_assert_eq(p.deadline, pskgw_dtls_session_last_rx(p.srv) + 30000);
    pskgw_dtls_session_timeout(p.srv, p.deadline);
    cr_assert_eq(p.closed_calls, 1);
    cr_assert_eq(p.closed_reason, PSKGW_EAGAIN);
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, (const uint8_t *)"x", 1, p.now), PSKGW_ECLOSED);
    tpair_deinit(&p); /* frees the session with its blob (ASan: no leak) */
    established(&p, &r, c, "PSK-AES128-CCM-8");
    cli_says(&p, "one");
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(hibernate, a_negotiated_connection_id_keeps_the_session_awake)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(8);

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    cr_assert_eq(wolfSSL_dtls_cid_use(p.cli), WOLFSSL_SUCCESS);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    cli_says(&p, "one");
    cr_assert_not_null(pskgw_dtls_session_cid(p.srv, NULL));
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), PSKGW_EUNSUPPORTED);
    cr_assert_not(pskgw_dtls_session_hibernated(p.srv));
    cli_says(&p, "two");
    cr_assert_eq(p.nmsgs, 2);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(hibernate, export_and_import_into_a_new_context_continue_without_a_handshake)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(0), *c2 = mkctx(0);
    pskgw_dtls_session_t *old;
    uint8_t *rec = NULL;
    size_t len = 0;
    uint64_t a, b;

    established(&p, &r, c, "PSK-AES128-CCM-8");
    cli_says(&p, "one");
    a = srv_says(&p, "x");
    p.now += 5000;
    cr_assert_eq(pskgw_dtls_session_export(p.srv, p.now, &rec, &len), 0);
    cr_assert(pskgw_dtls_session_hibernated(p.srv), "export hibernates an awake session");
    cr_assert_eq(pskgw_dtls_session_record_idle_ms(rec, len), 5000);
    /* Malformed records are refused: cut short, wrong magic. */
    cr_assert_eq(
        pskgw_dtls_session_import(c2, &r.iface, tpair_server_cbs(), &p, rec, len - 1, p.now, &old),
        PSKGW_EPARSE);
    rec[0] ^= 1;
    cr_assert_eq(
        pskgw_dtls_session_import(c2, &r.iface, tpair_server_cbs(), &p, rec, len, p.now, &old),
        PSKGW_EPARSE);
    rec[0] ^= 1;
    /* "The process ends": the old session goes; a new one (another context) imports. */
    old = p.srv;
    p.srv = NULL;
    pskgw_dtls_session_free(old);
    p.now += 1000;
    cr_assert_eq(
        pskgw_dtls_session_import(c2, &r.iface, tpair_server_cbs(), &p, rec, len, p.now, &p.srv),
        0);
    pskgw_wipe(rec, len);
    free(rec);
    cr_assert(pskgw_dtls_session_hibernated(p.srv));
    cr_assert_str_eq(pskgw_dtls_session_identity(p.srv), ID);
    cr_assert_str_eq(pskgw_dtls_session_uid(p.srv), UID);
    pskgw_dtls_session_timeout(p.srv, p.now);
    cr_assert_eq(p.deadline, p.now - 5000 + 30000, "the idle time goes on from the record's");
    cli_says(&p, "two");
    cr_assert_eq(p.nmsgs, 2);
    cr_assert_str_eq(p.msgs[1], "two");
    cr_assert_eq(p.last_seq, 2, "message numbers go on");
    b = srv_says(&p, "y");
    cr_assert_geq(b, a + PSKGW_DTLS_SEQ_JUMP);
    cr_assert_str_eq(pskgw_dtls_session_cipher(p.srv), "PSK-AES128-CCM-8");
    cr_assert_eq(p.established, 1, "no new handshake");
    cr_assert_eq(p.thawed, 1);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
    pskgw_dtls_ctx_free(c2);
}

Test(hibernate, a_blob_that_does_not_import_ends_the_session_as_a_thaw_failure)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(0);

    established(&p, &r, c, "PSK-AES128-CCM-8");
    cli_says(&p, "one");
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    p.srv->blob[0] ^= 0xff; /* wolfSSL's export header: not an export any more */
    cli_says(&p, "two");
    cr_assert_eq(p.thaw_failed, 1);
    cr_assert_eq(p.thawed, 0);
    cr_assert_eq(p.closed_calls, 1);
    cr_assert_eq(p.closed_reason, PSKGW_ETLS);
    cr_assert_eq(p.nmsgs, 1, "nothing delivered from the failed thaw");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}
