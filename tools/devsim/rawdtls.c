/* pskgw-devsim: hand-made DTLS 1.2 handshake datagrams (see rawdtls.h). */
#include "tools/devsim/rawdtls.h"

#include <string.h>

#include "common/err.h"

#define REC_HDR     13 /* type, version (2), epoch (2), sequence (6), length (2) */
#define HS_HDR      12 /* type, length (3), message_seq (2), fragment offset (3) and length (3) */
#define CT_ALERT    21
#define CT_HS       22
#define HS_CH       1
#define HS_SH       2
#define HS_HVR      3
#define HS_SHD      14
#define HS_CKE      16
#define ALERT_FATAL 2

static const uint8_t suites[] = { 0xC0, 0xA8, 0x00, 0xA8, 0x00, 0xAE, 0x00, 0x8C };
/* extended_master_secret (empty), renegotiation_info (empty renegotiated_connection) */
static const uint8_t exts[] = { 0x00, 0x17, 0x00, 0x00, 0xFF, 0x01, 0x00, 0x01, 0x00 };

static void put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put24(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

static size_t get16(const uint8_t *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

static size_t get24(const uint8_t *p)
{
    return ((size_t)p[0] << 16) | ((size_t)p[1] << 8) | p[2];
}

/* Record and handshake headers around a body of body_len bytes already at out + 25. */
static void wrap(uint8_t hs_type, size_t body_len, uint64_t record_seq, uint16_t message_seq,
                 uint8_t *out)
{
    out[0] = CT_HS;
    out[1] = 0xFE; /* DTLS 1.2 */
    out[2] = 0xFD;
    out[3] = out[4] = 0; /* epoch 0 */
    for (int i = 0; i < 6; i++)
        out[5 + i] = (uint8_t)(record_seq >> (8 * (5 - i)));
    put16(out + 11, HS_HDR + body_len);
    uint8_t *h = out + REC_HDR;
    h[0] = hs_type;
    put24(h + 1, body_len);
    put16(h + 4, message_seq);
    put24(h + 6, 0);
    put24(h + 9, body_len);
}

int pskgw_devsim_raw_client_hello(const uint8_t random[PSKGW_DEVSIM_RAW_RANDOM_LEN],
                                  const uint8_t *cookie, size_t cookie_len, uint64_t record_seq,
                                  uint16_t message_seq, uint8_t *out, size_t cap, size_t *out_len)
{
    if (random == NULL || out == NULL || out_len == NULL || (cookie == NULL && cookie_len > 0) ||
        cookie_len > PSKGW_DEVSIM_RAW_COOKIE_MAX)
        return PSKGW_EINVAL;
    size_t body = 2 + PSKGW_DEVSIM_RAW_RANDOM_LEN + 1 + 1 + cookie_len + 2 + sizeof(suites) + 2 +
                  2 + sizeof(exts);
    if (REC_HDR + HS_HDR + body > cap)
        return PSKGW_ETOOBIG;
    uint8_t *p = out + REC_HDR + HS_HDR;
    *p++ = 0xFE;
    *p++ = 0xFD;
    memcpy(p, random, PSKGW_DEVSIM_RAW_RANDOM_LEN);
    p += PSKGW_DEVSIM_RAW_RANDOM_LEN;
    *p++ = 0; /* no session id */
    *p++ = (uint8_t)cookie_len;
    if (cookie_len > 0)
        memcpy(p, cookie, cookie_len);
    p += cookie_len;
    put16(p, sizeof(suites));
    memcpy(p + 2, suites, sizeof(suites));
    p += 2 + sizeof(suites);
    *p++ = 1; /* one compression method: null */
    *p++ = 0;
    put16(p, sizeof(exts));
    memcpy(p + 2, exts, sizeof(exts));
    wrap(HS_CH, body, record_seq, message_seq, out);
    *out_len = REC_HDR + HS_HDR + body;
    return 0;
}

int pskgw_devsim_raw_client_key_exchange(const uint8_t *identity, size_t identity_len,
                                         uint64_t record_seq, uint16_t message_seq, uint8_t *out,
                                         size_t cap, size_t *out_len)
{
    if (identity == NULL || out == NULL || out_len == NULL || identity_len == 0 ||
        identity_len > PSKGW_DEVSIM_RAW_IDENTITY_MAX)
        return PSKGW_EINVAL;
    size_t body = 2 + identity_len;
    if (REC_HDR + HS_HDR + body > cap)
        return PSKGW_ETOOBIG;
    uint8_t *p = out + REC_HDR + HS_HDR;
    put16(p, identity_len);
    memcpy(p + 2, identity, identity_len);
    wrap(HS_CKE, body, record_seq, message_seq, out);
    *out_len = REC_HDR + HS_HDR + body;
    return 0;
}

/* One epoch-0 handshake message (possibly a fragment: only whole HVRs are read for a cookie). */
static void read_handshake(const uint8_t *h, size_t len, pskgw_devsim_raw_answer_t *ans)
{
    if (len < HS_HDR)
        return;
    size_t frag_off = get24(h + 6), frag_len = get24(h + 9);
    switch (h[0]) {
    case HS_SH:
        ans->server_hello = true;
        break;
    case HS_SHD:
        ans->server_hello_done = true;
        break;
    case HS_HVR:
        if (frag_off != 0 || frag_len + HS_HDR > len || frag_len < 3 ||
            (size_t)h[HS_HDR + 2] + 3 > frag_len)
            return;
        ans->hello_verify = true;
        ans->cookie_len = h[HS_HDR + 2];
        memcpy(ans->cookie, h + HS_HDR + 3, ans->cookie_len);
        break;
    default:
        break;
    }
}

void pskgw_devsim_raw_read_answer(const uint8_t *data, size_t len, pskgw_devsim_raw_answer_t *ans)
{
    memset(ans, 0, sizeof(*ans));
    if (data == NULL)
        return;
    size_t off = 0;
    while (off + REC_HDR <= len) {
        const uint8_t *r = data + off;
        size_t rlen = get16(r + 11);
        if (off + REC_HDR + rlen > len)
            return;
        const uint8_t *body = r + REC_HDR;
        bool epoch0 = r[3] == 0 && r[4] == 0;
        if (!epoch0)
            ans->encrypted = true;
        else if (r[0] == CT_HS)
            read_handshake(body, rlen, ans);
        else if (r[0] == CT_ALERT && rlen >= 2 && body[0] == ALERT_FATAL) {
            ans->alert = true;
            ans->alert_desc = body[1];
        }
        off += REC_HDR + rlen;
    }
}

bool pskgw_devsim_raw_is_hello_with_cookie(const uint8_t *data, size_t len)
{
    /* record header, handshake header, version (2), random (32), session id (1 + n), cookie */
    if (data == NULL || len < REC_HDR + HS_HDR + 2 + 32 + 2 || data[0] != CT_HS || data[3] != 0 ||
        data[4] != 0 || data[REC_HDR] != HS_CH)
        return false;
    size_t rlen = get16(data + 11);
    if (REC_HDR + rlen > len)
        return false;
    size_t at = REC_HDR + HS_HDR + 2 + 32;
    size_t sid = data[at];
    at += 1 + sid;
    return at < REC_HDR + rlen && data[at] > 0;
}

void pskgw_devsim_raw_module_identity(const uint8_t entropy[12], char out[29])
{
    static const char hex[] = "0123456789ABCDEF";
    memcpy(out, "1101", 4);
    for (int i = 0; i < 12; i++) {
        out[4 + 2 * i] = hex[entropy[i] >> 4];
        out[5 + 2 * i] = hex[entropy[i] & 15];
    }
    out[28] = '\0';
}
