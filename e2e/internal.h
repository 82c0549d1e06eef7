/* Module-internal to e2e/ (and its unit tests): not for other modules. */
#ifndef PSKGW_E2E_INTERNAL_H
#define PSKGW_E2E_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Generic AES-128-CCM decrypt + verify through wolfCrypt, with optional associated data (E2E
 * uses none; the parameter exists so that RFC 3610 / NIST SP 800-38C vectors, which all carry
 * AAD, test the same code). key is 16 bytes; nlen 7..13; taglen 4, 6, ..., 16; out holds len
 * bytes and must not overlap ct. ct/out may be NULL when len is 0, aad when alen is 0.
 *   0 / PSKGW_EBADMAC (out zeroed) / PSKGW_EINVAL (lengths, NULLs) / PSKGW_ECRYPTO
 * The key schedule is wiped before returning. */
int pskgw_e2e_ccm_decrypt(const uint8_t key[16], const uint8_t *nonce, size_t nlen,
                          const uint8_t *aad, size_t alen, const uint8_t *ct, size_t len,
                          const uint8_t *tag, size_t taglen, uint8_t *out);

#endif
