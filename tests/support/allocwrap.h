/* The linker's --wrap targets for our code's allocations, defined once (allocwrap.c) for every
 * binary linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
 * the unit tests (allocfail.c: counts and injects failures) and bench/sinkbench.c (counts). Each
 * wrapped call asks pskgw_allocwrap_fail(), which the binary defines, whether to fail it, and
 * otherwise forwards to libc. No Criterion: the bench links it too. */
#ifndef PSKGW_TEST_ALLOCWRAP_H
#define PSKGW_TEST_ALLOCWRAP_H

#include <stdbool.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t nmemb, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t nmemb, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* Defined by the binary: called for every wrapped allocation, fn its name ("malloc", ...), n its
 * size in bytes, caller the return address into the code that called it; true makes the call
 * return NULL. */
bool pskgw_allocwrap_fail(const char *fn, size_t n, const void *caller);

#endif
