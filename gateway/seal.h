/* pskgw_seal: AES-256-GCM one shot and random bytes for what the gateway seals itself: the
 * hand-over state file (statefile.h) and the sessions shared through Redis (sessredis.h). Keys
 * are PSKGW_SEAL_KEY_LEN bytes, IVs PSKGW_SEAL_IV_LEN (random per sealing), tags
 * PSKGW_SEAL_TAG_LEN. No state; the wolfCrypt AES object is wiped before returning. */
#ifndef PSKGW_GATEWAY_SEAL_H
#define PSKGW_GATEWAY_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSKGW_SEAL_KEY_LEN 32
#define PSKGW_SEAL_IV_LEN  12
#define PSKGW_SEAL_TAG_LEN 16

/* n bytes from getrandom(2) (retried on EINTR). 0 or PSKGW_ECRYPTO. */
int pskgw_seal_random(uint8_t *p, size_t n);

/* Seal (enc: in -> out, tag written) or open (in -> out, tag checked) len bytes (0 allowed: a tag
 * over aad alone) under key and iv, with aad_len bytes of associated data. in and out may be the
 * same buffer. 0, PSKGW_EBADMAC (open: the tag does not match) or PSKGW_ECRYPTO. */
int pskgw_seal_gcm(bool enc, const uint8_t *key, const uint8_t *iv, const uint8_t *in, size_t len,
                   uint8_t *out, uint8_t *tag, const uint8_t *aad, size_t aad_len);

#endif
