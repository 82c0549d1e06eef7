#include "common/codec.h"
#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

/* RFC 4648 section 10 test vectors. */
static const char *const b64_plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
static const char *const b64_enc[] = { "",         "Zg==",     "Zm8=",    "Zm9v",
                                       "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };

Test(codec, base64_rfc4648_vectors)
{
    for (size_t i = 0; i < 7; i++) {
        char enc[32];
        uint8_t dec[32];
        size_t n = 99;

        cr_assert_eq(
            pskgw_b64_encode((const uint8_t *)b64_plain[i], strlen(b64_plain[i]), enc, sizeof(enc)),
            0);
        cr_assert_str_eq(enc, b64_enc[i]);
        cr_assert_eq(pskgw_b64_decode(b64_enc[i], strlen(b64_enc[i]), dec, sizeof(dec), &n), 0);
        cr_assert_eq(n, strlen(b64_plain[i]));
        cr_assert(memcmp(dec, b64_plain[i], n) == 0);
    }
}

Test(codec, base64_seed_psk)
{
    /* The seed's GetPSK example: 16-byte key. */
    uint8_t key[32];
    size_t n = 0;

    cr_assert_eq(pskgw_b64_decode("5d5Fs2fbaQ8uF8+dgKGOhw==", 24, key, sizeof(key), &n), 0);
    cr_assert_eq(n, 16);
    cr_assert_eq(key[0], 0xe5);
    cr_assert_eq(key[15], 0x87);
}

Test(codec, base64_rejects_malformed)
{
    uint8_t out[16];
    size_t n = 77;

    cr_assert_eq(pskgw_b64_decode("Zm9", 3, out, sizeof(out), &n), PSKGW_EPARSE);
    cr_assert_eq(pskgw_b64_decode("Zm9v!A==", 8, out, sizeof(out), &n), PSKGW_EPARSE);
    cr_assert_eq(pskgw_b64_decode("Zh==", 4, out, sizeof(out), &n),
                 PSKGW_EPARSE); /* non-zero pad bits */
    cr_assert_eq(pskgw_b64_decode("====", 4, out, sizeof(out), &n), PSKGW_EPARSE);
    cr_assert_eq(pskgw_b64_decode("Zm9vYmFy", 8, out, 5, &n), PSKGW_ETOOBIG);
    cr_assert_eq(n, 77, "out-parameter written on failure");
}

Test(codec, base64url_jwt_segment)
{
    /* {"exp":1700000000} without padding, URL alphabet. */
    const char *seg = "eyJleHAiOjE3MDAwMDAwMDB9";
    uint8_t out[64];
    size_t n = 0;

    cr_assert_eq(pskgw_b64url_decode(seg, strlen(seg), out, sizeof(out), &n), 0);
    cr_assert_eq(n, 18);
    cr_assert(memcmp(out, "{\"exp\":1700000000}", 18) == 0);
    cr_assert_eq(pskgw_b64url_decode("_-8", 3, out, sizeof(out), &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(out[0], 0xff);
    cr_assert_eq(out[1], 0xef);
    cr_assert_eq(pskgw_b64url_decode("a+8", 3, out, sizeof(out), &n), PSKGW_EPARSE);
}

Test(codec, hex_roundtrip_and_case)
{
    const uint8_t id[] = { 0x11, 0x01, 0x00, 0x08, 0x00, 0x2f, 0x33,
                           0x24, 0x4b, 0x11, 0x5b, 0x0a, 0xee, 0xb9 };
    char hex[64];
    uint8_t back[32];
    size_t n = 0;

    cr_assert_eq(pskgw_hex_encode(id, sizeof(id), hex, sizeof(hex), true), 0);
    cr_assert_str_eq(hex, "11010008002F33244B115B0AEEB9");
    cr_assert_eq(pskgw_hex_encode(id, 2, hex, sizeof(hex), false), 0);
    cr_assert_str_eq(hex, "1101");
    cr_assert_eq(pskgw_hex_decode("11010008002f33244B115B0AEEB9", 28, back, sizeof(back), &n), 0);
    cr_assert_eq(n, sizeof(id));
    cr_assert(memcmp(back, id, n) == 0);
}

Test(codec, hex_rejects_malformed)
{
    uint8_t out[8];
    size_t n = 5;
    char small[4];

    cr_assert_eq(pskgw_hex_decode("abc", 3, out, sizeof(out), &n), PSKGW_EPARSE);
    cr_assert_eq(pskgw_hex_decode("zz", 2, out, sizeof(out), &n), PSKGW_EPARSE);
    cr_assert_eq(pskgw_hex_decode("00112233445566778899", 20, out, sizeof(out), &n), PSKGW_ETOOBIG);
    cr_assert_eq(n, 5);
    cr_assert_eq(pskgw_hex_encode((const uint8_t *)"ab", 2, small, sizeof(small), true),
                 PSKGW_ETOOBIG);
    cr_assert(pskgw_is_hex((const uint8_t *)"0aF9", 4));
    cr_assert(!pskgw_is_hex((const uint8_t *)"0aF", 3));
    cr_assert(!pskgw_is_hex((const uint8_t *)"0g", 2));
    cr_assert(!pskgw_is_hex((const uint8_t *)"", 0));
}
