#define _DEFAULT_SOURCE
#include "common/wipe.h"

#include <stdlib.h>
#include <string.h>

void pskgw_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

void pskgw_free_secret(void *p, size_t n)
{
    if (!p)
        return;
    pskgw_wipe(p, n);
    free(p);
}

void pskgw_free_secret_str(char *s)
{
    if (!s)
        return;
    pskgw_wipe(s, strlen(s));
    free(s);
}

int pskgw_memeq_ct(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a;
    const volatile unsigned char *y = b;
    unsigned char d = 0;

    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d != 0;
}
