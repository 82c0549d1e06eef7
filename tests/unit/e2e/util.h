/* Helpers for the e2e unit tests: hex literals and an independent AES-CCM (OpenSSL EVP). */
#ifndef PSKGW_TEST_E2E_UTIL_H
#define PSKGW_TEST_E2E_UTIL_H

#include "e2e/params.h"

#include <stddef.h>
#include <stdint.h>

/* Decode a hex literal into out (cap bytes); returns the byte count (aborts the test on error). */
size_t th_unhex(const char *hex, uint8_t *out, size_t cap);

/* AES-128-CCM encrypt with OpenSSL: ct gets len bytes, tag gets taglen bytes. 0 or -1. */
int th_ossl_ccm_encrypt(const uint8_t key[16], const uint8_t *nonce, size_t nlen,
                        const uint8_t *aad, size_t alen, const uint8_t *pt, size_t len,
                        size_t taglen, uint8_t *ct, uint8_t *tag);

/* An E2E payload as a module makes it: ki | CCM(pt) | tag (no AAD, tag p->mac_bits/8), with
 * OpenSSL. Returns the payload length (aborts the test on error). */
size_t th_make_payload(const pskgw_e2e_params_t *p, const uint8_t *ki, size_t ki_len,
                       const uint8_t *pt, size_t len, uint8_t *out, size_t cap);

/* Deterministic parameters for tests: version 1 -> AES_128_CCM, 13-byte nonce, 128-bit tag;
 * version 2 -> AES_128_CCM_8, 12-byte nonce, 64-bit tag. `salt` varies the key and nonce. */
void th_params(int version, uint8_t salt, pskgw_e2e_params_t *out);

#endif
