/* The fixture of the UDP listener tests (tests/integration/dtls: test_udp_listener.c,
 * test_hostile.c): one loop, one resolver (hres_t), the collected messages (hmsgs_t) and the
 * listener under test, set up before and checked after each test. Use it as a TestSuite's
 * .init/.fini (through the test's own functions, which close their clients first). Failures are
 * Criterion assertions. */
#ifndef PSKGW_TEST_LISTENFIX_H
#define PSKGW_TEST_LISTENFIX_H

#include "harness.h"

#include <stdbool.h>

extern uv_loop_t loop;
extern hres_t res;
extern hmsgs_t msgs;
extern pskgw_listener_t *lst; /* the listener under test, NULL until lfix_start() */
extern bool closed_cb_ran;    /* lfix_on_closed() ran */

/* The loop, no messages, no listener; wolfSSL_Init(). */
void lfix_setup(void);
/* Closes the listener (its close callback must run), then hloop_finish(): a handle left open
 * fails the test; every lookup must have finished or been cancelled; wolfSSL_Cleanup(). The
 * test's clients are closed before (by the caller). */
void lfix_teardown(void);
/* A listener close callback: sets *(bool *)arg (pass &closed_cb_ran). */
void lfix_on_closed(pskgw_listener_t *l, void *arg);
/* res answers at once (sync_hits) and knows the harness's device, H_ID with H_PSK. */
void lfix_resolver_knows_h_id(void);
/* Starts the listener with o on the loop (domain "acme", name "devices", address 127.0.0.1
 * unless o says otherwise), answering through res and collecting into msgs; its port is > 0. */
void lfix_start(pskgw_listener_opts_t *o);
/* The listener's counters. */
const pskgw_listener_counters_t *lfix_ctr(void);

#endif
