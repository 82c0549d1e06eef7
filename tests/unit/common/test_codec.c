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

/* The encoders as they were before they went through tables of digit pairs (one byte stored at a
 * time): the reference the table encoders must match byte for byte. */
static void old_hex_encode(const uint8_t *in, size_t n, char *out, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void old_b64_encode(const uint8_t *in, size_t n, char *out)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    size_t i = 0;

    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = std[v >> 18 & 63];
        out[o++] = std[v >> 12 & 63];
        out[o++] = std[v >> 6 & 63];
        out[o++] = std[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = std[v >> 18 & 63];
        out[o++] = std[v >> 12 & 63];
        out[o++] = i + 1 < n ? std[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

static uint64_t xorshift64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#define ENC_MAX_IN 300
#define ENC_GUARD  0x5a

/* Every length 0..300, 64 random inputs each (plus all-zero and all-0xff ones), exact output
 * capacities: the table encoders write exactly what the old ones wrote and not a byte more. */
Test(codec, table_encoders_match_the_old_ones)
{
    uint64_t seed = 0x9e3779b97f4a7c15u;
    uint8_t in[ENC_MAX_IN];
    char want[2 * ENC_MAX_IN + 1];
    char got[2 * ENC_MAX_IN + 1 + 8];

    for (size_t n = 0; n <= ENC_MAX_IN; n++) {
        for (int round = 0; round < 66; round++) {
            for (size_t k = 0; k < n; k++)
                in[k] = round == 0 ? 0 : round == 1 ? 0xff : (uint8_t)xorshift64(&seed);
            for (int upper = 0; upper < 2; upper++) {
                size_t len = pskgw_hex_encoded_len(n);
                memset(got, ENC_GUARD, sizeof(got));
                old_hex_encode(in, n, want, upper);
                cr_assert_eq(pskgw_hex_encode(in, n, got, len, upper), 0);
                cr_assert(memcmp(got, want, len) == 0, "hex n=%zu upper=%d", n, upper);
                cr_assert_eq((uint8_t)got[len], ENC_GUARD);
            }
            size_t len = pskgw_b64_encoded_len(n);
            memset(got, ENC_GUARD, sizeof(got));
            old_b64_encode(in, n, want);
            cr_assert_eq(pskgw_b64_encode(in, n, got, len), 0);
            cr_assert(memcmp(got, want, len) == 0, "b64 n=%zu", n);
            cr_assert_eq((uint8_t)got[len], ENC_GUARD);
            cr_assert_eq(pskgw_b64_encode(in, n, got, len - 1), PSKGW_ETOOBIG);
        }
    }
}

/* Every byte value at every position of the first 9 bytes (the b64 loop reads 8 to use 6) and of a
 * 4-byte hex group. */
Test(codec, table_encoders_every_byte_every_position)
{
    uint8_t in[9];
    char want[16];
    char got[16];

    for (size_t pos = 0; pos < sizeof(in); pos++) {
        for (unsigned b = 0; b < 256; b++) {
            memset(in, 0x3c, sizeof(in));
            in[pos] = (uint8_t)b;
            for (size_t n = pos + 1; n <= sizeof(in); n++) {
                old_b64_encode(in, n, want);
                cr_assert_eq(pskgw_b64_encode(in, n, got, sizeof(got)), 0);
                cr_assert_str_eq(got, want);
                if (n > 5)
                    continue;
                old_hex_encode(in, n, want, b & 1);
                cr_assert_eq(pskgw_hex_encode(in, n, got, sizeof(got), b & 1), 0);
                cr_assert_str_eq(got, want);
            }
        }
    }
}
