/* E2E decryption parameters of one key identity, as GetE2EDecryptionParameters returns them
 * (shared/spec/security-service-api.md section 3), and their byte codec for the generic key cache.
 *
 * A pskgw_e2e_params_t holds a key: whoever owns one wipes it with pskgw_e2e_params_wipe() before
 * its memory is released or reused. It is a plain value (no pointers inside): copy it freely.
 *
 * Consistency rules (pskgw_e2e_params_check), from the spec:
 *   key        16 bytes (AES-128)
 *   nonce      7 to 13 bytes (any valid CCM nonce; the service does not document its length)
 *   mac_bits   128 with "AES_128_CCM" (16-byte tag), 64 with "AES_128_CCM_8" (8-byte tag); a
 *              suite and a MACLength that disagree are refused rather than guessed at
 *   rot_uid    0 to 64 printable ASCII characters (0x21..0x7e), NUL-terminated
 *
 * All functions are pure. Out-parameters are written only on success.
 */
#ifndef PSKGW_E2E_PARAMS_H
#define PSKGW_E2E_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#define PSKGW_E2E_KEY_LEN       16
#define PSKGW_E2E_NONCE_MIN_LEN 7
#define PSKGW_E2E_NONCE_MAX_LEN 13
#define PSKGW_E2E_UID_MAX_LEN   64 /* characters, without the NUL */

typedef enum {
    PSKGW_E2E_SUITE_AES_128_CCM = 1,   /* "AES_128_CCM": 16-byte tag, MACLength 128 */
    PSKGW_E2E_SUITE_AES_128_CCM_8 = 2, /* "AES_128_CCM_8": 8-byte tag, MACLength 64 */
} pskgw_e2e_suite_t;

typedef struct {
    uint8_t key[PSKGW_E2E_KEY_LEN];
    uint8_t nonce[PSKGW_E2E_NONCE_MAX_LEN];
    size_t nonce_len;
    unsigned mac_bits; /* MACLength: 64 or 128 */
    pskgw_e2e_suite_t suite;
    char rot_uid[PSKGW_E2E_UID_MAX_LEN + 1]; /* ROTPublicUID, NUL-terminated */
} pskgw_e2e_params_t;

/* "AES_128_CCM" / "AES_128_CCM_8" (exactly, `len` characters) -> suite. PSKGW_EINVAL (NULL),
 * PSKGW_EUNSUPPORTED (any other name). */
int pskgw_e2e_suite_parse(const char *s, size_t len, pskgw_e2e_suite_t *out);
/* The service's name of a suite ("AES_128_CCM"); "unknown" for other values. Static. */
const char *pskgw_e2e_suite_name(pskgw_e2e_suite_t suite);

/* 0 when *p follows the rules above; PSKGW_EINVAL otherwise (or when p is NULL). */
int pskgw_e2e_params_check(const pskgw_e2e_params_t *p);

/* Wipe the whole struct (key, nonce, everything). NULL accepted. */
void pskgw_e2e_params_wipe(pskgw_e2e_params_t *p);

/* Serialised form, for caches that store opaque bytes (format version 1):
 *   0x01 | suite (1) | mac_bits (2, big-endian) | nonce_len (1) | key (16) | nonce (nonce_len)
 *        | uid_len (1) | uid (uid_len)
 * The bytes contain the key: the caller wipes them when done (pskgw_wipe / pskgw_free_secret). */
#define PSKGW_E2E_PARAMS_ENCODED_MAX \
    (5 + PSKGW_E2E_KEY_LEN + PSKGW_E2E_NONCE_MAX_LEN + 1 + PSKGW_E2E_UID_MAX_LEN)

/* Encode *p (which must pass pskgw_e2e_params_check) into out; *out_len = bytes written.
 * PSKGW_EINVAL (NULL or inconsistent params), PSKGW_ETOOBIG (cap too small; the maximum is
 * PSKGW_E2E_PARAMS_ENCODED_MAX). Nothing is written on failure. */
int pskgw_e2e_params_encode(const pskgw_e2e_params_t *p, uint8_t *out, size_t cap, size_t *out_len);

/* Decode exactly `len` bytes made by pskgw_e2e_params_encode(). The result passes
 * pskgw_e2e_params_check. PSKGW_EINVAL (NULL), PSKGW_EPARSE (wrong format version, wrong length,
 * trailing bytes, or values that break the rules). Temporary copies are wiped. */
int pskgw_e2e_params_decode(const uint8_t *in, size_t len, pskgw_e2e_params_t *out);
/* pskgw_e2e_params_decode() shaped as a key cache's decode hook (keycache.h, opts.decode with
 * decoded_size = sizeof(pskgw_e2e_params_t)): out is a pskgw_e2e_params_t; arg unused. */
int pskgw_e2e_params_decode_hook(void *arg, const uint8_t *in, size_t len, void *out);

#endif
