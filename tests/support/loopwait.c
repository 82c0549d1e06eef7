/* Loop helpers of the tests (see loopwait.h). */
#include "loopwait.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static void on_guard(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

bool hrun_until(uv_loop_t *loop, hpred_t pred, void *arg, uint32_t timeout_ms)
{
    uv_timer_t guard;
    bool expired = false;
    bool ok;

    if (timeout_ms < H_GUARD_MS)
        timeout_ms = H_GUARD_MS;
    cr_assert_eq(uv_timer_init(loop, &guard), 0);
    guard.data = &expired;
    cr_assert_eq(uv_timer_start(&guard, on_guard, timeout_ms, 0), 0);
    while (!(ok = pred(arg)) && !expired)
        (void)uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    (void)uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

void hwait_until(uv_loop_t *loop, hpred_t pred, void *arg, const char *what)
{
    uint64_t deadline = uv_hrtime() / 1000000 + H_GUARD_MS;

    while (!pred(arg)) {
        cr_assert(uv_hrtime() / 1000000 < deadline, "timed out waiting for %s", what);
        (void)uv_run(loop, UV_RUN_ONCE);
    }
}

typedef struct {
    int n;
    char types[512];
} hleft_t;

/* Names each handle still open (not closing) and closes it, so that the loop can be closed and
 * the next test starts clean; the caller then fails the test with the list. */
static void leftover_walk(uv_handle_t *h, void *arg)
{
    hleft_t *left = arg;
    size_t used = strlen(left->types);

    if (uv_is_closing(h))
        return;
    (void)snprintf(left->types + used, sizeof(left->types) - used, "%s%s", left->n > 0 ? ", " : "",
                   uv_handle_type_name(uv_handle_get_type(h)));
    left->n++;
    uv_close(h, NULL);
}

int hloop_finish(uv_loop_t *loop)
{
    hleft_t left = { 0 };

    (void)uv_run(loop, UV_RUN_DEFAULT);
    uv_walk(loop, leftover_walk, &left);
    (void)uv_run(loop, UV_RUN_DEFAULT);
    cr_expect_eq(left.n, 0, "%d handle(s) left open by the test or the code under test: %s", left.n,
                 left.types);
    return uv_loop_close(loop);
}

typedef struct {
    const int *counter;
    int target;
} count_t;

static bool count_reached(void *arg)
{
    const count_t *c = arg;

    return *c->counter >= c->target;
}

bool hrun_until_count(uv_loop_t *loop, const int *counter, int target)
{
    count_t c = { counter, target };

    return hrun_until(loop, count_reached, &c, H_GUARD_MS);
}
