/* The UDP listener tests' fixture: see listenfix.h. */
#include "listenfix.h"

#include <criterion/criterion.h>
#include <string.h>

uv_loop_t loop;
hres_t res;
hmsgs_t msgs;
pskgw_listener_t *lst;
bool closed_cb_ran;

void lfix_setup(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&msgs, 0, sizeof(msgs));
    closed_cb_ran = false;
    lst = NULL;
    cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
}

void lfix_on_closed(pskgw_listener_t *l, void *arg)
{
    (void)l;
    *(bool *)arg = true;
}

void lfix_teardown(void)
{
    if (lst != NULL) {
        pskgw_listener_close(lst, lfix_on_closed, &closed_cb_ran);
        lst = NULL;
        (void)uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert(closed_cb_ran);
    }
    cr_assert_eq(hloop_finish(&loop), 0, "every handle closed");
    cr_assert_eq(res.outstanding, 0, "every lookup finished or cancelled");
    wolfSSL_Cleanup();
}

void lfix_resolver_knows_h_id(void)
{
    hres_init(&res, &loop, 0);
    res.sync_hits = true;
    hres_add(&res, H_ID, H_PSK);
}

void lfix_start(pskgw_listener_opts_t *o)
{
    const char *why = NULL;

    if (o->domain == NULL)
        o->domain = "acme";
    if (o->name == NULL)
        o->name = "devices";
    if (o->address == NULL)
        o->address = "127.0.0.1";
    cr_assert_eq(pskgw_listener_new(&loop, o, &res.iface, hmsgs_cb, &msgs, &lst, &why), 0,
                 "listener: %s", why ? why : "");
    msgs.l = lst;
    cr_assert_gt(pskgw_listener_port(lst), 0);
}

const pskgw_listener_counters_t *lfix_ctr(void)
{
    return pskgw_listener_counters(lst);
}
