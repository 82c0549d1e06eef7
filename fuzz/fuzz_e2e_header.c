/* Fuzz target: the E2E header parser, the KI hex decoder and the parameters codec (e2e/). None
 * may read or write out of bounds; whatever they accept must be self-consistent:
 *   - a parsed header's offsets stay inside the input, its KI hex decodes back to its KI bytes;
 *   - decode(encode(decode(x))) == decode(x) for the params codec, and encode(decode(x)) == x.
 * The first input byte selects which of them gets the rest and, for the header parser, which
 * version 2 layout candidate reads it (every candidate of e2e/header.c is covered). */
#include "e2e/decrypt.h"
#include "e2e/header.h"
#include "e2e/params.h"

#include <stdlib.h>
#include <string.h>

static void header(const uint8_t *data, size_t size, pskgw_e2e_v2_layout_t v2)
{
    const pskgw_e2e_layout_t *lay;
    pskgw_e2e_header_t h;
    uint8_t ki[PSKGW_E2E_KI_MAX_LEN];
    size_t n = 0;
    int v = 0;
    size_t ct_off, ct_len, tag_off;

    if (pskgw_e2e_header_parse_as(data, size, v2, &h) != 0)
        return;
    lay = pskgw_e2e_layout_as(h.version, v2);
    if (!lay || h.ki_len != lay->ki_len || h.extra_len != lay->extra_len ||
        h.body_off != h.ki_len + h.extra_len)
        abort();
    if (h.version != (data[0] >> 4) || h.body_off + h.body_len != size ||
        h.body_len < PSKGW_E2E_TAG_MIN_LEN || h.ki_len > PSKGW_E2E_KI_MAX_LEN ||
        memcmp(h.ki, data, h.ki_len) != 0 || strlen(h.ki_hex) != 2 * h.ki_len)
        abort();
    if (pskgw_e2e_ki_from_hex(h.ki_hex, strlen(h.ki_hex), ki, sizeof(ki), &n, &v) != 0 ||
        n != h.ki_len || v != h.version || memcmp(ki, h.ki, n) != 0)
        abort();
    for (unsigned bits = 64; bits <= 128; bits += 64) {
        if (pskgw_e2e_header_split(&h, bits, &ct_off, &ct_len, &tag_off) == 0 &&
            (ct_off != h.body_off || tag_off + bits / 8 != size || ct_off + ct_len != tag_off))
            abort();
    }
    /* Decrypt with a fixed key: must fail cleanly (or, astronomically rarely, succeed). */
    {
        static uint8_t out[4096];
        pskgw_e2e_params_t p;
        memset(&p, 0, sizeof(p));
        p.nonce_len = 7 + (size % 7);
        p.suite = (size & 1) ? PSKGW_E2E_SUITE_AES_128_CCM : PSKGW_E2E_SUITE_AES_128_CCM_8;
        p.mac_bits = (size & 1) ? 128 : 64;
        if (size <= sizeof(out))
            (void)pskgw_e2e_decrypt_payload_as(&p, v2, data, size, NULL, out, sizeof(out), &n);
    }
}

static void ki_hex(const uint8_t *data, size_t size)
{
    uint8_t ki[PSKGW_E2E_KI_MAX_LEN];
    size_t n = 0;
    int v = 0;

    if (pskgw_e2e_ki_from_hex((const char *)data, size, ki, sizeof(ki), &n, &v) != 0)
        return;
    if ((v != 1 && v != 2) || n * 2 != size || (ki[0] >> 4) != v)
        abort();
}

static void params(const uint8_t *data, size_t size)
{
    pskgw_e2e_params_t p, q;
    uint8_t enc[PSKGW_E2E_PARAMS_ENCODED_MAX];
    size_t n = 0;

    if (pskgw_e2e_params_decode(data, size, &p) != 0)
        return;
    if (pskgw_e2e_params_check(&p) != 0)
        abort();
    if (pskgw_e2e_params_encode(&p, enc, sizeof(enc), &n) != 0 || n != size ||
        memcmp(enc, data, n) != 0)
        abort();
    if (pskgw_e2e_params_decode(enc, n, &q) != 0 || memcmp(p.key, q.key, sizeof(p.key)) != 0 ||
        p.nonce_len != q.nonce_len || memcmp(p.nonce, q.nonce, p.nonce_len) != 0 ||
        p.mac_bits != q.mac_bits || p.suite != q.suite || strcmp(p.rot_uid, q.rot_uid) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        header(data + 1, size - 1, (pskgw_e2e_v2_layout_t)((data[0] / 3) % PSKGW_E2E_V2_COUNT_));
        break;
    case 1:
        ki_hex(data + 1, size - 1);
        break;
    default:
        params(data + 1, size - 1);
        break;
    }
    return 0;
}
