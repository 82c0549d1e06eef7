/* pskgw_e2e_decrypt / _decrypt_payload on payloads made as a module makes them (OpenSSL as the
 * device-side implementation; test_e2e_rotkeys.c does the same with the simulator's library). */
#include "e2e/decrypt.h"
#include "util.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

static const uint8_t ki_v1[16] = { 0x11, 0x01, 0x00, 0x00, 0x89, 0x29, 0x1e, 0x26,
                                   0xec, 0x1a, 0xeb, 0x00, 0x74, 0x45, 0x00, 0x00 };
static const uint8_t ki_v2[11] = {
    0x21, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef
};

Test(e2e_decrypt, hello_v1_is_37_bytes)
{
    pskgw_e2e_params_t p;
    uint8_t payload[64], out[64];
    pskgw_e2e_header_t h;
    size_t n = 0;
    size_t len;

    th_params(1, 0, &p);
    len = th_make_payload(&p, ki_v1, 16, (const uint8_t *)"HELLO", 5, payload, sizeof(payload));
    cr_assert_eq(len, 37);
    cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, len, &h, out, sizeof(out), &n), 0);
    cr_assert_eq(h.version, 1);
    cr_assert_str_eq(h.ki_hex, "1101000089291e26ec1aeb0074450000");
    cr_assert_eq(n, 5);
    cr_assert_arr_eq(out, "HELLO", 5);
}

Test(e2e_decrypt, quick_brown_fox_v1_is_76_bytes)
{
    static const char fox[] = "The quick brown fox jumps over the lazy dog.";
    pskgw_e2e_params_t p;
    uint8_t payload[96], out[96];
    size_t n = 0;
    size_t len;

    th_params(1, 3, &p);
    len = th_make_payload(&p, ki_v1, 16, (const uint8_t *)fox, 44, payload, sizeof(payload));
    cr_assert_eq(len, 76);
    cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, len, NULL, out, sizeof(out), &n), 0);
    cr_assert_eq(n, 44);
    cr_assert_arr_eq(out, fox, 44);
}

Test(e2e_decrypt, v2_ccm8)
{
    pskgw_e2e_params_t p;
    uint8_t payload[128], out[128], pt[100];
    pskgw_e2e_header_t h;
    size_t n = 0;

    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (uint8_t)(i ^ 0x5c);
    th_params(2, 7, &p);
    for (size_t len = 0; len <= sizeof(pt); len += 25) {
        size_t plen = th_make_payload(&p, ki_v2, 11, pt, len, payload, sizeof(payload));
        cr_assert_eq(plen, len + 19);
        memset(out, 0, sizeof(out));
        cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, plen, &h, out, sizeof(out), &n), 0);
        cr_assert_eq(h.version, 2);
        cr_assert_str_eq(h.ki_hex, "21000000070000deadbeef");
        cr_assert_eq(n, len);
        cr_assert_arr_eq(out, pt, len);
    }
}

Test(e2e_decrypt, every_nonce_length_and_both_tags)
{
    uint8_t payload[80], out[80];
    size_t n = 0;

    for (int v = 1; v <= 2; v++) {
        for (size_t nl = 7; nl <= 13; nl++) {
            pskgw_e2e_params_t p;
            th_params(v, (uint8_t)nl, &p);
            p.nonce_len = nl;
            size_t len = th_make_payload(&p, v == 1 ? ki_v1 : ki_v2, v == 1 ? 16 : 11,
                                         (const uint8_t *)"0123456789abcdefXYZ", 19, payload,
                                         sizeof(payload));
            cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, len, NULL, out, sizeof(out), &n), 0,
                         "v%d nonce %zu", v, nl);
            cr_assert_eq(n, 19);
            cr_assert_arr_eq(out, "0123456789abcdefXYZ", 19);
        }
    }
}

Test(e2e_decrypt, flipped_bits_are_bad_mac_and_leave_nothing)
{
    pskgw_e2e_params_t p;
    uint8_t payload[64], out[64];
    size_t n = 12345;
    size_t len;

    th_params(1, 5, &p);
    len = th_make_payload(&p, ki_v1, 16, (const uint8_t *)"temperature=21.5", 16, payload,
                          sizeof(payload));
    /* Every bit of the ciphertext and of the tag. */
    for (size_t i = 16; i < len; i++) {
        for (int b = 0; b < 8; b++) {
            payload[i] ^= (uint8_t)(1u << b);
            memset(out, 0xcc, sizeof(out));
            cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, len, NULL, out, sizeof(out), &n),
                         PSKGW_EBADMAC, "byte %zu bit %d", i, b);
            for (size_t k = 0; k < 16; k++)
                cr_assert_eq(out[k], 0, "plaintext left behind");
            payload[i] ^= (uint8_t)(1u << b);
        }
    }
    cr_assert_eq(n, 12345, "out_len written on failure");
    /* Wrong key, wrong nonce. */
    p.key[0] ^= 1;
    cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, len, NULL, out, sizeof(out), &n),
                 PSKGW_EBADMAC);
    p.key[0] ^= 1;
    p.nonce[12] ^= 1;
    cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, len, NULL, out, sizeof(out), &n),
                 PSKGW_EBADMAC);
    p.nonce[12] ^= 1;
    /* The KI is not authenticated (it only selects the key): changing a KI byte other than the
     * version nibble does not change the result for the same parameters. */
    payload[5] ^= 0xff;
    cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, len, NULL, out, sizeof(out), &n), 0);
    cr_assert_arr_eq(out, "temperature=21.5", 16);
}

Test(e2e_decrypt, truncated)
{
    pskgw_e2e_params_t p;
    uint8_t payload[64], out[64];
    size_t n = 0;
    size_t len;

    th_params(1, 5, &p);
    len = th_make_payload(&p, ki_v1, 16, (const uint8_t *)"HELLO", 5, payload, sizeof(payload));
    /* Shorter than KI + 16-byte tag but still a valid header (>= 24): EPARSE from decrypt. */
    for (size_t cut = 24; cut < 32; cut++)
        cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, cut, NULL, out, sizeof(out), &n),
                     PSKGW_EPARSE, "%zu", cut);
    /* Not even a header. */
    cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, 20, NULL, out, sizeof(out), &n),
                 PSKGW_EPARSE);
    /* Long enough for a tag, but bytes are missing: the tag is read from the wrong place. */
    for (size_t cut = 32; cut < len; cut++)
        cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, cut, NULL, out, sizeof(out), &n),
                     PSKGW_EBADMAC, "%zu", cut);
    cr_assert_eq(pskgw_e2e_decrypt(&p, payload + 16, 15, out, sizeof(out), &n), PSKGW_EPARSE);
    /* Exactly a tag: empty plaintext is legal if it verifies. */
    len = th_make_payload(&p, ki_v1, 16, NULL, 0, payload, sizeof(payload));
    cr_assert_eq(len, 32);
    cr_assert_eq(pskgw_e2e_decrypt(&p, payload + 16, 16, NULL, 0, &n), 0);
    cr_assert_eq(n, 0);
}

Test(e2e_decrypt, bad_params_and_buffers)
{
    pskgw_e2e_params_t p;
    uint8_t payload[64], out[64];
    size_t n = 0;
    size_t len;

    th_params(1, 5, &p);
    len = th_make_payload(&p, ki_v1, 16, (const uint8_t *)"HELLO", 5, payload, sizeof(payload));
    cr_assert_eq(pskgw_e2e_decrypt(&p, payload + 16, len - 16, out, 4, &n), PSKGW_ETOOBIG);
    cr_assert_eq(pskgw_e2e_decrypt(&p, payload + 16, len - 16, NULL, 0, &n), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_decrypt(NULL, payload + 16, len - 16, out, sizeof(out), &n),
                 PSKGW_EINVAL);
    p.mac_bits = 64; /* inconsistent with AES_128_CCM */
    cr_assert_eq(pskgw_e2e_decrypt(&p, payload + 16, len - 16, out, sizeof(out), &n), PSKGW_EINVAL);
    th_params(1, 5, &p);
    p.nonce_len = 14;
    cr_assert_eq(pskgw_e2e_decrypt(&p, payload + 16, len - 16, out, sizeof(out), &n), PSKGW_EINVAL);
    th_params(1, 5, &p);
    /* Not an E2E payload at all. */
    payload[0] = 0x31;
    cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, len, NULL, out, sizeof(out), &n),
                 PSKGW_EPROTO);
}
