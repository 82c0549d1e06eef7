#include "common/wipe.h"

#include <criterion/criterion.h>
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
