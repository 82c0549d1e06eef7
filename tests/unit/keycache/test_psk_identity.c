/* The PSK identity plausibility check: the spec's and seeds' examples pass, the simulator's
 * identities pass, impossible ones are refused with their reason. */
#include "keycache/psk_identity.h"
#include "tools/rotkeys/rotkeys.h"

#include <criterion/criterion.h>
#include <string.h>

#define CHECK(s) pskgw_psk_identity_check((s), strlen(s))

Test(psk_identity, examples_from_the_spec_and_seeds_pass)
{
    cr_assert_eq(CHECK("11010008002F33244B115B0AEEB9"), PSKGW_PSK_ID_OK);
    cr_assert_eq(CHECK("1101000000112233445566778899"), PSKGW_PSK_ID_OK);
    /* 32 bytes, the most ubxlib holds; a version-2 nibble */
    cr_assert_eq(CHECK("1101000000112233445566778899AABBCCDDEEFF00112233445566778899AABB"),
                 PSKGW_PSK_ID_OK);
    cr_assert_eq(CHECK("2101000000112233445566778899"), PSKGW_PSK_ID_OK);
}

/* The KeyID keeps the case the device sent (a module configured by hand with
 * AT+USECPRF=0,9,"1101..." or openssl's -psk_identity may carry lower case): not refused. */
Test(psk_identity, lower_and_mixed_case_identities_pass)
{
    cr_assert_eq(CHECK("11010008002f33244b115b0aeeb9"), PSKGW_PSK_ID_OK);
    cr_assert_eq(CHECK("11010008002F33244b115b0aeeB9"), PSKGW_PSK_ID_OK);
    cr_assert_eq(CHECK("11010008002f33244b115b0aeebg"), PSKGW_PSK_ID_CHARSET);
}

Test(psk_identity, simulated_devices_pass)
{
    char hex[PSKGW_ROT_IDENTITY_HEX_LEN + 1];

    for (uint32_t d = 0; d < 2000; d += 7) {
        cr_assert_eq(pskgw_rot_identity_hex("pskgw-sim", d, hex), 0);
        cr_assert_eq(CHECK(hex), PSKGW_PSK_ID_OK, "%s", hex);
    }
}

Test(psk_identity, impossible_identities_are_refused_with_their_reason)
{
    cr_assert_eq(pskgw_psk_identity_check(NULL, 0), PSKGW_PSK_ID_LENGTH);
    cr_assert_eq(CHECK("11010008002F33244B115B0AEE"), PSKGW_PSK_ID_LENGTH); /* 13 bytes */
    cr_assert_eq(CHECK("436C69656E7431"), PSKGW_PSK_ID_LENGTH);             /* "client1" */
    cr_assert_eq(CHECK("1101000000112233445566778899AABBCCDDEEFF00112233445566778899AABBCC"),
                 PSKGW_PSK_ID_LENGTH); /* 33 bytes */
    cr_assert_eq(CHECK("11010008002F33244B115B0AEEB9A"), PSKGW_PSK_ID_ODD);
    cr_assert_eq(CHECK("11010008002F33244B115B0AEEBG"), PSKGW_PSK_ID_CHARSET);
    cr_assert_eq(CHECK("31010008002F33244B115B0AEEB9"), PSKGW_PSK_ID_STRUCTURE);
    cr_assert_eq(CHECK("01010008002F33244B115B0AEEB9"), PSKGW_PSK_ID_STRUCTURE);
    cr_assert_eq(CHECK("F1010008002F33244B115B0AEEB9"), PSKGW_PSK_ID_STRUCTURE);
}

Test(psk_identity, reason_names)
{
    cr_assert_str_eq(pskgw_psk_id_reason_name(PSKGW_PSK_ID_OK), "ok");
    cr_assert_str_eq(pskgw_psk_id_reason_name(PSKGW_PSK_ID_LENGTH), "length");
    cr_assert_str_eq(pskgw_psk_id_reason_name(PSKGW_PSK_ID_ODD), "odd_length");
    cr_assert_str_eq(pskgw_psk_id_reason_name(PSKGW_PSK_ID_CHARSET), "charset");
    cr_assert_str_eq(pskgw_psk_id_reason_name(PSKGW_PSK_ID_STRUCTURE), "structure");
    cr_assert_str_eq(pskgw_psk_id_reason_name(PSKGW_PSK_ID_REASON_COUNT_), "unknown");
}
