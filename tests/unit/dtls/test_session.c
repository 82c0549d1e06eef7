/* dtls/session.h + ctx.h in process: a wolfSSL client against pskgw_dtls_session through
 * memory queues. Covers every default suite, asynchronous lookups (park, drop retransmissions,
 * resume), failures that look like a wrong key, cookies and their rotation, timers, TLS
 * framings and heap per established session. */
#include "pair.h"

#include "common/err.h"
#include "dtls/cid.h"
#include "dtls/internal.h"
#include "dtls/parse.h"
#include "dtls/wolfmem.h"

#include <criterion/criterion.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID    "11010008002F33244B115B0AEEB9"
#define PSK   "E5DE45B367DB690F2E17CF9D80A18E87"
#define WRONG "00DE45B367DB690F2E17CF9D80A18E87"
#define UID   "A1B2C3D4E5F60718"

static pskgw_dtls_ctx_t *mkctx(bool dtls, pskgw_framing_t framing, size_t max_id)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;

    o.dtls = dtls;
    o.framing = framing;
    o.max_identity_len = max_id;
    o.idle_timeout_s = 30;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    return c;
}

static int cli_write(tpair_t *p, const char *s)
{
    return wolfSSL_write(p->cli, s, (int)strlen(s));
}

static int cli_read(tpair_t *p, char *buf, int cap)
{
    int n = wolfSSL_read(p->cli, buf, cap - 1);

    if (n > 0)
        buf[n] = '\0';
    return n;
}

static void handshake_and_echo(const char *cipher)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    char buf[64];

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, cipher, ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done, "%s: client error %d", cipher, p.cli_error);
    cr_assert_eq(p.hvr_sent, 1, "one stateless HelloVerifyRequest");
    cr_assert_eq(p.established, 1);
    cr_assert(pskgw_dtls_session_established(p.srv));
    cr_assert_str_eq(pskgw_dtls_session_identity(p.srv), ID);
    cr_assert_str_eq(pskgw_dtls_session_uid(p.srv), UID);
    cr_assert_eq(r.resolves, 0, "a synchronous hit needs no lookup");
    cr_assert_gt(cli_write(&p, "hello"), 0);
    cr_assert_gt(cli_write(&p, "world"), 0);
    tpair_pump(&p);
    cr_assert_eq(p.nmsgs, 2);
    cr_assert_str_eq(p.msgs[0], "hello");
    cr_assert_str_eq(p.msgs[1], "world");
    cr_assert_eq(p.last_seq, 2);
    cr_assert_eq(pskgw_dtls_session_write(p.srv, (const uint8_t *)"ack", 3), 0);
    cr_assert_eq(cli_read(&p, buf, sizeof(buf)), 3);
    cr_assert_str_eq(buf, "ack");
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, every_default_suite)
{
    handshake_and_echo("PSK-AES128-CCM-8");
    handshake_and_echo("PSK-AES128-GCM-SHA256");
    handshake_and_echo("PSK-AES128-CBC-SHA256");
    handshake_and_echo("PSK-AES128-CBC-SHA");
}

Test(session, config_refuses_null_and_unknown_ciphers)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;

    o.dtls = true;
    o.ciphers = "PSK-NULL-SHA256";
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), PSKGW_ECONFIG);
    cr_assert_str_eq(why, "NULL ciphers are refused");
    o.ciphers = "PSK-AES128-CCM8:PSK-NO-SUCH";
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), PSKGW_ECONFIG);
    o.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), PSKGW_ECONFIG);
    o.ciphers = "PSK-AES128-CCM8:ECDHE-PSK-AES128-CBC-SHA256";
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why);
    pskgw_dtls_ctx_free(c);
}

Test(session, ecdhe_psk_suite_when_configured)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;
    tres_t r;
    tpair_t p;

    o.dtls = true;
    o.ciphers = "PSK-AES128-CCM8:ECDHE-PSK-AES128-CBC-SHA256";
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why);
    tres_init(&r);
    r.sync = false;
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "ECDHE-PSK-AES128-CBC-SHA256", ID, PSK);
    tpair_pump(&p);
    cr_assert_eq(tres_complete(&r, 0), 1, "identity read from the ECDHE-PSK key exchange");
    tpair_pump(&p);
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    cr_assert_str_eq(pskgw_dtls_session_cipher(p.srv), "ECDHE-PSK-AES128-CBC-SHA256");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, async_lookup_parks_drops_retransmissions_and_resumes)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);

    tres_init(&r);
    r.sync = false;
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(!p.cli_done);
    cr_assert_eq(r.resolves, 1);
    cr_assert_eq(p.parks, 1);
    cr_assert(pskgw_dtls_session_lookup_pending(p.srv));
    int sends = p.server_sends;
    /* The client retransmits its flight twice while the lookup runs: no new lookup, no reply. */
    tpair_client_timeout(&p);
    tpair_pump(&p);
    tpair_client_timeout(&p);
    tpair_pump(&p);
    cr_assert_eq(r.resolves, 1);
    cr_assert_eq(p.server_sends, sends);
    cr_assert_eq(p.established, 0);
    cr_assert_eq(tres_complete(&r, 0), 1);
    tpair_pump(&p);
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    cr_assert_eq(p.established, 1);
    cr_assert_eq(p.unparks, 1);
    cr_assert_str_eq(pskgw_dtls_session_uid(p.srv), UID);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, lookup_unavailable_drops_the_handshake)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);

    tres_init(&r);
    r.sync = false;
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    int sends = p.server_sends;
    cr_assert_eq(tres_complete(&r, PSKGW_EUNAVAIL), 1);
    cr_assert_eq(p.closed_calls, 1);
    cr_assert_eq(p.closed_reason, PSKGW_EUNAVAIL);
    cr_assert_eq(p.lookup_failed, 1);
    cr_assert_eq(p.server_sends, sends, "no alert");
    tpair_deinit(&p);
    /* resolve() failing at once */
    tres_init(&r);
    r.sync = false;
    r.fail_now = true;
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert_eq(p.closed_reason, PSKGW_EUNAVAIL);
    cr_assert_eq(p.parks, 1);
    cr_assert_eq(p.unparks, 1);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* Runs a handshake expected to fail at the client's Finished; returns server datagrams. */
static int failing(const char *cli_id, const char *cli_psk, bool sync, size_t max_id, bool refuse,
                   tres_t *r, int *reason)
{
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, max_id);
    int sends;

    tres_init(r);
    r->sync = sync;
    tres_add(r, ID, PSK, UID);
    tpair_init(&p, c, r, true, "PSK-AES128-CCM-8", cli_id, cli_psk);
    p.refuse_identity = refuse;
    tpair_pump(&p);
    (void)tres_complete(r, 0);
    tpair_pump(&p);
    cr_assert(!p.cli_done);
    cr_assert_eq(p.established, 0);
    cr_assert_eq(p.auth_failed, 1);
    cr_assert_eq(p.closed_calls, 1);
    *reason = p.closed_reason;
    sends = p.server_sends;
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
    return sends;
}

Test(session, wrong_key_unknown_oversize_and_blocked_identities_look_alike)
{
    tres_t r;
    int reason = 0;
    int wrong = failing(ID, WRONG, true, 0, false, &r, &reason);

    cr_assert_eq(reason, PSKGW_EAUTH);
    int wrong_async = failing(ID, WRONG, false, 0, false, &r, &reason);
    cr_assert_eq(r.resolves, 1);
    int unknown = failing("11010008002F33244B115B0AEEFF", PSK, false, 0, false, &r, &reason);
    cr_assert_eq(reason, PSKGW_EAUTH);
    cr_assert_eq(r.resolves, 1);
    int oversize = failing(ID, PSK, true, 16, false, &r, &reason);
    cr_assert_eq(r.resolves, 0, "an oversize identity is never looked up");
    int blocked = failing(ID, PSK, true, 0, true, &r, &reason);
    cr_assert_eq(r.resolves, 0);
    /* Same datagrams from the server in every case: HVR + first flight, no alert. */
    cr_assert_eq(wrong, wrong_async);
    cr_assert_eq(wrong, unknown);
    cr_assert_eq(wrong, oversize);
    cr_assert_eq(wrong, blocked);
}

/* Raw identities become upper-case hex (as the module prints them); ASCII-hex identities are
 * the KeyID exactly as the device sent them, case kept (issue 10 §2). */
Test(session, raw_identities_hex_encoded_ascii_hex_kept_as_sent)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);

    tres_init(&r);
    tres_add(&r, "1101ABCDEF", PSK, UID);
    tres_add(&r, "abcdef0123", PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-GCM-SHA256", "\x11\x01\xab\xcd\xef", PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    cr_assert_str_eq(pskgw_dtls_session_identity(p.srv), "1101ABCDEF");
    tpair_deinit(&p);
    tpair_init(&p, c, &r, true, "PSK-AES128-GCM-SHA256", "abcdef0123", PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    cr_assert_str_eq(pskgw_dtls_session_identity(p.srv), "abcdef0123");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, park_refused_when_too_many_pending)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);

    tres_init(&r);
    r.sync = false;
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    p.refuse_park = 1;
    tpair_pump(&p);
    cr_assert_eq(p.closed_reason, PSKGW_EBUSY);
    cr_assert_eq(r.resolves, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, cookie_is_stateless_and_survives_one_rotation)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    uint8_t buf[TQ_MAX];
    uint8_t out[PSKGW_DTLS_HVR_MAX];
    size_t on = 0;

    cr_assert_eq(pskgw_dtls_ctx_check_hello(c, 0, (const uint8_t *)"p", 1,
                                            (const uint8_t *)"garbage", 7, out, sizeof(out), &on),
                 PSKGW_EPARSE);
    for (int rotations = 0; rotations <= 2; rotations++) {
        tres_init(&r);
        tres_add(&r, ID, PSK, UID);
        tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
        cr_assert_neq(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
        size_t n = tq_pop(&p.to_server, buf, sizeof(buf)); /* ClientHello, no cookie */
        cr_assert_eq(pskgw_dtls_ctx_check_hello(c, p.now, p.peer, sizeof(p.peer), buf, n, out,
                                                sizeof(out), &on),
                     0);
        tq_push(&p.to_client, out, on);
        cr_assert_neq(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
        n = tq_pop(&p.to_server, buf, sizeof(buf)); /* ClientHello with cookie */
        for (int i = 0; i < rotations; i++)
            cr_assert_eq(pskgw_dtls_ctx_rotate_cookie_secret(c, p.now), 0);
        int rc = pskgw_dtls_ctx_check_hello(c, p.now, p.peer, sizeof(p.peer), buf, n, out,
                                            sizeof(out), &on);
        cr_assert_eq(rc, rotations < 2 ? 1 : 0, "rotations %d", rotations);
        /* Another peer address cannot reuse the cookie. */
        cr_assert_eq(pskgw_dtls_ctx_check_hello(c, p.now, (const uint8_t *)"other", 5, buf, n, out,
                                                sizeof(out), &on),
                     0);
        if (rc == 1) {
            tq_push(&p.to_server, buf, n);
            tpair_pump(&p);
            cr_assert(p.cli_done, "client error %d", p.cli_error);
        }
        tpair_deinit(&p);
    }
    pskgw_dtls_ctx_free(c);
}

/* The session created for a checked ClientHello asks which secret made its cookie
 * (pskgw_dtls_ctx_cookie_index); the context remembers the answer of the check for exactly that
 * datagram and peer (no second HMAC, dtls/ctx.c). A rotation between the check and the session
 * must not leave the old answer: secret 0 is the new one then, and the cookie is secret 1's. */
Test(session, a_rotation_between_the_cookie_check_and_the_session_picks_the_previous_secret)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    uint8_t buf[TQ_MAX];
    uint8_t out[PSKGW_DTLS_HVR_MAX];
    size_t on = 0;
    size_t n;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    cr_assert_neq(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
    n = tq_pop(&p.to_server, buf, sizeof(buf)); /* ClientHello, no cookie */
    cr_assert_eq(
        pskgw_dtls_ctx_check_hello(c, p.now, p.peer, sizeof(p.peer), buf, n, out, sizeof(out), &on),
        0);
    tq_push(&p.to_client, out, on);
    cr_assert_neq(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
    n = tq_pop(&p.to_server, buf, sizeof(buf)); /* ClientHello with the cookie */
    cr_assert_eq(
        pskgw_dtls_ctx_check_hello(c, p.now, p.peer, sizeof(p.peer), buf, n, out, sizeof(out), &on),
        1);
    cr_assert_eq(pskgw_dtls_ctx_cookie_index(c, p.peer, sizeof(p.peer), buf, n), 0);
    cr_assert_lt(pskgw_dtls_ctx_cookie_index(c, (const uint8_t *)"other", 5, buf, n), 0,
                 "another peer's answer is computed, not remembered");
    cr_assert_eq(pskgw_dtls_ctx_rotate_cookie_secret(c, p.now), 0);
    cr_assert_eq(pskgw_dtls_ctx_cookie_index(c, p.peer, sizeof(p.peer), buf, n), 1);
    tq_push(&p.to_server, buf, n);
    tpair_pump(&p);
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* The seam of this binary's --wrap=wc_HmacSetKey (CMakeLists.txt): HMACs keyed with the bytes
 * of `cookie_key`, i.e. cookies computed under that secret by anyone but dtls/ctx.c (which keys
 * its SHA-256 pads itself). */
static const uint8_t *cookie_key;
static int cookie_key_hmacs;
int __real_wc_HmacSetKey(Hmac *hmac, int type, const byte *key, word32 length);
int __wrap_wc_HmacSetKey(Hmac *hmac, int type, const byte *key, word32 length);

int __wrap_wc_HmacSetKey(Hmac *hmac, int type, const byte *key, word32 length)
{
    if (cookie_key != NULL && key != NULL && length == PSKGW_COOKIE_SECRET_LEN &&
        memcmp(key, cookie_key, length) == 0)
        cookie_key_hmacs++;
    return __real_wc_HmacSetKey(hmac, type, key, length);
}

/* Issue 13: the cookie of the ClientHello that starts a session is computed by the context's
 * check (pskgw_dtls_ctx_check_hello) and not again by wolfSSL, which took it statelessly a
 * second time (CreateDtls12Cookie: an HMAC-SHA256 keyed with the secret) before. The session
 * still answers as a good cookie of wolfSSL's own made it: the handshake completes (the
 * ServerHello continues the ClientHello's message_seq, or the client would drop it), and the
 * first ClientHello sent again afterwards (older record number) is a replay: no answer. */
Test(session, the_cookie_checked_by_the_context_is_not_computed_again_by_wolfssl)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    uint8_t hello[TQ_MAX];
    size_t hn;
    int sends;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    cr_assert_neq(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
    hn = tq_pop(&p.to_server, hello, sizeof(hello)); /* ClientHello, no cookie */
    tq_push(&p.to_server, hello, hn);
    cookie_key = c->secret[0];
    cookie_key_hmacs = 0;
    tpair_pump(&p);
    cookie_key = NULL;
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    cr_assert_eq(p.hvr_sent, 1);
    cr_assert_eq(p.established, 1);
    cr_assert_eq(cookie_key_hmacs, 0, "wolfSSL computed the cookie again %d time(s)",
                 cookie_key_hmacs);
    sends = p.server_sends;
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, hello, hn, p.now), 0);
    cr_assert_eq(p.server_sends, sends, "a replayed first ClientHello was answered");
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* The seam of this binary's --wrap=wc_RNG_GenerateBlock (CMakeLists.txt): calls on `rng_watch`,
 * a context's own DRBG (wolfSSL's handshakes draw from the WOLFSSL_CTX's). */
static const WC_RNG *rng_watch;
static int rng_watch_calls;
int __real_wc_RNG_GenerateBlock(WC_RNG *rng, byte *out, word32 sz);
int __wrap_wc_RNG_GenerateBlock(WC_RNG *rng, byte *out, word32 sz);

int __wrap_wc_RNG_GenerateBlock(WC_RNG *rng, byte *out, word32 sz)
{
    if (rng_watch != NULL && rng == rng_watch)
        rng_watch_calls++;
    return __real_wc_RNG_GenerateBlock(rng, out, sz);
}

static int quiet_send(void *arg, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)data;
    return (int)len;
}

static void quiet_message(void *arg, uint64_t seq, const uint8_t *data, size_t len)
{
    (void)arg;
    (void)seq;
    (void)data;
    (void)len;
}

/* Issue 13: each session offering a Connection ID drew its 7 random bytes with a DRBG call of
 * its own (8,250 instructions, as much as 256 bytes cost); the context draws ahead and hands
 * small requests out of its pool (dtls/ctx.c). 32 sessions' CIDs take one call now (32 before),
 * and every CID is still its own. */
Test(session, cids_of_many_sessions_share_one_drbg_call)
{
    static const pskgw_dtls_session_cbs_t cbs = { .send = quiet_send, .message = quiet_message };
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    pskgw_dtls_session_t *ss[32];
    const char *why = NULL;
    tres_t r;

    o.dtls = true;
    o.idle_timeout_s = 30;
    o.cid_len = 8;
    o.cid_worker = 3;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    tres_init(&r);
    rng_watch = &c->rng;
    rng_watch_calls = 0;
    for (int i = 0; i < 32; i++) {
        uint8_t peer[7] = { 4, 0x12, 0x34, 10, 0, 0, (uint8_t)i };

        cr_assert_eq(
            pskgw_dtls_session_new(c, &r.iface, &cbs, NULL, peer, sizeof(peer), 1000, &ss[i]), 0);
    }
    rng_watch = NULL;
    cr_assert_eq(rng_watch_calls, 1, "%d DRBG calls for 32 CIDs", rng_watch_calls);
    for (int i = 0; i < 32; i++) {
        /* The CID offered (the one the peer learns once a client asks). */
        cr_assert_eq(ss[i]->cid_len, 8);
        cr_assert_eq(ss[i]->cid[0], 3);
        for (int j = 0; j < i; j++)
            cr_assert_neq(memcmp(ss[i]->cid, ss[j]->cid, 8), 0, "sessions %d and %d offer one CID",
                          j, i);
    }
    for (int i = 0; i < 32; i++)
        pskgw_dtls_session_free(ss[i]);
    pskgw_dtls_ctx_free(c);
}

/* Issue 16 section 5: a captured ClientHello could be replayed with its cookie for up to twice
 * the rotation period after the secret's last rotation (2 h with the old default). A cookie now
 * lives in the period it was made (30 s by default) and the next one: made at 1 s, accepted at
 * 59 s, refused at 61 s, however often ClientHellos came in between. */
Test(session, an_old_cookie_expires_within_sixty_seconds)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    uint8_t hello[TQ_MAX];
    uint8_t buf[TQ_MAX];
    uint8_t out[PSKGW_DTLS_HVR_MAX];
    size_t on = 0;
    size_t hn;
    size_t n;

    cr_assert_eq(pskgw_dtls_ctx_options(c)->cookie_rotate_ms, 30000);
    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    cr_assert_neq(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
    hn = tq_pop(&p.to_server, hello, sizeof(hello)); /* ClientHello, no cookie */
    cr_assert_eq(pskgw_dtls_ctx_check_hello(c, 1000, p.peer, sizeof(p.peer), hello, hn, out,
                                            sizeof(out), &on),
                 0);
    tq_push(&p.to_client, out, on);
    cr_assert_neq(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
    n = tq_pop(&p.to_server, buf, sizeof(buf)); /* ClientHello with the cookie made at 1 s */
    for (uint64_t t = 2000; t <= 59000; t += 1000) {
        /* other peers' hellos keep the context busy */
        cr_assert_eq(pskgw_dtls_ctx_check_hello(c, t, (const uint8_t *)"other", 5, hello, hn, out,
                                                sizeof(out), &on),
                     0);
        cr_assert_eq(
            pskgw_dtls_ctx_check_hello(c, t, p.peer, sizeof(p.peer), buf, n, out, sizeof(out), &on),
            1, "accepted at %llu ms", (unsigned long long)t);
    }
    cr_assert_eq(
        pskgw_dtls_ctx_check_hello(c, 61000, p.peer, sizeof(p.peer), buf, n, out, sizeof(out), &on),
        0, "a replay after 60 s gets a new HelloVerifyRequest");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* After a silence of two periods no old secret is kept. */
Test(session, a_cookie_is_refused_after_a_long_silence)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    uint8_t buf[TQ_MAX];
    uint8_t out[PSKGW_DTLS_HVR_MAX];
    size_t on = 0;
    size_t n;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    cr_assert_neq(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
    n = tq_pop(&p.to_server, buf, sizeof(buf));
    cr_assert_eq(
        pskgw_dtls_ctx_check_hello(c, 29000, p.peer, sizeof(p.peer), buf, n, out, sizeof(out), &on),
        0);
    tq_push(&p.to_client, out, on);
    cr_assert_neq(wolfSSL_connect(p.cli), WOLFSSL_SUCCESS);
    n = tq_pop(&p.to_server, buf, sizeof(buf));
    cr_assert_eq(
        pskgw_dtls_ctx_check_hello(c, 31000, p.peer, sizeof(p.peer), buf, n, out, sizeof(out), &on),
        1, "the next period");
    cr_assert_eq(
        pskgw_dtls_ctx_check_hello(c, 60000, p.peer, sizeof(p.peer), buf, n, out, sizeof(out), &on),
        0, "two periods on");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* A handshake that gets no ClientKeyExchange ends at the half-open deadline, long before the
 * handshake deadline; one whose key exchange came does not. */
Test(session, half_open_deadline_before_the_key_exchange)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;

    o.dtls = true;
    o.handshake_timeout_ms = 60000;
    o.half_open_timeout_ms = 2000;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    p.drop_to_client = true; /* the client never sees our flight: no key exchange */
    tpair_pump(&p);
    cr_assert_not_null(p.srv);
    cr_assert_eq(p.closed_calls, 0);
    cr_assert_leq(p.deadline, p.now + 2000, "the half-open deadline is announced");
    pskgw_dtls_session_timeout(p.srv, p.now + 2000);
    cr_assert_eq(p.closed_calls, 1);
    cr_assert_eq(p.closed_reason, PSKGW_ETIMEOUT);
    cr_assert_null(pskgw_dtls_session_identity(p.srv));
    tpair_deinit(&p);
    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done, "a full handshake (error %d)", p.cli_error);
    pskgw_dtls_session_timeout(p.srv, p.now + 2000);
    cr_assert_eq(p.closed_calls, 0, "established: only the idle deadline applies");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, handshake_deadline_cancels_a_pending_lookup)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);

    tres_init(&r);
    r.sync = false;
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert_eq(p.deadline, p.now + 10000, "only the handshake deadline while parked");
    pskgw_dtls_session_timeout(p.srv, p.now + 9999);
    cr_assert_eq(p.closed_calls, 0);
    pskgw_dtls_session_timeout(p.srv, p.now + 10000);
    cr_assert_eq(p.closed_reason, PSKGW_ETIMEOUT);
    cr_assert_eq(r.cancels, 1);
    cr_assert_eq(p.unparks, 1);
    tpair_deinit(&p);
    /* freeing a session with a pending lookup cancels it too */
    tres_init(&r);
    r.sync = false;
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    pskgw_dtls_session_free(p.srv);
    p.srv = NULL;
    cr_assert_eq(r.cancels, 1);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, retransmits_its_flight_when_the_client_is_silent)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    /* Deliver ClientHello(cookie) to the server, but lose its reply. */
    p.drop_to_client = true;
    tpair_pump(&p);
    cr_assert_not_null(p.srv);
    cr_assert_eq(p.deadline, p.now + 1000, "wolfSSL's first retransmission timeout");
    int sends = p.server_sends;
    p.drop_to_client = false;
    p.now += 1000;
    pskgw_dtls_session_timeout(p.srv, p.now);
    cr_assert_gt(p.server_sends, sends);
    cr_assert_eq(p.deadline, p.now + 2000, "doubled");
    tpair_pump(&p);
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, idle_timeout_and_close_notify)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    char buf[32];

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    cr_assert_eq(p.deadline, p.now + 30000);
    pskgw_dtls_session_timeout(p.srv, p.now + 30000);
    cr_assert_eq(p.closed_reason, PSKGW_EAGAIN);
    cr_assert_eq(cli_read(&p, buf, sizeof(buf)), 0, "client got close_notify");
    tpair_deinit(&p);
    /* the client closes */
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    (void)wolfSSL_shutdown(p.cli);
    tpair_pump(&p);
    cr_assert_eq(p.closed_calls, 1);
    cr_assert_eq(p.closed_reason, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, garbage_truncated_and_replayed_records)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    uint8_t rec[256];
    size_t n;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    cr_assert_gt(cli_write(&p, "one"), 0);
    n = tq_pop(&p.to_server, rec, sizeof(rec));
    cr_assert_gt(n, 13);
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec, n, p.now), 0);
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec, n, p.now), 0);     /* replay */
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec, n - 3, p.now), 0); /* truncated */
    rec[n - 1] ^= 1;
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec, n, p.now), 0); /* bad MAC */
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, (const uint8_t *)"junk", 4, p.now), 0);
    cr_assert_eq(p.nmsgs, 1);
    cr_assert_eq(p.closed_calls, 0, "a bad datagram does not end the session");
    cr_assert_gt(cli_write(&p, "two"), 0);
    tpair_pump(&p);
    cr_assert_eq(p.nmsgs, 2);
    cr_assert_eq(p.last_seq, 2);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

static void tls_framing(pskgw_framing_t f, bool async)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(false, f, 0);
    char buf[64];

    tres_init(&r);
    r.sync = !async;
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, false, "PSK-AES128-GCM-SHA256", ID, PSK);
    tpair_pump(&p);
    if (async) {
        cr_assert(!p.cli_done);
        cr_assert_eq(p.parks, 1);
        cr_assert_eq(tres_complete(&r, 0), 1);
        tpair_pump(&p);
    }
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    if (f == PSKGW_FRAMING_LEN16) {
        cr_assert_gt(wolfSSL_write(p.cli,
                                   "\x00\x03"
                                   "abc\x00\x02"
                                   "de\x00",
                                   10),
                     0);
        cr_assert_gt(wolfSSL_write(p.cli, "\x01z", 2), 0);
    } else if (f == PSKGW_FRAMING_NEWLINE) {
        cr_assert_gt(cli_write(&p, "abc\r\nde\n"), 0);
        cr_assert_gt(cli_write(&p, "z\n"), 0);
    } else {
        cr_assert_gt(cli_write(&p, "abc"), 0);
        cr_assert_gt(cli_write(&p, "de"), 0);
        cr_assert_gt(cli_write(&p, "z"), 0);
    }
    tpair_pump(&p);
    cr_assert_eq(p.nmsgs, 3, "framing %d", (int)f);
    cr_assert_str_eq(p.msgs[0], "abc");
    cr_assert_str_eq(p.msgs[1], "de");
    cr_assert_str_eq(p.msgs[2], "z");
    cr_assert_eq(pskgw_dtls_session_write(p.srv, (const uint8_t *)"ok", 2), 0);
    int n = cli_read(&p, buf, sizeof(buf));
    if (f == PSKGW_FRAMING_LEN16)
        cr_assert(n == 4 && memcmp(buf, "\x00\x02ok", 4) == 0);
    else if (f == PSKGW_FRAMING_NEWLINE)
        cr_assert_str_eq(buf, "ok\n");
    else
        cr_assert_str_eq(buf, "ok");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, tls_each_framing)
{
    tls_framing(PSKGW_FRAMING_LEN16, false);
    tls_framing(PSKGW_FRAMING_NEWLINE, true);
    tls_framing(PSKGW_FRAMING_RECORD, true);
}

Test(session, freeing_from_the_message_callback_stops_delivery)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(false, PSKGW_FRAMING_NEWLINE, 0);

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, false, "PSK-AES128-GCM-SHA256", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    p.free_in_message = true;
    cr_assert_gt(cli_write(&p, "a\nb\nc\n"), 0);
    tpair_pump(&p);
    cr_assert_eq(p.nmsgs, 1, "nothing after the owner freed the session");
    cr_assert_null(p.srv);
    cr_assert_eq(p.closed_calls, 0, "free fires no callback");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, tls_wrong_key_and_oversize_message)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(false, PSKGW_FRAMING_LEN16, 0);

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, false, "PSK-AES128-GCM-SHA256", ID, WRONG);
    tpair_pump(&p);
    cr_assert(!p.cli_done);
    cr_assert_eq(p.closed_reason, PSKGW_EAUTH);
    cr_assert_eq(p.auth_failed, 1);
    tpair_deinit(&p);
    tpair_init(&p, c, &r, false, "PSK-AES128-GCM-SHA256", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    cr_assert_gt(wolfSSL_write(p.cli, "\xff\xff", 2), 0); /* 65535 > max_message */
    tpair_pump(&p);
    cr_assert_eq(p.closed_reason, PSKGW_ETOOBIG);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

/* Heap in use, with wolfSSL's pooled I/O buffers returned first (they belong to no session). */
static size_t heap_in_use(void)
{
    pskgw_wolfmem_trim();
    if (__sanitizer_get_current_allocated_bytes != NULL)
        return __sanitizer_get_current_allocated_bytes();
    return mallinfo2().uordblks;
}

Test(session, heap_per_established_session)
{
    enum { N = 20 };
    static tpair_t p[N];
    tres_t r;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    size_t with, without;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    for (int i = 0; i < N; i++) {
        tpair_init(&p[i], c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
        tpair_pump(&p[i]);
        cr_assert(p[i].cli_done);
        cr_assert_gt(cli_write(&p[i], "first record"), 0);
        tpair_pump(&p[i]);
        cr_assert_eq(p[i].nmsgs, 1);
    }
    with = heap_in_use();
    for (int i = 0; i < N; i++) {
        pskgw_dtls_session_free(p[i].srv);
        p[i].srv = NULL;
    }
    without = heap_in_use();
    cr_assert_gt(with, without);
    printf("heap per established session: %zu bytes\n", (with - without) / N);
    cr_log_info("heap per established session: %zu bytes", (with - without) / N);
    cr_assert_lt((with - without) / N, 16384, "per-session state stays small");
    for (int i = 0; i < N; i++)
        tpair_deinit(&p[i]);
    pskgw_dtls_ctx_free(c);
}

/* The session lets go of its resolver when the handshake completes, before the ESTABLISHED
 * event: the owner frees what backs it then (the listener's handshake state, gateway/
 * listen_api.c), and the session goes on without it. */
Test(session, the_resolver_is_let_go_once_established)
{
    tpair_t p;
    tres_t r;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    cr_assert_eq(p.established, 1);
    cr_assert_null(p.srv->resolver, "an established session holds no resolver");
    memset(&r.iface, 0xA5, sizeof(r.iface)); /* what backed it is gone */
    cr_assert_gt(cli_write(&p, "after"), 0);
    tpair_pump(&p);
    cr_assert_eq(p.nmsgs, 1);
    cr_assert_str_eq(p.msgs[0], "after");
    pskgw_dtls_session_timeout(p.srv, p.now + 1000);
    pskgw_dtls_session_close_notify(p.srv);
    cr_assert_eq(p.closed_calls, 1);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* The ClientHello random that started a session, noted by its owner, is known for the
 * session's life awake (the listener tells a late duplicate of it from a device restart). */
Test(session, the_client_hello_random_is_known_awake)
{
    tpair_t p;
    tres_t r;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    uint8_t random[32], other[32];

    for (int i = 0; i < 32; i++) {
        random[i] = (uint8_t)(i * 7 + 1);
        other[i] = random[i];
    }
    other[31] ^= 0x01; /* one bit off */
    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    cr_assert_not(pskgw_dtls_session_hello_is(p.srv, random), "none noted: not known");
    pskgw_dtls_session_note_hello(p.srv, random);
    cr_assert(pskgw_dtls_session_hello_is(p.srv, random));
    cr_assert_not(pskgw_dtls_session_hello_is(p.srv, other));
    cr_assert_not(pskgw_dtls_session_hello_is(NULL, random));
    cr_assert_gt(cli_write(&p, "a record"), 0);
    tpair_pump(&p);
    cr_assert_eq(p.nmsgs, 1);
    cr_assert(pskgw_dtls_session_hello_is(p.srv, random), "still known after records");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* What a half-open handshake holds before its key is known (the figure in docs/SECURITY.md):
 * the session after the cookie-verified ClientHello and our flight, no ClientKeyExchange. */
Test(session, heap_per_half_open_handshake)
{
    enum { N = 20 };
    static tpair_t p[N];
    tres_t r;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    size_t with, without;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    for (int i = 0; i < N; i++) {
        tpair_init(&p[i], c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
        p[i].drop_to_client = true;
        tpair_pump(&p[i]);
        cr_assert_not_null(p[i].srv);
        cr_assert_null(pskgw_dtls_session_identity(p[i].srv));
        cr_assert_eq(p[i].closed_calls, 0);
    }
    with = heap_in_use();
    for (int i = 0; i < N; i++) {
        pskgw_dtls_session_free(p[i].srv);
        p[i].srv = NULL;
    }
    without = heap_in_use();
    cr_assert_gt(with, without);
    printf("heap per half-open handshake: %zu bytes\n", (with - without) / N);
    cr_assert_lt((with - without) / N, 16384, "per-handshake state stays small");
    for (int i = 0; i < N; i++)
        tpair_deinit(&p[i]);
    pskgw_dtls_ctx_free(c);
}

/* Only authenticated input keeps an established session alive: junk, replays, bad MACs and
 * truncated records (anyone can spoof them from the device's address) do not move the idle
 * deadline; a real message does. */
Test(session, idle_deadline_moves_only_on_authenticated_input)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    uint8_t rec[256];
    size_t n;
    uint64_t t0;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    t0 = p.now;
    cr_assert_eq(p.deadline, t0 + 30000);
    cr_assert_gt(cli_write(&p, "one"), 0);
    n = tq_pop(&p.to_server, rec, sizeof(rec));
    cr_assert_gt(n, 13);
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec, n, t0), 0);
    cr_assert_eq(p.nmsgs, 1);
    /* 20 s later: spoofed junk, a replay, a truncated and a tampered record */
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, (const uint8_t *)"junk", 4, t0 + 20000), 0);
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec, n, t0 + 20000), 0);
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec, n - 3, t0 + 20000), 0);
    rec[n - 1] ^= 1;
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec, n, t0 + 20000), 0);
    cr_assert_eq(p.nmsgs, 1);
    cr_assert_eq(p.deadline, t0 + 30000, "deadline moved by unauthenticated input");
    pskgw_dtls_session_timeout(p.srv, t0 + 30000);
    cr_assert_eq(p.closed_calls, 1);
    cr_assert_eq(p.closed_reason, PSKGW_EAGAIN);
    tpair_deinit(&p);
    /* a real message does move it */
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    t0 = p.now;
    cr_assert_gt(cli_write(&p, "two"), 0);
    n = tq_pop(&p.to_server, rec, sizeof(rec));
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec, n, t0 + 20000), 0);
    cr_assert_eq(p.nmsgs, 1);
    cr_assert_eq(p.deadline, t0 + 50000);
    pskgw_dtls_session_timeout(p.srv, t0 + 30000);
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* pskgw_dtls_session_touch (forwarding: bytes from the backend count as activity): it moves
 * the announced idle deadline to now + idle_timeout_s, never before the handshake completes,
 * never after the end. */
Test(session, touch_moves_the_idle_deadline)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    uint64_t t0;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    pskgw_dtls_session_touch(p.srv, p.now + 20000); /* not established yet: no effect */
    tpair_pump(&p);
    cr_assert(p.cli_done);
    t0 = p.now;
    cr_assert_eq(p.deadline, t0 + 30000);
    pskgw_dtls_session_touch(p.srv, t0 + 20000);
    cr_assert_eq(p.deadline, t0 + 50000, "the idle deadline restarts at the touch");
    pskgw_dtls_session_timeout(p.srv, t0 + 30000);
    cr_assert_eq(p.closed_calls, 0, "not idle: touched 10 s ago");
    pskgw_dtls_session_timeout(p.srv, t0 + 50000);
    cr_assert_eq(p.closed_calls, 1);
    cr_assert_eq(p.closed_reason, PSKGW_EAGAIN);
    pskgw_dtls_session_touch(p.srv, t0 + 60000); /* over: no effect, no callback */
    cr_assert_eq(p.closed_calls, 1);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* A datagram longer than a 16-bit length parked while a lookup runs (possible through the API
 * with a large max_parked_bytes) must not desynchronise the parked-datagram framing into
 * reads past the buffer. */
Test(session, oversize_datagram_parked_during_a_lookup_stays_in_bounds)
{
    enum { BIG = 70000 };
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;
    tres_t r;
    tpair_t p;
    uint8_t *big = calloc(1, BIG);

    cr_assert_not_null(big);
    o.dtls = true;
    o.max_parked_bytes = 4 * BIG;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    tres_init(&r);
    r.sync = false;
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(pskgw_dtls_session_lookup_pending(p.srv));
    /* Truncated to 16 bits the length is BIG - 65536 = 4464; then the bytes there read as a
     * length that jumps to the last two bytes, which read as 0xFFFF. */
    big[4464] = 0xFF;
    big[4465] = 0xFA; /* 65530: next length at 4466 + 65530 = 69996 */
    big[69996] = 0xFF;
    big[69997] = 0xFF;
    (void)pskgw_dtls_session_feed(p.srv, big, BIG, p.now);
    cr_assert_eq(tres_complete(&r, 0), 1);
    tpair_pump(&p);
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
    free(big);
}

/* One spoofed datagram holding a well-formed record longer than wolfSSL's datagram read size
 * must not leave a partial record in wolfSSL that swallows the device's next datagrams. */
Test(session, a_record_larger_than_the_read_size_does_not_wedge_the_session)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    static uint8_t big[6000];
    const size_t sizes[] = { 1600, 1950, 2600, 5000 };

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        char msg[16];

        memset(big, 0xA5, n);
        big[0] = 23;
        big[1] = 0xFE;
        big[2] = 0xFD;
        big[3] = 0;
        big[4] = 1; /* epoch 1 */
        memset(big + 5, 0, 6);
        big[10] = (uint8_t)(100 + k);
        big[11] = (uint8_t)((n - 13) >> 8);
        big[12] = (uint8_t)(n - 13);
        cr_assert_eq(pskgw_dtls_session_feed(p.srv, big, n, p.now), 0);
        (void)snprintf(msg, sizeof(msg), "after%zu", n);
        cr_assert_gt(cli_write(&p, msg), 0);
        tpair_pump(&p);
        cr_assert_eq(p.nmsgs, (int)k + 1, "the message after a %zu-byte record was lost", n);
        cr_assert_str_eq(p.msgs[k], msg);
    }
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* The client's last flight sent as one record per datagram and reordered (Finished before the
 * ChangeCipherSpec): an undecryptable Finished that arrives before the ChangeCipherSpec is not
 * an authentication failure (that would count against, and could block, a valid identity). */
Test(session, finished_overtaking_change_cipher_spec_is_not_an_auth_failure)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    static uint8_t dg[TQ_CAP][2048];
    size_t dl[TQ_CAP];
    uint8_t rec[16][512];
    size_t rl[16];
    int nd = 0, nr = 0, ccs = -1, fin = -1;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    /* Run the handshake up to the client's second flight, and hold that flight. */
    p.hold_cke = true;
    tpair_pump(&p);
    while (p.held.count > 0) {
        dl[nd] = tq_pop(&p.held, dg[nd], sizeof(dg[nd]));
        nd++;
    }
    p.hold_cke = false;
    cr_assert_gt(nd, 0, "the client's ClientKeyExchange flight");
    /* Split it into single records. */
    for (int i = 0; i < nd; i++) {
        size_t off = 0;

        while (off < dl[i]) {
            pskgw_dtls_record_t rc;
            size_t used = 0;

            cr_assert_eq(pskgw_dtls_record_parse(dg[i] + off, dl[i] - off, &rc, &used), 0);
            cr_assert_lt(nr, 16);
            memcpy(rec[nr], dg[i] + off, used);
            rl[nr] = used;
            if (rc.type == 20)
                ccs = nr;
            if (rc.type == 22 && rc.epoch == 1)
                fin = nr;
            nr++;
            off += used;
        }
    }
    cr_assert(ccs >= 0 && fin > ccs, "CKE, CCS, Finished: %d datagrams, %d records, ccs %d fin %d",
              nd, nr, ccs, fin);
    for (int i = 0; i < nr; i++) {
        if (i != ccs && i != fin)
            cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec[i], rl[i], p.now), 0);
    }
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec[fin], rl[fin], p.now), 0);
    cr_assert_eq(p.closed_calls, 0, "ended with %d", p.closed_reason);
    cr_assert_eq(p.auth_failed, 0);
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec[ccs], rl[ccs], p.now), 0);
    /* Either wolfSSL kept the early Finished, or the client's retransmission completes it. */
    if (!pskgw_dtls_session_established(p.srv)) {
        tpair_client_timeout(&p);
        tpair_pump(&p);
    }
    tpair_pump(&p);
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    cr_assert_eq(p.established, 1);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* A DTLS message the socket could not take (EAGAIN) is reported to the writer, not claimed as
 * sent; the session stays up (a lost datagram) and the next write goes through. */
Test(session, dtls_write_reports_a_datagram_the_socket_refused)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = mkctx(true, PSKGW_FRAMING_RECORD, 0);
    char buf[32];

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done);
    p.fail_sends = true;
    cr_assert_eq(pskgw_dtls_session_write(p.srv, (const uint8_t *)"lost", 4), PSKGW_EIO);
    cr_assert_eq(p.closed_calls, 0);
    p.fail_sends = false;
    cr_assert_eq(pskgw_dtls_session_write(p.srv, (const uint8_t *)"ack", 3), 0);
    cr_assert_eq(cli_read(&p, buf, sizeof(buf)), 3);
    cr_assert_str_eq(buf, "ack");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

/* DTLS 1.2 Connection ID (RFC 9146 section 6): a record from a new address moves the peer only
 * when it authenticates AND its sequence number is above every record that authenticated
 * before; an older record (reordered, never seen) is delivered but moves nothing, a replay or a
 * forgery neither. */
Test(session, cid_moves_the_peer_only_for_a_newer_authenticated_record)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;
    tres_t r;
    tpair_t p;
    const uint8_t *cid;
    size_t cid_len = 0;
    uint8_t rec[4][512];
    size_t rec_len[4];
    bool move = true;

    o.dtls = true;
    o.cid_len = 8;
    o.cid_worker = 5;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    cr_assert_eq(wolfSSL_dtls_cid_use(p.cli), WOLFSSL_SUCCESS);
    tpair_pump(&p);
    cr_assert_eq(p.established, 1);
    cid = pskgw_dtls_session_cid(p.srv, &cid_len);
    cr_assert_not_null(cid, "the client asked: a CID was negotiated");
    cr_assert_eq(cid_len, 8);
    cr_assert_eq(cid[0], 5, "byte 0 is the worker index");
    /* Three records a, b, c (sequence numbers rising), held by the test. */
    cr_assert_gt(cli_write(&p, "a"), 0);
    cr_assert_gt(cli_write(&p, "b"), 0);
    cr_assert_gt(cli_write(&p, "c"), 0);
    for (int i = 0; i < 3; i++) {
        rec_len[i] = tq_pop(&p.to_server, rec[i], sizeof(rec[i]));
        cr_assert_gt(rec_len[i], 0);
        cr_assert_eq(rec[i][0], PSKGW_CT_TLS12_CID);
    }
    /* b from the session's own address. */
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec[1], rec_len[1], p.now), 0);
    cr_assert_eq(p.nmsgs, 1);
    /* a from a new address: it authenticates (never seen, in the replay window) but is older. */
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, rec[0], rec_len[0], p.now, &move), 0);
    cr_assert_eq(p.nmsgs, 2);
    cr_assert_str_eq(p.msgs[1], "a");
    cr_assert(!move);
    cr_assert_eq(p.moved, 0);
    /* A forgery of c with a higher sequence number: does not authenticate. */
    memcpy(rec[3], rec[2], rec_len[2]);
    rec_len[3] = rec_len[2];
    rec[3][5] = 0x7F;
    rec[3][rec_len[3] - 1] ^= 0x01;
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, rec[3], rec_len[3], p.now, &move), 0);
    cr_assert(!move);
    cr_assert_eq(p.nmsgs, 2);
    /* c from the new address: newer and authentic: the peer moves before c is delivered. */
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, rec[2], rec_len[2], p.now, &move), 0);
    cr_assert(move);
    cr_assert_eq(p.moved, 1);
    cr_assert_eq(p.nmsgs, 3);
    cr_assert_str_eq(p.msgs[2], "c");
    /* c again (a replay from yet another address): nothing. */
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, rec[2], rec_len[2], p.now, &move), 0);
    cr_assert(!move);
    cr_assert_eq(p.moved, 1);
    cr_assert_eq(p.nmsgs, 3);
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(session, cid_is_not_negotiated_for_a_client_that_does_not_ask)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;
    tres_t r;
    tpair_t p;
    bool move = true;

    o.dtls = true;
    o.cid_len = 4;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert_eq(p.established, 1);
    cr_assert_null(pskgw_dtls_session_cid(p.srv, NULL));
    cr_assert_eq(pskgw_dtls_session_feed_cid(p.srv, (const uint8_t *)"x", 1, p.now, &move),
                 PSKGW_ENOTFOUND);
    cr_assert(!move);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
    o.cid_len = 3;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), PSKGW_ECONFIG, "cid length below 4");
    o.cid_len = 17;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), PSKGW_ECONFIG, "cid length above 16");
}
