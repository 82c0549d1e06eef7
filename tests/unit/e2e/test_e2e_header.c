/* E2E header parsing (pure) and the parameters codec. */
#include "e2e/header.h"
#include "e2e/params.h"
#include "util.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

Test(e2e_header, layout_table)
{
    const pskgw_e2e_layout_t *v1 = pskgw_e2e_layout(1);
    const pskgw_e2e_layout_t *v2 = pskgw_e2e_layout(2);

    cr_assert_not_null(v1);
    cr_assert_not_null(v2);
    cr_assert_eq(v1->ki_len, 16);
    cr_assert_eq(v2->ki_len, 11);
    cr_assert_eq(v1->extra_len, 0);
    cr_assert_eq(v2->extra_len, 0);
    cr_assert_eq(v1->default_tag_len, 16);
    for (int v = -1; v <= 16; v++) {
        if (v != 1 && v != 2)
            cr_assert_null(pskgw_e2e_layout(v), "version %d", v);
    }
    /* Version 2 candidates: the default is the seed's; pad1 accounts for 28 bytes with a
     * 16-byte tag. Version 1 is the same whatever the V2 candidate. */
    cr_assert_eq(pskgw_e2e_layout_as(2, PSKGW_E2E_V2_SEED), v2);
    cr_assert_str_eq(v2->name, "seed");
    for (int c = 0; c < PSKGW_E2E_V2_COUNT_; c++) {
        const pskgw_e2e_layout_t *l = pskgw_e2e_layout_as(2, (pskgw_e2e_v2_layout_t)c);
        pskgw_e2e_v2_layout_t back;
        cr_assert_not_null(l);
        cr_assert_eq(l->version, 2);
        cr_assert_eq(l->ki_len, 11, "every candidate has the documented 11-byte KI");
        cr_assert_eq(pskgw_e2e_layout_as(1, (pskgw_e2e_v2_layout_t)c), v1);
        cr_assert_str_eq(pskgw_e2e_v2_layout_name((pskgw_e2e_v2_layout_t)c), l->name);
        cr_assert_eq(pskgw_e2e_v2_layout_parse(l->name, &back), 0);
        cr_assert_eq((int)back, c);
    }
    {
        const pskgw_e2e_layout_t *pad = pskgw_e2e_layout_as(2, PSKGW_E2E_V2_PAD1);
        cr_assert_str_eq(pad->name, "pad1");
        cr_assert_eq(pad->ki_len + pad->extra_len + pad->default_tag_len, 28);
        cr_assert_eq(v2->ki_len + v2->extra_len + v2->default_tag_len, 27);
    }
    cr_assert_null(pskgw_e2e_layout_as(2, PSKGW_E2E_V2_COUNT_));
    cr_assert_null(pskgw_e2e_layout_as(3, PSKGW_E2E_V2_SEED));
    {
        pskgw_e2e_v2_layout_t back = PSKGW_E2E_V2_SEED;
        cr_assert_eq(pskgw_e2e_v2_layout_parse("PAD1", &back), PSKGW_EINVAL);
        cr_assert_eq(pskgw_e2e_v2_layout_parse(NULL, &back), PSKGW_EINVAL);
        cr_assert_str_eq(pskgw_e2e_v2_layout_name(PSKGW_E2E_V2_COUNT_), "unknown");
    }
}

/* pad1: KI (11) | 1 byte | ciphertext | tag. The byte is skipped; a V1 payload is untouched. */
Test(e2e_header, v2_pad1_offsets)
{
    uint8_t p[64];
    pskgw_e2e_header_t h;
    size_t ct_off, ct_len, tag_off;

    memset(p, 0x33, sizeof(p));
    cr_assert_eq(th_unhex("21000000070000abcdef01", p, 11), 11);
    /* "HELLO" with a 16-byte tag: 11 + 1 + 5 + 16 = 33 bytes. */
    cr_assert_eq(pskgw_e2e_header_parse_as(p, 33, PSKGW_E2E_V2_PAD1, &h), 0);
    cr_assert_eq(h.version, 2);
    cr_assert_str_eq(h.ki_hex, "21000000070000abcdef01");
    cr_assert_eq(h.extra_off, 11);
    cr_assert_eq(h.extra_len, 1);
    cr_assert_eq(h.body_off, 12);
    cr_assert_eq(h.body_len, 21);
    cr_assert_eq(pskgw_e2e_header_split(&h, 128, &ct_off, &ct_len, &tag_off), 0);
    cr_assert_eq(ct_off, 12);
    cr_assert_eq(ct_len, 5);
    cr_assert_eq(tag_off, 17);
    /* Shortest: 11 + 1 + 8. */
    cr_assert_eq(pskgw_e2e_header_parse_as(p, 19, PSKGW_E2E_V2_PAD1, &h), PSKGW_EPARSE);
    cr_assert_eq(pskgw_e2e_header_parse_as(p, 20, PSKGW_E2E_V2_PAD1, &h), 0);
    cr_assert_eq(pskgw_e2e_header_parse_as(p, 19, PSKGW_E2E_V2_SEED, &h), 0);
    cr_assert_eq(h.body_off, 11);
    /* V1 reads the same under every candidate. */
    cr_assert_eq(th_unhex("1101000089291e26ec1aeb0074450000", p, 16), 16);
    cr_assert_eq(pskgw_e2e_header_parse_as(p, 37, PSKGW_E2E_V2_PAD1, &h), 0);
    cr_assert_eq(h.body_off, 16);
    cr_assert_eq(h.extra_len, 0);
    cr_assert_eq(pskgw_e2e_header_parse_as(p, 37, PSKGW_E2E_V2_COUNT_, &h), PSKGW_EINVAL);
}

/* The seed's example: "HELLO" (5 bytes) became 37 bytes with KI 1101000089291e26ec1aeb0074450000
 * and AES_128_CCM (16-byte tag). The ciphertext and tag are not public: only the shape is. */
Test(e2e_header, seed_hello_shape)
{
    uint8_t p[37];
    pskgw_e2e_header_t h;
    size_t ct_off, ct_len, tag_off;

    memset(p, 0x5a, sizeof(p));
    cr_assert_eq(th_unhex("1101000089291e26ec1aeb0074450000", p, 16), 16);
    cr_assert_eq(pskgw_e2e_header_parse(p, sizeof(p), &h), 0);
    cr_assert_eq(h.version, 1);
    cr_assert_eq(h.ki_len, 16);
    cr_assert_arr_eq(h.ki, p, 16);
    cr_assert_str_eq(h.ki_hex, "1101000089291e26ec1aeb0074450000");
    cr_assert_eq(h.body_off, 16);
    cr_assert_eq(h.body_len, 21);
    cr_assert_eq(pskgw_e2e_header_split(&h, 128, &ct_off, &ct_len, &tag_off), 0);
    cr_assert_eq(ct_off, 16);
    cr_assert_eq(ct_len, 5); /* "HELLO" */
    cr_assert_eq(tag_off, 21);
    cr_assert_eq(tag_off + 16, sizeof(p));
}

/* ubxlib README: "The quick brown fox jumps over the lazy dog." (44 bytes) gave 76 bytes starting
 * with KI 11010008003f97203b08c787d1b20000 and ending with tag 75d5ae4830aad00da6cfd589c6795691. */
Test(e2e_header, ubxlib_example_76_bytes)
{
    uint8_t p[76];
    uint8_t tag[16];
    pskgw_e2e_header_t h;
    size_t ct_off, ct_len, tag_off;

    for (size_t i = 0; i < sizeof(p); i++)
        p[i] = (uint8_t)(i * 37 + 11);
    th_unhex("11010008003f97203b08c787d1b20000", p, 16);
    th_unhex("75d5ae4830aad00da6cfd589c6795691", p + 60, 16);
    th_unhex("75d5ae4830aad00da6cfd589c6795691", tag, 16);

    cr_assert_eq(pskgw_e2e_header_parse(p, sizeof(p), &h), 0);
    cr_assert_eq(h.version, 1);
    cr_assert_str_eq(h.ki_hex, "11010008003f97203b08c787d1b20000");
    cr_assert_eq(pskgw_e2e_header_split(&h, 128, &ct_off, &ct_len, &tag_off), 0);
    cr_assert_eq(ct_off, 16);
    cr_assert_eq(ct_len, 44);
    cr_assert_eq(tag_off, 60);
    cr_assert_arr_eq(p + tag_off, tag, 16);
    /* The same bytes read as CCM_8 would leave a 52-byte ciphertext: MACLength decides. */
    cr_assert_eq(pskgw_e2e_header_split(&h, 64, &ct_off, &ct_len, &tag_off), 0);
    cr_assert_eq(ct_len, 52);
    cr_assert_eq(tag_off, 68);
    cr_assert_eq(pskgw_e2e_header_split(&h, 96, &ct_off, &ct_len, &tag_off), PSKGW_EINVAL);
}

Test(e2e_header, version2)
{
    uint8_t p[40];
    pskgw_e2e_header_t h;
    size_t ct_off, ct_len, tag_off;

    memset(p, 0, sizeof(p));
    th_unhex("2100000007000012345678", p, 11);
    cr_assert_eq(pskgw_e2e_header_parse(p, sizeof(p), &h), 0);
    cr_assert_eq(h.version, 2);
    cr_assert_eq(h.ki_len, 11);
    cr_assert_str_eq(h.ki_hex, "2100000007000012345678");
    cr_assert_eq(strlen(h.ki_hex), 22);
    cr_assert_eq(h.body_off, 11);
    cr_assert_eq(h.body_len, 29);
    cr_assert_eq(pskgw_e2e_header_split(&h, 64, &ct_off, &ct_len, &tag_off), 0);
    cr_assert_eq(ct_len, 21);
    cr_assert_eq(tag_off, 32);
    /* Any low nibble: the version is the high nibble only. */
    p[0] = 0x2f;
    cr_assert_eq(pskgw_e2e_header_parse(p, sizeof(p), &h), 0);
    cr_assert_eq(h.version, 2);
}

Test(e2e_header, minimum_lengths)
{
    uint8_t p[64];
    pskgw_e2e_header_t h;
    size_t ct_off, ct_len, tag_off;

    memset(p, 0, sizeof(p));
    p[0] = 0x11;
    /* V1: KI 16 + shortest tag 8 = 24 bytes. */
    cr_assert_eq(pskgw_e2e_header_parse(p, 23, &h), PSKGW_EPARSE);
    cr_assert_eq(pskgw_e2e_header_parse(p, 24, &h), 0);
    cr_assert_eq(h.body_len, 8);
    cr_assert_eq(pskgw_e2e_header_split(&h, 64, &ct_off, &ct_len, &tag_off), 0);
    cr_assert_eq(ct_len, 0);
    /* ... a valid header, but truncated for a 16-byte tag. */
    cr_assert_eq(pskgw_e2e_header_split(&h, 128, &ct_off, &ct_len, &tag_off), PSKGW_EPARSE);
    cr_assert_eq(pskgw_e2e_header_parse(p, 1, &h), PSKGW_EPARSE);
    /* V2: KI 11 + 8 = 19 bytes. */
    p[0] = 0x21;
    cr_assert_eq(pskgw_e2e_header_parse(p, 18, &h), PSKGW_EPARSE);
    cr_assert_eq(pskgw_e2e_header_parse(p, 19, &h), 0);
}

Test(e2e_header, not_e2e)
{
    uint8_t p[64];
    pskgw_e2e_header_t h;

    memset(&h, 0x77, sizeof(h));
    for (int b = 0; b < 256; b++) {
        memset(p, (uint8_t)b, sizeof(p));
        int rc = pskgw_e2e_header_parse(p, sizeof(p), &h);
        if ((b >> 4) == 1 || (b >> 4) == 2)
            cr_assert_eq(rc, 0, "byte 0x%02x", b);
        else
            cr_assert_eq(rc, PSKGW_EPROTO, "byte 0x%02x", b);
    }
    memset(&h, 0x77, sizeof(h));
    cr_assert_eq(pskgw_e2e_header_parse(p, 0, &h), PSKGW_EPROTO);
    cr_assert_eq(pskgw_e2e_header_parse(NULL, 0, &h), PSKGW_EPROTO);
    cr_assert_eq(h.version, 0x77777777, "written on failure");
    cr_assert_eq(pskgw_e2e_header_parse(NULL, 3, &h), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_header_parse(p, 3, NULL), PSKGW_EINVAL);
    /* Plain text examples. */
    cr_assert_eq(
        pskgw_e2e_header_parse((const uint8_t *)"{\"t\":21.5,\"h\":40,\"id\":\"dev-7\"}", 30, &h),
        PSKGW_EPROTO);
}

Test(e2e_header, ki_from_hex_both_cases)
{
    uint8_t ki[16];
    size_t n = 0;
    int v = 0;
    static const char *const v1s[] = { "1101000089291e26ec1aeb0074450000",
                                       "1101000089291E26EC1AEB0074450000",
                                       "1101000089291e26EC1aeb0074450000" };

    for (size_t i = 0; i < 3; i++) {
        memset(ki, 0, sizeof(ki));
        cr_assert_eq(pskgw_e2e_ki_from_hex(v1s[i], 32, ki, sizeof(ki), &n, &v), 0);
        cr_assert_eq(n, 16);
        cr_assert_eq(v, 1);
        cr_assert_eq(ki[0], 0x11);
        cr_assert_eq(ki[6], 0x1e);
        cr_assert_eq(ki[15], 0x00);
    }
    cr_assert_eq(pskgw_e2e_ki_from_hex("21000000070000ABCDEF01", 22, ki, sizeof(ki), &n, &v), 0);
    cr_assert_eq(n, 11);
    cr_assert_eq(v, 2);
    cr_assert_eq(ki[10], 0x01);
    /* Length must match the nibble. */
    cr_assert_eq(pskgw_e2e_ki_from_hex("21000000070000ABCDEF01", 20, ki, sizeof(ki), &n, &v),
                 PSKGW_EPARSE);
    cr_assert_eq(pskgw_e2e_ki_from_hex(v1s[0], 22, ki, sizeof(ki), &n, &v), PSKGW_EPARSE);
    cr_assert_eq(pskgw_e2e_ki_from_hex("31000000070000ABCDEF01", 22, ki, sizeof(ki), &n, &v),
                 PSKGW_EPROTO);
    cr_assert_eq(
        pskgw_e2e_ki_from_hex("1101000089291e26ec1aeb007445000g", 32, ki, sizeof(ki), &n, &v),
        PSKGW_EPARSE);
    cr_assert_eq(pskgw_e2e_ki_from_hex("x", 1, ki, sizeof(ki), &n, &v), PSKGW_EPARSE);
    cr_assert_eq(pskgw_e2e_ki_from_hex("", 0, ki, sizeof(ki), &n, &v), PSKGW_EPARSE);
    cr_assert_eq(pskgw_e2e_ki_from_hex(v1s[0], 32, ki, 15, &n, &v), PSKGW_ETOOBIG);
    cr_assert_eq(pskgw_e2e_ki_from_hex(NULL, 32, ki, 16, &n, &v), PSKGW_EINVAL);
    /* Round trip with the parser's lower-case form. */
    {
        uint8_t p[40] = { 0 };
        pskgw_e2e_header_t h;
        memcpy(p, ki, 11);
        cr_assert_eq(pskgw_e2e_header_parse(p, sizeof(p), &h), 0);
        cr_assert_str_eq(h.ki_hex, "21000000070000abcdef01");
    }
}

/* ---- parameters ---- */

Test(e2e_params, suite_names)
{
    pskgw_e2e_suite_t s;

    cr_assert_eq(pskgw_e2e_suite_parse("AES_128_CCM", 11, &s), 0);
    cr_assert_eq(s, PSKGW_E2E_SUITE_AES_128_CCM);
    cr_assert_eq(pskgw_e2e_suite_parse("AES_128_CCM_8", 13, &s), 0);
    cr_assert_eq(s, PSKGW_E2E_SUITE_AES_128_CCM_8);
    cr_assert_eq(pskgw_e2e_suite_parse("AES_128_CCM_8", 12, &s), PSKGW_EUNSUPPORTED);
    cr_assert_eq(pskgw_e2e_suite_parse("aes_128_ccm", 11, &s), PSKGW_EUNSUPPORTED);
    cr_assert_eq(pskgw_e2e_suite_parse("AES_128_GCM", 11, &s), PSKGW_EUNSUPPORTED);
    cr_assert_str_eq(pskgw_e2e_suite_name(PSKGW_E2E_SUITE_AES_128_CCM), "AES_128_CCM");
    cr_assert_str_eq(pskgw_e2e_suite_name(PSKGW_E2E_SUITE_AES_128_CCM_8), "AES_128_CCM_8");
}

Test(e2e_params, check_rules)
{
    pskgw_e2e_params_t p;

    th_params(1, 0, &p);
    cr_assert_eq(pskgw_e2e_params_check(&p), 0);
    for (size_t n = 0; n <= 20; n++) {
        p.nonce_len = n;
        cr_assert_eq(pskgw_e2e_params_check(&p), (n >= 7 && n <= 13) ? 0 : PSKGW_EINVAL, "%zu", n);
    }
    th_params(1, 0, &p);
    p.mac_bits = 64; /* AES_128_CCM with an 8-byte tag: inconsistent */
    cr_assert_eq(pskgw_e2e_params_check(&p), PSKGW_EINVAL);
    th_params(2, 0, &p);
    cr_assert_eq(pskgw_e2e_params_check(&p), 0);
    p.mac_bits = 128;
    cr_assert_eq(pskgw_e2e_params_check(&p), PSKGW_EINVAL);
    th_params(2, 0, &p);
    p.suite = (pskgw_e2e_suite_t)3;
    cr_assert_eq(pskgw_e2e_params_check(&p), PSKGW_EINVAL);
    th_params(2, 0, &p);
    p.rot_uid[3] = ' ';
    cr_assert_eq(pskgw_e2e_params_check(&p), PSKGW_EINVAL);
    memset(p.rot_uid, 'A', sizeof(p.rot_uid)); /* not terminated */
    cr_assert_eq(pskgw_e2e_params_check(&p), PSKGW_EINVAL);
    p.rot_uid[PSKGW_E2E_UID_MAX_LEN] = '\0'; /* 64 characters: the maximum */
    cr_assert_eq(pskgw_e2e_params_check(&p), 0);
    p.rot_uid[0] = '\0';
    cr_assert_eq(pskgw_e2e_params_check(&p), 0);
    cr_assert_eq(pskgw_e2e_params_check(NULL), PSKGW_EINVAL);
}

Test(e2e_params, codec_round_trip)
{
    for (int v = 1; v <= 2; v++) {
        for (size_t n = 7; n <= 13; n++) {
            pskgw_e2e_params_t p, q;
            uint8_t buf[PSKGW_E2E_PARAMS_ENCODED_MAX];
            size_t len = 0;

            th_params(v, (uint8_t)n, &p);
            p.nonce_len = n;
            cr_assert_eq(pskgw_e2e_params_encode(&p, buf, sizeof(buf), &len), 0);
            cr_assert_eq(len, 5 + 16 + n + 1 + strlen(p.rot_uid));
            memset(&q, 0x33, sizeof(q));
            cr_assert_eq(pskgw_e2e_params_decode(buf, len, &q), 0);
            cr_assert_arr_eq(q.key, p.key, 16);
            cr_assert_eq(q.nonce_len, n);
            cr_assert_arr_eq(q.nonce, p.nonce, n);
            cr_assert_eq(q.mac_bits, p.mac_bits);
            cr_assert_eq(q.suite, p.suite);
            cr_assert_str_eq(q.rot_uid, p.rot_uid);
            /* Every truncation and an extra byte are refused. */
            for (size_t cut = 0; cut < len; cut++)
                cr_assert_eq(pskgw_e2e_params_decode(buf, cut, &q), PSKGW_EPARSE, "cut %zu", cut);
            cr_assert_eq(pskgw_e2e_params_encode(&p, buf, len - 1, &len), PSKGW_ETOOBIG);
        }
    }
}

Test(e2e_params, codec_limits_and_garbage)
{
    pskgw_e2e_params_t p, q;
    uint8_t buf[PSKGW_E2E_PARAMS_ENCODED_MAX + 1];
    size_t len = 0;

    th_params(1, 9, &p);
    memset(p.rot_uid, 'Z', PSKGW_E2E_UID_MAX_LEN);
    p.rot_uid[PSKGW_E2E_UID_MAX_LEN] = '\0';
    cr_assert_eq(pskgw_e2e_params_encode(&p, buf, sizeof(buf), &len), 0);
    cr_assert_eq(len, PSKGW_E2E_PARAMS_ENCODED_MAX);
    cr_assert_eq(pskgw_e2e_params_decode(buf, len, &q), 0);
    cr_assert_str_eq(q.rot_uid, p.rot_uid);
    buf[len] = 0;
    cr_assert_eq(pskgw_e2e_params_decode(buf, len + 1, &q), PSKGW_EPARSE, "trailing byte");

    th_params(1, 9, &p);
    cr_assert_eq(pskgw_e2e_params_encode(&p, buf, sizeof(buf), &len), 0);
    buf[0] = 2; /* unknown format version */
    cr_assert_eq(pskgw_e2e_params_decode(buf, len, &q), PSKGW_EPARSE);
    buf[0] = 1;
    buf[3] = 64; /* mac_bits 64 with AES_128_CCM */
    cr_assert_eq(pskgw_e2e_params_decode(buf, len, &q), PSKGW_EPARSE);
    buf[3] = 128;
    buf[4] = 14; /* nonce length */
    cr_assert_eq(pskgw_e2e_params_decode(buf, len, &q), PSKGW_EPARSE);
    buf[4] = 13;
    buf[len - 2] = 0x01; /* control character in the UID */
    cr_assert_eq(pskgw_e2e_params_decode(buf, len, &q), PSKGW_EPARSE);
    buf[len - 2] = 0x00; /* a NUL inside the UID (found by fuzz_e2e_header) */
    cr_assert_eq(pskgw_e2e_params_decode(buf, len, &q), PSKGW_EPARSE);

    p.nonce_len = 6;
    cr_assert_eq(pskgw_e2e_params_encode(&p, buf, sizeof(buf), &len), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_params_decode(NULL, 3, &q), PSKGW_EINVAL);
}

Test(e2e_params, wipe)
{
    pskgw_e2e_params_t p;
    static const uint8_t zero[sizeof(pskgw_e2e_params_t)];

    th_params(1, 1, &p);
    pskgw_e2e_params_wipe(&p);
    cr_assert_arr_eq(&p, zero, sizeof(p));
    pskgw_e2e_params_wipe(NULL);
}
