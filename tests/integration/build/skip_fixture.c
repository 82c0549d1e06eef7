/* A Criterion binary for tests/integration/build/skips.sh (not a test by itself): its tests pass,
 * skip for a missing tool, fail or print a sanitizer-like report as the environment says, so
 * that the script can check how cmake/criterion-run.sh and tests/support/skip.h report each. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "skip.h"

Test(fixture, passes)
{
    cr_assert_eq(1 + 1, 2);
}

Test(fixture, needs_a_tool)
{
    if (getenv("FIXTURE_MISSING") != NULL)
        PSKGW_TEST_SKIP_MISSING("fixture-tool (Debian: fixture-pkg)");
    cr_assert_eq(2 + 2, 4);
}

Test(fixture, may_fail)
{
    cr_assert_null(getenv("FIXTURE_FAIL"), "failing as asked");
}

Test(fixture, may_report)
{
    if (getenv("FIXTURE_SANITIZER") != NULL)
        fprintf(stderr, "==1==ERROR: LeakSanitizer: detected memory leaks (fixture)\n");
}
