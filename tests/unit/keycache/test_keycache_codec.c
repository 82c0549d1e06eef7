#define _GNU_SOURCE
/* Stored-value codec: round trips, KEK rotation, and every way a stored value can be wrong. */
#include "common/err.h"
#include "keycache/codec.h"

#include <criterion/criterion.h>
#include <string.h>

static const uint8_t kek_a[32] = { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t kek_b[32] = { 0xa0, 0xa1, 0xa2, 0xa3 };
static const uint8_t iv[12] = { 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 1 };
static const uint8_t key[] = "110100000007A1B2C3D4E5F60718";
#define KEYLEN (sizeof(key) - 1)

static size_t seal(const uint8_t *kek, uint8_t id, uint8_t kind, const void *value, size_t len,
                   uint8_t *out, size_t cap)
{
    pskgw_keycache_record_t rec = { kind, 1000, 5000, value, len };
    size_t n = 0;

    cr_assert_eq(pskgw_keycache_codec_encode(kek, id, iv, "example.com", "psk", key, KEYLEN, &rec,
                                             out, cap, &n),
                 0);
    cr_assert_eq(n, pskgw_keycache_codec_sealed_len(len));
    return n;
}

static int open_with(const pskgw_keycache_keyring_t *kr, const uint8_t *in, size_t n,
                     pskgw_keycache_record_t *rec, uint8_t *buf, size_t cap)
{
    return pskgw_keycache_codec_decode(kr, "example.com", "psk", key, KEYLEN, in, n, buf, cap, rec);
}

Test(keycache_codec, round_trip_value_and_negatives)
{
    pskgw_keycache_keyring_t kr = { kek_a, 7, NULL, 0 };
    uint8_t sealed[200];
    uint8_t buf[64];
    pskgw_keycache_record_t rec;
    const char psk[] = "0123456789abcdef|0002000000073F1A";
    size_t n =
        seal(kek_a, 7, PSKGW_KEYCACHE_KIND_VALUE, psk, sizeof(psk) - 1, sealed, sizeof(sealed));

    cr_assert_eq(sealed[0], PSKGW_KEYCACHE_CODEC_FORMAT);
    cr_assert_eq(sealed[1], 7);
    cr_assert(memcmp(sealed + 2, iv, 12) == 0);
    cr_assert_null(memmem(sealed, n, "0123456789abcdef", 16), "value in clear");
    cr_assert_eq(open_with(&kr, sealed, n, &rec, buf, sizeof(buf)), 0);
    cr_assert_eq(rec.kind, PSKGW_KEYCACHE_KIND_VALUE);
    cr_assert_eq(rec.fresh_until_ms, 1000);
    cr_assert_eq(rec.stale_until_ms, 5000);
    cr_assert_eq(rec.value_len, sizeof(psk) - 1);
    cr_assert_eq(rec.value, buf);
    cr_assert(memcmp(buf, psk, rec.value_len) == 0);

    for (uint8_t kind = PSKGW_KEYCACHE_KIND_DENIED; kind <= PSKGW_KEYCACHE_KIND_NOTFOUND; kind++) {
        n = seal(kek_a, 7, kind, NULL, 0, sealed, sizeof(sealed));
        cr_assert_eq(n, PSKGW_KEYCACHE_CODEC_OVERHEAD);
        cr_assert_eq(open_with(&kr, sealed, n, &rec, buf, sizeof(buf)), 0);
        cr_assert_eq(rec.kind, kind);
        cr_assert_eq(rec.value_len, 0);
        cr_assert_null(rec.value);
    }
}

Test(keycache_codec, largest_value)
{
    static uint8_t value[PSKGW_KEYCACHE_VALUE_MAX];
    static uint8_t sealed[PSKGW_KEYCACHE_VALUE_MAX + 100];
    static uint8_t buf[PSKGW_KEYCACHE_VALUE_MAX];
    pskgw_keycache_keyring_t kr = { kek_a, 1, NULL, 0 };
    pskgw_keycache_record_t rec;
    pskgw_keycache_record_t big = { PSKGW_KEYCACHE_KIND_VALUE, 1, 2, value, sizeof(value) + 1 };
    size_t n;

    memset(value, 0x5a, sizeof(value));
    n = seal(kek_a, 1, PSKGW_KEYCACHE_KIND_VALUE, value, sizeof(value), sealed, sizeof(sealed));
    cr_assert_eq(open_with(&kr, sealed, n, &rec, buf, sizeof(buf)), 0);
    cr_assert_eq(rec.value_len, sizeof(value));
    cr_assert_eq(open_with(&kr, sealed, n, &rec, buf, sizeof(buf) - 1), PSKGW_ETOOBIG);
    cr_assert_eq(pskgw_keycache_codec_encode(kek_a, 1, iv, "d", "psk", key, KEYLEN, &big, sealed,
                                             sizeof(sealed), &n),
                 PSKGW_EINVAL);
}

Test(keycache_codec, wrong_kek_is_badmac)
{
    pskgw_keycache_keyring_t wrong = { kek_b, 7, NULL, 0 };
    uint8_t sealed[100];
    uint8_t buf[64];
    pskgw_keycache_record_t rec;
    size_t n = seal(kek_a, 7, PSKGW_KEYCACHE_KIND_VALUE, "secret", 6, sealed, sizeof(sealed));

    memset(&rec, 0x77, sizeof(rec));
    cr_assert_eq(open_with(&wrong, sealed, n, &rec, buf, sizeof(buf)), PSKGW_EBADMAC);
    cr_assert_eq(rec.kind, 0x77, "out-parameter written on failure");
}

Test(keycache_codec, rotation_previous_kek_and_unknown_id)
{
    pskgw_keycache_keyring_t rotated = { kek_b, 8, kek_a, 7 };
    pskgw_keycache_keyring_t other = { kek_b, 8, NULL, 0 };
    uint8_t sealed[100];
    uint8_t buf[64];
    pskgw_keycache_record_t rec;
    size_t n = seal(kek_a, 7, PSKGW_KEYCACHE_KIND_VALUE, "secret", 6, sealed, sizeof(sealed));

    cr_assert_eq(open_with(&rotated, sealed, n, &rec, buf, sizeof(buf)), 0);
    cr_assert(memcmp(rec.value, "secret", 6) == 0);
    cr_assert_eq(open_with(&other, sealed, n, &rec, buf, sizeof(buf)), PSKGW_EPARSE);
    /* Claiming another KEK id does not help: the id is authenticated. */
    sealed[1] = 8;
    cr_assert_eq(open_with(&rotated, sealed, n, &rec, buf, sizeof(buf)), PSKGW_EBADMAC);
}

Test(keycache_codec, every_corrupted_byte_fails)
{
    pskgw_keycache_keyring_t kr = { kek_a, 7, NULL, 0 };
    uint8_t sealed[100];
    uint8_t buf[64];
    pskgw_keycache_record_t rec;
    size_t n = seal(kek_a, 7, PSKGW_KEYCACHE_KIND_VALUE, "secret-psk", 10, sealed, sizeof(sealed));

    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            sealed[i] ^= (uint8_t)(1u << bit);
            int rc = open_with(&kr, sealed, n, &rec, buf, sizeof(buf));
            cr_assert(rc == PSKGW_EBADMAC || rc == PSKGW_EPARSE, "byte %zu bit %d: %d", i, bit, rc);
            sealed[i] ^= (uint8_t)(1u << bit);
        }
    }
    cr_assert_eq(open_with(&kr, sealed, n, &rec, buf, sizeof(buf)), 0);
}

Test(keycache_codec, every_truncation_and_extension_fails)
{
    pskgw_keycache_keyring_t kr = { kek_a, 7, NULL, 0 };
    uint8_t sealed[100];
    uint8_t buf[64];
    pskgw_keycache_record_t rec;
    size_t n = seal(kek_a, 7, PSKGW_KEYCACHE_KIND_VALUE, "secret-psk", 10, sealed, sizeof(sealed));

    for (size_t len = 0; len < n; len++) {
        int rc = open_with(&kr, len ? sealed : NULL, len, &rec, buf, sizeof(buf));
        cr_assert(rc == PSKGW_EBADMAC || rc == PSKGW_EPARSE, "length %zu: %d", len, rc);
    }
    sealed[n] = 0;
    cr_assert_eq(open_with(&kr, sealed, n + 1, &rec, buf, sizeof(buf)), PSKGW_EBADMAC);
}

Test(keycache_codec, value_moved_to_another_entry_fails)
{
    pskgw_keycache_keyring_t kr = { kek_a, 7, NULL, 0 };
    uint8_t sealed[100];
    uint8_t buf[64];
    pskgw_keycache_record_t rec;
    size_t n = seal(kek_a, 7, PSKGW_KEYCACHE_KIND_VALUE, "secret", 6, sealed, sizeof(sealed));

    cr_assert_eq(pskgw_keycache_codec_decode(&kr, "example.org", "psk", key, KEYLEN, sealed, n, buf,
                                             sizeof(buf), &rec),
                 PSKGW_EBADMAC);
    cr_assert_eq(pskgw_keycache_codec_decode(&kr, "example.com", "e2e", key, KEYLEN, sealed, n, buf,
                                             sizeof(buf), &rec),
                 PSKGW_EBADMAC);
    cr_assert_eq(pskgw_keycache_codec_decode(&kr, "example.com", "psk", key, KEYLEN - 1, sealed, n,
                                             buf, sizeof(buf), &rec),
                 PSKGW_EBADMAC);
}

Test(keycache_codec, bad_arguments)
{
    pskgw_keycache_record_t rec = { PSKGW_KEYCACHE_KIND_VALUE, 10, 5, (const uint8_t *)"x", 1 };
    pskgw_keycache_keyring_t kr = { kek_a, 7, NULL, 0 };
    uint8_t out[100];
    size_t n = 0;

    /* fresh after stale */
    cr_assert_eq(pskgw_keycache_codec_encode(kek_a, 1, iv, "d", "psk", key, KEYLEN, &rec, out,
                                             sizeof(out), &n),
                 PSKGW_EINVAL);
    rec.fresh_until_ms = 1;
    rec.kind = PSKGW_KEYCACHE_KIND_DENIED; /* negative with a value */
    cr_assert_eq(pskgw_keycache_codec_encode(kek_a, 1, iv, "d", "psk", key, KEYLEN, &rec, out,
                                             sizeof(out), &n),
                 PSKGW_EINVAL);
    rec.kind = 9;
    rec.value_len = 0;
    cr_assert_eq(pskgw_keycache_codec_encode(kek_a, 1, iv, "d", "psk", key, KEYLEN, &rec, out,
                                             sizeof(out), &n),
                 PSKGW_EINVAL);
    rec.kind = PSKGW_KEYCACHE_KIND_NOTFOUND;
    cr_assert_eq(pskgw_keycache_codec_encode(kek_a, 1, iv, "", "psk", key, KEYLEN, &rec, out,
                                             sizeof(out), &n),
                 PSKGW_EINVAL);
    cr_assert_eq(
        pskgw_keycache_codec_encode(kek_a, 1, iv, "d", "psk", key, 0, &rec, out, sizeof(out), &n),
        PSKGW_EINVAL);
    cr_assert_eq(pskgw_keycache_codec_encode(kek_a, 1, iv, "d", "psk", key, KEYLEN, &rec, out,
                                             PSKGW_KEYCACHE_CODEC_OVERHEAD - 1, &n),
                 PSKGW_ETOOBIG);
    cr_assert_eq(pskgw_keycache_codec_decode(NULL, "d", "psk", key, KEYLEN, out, 10, NULL, 0,
                                             (pskgw_keycache_record_t *)&rec),
                 PSKGW_EINVAL);
    out[0] = 2; /* unknown format */
    memset(out + 1, 7, sizeof(out) - 1);
    cr_assert_eq(pskgw_keycache_codec_decode(&kr, "d", "psk", key, KEYLEN, out, 60, NULL, 0,
                                             (pskgw_keycache_record_t *)&rec),
                 PSKGW_EPARSE);
}

/* Known answer: sealed independently with Python's cryptography AESGCM (format 1, KEK id 1,
 * entry example.com/psk/"id", value = 16 zero bytes + "0002000000073F1A", expiry 1000/2000). */
Test(keycache_codec, known_answer_from_independent_implementation)
{
    static const uint8_t fuzz_kek[32] = { 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                          0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f };
    static const uint8_t sealed[] = {
        0x01, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
        0x50, 0xe8, 0x17, 0x5f, 0xf8, 0x7f, 0x2e, 0x29, 0x85, 0x57, 0x8d, 0x47, 0x91, 0xfb,
        0x81, 0xef, 0x8e, 0xf7, 0x8f, 0x7f, 0x37, 0xbb, 0x17, 0xe4, 0xd3, 0x2d, 0xcd, 0x28,
        0xc2, 0xc0, 0xab, 0xd7, 0x02, 0x06, 0x11, 0x5c, 0xd6, 0x7a, 0xa5, 0xbc, 0x7e, 0xb7,
        0x72, 0x8d, 0xfe, 0x72, 0xcf, 0x1c, 0xcf, 0xf1, 0xfd, 0x87, 0xdd, 0x3e, 0x01, 0xea,
        0x2e, 0x21, 0x7e, 0x18, 0xb5, 0x9d, 0x99, 0x28, 0x4c, 0xae, 0x46
    };
    static const uint8_t kat_iv[12] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
    pskgw_keycache_keyring_t kr = { fuzz_kek, 1, NULL, 0 };
    pskgw_keycache_record_t rec;
    uint8_t buf[64];
    uint8_t again[sizeof(sealed)];
    size_t n = 0;

    cr_assert_eq(pskgw_keycache_codec_decode(&kr, "example.com", "psk", (const uint8_t *)"id", 2,
                                             sealed, sizeof(sealed), buf, sizeof(buf), &rec),
                 0);
    cr_assert_eq(rec.kind, PSKGW_KEYCACHE_KIND_VALUE);
    cr_assert_eq(rec.fresh_until_ms, 1000);
    cr_assert_eq(rec.stale_until_ms, 2000);
    cr_assert_eq(rec.value_len, 32);
    cr_assert(memcmp(buf + 16, "0002000000073F1A", 16) == 0);
    cr_assert_eq(pskgw_keycache_codec_encode(fuzz_kek, 1, kat_iv, "example.com", "psk",
                                             (const uint8_t *)"id", 2, &rec, again, sizeof(again),
                                             &n),
                 0);
    cr_assert_eq(n, sizeof(sealed));
    cr_assert(memcmp(again, sealed, n) == 0, "encoder differs from the reference");
}

/* ---- the PSK cache's value format ---- */
#include "keycache/psk_value.h"

Test(keycache_psk_value, round_trip_and_bounds)
{
    uint8_t psk[32];
    uint8_t out[PSKGW_KEYCACHE_PSK_VALUE_MAX];
    uint8_t back[64];
    char uid[65];
    size_t n = 0;
    size_t bl = 0;

    for (size_t i = 0; i < sizeof(psk); i++)
        psk[i] = (uint8_t)(i * 7);
    cr_assert_eq(pskgw_keycache_psk_value_encode(psk, 16, "0002000000073F1A", out, sizeof(out), &n),
                 0);
    cr_assert_eq(n, 3 + 16 + 16);
    cr_assert_eq(out[0], 1);
    cr_assert_eq(pskgw_keycache_psk_value_decode(out, n, back, sizeof(back), &bl, uid, sizeof(uid)),
                 0);
    cr_assert_eq(bl, 16);
    cr_assert(memcmp(back, psk, 16) == 0);
    cr_assert_str_eq(uid, "0002000000073F1A");

    /* Empty UID, 32-byte PSK. */
    cr_assert_eq(pskgw_keycache_psk_value_encode(psk, 32, "", out, sizeof(out), &n), 0);
    cr_assert_eq(pskgw_keycache_psk_value_decode(out, n, back, sizeof(back), &bl, uid, sizeof(uid)),
                 0);
    cr_assert_eq(bl, 32);
    cr_assert_str_eq(uid, "");
    cr_assert_eq(pskgw_keycache_psk_value_decode(out, n, back, 31, &bl, uid, sizeof(uid)),
                 PSKGW_ETOOBIG);

    cr_assert_eq(pskgw_keycache_psk_value_encode(psk, 0, "", out, sizeof(out), &n), PSKGW_EINVAL);
    cr_assert_eq(pskgw_keycache_psk_value_encode(psk, 16, "bad uid", out, sizeof(out), &n),
                 PSKGW_EINVAL);
    cr_assert_eq(pskgw_keycache_psk_value_encode(psk, 16, "u", out, 19, &n), PSKGW_ETOOBIG);
}

Test(keycache_psk_value, malformed_bytes)
{
    uint8_t psk[16] = { 1 };
    uint8_t out[64];
    uint8_t back[64];
    char uid[65];
    size_t n = 0;
    size_t bl = 0;

    cr_assert_eq(pskgw_keycache_psk_value_encode(psk, 16, "UID1", out, sizeof(out), &n), 0);
    for (size_t len = 0; len < n; len++)
        cr_assert_eq(
            pskgw_keycache_psk_value_decode(out, len, back, sizeof(back), &bl, uid, sizeof(uid)),
            PSKGW_EPARSE, "length %zu", len);
    out[n] = 'x';
    cr_assert_eq(
        pskgw_keycache_psk_value_decode(out, n + 1, back, sizeof(back), &bl, uid, sizeof(uid)),
        PSKGW_EPARSE);
    out[0] = 2;
    cr_assert_eq(pskgw_keycache_psk_value_decode(out, n, back, sizeof(back), &bl, uid, sizeof(uid)),
                 PSKGW_EPARSE);
    out[0] = 1;
    out[n - 1] = '\n'; /* not printable */
    cr_assert_eq(pskgw_keycache_psk_value_decode(out, n, back, sizeof(back), &bl, uid, sizeof(uid)),
                 PSKGW_EPARSE);
}
