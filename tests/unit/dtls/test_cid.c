/* dtls/cid.h: the CID layout, the tls12_cid record parser, the CID table. */
#include "dtls/cid.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

/* A tls12_cid record: type 25, DTLS 1.2, epoch, seq, cid, length, fragment. */
static size_t cid_rec(uint8_t *out, uint16_t epoch, uint64_t seq, const uint8_t *cid,
                      size_t cid_len, size_t frag_len)
{
    size_t o = 0;

    out[o++] = PSKGW_CT_TLS12_CID;
    out[o++] = 0xFE;
    out[o++] = 0xFD;
    out[o++] = (uint8_t)(epoch >> 8);
    out[o++] = (uint8_t)epoch;
    for (int i = 0; i < 6; i++)
        out[o++] = (uint8_t)(seq >> (8 * (5 - i)));
    memcpy(out + o, cid, cid_len);
    o += cid_len;
    out[o++] = (uint8_t)(frag_len >> 8);
    out[o++] = (uint8_t)frag_len;
    memset(out + o, 0xAB, frag_len);
    return o + frag_len;
}

Test(dtls_cid, layout_puts_the_worker_in_byte_0)
{
    const uint8_t rnd[15] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
    uint8_t cid[PSKGW_CID_MAX];

    cr_assert_eq(pskgw_dtls_cid_make(7, rnd, 8, cid), 0);
    cr_assert_eq(cid[PSKGW_CID_WORKER_AT], 7);
    cr_assert_eq(memcmp(cid + 1, rnd, 7), 0);
    cr_assert_eq(pskgw_dtls_cid_make(0, rnd, PSKGW_CID_MAX, cid), 0);
    cr_assert_eq(memcmp(cid + 1, rnd, 15), 0);
    cr_assert_eq(pskgw_dtls_cid_make(0, rnd, PSKGW_CID_MIN - 1, cid), PSKGW_EINVAL);
    cr_assert_eq(pskgw_dtls_cid_make(0, rnd, PSKGW_CID_MAX + 1, cid), PSKGW_EINVAL);
}

Test(dtls_cid, parses_the_cid_at_its_fixed_offset)
{
    const uint8_t cid[8] = { 3, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7 };
    uint8_t d[256];
    size_t n = cid_rec(d, 1, 0x0000BEEF0102ULL, cid, sizeof(cid), 40);
    pskgw_dtls_cid_record_t r;
    size_t used = 0;

    cr_assert_eq(pskgw_dtls_cid_record_parse(d, n, sizeof(cid), &r, &used), 0);
    cr_assert_eq(used, n);
    cr_assert_eq(r.cid, d + PSKGW_CID_OFFSET);
    cr_assert_eq(memcmp(r.cid, cid, sizeof(cid)), 0);
    cr_assert_eq(r.epoch, 1);
    cr_assert_eq(r.seq, 0x0000BEEF0102ULL);
    cr_assert_eq(r.length, 40);
}

Test(dtls_cid, refuses_other_records_and_short_or_overlong_input)
{
    const uint8_t cid[4] = { 0, 1, 2, 3 };
    uint8_t d[256];
    size_t n = cid_rec(d, 1, 5, cid, sizeof(cid), 10);
    pskgw_dtls_cid_record_t r;
    size_t used = 0;

    for (size_t cut = 0; cut < n; cut++)
        cr_assert_eq(pskgw_dtls_cid_record_parse(d, cut, sizeof(cid), &r, &used), PSKGW_EPARSE,
                     "truncated to %zu", cut);
    d[0] = 23; /* application_data: not a CID record */
    cr_assert_eq(pskgw_dtls_cid_record_parse(d, n, sizeof(cid), &r, &used), PSKGW_EPARSE);
    d[0] = PSKGW_CT_TLS12_CID;
    d[1] = 0x03; /* TLS, not DTLS */
    cr_assert_eq(pskgw_dtls_cid_record_parse(d, n, sizeof(cid), &r, &used), PSKGW_EPARSE);
    d[1] = 0xFE;
    cr_assert_eq(pskgw_dtls_cid_record_parse(d, n, 0, &r, &used), PSKGW_EINVAL);
    cr_assert_eq(pskgw_dtls_cid_record_parse(d, n, PSKGW_CID_MAX + 1, &r, &used), PSKGW_EINVAL);
    /* A longer CID than the listener's shifts the length field: the fragment overruns. */
    cr_assert_eq(pskgw_dtls_cid_record_parse(d, n, 12, &r, &used), PSKGW_EPARSE);
}

Test(dtls_cid, two_records_in_one_datagram)
{
    const uint8_t cid[6] = { 1, 9, 9, 9, 9, 9 };
    uint8_t d[256];
    size_t n1 = cid_rec(d, 1, 7, cid, sizeof(cid), 20);
    size_t n2 = cid_rec(d + n1, 1, 8, cid, sizeof(cid), 0);
    pskgw_dtls_cid_record_t r;
    size_t used = 0;

    cr_assert_eq(pskgw_dtls_cid_record_parse(d, n1 + n2, sizeof(cid), &r, &used), 0);
    cr_assert_eq(used, n1);
    cr_assert_eq(pskgw_dtls_cid_record_parse(d + used, n2, sizeof(cid), &r, &used), 0);
    cr_assert_eq(r.seq, 8);
    cr_assert_eq(r.length, 0);
}

Test(dtls_cid, table_finds_inserts_and_removes_without_allocating_entries)
{
    static pskgw_cid_entry_t e[1000];
    pskgw_cid_table_t t;

    pskgw_cid_table_init(&t, 0x1234);
    cr_assert_null(pskgw_cid_table_find(&t, (const uint8_t *)"abcd", 4));
    for (int i = 0; i < 1000; i++) {
        e[i].len = 8;
        memset(e[i].cid, 0, sizeof(e[i].cid));
        e[i].cid[0] = (uint8_t)(i % 4);
        memcpy(e[i].cid + 1, &i, sizeof(i));
        cr_assert_eq(pskgw_cid_table_insert(&t, &e[i]), 0);
    }
    cr_assert_eq(t.n, 1000);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(pskgw_cid_table_find(&t, e[i].cid, 8), &e[i]);
    /* Same bytes, other length: another CID. */
    cr_assert_null(pskgw_cid_table_find(&t, e[5].cid, 7));
    {
        pskgw_cid_entry_t dup = e[10];

        dup.linked = false;
        dup.next = NULL;
        cr_assert_eq(pskgw_cid_table_insert(&t, &dup), PSKGW_EEXISTS);
    }
    cr_assert_eq(pskgw_cid_table_insert(&t, &e[3]), PSKGW_EINVAL); /* linked already */
    for (int i = 0; i < 1000; i += 2)
        pskgw_cid_table_remove(&t, &e[i]);
    pskgw_cid_table_remove(&t, &e[0]); /* idempotent */
    cr_assert_eq(t.n, 500);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(pskgw_cid_table_find(&t, e[i].cid, 8), i % 2 ? &e[i] : NULL);
    pskgw_cid_table_deinit(&t);
}
