/* Test support: fail the Nth allocation made by our code (curl's torture tests, BIND's --wrap).
 *
 * Every unit test binary (pskgw_add_unit_test) is linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
 * so that the calls made by the objects linked statically into it (our modules, the test's own
 * code) go through the wrappers of allocwrap.c. Shared libraries (libuv, curl, jansson, hiredis, Criterion)
 * keep calling libc directly; wolfSSL is a static archive, so its allocator is pointed back at
 * libc (wolfSSL_SetAllocators) when the binary contains it: only our code is counted.
 *
 * Armed by the environment: PSKGW_ALLOC_FAIL_AT=N (N >= 1) makes the Nth wrapped allocation of
 * the process return NULL (once: the later ones succeed again). Criterion runs each test in its
 * own process, so N counts from the start of each test. When the failure is injected, one line
 * goes to stderr:
 *   allocfail: injected failure of allocation N (malloc 24 bytes) in test suite::name at SITE
 * where SITE, "binary+0xoffset", is the call site (the return address into the caller of malloc &
 * co.; a helper that allocates for many callers is one site): tests/torture.sh counts the
 * distinct sites a sweep reached.
 * PSKGW_ALLOC_FAIL_AT=0 injects nothing but prints, at the exit of each test process,
 *   allocfail: test suite::name made K allocations
 * PSKGW_ALLOC_FAIL_TRACE=1 adds the stack of the failed call (sanitizer builds only).
 * Unset: the wrappers only forward to libc.
 *
 * The binaries are also linked with --wrap=criterion_abort_test: when a failure was injected
 * and a cr_assert then aborts the test, the live stack is copied into a heap block that a global
 * points at, so the objects the aborted test still held are not reported by LeakSanitizer at
 * exit; a leak reported then is memory the code under test lost (tests/torture.sh fails on it).
 *
 * The sweep over N is tests/torture.sh (docs/ARCHITECTURE.md, "Testing").
 */
#ifndef PSKGW_TEST_ALLOCFAIL_H
#define PSKGW_TEST_ALLOCFAIL_H

#include <stdbool.h>

/* Every allocation is also counted, armed or not, by pskgw_allocfail_calls(): the wrapped calls
 * of our code and wolfSSL's allocations (its allocator is pointed at counting wrappers of libc,
 * which never inject a failure). For tests that assert an allocation-free steady state: read it
 * before and after the work, on the loop thread; allocations by shared libraries (libuv, libc,
 * Criterion) are not seen.
 */

/* True once this process has had an allocation failed on purpose. */
bool pskgw_allocfail_injected(void);
/* Number of wrapped allocations counted so far in this process (0 when not armed). */
long pskgw_allocfail_count(void);
/* Allocations by our code (wrapped) and by wolfSSL since the process started, always counted. */
long pskgw_allocfail_calls(void);
/* The same, made by the calling thread only: for a test whose in-process receiver (a server or
 * subscriber on its own threads, in tests/support) allocates while the loop thread is counted. */
long pskgw_allocfail_thread_calls(void);

#endif
