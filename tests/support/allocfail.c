/* Allocation-failure hook: see allocfail.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getattr_np */
#endif
#include "allocfail.h"
#include "allocwrap.h"

#include <criterion/abort.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void __real_criterion_abort_test(void) __attribute__((noreturn));
void __wrap_criterion_abort_test(void) __attribute__((noreturn));

/* Present when the binary links wolfSSL (a static archive, so --wrap would count its calls). */
typedef void *(*af_wolf_malloc_t)(size_t);
typedef void (*af_wolf_free_t)(void *);
typedef void *(*af_wolf_realloc_t)(void *, size_t);
extern int wolfSSL_SetAllocators(af_wolf_malloc_t, af_wolf_free_t, af_wolf_realloc_t)
    __attribute__((weak));
extern void __sanitizer_print_stack_trace(void) __attribute__((weak));

static long fail_at = -1; /* -1: not armed; 0: count only; N: fail the Nth */
static bool trace;
static atomic_long counted;
static atomic_long calls;               /* every allocation, armed or not */
static _Thread_local long thread_calls; /* those of the calling thread */
static atomic_bool injected;
/* The test running in this process, taken at its first allocation: by the time the destructor
 * runs, Criterion has already cleared it. */
static char test_name[256];

static void af_say(const char *line)
{
    size_t len = strlen(line);

    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, line, len);
        if (w <= 0)
            return;
        line += w;
        len -= (size_t)w;
    }
}

static void af_test_name(char *buf, size_t cap)
{
    const struct criterion_test *t = criterion_current_test;

    if (t != NULL && t->category != NULL && t->name != NULL)
        (void)snprintf(buf, cap, "%s::%s", t->category, t->name);
    else
        (void)snprintf(buf, cap, "(none)");
}

/* wolfSSL's allocator: counted in `calls`, never failed (its calls are not ours to torture). */
static void *af_wolf_malloc(size_t n)
{
    atomic_fetch_add(&calls, 1);
    thread_calls++;
    return __real_malloc(n);
}

static void *af_wolf_realloc(void *p, size_t n)
{
    atomic_fetch_add(&calls, 1);
    thread_calls++;
    return __real_realloc(p, n);
}

__attribute__((constructor)) static void af_init(void)
{
    const char *v = getenv("PSKGW_ALLOC_FAIL_AT");
    const char *t = getenv("PSKGW_ALLOC_FAIL_TRACE");
    char *end = NULL;
    long n;

    if (wolfSSL_SetAllocators != NULL)
        (void)wolfSSL_SetAllocators(af_wolf_malloc, free, af_wolf_realloc);
    if (v == NULL || *v == '\0')
        return;
    n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < 0) {
        af_say("allocfail: PSKGW_ALLOC_FAIL_AT must be a number >= 0: not armed\n");
        return;
    }
    fail_at = n;
    trace = t != NULL && strcmp(t, "1") == 0;
}

__attribute__((destructor)) static void af_fini(void)
{
    char line[400];

    if (fail_at != 0 || atomic_load(&counted) == 0)
        return;
    (void)snprintf(line, sizeof(line), "allocfail: test %s made %ld allocations\n", test_name,
                   atomic_load(&counted));
    af_say(line);
}

/* Where the failed allocation was called from, as "object+0xoffset" (the same for every run of
 * one binary, whatever the load address): tests/torture.sh counts the distinct sites a sweep
 * reached. */
static void af_site(const void *caller, char *buf, size_t cap)
{
    Dl_info info;
    const char *name;

    if (caller == NULL || dladdr(caller, &info) == 0 || info.dli_fname == NULL) {
        (void)snprintf(buf, cap, "?");
        return;
    }
    name = strrchr(info.dli_fname, '/');
    (void)snprintf(buf, cap, "%s+0x%lx", name != NULL ? name + 1 : info.dli_fname,
                   (unsigned long)((uintptr_t)caller - (uintptr_t)info.dli_fbase));
}

/* The wrapped allocations of our code (allocwrap.c) come here. */
bool pskgw_allocwrap_fail(const char *fn, size_t n, const void *caller)
{
    char line[600], site[200];
    long k;

    atomic_fetch_add(&calls, 1);
    thread_calls++;
    if (fail_at < 0)
        return false;
    k = atomic_fetch_add(&counted, 1) + 1;
    if (k == 1)
        af_test_name(test_name, sizeof(test_name));
    if (k != fail_at)
        return false;
    atomic_store(&injected, true);
    af_site(caller, site, sizeof(site));
    (void)snprintf(
        line, sizeof(line),
        "allocfail: injected failure of allocation %ld (%s %zu bytes) in test %s at %s\n", k, fn, n,
        test_name, site);
    af_say(line);
    if (trace && __sanitizer_print_stack_trace != NULL)
        __sanitizer_print_stack_trace();
    return true;
}

bool pskgw_allocfail_injected(void)
{
    return atomic_load(&injected);
}

long pskgw_allocfail_count(void)
{
    return atomic_load(&counted);
}

long pskgw_allocfail_thread_calls(void)
{
    return thread_calls;
}

long pskgw_allocfail_calls(void)
{
    return atomic_load(&calls);
}

/* The live stack at the failed assertion of an aborted test, kept until the process exits. */
static void *abort_stack;

/* Copies [from, to) word by word: the stack holds redzones that ASan would report on a memcpy;
 * only the pointers in it matter. */
__attribute__((no_sanitize_address)) static void
af_copy_stack(uintptr_t *dst, const uintptr_t *from, const uintptr_t *to)
{
    while (from < to)
        *dst++ = *from++;
}

/* A failed cr_assert (or cr_fatal) of a test that had an allocation failed on purpose: the test
 * is aborted (longjmp), so what its frames still pointed at (its own objects, not yet freed by
 * its clean-up) would be reported by LeakSanitizer at exit like a leak of the code's error path.
 * A copy of the live stack, from here to its top, in a heap block that a global points at keeps
 * exactly those objects reachable; memory the code under test lost before the assertion (an
 * error path that leaked) is unreachable from the stack too and is still reported, so
 * tests/torture.sh judges the leaks of every run. Not armed, or no failure injected: nothing. */
void __wrap_criterion_abort_test(void)
{
    pthread_attr_t attr;
    void *base = NULL;
    size_t size = 0;
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);

    if (fail_at > 0 && atomic_load(&injected) && abort_stack == NULL &&
        pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &base, &size) == 0 && here > (uintptr_t)base &&
            here < (uintptr_t)base + size) {
            const uintptr_t *from = (const uintptr_t *)(here & ~(uintptr_t)(sizeof(void *) - 1));
            const uintptr_t *to = (const uintptr_t *)((uintptr_t)base + size);
            size_t words = (size_t)(to - from);

            abort_stack = __real_malloc(words * sizeof(uintptr_t));
            if (abort_stack != NULL)
                af_copy_stack(abort_stack, from, to);
        }
        (void)pthread_attr_destroy(&attr);
    }
    __real_criterion_abort_test();
}
