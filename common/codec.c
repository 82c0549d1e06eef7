#define _DEFAULT_SOURCE /* be64toh */
#include "common/codec.h"
#include "common/err.h"

#include <endian.h>
#include <string.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Tables of digit pairs: one 2-byte copy per input byte (hex) or per 12 input bits (base64)
 * instead of two or four single-byte table lookups and stores. Built by the preprocessor so they
 * are constant data (no initialisation, no race). Pairs are char arrays, so the output does not
 * depend on the host's byte order. */
#define HEXC(j, a)   ((char)((j) < 10 ? '0' + (j) : (a) + (j)-10))
#define HEXP(i, a)   { HEXC((i) >> 4, a), HEXC((i)&15, a) },
#define HEXP4(i, a)  HEXP(i, a) HEXP((i) + 1, a) HEXP((i) + 2, a) HEXP((i) + 3, a)
#define HEXP16(i, a) HEXP4(i, a) HEXP4((i) + 4, a) HEXP4((i) + 8, a) HEXP4((i) + 12, a)
#define HEXP64(i, a) HEXP16(i, a) HEXP16((i) + 16, a) HEXP16((i) + 32, a) HEXP16((i) + 48, a)
#define HEXP256(a)   HEXP64(0, a) HEXP64(64, a) HEXP64(128, a) HEXP64(192, a)

static const char hex_pairs_lower[256][2] = { HEXP256('a') };
static const char hex_pairs_upper[256][2] = { HEXP256('A') };

int pskgw_hex_encode(const uint8_t *in, size_t n, char *out, size_t out_cap, bool upper)
{
    const char(*pairs)[2] = upper ? hex_pairs_upper : hex_pairs_lower;
    size_t i = 0;

    if (out_cap < pskgw_hex_encoded_len(n))
        return PSKGW_ETOOBIG;
    for (; i + 4 <= n; i += 4) {
        memcpy(out + 2 * i, pairs[in[i]], 2);
        memcpy(out + 2 * i + 2, pairs[in[i + 1]], 2);
        memcpy(out + 2 * i + 4, pairs[in[i + 2]], 2);
        memcpy(out + 2 * i + 6, pairs[in[i + 3]], 2);
    }
    for (; i < n; i++)
        memcpy(out + 2 * i, pairs[in[i]], 2);
    out[2 * n] = '\0';
    return 0;
}

bool pskgw_is_hex(const uint8_t *in, size_t len)
{
    if (len == 0 || len % 2)
        return false;
    for (size_t i = 0; i < len; i++)
        if (hexval(in[i]) < 0)
            return false;
    return true;
}

int pskgw_hex_decode(const char *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    if (len % 2)
        return PSKGW_EPARSE;
    if (!pskgw_is_hex((const uint8_t *)in, len) && len)
        return PSKGW_EPARSE;
    if (out_cap < len / 2)
        return PSKGW_ETOOBIG;
    for (size_t i = 0; i < len / 2; i++)
        out[i] = (uint8_t)(hexval(in[2 * i]) << 4 | hexval(in[2 * i + 1]));
    *out_len = len / 2;
    return 0;
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#define B64C(j)                        \
    ((char)((j) < 26    ? 'A' + (j)    \
            : (j) < 52  ? 'a' + (j)-26 \
            : (j) < 62  ? '0' + (j)-52 \
            : (j) == 62 ? '+'          \
                        : '/'))
#define B64P(i)     { B64C((i) >> 6), B64C((i)&63) },
#define B64P4(i)    B64P(i) B64P((i) + 1) B64P((i) + 2) B64P((i) + 3)
#define B64P16(i)   B64P4(i) B64P4((i) + 4) B64P4((i) + 8) B64P4((i) + 12)
#define B64P64(i)   B64P16(i) B64P16((i) + 16) B64P16((i) + 32) B64P16((i) + 48)
#define B64P256(i)  B64P64(i) B64P64((i) + 64) B64P64((i) + 128) B64P64((i) + 192)
#define B64P1024(i) B64P256(i) B64P256((i) + 256) B64P256((i) + 512) B64P256((i) + 768)

/* b64_pairs[v] = the two characters of the 12-bit value v (8 KiB). */
static const char b64_pairs[4096][2] = { B64P1024(0) B64P1024(1024) B64P1024(2048) B64P1024(3072) };

int pskgw_b64_encode(const uint8_t *in, size_t n, char *out, size_t out_cap)
{
    size_t o = 0;
    size_t i = 0;

    if (out_cap < pskgw_b64_encoded_len(n))
        return PSKGW_ETOOBIG;
    /* 6 input bytes (four 12-bit indexes) per turn, read with one 8-byte big-endian load while
     * 8 bytes are left to read, then 3 at a time. */
    for (; i + 8 <= n; i += 6, o += 8) {
        uint64_t x;

        memcpy(&x, in + i, 8);
        x = be64toh(x);
        memcpy(out + o, b64_pairs[x >> 52], 2);
        memcpy(out + o + 2, b64_pairs[x >> 40 & 4095], 2);
        memcpy(out + o + 4, b64_pairs[x >> 28 & 4095], 2);
        memcpy(out + o + 6, b64_pairs[x >> 16 & 4095], 2);
    }
    for (; i + 3 <= n; i += 3, o += 4) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        memcpy(out + o, b64_pairs[v >> 12], 2);
        memcpy(out + o + 2, b64_pairs[v & 4095], 2);
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        memcpy(out + o, b64_pairs[v >> 12], 2);
        out[o + 2] = i + 1 < n ? b64_std[v >> 6 & 63] : '=';
        out[o + 3] = '=';
        o += 4;
    }
    out[o] = '\0';
    return 0;
}

static int b64val(int c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

static int b64_decode(const char *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len,
                      bool url)
{
    size_t pad = 0;
    size_t data_len;
    size_t need;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;

    while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
        pad++;
    data_len = len - pad;
    if (!url && len % 4)
        return PSKGW_EPARSE;
    if (url && pad && len % 4)
        return PSKGW_EPARSE;
    if (data_len % 4 == 1)
        return PSKGW_EPARSE;
    need = data_len / 4 * 3 + (data_len % 4 ? data_len % 4 - 1 : 0);
    if (out_cap < need)
        return PSKGW_ETOOBIG;
    for (size_t i = 0; i < data_len; i++) {
        int v = b64val((unsigned char)in[i], url);
        if (v < 0)
            return PSKGW_EPARSE;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero (canonical encoding). */
    if (bits && (acc & ((1u << bits) - 1)))
        return PSKGW_EPARSE;
    *out_len = o;
    return 0;
}

int pskgw_b64_decode(const char *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    return b64_decode(in, len, out, out_cap, out_len, false);
}

int pskgw_b64url_decode(const char *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    return b64_decode(in, len, out, out_cap, out_len, true);
}
