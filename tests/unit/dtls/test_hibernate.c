/* dtls/session.h hibernation in process: a wolfSSL client against a pskgw_dtls_session through
 * memory queues. The session hibernates (its wolfSSL object exported and freed) and thaws on the
 * client's next record or on a write, with no new handshake; the write sequence number jumps on
 * every import, so no record sequence number (the AES-CCM nonce) is used twice. */
#include "pair.h"
#include "peek.h"

#include "common/err.h"
#include "common/wipe.h"
#include "dtls/internal.h" /* the blob, to damage it */
#include "dtls/slab.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* Whether pskgw_slab_calloc hands out slots (else calloc's blocks: under ASan). */
static bool from_awake_zone(void)
{
    pskgw_slab_mode_t m;

    pskgw_slab_mode(&m);
    return m.active;
}

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
    pskgw_dtls_session_sizes_t parts;
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
        pskgw_dtls_session_sizes(p.srv, &parts);
        cr_assert_eq(parts.allocations, 2, "the session and one allocation for the rest");
        cr_assert_eq(parts.strings, 0);
        cr_assert_eq(parts.blob,
                     pskgw_dtls_session_blob_size(p.srv) + strlen(ID) + strlen(UID) + 2);
        cli_says(&p, "again");
        cr_assert_not(pskgw_dtls_session_hibernated(p.srv), "the client's record thawed it");
        cr_assert_str_eq(pskgw_dtls_session_identity(p.srv), ID, "the strings survive the thaw");
        cr_assert_str_eq(pskgw_dtls_session_uid(p.srv), UID);
        pskgw_dtls_session_sizes(p.srv, &parts);
        cr_assert_eq(parts.allocations, 3);
        cr_assert_eq(parts.blob, 0);
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

/* ---- Connection ID (RFC 9146) ----------------------------------------------------------- */

static const uint8_t CLI_CID[5] = { 0xC1, 0xC2, 0xC3, 0xC4, 0xC5 };

/* A session that negotiated a CID: ours (8 bytes, in the client's records) and the client's
 * (CLI_CID, in ours), after the client's first record. */
static void cid_established(tpair_t *p, tres_t *r, pskgw_dtls_ctx_t *c)
{
    tres_init(r);
    tres_add(r, ID, PSK, UID);
    tpair_init(p, c, r, true, "PSK-AES128-CCM-8", ID, PSK);
    cr_assert_eq(wolfSSL_dtls_cid_use(p->cli), WOLFSSL_SUCCESS);
    cr_assert_eq(wolfSSL_dtls_cid_set(p->cli, (unsigned char *)CLI_CID, sizeof(CLI_CID)),
                 WOLFSSL_SUCCESS);
    tpair_pump(p);
    cr_assert(p->cli_done, "client error %d", p->cli_error);
    cli_says(p, "one");
    cr_assert_eq(p->nmsgs, 1);
    cr_assert_not_null(pskgw_dtls_session_cid(p->srv, NULL));
}

/* The client writes msg into one record that the test holds (tls12_cid, our CID in it). */
static size_t cli_record(tpair_t *p, const char *msg, uint8_t *rec, size_t cap)
{
    size_t n;

    cr_assert_eq(wolfSSL_write(p->cli, msg, (int)strlen(msg)), (int)strlen(msg));
    cr_assert_eq(p->to_server.count, 1);
    n = tq_pop(&p->to_server, rec, cap);
    cr_assert_gt(n, PSKGW_CID_OFFSET);
    cr_assert_eq(rec[0], PSKGW_CT_TLS12_CID);
    return n;
}

/* The server writes msg; its record is a tls12_cid one carrying the client's CID (so the thaw
 * put the peer's CID back); the client reads msg. Returns the record's sequence number. */
static uint64_t srv_says_cid(tpair_t *p, const char *msg)
{
    char buf[64];
    const uint8_t *d;
    uint64_t seq = 0;

    cr_assert_eq(p->to_client.count, 0);
    cr_assert_eq(pskgw_dtls_session_write(p->srv, (const uint8_t *)msg, strlen(msg)), 0);
    cr_assert_eq(p->to_client.count, 1);
    d = p->to_client.data[p->to_client.head];
    cr_assert_gt(p->to_client.len[p->to_client.head], PSKGW_CID_OFFSET + sizeof(CLI_CID));
    cr_assert_eq(d[0], PSKGW_CT_TLS12_CID, "our records carry the client's CID");
    cr_assert_eq(memcmp(d + PSKGW_CID_OFFSET, CLI_CID, sizeof(CLI_CID)), 0);
    for (int i = 5; i < 11; i++)
        seq = seq << 8 | d[i];
    cr_assert_eq(wolfSSL_read(p->cli, buf, sizeof(buf) - 1), (int)strlen(msg));
    buf[strlen(msg)] = '\0';
    cr_assert_str_eq(buf, msg);
    return seq;
}

/* RFC 9146 section 6 across hibernation: a record from a new address thaws the session, and
 * moves the peer only when it authenticates and is newer than every record that authenticated
 * before the session hibernated. */
Test(hibernate, a_cid_session_thaws_on_a_record_from_a_new_address_with_the_sequence_jumped)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(8);
    const uint8_t *cid;
    uint8_t before[PSKGW_CID_MAX], a[512], b[512], d[512];
    size_t cid_len = 0, na, nb, nd;
    uint64_t prev, seq;
    bool move = true;

    cid_established(&p, &r, c);
    cid = pskgw_dtls_session_cid(p.srv, &cid_len);
    memcpy(before, cid, cid_len);
    prev = srv_says_cid(&p, "ack1");
    na = cli_record(&p, "old", a, sizeof(a)); /* held: older than b */
    nb = cli_record(&p, "b", b, sizeof(b));
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, b, nb, p.now), 0);
    cr_assert_eq(p.nmsgs, 2);

    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0, "a CID session hibernates");
    cr_assert(pskgw_dtls_session_hibernated(p.srv));
    cid = pskgw_dtls_session_cid(p.srv, &cid_len);
    cr_assert_not_null(cid, "the CID stays while hibernated (the owner's CID table keeps it)");
    cr_assert_eq(cid_len, 8);
    cr_assert_eq(memcmp(cid, before, cid_len), 0);
    /* The older record from a new address: thaws, authenticates, is delivered, moves nothing. */
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, a, na, p.now, &move), 0);
    cr_assert_eq(p.thawed, 1);
    cr_assert_not(move, "older than a record that authenticated before the hibernation");
    cr_assert_eq(p.moved, 0);
    cr_assert_eq(p.nmsgs, 3);
    cr_assert_str_eq(p.msgs[2], "old");

    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    nd = cli_record(&p, "moved", d, sizeof(d));
    d[nd - 1] ^= 1; /* a forgery from a new address: thaws, is dropped, moves nothing */
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, d, nd, p.now, &move), 0);
    cr_assert_not(move);
    cr_assert_eq(p.thawed, 2);
    cr_assert_eq(p.nmsgs, 3);
    d[nd - 1] ^= 1;
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    /* The newer authentic record from a new address: thaws, moves the peer, is delivered. */
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, d, nd, p.now, &move), 0);
    cr_assert_eq(p.thawed, 3);
    cr_assert(move);
    cr_assert_eq(p.moved, 1);
    cr_assert_eq(p.nmsgs, 4);
    cr_assert_str_eq(p.msgs[3], "moved");
    seq = srv_says_cid(&p, "ack2");
    cr_assert_geq(seq, prev + 3 * PSKGW_DTLS_SEQ_JUMP, "write sequence %llu after %llu",
                  (unsigned long long)seq, (unsigned long long)prev);
    cr_assert_eq(p.established, 1, "no new handshake");
    cr_assert_eq(p.thaw_failed, 0);
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* Restart without a handshake for a CID session: the record carries both CIDs and the highest
 * record that authenticated, the imported session is found by its CID at once and answers
 * with the client's CID under a jumped sequence number. */
Test(hibernate, a_cid_session_survives_export_and_import)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(8), *c2 = mkctx(8);
    pskgw_dtls_session_t *old;
    const uint8_t *cid;
    uint8_t before[PSKGW_CID_MAX], a[512], b[512], *rec = NULL;
    size_t cid_len = 0, len = 0, na, nb;
    uint64_t prev, seq;
    bool move = true;

    cid_established(&p, &r, c);
    cid = pskgw_dtls_session_cid(p.srv, &cid_len);
    memcpy(before, cid, cid_len);
    prev = srv_says_cid(&p, "ack1");
    na = cli_record(&p, "old", a, sizeof(a));
    nb = cli_record(&p, "b", b, sizeof(b));
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, b, nb, p.now), 0);
    cr_assert_eq(pskgw_dtls_session_export(p.srv, p.now, &rec, &len), 0);
    old = p.srv;
    p.srv = NULL;
    pskgw_dtls_session_free(old);
    cr_assert_eq(
        pskgw_dtls_session_import(c2, &r.iface, tpair_server_cbs(), &p, rec, len, p.now, &p.srv),
        0);
    pskgw_wipe(rec, len);
    free(rec);
    cid = pskgw_dtls_session_cid(p.srv, &cid_len);
    cr_assert_not_null(cid, "an imported CID session tells its CID before any record");
    cr_assert_eq(cid_len, 8);
    cr_assert_eq(memcmp(cid, before, cid_len), 0);
    /* The older record from a new address: the imported session knows what authenticated. */
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, a, na, p.now, &move), 0);
    cr_assert_eq(p.thawed, 1);
    cr_assert_not(move);
    cr_assert_eq(p.nmsgs, 3);
    na = cli_record(&p, "moved", a, sizeof(a));
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, a, na, p.now, &move), 0);
    cr_assert(move);
    cr_assert_eq(p.nmsgs, 4);
    cr_assert_str_eq(p.msgs[3], "moved");
    seq = srv_says_cid(&p, "ack2");
    cr_assert_geq(seq, prev + PSKGW_DTLS_SEQ_JUMP);
    cr_assert_eq(p.established, 1, "no new handshake");
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
    pskgw_dtls_ctx_free(c2);
}

/* Frozen sessions (session.h): a CID session frozen is one allocation that tells its identity,
 * UID, CID and last record as the session did; unfrozen it is a hibernated session whose next
 * record (here from a new address) thaws it, is delivered, and whose next write jumps the
 * sequence number. A session the client has not confirmed is not frozen, and stays usable. */
Test(hibernate, a_frozen_cid_session_keeps_what_a_thaw_needs_and_goes_on_unfrozen)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(8);
    pskgw_dtls_frozen_t *f = NULL;
    const uint8_t *cid;
    uint8_t before[PSKGW_CID_MAX], a[512];
    size_t cid_len = 0, na, fsize;
    uint64_t prev, seq, rx;
    pskgw_slab_stats_t awake, st;
    bool move = false;

    cid_established(&p, &r, c);
    cid = pskgw_dtls_session_cid(p.srv, &cid_len);
    memcpy(before, cid, cid_len);
    prev = srv_says_cid(&p, "ack1");
    rx = pskgw_dtls_session_last_rx(p.srv);
    /* The session struct is an awake session's: a slot of the slab's awake zone, given back by
     * the freeze (a frozen fleet leaves whole pages to the kernel, dtls/slab.h). */
    cr_assert_eq(pskgw_slab_owns(p.srv), from_awake_zone());
    pskgw_slab_stats(PSKGW_SLAB_AWAKE, &awake);
    cr_assert_eq(pskgw_dtls_session_freeze(p.srv, &f), 0);
    p.srv = NULL; /* freed by the freeze */
    pskgw_slab_stats(PSKGW_SLAB_AWAKE, &st);
    cr_assert_eq(awake.slots - st.slots, from_awake_zone() ? 1 : 0, "the struct went back");
    cr_assert_str_eq(pskgw_dtls_frozen_identity(f), ID);
    cr_assert_str_eq(pskgw_dtls_frozen_uid(f), UID);
    cid = pskgw_dtls_frozen_cid(f, &cid_len);
    cr_assert_not_null(cid);
    cr_assert_eq(cid_len, 8);
    cr_assert_eq(memcmp(cid, before, cid_len), 0);
    cr_assert_eq(pskgw_dtls_frozen_last_rx(f), rx);
    cr_assert(pskgw_slab_owns(f), "a slot of the slab's frozen zone (don't-dump pages)");
    fsize = pskgw_dtls_frozen_size(f);
    cr_assert_leq(fsize, 256, "one small slot: %zu bytes", fsize);
    cr_assert_eq(pskgw_dtls_session_unfreeze(c, &r.iface, tpair_server_cbs(), &p, f, p.now, &p.srv),
                 0);
    /* It held the session's keys: its slot is wiped (but the free list's 4-byte link). */
    cr_assert_eq(peek_nonzero((const uint8_t *)f, 4, fsize), 0, "the frozen form is wiped");
    cr_assert(pskgw_dtls_session_hibernated(p.srv));
    cr_assert_eq(pskgw_slab_owns(p.srv), from_awake_zone(), "unfrozen: from the awake zone again");
    cr_assert_str_eq(pskgw_dtls_session_identity(p.srv), ID);
    cid = pskgw_dtls_session_cid(p.srv, &cid_len);
    cr_assert_not_null(cid, "an unfrozen CID session tells its CID before any record");
    cr_assert_eq(memcmp(cid, before, cid_len), 0);
    na = cli_record(&p, "moved", a, sizeof(a));
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, a, na, p.now, &move), 0);
    cr_assert_eq(p.thawed, 1);
    cr_assert(move, "newer than every record before the freeze");
    cr_assert_eq(p.nmsgs, 2);
    cr_assert_str_eq(p.msgs[1], "moved");
    seq = srv_says_cid(&p, "ack2");
    cr_assert_geq(seq, prev + PSKGW_DTLS_SEQ_JUMP, "write sequence %llu after %llu",
                  (unsigned long long)seq, (unsigned long long)prev);
    cr_assert_eq(p.established, 1, "no new handshake");
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(hibernate, a_session_the_client_has_not_confirmed_is_not_frozen)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(0);
    pskgw_dtls_frozen_t *f = NULL;

    established(&p, &r, c, "PSK-AES128-CCM-8");
    cr_assert_eq(pskgw_dtls_session_freeze(p.srv, &f), PSKGW_EAGAIN);
    cr_assert_null(f);
    cli_says(&p, "one");
    cr_assert_eq(p.nmsgs, 1, "still usable");
    pskgw_dtls_frozen_free(NULL);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* A client that asked for our CID but wants none in our records (an empty CID of its own, what
 * devices usually do): our records after a thaw are plain ones. */
Test(hibernate, a_cid_session_whose_peer_wants_no_cid_thaws_with_plain_records)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(4);
    uint64_t prev, seq;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    cr_assert_eq(wolfSSL_dtls_cid_use(p.cli), WOLFSSL_SUCCESS);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    cli_says(&p, "one");
    cr_assert_not_null(pskgw_dtls_session_cid(p.srv, NULL));
    prev = srv_says(&p, "x");
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    cli_says(&p, "two");
    cr_assert_eq(p.thawed, 1);
    cr_assert_eq(p.nmsgs, 2);
    seq = srv_says(&p, "y"); /* content type 23: no CID in our records */
    cr_assert_geq(seq, prev + PSKGW_DTLS_SEQ_JUMP);
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

/* A PSX1 record (what the previous release writes: no rx_top, no CID fields) from a PSX2 one of a
 * session without CID: the next process still takes it over. */
Test(hibernate, a_record_of_the_previous_format_is_still_imported)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(0);
    pskgw_dtls_session_t *old;
    uint8_t *rec = NULL, v1[1024];
    size_t len = 0, strs, n;
    uint64_t a, b;

    established(&p, &r, c, "PSK-AES128-CCM-8");
    cli_says(&p, "one");
    a = srv_says(&p, "x");
    cr_assert_eq(pskgw_dtls_session_export(p.srv, p.now, &rec, &len), 0);
    cr_assert_eq(memcmp(rec, "PSX2", 4), 0);
    cr_assert_lt(len, sizeof(v1));
    /* PSX2: magic, idle, delivered, seq_off (24), rx_top (8), identity and uid (u16 each + bytes),
     * our CID length (0), peer CID length (0), blob length, blob. */
    strs = 2 + strlen(ID) + 2 + strlen(UID);
    cr_assert_eq(rec[32 + strs], 0);
    cr_assert_eq(rec[33 + strs], 0);
    memcpy(v1, rec, 24);
    memcpy(v1, "PSX1", 4);
    memcpy(v1 + 24, rec + 32, strs);
    n = len - (32 + strs + 2);
    memcpy(v1 + 24 + strs, rec + 32 + strs + 2, n);
    n += 24 + strs;
    pskgw_wipe(rec, len);
    free(rec);
    old = p.srv;
    p.srv = NULL;
    pskgw_dtls_session_free(old);
    cr_assert_eq(
        pskgw_dtls_session_import(c, &r.iface, tpair_server_cbs(), &p, v1, n, p.now, &p.srv), 0);
    pskgw_wipe(v1, sizeof(v1));
    cr_assert_str_eq(pskgw_dtls_session_identity(p.srv), ID);
    cr_assert_str_eq(pskgw_dtls_session_uid(p.srv), UID);
    cli_says(&p, "two");
    cr_assert_eq(p.nmsgs, 2);
    cr_assert_eq(p.last_seq, 2);
    b = srv_says(&p, "y");
    cr_assert_geq(b, a + PSKGW_DTLS_SEQ_JUMP);
    cr_assert_eq(p.established, 1, "no new handshake");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

static void damaged_blob_fails_to_thaw(size_t at)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(0);

    established(&p, &r, c, "PSK-AES128-CCM-8");
    cli_says(&p, "one");
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    p.srv->blob[at] ^= 0xff;
    cli_says(&p, "two");
    cr_assert_eq(p.thaw_failed, 1);
    cr_assert_eq(p.thawed, 0);
    cr_assert_eq(p.closed_calls, 1);
    cr_assert_eq(p.closed_reason, PSKGW_ETLS);
    cr_assert_eq(p.nmsgs, 1, "nothing delivered from the failed thaw");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* The packed blob: u16 length, then per 8 bytes a mask and the non-zero bytes. */
Test(hibernate, a_blob_that_does_not_import_ends_the_session_as_a_thaw_failure)
{
    damaged_blob_fails_to_thaw(3); /* wolfSSL's export header (its first byte, not zero) */
    damaged_blob_fails_to_thaw(0); /* the packed length: malformed, it does not unpack */
    damaged_blob_fails_to_thaw(2); /* the first mask: the bytes after it shift */
}

/* The export template (hibernate.c): once four sessions hibernated, the next one's blob is
 * packed against what their exports had in common (much smaller) and thaws as before; one
 * session hibernated again and again is not a sample (its keys would stay in the template): its
 * blob does not shrink. */
Test(hibernate, later_sessions_pack_against_the_template_and_one_session_alone_does_not_teach_it)
{
    enum { N = 6 };
    tres_t r[N];
    tpair_t p[N];
    pskgw_dtls_ctx_t *c = mkctx(0);
    size_t size[N], again;

    established(&p[0], &r[0], c, "PSK-AES128-CCM-8");
    cli_says(&p[0], "one");
    cr_assert_eq(pskgw_dtls_session_hibernate(p[0].srv), 0);
    size[0] = pskgw_dtls_session_blob_size(p[0].srv);
    for (int k = 0; k < 4; k++) {
        cli_says(&p[0], "again"); /* thawed */
        cr_assert_eq(pskgw_dtls_session_hibernate(p[0].srv), 0);
        again = pskgw_dtls_session_blob_size(p[0].srv);
        cr_assert_geq(again + 4, size[0], "the same session: %zu then %zu", size[0], again);
    }
    for (int i = 1; i < N; i++) {
        established(&p[i], &r[i], c, "PSK-AES128-CCM-8");
        cli_says(&p[i], "one");
        cr_assert_eq(pskgw_dtls_session_hibernate(p[i].srv), 0);
        size[i] = pskgw_dtls_session_blob_size(p[i].srv);
    }
    cr_assert_lt(size[N - 1] + 40, size[1], "packed against the template: %zu, before %zu",
                 size[N - 1], size[1]);
    for (int i = 0; i < N; i++) {
        cli_says(&p[i], "two");
        cr_assert_not(pskgw_dtls_session_hibernated(p[i].srv));
        cr_assert_str_eq(p[i].msgs[p[i].nmsgs - 1], "two");
        cr_assert_eq(p[i].thaw_failed, 0);
        cr_assert_eq(p[i].closed_calls, 0);
        cr_assert_eq(p[i].established, 1);
        tpair_deinit(&p[i]);
    }
    pskgw_dtls_ctx_free(c);
}
