#include "e2e/header.h"

#include "common/codec.h"
#include "common/err.h"

#include <string.h>

/* The E2E layouts: one row for version 1, one row per version 2 candidate (in the order of
 * pskgw_e2e_v2_layout_t). Change a row, and only the row, when a real sample proves it wrong.
 *
 * V1: 16-byte KI, then the ciphertext, then the tag. Proven by the seed ("HELLO", 5 bytes, gives
 *     37 = 16 + 5 + 16) and ubxlib's README (44 bytes give 76).
 * V2: 11-byte KI. u-blox's own tests assert 28 bytes of overhead on live modules
 *     (U_SECURITY_E2E_V2_HEADER_LENGTH_BYTES = 28), which 11 (KI) + 16 (tag) does not fill: one byte
 *     is unexplained in public material.
 *     seed: the seed's layout, no extra byte (the spec's default): 19 bytes with an 8-byte tag,
 *           27 with a 16-byte tag; never 28.
 *     pad1: one byte after the KI, skipped: 11 + 1 + 16 = 28 with AES_128_CCM. Which of the two
 *           a module produces is for a real V2 sample to say; a domain selects one.
 *     The tag length column is what each candidate implies; the decryptor ignores it and takes
 *     MACLength from the parameters anyway.
 */
static const pskgw_e2e_layout_t v1_layout = { "v1", 1, 16, 16, 0 };
static const pskgw_e2e_layout_t v2_layouts[PSKGW_E2E_V2_COUNT_] = {
    /* name, version, ki_len, default_tag_len, extra_len */
    [PSKGW_E2E_V2_SEED] = { "seed", 2, 11, 16, 0 },
    [PSKGW_E2E_V2_PAD1] = { "pad1", 2, 11, 16, 1 },
};

int pskgw_e2e_v2_layout_parse(const char *name, pskgw_e2e_v2_layout_t *out)
{
    if (!name || !out)
        return PSKGW_EINVAL;
    for (int i = 0; i < PSKGW_E2E_V2_COUNT_; i++) {
        if (strcmp(v2_layouts[i].name, name) == 0) {
            *out = (pskgw_e2e_v2_layout_t)i;
            return 0;
        }
    }
    return PSKGW_EINVAL;
}

const char *pskgw_e2e_v2_layout_name(pskgw_e2e_v2_layout_t v2)
{
    if ((int)v2 < 0 || v2 >= PSKGW_E2E_V2_COUNT_)
        return "unknown";
    return v2_layouts[v2].name;
}

const pskgw_e2e_layout_t *pskgw_e2e_layout_as(int version, pskgw_e2e_v2_layout_t v2)
{
    if (version == 1)
        return &v1_layout;
    if (version == 2 && (int)v2 >= 0 && v2 < PSKGW_E2E_V2_COUNT_)
        return &v2_layouts[v2];
    return NULL;
}

const pskgw_e2e_layout_t *pskgw_e2e_layout(int version)
{
    return pskgw_e2e_layout_as(version, PSKGW_E2E_V2_SEED);
}

int pskgw_e2e_header_parse(const uint8_t *p, size_t len, pskgw_e2e_header_t *out)
{
    return pskgw_e2e_header_parse_as(p, len, PSKGW_E2E_V2_SEED, out);
}

int pskgw_e2e_header_parse_as(const uint8_t *p, size_t len, pskgw_e2e_v2_layout_t v2,
                              pskgw_e2e_header_t *out)
{
    const pskgw_e2e_layout_t *lay;
    pskgw_e2e_header_t h;

    if (!out || (!p && len > 0) || (int)v2 < 0 || v2 >= PSKGW_E2E_V2_COUNT_)
        return PSKGW_EINVAL;
    if (len == 0)
        return PSKGW_EPROTO;
    lay = pskgw_e2e_layout_as(p[0] >> 4, v2);
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
