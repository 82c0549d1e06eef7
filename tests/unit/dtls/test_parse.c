/* dtls/parse.h: record/handshake headers, ClientHello fields, CKE identity reassembly. */
#include "dtls/parse.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

static size_t rec(uint8_t *out, uint8_t type, uint16_t epoch, uint64_t seq, const uint8_t *frag,
                  size_t n)
{
    out[0] = type;
    out[1] = 0xFE;
    out[2] = 0xFD;
    out[3] = (uint8_t)(epoch >> 8);
    out[4] = (uint8_t)epoch;
    for (int i = 0; i < 6; i++)
        out[5 + i] = (uint8_t)(seq >> (8 * (5 - i)));
    out[11] = (uint8_t)(n >> 8);
    out[12] = (uint8_t)n;
    memcpy(out + 13, frag, n);
    return 13 + n;
}

static size_t hs(uint8_t *out, uint8_t type, uint32_t total, uint16_t mseq, uint32_t off,
                 const uint8_t *body, size_t n)
{
    out[0] = type;
    out[1] = (uint8_t)(total >> 16);
    out[2] = (uint8_t)(total >> 8);
    out[3] = (uint8_t)total;
    out[4] = (uint8_t)(mseq >> 8);
    out[5] = (uint8_t)mseq;
    out[6] = (uint8_t)(off >> 16);
    out[7] = (uint8_t)(off >> 8);
    out[8] = (uint8_t)off;
    out[9] = (uint8_t)(n >> 16);
    out[10] = (uint8_t)(n >> 8);
    out[11] = (uint8_t)n;
    memcpy(out + 12, body, n);
    return 12 + n;
}

static size_t cke_body(uint8_t *out, const char *id)
{
    size_t n = strlen(id);

    out[0] = (uint8_t)(n >> 8);
    out[1] = (uint8_t)n;
    memcpy(out + 2, id, n);
    return n + 2;
}

Test(parse, record_header)
{
    uint8_t buf[64];
    uint8_t frag[3] = { 1, 2, 3 };
    pskgw_dtls_record_t r;
    size_t used = 0;
    size_t n = rec(buf, 22, 1, 0x010203040506ULL, frag, 3);

    cr_assert_eq(pskgw_dtls_record_parse(buf, n, &r, &used), 0);
    cr_assert_eq(r.type, 22);
    cr_assert_eq(r.epoch, 1);
    cr_assert_eq(r.seq, 0x010203040506ULL);
    cr_assert_eq(r.length, 3);
    cr_assert_eq(used, 16);
    cr_assert_eq(pskgw_dtls_record_parse(buf, n - 1, &r, &used), PSKGW_EPARSE, "truncated");
    cr_assert_eq(pskgw_dtls_record_parse(buf, 12, &r, &used), PSKGW_EPARSE);
    buf[1] = 3;
    cr_assert_eq(pskgw_dtls_record_parse(buf, n, &r, &used), PSKGW_EPARSE, "not DTLS");
}

Test(parse, tls_record_needs_more)
{
    uint8_t buf[] = { 22, 3, 3, 0, 4, 1, 2 };
    pskgw_dtls_record_t r;
    size_t used = 0;

    cr_assert_eq(pskgw_tls_record_parse(buf, 3, &r, &used), PSKGW_EAGAIN);
    cr_assert_eq(pskgw_tls_record_parse(buf, sizeof(buf), &r, &used), PSKGW_EAGAIN);
    buf[3] = 0x50;
    cr_assert_eq(pskgw_tls_record_parse(buf, sizeof(buf), &r, &used), PSKGW_ETOOBIG);
    buf[0] = 99;
    cr_assert_eq(pskgw_tls_record_parse(buf, sizeof(buf), &r, &used), PSKGW_EPARSE);
}

Test(parse, handshake_fragment_bounds)
{
    uint8_t buf[64];
    uint8_t body[4] = { 0 };
    pskgw_dtls_hs_t h;
    size_t used = 0;
    size_t n = hs(buf, 16, 10, 2, 8, body, 4); /* 8 + 4 > 10 */

    cr_assert_eq(pskgw_dtls_hs_parse(buf, n, &h, &used), PSKGW_EPARSE);
    n = hs(buf, 16, 12, 2, 8, body, 4);
    cr_assert_eq(pskgw_dtls_hs_parse(buf, n, &h, &used), 0);
    cr_assert_eq(h.message_seq, 2);
    cr_assert_eq(pskgw_dtls_hs_parse(buf, n - 1, &h, &used), PSKGW_EPARSE);
}

Test(parse, client_hello_fields)
{
    uint8_t body[128];
    uint8_t h[160];
    uint8_t d[200];
    size_t n = 0;
    pskgw_dtls_client_hello_t ch;
    uint64_t rseq = 0;
    uint16_t mseq = 0;

    body[n++] = 0xFE;
    body[n++] = 0xFD;
    memset(body + n, 7, 32);
    n += 32;
    body[n++] = 0; /* session id */
    body[n++] = 3; /* cookie */
    body[n++] = 'a';
    body[n++] = 'b';
    body[n++] = 'c';
    body[n++] = 0;
    body[n++] = 2;
    body[n++] = 0xC0;
    body[n++] = 0xA8;
    body[n++] = 1;
    body[n++] = 0;
    size_t hn = hs(h, 1, (uint32_t)n, 1, 0, body, n);
    size_t dn = rec(d, 22, 0, 5, h, hn);

    cr_assert_eq(pskgw_dtls_find_client_hello(d, dn, &rseq, &mseq, &ch), 0);
    cr_assert_eq(rseq, 5);
    cr_assert_eq(mseq, 1);
    cr_assert_eq(ch.cookie_len, 3);
    cr_assert_eq(memcmp(ch.cookie, "abc", 3), 0);
    cr_assert_eq(ch.suites_len, 2);
    cr_assert_eq(pskgw_dtls_client_hello_parse(body, n - 1, &ch), PSKGW_EPARSE);
    /* fragmented ClientHello: refused (stateless path never reassembles) */
    hn = hs(h, 1, (uint32_t)n + 5, 1, 0, body, n);
    dn = rec(d, 22, 0, 5, h, hn);
    cr_assert_eq(pskgw_dtls_find_client_hello(d, dn, &rseq, &mseq, &ch), PSKGW_EPARSE);
}

Test(parse, identity_normalize)
{
    char out[PSKGW_IDENTITY_HEX_CAP];
    const uint8_t raw[] = { 0x11, 0x01, 0x00, 0x08, 0xAB };

    /* ASCII hex: exactly as the device sent it, case kept (issue 10 §2) */
    cr_assert_eq(
        pskgw_identity_normalize((const uint8_t *)"11010008002f33244b", 18, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "11010008002f33244b");
    cr_assert_eq(
        pskgw_identity_normalize((const uint8_t *)"11010008002F33244b", 18, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "11010008002F33244b");
    cr_assert_eq(
        pskgw_identity_normalize((const uint8_t *)"11010008002F33244B", 18, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "11010008002F33244B");
    cr_assert_eq(pskgw_identity_normalize(raw, sizeof(raw), out, sizeof(out)), 0);
    cr_assert_str_eq(out, "11010008AB"); /* raw bytes: upper case, as the module prints them */
    {
        const uint8_t lower_raw[] = { 0xab, 0xcd, 0x0e };
        cr_assert_eq(pskgw_identity_normalize(lower_raw, sizeof(lower_raw), out, sizeof(out)), 0);
        cr_assert_str_eq(out, "ABCD0E");
    }
    cr_assert_eq(pskgw_identity_normalize((const uint8_t *)"xyz", 3, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "78797A");
    cr_assert_eq(pskgw_identity_normalize(raw, sizeof(raw), out, 10), PSKGW_ETOOBIG);
}

Test(parse, cke_whole_and_oversize)
{
    uint8_t body[300];
    uint8_t h[320];
    uint8_t d[340];
    char big[200];
    pskgw_cke_asm_t a;
    const uint8_t *id = NULL;
    size_t idn = 0;
    bool has = false;
    bool start = false;
    size_t bn = cke_body(body, "11010008002F33244B115B0AEEB9");
    size_t dn = rec(d, 22, 0, 3, h, hs(h, 16, (uint32_t)bn, 2, 0, body, bn));

    pskgw_cke_asm_init(&a);
    cr_assert_eq(pskgw_cke_asm_feed(&a, d, dn, 128, &id, &idn, &has, &start), 1);
    cr_assert(has && start);
    cr_assert_eq(idn, 28);
    cr_assert_eq(memcmp(id, "11010008002F33244B115B0AEEB9", 28), 0);
    /* bound: limit 16 */
    pskgw_cke_asm_init(&a);
    cr_assert_eq(pskgw_cke_asm_feed(&a, d, dn, 16, &id, &idn, &has, &start), PSKGW_ETOOBIG);
    /* beyond 128 is always too big */
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    bn = cke_body(body, big);
    dn = rec(d, 22, 0, 3, h, hs(h, 16, (uint32_t)bn, 2, 0, body, bn));
    pskgw_cke_asm_init(&a);
    cr_assert_eq(pskgw_cke_asm_feed(&a, d, dn, 128, &id, &idn, &has, &start), PSKGW_ETOOBIG);
    cr_assert_eq(pskgw_cke_identity(body, bn, 128, &id, &idn), PSKGW_ETOOBIG);
    /* an epoch-1 record is not read */
    bn = cke_body(body, "AB");
    dn = rec(d, 22, 1, 3, h, hs(h, 16, (uint32_t)bn, 2, 0, body, bn));
    pskgw_cke_asm_init(&a);
    cr_assert_eq(pskgw_cke_asm_feed(&a, d, dn, 128, &id, &idn, &has, &start), 0);
    cr_assert(!has);
}

Test(parse, cke_reassembled_from_fragments_out_of_order)
{
    uint8_t body[64];
    uint8_t h[96];
    uint8_t d1[128];
    uint8_t d2[128];
    pskgw_cke_asm_t a;
    const uint8_t *id = NULL;
    size_t idn = 0;
    bool has = false;
    bool start = false;
    size_t bn = cke_body(body, "11010008002F33244B115B0AEEB9");
    size_t n1 = rec(d1, 22, 0, 3, h, hs(h, 16, (uint32_t)bn, 2, 0, body, 10));
    size_t n2 = rec(d2, 22, 0, 4, h, hs(h, 16, (uint32_t)bn, 2, 10, body + 10, bn - 10));

    pskgw_cke_asm_init(&a);
    cr_assert_eq(pskgw_cke_asm_feed(&a, d2, n2, 128, &id, &idn, &has, &start), 0);
    cr_assert(has && !start);
    cr_assert_eq(pskgw_cke_asm_feed(&a, d1, n1, 128, &id, &idn, &has, &start), 1);
    cr_assert(start);
    cr_assert_eq(idn, 28);
    cr_assert_eq(memcmp(id, "11010008002F33244B115B0AEEB9", 28), 0);
}

Test(parse, cke_garbage_and_truncated)
{
    uint8_t d[64];
    pskgw_cke_asm_t a;
    const uint8_t *id = NULL;
    size_t idn = 0;
    uint8_t junk[5] = { 16, 0, 0, 9, 0 }; /* handshake header cut short */

    pskgw_cke_asm_init(&a);
    size_t n = rec(d, 22, 0, 1, junk, sizeof(junk));
    cr_assert_eq(pskgw_cke_asm_feed(&a, d, n, 128, &id, &idn, NULL, NULL), PSKGW_EPARSE);
    cr_assert_eq(pskgw_cke_asm_feed(&a, (const uint8_t *)"garbage", 7, 128, &id, &idn, NULL, NULL),
                 0);
    /* a zero-length identity is malformed */
    uint8_t body[2] = { 0, 0 };
    cr_assert_eq(pskgw_cke_identity(body, 2, 128, &id, &idn), PSKGW_EPARSE);
}

Test(parse, tls_stream_cke_across_records)
{
    /* CKE (type 16, len 2+4) split over two handshake records, then CCS. */
    const uint8_t s[] = { 22, 3, 3, 0, 3, 16, 0, 0,                     /* hs header part */
                          22, 3, 3, 0, 7, 6,  0, 4, 'a', 'b', 'c', 'd', /* rest */
                          20, 3, 3, 0, 1, 1 };
    uint8_t scratch[256];
    const uint8_t *id = NULL;
    size_t idn = 0;

    cr_assert_eq(pskgw_tls_find_cke_identity(s, 10, 128, scratch, sizeof(scratch), &id, &idn), 0,
                 "incomplete");
    cr_assert_eq(
        pskgw_tls_find_cke_identity(s, sizeof(s), 128, scratch, sizeof(scratch), &id, &idn), 1);
    cr_assert_eq(idn, 4);
    cr_assert_eq(memcmp(id, "abcd", 4), 0);
    /* a CCS before any CKE */
    const uint8_t t[] = { 20, 3, 3, 0, 1, 1 };
    cr_assert_eq(
        pskgw_tls_find_cke_identity(t, sizeof(t), 128, scratch, sizeof(scratch), &id, &idn),
        PSKGW_EPARSE);
}
