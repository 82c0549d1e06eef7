/* Test helper: start pskgw-sim and talk to its /_sim control endpoints (blocking libcurl easy
 * calls: used only between loop runs, never from inside the loop under test). */
#ifndef PSKGW_TEST_SIMCTL_H
#define PSKGW_TEST_SIMCTL_H

#include <jansson.h>

#include "proc.h"

#define SIM_KEY    "test-key"
#define SIM_SECRET "test-secret-0123456789"
#define SIM_SEED   "upstream-test-seed"

typedef struct {
    pskgw_test_proc_t proc;
    char url[128];
    char ca[512];  /* CA file of an https simulator (--tls --cert-out), "" otherwise */
    char err[256]; /* its stderr, captured in a temporary file (removed by sim_stop) */
} sim_t;

/* Start pskgw-sim --strict (pskgw must never depend on the simulator's leniency) with the test
 * credentials plus extra arguments (NULL-terminated list; "--auth-header", "bearer" sets the
 * test domain's Authorization form), its stderr captured. Returns 0 once its base URL was read
 * (waited for 60 s at most: a guard against hanging, not a statement about speed). */
int sim_start(sim_t *s, const char *const *extra);
/* Stop the simulator with SIGTERM (a guard of 60 s against hanging) and check how it ended: a
 * Criterion expectation fails unless it exited 0 with no sanitizer report in its stderr
 * (pskgw_test_stop_checked; the stderr is then shown). Nothing when it is not running: call it
 * from a test and from the suite's fini alike. */
void sim_stop(sim_t *s);

/* POST a JSON body to path; the HTTP status or -1. */
long sim_post(const sim_t *s, const char *path, const char *json);
/* GET /_sim/stats, parsed (caller json_decref()s), or NULL. */
json_t *sim_stats(const sim_t *s);
/* stats.calls.<op> */
long sim_calls(const sim_t *s, const char *op);
/* stats.status.<code> (0 when absent) */
long sim_status_count(const sim_t *s, int code);
/* stats.<obj>.<key>, or stats.<key> when obj is NULL; -1 when absent or not an integer. */
long sim_stat(const sim_t *s, const char *obj, const char *key);

#endif
