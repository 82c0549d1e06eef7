#include "common/siphash.h"

#include <criterion/criterion.h>
#include <stdint.h>

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
