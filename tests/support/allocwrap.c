/* The --wrap targets: see allocwrap.h. */
#include "allocwrap.h"

#include <string.h>

void *__wrap_malloc(size_t n)
{
    return pskgw_allocwrap_fail("malloc", n, __builtin_return_address(0)) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t nmemb, size_t n)
{
    return pskgw_allocwrap_fail("calloc", nmemb * n, __builtin_return_address(0))
               ? NULL
               : __real_calloc(nmemb, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return pskgw_allocwrap_fail("realloc", n, __builtin_return_address(0)) ? NULL
                                                                           : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return pskgw_allocwrap_fail("strdup", strlen(s) + 1, __builtin_return_address(0))
               ? NULL
               : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return pskgw_allocwrap_fail("strndup", n, __builtin_return_address(0)) ? NULL
                                                                           : __real_strndup(s, n);
}
