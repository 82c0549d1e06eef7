/* The fixture of the upstream tests against pskgw-sim (test_upstream_sim.c,
 * test_upstream_service_faults.c): one loop with a pump timer, one client under test, one
 * simulator (simctl.h), and the counters of the callback contract. Failures are Criterion
 * assertions. */
#ifndef PSKGW_TEST_UPFIX_H
#define PSKGW_TEST_UPFIX_H

#include "simctl.h"
#include "upstream/upstream.h"

#include <uv.h>

extern uv_loop_t loop;
extern uv_timer_t pump;
extern pskgw_upstream_t *cli; /* the client under test, NULL once closed */
extern sim_t sim;
extern int in_api;   /* set around API calls: a callback inside one is a contract violation */
extern int done;     /* callbacks seen */
extern int violated; /* callbacks from inside an API call, twice, or with a wrong result */
extern int closed;   /* close callbacks */

/* A close callback of the client: counts closed. */
void upfix_on_closed(void *arg);
/* Start pskgw-sim (sim_start with extra flags). */
void start_sim(const char *const *extra);
/* The tests' options: the simulator's credentials, backoff 50..400 ms, base_url url. */
void upfix_opts(pskgw_upstream_opts_t *o, const char *name, const char *url);
/* The loop, its pump (UV_RUN_ONCE returns regularly) and the client; the counters reset. */
void upfix_start_client(const pskgw_upstream_opts_t *o);
/* The client closed, the loop run to its end and closed (no handle left), the callback contract
 * checked, then the simulator stopped and judged. */
void upfix_finish(void);

#endif
