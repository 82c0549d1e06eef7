/* The fixture of the upstream client tests (test_upstream_sim.c, test_upstream_service_faults.c,
 * test_upstream_fake.c, tests/unit/upstream/test_auth.c): one loop with a pump timer, one client
 * under test, one simulator (simctl.h) when started, and the counters of the callback contract.
 * The tests with a scripted server (fakesrv.h) start no simulator. Failures are Criterion
 * assertions. */
#ifndef PSKGW_TEST_UPFIX_H
#define PSKGW_TEST_UPFIX_H

#include "fakesrv.h"
#include "simctl.h"
#include "upstream/upstream.h"

#include <stdint.h>
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
/* The outcome of one GetPSK request of the tests, filled by upfix_psk_cb(). */
typedef struct {
    int calls;            /* callbacks: 1 when the contract holds */
    int status;           /* its status */
    uint64_t at_ms;       /* loop time of the callback */
    uint64_t window_left; /* the client's Retry-After window left at the callback, ms */
} upfix_res_t;

/* The GetPSK callback for an upfix_res_t: counts done, and violated when it runs inside an API
 * call, twice, or with a result that does not match its status. */
void upfix_psk_cb(void *arg, int status, const pskgw_upstream_psk_t *r);
/* pskgw_upstream_get_psk(identity, 128 bits, deadline) into r, in_api set around the call. */
int upfix_get_psk(const char *identity, uint32_t deadline, upfix_res_t *r);

/* Runs the loop until *counter >= target. timeout_ms (at least UPFIX_GUARD_MS) only guards against
 * hanging: the caller's checks after it fail. */
#define UPFIX_GUARD_MS 30000
void upfix_run_until(const int *counter, int target, uint64_t timeout_ms);
/* The client closed, the loop run to its end and closed (no handle left), the callback contract
 * checked, then the simulator stopped and judged. */
void upfix_finish(void);

/* ---- the tests against the scripted server (fakesrv.h) ---- */
#define UPFIX_PSK_ID  "11010008002F33244B115B0AEEB9"
#define UPFIX_PSK_OK  "{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":\"0002000089282245\"}"
#define UPFIX_AUTH_OK "{\"AuthToken\":\"aaaa.bbbb.cccc\"}"
#define UPFIX_P_AUTH  "/v1/authenticate"
#define UPFIX_P_PSK   "/v1/GetPSK"

extern fakesrv_t *upfix_srv; /* the scripted server of the test, NULL when stopped */
extern char upfix_url[64];   /* its base URL */
/* Start the scripted server with h and fill *o for it (upfix_opts, credentials "k"/"s"); the
 * test sets what it needs more and calls upfix_start_client(o). */
void upfix_fake_opts(fake_handler h, const char *name, pskgw_upstream_opts_t *o);
/* A suite's .fini: stops the server a failed test left running. */
void upfix_fake_fini(void);
/* The end of a test against the scripted server: upfix_finish(), then the server stopped. */
void upfix_fake_finish(void);
/* The client's statistics now. */
pskgw_upstream_stats_t upfix_stats(void);

#endif
