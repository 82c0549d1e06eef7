/* Loop helpers of the tests: run a libuv loop until a condition holds (with a guard against
 * hanging, never a statement about speed), and finish a loop failing the test for every handle
 * left open. Failures are Criterion expectations. */
#ifndef PSKGW_TEST_LOOPWAIT_H
#define PSKGW_TEST_LOOPWAIT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef bool (*hpred_t)(void *arg);
/* Runs the loop until pred(arg) or timeout_ms; returns pred's final value. The timeout only
 * guards against hanging: it is raised to at least H_GUARD_MS, so that a loaded machine (or a
 * sanitizer build) cannot fail a wait that would have succeeded. Never use it to assert that
 * something does not happen within a time. */
#define H_GUARD_MS 60000
bool hrun_until(uv_loop_t *loop, hpred_t pred, void *arg, uint32_t timeout_ms);
/* Runs the loop, one UV_RUN_ONCE at a time, until pred(arg); fails the test naming what it
 * waited for when H_GUARD_MS pass first (a guard against hanging only). Unlike hrun_until it adds
 * no handle to the loop and runs nothing once pred holds, so the test sees the state the moment
 * it holds; a loop with nothing left to wake it blocks in uv_run until the test's timeout. */
void hwait_until(uv_loop_t *loop, hpred_t pred, void *arg, const char *what);
/* Runs the loop until it has nothing left to do, then returns uv_loop_close(). A handle still
 * open at that point (neither closed by the test nor by the code under test) fails the test,
 * named by type ("2 handle(s) left open ...: udp, timer"); it is closed first so that the loop
 * can still be closed and freed. */
int hloop_finish(uv_loop_t *loop);

/* Runs the loop until *counter >= target (hrun_until with the H_GUARD_MS guard); returns
 * whether it got there. */
bool hrun_until_count(uv_loop_t *loop, const int *counter, int target);

#endif
