/* Pure (D)TLS pre-parsers: see parse.h. */
#include "dtls/parse.h"

#include "common/err.h"

#include <string.h>

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd24(const uint8_t *p)
{
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

int pskgw_dtls_record_parse(const uint8_t *buf, size_t len, pskgw_dtls_record_t *rec,
                            size_t *consumed)
{
    pskgw_dtls_record_t r;

    if (buf == NULL || len < PSKGW_DTLS_RECORD_HEADER_LEN)
        return PSKGW_EPARSE;
    r.type = buf[0];
    r.version = rd16(buf + 1);
    if (buf[1] != 0xFE)
        return PSKGW_EPARSE;
    r.epoch = rd16(buf + 3);
    r.seq = 0;
    for (int i = 0; i < 6; i++)
        r.seq = (r.seq << 8) | buf[5 + i];
    r.length = rd16(buf + 11);
    if ((size_t)r.length > len - PSKGW_DTLS_RECORD_HEADER_LEN)
        return PSKGW_EPARSE;
    r.fragment = buf + PSKGW_DTLS_RECORD_HEADER_LEN;
    *rec = r;
    *consumed = PSKGW_DTLS_RECORD_HEADER_LEN + (size_t)r.length;
    return 0;
}

int pskgw_tls_record_parse(const uint8_t *buf, size_t len, pskgw_dtls_record_t *rec,
                           size_t *consumed)
{
    pskgw_dtls_record_t r;

    if (buf == NULL || len < PSKGW_TLS_RECORD_HEADER_LEN)
        return PSKGW_EAGAIN;
    if (buf[1] != 3 || buf[0] < PSKGW_CT_CHANGE_CIPHER_SPEC || buf[0] > PSKGW_CT_APPLICATION_DATA)
        return PSKGW_EPARSE;
    r.type = buf[0];
    r.version = rd16(buf + 1);
    r.epoch = 0;
    r.seq = 0;
    r.length = rd16(buf + 3);
    if (r.length > 16384 + 2048)
        return PSKGW_ETOOBIG;
    if ((size_t)r.length > len - PSKGW_TLS_RECORD_HEADER_LEN)
        return PSKGW_EAGAIN;
    r.fragment = buf + PSKGW_TLS_RECORD_HEADER_LEN;
    *rec = r;
    *consumed = PSKGW_TLS_RECORD_HEADER_LEN + (size_t)r.length;
    return 0;
}

int pskgw_dtls_hs_parse(const uint8_t *buf, size_t len, pskgw_dtls_hs_t *hs, size_t *consumed)
{
    pskgw_dtls_hs_t h;

    if (buf == NULL || len < PSKGW_DTLS_HS_HEADER_LEN)
        return PSKGW_EPARSE;
    h.msg_type = buf[0];
    h.length = rd24(buf + 1);
    h.message_seq = rd16(buf + 4);
    h.frag_offset = rd24(buf + 6);
    h.frag_length = rd24(buf + 9);
    if ((uint64_t)h.frag_offset + h.frag_length > h.length)
        return PSKGW_EPARSE;
    if ((size_t)h.frag_length > len - PSKGW_DTLS_HS_HEADER_LEN)
        return PSKGW_EPARSE;
    h.body = buf + PSKGW_DTLS_HS_HEADER_LEN;
    *hs = h;
    *consumed = PSKGW_DTLS_HS_HEADER_LEN + (size_t)h.frag_length;
    return 0;
}

/* Reads an 8- or 16-bit length-prefixed vector at *off. */
static int read_vec(const uint8_t *b, size_t len, size_t *off, int width, const uint8_t **v,
                    size_t *vlen)
{
    size_t n;

    if (len - *off < (size_t)width)
        return PSKGW_EPARSE;
    n = width == 1 ? b[*off] : rd16(b + *off);
    *off += (size_t)width;
    if (len - *off < n)
        return PSKGW_EPARSE;
    *v = b + *off;
    *vlen = n;
    *off += n;
    return 0;
}

int pskgw_dtls_client_hello_parse(const uint8_t *body, size_t len, pskgw_dtls_client_hello_t *ch)
{
    pskgw_dtls_client_hello_t c;
    size_t off = 0;

    if (body == NULL || len < 2 + 32)
        return PSKGW_EPARSE;
    c.version = body;
    c.random = body + 2;
    off = 34;
    if (read_vec(body, len, &off, 1, &c.session_id, &c.session_id_len) < 0 || c.session_id_len > 32)
        return PSKGW_EPARSE;
    if (read_vec(body, len, &off, 1, &c.cookie, &c.cookie_len) < 0 || c.cookie_len > 255)
        return PSKGW_EPARSE;
    if (read_vec(body, len, &off, 2, &c.suites, &c.suites_len) < 0 || c.suites_len < 2 ||
        (c.suites_len & 1) != 0)
        return PSKGW_EPARSE;
    if (read_vec(body, len, &off, 1, &c.compression, &c.compression_len) < 0 ||
        c.compression_len < 1)
        return PSKGW_EPARSE;
    /* Extensions (optional) are not covered by the cookie; only check they fit. */
    if (off < len) {
        const uint8_t *ext = NULL;
        size_t ext_len = 0;

        if (read_vec(body, len, &off, 2, &ext, &ext_len) < 0)
            return PSKGW_EPARSE;
    }
    *ch = c;
    return 0;
}

int pskgw_dtls_find_client_hello(const uint8_t *dgram, size_t len, uint64_t *record_seq,
                                 uint16_t *message_seq, pskgw_dtls_client_hello_t *ch)
{
    pskgw_dtls_record_t rec;
    pskgw_dtls_hs_t hs;
    size_t used = 0;
    int rc;

    rc = pskgw_dtls_record_parse(dgram, len, &rec, &used);
    if (rc < 0)
        return rc;
    if (rec.type != PSKGW_CT_HANDSHAKE || rec.epoch != 0)
        return PSKGW_EPARSE;
    rc = pskgw_dtls_hs_parse(rec.fragment, rec.length, &hs, &used);
    if (rc < 0)
        return rc;
    if (hs.msg_type != PSKGW_HS_CLIENT_HELLO || hs.frag_offset != 0 || hs.frag_length != hs.length)
        return PSKGW_EPARSE;
    rc = pskgw_dtls_client_hello_parse(hs.body, hs.length, ch);
    if (rc < 0)
        return rc;
    *record_seq = rec.seq;
    *message_seq = hs.message_seq;
    return 0;
}

int pskgw_cke_identity(const uint8_t *body, size_t len, size_t max_len, const uint8_t **ident,
                       size_t *ident_len)
{
    size_t n;

    if (body == NULL || len < 2)
        return PSKGW_EPARSE;
    n = rd16(body);
    if (n == 0 || n > len - 2)
        return PSKGW_EPARSE;
    if (n > max_len || n > PSKGW_IDENTITY_MAX_RAW)
        return PSKGW_ETOOBIG;
    *ident = body + 2;
    *ident_len = n;
    return 0;
}

static bool is_hex_digit(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int pskgw_identity_normalize(const uint8_t *ident, size_t len, char *out, size_t cap)
{
    static const char digits[] = "0123456789ABCDEF";
    bool ascii_hex = len > 0;

    if (ident == NULL || out == NULL || len == 0)
        return PSKGW_EINVAL;
    for (size_t i = 0; i < len && ascii_hex; i++)
        ascii_hex = is_hex_digit(ident[i]);
    if (ascii_hex) {
        /* As the device sent it, case kept: the service may know the identity only in the
         * form the module printed and the device was configured with. */
        if (cap < len + 1)
            return PSKGW_ETOOBIG;
        memcpy(out, ident, len);
        out[len] = '\0';
        return 0;
    }
    if (cap < 2 * len + 1)
        return PSKGW_ETOOBIG;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[ident[i] >> 4];
        out[2 * i + 1] = digits[ident[i] & 15];
    }
    out[2 * len] = '\0';
    return 0;
}

void pskgw_cke_asm_init(pskgw_cke_asm_t *a)
{
    memset(a, 0, sizeof(*a));
}

static bool asm_have_range(const pskgw_cke_asm_t *a, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if ((a->have[i / 8] & (1u << (i % 8))) == 0)
            return false;
    }
    return true;
}

/* 1 when the identity is complete in the buffer. */
static int asm_try(const pskgw_cke_asm_t *a, size_t max_len, const uint8_t **ident,
                   size_t *ident_len)
{
    size_t n;
    size_t avail = a->length < PSKGW_CKE_ASM_MAX ? a->length : PSKGW_CKE_ASM_MAX;

    if (avail < 2 || !asm_have_range(a, 0, 2))
        return 0;
    n = rd16(a->buf);
    if (n == 0 || n > a->length - 2)
        return PSKGW_EPARSE;
    if (n > max_len || n > PSKGW_IDENTITY_MAX_RAW)
        return PSKGW_ETOOBIG;
    if (!asm_have_range(a, 2, 2 + n))
        return 0;
    *ident = a->buf + 2;
    *ident_len = n;
    return 1;
}

int pskgw_cke_asm_feed(pskgw_cke_asm_t *a, const uint8_t *dgram, size_t len, size_t max_len,
                       const uint8_t **ident, size_t *ident_len, bool *has_cke, bool *cke_start)
{
    size_t off = 0;
    bool saw = false;
    bool start = false;
    int result = 0;

    while (off < len) {
        pskgw_dtls_record_t rec;
        size_t used = 0;
        size_t hoff = 0;

        if (pskgw_dtls_record_parse(dgram + off, len - off, &rec, &used) < 0)
            break; /* trailing garbage: wolfSSL will judge the records it can read */
        off += used;
        if (rec.type != PSKGW_CT_HANDSHAKE || rec.epoch != 0)
            continue;
        while (hoff < rec.length) {
            pskgw_dtls_hs_t hs;
            size_t hused = 0;

            if (pskgw_dtls_hs_parse(rec.fragment + hoff, rec.length - hoff, &hs, &hused) < 0)
                return PSKGW_EPARSE;
            hoff += hused;
            if (hs.msg_type != PSKGW_HS_CLIENT_KEY_EXCHANGE)
                continue;
            saw = true;
            if (hs.frag_offset == 0)
                start = true;
            if (!a->active || a->message_seq != hs.message_seq || a->length != hs.length) {
                memset(a, 0, sizeof(*a));
                a->active = true;
                a->message_seq = hs.message_seq;
                a->length = hs.length;
            }
            for (uint32_t i = 0; i < hs.frag_length; i++) {
                size_t pos = (size_t)hs.frag_offset + i;

                if (pos >= PSKGW_CKE_ASM_MAX)
                    break;
                a->buf[pos] = hs.body[i];
                a->have[pos / 8] |= (uint8_t)(1u << (pos % 8));
            }
        }
    }
    if (has_cke != NULL)
        *has_cke = saw;
    if (cke_start != NULL)
        *cke_start = start;
    if (saw)
        result = asm_try(a, max_len, ident, ident_len);
    return result;
}

int pskgw_tls_find_cke_identity(const uint8_t *stream, size_t len, size_t max_len, uint8_t *scratch,
                                size_t scratch_cap, const uint8_t **ident, size_t *ident_len)
{
    size_t off = 0;
    size_t hs_len = 0;
    size_t pos = 0;
    bool ended = false;

    /* Join the handshake records' fragments into scratch. */
    while (off < len) {
        pskgw_dtls_record_t rec;
        size_t used = 0;
        int rc = pskgw_tls_record_parse(stream + off, len - off, &rec, &used);

        if (rc == PSKGW_EAGAIN)
            break;
        if (rc < 0)
            return rc;
        off += used;
        if (rec.type != PSKGW_CT_HANDSHAKE) {
            ended = true; /* nothing after it is plaintext handshake */
            break;
        }
        if (rec.length > scratch_cap - hs_len)
            return PSKGW_ETOOBIG;
        memcpy(scratch + hs_len, rec.fragment, rec.length);
        hs_len += rec.length;
    }
    /* Walk the handshake messages. */
    while (hs_len - pos >= PSKGW_TLS_HS_HEADER_LEN) {
        uint8_t type = scratch[pos];
        size_t mlen = rd24(scratch + pos + 1);

        if (type == PSKGW_HS_CLIENT_KEY_EXCHANGE) {
            size_t have = hs_len - pos - PSKGW_TLS_HS_HEADER_LEN;
            const uint8_t *body = scratch + pos + PSKGW_TLS_HS_HEADER_LEN;
            size_t n;

            if (have < 2)
                break;
            n = rd16(body);
            if (mlen < 2 || n == 0 || n > mlen - 2)
                return PSKGW_EPARSE;
            if (n > max_len || n > PSKGW_IDENTITY_MAX_RAW)
                return PSKGW_ETOOBIG;
            if (have < 2 + n)
                break;
            *ident = body + 2;
            *ident_len = n;
            return 1;
        }
        if (mlen > hs_len - pos - PSKGW_TLS_HS_HEADER_LEN)
            break;
        pos += PSKGW_TLS_HS_HEADER_LEN + mlen;
    }
    if (ended)
        return PSKGW_EPARSE;
    return 0;
}
