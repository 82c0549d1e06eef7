#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "e2e/decrypt.h"
#include "e2e/internal.h"

#include "common/err.h"
#include "common/wipe.h"

#include <stdint.h>
#include <string.h>

int pskgw_e2e_ccm_decrypt(const uint8_t key[16], const uint8_t *nonce, size_t nlen,
                          const uint8_t *aad, size_t alen, const uint8_t *ct, size_t len,
                          const uint8_t *tag, size_t taglen, uint8_t *out)
{
    /* wolfCrypt wants non-NULL buffers even for zero lengths in some versions. */
    static const uint8_t empty_in[1];
    uint8_t empty_out[1];
    Aes aes;
    int wrc;
    int rc;

    if (!key || !nonce || !tag || (len > 0 && (!ct || !out)) || (alen > 0 && !aad))
        return PSKGW_EINVAL;
    if (nlen < 7 || nlen > 13 || taglen < 4 || taglen > 16 || (taglen & 1) != 0)
        return PSKGW_EINVAL;
    if (len > UINT32_MAX || alen > UINT32_MAX)
        return PSKGW_EINVAL;
    if (len == 0) {
        ct = empty_in;
        out = empty_out;
    }

    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
        return PSKGW_ECRYPTO;
    wrc = wc_AesCcmSetKey(&aes, key, 16);
    if (wrc != 0) {
        rc = PSKGW_ECRYPTO;
        goto fail;
    }
    wrc = wc_AesCcmDecrypt(&aes, out, ct, (word32)len, nonce, (word32)nlen, tag, (word32)taglen,
                           alen ? aad : NULL, (word32)alen);
    if (wrc == AES_CCM_AUTH_E)
        rc = PSKGW_EBADMAC;
    else if (wrc == BAD_FUNC_ARG)
        rc = PSKGW_EINVAL;
    else if (wrc != 0)
        rc = PSKGW_ECRYPTO;
    else
        rc = 0;
fail:
    if (rc != 0 && len > 0)
        pskgw_wipe(out, len);
    wc_AesFree(&aes);
    pskgw_wipe(&aes, sizeof(aes));
    pskgw_wipe(empty_out, sizeof(empty_out));
    return rc;
}

int pskgw_e2e_decrypt(const pskgw_e2e_params_t *p, const uint8_t *body, size_t body_len,
                      uint8_t *out, size_t cap, size_t *out_len)
{
    size_t tag_len;
    size_t ct_len;
    int rc;

    if (!p || !out_len || (!body && body_len > 0) || pskgw_e2e_params_check(p) != 0)
        return PSKGW_EINVAL;
    tag_len = p->mac_bits / 8;
    if (body_len < tag_len)
        return PSKGW_EPARSE;
    ct_len = body_len - tag_len;
    if (ct_len > 0 && !out)
        return PSKGW_EINVAL;
    if (cap < ct_len)
        return PSKGW_ETOOBIG;
    rc = pskgw_e2e_ccm_decrypt(p->key, p->nonce, p->nonce_len, NULL, 0, body, ct_len, body + ct_len,
                               tag_len, out);
    if (rc != 0)
        return rc;
    *out_len = ct_len;
    return 0;
}

int pskgw_e2e_decrypt_payload(const pskgw_e2e_params_t *p, const uint8_t *payload, size_t len,
                              pskgw_e2e_header_t *hdr, uint8_t *out, size_t cap, size_t *out_len)
{
    return pskgw_e2e_decrypt_payload_as(p, PSKGW_E2E_V2_SEED, payload, len, hdr, out, cap, out_len);
}

int pskgw_e2e_decrypt_payload_as(const pskgw_e2e_params_t *p, pskgw_e2e_v2_layout_t v2,
                                 const uint8_t *payload, size_t len, pskgw_e2e_header_t *hdr,
                                 uint8_t *out, size_t cap, size_t *out_len)
{
    pskgw_e2e_header_t h;
    int rc;

    rc = pskgw_e2e_header_parse_as(payload, len, v2, &h);
    if (rc != 0)
        return rc;
    if (hdr)
        *hdr = h;
    return pskgw_e2e_decrypt(p, payload + h.body_off, h.body_len, out, cap, out_len);
}
