#include "e2e/header.h"

#include "common/codec.h"
#include "common/err.h"

#include <string.h>

/* The E2E layouts, one row per version (= first nibble). Change a row, and only the row, when a
 * real sample proves the layout wrong.
 *
 * V1: 16-byte KI, then the ciphertext, then the tag. Proven by the seed ("HELLO", 5 bytes, gives
 *     37 = 16 + 5 + 16) and ubxlib's README (44 bytes give 76).
 * V2: 11-byte KI. u-blox's own tests assert 28 bytes of overhead on live modules
 *     (U_SECURITY_E2E_V2_HEADER_LENGTH_BYTES = 28), which 11 (KI) + 16 (tag) does not fill: one byte
 *     is unexplained in public material. We keep the seed's layout (no extra byte), as the spec
 *     says; if a real V2 sample shows e.g. a one-byte field after the KI, set extra_len to 1 here.
 *     The default tag length 16 is what that 28-byte figure implies; the decryptor ignores it and
 *     takes MACLength from the parameters anyway.
 */
static const pskgw_e2e_layout_t layouts[] = {
    /* version, ki_len, default_tag_len, extra_len */
    { 1, 16, 16, 0 },
    { 2, 11, 16, 0 },
};

const pskgw_e2e_layout_t *pskgw_e2e_layout(int version)
{
    for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        if (layouts[i].version == version)
            return &layouts[i];
    }
    return NULL;
}

int pskgw_e2e_header_parse(const uint8_t *p, size_t len, pskgw_e2e_header_t *out)
{
    const pskgw_e2e_layout_t *lay;
    pskgw_e2e_header_t h;

    if (!out || (!p && len > 0))
        return PSKGW_EINVAL;
    if (len == 0)
        return PSKGW_EPROTO;
    lay = pskgw_e2e_layout(p[0] >> 4);
    if (!lay)
        return PSKGW_EPROTO;
    /* Sizes in the table are small constants: no overflow in the sum. */
    if (len < lay->ki_len + lay->extra_len + PSKGW_E2E_TAG_MIN_LEN)
        return PSKGW_EPARSE;

    memset(&h, 0, sizeof(h));
    h.version = lay->version;
    h.ki_len = lay->ki_len;
    memcpy(h.ki, p, lay->ki_len);
    if (pskgw_hex_encode(h.ki, h.ki_len, h.ki_hex, sizeof(h.ki_hex), false) != 0)
        return PSKGW_EINVAL; /* cannot happen: the buffer is sized for the longest KI */
    h.extra_off = lay->ki_len;
    h.extra_len = lay->extra_len;
    h.body_off = lay->ki_len + lay->extra_len;
    h.body_len = len - h.body_off;
    h.default_tag_len = lay->default_tag_len;
    *out = h;
    return 0;
}

int pskgw_e2e_header_split(const pskgw_e2e_header_t *h, unsigned mac_bits, size_t *ct_off,
                           size_t *ct_len, size_t *tag_off)
{
    size_t tag_len;

    if (!h || !ct_off || !ct_len || !tag_off || (mac_bits != 64 && mac_bits != 128))
        return PSKGW_EINVAL;
    tag_len = mac_bits / 8;
    if (h->body_len < tag_len)
        return PSKGW_EPARSE;
    *ct_off = h->body_off;
    *ct_len = h->body_len - tag_len;
    *tag_off = h->body_off + *ct_len;
    return 0;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pskgw_e2e_ki_from_hex(const char *hex, size_t len, uint8_t *ki, size_t cap, size_t *ki_len,
                          int *version)
{
    const pskgw_e2e_layout_t *lay;
    uint8_t buf[PSKGW_E2E_KI_MAX_LEN];
    size_t n = 0;
    int nib;

    if (!hex || !ki)
        return PSKGW_EINVAL;
    if (len == 0)
        return PSKGW_EPARSE;
    nib = hex_nibble(hex[0]);
    if (nib < 0)
        return PSKGW_EPARSE;
    lay = pskgw_e2e_layout(nib);
    if (!lay)
        return PSKGW_EPROTO;
    if (len != 2 * lay->ki_len)
        return PSKGW_EPARSE;
    if (pskgw_hex_decode(hex, len, buf, sizeof(buf), &n) != 0 || n != lay->ki_len)
        return PSKGW_EPARSE;
    if (cap < n)
        return PSKGW_ETOOBIG;
    memcpy(ki, buf, n);
    if (ki_len)
        *ki_len = n;
    if (version)
        *version = lay->version;
    return 0;
}
