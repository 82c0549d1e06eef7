/* Session tickets (dtls/ticket.h): a wolfSSL client resumes against a pskgw session made from
 * another context (another gateway) deriving its keys from the same secret; identity and uid
 * come from the ticket; no lookup; rotation, removal and expiry lead to full handshakes. */
#include "pair.h"

#include "common/err.h"
#include "dtls/ctx.h"
#include "dtls/ticket.h"

#include <criterion/criterion.h>
#include <string.h>

#define ID  "11010008002F33244B115B0AEEB9"
#define PSK "E5DE45B367DB690F2E17CF9D80A18E87"
#define UID "0002000089282245"

#define OLD "old shared secret of the domain, 32+"
#define NEW "new shared secret of the domain, 32+"

static uint64_t fake_now = 1700000000;

static uint64_t fake_clock(void)
{
    return fake_now;
}

static pskgw_ticket_keys_t *mkkeys(const char *first, const char *second, uint32_t lifetime)
{
    const uint8_t *s[2] = { (const uint8_t *)first, (const uint8_t *)second };
    size_t l[2] = { strlen(first), second != NULL ? strlen(second) : 0 };
    pskgw_ticket_keys_t *k = NULL;

    cr_assert_eq(pskgw_ticket_keys_new(s, l, second != NULL ? 2 : 1, lifetime, &k), 0);
    pskgw_ticket_keys_set_clock(k, fake_clock);
    return k;
}

static pskgw_dtls_ctx_t *mkctx(bool dtls, pskgw_ticket_keys_t *k)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;

    o.dtls = dtls;
    o.idle_timeout_s = 30;
    o.tickets = k;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    return c;
}

/* One handshake of a client (with `sess` to resume, or NULL) against ctx; returns the client's
 * session afterwards (caller frees) and whether it was resumed. */
static WOLFSSL_SESSION *connect_once(pskgw_dtls_ctx_t *c, bool dtls, tres_t *r,
                                     WOLFSSL_SESSION *sess, bool *reused)
{
    tpair_t p;
    WOLFSSL_SESSION *out;

    tpair_init(&p, c, r, dtls, "PSK-AES128-CCM-8", ID, PSK);
    cr_assert_eq(wolfSSL_UseSessionTicket(p.cli), WOLFSSL_SUCCESS);
    if (sess != NULL)
        cr_assert_eq(wolfSSL_set_session(p.cli, sess), WOLFSSL_SUCCESS);
    tpair_pump(&p);
    if (tres_complete(r, 0) > 0)
        tpair_pump(&p);
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    cr_assert_eq(p.established, 1);
    cr_assert_str_eq(pskgw_dtls_session_identity(p.srv), ID);
    cr_assert_not_null(pskgw_dtls_session_uid(p.srv));
    cr_assert_str_eq(pskgw_dtls_session_uid(p.srv), UID);
    cr_assert_gt(wolfSSL_write(p.cli, "hi", 2), 0);
    tpair_pump(&p);
    cr_assert_eq(p.nmsgs, 1);
    *reused = wolfSSL_session_reused(p.cli) == 1;
    out = wolfSSL_get1_session(p.cli);
    cr_assert_not_null(out);
    tpair_deinit(&p);
    return out;
}

static void resume_on_other_node(bool dtls)
{
    pskgw_ticket_keys_t *ka = mkkeys(OLD, NULL, 3600), *kb = mkkeys(OLD, NULL, 3600);
    pskgw_dtls_ctx_t *a = mkctx(dtls, ka), *b = mkctx(dtls, kb);
    WOLFSSL_SESSION *s1, *s2;
    bool reused = true;
    tres_t r;

    tres_init(&r);
    r.sync = false;
    tres_add(&r, ID, PSK, UID);
    s1 = connect_once(a, dtls, &r, NULL, &reused);
    cr_assert(!reused);
    cr_assert_eq(r.resolves, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(ka)->sealed, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(ka)->full, 1);
    s2 = connect_once(b, dtls, &r, s1, &reused);
    cr_assert(reused, "abbreviated handshake on the other node");
    cr_assert_eq(r.resolves, 1, "no lookup for a resumed session");
    cr_assert_eq(pskgw_ticket_keys_stats(kb)->opened, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(kb)->resumed_ticket, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(kb)->full, 0);
    wolfSSL_SESSION_free(s1);
    wolfSSL_SESSION_free(s2);
    pskgw_dtls_ctx_free(a);
    pskgw_dtls_ctx_free(b);
    pskgw_ticket_keys_free(ka);
    pskgw_ticket_keys_free(kb);
}

Test(ticket, dtls_ticket_from_a_resumes_on_b)
{
    resume_on_other_node(true);
}

Test(ticket, tls_ticket_from_a_resumes_on_b)
{
    resume_on_other_node(false);
}

Test(ticket, rotation_keeps_old_tickets_until_the_old_secret_goes)
{
    pskgw_ticket_keys_t *k1 = mkkeys(OLD, NULL, 3600), *k2 = mkkeys(NEW, OLD, 3600),
                        *k3 = mkkeys(NEW, NULL, 3600);
    pskgw_dtls_ctx_t *c = mkctx(true, k1);
    WOLFSSL_SESSION *s1, *s2, *s3;
    bool reused = false;
    tres_t r;

    tres_init(&r);
    r.sync = false;
    tres_add(&r, ID, PSK, UID);
    s1 = connect_once(c, true, &r, NULL, &reused);
    /* reload: the new secret first, the old one kept */
    cr_assert_eq(pskgw_dtls_ctx_set_tickets(c, k2), 0);
    s2 = connect_once(c, true, &r, s1, &reused);
    cr_assert(reused, "an old ticket still resumes after the rotation");
    cr_assert_eq(pskgw_ticket_keys_stats(k2)->opened, 1);
    cr_assert_eq(r.resolves, 1);
    wolfSSL_SESSION_free(s2);
    /* the old secret removed: the old ticket is refused, a full handshake follows */
    cr_assert_eq(pskgw_dtls_ctx_set_tickets(c, k3), 0);
    s3 = connect_once(c, true, &r, s1, &reused);
    cr_assert(!reused);
    cr_assert_eq(pskgw_ticket_keys_stats(k3)->unknown_key, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k3)->full, 1);
    cr_assert_eq(r.resolves, 2);
    wolfSSL_SESSION_free(s1);
    wolfSSL_SESSION_free(s3);
    pskgw_dtls_ctx_free(c);
    pskgw_ticket_keys_free(k1);
    pskgw_ticket_keys_free(k2);
    pskgw_ticket_keys_free(k3);
}

Test(ticket, expired_ticket_means_a_full_handshake)
{
    pskgw_ticket_keys_t *k = mkkeys(OLD, NULL, 600);
    pskgw_dtls_ctx_t *c = mkctx(true, k);
    WOLFSSL_SESSION *s1, *s2;
    bool reused = true;
    tres_t r;

    tres_init(&r);
    r.sync = false;
    tres_add(&r, ID, PSK, UID);
    s1 = connect_once(c, true, &r, NULL, &reused);
    fake_now += 601;
    s2 = connect_once(c, true, &r, s1, &reused);
    cr_assert(!reused);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->expired, 1);
    cr_assert_eq(r.resolves, 2);
    wolfSSL_SESSION_free(s1);
    wolfSSL_SESSION_free(s2);
    pskgw_dtls_ctx_free(c);
    pskgw_ticket_keys_free(k);
}

Test(ticket, foreign_domain_secret_is_unknown)
{
    pskgw_ticket_keys_t *ka = mkkeys(OLD, NULL, 3600), *kb = mkkeys(NEW, NULL, 3600);
    pskgw_dtls_ctx_t *a = mkctx(true, ka), *b = mkctx(true, kb);
    WOLFSSL_SESSION *s1, *s2;
    bool reused = true;
    tres_t r;

    tres_init(&r);
    r.sync = false;
    tres_add(&r, ID, PSK, UID);
    s1 = connect_once(a, true, &r, NULL, &reused);
    s2 = connect_once(b, true, &r, s1, &reused);
    cr_assert(!reused);
    cr_assert_eq(pskgw_ticket_keys_stats(kb)->unknown_key, 1);
    wolfSSL_SESSION_free(s1);
    wolfSSL_SESSION_free(s2);
    pskgw_dtls_ctx_free(a);
    pskgw_dtls_ctx_free(b);
    pskgw_ticket_keys_free(ka);
    pskgw_ticket_keys_free(kb);
}

Test(ticket, keys_refuse_short_secret_and_bad_lifetime)
{
    const uint8_t *s[1] = { (const uint8_t *)"short" };
    size_t l[1] = { 5 };
    pskgw_ticket_keys_t *k = NULL;

    cr_assert_eq(pskgw_ticket_keys_new(s, l, 1, 3600, &k), PSKGW_EINVAL);
    s[0] = (const uint8_t *)OLD;
    l[0] = strlen(OLD);
    cr_assert_eq(pskgw_ticket_keys_new(s, l, 1, 0, &k), PSKGW_EINVAL);
    cr_assert_eq(pskgw_ticket_keys_new(s, l, 0, 3600, &k), PSKGW_EINVAL);
    cr_assert_null(k);
}

/* A ticket names an identity that is refused now (blocked, deny_file): no resumption; the full
 * handshake that follows is refused as well. Failed before the check: the ticket resumed. */
Test(ticket, refused_identity_does_not_resume)
{
    pskgw_ticket_keys_t *k = mkkeys(OLD, NULL, 3600);
    pskgw_dtls_ctx_t *c = mkctx(true, k);
    WOLFSSL_SESSION *s1;
    bool reused = true;
    tres_t r;
    tpair_t p;

    tres_init(&r);
    r.sync = false;
    tres_add(&r, ID, PSK, UID);
    s1 = connect_once(c, true, &r, NULL, &reused);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    p.refuse_identity = 1;
    cr_assert_eq(wolfSSL_UseSessionTicket(p.cli), WOLFSSL_SUCCESS);
    cr_assert_eq(wolfSSL_set_session(p.cli, s1), WOLFSSL_SUCCESS);
    tpair_pump(&p);
    (void)tres_complete(&r, 0);
    tpair_pump(&p);
    cr_assert(!p.cli_done, "no session for a refused identity");
    cr_assert_eq(p.established, 0);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->refused, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->opened, 0);
    tpair_deinit(&p);
    wolfSSL_SESSION_free(s1);
    pskgw_dtls_ctx_free(c);
    pskgw_ticket_keys_free(k);
}

/* The longest identity the modules send (32 bytes, 64 hex digits) with a 16-hex-digit UID: 47
 * bytes of pskgw's ticket extension, more than wolfSSL's default room (32) took: such a ticket
 * was sealed as not resumable. The profile's WOLFSSL_TICKET_EXTRA_PADDING_SZ (70) fits it. */
#define LONG_ID  "11010008002F33244B115B0AEEB9000102030405060708090A0B0C0D0E0F1011"
#define LONG_UID "00020000892822450002000089282245"

static WOLFSSL_SESSION *long_connect(pskgw_dtls_ctx_t *c, tres_t *r, WOLFSSL_SESSION *sess,
                                     bool *reused)
{
    WOLFSSL_SESSION *out;
    tpair_t p;

    tpair_init(&p, c, r, true, "PSK-AES128-CCM-8", LONG_ID, PSK);
    cr_assert_eq(wolfSSL_UseSessionTicket(p.cli), WOLFSSL_SUCCESS);
    if (sess != NULL)
        cr_assert_eq(wolfSSL_set_session(p.cli, sess), WOLFSSL_SUCCESS);
    tpair_pump(&p);
    if (tres_complete(r, 0) > 0)
        tpair_pump(&p);
    cr_assert_eq(p.established, 1);
    cr_assert_str_eq(pskgw_dtls_session_identity(p.srv), LONG_ID);
    cr_assert_str_eq(pskgw_dtls_session_uid(p.srv), LONG_UID);
    *reused = wolfSSL_session_reused(p.cli) == 1;
    out = wolfSSL_get1_session(p.cli);
    tpair_deinit(&p);
    return out;
}

Test(ticket, longest_identity_with_its_uid_fits_and_resumes)
{
    pskgw_ticket_keys_t *k = mkkeys(OLD, NULL, 3600);
    pskgw_dtls_ctx_t *c = mkctx(true, k);
    WOLFSSL_SESSION *s1, *s2;
    bool reused = true;
    tres_t r;

    tres_init(&r);
    r.sync = false;
    tres_add(&r, LONG_ID, PSK, LONG_UID);
    s1 = long_connect(c, &r, NULL, &reused);
    cr_assert(!reused);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sealed, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->unsealed, 0, "identity and uid fit in the ticket");
    s2 = long_connect(c, &r, s1, &reused);
    cr_assert(reused);
    cr_assert_eq(r.resolves, 1, "no lookup for the resumed session");
    cr_assert_eq(pskgw_ticket_keys_stats(k)->resumed_ticket, 1);
    wolfSSL_SESSION_free(s1);
    wolfSSL_SESSION_free(s2);
    pskgw_dtls_ctx_free(c);
    pskgw_ticket_keys_free(k);
}
