/* Session tickets (dtls/ticket.h): a wolfSSL client resumes against a pskgw session made from
 * another context (another gateway) deriving its keys from the same secret; identity and uid
 * come from the ticket; no lookup; rotation, removal and expiry lead to full handshakes. */
#include "resumefix.h"

#include "common/err.h"
#include "dtls/ctx.h"
#include "dtls/ticket.h"

#include <criterion/criterion.h>
#include <string.h>

#define ID  RFIX_ID
#define PSK RFIX_PSK
#define UID RFIX_UID

#define OLD "old shared secret of the domain, 32+"
#define NEW "new shared secret of the domain, 32+"

static uint64_t fake_now = 1700000000;

static uint64_t fake_clock(void)
{
    return fake_now;
}

/* The fixture's ticket keys on the test's clock. */
static pskgw_ticket_keys_t *mkkeys(rfix_t *f, const char *first, const char *second,
                                   uint32_t lifetime)
{
    pskgw_ticket_keys_t *k = rfix_keys(f, first, second, lifetime);

    pskgw_ticket_keys_set_clock(k, fake_clock);
    return k;
}

/* One handshake of a client offering tickets (with `sess` to resume, or NULL) against c, which
 * must establish with the identity and the uid; returns the client's session afterwards (the
 * fixture's) and whether it was resumed. */
static WOLFSSL_SESSION *connect_once(rfix_t *f, pskgw_dtls_ctx_t *c, WOLFSSL_SESSION *sess,
                                     bool *reused)
{
    rfix_conn_t k = { .tickets = true };
    WOLFSSL_SESSION *out = rfix_connect(f, c, sess, &k);

    cr_assert(k.established, "client error %d", k.cli_error);
    cr_assert_str_eq(k.uid, UID);
    *reused = k.reused;
    return out;
}

static void resume_on_other_node(bool dtls)
{
    rfix_t f;
    pskgw_ticket_keys_t *ka, *kb;
    pskgw_dtls_ctx_t *a, *b;
    WOLFSSL_SESSION *s1;
    bool reused = true;

    rfix_init(&f, dtls);
    ka = mkkeys(&f, OLD, NULL, 3600);
    kb = mkkeys(&f, OLD, NULL, 3600);
    a = rfix_ctx(&f, ka);
    b = rfix_ctx(&f, kb);
    s1 = connect_once(&f, a, NULL, &reused);
    cr_assert(!reused);
    cr_assert_eq(f.res.resolves, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(ka)->sealed, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(ka)->full, 1);
    (void)connect_once(&f, b, s1, &reused);
    cr_assert(reused, "abbreviated handshake on the other node");
    cr_assert_eq(f.res.resolves, 1, "no lookup for a resumed session");
    cr_assert_eq(pskgw_ticket_keys_stats(kb)->opened, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(kb)->resumed_ticket, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(kb)->full, 0);
    rfix_deinit(&f);
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
    rfix_t f;
    pskgw_ticket_keys_t *k2, *k3;
    pskgw_dtls_ctx_t *c;
    WOLFSSL_SESSION *s1;
    bool reused = false;

    rfix_init(&f, true);
    c = rfix_ctx(&f, mkkeys(&f, OLD, NULL, 3600));
    k2 = mkkeys(&f, NEW, OLD, 3600);
    k3 = mkkeys(&f, NEW, NULL, 3600);
    s1 = connect_once(&f, c, NULL, &reused);
    /* reload: the new secret first, the old one kept */
    cr_assert_eq(pskgw_dtls_ctx_set_tickets(c, k2), 0);
    (void)connect_once(&f, c, s1, &reused);
    cr_assert(reused, "an old ticket still resumes after the rotation");
    cr_assert_eq(pskgw_ticket_keys_stats(k2)->opened, 1);
    cr_assert_eq(f.res.resolves, 1);
    /* the old secret removed: the old ticket is refused, a full handshake follows */
    cr_assert_eq(pskgw_dtls_ctx_set_tickets(c, k3), 0);
    (void)connect_once(&f, c, s1, &reused);
    cr_assert(!reused);
    cr_assert_eq(pskgw_ticket_keys_stats(k3)->unknown_key, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k3)->full, 1);
    cr_assert_eq(f.res.resolves, 2);
    rfix_deinit(&f);
}

Test(ticket, expired_ticket_means_a_full_handshake)
{
    rfix_t f;
    pskgw_ticket_keys_t *k;
    pskgw_dtls_ctx_t *c;
    WOLFSSL_SESSION *s1;
    bool reused = true;

    rfix_init(&f, true);
    k = mkkeys(&f, OLD, NULL, 600);
    c = rfix_ctx(&f, k);
    s1 = connect_once(&f, c, NULL, &reused);
    fake_now += 601;
    (void)connect_once(&f, c, s1, &reused);
    cr_assert(!reused);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->expired, 1);
    cr_assert_eq(f.res.resolves, 2);
    rfix_deinit(&f);
}

Test(ticket, foreign_domain_secret_is_unknown)
{
    rfix_t f;
    pskgw_ticket_keys_t *kb;
    pskgw_dtls_ctx_t *a, *b;
    bool reused = true;

    rfix_init(&f, true);
    a = rfix_ctx(&f, mkkeys(&f, OLD, NULL, 3600));
    kb = mkkeys(&f, NEW, NULL, 3600);
    b = rfix_ctx(&f, kb);
    (void)connect_once(&f, b, connect_once(&f, a, NULL, &reused), &reused);
    cr_assert(!reused);
    cr_assert_eq(pskgw_ticket_keys_stats(kb)->unknown_key, 1);
    rfix_deinit(&f);
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
    rfix_t f;
    pskgw_ticket_keys_t *k;
    pskgw_dtls_ctx_t *c;
    WOLFSSL_SESSION *s1;
    bool reused = true;
    tpair_t p;

    rfix_init(&f, true);
    k = mkkeys(&f, OLD, NULL, 3600);
    c = rfix_ctx(&f, k);
    s1 = connect_once(&f, c, NULL, &reused);
    tpair_init(&p, c, &f.res, true, "PSK-AES128-CCM-8", ID, PSK);
    p.refuse_identity = 1;
    cr_assert_eq(wolfSSL_UseSessionTicket(p.cli), WOLFSSL_SUCCESS);
    cr_assert_eq(wolfSSL_set_session(p.cli, s1), WOLFSSL_SUCCESS);
    tpair_pump(&p);
    (void)tres_complete(&f.res, 0);
    tpair_pump(&p);
    cr_assert(!p.cli_done, "no session for a refused identity");
    cr_assert_eq(p.established, 0);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->refused, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->opened, 0);
    tpair_deinit(&p);
    rfix_deinit(&f);
}

/* The longest identity the modules send (32 bytes, 64 hex digits) with a 16-hex-digit UID: 47
 * bytes of pskgw's ticket extension, more than wolfSSL's default room (32) took: such a ticket
 * was sealed as not resumable. The profile's WOLFSSL_TICKET_EXTRA_PADDING_SZ (70) fits it. */
#define LONG_ID  "11010008002F33244B115B0AEEB9000102030405060708090A0B0C0D0E0F1011"
#define LONG_UID "00020000892822450002000089282245"

static WOLFSSL_SESSION *long_connect(rfix_t *f, pskgw_dtls_ctx_t *c, WOLFSSL_SESSION *sess,
                                     bool *reused)
{
    rfix_conn_t k = { .tickets = true, .id = LONG_ID };
    WOLFSSL_SESSION *out = rfix_connect(f, c, sess, &k);

    cr_assert(k.established, "client error %d", k.cli_error);
    cr_assert_str_eq(k.uid, LONG_UID);
    *reused = k.reused;
    return out;
}

Test(ticket, longest_identity_with_its_uid_fits_and_resumes)
{
    rfix_t f;
    pskgw_ticket_keys_t *k;
    pskgw_dtls_ctx_t *c;
    WOLFSSL_SESSION *s1;
    bool reused = true;

    rfix_init(&f, true);
    tres_add(&f.res, LONG_ID, PSK, LONG_UID);
    k = mkkeys(&f, OLD, NULL, 3600);
    c = rfix_ctx(&f, k);
    s1 = long_connect(&f, c, NULL, &reused);
    cr_assert(!reused);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sealed, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->unsealed, 0, "identity and uid fit in the ticket");
    (void)long_connect(&f, c, s1, &reused);
    cr_assert(reused);
    cr_assert_eq(f.res.resolves, 1, "no lookup for the resumed session");
    cr_assert_eq(pskgw_ticket_keys_stats(k)->resumed_ticket, 1);
    rfix_deinit(&f);
}
