/* Session tickets against an attacker (docs/SECURITY.md, "Attacker's review of the session
 * features"): a wolfSSL client offers a ticket that was changed on the way (a byte of its key
 * name, of its sealed state, of its tag), or a ticket it captured without the session's master
 * secret. A changed ticket opens nothing: it is counted (unknown key or bad) and a full
 * handshake with a key lookup follows; a captured ticket offered without its master secret
 * establishes no session and delivers nothing. Failed before the unused bytes were checked: a
 * ticket with its IV's last 4 bytes or its MAC's last 16 changed still resumed (wolfSSL carries a
 * 16-byte IV and a 32-byte MAC; AES-GCM uses 12 and 16 of them). */
#include "pair.h"

#include "common/err.h"
#include "dtls/ctx.h"
#include "dtls/ticket.h"

#include <criterion/criterion.h>
#include <string.h>

#define ID    "11010008002F33244B115B0AEEB9"
#define PSK   "E5DE45B367DB690F2E17CF9D80A18E87"
#define WRONG "00000000000000000000000000000000"
#define UID   "0002000089282245"
#define SEC   "the shared ticket secret of a domain"

static pskgw_ticket_keys_t *mkkeys(void)
{
    const uint8_t *s[1] = { (const uint8_t *)SEC };
    size_t l[1] = { strlen(SEC) };
    pskgw_ticket_keys_t *k = NULL;

    cr_assert_eq(pskgw_ticket_keys_new(s, l, 1, 3600, &k), 0);
    return k;
}

static pskgw_dtls_ctx_t *mkctx(pskgw_ticket_keys_t *k)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;

    o.dtls = true;
    o.idle_timeout_s = 30;
    o.tickets = k;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    return c;
}

static void run(tpair_t *p, tres_t *r)
{
    tpair_pump(p);
    if (tres_complete(r, 0) > 0)
        tpair_pump(p);
}

/* A full handshake: the client's session (caller frees) and its ticket in t / *tlen. */
static WOLFSSL_SESSION *first(pskgw_dtls_ctx_t *c, tres_t *r, uint8_t *t, word32 *tlen)
{
    WOLFSSL_SESSION *s;
    tpair_t p;

    tpair_init(&p, c, r, true, "PSK-AES128-CCM-8", ID, PSK);
    cr_assert_eq(wolfSSL_UseSessionTicket(p.cli), WOLFSSL_SUCCESS);
    run(&p, r);
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    cr_assert_eq(wolfSSL_get_SessionTicket(p.cli, t, tlen), WOLFSSL_SUCCESS);
    cr_assert_gt(*tlen, 48);
    s = wolfSSL_get1_session(p.cli);
    cr_assert_not_null(s);
    tpair_deinit(&p);
    return s;
}

Test(ticket_hostile, a_changed_ticket_opens_nothing_and_a_full_handshake_follows)
{
    pskgw_ticket_keys_t *k = mkkeys();
    pskgw_dtls_ctx_t *c = mkctx(k);
    uint8_t t[1024], bad[1024];
    word32 tlen = sizeof(t);
    WOLFSSL_SESSION *s;
    tres_t r;

    tres_init(&r);
    r.sync = false;
    tres_add(&r, ID, PSK, UID);
    s = first(c, &r, t, &tlen);
    cr_assert_eq(r.resolves, 1);
    /* the key name (first byte), the IV's last byte, the sealed state (middle), the MAC's
     * last byte: wolfSSL carries a 16-byte IV and a 32-byte MAC, GCM uses 12 and 16 of them */
    for (int i = 0; i < 4; i++) {
        word32 at = i == 0 ? 0 : i == 1 ? 31 : i == 2 ? tlen / 2 : tlen - 1;
        pskgw_ticket_stats_t before = *pskgw_ticket_keys_stats(k);
        const pskgw_ticket_stats_t *now;
        tpair_t p;

        memcpy(bad, t, tlen);
        bad[at] ^= 0x5a;
        tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
        cr_assert_eq(wolfSSL_UseSessionTicket(p.cli), WOLFSSL_SUCCESS);
        cr_assert_eq(wolfSSL_set_session(p.cli, s), WOLFSSL_SUCCESS);
        cr_assert_eq(wolfSSL_set_SessionTicket(p.cli, bad, tlen), WOLFSSL_SUCCESS);
        run(&p, &r);
        now = pskgw_ticket_keys_stats(k);
        cr_assert(p.cli_done, "byte %u: the device still connects (client error %d)", at,
                  p.cli_error);
        cr_assert_eq(wolfSSL_session_reused(p.cli), 0, "byte %u changed: resumed", at);
        cr_assert_eq(now->opened, before.opened, "byte %u changed: opened", at);
        cr_assert_eq(now->resumed_ticket, 0);
        cr_assert_eq(now->full, before.full + 1, "byte %u: a full handshake", at);
        cr_assert_eq(r.resolves, 2 + i, "byte %u: with a key lookup", at);
        if (i == 0)
            cr_assert_eq(now->unknown_key, before.unknown_key + 1, "a changed key name");
        else
            cr_assert_eq(now->bad, before.bad + 1, "byte %u: counted bad", at);
        tpair_deinit(&p);
    }
    wolfSSL_SESSION_free(s);
    pskgw_dtls_ctx_free(c);
    pskgw_ticket_keys_free(k);
}

Test(ticket_hostile, a_captured_ticket_without_its_master_secret_gets_no_session)
{
    pskgw_ticket_keys_t *k = mkkeys();
    pskgw_dtls_ctx_t *c = mkctx(k);
    uint8_t t[1024];
    word32 tlen = sizeof(t);
    WOLFSSL_SESSION *s;
    tres_t r;
    tpair_t p;

    tres_init(&r);
    r.sync = false;
    tres_add(&r, ID, PSK, UID);
    s = first(c, &r, t, &tlen);
    /* an eavesdropper: the device's identity, the ticket seen on the wire, no key, no session */
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, WRONG);
    cr_assert_eq(wolfSSL_UseSessionTicket(p.cli), WOLFSSL_SUCCESS);
    cr_assert_eq(wolfSSL_set_SessionTicket(p.cli, t, tlen), WOLFSSL_SUCCESS);
    run(&p, &r);
    cr_assert_not(p.cli_done, "the eavesdropper got a session");
    cr_assert_eq(p.established, 0, "the server established a session for the eavesdropper");
    cr_assert_eq(pskgw_ticket_keys_stats(k)->resumed_ticket, 0);
    cr_assert_eq(p.nmsgs, 0);
    tpair_deinit(&p);
    wolfSSL_SESSION_free(s);
    pskgw_dtls_ctx_free(c);
    pskgw_ticket_keys_free(k);
}
