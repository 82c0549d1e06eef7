/* E2E decryption: AES-128-CCM (wolfCrypt), no associated data, tag = the last MACLength/8 bytes.
 *
 * Pure and synchronous: the caller has the parameters already (pskgw_e2e_process() in e2e.h gets
 * them through the key cache). Key schedules and any plaintext written before a failure are
 * wiped; on failure nothing useful is left in `out` (it is zeroed up to the ciphertext length).
 * `out` must not overlap the input.
 */
#ifndef PSKGW_E2E_DECRYPT_H
#define PSKGW_E2E_DECRYPT_H

#include "e2e/header.h"
#include "e2e/params.h"

#include <stddef.h>
#include <stdint.h>

/* Decrypt a body = ciphertext | tag (body may be NULL only when body_len is 0) with *p.
 * The tag is the last p->mac_bits / 8 bytes; *out_len = body_len - tag length.
 *   0                success: out[0 .. *out_len) is the device's cleartext
 *   PSKGW_EBADMAC    the tag does not verify (wrong key/nonce, altered bytes): reject the message
 *   PSKGW_EPARSE     body shorter than the tag (truncated payload)
 *   PSKGW_ETOOBIG    cap < body_len - tag length
 *   PSKGW_EINVAL     NULL pointer, or *p fails pskgw_e2e_params_check (inconsistent params)
 *   PSKGW_ECRYPTO    wolfCrypt failed otherwise
 */
int pskgw_e2e_decrypt(const pskgw_e2e_params_t *p, const uint8_t *body, size_t body_len,
                      uint8_t *out, size_t cap, size_t *out_len);

/* Parse the header of a whole payload, then decrypt its body. *hdr (optional, may be NULL) is
 * written when the header parses, even if decryption then fails. Errors as
 * pskgw_e2e_header_parse (PSKGW_EPROTO: not an E2E payload; PSKGW_EPARSE: too short) and
 * pskgw_e2e_decrypt. */
int pskgw_e2e_decrypt_payload(const pskgw_e2e_params_t *p, const uint8_t *payload, size_t len,
                              pskgw_e2e_header_t *hdr, uint8_t *out, size_t cap, size_t *out_len);
/* Same, reading a version 2 payload with candidate v2 (pskgw_e2e_header_parse_as). */
int pskgw_e2e_decrypt_payload_as(const pskgw_e2e_params_t *p, pskgw_e2e_v2_layout_t v2,
                                 const uint8_t *payload, size_t len, pskgw_e2e_header_t *hdr,
                                 uint8_t *out, size_t cap, size_t *out_len);

#endif
