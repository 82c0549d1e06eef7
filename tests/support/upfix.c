/* The upstream tests' fixture: see upfix.h. */
#include "upfix.h"

#include <criterion/criterion.h>

uv_loop_t loop;
uv_timer_t pump;
pskgw_upstream_t *cli;
sim_t sim;
int in_api;
int done;
int violated;
int closed;
fakesrv_t *upfix_srv;
char upfix_url[64];

static void on_pump(uv_timer_t *t)
{
    (void)t;
}

void upfix_on_closed(void *arg)
{
    (void)arg;
    closed++;
}

void start_sim(const char *const *extra)
{
    cr_assert_eq(sim_start(&sim, extra), 0, "pskgw-sim did not start (%s)",
                 pskgw_test_bin("pskgw-sim"));
}

void upfix_opts(pskgw_upstream_opts_t *o, const char *name, const char *url)
{
    pskgw_upstream_opts_init(o);
    o->name = name;
    o->base_url = url;
    o->key_id = SIM_KEY;
    o->secret = SIM_SECRET;
    o->backoff_base_ms = 50;
    o->backoff_max_ms = 400;
}

void upfix_start_client(const pskgw_upstream_opts_t *o)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_timer_init(&loop, &pump), 0);
    uv_timer_start(&pump, on_pump, 10, 10); /* makes UV_RUN_ONCE return regularly */
    cr_assert_eq(pskgw_upstream_new(&loop, o, &cli), 0);
    done = violated = closed = in_api = 0;
}

void upfix_psk_cb(void *arg, int status, const pskgw_upstream_psk_t *r)
{
    upfix_res_t *x = arg;

    if (in_api || x->calls || (status == 0) != (r != NULL))
        violated++;
    x->calls++;
    x->status = status;
    x->at_ms = uv_now(&loop);
    x->window_left = pskgw_upstream_retry_after_ms_left(cli);
    done++;
}

int upfix_get_psk(const char *identity, uint32_t deadline, upfix_res_t *r)
{
    int rc;

    in_api = 1;
    rc = pskgw_upstream_get_psk(cli, identity, 128, deadline, upfix_psk_cb, r, NULL);
    in_api = 0;
    return rc;
}

void upfix_run_until(const int *counter, int target, uint64_t timeout_ms)
{
    uint64_t end;

    uv_update_time(&loop);
    end = uv_now(&loop) + (timeout_ms < UPFIX_GUARD_MS ? UPFIX_GUARD_MS : timeout_ms);
    while (*counter < target && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
}

void upfix_finish(void)
{
    if (cli)
        pskgw_upstream_close(cli, upfix_on_closed, NULL);
    cli = NULL;
    uv_close((uv_handle_t *)&pump, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(closed, 1, "close callback ran %d times", closed);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles left open");
    cr_assert_eq(violated, 0, "callback contract violated %d times", violated);
    sim_stop(&sim);
}

void upfix_fake_opts(fake_handler h, const char *name, pskgw_upstream_opts_t *o)
{
    cr_assert_eq(fakesrv_start(&upfix_srv, h, NULL, upfix_url, sizeof(upfix_url)), 0);
    upfix_opts(o, name, upfix_url);
    o->key_id = "k";
    o->secret = "s";
}

void upfix_fake_fini(void)
{
    fakesrv_stop(upfix_srv);
    upfix_srv = NULL;
}

void upfix_fake_finish(void)
{
    upfix_finish();
    upfix_fake_fini();
}

pskgw_upstream_stats_t upfix_stats(void)
{
    pskgw_upstream_stats_t st;

    pskgw_upstream_stats(cli, &st);
    return st;
}
