#include "util.h"

#include "common/codec.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

size_t th_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;

    cr_assert_eq(pskgw_hex_decode(hex, strlen(hex), out, cap, &n), 0, "bad hex literal %s", hex);
    return n;
}

int th_ossl_ccm_encrypt(const uint8_t key[16], const uint8_t *nonce, size_t nlen,
                        const uint8_t *aad, size_t alen, const uint8_t *pt, size_t len,
                        size_t taglen, uint8_t *ct, uint8_t *tag)
{
    static const uint8_t empty[1];
    uint8_t dummy[1];
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;
    int rc = -1;

    if (!c)
        return -1;
    if (len == 0) {
        pt = empty;
        ct = dummy;
    }
    if (EVP_EncryptInit_ex(c, EVP_aes_128_ccm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, (int)nlen, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, (int)taglen, NULL) != 1 ||
        EVP_EncryptInit_ex(c, NULL, NULL, key, nonce) != 1 ||
        EVP_EncryptUpdate(c, NULL, &outl, NULL, (int)len) != 1)
        goto out;
    if (alen > 0 && EVP_EncryptUpdate(c, NULL, &outl, aad, (int)alen) != 1)
        goto out;
    if (EVP_EncryptUpdate(c, ct, &outl, pt, (int)len) != 1 ||
        EVP_EncryptFinal_ex(c, ct + outl, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, (int)taglen, tag) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

size_t th_make_payload(const pskgw_e2e_params_t *p, const uint8_t *ki, size_t ki_len,
                       const uint8_t *pt, size_t len, uint8_t *out, size_t cap)
{
    size_t tag_len = p->mac_bits / 8;

    cr_assert_leq(ki_len + len + tag_len, cap);
    memcpy(out, ki, ki_len);
    cr_assert_eq(th_ossl_ccm_encrypt(p->key, p->nonce, p->nonce_len, NULL, 0, pt, len, tag_len,
                                     out + ki_len, out + ki_len + len),
                 0);
    return ki_len + len + tag_len;
}

void th_params(int version, uint8_t salt, pskgw_e2e_params_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < PSKGW_E2E_KEY_LEN; i++)
        out->key[i] = (uint8_t)(0x40 + i * 7 + salt);
    if (version == 1) {
        out->nonce_len = 13;
        out->mac_bits = 128;
        out->suite = PSKGW_E2E_SUITE_AES_128_CCM;
    } else {
        out->nonce_len = 12;
        out->mac_bits = 64;
        out->suite = PSKGW_E2E_SUITE_AES_128_CCM_8;
    }
    for (size_t i = 0; i < out->nonce_len; i++)
        out->nonce[i] = (uint8_t)(0xa0 + i * 3 + salt);
    snprintf(out->rot_uid, sizeof(out->rot_uid), "00020000%08X", 0x89280000u + salt);
}
