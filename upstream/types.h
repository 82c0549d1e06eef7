/* Result types of the security-service client (shared by upstream.h and parse.h). */
#ifndef PSKGW_UPSTREAM_TYPES_H
#define PSKGW_UPSTREAM_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* GetPSK result. key_len is 16 or 32 (equal to the requested key length). rot_uid is the
 * device's ROTPublicUID, NUL-terminated printable ASCII, 1..64 characters. */
typedef struct {
    uint8_t key[32];
    size_t key_len;
    char rot_uid[65];
} pskgw_upstream_psk_t;

/* GetE2EDecryptionParameters result. mac_bits 128 with cipher_suite "AES_128_CCM", or 64 with
 * "AES_128_CCM_8"; nonce_len 7..13. */
typedef struct {
    uint8_t key[16];
    uint8_t nonce[13];
    size_t nonce_len;
    unsigned mac_bits;
    char cipher_suite[24];
    char rot_uid[65];
} pskgw_upstream_e2e_t;

#endif
