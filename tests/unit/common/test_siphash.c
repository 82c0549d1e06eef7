#include "common/siphash.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

/* The reference vectors of the SipHash paper (Aumasson & Bernstein, appendix A and the
 * reference implementation's vectors.h): key 00..0f, message 00..len-1. Lengths cover the empty
 * message, a tail only, one full word with and without a tail, and several words. */
Test(siphash, reference_vectors)
{
    static const struct {
        size_t len;
        uint64_t hash;
    } v[] = {
        { 0, 0x726fdb47dd0e0e31ULL }, { 1, 0x74f839c593dc67fdULL },  { 7, 0xab0200f58b01d137ULL },
        { 8, 0x93f5f5799a932462ULL }, { 15, 0xa129ca6149be45e5ULL }, { 63, 0x958a324ceb064572ULL },
    };
    uint8_t key[16];
    uint8_t msg[64];

    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        cr_expect_eq(pskgw_siphash24(key, msg, v[i].len), v[i].hash, "len %zu", v[i].len);
}

Test(siphash, the_key_changes_the_hash)
{
    uint8_t k1[16] = { 0 }, k2[16] = { 0 };
    const uint8_t msg[4] = { 1, 2, 3, 4 };

    k2[15] = 1;
    cr_assert_neq(pskgw_siphash24(k1, msg, sizeof(msg)), pskgw_siphash24(k2, msg, sizeof(msg)));
    cr_assert_eq(pskgw_siphash24(k1, NULL, 0), pskgw_siphash24(k1, msg, 0));
}

static void hex16(const char *hex, uint8_t out[16])
{
    for (int i = 0; i < 16; i++) {
        unsigned hi = (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10);
        unsigned lo =
            (unsigned)(hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
}

/* The reference implementation's vectors_sip128 (vectors.h of github.com/veorq/SipHash, the
 * bytes its siphash() writes with outlen 16): key 00..0f, message 00..len-1. Every tail length
 * (0 to 7 bytes) with no, one and two full words before it, and the longest vector. */
Test(siphash, reference_vectors_128)
{
    static const struct {
        size_t len;
        const char *hex;
    } v[] = {
        { 0, "a3817f04ba25a8e66df67214c7550293" },  { 1, "da87c1d86b99af44347659119b22fc45" },
        { 2, "8177228da4a45dc7fca38bdef60affe4" },  { 3, "9c70b60c5267a94e5f33b6b02985ed51" },
        { 4, "f88164c12d9c8faf7d0f6e7c7bcd5579" },  { 5, "1368875980776f8854527a07690e9627" },
        { 6, "14eeca338b208613485ea0308fd7a15e" },  { 7, "a1f1ebbed8dbc153c0b84aa61ff08239" },
        { 8, "3b62a9ba6258f5610f83e264f31497b4" },  { 9, "264499060ad9baabc47f8b02bb6d71ed" },
        { 15, "5493e99933b0a8117e08ec0f97cfc3d9" }, { 16, "6ee2a4ca67b054bbfd3315bf85230577" },
        { 17, "473d06e8738db89854c066c47ae47740" }, { 63, "5150d1772f50834a503e069a973fbd7c" },
    };
    uint8_t key[16];
    uint8_t msg[64];
    uint8_t want[16];
    uint8_t got[16];

    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        hex16(v[i].hex, want);
        pskgw_siphash24_128(key, msg, v[i].len, got);
        cr_expect_arr_eq(got, want, 16, "len %zu", v[i].len);
    }
}

Test(siphash, the_128_bit_hash_is_keyed_and_not_the_64_bit_one)
{
    uint8_t k1[16] = { 0 }, k2[16] = { 0 };
    const uint8_t msg[4] = { 1, 2, 3, 4 };
    uint8_t a[16], b[16];
    uint64_t h64 = pskgw_siphash24(k1, msg, sizeof(msg));

    k2[15] = 1;
    pskgw_siphash24_128(k1, msg, sizeof(msg), a);
    pskgw_siphash24_128(k2, msg, sizeof(msg), b);
    cr_assert(memcmp(a, b, 16) != 0);
    cr_assert(memcmp(a, &h64, 8) != 0 && memcmp(a + 8, &h64, 8) != 0);
    pskgw_siphash24_128(k1, NULL, 0, b);
    pskgw_siphash24_128(k1, msg, 0, a);
    cr_assert_arr_eq(a, b, 16);
}
