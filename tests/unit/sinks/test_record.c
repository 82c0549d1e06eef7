/* Spool file header, record and offset codecs: CRC, torn writes, corruption, the sync. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sinks/crc32.h"
#include "sinks/record.h"

Test(crc32, check_value)
{
    cr_assert_eq(pskgw_crc32("123456789", 9), 0xCBF43926u);
    cr_assert_eq(pskgw_crc32("", 0), 0u);
    cr_assert_eq(pskgw_crc32_update(pskgw_crc32("1234", 4), "56789", 5), 0xCBF43926u);
}

static const uint8_t sync_a[PSKGW_SPOOL_SYNC_LEN] = { 1, 2,  3,  4,  5,  6,  7,  8,
                                                      9, 10, 11, 12, 13, 14, 15, 16 };

static size_t make(uint8_t *buf, const char *body)
{
    size_t n = strlen(body);

    pskgw_spool_record_header(buf, sync_a, (const uint8_t *)body, n);
    memcpy(buf + PSKGW_SPOOL_REC_HDR, body, n);
    return PSKGW_SPOOL_REC_HDR + n;
}

Test(record, roundtrip_two_records)
{
    uint8_t buf[256];
    size_t n1 = make(buf, "first body");
    size_t n2 = make(buf + n1, "second");
    const uint8_t *body;
    size_t blen;
    size_t used;

    cr_assert_eq(pskgw_spool_record_parse(buf, n1 + n2, sync_a, &body, &blen, &used), 0);
    cr_assert_eq(used, n1);
    cr_assert_eq(blen, 10);
    cr_assert_eq(memcmp(body, "first body", 10), 0);
    cr_assert_eq(pskgw_spool_record_parse(buf + n1, n2, sync_a, &body, &blen, &used), 0);
    cr_assert_eq(used, n2);
    cr_assert_eq(memcmp(body, "second", 6), 0);
}

Test(record, torn_tail_is_incomplete)
{
    uint8_t buf[256];
    size_t n = make(buf, "a body that gets torn");
    const uint8_t *body = NULL;
    size_t blen = 0;

    for (size_t cut = 0; cut < n; cut++) {
        size_t used = 12345;
        int rc = pskgw_spool_record_parse(buf, cut, sync_a, &body, &blen, &used);
        cr_assert_eq(rc, PSKGW_EAGAIN, "cut %zu", cut);
        cr_assert_eq(used, cut < PSKGW_SPOOL_REC_HDR ? 0 : n, "cut %zu", cut);
    }
    cr_assert_null(body);
}

Test(record, every_bit_flip_is_detected)
{
    uint8_t buf[256];
    size_t n = make(buf, "payload bits");

    for (size_t i = 0; i < n * 8; i++) {
        const uint8_t *body;
        size_t blen;
        size_t used;
        int rc;

        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        rc = pskgw_spool_record_parse(buf, n, sync_a, &body, &blen, &used);
        /* a flipped length may also look incomplete; it is never accepted */
        cr_assert(rc == PSKGW_EPARSE || rc == PSKGW_EAGAIN, "bit %zu accepted", i);
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
}

Test(record, oversized_length_rejected)
{
    uint8_t buf[PSKGW_SPOOL_REC_HDR];
    const uint8_t *body;
    size_t blen;
    size_t used;

    pskgw_spool_record_header(buf, sync_a, (const uint8_t *)"", 0);
    buf[16] = buf[17] = buf[18] = 0xff;
    buf[19] = 0x7f;
    cr_assert_eq(pskgw_spool_record_parse(buf, sizeof(buf), sync_a, &body, &blen, &used),
                 PSKGW_EPARSE); /* header CRC */
    {
        uint32_t crc = pskgw_crc32(buf, 20); /* a valid header CRC over the oversized length */
        for (int i = 0; i < 4; i++)
            buf[20 + i] = (uint8_t)(crc >> (8 * i));
    }
    cr_assert_eq(pskgw_spool_record_parse(buf, sizeof(buf), sync_a, &body, &blen, &used),
                 PSKGW_EPARSE);
    buf[0] = 'X';
    cr_assert_eq(pskgw_spool_record_parse(buf, 3, sync_a, &body, &blen, &used), PSKGW_EPARSE);
}

Test(record, offset_file_codec)
{
    uint8_t b[PSKGW_SPOOL_OFFSET_LEN];
    uint64_t off = 0;

    pskgw_spool_offset_encode(b, 0x123456789abcull);
    cr_assert_eq(pskgw_spool_offset_decode(b, sizeof(b), &off), 0);
    cr_assert_eq(off, 0x123456789abcull);
    b[5] ^= 1;
    cr_assert_eq(pskgw_spool_offset_decode(b, sizeof(b), &off), PSKGW_EPARSE);
    cr_assert_eq(pskgw_spool_offset_decode(b, 15, &off), PSKGW_EPARSE);
}

/* A record is only a record with the file's sync: the same bytes under another sync are not. */
Test(record, another_sync_is_not_a_record)
{
    static const uint8_t sync_b[PSKGW_SPOOL_SYNC_LEN] = { 1 };
    uint8_t buf[256];
    size_t n = make(buf, "body");
    const uint8_t *body;
    size_t blen;
    size_t used;

    cr_assert_eq(pskgw_spool_record_parse(buf, n, sync_a, &body, &blen, &used), 0);
    cr_assert_eq(pskgw_spool_record_parse(buf, n, sync_b, &body, &blen, &used), PSKGW_EPARSE);
    cr_assert_eq(pskgw_spool_record_parse(buf, 3, sync_b, &body, &blen, &used), PSKGW_EPARSE);
}

Test(record, file_header_codec)
{
    uint8_t h[PSKGW_SPOOL_FILE_HDR];
    uint8_t got[PSKGW_SPOOL_SYNC_LEN];

    pskgw_spool_file_header(h, sync_a);
    cr_assert_eq(pskgw_spool_file_header_parse(h, sizeof(h), got), 0);
    cr_assert_eq(memcmp(got, sync_a, sizeof(got)), 0);
    cr_assert_eq(pskgw_spool_file_header_parse(h, 10, got), PSKGW_EAGAIN);
    cr_assert_not(pskgw_spool_is_v1(h, sizeof(h)));
    h[7] ^= 1;
    cr_assert_eq(pskgw_spool_file_header_parse(h, sizeof(h), got), PSKGW_EPARSE);
    cr_assert_eq(pskgw_spool_file_header_parse((const uint8_t *)"PSR1", 4, got), PSKGW_EPARSE);
    cr_assert(pskgw_spool_is_v1((const uint8_t *)"PSR1", 4));
}

Test(record, v1_roundtrip_for_the_migration)
{
    uint8_t buf[64];
    const uint8_t *body;
    size_t blen;
    size_t used;

    pskgw_spool_v1_header(buf, (const uint8_t *)"old", 3);
    memcpy(buf + PSKGW_SPOOL_V1_REC_HDR, "old", 3);
    cr_assert_eq(pskgw_spool_v1_parse(buf, 15, &body, &blen, &used), 0);
    cr_assert_eq(used, 15);
    cr_assert_eq(pskgw_spool_v1_parse(buf, 14, &body, &blen, &used), PSKGW_EAGAIN);
    cr_assert_eq(used, 15);
    buf[13] ^= 1;
    cr_assert_eq(pskgw_spool_v1_parse(buf, 15, &body, &blen, &used), PSKGW_EPARSE);
}
