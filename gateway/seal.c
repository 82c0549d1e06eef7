/* pskgw_seal: see seal.h. */
#include "gateway/seal.h"

#include "common/err.h"
#include "common/wipe.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <errno.h>
#include <sys/random.h>

int pskgw_seal_random(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return PSKGW_ECRYPTO;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int pskgw_seal_gcm(bool enc, const uint8_t *key, const uint8_t *iv, const uint8_t *in, size_t len,
                   uint8_t *out, uint8_t *tag, const uint8_t *aad, size_t aad_len)
{
    Aes aes;
    int rc;

    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
        return PSKGW_ECRYPTO;
    rc = wc_AesGcmSetKey(&aes, key, PSKGW_SEAL_KEY_LEN);
    if (rc == 0 && enc)
        rc = wc_AesGcmEncrypt(&aes, out, in, (word32)len, iv, PSKGW_SEAL_IV_LEN, tag,
                              PSKGW_SEAL_TAG_LEN, aad, (word32)aad_len);
    else if (rc == 0)
        rc = wc_AesGcmDecrypt(&aes, out, in, (word32)len, iv, PSKGW_SEAL_IV_LEN, tag,
                              PSKGW_SEAL_TAG_LEN, aad, (word32)aad_len);
    wc_AesFree(&aes);
    pskgw_wipe(&aes, sizeof(aes));
    if (rc == AES_GCM_AUTH_E)
        return PSKGW_EBADMAC;
    return rc == 0 ? 0 : PSKGW_ECRYPTO;
}
