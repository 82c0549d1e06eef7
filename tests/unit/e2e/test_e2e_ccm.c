/* AES-CCM decrypt helper (pskgw_e2e_ccm_decrypt) against published vectors and OpenSSL.
 *
 * Published vectors: RFC 3610 section 8 packet vectors #1..#24 (13-byte nonces, 8- and 10-byte
 * tags, 8/12 bytes of AAD) and NIST SP 800-38C appendix C examples 1..4 (7-, 8-, 12- and
 * 13-byte nonces; 4-, 6-, 8- and 14-byte tags). Each is also re-encrypted with OpenSSL, so a
 * transcription error in a vector cannot pass unnoticed. Lengths the publications lack (every
 * nonce length 7..13 with the E2E tags 8 and 16, empty and multi-block messages, no AAD as E2E
 * uses) are computed with OpenSSL as an independent implementation.
 */
#include "e2e/internal.h"
#include "util.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *key, *nonce, *aad, *pt, *ct_tag;
    size_t taglen;
} vec_t;

#define RFC_K1 "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF"
#define RFC_K2 "D7828D13B2B0BDC325A76236DF93CC6B"
#define NIST_K "404142434445464748494a4b4c4d4e4f"

static const vec_t vectors[] = {
    { "rfc3610 #1", RFC_K1, "00000003020100A0A1A2A3A4A5", "0001020304050607",
      "08090A0B0C0D0E0F101112131415161718191A1B1C1D1E",
      "588C979A61C663D2F066D0C2C0F989806D5F6B61DAC38417E8D12CFDF926E0", 8 },
    { "rfc3610 #2", RFC_K1, "00000004030201A0A1A2A3A4A5", "0001020304050607",
      "08090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
      "72C91A36E135F8CF291CA894085C87E3CC15C439C9E43A3BA091D56E10400916", 8 },
    { "rfc3610 #3", RFC_K1, "00000005040302A0A1A2A3A4A5", "0001020304050607",
      "08090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20",
      "51B1E5F44A197D1DA46B0F8E2D282AE871E838BB64DA8596574ADAA76FBD9FB0C5", 8 },
    { "rfc3610 #4", RFC_K1, "00000006050403A0A1A2A3A4A5", "000102030405060708090A0B",
      "0C0D0E0F101112131415161718191A1B1C1D1E",
      "A28C6865939A9A79FAAA5C4C2A9D4A91CDAC8C96C861B9C9E61EF1", 8 },
    { "rfc3610 #5", RFC_K1, "00000007060504A0A1A2A3A4A5", "000102030405060708090A0B",
      "0C0D0E0F101112131415161718191A1B1C1D1E1F",
      "DCF1FB7B5D9E23FB9D4E131253658AD86EBDCA3E51E83F077D9C2D93", 8 },
    { "rfc3610 #6", RFC_K1, "00000008070605A0A1A2A3A4A5", "000102030405060708090A0B",
      "0C0D0E0F101112131415161718191A1B1C1D1E1F20",
      "6FC1B011F006568B5171A42D953D469B2570A4BD87405A0443AC91CB94", 8 },
    { "rfc3610 #7", RFC_K1, "00000009080706A0A1A2A3A4A5", "0001020304050607",
      "08090A0B0C0D0E0F101112131415161718191A1B1C1D1E",
      "0135D1B2C95F41D5D1D4FEC185D166B8094E999DFED96C048C56602C97ACBB7490", 10 },
    { "rfc3610 #8", RFC_K1, "0000000A090807A0A1A2A3A4A5", "0001020304050607",
      "08090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
      "7B75399AC0831DD2F0BBD75879A2FD8F6CAE6B6CD9B7DB24C17B4433F434963F34B4", 10 },
    { "rfc3610 #9", RFC_K1, "0000000B0A0908A0A1A2A3A4A5", "0001020304050607",
      "08090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F20",
      "82531A60CC24945A4B8279181AB5C84DF21CE7F9B73F42E197EA9C07E56B5EB17E5F4E", 10 },
    { "rfc3610 #10", RFC_K1, "0000000C0B0A09A0A1A2A3A4A5", "000102030405060708090A0B",
      "0C0D0E0F101112131415161718191A1B1C1D1E",
      "07342594157785152B074098330ABB141B947B566AA9406B4D999988DD", 10 },
    { "rfc3610 #11", RFC_K1, "0000000D0C0B0AA0A1A2A3A4A5", "000102030405060708090A0B",
      "0C0D0E0F101112131415161718191A1B1C1D1E1F",
      "676BB20380B0E301E8AB79590A396DA78B834934F53AA2E9107A8B6C022C", 10 },
    { "rfc3610 #12", RFC_K1, "0000000E0D0C0BA0A1A2A3A4A5", "000102030405060708090A0B",
      "0C0D0E0F101112131415161718191A1B1C1D1E1F20",
      "C0FFA0D6F05BDB67F24D43A4338D2AA4BED7B20E43CD1AA31662E7AD65D6DB", 10 },
    { "rfc3610 #13", RFC_K2, "00412B4EA9CDBE3C9696766CFA", "0BE1A88BACE018B1",
      "08E8CF97D820EA258460E96AD9CF5289054D895CEAC47C",
      "4CB97F86A2A4689A877947AB8091EF5386A6FFBDD080F8E78CF7CB0CDDD7B3", 8 },
    { "rfc3610 #14", RFC_K2, "0033568EF7B2633C9696766CFA", "63018F76DC8A1BCB",
      "9020EA6F91BDD85AFA0039BA4BAFF9BFB79C7028949CD0EC",
      "4CCB1E7CA981BEFAA0726C55D378061298C85C92814ABC33C52EE81D7D77C08A", 8 },
    { "rfc3610 #15", RFC_K2, "00103FE41336713C9696766CFA", "AA6CFA36CAE86B40",
      "B916E0EACC1C00D7DCEC68EC0B3BBB1A02DE8A2D1AA346132E",
      "B1D23A2220DDC0AC900D9AA03C61FCF4A559A4417767089708A776796EDB723506", 8 },
    { "rfc3610 #16", RFC_K2, "00764C63B8058E3C9696766CFA", "D0D0735C531E1BECF049C244",
      "12DAAC5630EFA5396F770CE1A66B21F7B2101C",
      "14D253C3967B70609B7CBB7C499160283245269A6F49975BCADEAF", 8 },
    { "rfc3610 #17", RFC_K2, "00F8B678094E3B3C9696766CFA", "77B60F011C03E1525899BCAE",
      "E88B6A46C78D63E52EB8C546EFB5DE6F75E9CC0D",
      "5545FF1A085EE2EFBF52B2E04BEE1E2336C73E3F762C0C7744FE7E3C", 8 },
    { "rfc3610 #18", RFC_K2, "00D560912D3F703C9696766CFA", "CD9044D2B71FDB8120EA60C0",
      "6435ACBAFB11A82E2F071D7CA4A5EBD93A803BA87F",
      "009769ECABDF48625594C59251E6035722675E04C847099E5AE0704551", 8 },
    { "rfc3610 #19", RFC_K2, "0042FFF8F1951C3C9696766CFA", "D85BC7E69F944FB8",
      "8A19B950BCF71A018E5E6701C91787659809D67DBEDD18",
      "BC218DAA947427B6DB386A99AC1AEF23ADE0B52939CB6A637CF9BEC2408897C6BA", 10 },
    { "rfc3610 #20", RFC_K2, "00920F40E56CDC3C9696766CFA", "74A0EBC9069F5B37",
      "1761433C37C5A35FC1F39F406302EB907C6163BE38C98437",
      "5810E6FD25874022E80361A478E3E9CF484AB04F447EFFF6F0A477CC2FC9BF548944", 10 },
    { "rfc3610 #21", RFC_K2, "0027CA0C7120BC3C9696766CFA", "44A3AA3AAE6475CA",
      "A434A8E58500C6E41530538862D686EA9E81301B5AE4226BFA",
      "F2BEED7BC5098E83FEB5B31608F8E29C38819A89C8E776F1544D4151A4ED3A8B87B9CE", 10 },
    { "rfc3610 #22", RFC_K2, "005B8CCBCD9AF83C9696766CFA", "EC46BB63B02520C33C49FD70",
      "B96B49E21D621741632875DB7F6C9243D2D7C2",
      "31D750A09DA3ED7FDDD49A2032AABF17EC8EBF7D22C8088C666BE5C197", 10 },
    { "rfc3610 #23", RFC_K2, "003EBE94044B9A3C9696766CFA", "47A65AC78B3D594227E85E71",
      "E2FCFBB880442C731BF95167C8FFD7895E337076",
      "E882F1DBD38CE3EDA7C23F04DD65071EB41342ACDF7E00DCCEC7AE52987D", 10 },
    { "rfc3610 #24", RFC_K2, "008D493B30AE8B3C9696766CFA", "6E37A6EF546D955D34AB6059",
      "ABF21C0B02FEB88F856DF4A37381BCE3CC128517D4",
      "F32905B88A641B04B9C9FFB58CC390900F3DA12AB16DCE9E82EFA16DA62059", 10 },
    { "sp800-38c c.1", NIST_K, "10111213141516", "0001020304050607", "20212223", "7162015b4dac255d",
      4 },
    { "sp800-38c c.2", NIST_K, "1011121314151617", "000102030405060708090a0b0c0d0e0f",
      "202122232425262728292a2b2c2d2e2f", "d2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd", 6 },
    { "sp800-38c c.3", NIST_K, "101112131415161718191a1b",
      "000102030405060708090a0b0c0d0e0f10111213",
      "202122232425262728292a2b2c2d2e2f3031323334353637",
      "e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5484392fbc1b09951", 8 },
};

/* SP 800-38C C.4: 13-byte nonce, 65536 bytes of AAD (0x00..0xff repeated), 14-byte tag. */
#define C4_PT "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
#define C4_CT                                                                        \
    "69915dad1e84c6376a68c2967e4dab615ae0fd1faec44cc484828529463ccf72b4ac6bec93e859" \
    "8e7f0dadbcea5b"

static void check_vector(const vec_t *v)
{
    uint8_t key[16], nonce[13], aad[32], pt[64], ct_tag[96], out[64], again[96];
    size_t klen = th_unhex(v->key, key, sizeof(key));
    size_t nlen = th_unhex(v->nonce, nonce, sizeof(nonce));
    size_t alen = th_unhex(v->aad, aad, sizeof(aad));
    size_t plen = th_unhex(v->pt, pt, sizeof(pt));
    size_t clen = th_unhex(v->ct_tag, ct_tag, sizeof(ct_tag));

    cr_assert_eq(klen, 16, "%s", v->name);
    cr_assert_eq(clen, plen + v->taglen, "%s", v->name);

    /* The vector itself, cross-checked with OpenSSL. */
    cr_assert_eq(
        th_ossl_ccm_encrypt(key, nonce, nlen, aad, alen, pt, plen, v->taglen, again, again + plen),
        0, "%s", v->name);
    cr_assert_arr_eq(again, ct_tag, clen, "%s: OpenSSL disagrees with the vector", v->name);

    memset(out, 0xee, sizeof(out));
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, nlen, aad, alen, ct_tag, plen, ct_tag + plen,
                                       v->taglen, out),
                 0, "%s", v->name);
    cr_assert_arr_eq(out, pt, plen, "%s: wrong plaintext", v->name);

    /* One flipped bit anywhere (ciphertext, tag, AAD, nonce) is refused and leaves no plaintext. */
    ct_tag[clen - 1] ^= 0x01;
    memset(out, 0xee, sizeof(out));
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, nlen, aad, alen, ct_tag, plen, ct_tag + plen,
                                       v->taglen, out),
                 PSKGW_EBADMAC, "%s", v->name);
    for (size_t i = 0; i < plen; i++)
        cr_assert_eq(out[i], 0, "%s: plaintext left after a bad tag", v->name);
    ct_tag[clen - 1] ^= 0x01;
    ct_tag[0] ^= 0x80;
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, nlen, aad, alen, ct_tag, plen, ct_tag + plen,
                                       v->taglen, out),
                 PSKGW_EBADMAC, "%s", v->name);
    ct_tag[0] ^= 0x80;
    aad[alen - 1] ^= 0x01;
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, nlen, aad, alen, ct_tag, plen, ct_tag + plen,
                                       v->taglen, out),
                 PSKGW_EBADMAC, "%s", v->name);
    aad[alen - 1] ^= 0x01;
    nonce[nlen - 1] ^= 0x01;
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, nlen, aad, alen, ct_tag, plen, ct_tag + plen,
                                       v->taglen, out),
                 PSKGW_EBADMAC, "%s", v->name);
}

Test(e2e_ccm, published_vectors)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
        check_vector(&vectors[i]);
}

Test(e2e_ccm, sp800_38c_example4_large_aad)
{
    static uint8_t aad[65536];
    uint8_t key[16], nonce[13], pt[32], ct_tag[46], out[32], again[46];

    for (size_t i = 0; i < sizeof(aad); i++)
        aad[i] = (uint8_t)i;
    th_unhex(NIST_K, key, sizeof(key));
    th_unhex("101112131415161718191a1b1c", nonce, sizeof(nonce));
    cr_assert_eq(th_unhex(C4_PT, pt, sizeof(pt)), 32);
    cr_assert_eq(th_unhex(C4_CT, ct_tag, sizeof(ct_tag)), 46);
    cr_assert_eq(
        th_ossl_ccm_encrypt(key, nonce, 13, aad, sizeof(aad), pt, 32, 14, again, again + 32), 0);
    cr_assert_arr_eq(again, ct_tag, 46);
    cr_assert_eq(
        pskgw_e2e_ccm_decrypt(key, nonce, 13, aad, sizeof(aad), ct_tag, 32, ct_tag + 32, 14, out),
        0);
    cr_assert_arr_eq(out, pt, 32);
    aad[40000] ^= 0x04;
    cr_assert_eq(
        pskgw_e2e_ccm_decrypt(key, nonce, 13, aad, sizeof(aad), ct_tag, 32, ct_tag + 32, 14, out),
        PSKGW_EBADMAC);
}

/* Every nonce length 7..13 with the E2E tag lengths (8 and 16) and every other CCM tag length,
 * no AAD (as E2E), messages of 0, 1, 15, 16, 17 and 300 bytes (the last needs a 2-byte length
 * field even for a 13-byte nonce). Reference: OpenSSL. */
Test(e2e_ccm, all_nonce_and_tag_lengths_against_openssl)
{
    static const size_t lens[] = { 0, 1, 15, 16, 17, 300 };
    uint8_t key[16], nonce[13], pt[300], ct[300], tag[16], out[300];
    unsigned cases = 0;

    for (size_t nlen = 7; nlen <= 13; nlen++) {
        for (size_t taglen = 4; taglen <= 16; taglen += 2) {
            for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
                size_t len = lens[li];
                for (size_t i = 0; i < 16; i++)
                    key[i] = (uint8_t)(nlen * 31 + taglen * 7 + i);
                for (size_t i = 0; i < nlen; i++)
                    nonce[i] = (uint8_t)(0x55 ^ (i * 13 + len));
                for (size_t i = 0; i < len; i++)
                    pt[i] = (uint8_t)(i * 29 + nlen);
                cr_assert_eq(
                    th_ossl_ccm_encrypt(key, nonce, nlen, NULL, 0, pt, len, taglen, ct, tag), 0);
                memset(out, 0xaa, sizeof(out));
                cr_assert_eq(
                    pskgw_e2e_ccm_decrypt(key, nonce, nlen, NULL, 0, ct, len, tag, taglen, out), 0,
                    "nonce %zu tag %zu len %zu", nlen, taglen, len);
                cr_assert_arr_eq(out, pt, len, "nonce %zu tag %zu len %zu", nlen, taglen, len);
                tag[taglen / 2] ^= 0x10;
                cr_assert_eq(
                    pskgw_e2e_ccm_decrypt(key, nonce, nlen, NULL, 0, ct, len, tag, taglen, out),
                    PSKGW_EBADMAC, "nonce %zu tag %zu len %zu", nlen, taglen, len);
                cases++;
            }
        }
    }
    cr_assert_eq(cases, 7 * 7 * 6);
}

Test(e2e_ccm, bad_arguments)
{
    uint8_t key[16] = { 0 }, nonce[14] = { 0 }, ct[4] = { 0 }, tag[17] = { 0 }, out[4];

    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, 6, NULL, 0, ct, 4, tag, 8, out), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, 14, NULL, 0, ct, 4, tag, 8, out), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, 13, NULL, 0, ct, 4, tag, 7, out), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, 13, NULL, 0, ct, 4, tag, 2, out), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, 13, NULL, 0, ct, 4, tag, 18, out), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_ccm_decrypt(NULL, nonce, 13, NULL, 0, ct, 4, tag, 8, out), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, 13, NULL, 0, ct, 4, tag, 8, NULL), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, 13, NULL, 3, ct, 4, tag, 8, out), PSKGW_EINVAL);
    /* An all-zero tag for this key is (overwhelmingly) not the right one. */
    cr_assert_eq(pskgw_e2e_ccm_decrypt(key, nonce, 13, NULL, 0, ct, 4, tag, 8, out), PSKGW_EBADMAC);
}
