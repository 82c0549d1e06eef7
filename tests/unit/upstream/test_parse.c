/* Parsing of the security service's responses (spec sections 1-3): liberal about fields the
 * service adds and about number forms, strict about every field pskgw uses (issue 10 §1). */
#include "common/err.h"
#include "common/wipe.h"
#include "upstream/parse.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) lit, strlen(lit)

static const uint8_t seed_psk[16] = { 0xE5, 0xDE, 0x45, 0xB3, 0x67, 0xDB, 0x69, 0x0F,
                                      0x2E, 0x17, 0xCF, 0x9D, 0x80, 0xA1, 0x8E, 0x87 };

/* ---- GetPSK ---- */

Test(parse_psk, seed_example)
{
    pskgw_upstream_psk_t r;
    char why[160] = "";

    cr_assert_eq(
        pskgw_upstream_parse_psk(S("{\"Key\": \"5d5Fs2fbaQ8uF8+dgKGOhw==\", \"ROTPublicUID\": "
                                   "\"0002000089282245\"}"),
                                 128, &r, why, sizeof(why)),
        0, "%s", why);
    cr_assert_eq(r.key_len, 16);
    cr_assert(memcmp(r.key, seed_psk, 16) == 0);
    cr_assert_str_eq(r.rot_uid, "0002000089282245");
}

Test(parse_psk, key_order_does_not_matter_and_256_bits)
{
    pskgw_upstream_psk_t r;
    const char *body = "{\"ROTPublicUID\":\"X1\",\"Key\":"
                       "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}";

    cr_assert_eq(pskgw_upstream_parse_psk(body, strlen(body), 256, &r, NULL, 0), 0);
    cr_assert_eq(r.key_len, 32);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(r.key[i], i);
    cr_assert_str_eq(r.rot_uid, "X1");
}

static void expect_psk_fail(const char *body, unsigned bits, int want, const char *why_part)
{
    pskgw_upstream_psk_t r;
    char why[160] = "";

    memset(&r, 0xAA, sizeof(r));
    cr_assert_eq(pskgw_upstream_parse_psk(body, strlen(body), bits, &r, why, sizeof(why)), want,
                 "body %s", body);
    cr_assert(strstr(why, why_part) != NULL, "why '%s' lacks '%s'", why, why_part);
    cr_assert_eq(r.key_len, (size_t)0xAAAAAAAAAAAAAAAAull, "output written on failure");
}

Test(parse_psk, missing_fields)
{
    expect_psk_fail("{\"ROTPublicUID\":\"1\"}", 128, PSKGW_EPARSE, "Key");
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\"}", 128, PSKGW_EPARSE, "ROTPublicUID");
    expect_psk_fail("{}", 128, PSKGW_EPARSE, "Key: missing");
}

Test(parse_psk, wrong_types)
{
    expect_psk_fail("{\"Key\":5,\"ROTPublicUID\":\"1\"}", 128, PSKGW_EPARSE, "psk response");
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":12}", 128, PSKGW_EPARSE,
                    "psk response");
    expect_psk_fail("{\"Key\":null,\"ROTPublicUID\":\"1\"}", 128, PSKGW_EPARSE,
                    "Key: missing (null)");
    expect_psk_fail("{\"Key\":[\"5d5Fs2fbaQ8uF8+dgKGOhw==\"],\"ROTPublicUID\":\"1\"}", 128,
                    PSKGW_EPARSE, "Key: expected a string, got an array");
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":{\"u\":1}}", 128,
                    PSKGW_EPARSE, "ROTPublicUID: expected a string, got an object");
    expect_psk_fail("[\"Key\"]", 128, PSKGW_EPARSE, "not a json object");
    expect_psk_fail("\"Key\"", 128, PSKGW_EPARSE, "not");
}

static void expect_psk_ok(const char *body, unsigned bits, const char *note_part)
{
    pskgw_upstream_psk_t r;
    char why[256] = "stale";

    memset(&r, 0, sizeof(r));
    cr_assert_eq(pskgw_upstream_parse_psk(body, strlen(body), bits, &r, why, sizeof(why)), 0,
                 "body %s: %s", body, why);
    cr_assert_eq(r.key_len, bits / 8);
    cr_assert_str_eq(r.rot_uid, "0002000089282245");
    if (note_part)
        cr_assert(strstr(why, note_part) != NULL, "note '%s' lacks '%s'", why, note_part);
    else
        cr_assert_str_eq(why, "", "a note without unknown fields");
}

/* The service added "Extra": 1 (verified): every handshake of every device failed. */
Test(parse_psk, extra_fields_at_every_level_are_ignored)
{
    expect_psk_ok("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":\"0002000089282245\","
                  "\"Extra\":1}",
                  128, "psk response: ignored 1 unknown field (first \"Extra\")");
    /* before, between and after the known fields; nested objects and arrays; null */
    expect_psk_ok("{\"A\":{\"Key\":5,\"b\":[1,{\"c\":null}]},\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\","
                  "\"B\":[],\"ROTPublicUID\":\"0002000089282245\",\"C\":null,\"D\":true}",
                  128, "ignored 4 unknown fields (first \"A\")");
    /* a long or unprintable name is bounded and cleaned in the note */
    expect_psk_ok("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":\"0002000089282245\","
                  "\"x\\n\\\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\":1}",
                  128, "(first \"x??yyyyyyyyyyyyyyyyyyyyyyyyyyyyy...\")");
    /* field names are case-sensitive: "key" is unknown, and "Key" is still required */
    expect_psk_fail("{\"key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":\"1\"}", 128,
                    PSKGW_EPARSE, "Key: missing");
}

Test(parse_psk, reordered_fields_and_no_note_without_unknown_fields)
{
    expect_psk_ok("{\"ROTPublicUID\":\"0002000089282245\",\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\"}",
                  128, NULL);
}

Test(parse_psk, key_length_as_string_number_or_null)
{
    const char *k256 = "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"";
    char body[256];

    expect_psk_ok("{\"KeyLength\":\"128\",\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\","
                  "\"ROTPublicUID\":\"0002000089282245\"}",
                  128, NULL);
    expect_psk_ok("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"KeyLength\":128,"
                  "\"ROTPublicUID\":\"0002000089282245\"}",
                  128, NULL);
    expect_psk_ok("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"KeyLength\":null,"
                  "\"ROTPublicUID\":\"0002000089282245\"}",
                  128, NULL);
    snprintf(body, sizeof(body),
             "{\"Key\":%s,\"KeyLength\":\"256\",\"ROTPublicUID\":\"0002000089282245\"}", k256);
    expect_psk_ok(body, 256, NULL);
    snprintf(body, sizeof(body),
             "{\"Key\":%s,\"KeyLength\":256,\"ROTPublicUID\":\"0002000089282245\"}", k256);
    expect_psk_ok(body, 256, NULL);
}

Test(parse_psk, malformed_key_length_refused)
{
    static const char *const bad[] = { "\"0128\"", "\" 128\"", "\"128 \"", "\"+128\"",
                                       "\"-128\"", "\"\"",     "\"12a8\"", "128.0",
                                       "true",     "[128]",    "{}",       "\"1280000000\"" };
    char body[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"KeyLength\":%s,\"ROTPublicUID\":\"1\"}",
                 bad[i]);
        expect_psk_fail(body, 128, PSKGW_EPARSE, "KeyLength: expected a whole number");
    }
    /* a KeyLength that disagrees with the key */
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"KeyLength\":\"256\","
                    "\"ROTPublicUID\":\"1\"}",
                    128, PSKGW_EPARSE, "KeyLength: 256 does not match the 128-bit key");
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"KeyLength\":0,\"ROTPublicUID\":\"1\"}",
                    128, PSKGW_EPARSE, "KeyLength: 0 does not match");
}

Test(parse_psk, duplicate_keys_rejected)
{
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\","
                    "\"ROTPublicUID\":\"1\"}",
                    128, PSKGW_EPARSE, "not valid json");
}

Test(parse_psk, bad_base64)
{
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw=\",\"ROTPublicUID\":\"1\"}", 128,
                    PSKGW_EPARSE, "base64");
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOh!==\",\"ROTPublicUID\":\"1\"}", 128,
                    PSKGW_EPARSE, "base64");
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8-dgKGOhw==\",\"ROTPublicUID\":\"1\"}", 128,
                    PSKGW_EPARSE, "base64");
}

Test(parse_psk, wrong_lengths)
{
    /* 15 bytes */
    expect_psk_fail("{\"Key\":\"AAECAwQFBgcICQoLDA0O\",\"ROTPublicUID\":\"1\"}", 128, PSKGW_EPARSE,
                    "wrong length 15");
    /* 16 bytes but 256 bits asked, and the reverse: the reason names the likely cause */
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":\"1\"}", 256,
                    PSKGW_EPARSE,
                    "Key: 16 bytes (128 bits) where psk_key_bits asks for 256: the device likely "
                    "uses the other PSK length (set psk_key_bits = 128 for it)");
    expect_psk_fail("{\"Key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\",\"ROTPublicUID\":"
                    "\"1\"}",
                    128, PSKGW_EPARSE,
                    "Key: 32 bytes (256 bits) where psk_key_bits asks for 128: the device likely "
                    "uses the other PSK length (set psk_key_bits = 256 for it)");
    /* 24 bytes */
    expect_psk_fail("{\"Key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\",\"ROTPublicUID\":\"1\"}", 128,
                    PSKGW_EPARSE, "wrong length 24");
    /* empty */
    expect_psk_fail("{\"Key\":\"\",\"ROTPublicUID\":\"1\"}", 128, PSKGW_EPARSE, "wrong length 0");
    /* 96 bytes: longer than any buffer */
    {
        char body[400];
        char key[200];
        memset(key, 'A', 128);
        key[128] = '\0';
        snprintf(body, sizeof(body), "{\"Key\":\"%s\",\"ROTPublicUID\":\"1\"}", key);
        expect_psk_fail(body, 128, PSKGW_EPARSE, "too long");
    }
}

Test(parse_psk, bad_uid)
{
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":\"\"}", 128,
                    PSKGW_EPARSE, "ROTPublicUID");
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":\"a\\nb\"}", 128,
                    PSKGW_EPARSE, "ROTPublicUID");
    expect_psk_fail("{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":"
                    "\"00000000000000000000000000000000000000000000000000000000000000001\"}",
                    128, PSKGW_EPARSE, "ROTPublicUID");
}

Test(parse_psk, not_json_and_empty)
{
    expect_psk_fail("", 128, PSKGW_EPARSE, "not valid json");
    expect_psk_fail("{\"Key\":", 128, PSKGW_EPARSE, "not valid json");
    expect_psk_fail("<html>502</html>", 128, PSKGW_EPARSE, "not valid json");
}

Test(parse_psk, huge_body)
{
    size_t n = PSKGW_UPSTREAM_MAX_BODY + 1;
    char *body = malloc(n);
    pskgw_upstream_psk_t r;
    char why[160] = "";

    cr_assert(body);
    memset(body, ' ', n);
    cr_assert_eq(pskgw_upstream_parse_psk(body, n, 128, &r, why, sizeof(why)), PSKGW_ETOOBIG);
    cr_assert(strstr(why, "bound"));
    free(body);
}

Test(parse_psk, body_at_the_bound_is_parsed)
{
    const char *obj = "{\"Key\":\"5d5Fs2fbaQ8uF8+dgKGOhw==\",\"ROTPublicUID\":\"1\"}";
    size_t n = PSKGW_UPSTREAM_MAX_BODY;
    char *body = malloc(n);
    pskgw_upstream_psk_t r;

    cr_assert(body);
    memset(body, ' ', n);
    memcpy(body, obj, strlen(obj));
    cr_assert_eq(pskgw_upstream_parse_psk(body, n, 128, &r, NULL, 0), 0);
    free(body);
}

Test(parse_psk, bad_arguments)
{
    pskgw_upstream_psk_t r;

    cr_assert_eq(pskgw_upstream_parse_psk(S("{}"), 192, &r, NULL, 0), PSKGW_EINVAL);
    cr_assert_eq(pskgw_upstream_parse_psk(S("{}"), 128, NULL, NULL, 0), PSKGW_EINVAL);
}

Test(parse_psk, why_never_quotes_the_key)
{
    pskgw_upstream_psk_t r;
    char why[160] = "";

    /* 15-byte key: the message must not contain its base64. */
    cr_assert_eq(
        pskgw_upstream_parse_psk(S("{\"Key\":\"AAECAwQFBgcICQoLDA0O\",\"ROTPublicUID\":\"1\"}"),
                                 128, &r, why, sizeof(why)),
        PSKGW_EPARSE);
    cr_assert_null(strstr(why, "AAECAwQF"));
    /* syntax error right inside the key value */
    cr_assert_eq(
        pskgw_upstream_parse_psk(S("{\"Key\":\"SECRETSECRET\x01\"}"), 128, &r, why, sizeof(why)),
        PSKGW_EPARSE);
    cr_assert_null(strstr(why, "SECRET"), "%s", why);
}

/* ---- GetE2EDecryptionParameters ---- */

static const char *e2e_ok = "{\"Key\":\"AAECAwQFBgcICQoLDA0ODw==\",\"Nonce\":\"EBESExQVFhcYGRob\","
                            "\"MACLength\":128,\"CipherSuite\":\"AES_128_CCM\","
                            "\"ROTPublicUID\":\"0002000089282245\"}";

Test(parse_e2e, valid_v1)
{
    pskgw_upstream_e2e_t r;
    char why[160] = "";

    cr_assert_eq(pskgw_upstream_parse_e2e(e2e_ok, strlen(e2e_ok), &r, why, sizeof(why)), 0, "%s",
                 why);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(r.key[i], i);
    cr_assert_eq(r.nonce_len, 12);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(r.nonce[i], 16 + i);
    cr_assert_eq(r.mac_bits, 128);
    cr_assert_str_eq(r.cipher_suite, "AES_128_CCM");
    cr_assert_str_eq(r.rot_uid, "0002000089282245");
}

Test(parse_e2e, valid_v2_ccm8_nonce_bounds)
{
    pskgw_upstream_e2e_t r;
    const char *b7 = "{\"Key\":\"AAECAwQFBgcICQoLDA0ODw==\",\"Nonce\":\"AAECAwQFBg==\","
                     "\"MACLength\":64,\"CipherSuite\":\"AES_128_CCM_8\",\"ROTPublicUID\":\"u\"}";
    const char *b13 = "{\"Key\":\"AAECAwQFBgcICQoLDA0ODw==\",\"Nonce\":\"AAECAwQFBgcICQoLDA==\","
                      "\"MACLength\":64,\"CipherSuite\":\"AES_128_CCM_8\",\"ROTPublicUID\":\"u\"}";

    cr_assert_eq(pskgw_upstream_parse_e2e(b7, strlen(b7), &r, NULL, 0), 0);
    cr_assert_eq(r.nonce_len, 7);
    cr_assert_eq(r.mac_bits, 64);
    cr_assert_str_eq(r.cipher_suite, "AES_128_CCM_8");
    cr_assert_eq(pskgw_upstream_parse_e2e(b13, strlen(b13), &r, NULL, 0), 0);
    cr_assert_eq(r.nonce_len, 13);
}

static void expect_e2e_fail(const char *body, const char *why_part)
{
    pskgw_upstream_e2e_t r;
    char why[200] = "";

    memset(&r, 0x55, sizeof(r));
    cr_assert_eq(pskgw_upstream_parse_e2e(body, strlen(body), &r, why, sizeof(why)), PSKGW_EPARSE,
                 "body %s", body);
    cr_assert(strstr(why, why_part) != NULL, "why '%s' lacks '%s'", why, why_part);
    cr_assert_eq(r.mac_bits, 0x55555555u, "output written on failure");
}

#define E2E(key, nonce, mac, suite, uid)                                                \
    "{\"Key\":" key ",\"Nonce\":" nonce ",\"MACLength\":" mac ",\"CipherSuite\":" suite \
    ",\"ROTPublicUID\":" uid "}"
#define K16 "\"AAECAwQFBgcICQoLDA0ODw==\""
#define N12 "\"EBESExQVFhcYGRob\""

Test(parse_e2e, missing_and_mistyped)
{
    expect_e2e_fail("{\"Key\":" K16 ",\"Nonce\":" N12 ",\"MACLength\":128,\"ROTPublicUID\":\"u\"}",
                    "CipherSuite");
    expect_e2e_fail(
        E2E(K16, N12, "128.0", "\"AES_128_CCM\"", "\"u\""),
        "MACLength: expected a whole number (or its decimal string), got a real number");
    expect_e2e_fail(E2E(K16, "7", "128", "\"AES_128_CCM\"", "\"u\""),
                    "Nonce: expected a string, got an integer");
    expect_e2e_fail(E2E(K16, N12, "true", "\"AES_128_CCM\"", "\"u\""),
                    "MACLength: expected a whole number (or its decimal string), got a boolean");
    expect_e2e_fail(E2E(K16, N12, "null", "\"AES_128_CCM\"", "\"u\""), "MACLength: missing (null)");
    expect_e2e_fail(E2E(K16, N12, "\"0x80\"", "\"AES_128_CCM\"", "\"u\""), "MACLength: expected");
    expect_e2e_fail(E2E(K16, N12, "\"128.0\"", "\"AES_128_CCM\"", "\"u\""), "MACLength: expected");
    expect_e2e_fail(E2E(K16, N12, "\"96\"", "\"AES_128_CCM\"", "\"u\""),
                    "MACLength: 96 is not 64 or 128");
    expect_e2e_fail(E2E(K16, N12, "\"64\"", "\"AES_128_CCM\"", "\"u\""), "CipherSuite");
    expect_e2e_fail(E2E("null", N12, "128", "\"AES_128_CCM\"", "\"u\""), "Key: missing (null)");
    expect_e2e_fail(E2E(K16, N12, "128", "\"AES_128_CCM\"", "null"),
                    "ROTPublicUID: missing (null)");
}

Test(parse_e2e, mac_length_as_string_or_number_and_extra_fields_ignored)
{
    pskgw_upstream_e2e_t r;
    char why[256] = "stale";
    const char *s128 = E2E(K16, N12, "\"128\"", "\"AES_128_CCM\"", "\"u\"");
    const char *s64 =
        "{\"Extra\":{\"Nested\":[{\"Key\":1}]},\"ROTPublicUID\":\"u\",\"CipherSuite\":"
        "\"AES_128_CCM_8\",\"MACLength\":\"64\",\"Nonce\":" N12 ",\"Key\":" K16 ",\"Version\":2}";

    cr_assert_eq(pskgw_upstream_parse_e2e(s128, strlen(s128), &r, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(r.mac_bits, 128);
    cr_assert_str_eq(why, "");
    cr_assert_eq(pskgw_upstream_parse_e2e(s64, strlen(s64), &r, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(r.mac_bits, 64);
    cr_assert_str_eq(r.cipher_suite, "AES_128_CCM_8");
    cr_assert_eq(r.nonce_len, 12);
    cr_assert_str_eq(why, "e2e parameters response: ignored 2 unknown fields (first \"Extra\")");
}

Test(parse_e2e, lengths_and_values)
{
    /* key 15 and 32 bytes */
    expect_e2e_fail(E2E("\"AAECAwQFBgcICQoLDA0O\"", N12, "128", "\"AES_128_CCM\"", "\"u\""),
                    "Key: wrong length 15");
    expect_e2e_fail(E2E("\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"", N12, "128",
                        "\"AES_128_CCM\"", "\"u\""),
                    "Key: wrong length 32");
    /* nonce 6 and 14 bytes */
    expect_e2e_fail(E2E(K16, "\"AAECAwQF\"", "128", "\"AES_128_CCM\"", "\"u\""),
                    "Nonce: wrong length 6");
    expect_e2e_fail(E2E(K16, "\"AAECAwQFBgcICQoLDA0=\"", "128", "\"AES_128_CCM\"", "\"u\""),
                    "Nonce: wrong length 14");
    expect_e2e_fail(E2E(K16, "\"AAECAwQFBg=\"", "128", "\"AES_128_CCM\"", "\"u\""),
                    "Nonce: not valid base64");
    /* MAC length */
    expect_e2e_fail(E2E(K16, N12, "96", "\"AES_128_CCM\"", "\"u\""), "MACLength");
    expect_e2e_fail(E2E(K16, N12, "4294967424", "\"AES_128_CCM\"", "\"u\""), "MACLength");
    expect_e2e_fail(E2E(K16, N12, "-128", "\"AES_128_CCM\"", "\"u\""), "MACLength");
    /* suite inconsistent with MAC length, unknown suite */
    expect_e2e_fail(E2E(K16, N12, "64", "\"AES_128_CCM\"", "\"u\""), "CipherSuite");
    expect_e2e_fail(E2E(K16, N12, "128", "\"AES_128_CCM_8\"", "\"u\""), "CipherSuite");
    expect_e2e_fail(E2E(K16, N12, "128", "\"AES_128_GCM\"", "\"u\""), "CipherSuite");
    expect_e2e_fail(E2E(K16, N12, "128", "\"AES_128_CCM_8_AND_MORE_AND_MORE_AND_MORE\"", "\"u\""),
                    "CipherSuite");
    /* uid */
    expect_e2e_fail(E2E(K16, N12, "128", "\"AES_128_CCM\"", "\"\""), "ROTPublicUID");
}

Test(parse_e2e, huge_body)
{
    size_t n = 1 << 20;
    char *body = calloc(1, n);
    pskgw_upstream_e2e_t r;

    cr_assert(body);
    cr_assert_eq(pskgw_upstream_parse_e2e(body, n, &r, NULL, 0), PSKGW_ETOOBIG);
    free(body);
}

/* ---- authenticate ---- */

Test(parse_auth, valid_with_and_without_refresh)
{
    char *tok = NULL;

    cr_assert_eq(pskgw_upstream_parse_auth(S("{\"AuthToken\":\"a.b.c\",\"RefreshToken\":\"r\"}"),
                                           &tok, NULL, 0),
                 0);
    cr_assert_str_eq(tok, "a.b.c");
    pskgw_free_secret_str(tok);
    tok = NULL;
    cr_assert_eq(pskgw_upstream_parse_auth(S("{\"AuthToken\":\"xyz\"}"), &tok, NULL, 0), 0);
    cr_assert_str_eq(tok, "xyz");
    pskgw_free_secret_str(tok);
}

Test(parse_auth, rejects)
{
    char *tok = NULL;
    char why[160];

    cr_assert_eq(pskgw_upstream_parse_auth(S("{\"RefreshToken\":\"r\"}"), &tok, why, sizeof(why)),
                 PSKGW_EPARSE);
    cr_assert(strstr(why, "AuthToken"), "%s", why);
    cr_assert_eq(pskgw_upstream_parse_auth(S("{\"AuthToken\":1}"), &tok, why, sizeof(why)),
                 PSKGW_EPARSE);
    cr_assert_eq(pskgw_upstream_parse_auth(S("{\"AuthToken\":\"\"}"), &tok, why, sizeof(why)),
                 PSKGW_EPARSE);
    /* header injection */
    cr_assert_eq(pskgw_upstream_parse_auth(S("{\"AuthToken\":\"a\\r\\nX-Evil: 1\"}"), &tok, why,
                                           sizeof(why)),
                 PSKGW_EPARSE);
    cr_assert_eq(pskgw_upstream_parse_auth(S("{\"AuthToken\":\"a b\"}"), &tok, why, sizeof(why)),
                 PSKGW_EPARSE);
    cr_assert_eq(pskgw_upstream_parse_auth(S("{\"AuthToken\":\"a\",\"RefreshToken\":5}"), &tok, why,
                                           sizeof(why)),
                 PSKGW_EPARSE);
    cr_assert(strstr(why, "RefreshToken: expected a string, got an integer"), "%s", why);
    cr_assert_eq(pskgw_upstream_parse_auth(S("{\"AuthToken\":null}"), &tok, why, sizeof(why)),
                 PSKGW_EPARSE);
    cr_assert(strstr(why, "AuthToken: missing (null)"), "%s", why);
    cr_assert_eq(pskgw_upstream_parse_auth(S("[{\"AuthToken\":\"a\"}]"), &tok, why, sizeof(why)),
                 PSKGW_EPARSE);
    cr_assert_null(tok);
}

Test(parse_auth, null_refresh_token_and_extra_fields)
{
    char *tok = NULL;
    char why[256] = "stale";

    cr_assert_eq(pskgw_upstream_parse_auth(S("{\"RefreshToken\":null,\"AuthToken\":\"a.b.c\"}"),
                                           &tok, why, sizeof(why)),
                 0, "%s", why);
    cr_assert_str_eq(tok, "a.b.c");
    cr_assert_str_eq(why, "");
    pskgw_free_secret_str(tok);
    tok = NULL;
    cr_assert_eq(
        pskgw_upstream_parse_auth(S("{\"AuthToken\":\"a\",\"Other\":\"b\",\"ExpiresIn\":3600,"
                                    "\"Scopes\":[\"psk\",{\"e2e\":true}]}"),
                                  &tok, why, sizeof(why)),
        0, "%s", why);
    cr_assert_str_eq(tok, "a");
    cr_assert_str_eq(why, "authenticate response: ignored 3 unknown fields (first \"Other\")");
    pskgw_free_secret_str(tok);
}

Test(parse_auth, token_too_long)
{
    size_t n = PSKGW_UPSTREAM_MAX_TOKEN + 1;
    char *body = malloc(n + 32);
    char *tok = NULL;
    size_t o = 0;

    cr_assert(body);
    memcpy(body, "{\"AuthToken\":\"", 14);
    o = 14;
    memset(body + o, 'a', n);
    o += n;
    memcpy(body + o, "\"}", 2);
    o += 2;
    cr_assert_eq(pskgw_upstream_parse_auth(body, o, &tok, NULL, 0), PSKGW_EPARSE);
    cr_assert_null(tok);
    free(body);
}
