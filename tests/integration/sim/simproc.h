/* The simulator process of pskgw-sim's own tests (test_sim.c, test_sim_strict.c): one pskgw-sim
 * at a time, started with the test's flags on port 0 (base URL from its first stdout line), its
 * stderr captured in the test's temporary directory, stopped and judged inside the test.
 * Failures are Criterion assertions: the test ends there and the suite's fini calls
 * simproc_fini(). */
#ifndef PSKGW_TEST_SIMPROC_H
#define PSKGW_TEST_SIMPROC_H

#include "proc.h"

#include <stddef.h>

#define SIMPROC_GUARD_MS 60000 /* a guard against hanging only, never a statement about speed */

typedef struct {
    pskgw_test_proc_t proc;
    char url[256];
    char ca[640]; /* CA file for https, "" for http */
    char tmp[256];
    char err[512]; /* the running simulator's captured stderr */
} simproc_t;

#define SIMPROC_INIT       \
    {                      \
        .proc = { -1, -1 } \
    }

/* A path in the test's temporary directory (made on first use) for a process's stderr (cap
 * bytes at out, the caller's). */
void simproc_err_path(simproc_t *s, char *out, size_t cap, const char *name);
/* Start pskgw-sim with base then extra flags (both NULL-terminated, extra may be NULL) and read
 * its base URL. */
void simproc_start(simproc_t *s, const char *const *base, const char *const *extra);
/* SIGTERM, then judged: exit 0, no sanitizer report. */
void simproc_stop_clean(simproc_t *s);
/* The suite's fini: a simulator still running (a test that failed half-way) killed, the
 * temporary directory removed. */
void simproc_fini(simproc_t *s);

/* A libcurl write callback's body: n bytes at p appended to buf (cap bytes, *len used, kept
 * NUL-terminated). n, or 0 (curl then fails the transfer) when they do not fit. */
size_t simproc_append(char *buf, size_t cap, size_t *len, const char *p, size_t n);

/* start_sim("--flag", "value", ...): the test file's start_sim_v() with these extra flags. */
#define start_sim(...)                                      \
    do {                                                    \
        const char *const extra_[] = { __VA_ARGS__, NULL }; \
        start_sim_v(extra_);                                \
    } while (0)

#endif
