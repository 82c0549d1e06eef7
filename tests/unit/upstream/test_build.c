/* Request bodies: exact shapes of spec sections 1-3. */
#include "common/err.h"
#include "common/wipe.h"
#include "upstream/parse.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

Test(build, authenticate)
{
    char *b = NULL;

    cr_assert_eq(pskgw_upstream_build_auth("key1", "s\"e\\cret", &b), 0);
    cr_assert_str_eq(b, "{\"APIKey\":\"key1\",\"APISecret\":\"s\\\"e\\\\cret\"}");
    pskgw_free_secret_str(b);
    cr_assert_eq(pskgw_upstream_build_auth("", "s", &b), PSKGW_EINVAL);
    cr_assert_eq(pskgw_upstream_build_auth("k", "\xff\xfe", &b), PSKGW_EINVAL);
}

Test(build, get_psk_uppercases_and_sends_bits_as_string)
{
    char *b = NULL;

    /* KeyID exactly as the device sent it, case kept (issue 10 §2) */
    cr_assert_eq(pskgw_upstream_build_psk("11010008002f33244b115b0aeeb9", 128, &b), 0);
    cr_assert_str_eq(b, "{\"KeyID\":\"11010008002f33244b115b0aeeb9\",\"KeyLength\":\"128\"}");
    free(b);
    cr_assert_eq(pskgw_upstream_build_psk("11010008002F33244B115B0AEEB9", 128, &b), 0);
    cr_assert_str_eq(b, "{\"KeyID\":\"11010008002F33244B115B0AEEB9\",\"KeyLength\":\"128\"}");
    free(b);
    cr_assert_eq(pskgw_upstream_build_psk("11010008002F33244b115B0aEeB9", 128, &b), 0);
    cr_assert_str_eq(b, "{\"KeyID\":\"11010008002F33244b115B0aEeB9\",\"KeyLength\":\"128\"}");
    free(b);
    cr_assert_eq(pskgw_upstream_build_psk("AB", 256, &b), 0);
    cr_assert_str_eq(b, "{\"KeyID\":\"AB\",\"KeyLength\":\"256\"}");
    free(b);
}

Test(build, get_psk_rejects)
{
    char *b = NULL;
    char long_id[70];

    memset(long_id, 'A', 66);
    long_id[66] = '\0';
    cr_assert_eq(pskgw_upstream_build_psk("ABC", 128, &b), PSKGW_EINVAL);
    cr_assert_eq(pskgw_upstream_build_psk("GG", 128, &b), PSKGW_EINVAL);
    cr_assert_eq(pskgw_upstream_build_psk("", 128, &b), PSKGW_EINVAL);
    cr_assert_eq(pskgw_upstream_build_psk(NULL, 128, &b), PSKGW_EINVAL);
    cr_assert_eq(pskgw_upstream_build_psk("AB\"", 128, &b), PSKGW_EINVAL);
    cr_assert_eq(pskgw_upstream_build_psk("AB", 192, &b), PSKGW_EINVAL);
    cr_assert_eq(pskgw_upstream_build_psk(long_id, 128, &b), PSKGW_EINVAL);
    long_id[64] = '\0';
    cr_assert_eq(pskgw_upstream_build_psk(long_id, 128, &b), 0);
    free(b);
}

Test(build, e2e)
{
    char *b = NULL;

    /* Sent as given: e2e/ chooses the case (lower by default, as the seed's example). */
    cr_assert_eq(pskgw_upstream_build_e2e("1101000089291e26ec1aeb0074450000", &b), 0);
    cr_assert_str_eq(b, "{\"EncryptedHeader\":\"1101000089291e26ec1aeb0074450000\"}");
    free(b);
    cr_assert_eq(pskgw_upstream_build_e2e("0102030405060708090A0B0C0D0E0F10", &b), 0);
    cr_assert_str_eq(b, "{\"EncryptedHeader\":\"0102030405060708090A0B0C0D0E0F10\"}");
    free(b);
    cr_assert_eq(pskgw_upstream_build_e2e("0x12", &b), PSKGW_EINVAL);
}
