/* dtls/ctx.h reference counting, as a reload uses it (gateway/listen_reload.h): the listener
 * drops its reference to a replaced context while a session made from it lives on; the session
 * keeps exchanging records on it, takes a new idle timeout set on it, and the context goes with
 * the last reference (ASan: no use after free, no leak). */
#include "pair.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

#define ID  "11010008002F33244B115B0AEEB9"
#define PSK "E5DE45B367DB690F2E17CF9D80A18E87"
#define UID "A1B2C3D4E5F60718"

Test(ctx_refs, a_session_outlives_its_owners_reference_and_takes_a_new_idle_timeout)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;
    tres_t r;
    tpair_t p;
    char buf[32];

    o.dtls = true;
    o.idle_timeout_s = 600;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    /* the session's reference, as the listener takes one per session */
    tpair_init(&p, pskgw_dtls_ctx_ref(c), &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done, "client error %d", p.cli_error);
    cr_assert_eq(p.deadline, p.now + 600000);
    pskgw_dtls_ctx_free(c); /* the owner's: a reload gave the listener a new context */
    cr_assert_gt(wolfSSL_write(p.cli, "after", 5), 0);
    tpair_pump(&p);
    cr_assert_eq(p.nmsgs, 1, "the session goes on with the context it was made with");
    cr_assert_str_eq(p.msgs[0], "after");
    pskgw_dtls_ctx_set_idle_timeout(c, 2);
    pskgw_dtls_session_timeout(p.srv, p.now + 1999);
    cr_assert_eq(p.closed_calls, 0, "not idle for 2 s yet");
    cr_assert_eq(p.deadline, p.now + 2000, "the new idle deadline is announced");
    pskgw_dtls_session_timeout(p.srv, p.now + 2000);
    cr_assert_eq(p.closed_calls, 1);
    cr_assert_eq(p.closed_reason, PSKGW_EAGAIN, "ended idle by the new timeout");
    cr_assert_eq(wolfSSL_read(p.cli, buf, sizeof(buf)), 0, "client got close_notify");
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c); /* the session's, the last: the context goes */
}
