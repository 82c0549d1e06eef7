#define _DEFAULT_SOURCE
#include "common/wipe.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void pskgw_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

/* Atomic: libcurl may free through the wiping allocator from its resolver threads. */
static _Atomic(pskgw_wipe_release_hook_t) release_hook;

void pskgw_wipe_test_set_release_hook(pskgw_wipe_release_hook_t hook)
{
    atomic_store(&release_hook, hook);
}

void pskgw_free_secret(void *p, size_t n)
{
    pskgw_wipe_release_hook_t hook;

    if (!p)
        return;
    pskgw_wipe(p, n);
    hook = atomic_load_explicit(&release_hook, memory_order_acquire);
    if (hook)
        hook(p, n);
    free(p);
}

void pskgw_free_secret_str(char *s)
{
    if (!s)
        return;
    /* The terminating NUL too: the hook sees the whole allocation of a strdup'ed secret. */
    pskgw_free_secret(s, strlen(s) + 1);
}

/* The header keeps the block's size; its size keeps the block aligned for any type. */
typedef union {
    size_t size;
    max_align_t align;
} wipe_hdr_t;

void *pskgw_wiping_malloc(size_t n)
{
    wipe_hdr_t *h;

    if (n > SIZE_MAX - sizeof(*h))
        return NULL;
    h = malloc(sizeof(*h) + n);
    if (!h)
        return NULL;
    h->size = n;
    return h + 1;
}

void pskgw_wiping_free(void *p)
{
    wipe_hdr_t *h;

    if (!p)
        return;
    h = (wipe_hdr_t *)p - 1;
    pskgw_free_secret(h, sizeof(*h) + h->size);
}

void *pskgw_wiping_realloc(void *p, size_t n)
{
    wipe_hdr_t *h;
    void *q;

    if (!p)
        return pskgw_wiping_malloc(n);
    h = (wipe_hdr_t *)p - 1;
    q = pskgw_wiping_malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, h->size < n ? h->size : n);
    pskgw_wiping_free(p);
    return q;
}

void *pskgw_wiping_calloc(size_t nmemb, size_t size)
{
    void *p;

    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    p = pskgw_wiping_malloc(nmemb * size);
    if (p)
        memset(p, 0, nmemb * size);
    return p;
}

char *pskgw_wiping_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = pskgw_wiping_malloc(n);

    if (p)
        memcpy(p, s, n);
    return p;
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
