/* E2E payload header: which version, which key identity (KI), where the ciphertext starts.
 *
 * Layout of what a u-blox module returns from AT+USECE2EDATAENC (shared/spec/e2e-format.md):
 *
 *   | KI (16 bytes V1, 11 bytes V2) | extra bytes | ciphertext | MAC tag (MACLength/8) |
 *
 * The version is the most significant nibble of the first byte: 0x1 -> version 1 (16-byte KI),
 * 0x2 -> version 2 (11-byte KI); any other value means "not an E2E payload". Layouts come from one
 * table (header.c): KI length, expected tag length and fixed extra bytes after the KI, so that a
 * correction from a real sample is a one-line change. Version 1 has one layout (proven by the
 * public examples: no extra bytes). Version 2 has candidates, selected per domain (config key
 * `e2e_v2_layout`), because no public V2 sample exists:
 *   seed   KI (11) | ciphertext | tag: the seed's description, no extra byte (the default).
 *          Overhead 11 + tag: 19 bytes with AES_128_CCM_8, 27 with AES_128_CCM.
 *   pad1   KI (11) | one byte | ciphertext | tag: accounts for the 28 bytes of overhead u-blox's
 *          tests measure on live modules (U_SECURITY_E2E_V2_HEADER_LENGTH_BYTES = 28) with a
 *          16-byte AES_128_CCM tag. The byte is skipped: not sent to the service, not
 *          authenticated.
 * Decryption always takes the tag length from MACLength; the table's tag length is informative.
 *
 * A "valid E2E header" is a known version nibble and enough bytes for the KI, the extra bytes and
 * the shortest E2E tag (8 bytes, AES_128_CCM_8). The real tag length is only known from the
 * decryption parameters (MACLength), so a valid header can still be a truncated payload for a
 * 16-byte tag: pskgw_e2e_decrypt() then answers PSKGW_EPARSE.
 *
 * Key identity as text: the service field "EncryptedHeader" carries the KI as hex. The parser gives
 * it in lower case, as the seed's example shows ("1101000089291e26ec1aeb0074450000"), and pskgw
 * sends it so by default; a domain can ask for upper case (`e2e_header_case`, see e2e.h).
 * pskgw_e2e_ki_from_hex() accepts upper and lower case.
 *
 * Everything here is pure (no allocation, no I/O, no global state); fuzzed by
 * fuzz/fuzz_e2e_header.c.
 */
#ifndef PSKGW_E2E_HEADER_H
#define PSKGW_E2E_HEADER_H

#include <stddef.h>
#include <stdint.h>

#define PSKGW_E2E_KI_MAX_LEN  16
#define PSKGW_E2E_KI_HEX_MAX  (2 * PSKGW_E2E_KI_MAX_LEN) /* characters, without the NUL */
#define PSKGW_E2E_TAG_MIN_LEN 8                          /* MACLength 64 (AES_128_CCM_8) */
#define PSKGW_E2E_TAG_MAX_LEN 16                         /* MACLength 128 (AES_128_CCM) */

/* Version 2 layout candidates (rows of the table, see above). */
typedef enum {
    PSKGW_E2E_V2_SEED = 0, /* "seed": KI | ciphertext | tag (default) */
    PSKGW_E2E_V2_PAD1 = 1, /* "pad1": KI | 1 byte | ciphertext | tag (28 bytes with CCM) */
    PSKGW_E2E_V2_COUNT_
} pskgw_e2e_v2_layout_t;

/* "seed" / "pad1" -> candidate. PSKGW_EINVAL for NULL or any other name. */
int pskgw_e2e_v2_layout_parse(const char *name, pskgw_e2e_v2_layout_t *out);
/* The candidate's name ("unknown" for other values). Static. */
const char *pskgw_e2e_v2_layout_name(pskgw_e2e_v2_layout_t v2);

/* One row of the layout table. */
typedef struct {
    const char *name;       /* "v1" for version 1; the candidate's name for version 2 */
    int version;            /* = the first nibble: 1 or 2 */
    size_t ki_len;          /* key identity bytes at the start */
    size_t default_tag_len; /* the tag length the seed documents for this version; informative
                               only: decryption always takes MACLength from the parameters */
    size_t extra_len;       /* fixed bytes between the KI and the ciphertext (skipped, not sent
                               to the service, not authenticated) */
} pskgw_e2e_layout_t;

/* The layout of a version (version 2: the default candidate, "seed"), or NULL for an unknown
 * version. Static storage. */
const pskgw_e2e_layout_t *pskgw_e2e_layout(int version);
/* The layout of a version with candidate v2 for version 2 (ignored for version 1); NULL for an
 * unknown version or candidate. Static storage. */
const pskgw_e2e_layout_t *pskgw_e2e_layout_as(int version, pskgw_e2e_v2_layout_t v2);

/* What pskgw_e2e_header_parse() found. Offsets are from the start of the payload. */
typedef struct {
    int version;                           /* 1 or 2 */
    size_t ki_len;                         /* 16 or 11 */
    uint8_t ki[PSKGW_E2E_KI_MAX_LEN];      /* the KI bytes (first ki_len used) */
    char ki_hex[PSKGW_E2E_KI_HEX_MAX + 1]; /* lower-case hex of the KI: the EncryptedHeader */
    size_t extra_off;                      /* = ki_len */
    size_t extra_len;                      /* from the layout table (V1: 0; V2 pad1: 1) */
    size_t body_off;                       /* ciphertext starts here (= ki_len + extra_len) */
    size_t body_len;                       /* ciphertext + tag bytes (>= PSKGW_E2E_TAG_MIN_LEN) */
    size_t default_tag_len;                /* from the layout table */
} pskgw_e2e_header_t;

/* Parse the header of `len` bytes at p (p may be NULL when len is 0). *out is written only on
 * success.
 *   0              a valid E2E header
 *   PSKGW_EPROTO   not an E2E payload: empty, or a first nibble other than 0x1 / 0x2
 *   PSKGW_EPARSE   a known version nibble but too short for KI + extra bytes + an 8-byte tag
 *   PSKGW_EINVAL   out is NULL, or p is NULL with len > 0
 */
int pskgw_e2e_header_parse(const uint8_t *p, size_t len, pskgw_e2e_header_t *out);
/* Same, reading a version 2 payload with candidate v2 (pskgw_e2e_header_parse uses "seed").
 * PSKGW_EINVAL also for an unknown candidate. */
int pskgw_e2e_header_parse_as(const uint8_t *p, size_t len, pskgw_e2e_v2_layout_t v2,
                              pskgw_e2e_header_t *out);

/* Where the ciphertext and the tag of a parsed payload are, for a MACLength of mac_bits (64 or
 * 128): ciphertext at [*ct_off, *ct_off + *ct_len), tag at [*tag_off, *tag_off + mac_bits / 8),
 * offsets from the start of the payload. PSKGW_EPARSE when the body is shorter than the tag
 * (truncated), PSKGW_EINVAL for NULLs or another mac_bits. */
int pskgw_e2e_header_split(const pskgw_e2e_header_t *h, unsigned mac_bits, size_t *ct_off,
                           size_t *ct_len, size_t *tag_off);

/* Decode a KI given as hex (`len` characters, upper or lower case, no NUL needed): it must be
 * exactly the KI of one version (32 characters starting with '1', or 22 starting with '2'; every
 * V2 candidate has an 11-byte KI).
 * Writes the bytes to ki (cap >= 16 is always enough), *ki_len and *version (either may be
 * NULL) on success.
 *   PSKGW_EPARSE   not hex, or a length that does not match the version nibble
 *   PSKGW_EPROTO   the first nibble is not a known version
 *   PSKGW_ETOOBIG  cap too small
 *   PSKGW_EINVAL   NULL hex or ki
 */
int pskgw_e2e_ki_from_hex(const char *hex, size_t len, uint8_t *ki, size_t cap, size_t *ki_len,
                          int *version);

#endif
