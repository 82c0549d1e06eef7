/* Skips that CI does not allow.
 *
 * A test that cannot run because a tool or package is missing on this machine calls
 * PSKGW_TEST_SKIP_MISSING("gnuplot (Debian: gnuplot-nox)"). On a developer's machine the test is
 * skipped (Criterion prints "[SKIP]", cmake/criterion-run.sh reports the binary as skipped to
 * CTest); with the environment variable CI set to "true" (CI runs scripts/test so, and scripts/test
 * installs what the tests need) the test fails instead, so that a missing package can never hide a
 * regression. Skips for any other reason use cr_skip_test() and say why.
 *
 * Use it in a test's body or in a function called from it: both branches end the test.
 */
#ifndef PSKGW_TEST_SKIP_H
#define PSKGW_TEST_SKIP_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* True when the tests run under CI (CI=true): missing tools fail, they do not skip. */
static inline bool pskgw_test_under_ci(void)
{
    const char *ci = getenv("CI");
    return ci != NULL && strcmp(ci, "true") == 0;
}

#define PSKGW_TEST_SKIP_MISSING(what)                                                              \
    do {                                                                                           \
        if (pskgw_test_under_ci())                                                                 \
            cr_assert_fail("missing on this machine: %s (CI=true: a missing tool fails the test)", \
                           (what));                                                                \
        else                                                                                       \
            cr_skip_test("missing on this machine: %s", (what));                                   \
    } while (0)

#endif
