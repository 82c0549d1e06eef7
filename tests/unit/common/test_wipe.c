#include "common/wipe.h"

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

Test(wipe, zeroes_buffer)
{
    unsigned char key[32];

    memset(key, 0xA5, sizeof(key));
    pskgw_wipe(key, sizeof(key));
    for (size_t i = 0; i < sizeof(key); i++)
        cr_assert_eq(key[i], 0);
    pskgw_wipe(NULL, 10); /* accepted */
}

Test(wipe, free_secret_accepts_null)
{
    char *s = strdup("api-secret");

    pskgw_free_secret(NULL, 5);
    pskgw_free_secret_str(NULL);
    pskgw_free_secret_str(s); /* ASan proves the free */
    pskgw_free_secret(malloc(16), 16);
}

Test(wipe, constant_time_compare)
{
    cr_assert_eq(pskgw_memeq_ct("abcd", "abcd", 4), 0);
    cr_assert_neq(pskgw_memeq_ct("abcd", "abce", 4), 0);
    cr_assert_eq(pskgw_memeq_ct("x", "y", 0), 0);
}

Test(wipe, wiping_allocator_round_trip)
{
    char *p = pskgw_wiping_malloc(40);

    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % _Alignof(max_align_t), 0, "aligned for any type");
    memset(p, 0x5a, 40); /* ASan proves the whole block is ours */
    pskgw_wiping_free(p);
    pskgw_wiping_free(NULL);
    cr_assert_null(pskgw_wiping_malloc(SIZE_MAX - 4));
}

Test(wipe, wiping_family)
{
    char *s = pskgw_wiping_strdup("token");
    char *r;
    unsigned char *z = pskgw_wiping_calloc(4, 8);

    cr_assert_not_null(s);
    cr_assert_not_null(z);
    cr_assert_str_eq(s, "token");
    r = pskgw_wiping_realloc(s, 64);
    cr_assert_not_null(r);
    cr_assert_str_eq(r, "token", "content kept when growing");
    r = pskgw_wiping_realloc(r, 3);
    cr_assert_not_null(r);
    cr_assert(memcmp(r, "tok", 3) == 0, "prefix kept when shrinking");
    pskgw_wiping_free(r);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(z[i], 0);
    pskgw_wiping_free(z);
    cr_assert_null(pskgw_wiping_calloc(SIZE_MAX / 2, 4));
    pskgw_wiping_free(pskgw_wiping_realloc(NULL, 10));
}
