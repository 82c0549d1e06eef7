#include "common/codec.h"
#include "common/err.h"

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

int pskgw_hex_encode(const uint8_t *in, size_t n, char *out, size_t out_cap, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

    if (out_cap < pskgw_hex_encoded_len(n))
        return PSKGW_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
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

int pskgw_b64_encode(const uint8_t *in, size_t n, char *out, size_t out_cap)
{
    size_t o = 0;
    size_t i = 0;

    if (out_cap < pskgw_b64_encoded_len(n))
        return PSKGW_ETOOBIG;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_std[v >> 18 & 63];
        out[o++] = b64_std[v >> 12 & 63];
        out[o++] = b64_std[v >> 6 & 63];
        out[o++] = b64_std[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = b64_std[v >> 18 & 63];
        out[o++] = b64_std[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64_std[v >> 6 & 63] : '=';
        out[o++] = '=';
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
