/* The session-store tests' shared fixture: see sessfix.h. */
#include "sessfix.h"

#include "loopwait.h"

#include <criterion/criterion.h>

pskgw_sessredis_t *sessfix_node(uv_loop_t *loop, const char *id, int port, const uint8_t *key)
{
    pskgw_sessredis_opts_t o = { .domain = "acme",
                                 .node_id = id,
                                 .host = "127.0.0.1",
                                 .port = (uint16_t)port,
                                 .timeout_ms = 2000,
                                 .lease_ms = 60000,
                                 .key = key };
    pskgw_sessredis_t *r = NULL;

    cr_assert_eq(pskgw_sessredis_new(loop, &o, &r), 0);
    return r;
}

bool sessfix_connected(void *node)
{
    pskgw_sessredis_stats_t st;

    pskgw_sessredis_stats(node, &st);
    return st.connected == 1;
}

typedef struct {
    pskgw_sessredis_t *node;
    uint64_t n;
} stores_t;

static bool stores_answered(void *arg)
{
    stores_t *w = arg;
    pskgw_sessredis_stats_t st;

    pskgw_sessredis_stats(w->node, &st);
    return st.stores + st.store_errors >= w->n;
}

bool sessfix_wait_stores(uv_loop_t *loop, pskgw_sessredis_t *node, uint64_t n)
{
    stores_t w = { node, n };

    return hrun_until(loop, stores_answered, &w, H_GUARD_MS);
}
