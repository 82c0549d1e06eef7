/* The DTLS anti-replay window (RFC 6347 4.1.2.6) is wolfSSL's, fixed when wolfSSL is built
 * (WOLFSSL_DTLS_WINDOW_WORDS). The configuration accepts only the size it has
 * (PSKGW_CONFIG_REPLAY_WINDOW, `replay_window` in docs/CONFIG.md): this test measures that size
 * on the wire, so that a wolfSSL profile with another window fails here instead of making the
 * documentation untrue. */
#include "pair.h"

#include "config/config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define ID  "11010008002F33244B115B0AEEB9"
#define PSK "E5DE45B367DB690F2E17CF9D80A18E87"
#define UID "A1B2C3D4E5F60718"

#define W     PSKGW_CONFIG_REPLAY_WINDOW
#define NRECS (W + 8)

static pskgw_dtls_ctx_t *mkctx(void)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;

    o.dtls = true;
    o.idle_timeout_s = 30;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    return c;
}

static const char *want(int i)
{
    static char m[2][16];
    static int k;

    k ^= 1;
    snprintf(m[k], sizeof(m[k]), "m%d", i);
    return m[k];
}

/* Records r[0..NRECS) of one epoch, sequence numbers consecutive. The newest one is fed first;
 * then the record W behind it (outside a window of W records: dropped) and the one W - 1
 * behind (inside: delivered), each never seen before. */
Test(replay_window, records_older_than_the_window_are_dropped_and_inside_it_delivered)
{
    static uint8_t rec[NRECS][256];
    size_t len[NRECS];
    pskgw_dtls_ctx_t *c = mkctx();
    tres_t r;
    tpair_t p;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    for (int i = 0; i < NRECS; i++) {
        char m[16];

        snprintf(m, sizeof(m), "m%d", i);
        cr_assert_gt(wolfSSL_write(p.cli, m, (int)strlen(m)), 0);
        len[i] = tq_pop(&p.to_server, rec[i], sizeof(rec[i]));
        cr_assert_gt(len[i], 13);
    }
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec[NRECS - 1], len[NRECS - 1], p.now), 0);
    cr_assert_eq(p.nmsgs, 1);
    cr_assert_str_eq(p.msgs[0], want(NRECS - 1));
    /* W behind the newest: outside the window */
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec[NRECS - 1 - W], len[NRECS - 1 - W], p.now), 0);
    cr_assert_eq(p.nmsgs, 1, "a record %d behind the newest is outside the window", W);
    /* W - 1 behind: inside */
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec[NRECS - W], len[NRECS - W], p.now), 0);
    cr_assert_eq(p.nmsgs, 2, "a record %d behind the newest is inside the window", W - 1);
    cr_assert_str_eq(p.msgs[1], want(NRECS - W));
    /* and a replay of it is dropped */
    cr_assert_eq(pskgw_dtls_session_feed(p.srv, rec[NRECS - W], len[NRECS - W], p.now), 0);
    cr_assert_eq(p.nmsgs, 2);
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}
