/* Unit tests for tools/rotkeys: the deterministic root-of-trust derivation. */
#include <criterion/criterion.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>

#include <ctype.h>
#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "tools/rotkeys/rotkeys.h"

#define SEED "unit-test-seed"

Test(rotkeys, identity_is_deterministic_and_shaped)
{
    uint8_t a[PSKGW_ROT_IDENTITY_LEN], b[PSKGW_ROT_IDENTITY_LEN], c[PSKGW_ROT_IDENTITY_LEN];
    cr_assert_eq(pskgw_rot_identity(SEED, 47, a), 0);
    cr_assert_eq(pskgw_rot_identity(SEED, 47, b), 0);
    cr_assert_eq(memcmp(a, b, sizeof(a)), 0);
    cr_assert_eq(a[0], 0x11);
    cr_assert_eq(a[1], 0x01);
    cr_assert_eq(a[2], 0);
    cr_assert_eq(a[3], 0);
    cr_assert_eq(a[4], 0);
    cr_assert_eq(a[5], 47);
    /* another device and another seed give other identities */
    cr_assert_eq(pskgw_rot_identity(SEED, 48, c), 0);
    cr_assert_neq(memcmp(a + 6, c + 6, 8), 0);
    cr_assert_eq(pskgw_rot_identity("other seed", 47, c), 0);
    cr_assert_eq(memcmp(a, c, 6), 0);
    cr_assert_neq(memcmp(a + 6, c + 6, 8), 0);
}

Test(rotkeys, identity_hex_is_28_upper_hex)
{
    char hex[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    uint8_t id[PSKGW_ROT_IDENTITY_LEN], back[PSKGW_ROT_IDENTITY_LEN];
    size_t n = 0;
    cr_assert_eq(pskgw_rot_identity_hex(SEED, 0x0008002F, hex), 0);
    cr_assert_eq(strlen(hex), 28);
    cr_assert_eq(strncmp(hex,
                         "110100"
                         "08002F",
                         12),
                 0);
    for (size_t i = 0; i < 28; i++)
        cr_assert(isxdigit((unsigned char)hex[i]) && !islower((unsigned char)hex[i]));
    cr_assert_eq(pskgw_rot_identity(SEED, 0x0008002F, id), 0);
    cr_assert_eq(pskgw_hex_decode(hex, 28, back, sizeof(back), &n), 0);
    cr_assert_eq(n, sizeof(id));
    cr_assert_eq(memcmp(id, back, n), 0);
}

Test(rotkeys, identity_check_accepts_real_and_rejects_modified)
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN];
    uint32_t dev = 0;
    cr_assert_eq(pskgw_rot_identity(SEED, 123456, id), 0);
    cr_assert_eq(pskgw_rot_identity_check(SEED, id, sizeof(id), &dev), 0);
    cr_assert_eq(dev, 123456);
    /* every single-bit flip is rejected, and *device is left alone */
    for (size_t i = 0; i < sizeof(id); i++) {
        for (int bit = 0; bit < 8; bit++) {
            id[i] ^= (uint8_t)(1u << bit);
            dev = 7;
            cr_assert_eq(pskgw_rot_identity_check(SEED, id, sizeof(id), &dev), PSKGW_ENOTFOUND,
                         "byte %zu bit %d", i, bit);
            cr_assert_eq(dev, 7);
            id[i] ^= (uint8_t)(1u << bit);
        }
    }
    cr_assert_eq(pskgw_rot_identity_check("other seed", id, sizeof(id), &dev), PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_rot_identity_check(SEED, id, sizeof(id) - 1, &dev), PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_rot_identity_check(SEED, NULL, 0, &dev), PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_rot_identity_check(SEED, id, sizeof(id), NULL), PSKGW_EINVAL);
}

Test(rotkeys, identity_check_hex_is_case_insensitive)
{
    char hex[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    uint32_t dev = 0;
    cr_assert_eq(pskgw_rot_identity_hex(SEED, 999, hex), 0);
    cr_assert_eq(pskgw_rot_identity_check_hex(SEED, hex, 28, &dev), 0);
    cr_assert_eq(dev, 999);
    for (size_t i = 0; i < 28; i++)
        hex[i] = (char)tolower((unsigned char)hex[i]);
    dev = 0;
    cr_assert_eq(pskgw_rot_identity_check_hex(SEED, hex, 28, &dev), 0);
    cr_assert_eq(dev, 999);
    cr_assert_eq(pskgw_rot_identity_check_hex(SEED, hex, 27, &dev), PSKGW_EPARSE);
    hex[3] = 'g';
    cr_assert_eq(pskgw_rot_identity_check_hex(SEED, hex, 28, &dev), PSKGW_EPARSE);
    cr_assert_eq(pskgw_rot_identity_check_hex(SEED, "11010008002F33244B115B0AEEB9", 28, &dev),
                 PSKGW_ENOTFOUND);
}

Test(rotkeys, psk_lengths_and_determinism)
{
    uint8_t k1[32], k2[32], k3[32];
    size_t n1 = 0, n2 = 0, n3 = 0;
    cr_assert_eq(pskgw_rot_psk(SEED, 5, 128, k1, sizeof(k1), &n1), 0);
    cr_assert_eq(n1, 16);
    cr_assert_eq(pskgw_rot_psk(SEED, 5, 128, k2, sizeof(k2), &n2), 0);
    cr_assert_eq(n2, 16);
    cr_assert_eq(memcmp(k1, k2, 16), 0);
    cr_assert_eq(pskgw_rot_psk(SEED, 5, 256, k3, sizeof(k3), &n3), 0);
    cr_assert_eq(n3, 32);
    /* the key length is part of the derivation: the 256-bit key does not start with the 128 */
    cr_assert_neq(memcmp(k1, k3, 16), 0);
    cr_assert_eq(pskgw_rot_psk(SEED, 6, 128, k2, sizeof(k2), &n2), 0);
    cr_assert_neq(memcmp(k1, k2, 16), 0);
    cr_assert_eq(pskgw_rot_psk("", 5, 128, k2, sizeof(k2), &n2), 0);
    cr_assert_neq(memcmp(k1, k2, 16), 0);
    /* errors leave the outputs alone */
    n1 = 77;
    cr_assert_eq(pskgw_rot_psk(SEED, 5, 192, k1, sizeof(k1), &n1), PSKGW_EINVAL);
    cr_assert_eq(pskgw_rot_psk(SEED, 5, 256, k1, 31, &n1), PSKGW_ETOOBIG);
    cr_assert_eq(n1, 77);
    cr_assert_eq(pskgw_rot_psk(NULL, 5, 128, k1, sizeof(k1), &n1), PSKGW_EINVAL);
}

Test(rotkeys, uid_is_stable_16_hex)
{
    char a[PSKGW_ROT_UID_LEN + 1], b[PSKGW_ROT_UID_LEN + 1], c[PSKGW_ROT_UID_LEN + 1];
    cr_assert_eq(pskgw_rot_uid(SEED, 0x89282245, a), 0);
    cr_assert_eq(pskgw_rot_uid(SEED, 0x89282245, b), 0);
    cr_assert_str_eq(a, b);
    cr_assert_eq(strlen(a), 16);
    cr_assert_eq(strncmp(a, "000289282245", 12), 0);
    for (size_t i = 0; i < 16; i++)
        cr_assert(isxdigit((unsigned char)a[i]) && !islower((unsigned char)a[i]));
    cr_assert_eq(pskgw_rot_uid(SEED, 1, c), 0);
    cr_assert_str_neq(a, c);
}

Test(rotkeys, ki_versions_lengths_and_nibble)
{
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    size_t n = 0;
    pskgw_rot_ki_info_t info;
    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 0x00089291, PSKGW_ROT_E2E_V1, 0, ki, sizeof(ki), &n), 0);
    cr_assert_eq(n, 16);
    cr_assert_eq(ki[0] >> 4, 0x1);
    cr_assert_eq(ki[0], 0x11);
    cr_assert_eq(ki[1], 0x01);
    cr_assert_eq(ki[14], 0);
    cr_assert_eq(ki[15], 0);
    cr_assert_eq(pskgw_rot_e2e_ki_check(SEED, ki, n, &info), 0);
    cr_assert_eq(info.device, 0x00089291);
    cr_assert_eq(info.version, PSKGW_ROT_E2E_V1);
    cr_assert_eq(info.counter, 0);

    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 42, PSKGW_ROT_E2E_V2, 513, ki, sizeof(ki), &n), 0);
    cr_assert_eq(n, 11);
    cr_assert_eq(ki[0] >> 4, 0x2);
    cr_assert_eq(pskgw_rot_e2e_ki_check(SEED, ki, n, &info), 0);
    cr_assert_eq(info.device, 42);
    cr_assert_eq(info.version, PSKGW_ROT_E2E_V2);
    cr_assert_eq(info.counter, 513);

    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 42, 3, 0, ki, sizeof(ki), &n), PSKGW_EINVAL);
    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 42, PSKGW_ROT_E2E_V1, 0, ki, 15, &n), PSKGW_ETOOBIG);
    cr_assert_eq(pskgw_rot_e2e_overhead(PSKGW_ROT_E2E_V1), 32);
    cr_assert_eq(pskgw_rot_e2e_overhead(PSKGW_ROT_E2E_V2), 19);
    cr_assert_eq(pskgw_rot_e2e_overhead(0), 0);
}

Test(rotkeys, ki_check_rejects_modified_and_foreign)
{
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    size_t n = 0;
    pskgw_rot_ki_info_t info;
    for (int v = PSKGW_ROT_E2E_V1; v <= PSKGW_ROT_E2E_V2; v++) {
        cr_assert_eq(pskgw_rot_e2e_ki(SEED, 77, v, 3, ki, sizeof(ki), &n), 0);
        for (size_t i = 0; i < n; i++) {
            ki[i] ^= 0x04;
            cr_assert_neq(pskgw_rot_e2e_ki_check(SEED, ki, n, &info), 0, "v%d byte %zu", v, i);
            ki[i] ^= 0x04;
        }
        cr_assert_eq(pskgw_rot_e2e_ki_check("x", ki, n, &info), PSKGW_ENOTFOUND);
        cr_assert_eq(pskgw_rot_e2e_ki_check(SEED, ki, n - 1, &info), PSKGW_ENOTFOUND);
    }
    /* the public V1 example is well formed but not from this seed */
    uint8_t ex[16];
    size_t exn = 0;
    cr_assert_eq(pskgw_hex_decode("1101000089291e26ec1aeb0074450000", 32, ex, sizeof(ex), &exn), 0);
    cr_assert_eq(pskgw_rot_e2e_ki_check(SEED, ex, exn, &info), PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_rot_e2e_ki_check_hex(SEED, "1101000089291e26ec1aeb0074450000", 32, &info),
                 PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_rot_e2e_ki_check_hex(SEED, "1101", 4, &info), PSKGW_EPARSE);
    cr_assert_eq(pskgw_rot_e2e_ki_check_hex(SEED, "zz01000089291e26ec1aeb0074450000", 32, &info),
                 PSKGW_EPARSE);
}

Test(rotkeys, params_per_version)
{
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    size_t n = 0;
    pskgw_rot_e2e_params_t p1, p1b, p2;
    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 9, PSKGW_ROT_E2E_V1, 0, ki, sizeof(ki), &n), 0);
    cr_assert_eq(pskgw_rot_e2e_params(SEED, ki, n, &p1), 0);
    cr_assert_eq(pskgw_rot_e2e_params(SEED, ki, n, &p1b), 0);
    cr_assert_eq(memcmp(p1.key, p1b.key, 16), 0);
    cr_assert_eq(memcmp(p1.nonce, p1b.nonce, 13), 0);
    cr_assert_eq(p1.nonce_len, 13);
    cr_assert_eq(p1.mac_bits, 128);
    cr_assert_str_eq(p1.cipher_suite, "AES_128_CCM");
    cr_assert_eq(p1.info.device, 9);

    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 9, PSKGW_ROT_E2E_V2, 0, ki, sizeof(ki), &n), 0);
    cr_assert_eq(pskgw_rot_e2e_params(SEED, ki, n, &p2), 0);
    cr_assert_eq(p2.nonce_len, 12);
    cr_assert_eq(p2.mac_bits, 64);
    cr_assert_str_eq(p2.cipher_suite, "AES_128_CCM_8");
    cr_assert_neq(memcmp(p1.key, p2.key, 16), 0);

    /* another counter: another key */
    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 9, PSKGW_ROT_E2E_V1, 1, ki, sizeof(ki), &n), 0);
    cr_assert_eq(pskgw_rot_e2e_params(SEED, ki, n, &p1b), 0);
    cr_assert_neq(memcmp(p1.key, p1b.key, 16), 0);

    pskgw_rot_e2e_params_wipe(&p1);
    uint8_t zero[16] = { 0 };
    cr_assert_eq(memcmp(p1.key, zero, 16), 0);
    pskgw_rot_e2e_params_wipe(&p1b);
    pskgw_rot_e2e_params_wipe(&p2);
    pskgw_rot_e2e_params_wipe(NULL);
}

/* Decrypt an E2E payload the way pskgw must: KI -> params, split, AES-CCM without AAD. */
static int decrypt(const uint8_t *msg, size_t len, uint8_t *pt, size_t *pt_len)
{
    pskgw_rot_e2e_params_t p;
    size_t ki_len = (msg[0] >> 4) == 1 ? 16 : 11;
    int rc = pskgw_rot_e2e_params(SEED, msg, ki_len, &p);
    if (rc < 0)
        return rc;
    size_t tag_len = p.mac_bits / 8;
    size_t ct_len = len - ki_len - tag_len;
    Aes aes;
    uint8_t scratch = 0;
    cr_assert_eq(wc_AesInit(&aes, NULL, INVALID_DEVID), 0);
    cr_assert_eq(wc_AesCcmSetKey(&aes, p.key, 16), 0);
    rc = wc_AesCcmDecrypt(&aes, ct_len ? pt : &scratch, ct_len ? msg + ki_len : &scratch,
                          (word32)ct_len, p.nonce, (word32)p.nonce_len, msg + len - tag_len,
                          (word32)tag_len, NULL, 0);
    wc_AesFree(&aes);
    pskgw_rot_e2e_params_wipe(&p);
    *pt_len = ct_len;
    return rc == 0 ? 0 : PSKGW_EBADMAC;
}

Test(rotkeys, e2e_v1_hello_is_37_bytes_and_round_trips)
{
    uint8_t out[64], pt[64];
    size_t n = 0, ptn = 0;
    cr_assert_eq(pskgw_rot_e2e_encrypt(SEED, 1234, PSKGW_ROT_E2E_V1, (const uint8_t *)"HELLO", 5,
                                       out, sizeof(out), &n),
                 0);
    cr_assert_eq(n, 37);
    cr_assert_eq(out[0] >> 4, 1);
    uint8_t ki[16];
    size_t kin = 0;
    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 1234, PSKGW_ROT_E2E_V1, 0, ki, sizeof(ki), &kin), 0);
    cr_assert_eq(memcmp(out, ki, 16), 0);
    cr_assert_neq(memcmp(out + 16, "HELLO", 5), 0);
    cr_assert_eq(decrypt(out, n, pt, &ptn), 0);
    cr_assert_eq(ptn, 5);
    cr_assert_eq(memcmp(pt, "HELLO", 5), 0);
    /* deterministic */
    uint8_t again[64];
    size_t n2 = 0;
    cr_assert_eq(pskgw_rot_e2e_encrypt(SEED, 1234, PSKGW_ROT_E2E_V1, (const uint8_t *)"HELLO", 5,
                                       again, sizeof(again), &n2),
                 0);
    cr_assert_eq(n2, n);
    cr_assert_eq(memcmp(out, again, n), 0);
    /* a flipped ciphertext or tag bit fails */
    out[18] ^= 1;
    cr_assert_eq(decrypt(out, n, pt, &ptn), PSKGW_EBADMAC);
    out[18] ^= 1;
    out[36] ^= 0x80;
    cr_assert_eq(decrypt(out, n, pt, &ptn), PSKGW_EBADMAC);
}

Test(rotkeys, e2e_v1_44_bytes_gives_76)
{
    const char *fox = "The quick brown fox jumps over the lazy dog.";
    uint8_t out[128], pt[128];
    size_t n = 0, ptn = 0;
    cr_assert_eq(strlen(fox), 44);
    cr_assert_eq(pskgw_rot_e2e_encrypt(SEED, 3, PSKGW_ROT_E2E_V1, (const uint8_t *)fox, 44, out,
                                       sizeof(out), &n),
                 0);
    cr_assert_eq(n, 76);
    cr_assert_eq(decrypt(out, n, pt, &ptn), 0);
    cr_assert_eq(memcmp(pt, fox, 44), 0);
}

Test(rotkeys, e2e_v2_overhead_19_and_round_trips)
{
    uint8_t out[64], pt[64];
    size_t n = 0, ptn = 0;
    cr_assert_eq(pskgw_rot_e2e_encrypt_ctr(SEED, 55, PSKGW_ROT_E2E_V2, 9, (const uint8_t *)"HELLO",
                                           5, out, sizeof(out), &n),
                 0);
    cr_assert_eq(n, 5 + 11 + 8);
    cr_assert_eq(out[0] >> 4, 2);
    cr_assert_eq(decrypt(out, n, pt, &ptn), 0);
    cr_assert_eq(ptn, 5);
    cr_assert_eq(memcmp(pt, "HELLO", 5), 0);
    out[n - 1] ^= 1;
    cr_assert_eq(decrypt(out, n, pt, &ptn), PSKGW_EBADMAC);
}

Test(rotkeys, e2e_empty_plaintext_and_errors)
{
    uint8_t out[64], pt[4];
    size_t n = 0, ptn = 9;
    cr_assert_eq(pskgw_rot_e2e_encrypt(SEED, 1, PSKGW_ROT_E2E_V1, NULL, 0, out, sizeof(out), &n),
                 0);
    cr_assert_eq(n, 32);
    cr_assert_eq(decrypt(out, n, pt, &ptn), 0);
    cr_assert_eq(ptn, 0);
    n = 99;
    cr_assert_eq(
        pskgw_rot_e2e_encrypt(SEED, 1, PSKGW_ROT_E2E_V1, (const uint8_t *)"HELLO", 5, out, 36, &n),
        PSKGW_ETOOBIG);
    cr_assert_eq(
        pskgw_rot_e2e_encrypt(SEED, 1, 7, (const uint8_t *)"HELLO", 5, out, sizeof(out), &n),
        PSKGW_EINVAL);
    cr_assert_eq(pskgw_rot_e2e_encrypt(SEED, 1, PSKGW_ROT_E2E_V2, NULL, 5, out, sizeof(out), &n),
                 PSKGW_EINVAL);
    cr_assert_eq(n, 99);
}

static void hex_eq(const uint8_t *got, size_t n, const char *want)
{
    char buf[2 * 64 + 1];
    cr_assert(n <= 64);
    cr_assert_eq(pskgw_hex_encode(got, n, buf, sizeof(buf), false), 0);
    cr_assert_str_eq(buf, want);
}

/* Known answers computed independently (Python hmac/hashlib and cryptography's AESCCM) from the
 * scheme documented in rotkeys.h: they pin the derivation that devices and simulator share. */
Test(rotkeys, known_answers_match_documented_scheme)
{
    char hex[PSKGW_ROT_IDENTITY_HEX_LEN + 1], uid[PSKGW_ROT_UID_LEN + 1];
    uint8_t k[32], ki[16], out[64];
    size_t n = 0;
    pskgw_rot_e2e_params_t p;

    cr_assert_eq(pskgw_rot_identity_hex(SEED, 47, hex), 0);
    cr_assert_str_eq(hex, "11010000002FC5B056D90F62CDA4");
    cr_assert_eq(pskgw_rot_psk(SEED, 47, 128, k, sizeof(k), &n), 0);
    hex_eq(k, n, "6cabadf6d20fcf38ed8b7ca8568d4a3d");
    cr_assert_eq(pskgw_rot_psk(SEED, 47, 256, k, sizeof(k), &n), 0);
    hex_eq(k, n, "fd349955845f4ea3e9178a0e520a32d3eb10f7ea6a4dc9fe439d036aa104d9d1");
    cr_assert_eq(pskgw_rot_uid(SEED, 47, uid), 0);
    cr_assert_str_eq(uid, "00020000002FEB0C");

    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 47, PSKGW_ROT_E2E_V1, 0, ki, sizeof(ki), &n), 0);
    hex_eq(ki, n, "11010000002ff629e21c4b4fbe820000");
    cr_assert_eq(pskgw_rot_e2e_params(SEED, ki, n, &p), 0);
    hex_eq(p.key, 16, "b37e7ceaceb180a7250b4b1de6b84076");
    hex_eq(p.nonce, p.nonce_len, "9742f7c7aaa171f75d560a87b0");
    pskgw_rot_e2e_params_wipe(&p);

    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 47, PSKGW_ROT_E2E_V2, 5, ki, sizeof(ki), &n), 0);
    hex_eq(ki, n, "210000002f000570ba41b4");
    cr_assert_eq(pskgw_rot_e2e_params(SEED, ki, n, &p), 0);
    hex_eq(p.key, 16, "829a7b31e31cffc71692095273e8dcd6");
    hex_eq(p.nonce, p.nonce_len, "13647836f58583629ec9607b");
    pskgw_rot_e2e_params_wipe(&p);

    cr_assert_eq(pskgw_rot_e2e_encrypt(SEED, 47, PSKGW_ROT_E2E_V1, (const uint8_t *)"HELLO", 5, out,
                                       sizeof(out), &n),
                 0);
    hex_eq(out, n,
           "11010000002ff629e21c4b4fbe820000"
           "58181d05f822dcedbce2e2818e3f038c147e333b42");
}

/* ---- per-session identities (pskgw-devsim --identity-per-session) ---- */

/* Pinned with Python's hmac (see tools/rotkeys/README.md): seed "unit-test-seed", device 47,
 * session 0x01020304. */
Test(rotkeys, session_identity_pinned_and_resolved)
{
    char hex[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    uint8_t id[PSKGW_ROT_IDENTITY_LEN], psk[32], want[16];
    size_t n = 0;
    pskgw_rot_id_info_t info;

    cr_assert_eq(pskgw_rot_identity_session_hex(SEED, 47, 0x01020304, hex), 0);
    cr_assert_str_eq(hex, "11010000002F01020304A89E0B81");
    cr_assert_eq(pskgw_rot_identity_resolve_hex(SEED, hex, 28, &info), 0);
    cr_assert_eq(info.device, 47);
    cr_assert_eq(info.session, 0x01020304);
    cr_assert(info.per_session);
    cr_assert_eq(pskgw_rot_identity_psk_hex(SEED, hex, 28, 128, psk, sizeof(psk), &n), 0);
    cr_assert_eq(n, 16);
    cr_assert_eq(pskgw_hex_decode("b0ba7d978f6bf731952248722bbe7bd6", 32, want, sizeof(want), &n),
                 0);
    cr_assert_arr_eq(psk, want, 16);
    /* The fixed identity resolves too, to the same PSK as pskgw_rot_psk. */
    cr_assert_eq(pskgw_rot_identity(SEED, 47, id), 0);
    cr_assert_eq(pskgw_rot_identity_resolve(SEED, id, sizeof(id), &info), 0);
    cr_assert_eq(info.device, 47);
    cr_assert_not(info.per_session);
    cr_assert_eq(pskgw_rot_identity_psk(SEED, id, sizeof(id), 256, psk, sizeof(psk), &n), 0);
    {
        uint8_t k[32];
        size_t kn = 0;
        cr_assert_eq(pskgw_rot_psk(SEED, 47, 256, k, sizeof(k), &kn), 0);
        cr_assert_eq(kn, n);
        cr_assert_arr_eq(k, psk, 32);
    }
}

Test(rotkeys, session_identities_are_all_distinct_with_distinct_psks)
{
    enum { N = 64 };
    uint8_t ids[N][PSKGW_ROT_IDENTITY_LEN], psks[N][16];
    size_t n = 0;

    for (uint32_t s = 0; s < N; s++) {
        cr_assert_eq(pskgw_rot_identity_session(SEED, 3, s, ids[s]), 0);
        cr_assert_eq(
            pskgw_rot_identity_psk(SEED, ids[s], PSKGW_ROT_IDENTITY_LEN, 128, psks[s], 16, &n), 0);
        for (uint32_t t = 0; t < s; t++) {
            cr_assert_neq(memcmp(ids[s], ids[t], PSKGW_ROT_IDENTITY_LEN), 0);
            cr_assert_neq(memcmp(psks[s], psks[t], 16), 0);
        }
    }
}

Test(rotkeys, session_identity_refuses_forgeries)
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN], psk[32];
    size_t n = 0;
    pskgw_rot_id_info_t info;

    cr_assert_eq(pskgw_rot_identity_session(SEED, 9, 77, id), 0);
    cr_assert_eq(pskgw_rot_identity_resolve("other-seed", id, sizeof(id), &info), PSKGW_ENOTFOUND);
    for (size_t i = 0; i < sizeof(id); i++) {
        id[i] ^= 0x01;
        cr_assert_eq(pskgw_rot_identity_resolve(SEED, id, sizeof(id), &info), PSKGW_ENOTFOUND,
                     "byte %zu", i);
        cr_assert_eq(pskgw_rot_identity_psk(SEED, id, sizeof(id), 128, psk, sizeof(psk), &n),
                     PSKGW_ENOTFOUND);
        id[i] ^= 0x01;
    }
    cr_assert_eq(pskgw_rot_identity_resolve_hex(SEED, "11", 2, &info), PSKGW_EPARSE);
    cr_assert_eq(pskgw_rot_identity_psk_hex(SEED, "zz", 2, 128, psk, sizeof(psk), &n),
                 PSKGW_EPARSE);
    cr_assert_eq(pskgw_rot_identity_psk(SEED, id, sizeof(id), 100, psk, sizeof(psk), &n),
                 PSKGW_EINVAL);
}

/* ---- V2 layout candidates ---- */

Test(rotkeys, v2_layouts_overheads)
{
    pskgw_rot_v2_layout_t v2;

    cr_assert_eq(pskgw_rot_e2e_overhead_as(PSKGW_ROT_E2E_V2, PSKGW_ROT_V2_SEED), 19);
    cr_assert_eq(pskgw_rot_e2e_overhead_as(PSKGW_ROT_E2E_V2, PSKGW_ROT_V2_PAD1), 28);
    cr_assert_eq(pskgw_rot_e2e_overhead_as(PSKGW_ROT_E2E_V1, PSKGW_ROT_V2_PAD1), 32);
    cr_assert_eq(pskgw_rot_e2e_overhead_as(PSKGW_ROT_E2E_V2, PSKGW_ROT_V2_COUNT_), 0);
    cr_assert_eq(pskgw_rot_e2e_extra_len_as(PSKGW_ROT_E2E_V1, PSKGW_ROT_V2_PAD1), 0);
    cr_assert_eq(pskgw_rot_e2e_extra_len_as(PSKGW_ROT_E2E_V2, PSKGW_ROT_V2_PAD1), 1);
    for (int i = 0; i < PSKGW_ROT_V2_COUNT_; i++) {
        cr_assert_eq(
            pskgw_rot_v2_layout_parse(pskgw_rot_v2_layout_name((pskgw_rot_v2_layout_t)i), &v2), 0);
        cr_assert_eq((int)v2, i);
    }
    cr_assert_eq(pskgw_rot_v2_layout_parse("seed", &v2), 0);
    cr_assert_eq(v2, PSKGW_ROT_V2_SEED);
    cr_assert_eq(pskgw_rot_v2_layout_parse("pad1", &v2), 0);
    cr_assert_eq(v2, PSKGW_ROT_V2_PAD1);
    cr_assert_eq(pskgw_rot_v2_layout_parse("pad2", &v2), PSKGW_EINVAL);
}

/* "HELLO" from device 47, counter 0, V2 pad1: pinned with Python's hmac and cryptography's
 * AESCCM (tag 16): KI (11) | 00 | ciphertext (5) | tag (16) = 33 bytes = 5 + 28. */
Test(rotkeys, v2_pad1_hello_pinned)
{
    uint8_t out[64], want[33];
    size_t n = 0;
    pskgw_rot_e2e_params_t p;

    cr_assert_eq(pskgw_rot_e2e_encrypt_as(SEED, 47, PSKGW_ROT_E2E_V2, 0, PSKGW_ROT_V2_PAD1,
                                          (const uint8_t *)"HELLO", 5, out, sizeof(out), &n),
                 0);
    cr_assert_eq(n, 33);
    cr_assert_eq(pskgw_hex_decode("210000002f00007b6ac420004c38882c10141cb7dbbf2b0735aa88feaa0cc674"
                                  "02",
                                  66, want, sizeof(want), &n),
                 0);
    cr_assert_arr_eq(out, want, 33);
    cr_assert_eq(pskgw_rot_e2e_params_as(SEED, out, 11, PSKGW_ROT_V2_PAD1, &p), 0);
    cr_assert_eq(p.mac_bits, 128);
    cr_assert_str_eq(p.cipher_suite, "AES_128_CCM");
    cr_assert_eq(p.nonce_len, 12);
    pskgw_rot_e2e_params_wipe(&p);
    cr_assert_eq(pskgw_rot_e2e_params_as(SEED, out, 11, PSKGW_ROT_V2_SEED, &p), 0);
    cr_assert_eq(p.mac_bits, 64);
    pskgw_rot_e2e_params_wipe(&p);
    cr_assert_eq(pskgw_rot_e2e_encrypt_as(SEED, 47, PSKGW_ROT_E2E_V2, 0, PSKGW_ROT_V2_PAD1,
                                          (const uint8_t *)"HELLO", 5, out, 32, &n),
                 PSKGW_ETOOBIG);
    cr_assert_eq(pskgw_rot_e2e_encrypt_as(SEED, 47, PSKGW_ROT_E2E_V2, 0, PSKGW_ROT_V2_COUNT_,
                                          (const uint8_t *)"HELLO", 5, out, sizeof(out), &n),
                 PSKGW_EINVAL);
}
