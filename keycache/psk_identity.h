/* Could a u-blox module have produced this PSK identity? (pure; fuzzed by
 * fuzz/fuzz_psk_identity.c)
 *
 * A ClientKeyExchange is plaintext: anyone can send any identity, and each fresh one used to cost
 * a GetPSK call. Identities that no module can produce are refused before the cache, Redis or the
 * service sees them. What modules produce (shared/spec/security-service-api.md section 5 and the
 * reference seeds' examples, e.g. 11010008002F33244B115B0AEEB9, 1101000000112233445566778899):
 *   - the KeyID is hex (the DTLS layer normalises: ASCII hex kept as the device sent it, in
 *     either case, since a module configured by hand may carry a lower-case identity; other
 *     bytes hex-encoded upper case: dtls/parse.h pskgw_identity_normalize), so whole bytes: an
 *     even count;
 *   - 14 bytes in every example, at most 32 (ubxlib's buffer): 14 to 32 bytes;
 *   - structure: the first byte's high nibble is a format version, 1 in every example (0x11 0x01
 *     ...), like the E2E key identities whose versions 1 and 2 are documented; 1 and 2 are
 *     accepted, anything else is not an identity a module made.
 * A rule that turns out too strict for a real module is one line here; the refusals are counted
 * by reason (metrics) so that such a case shows.
 */
#ifndef PSKGW_KEYCACHE_PSK_IDENTITY_H
#define PSKGW_KEYCACHE_PSK_IDENTITY_H

#include <stddef.h>

#define PSKGW_PSK_IDENTITY_MIN_BYTES 14
#define PSKGW_PSK_IDENTITY_MAX_BYTES 32

typedef enum {
    PSKGW_PSK_ID_OK = 0,
    PSKGW_PSK_ID_LENGTH,    /* fewer than 14 or more than 32 bytes */
    PSKGW_PSK_ID_ODD,       /* an odd number of hex digits: not whole bytes */
    PSKGW_PSK_ID_CHARSET,   /* not hex */
    PSKGW_PSK_ID_STRUCTURE, /* the version nibble is not 1 or 2 */
    PSKGW_PSK_ID_REASON_COUNT_
} pskgw_psk_id_reason_t;

/* Check keyid[0..len) (the normalised KeyID; NUL not required). keyid may be NULL when len is 0. */
pskgw_psk_id_reason_t pskgw_psk_identity_check(const char *keyid, size_t len);

/* "ok", "length", "odd_length", "charset", "structure" (metrics labels). Static. */
const char *pskgw_psk_id_reason_name(pskgw_psk_id_reason_t r);

#endif
