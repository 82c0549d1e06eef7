/* Spool record and offset codecs: CRC, torn writes, corruption. */
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

static size_t make(uint8_t *buf, const char *body)
{
    size_t n = strlen(body);

    pskgw_spool_record_header(buf, (const uint8_t *)body, n);
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

    cr_assert_eq(pskgw_spool_record_parse(buf, n1 + n2, &body, &blen, &used), 0);
    cr_assert_eq(used, n1);
    cr_assert_eq(blen, 10);
    cr_assert_eq(memcmp(body, "first body", 10), 0);
    cr_assert_eq(pskgw_spool_record_parse(buf + n1, n2, &body, &blen, &used), 0);
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
        int rc = pskgw_spool_record_parse(buf, cut, &body, &blen, &used);
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
        rc = pskgw_spool_record_parse(buf, n, &body, &blen, &used);
        /* a flipped length may also look incomplete; it is never accepted */
        cr_assert(rc == PSKGW_EPARSE || rc == PSKGW_EAGAIN, "bit %zu accepted", i);
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
}

Test(record, oversized_length_rejected)
{
    uint8_t buf[PSKGW_SPOOL_REC_HDR] = { 'P', 'S', 'R', '1', 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0 };
    const uint8_t *body;
    size_t blen;
    size_t used;

    cr_assert_eq(pskgw_spool_record_parse(buf, sizeof(buf), &body, &blen, &used), PSKGW_EPARSE);
    buf[0] = 'X';
    cr_assert_eq(pskgw_spool_record_parse(buf, 3, &body, &blen, &used), PSKGW_EPARSE);
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
