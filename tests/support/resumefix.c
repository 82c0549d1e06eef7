/* The resumption tests' shared fixture: see resumefix.h. */
#include "resumefix.h"

#include "dtls/internal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

void rfix_init(rfix_t *f, bool dtls)
{
    memset(f, 0, sizeof(*f));
    f->dtls = dtls;
    tres_init(&f->res);
    f->res.sync = false;
    tres_add(&f->res, RFIX_ID, RFIX_PSK, RFIX_UID);
}

void rfix_deinit(rfix_t *f)
{
    for (int i = f->nsess - 1; i >= 0; i--)
        wolfSSL_SESSION_free(f->sess[i]);
    for (int i = f->nctx - 1; i >= 0; i--)
        pskgw_dtls_ctx_free(f->ctx[i]);
    for (int i = f->nkeys - 1; i >= 0; i--)
        pskgw_ticket_keys_free(f->keys[i]);
    f->nsess = f->nctx = f->nkeys = 0;
}

pskgw_ticket_keys_t *rfix_keys(rfix_t *f, const char *first, const char *second,
                               uint32_t lifetime_s)
{
    const uint8_t *s[2] = { (const uint8_t *)first, (const uint8_t *)second };
    size_t l[2] = { strlen(first), second != NULL ? strlen(second) : 0 };
    pskgw_ticket_keys_t *k = NULL;

    cr_assert_lt(f->nkeys, RFIX_MAX);
    cr_assert_eq(pskgw_ticket_keys_new(s, l, second != NULL ? 2 : 1, lifetime_s, &k), 0);
    f->keys[f->nkeys++] = k;
    return k;
}

pskgw_dtls_ctx_t *rfix_ctx(rfix_t *f, pskgw_ticket_keys_t *keys)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;

    cr_assert_lt(f->nctx, RFIX_MAX);
    o.dtls = f->dtls;
    o.idle_timeout_s = 30;
    o.tickets = keys;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    f->ctx[f->nctx++] = c;
    return c;
}

WOLFSSL_SESSION *rfix_keep(rfix_t *f, WOLFSSL_SESSION *s)
{
    cr_assert_lt(f->nsess, RFIX_MAX);
    f->sess[f->nsess++] = s;
    return s;
}

/* The established pair's checks and what the case reads of it. */
static WOLFSSL_SESSION *established(tpair_t *p, const char *id, rfix_conn_t *k)
{
    const char *uid = pskgw_dtls_session_uid(p->srv);
    WOLFSSL_SESSION *out;

    cr_assert_str_eq(pskgw_dtls_session_identity(p->srv), id);
    snprintf(k->uid, sizeof(k->uid), "%s", uid != NULL ? uid : "");
    k->wolf_timeout = wolfSSL_SESSION_get_timeout(wolfSSL_get_session(p->srv->ssl));
    cr_assert_gt(wolfSSL_write(p->cli, "hi", 2), 0);
    tpair_pump(p);
    cr_assert_eq(p->nmsgs, 1);
    k->reused = wolfSSL_session_reused(p->cli) == 1;
    out = wolfSSL_get1_session(p->cli);
    cr_assert_not_null(out);
    return out;
}

WOLFSSL_SESSION *rfix_connect(rfix_t *f, pskgw_dtls_ctx_t *c, WOLFSSL_SESSION *sess, rfix_conn_t *k)
{
    const char *id = k->id != NULL ? k->id : RFIX_ID;
    WOLFSSL_SESSION *out = NULL;
    tpair_t p;

    tpair_init(&p, c, &f->res, f->dtls, "PSK-AES128-CCM-8", id, RFIX_PSK);
    p.now = k->now != 0 ? k->now : 1000;
    p.refuse_identity = k->refuse;
    if (k->tickets)
        cr_assert_eq(wolfSSL_UseSessionTicket(p.cli), WOLFSSL_SUCCESS);
    if (sess != NULL)
        cr_assert_eq(wolfSSL_set_session(p.cli, sess), WOLFSSL_SUCCESS);
    tpair_pump(&p);
    if (tres_complete(&f->res, 0) > 0)
        tpair_pump(&p);
    k->established = p.established == 1 && p.cli_done;
    k->cli_error = p.cli_error;
    if (k->established)
        out = rfix_keep(f, established(&p, id, k));
    tpair_deinit(&p);
    return out;
}
