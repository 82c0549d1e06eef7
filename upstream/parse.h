/* Security-service response parsers and request builders (pure: no I/O, no curl, no clock).
 *
 * Every parser takes the raw response body (not NUL-terminated; at most
 * PSKGW_UPSTREAM_MAX_BODY bytes, longer bodies are refused with PSKGW_ETOOBIG) with jansson,
 * liberal in what it accepts from the service and strict about what it uses:
 *   - the body is one JSON object (duplicate keys rejected), fields in any order;
 *   - unknown fields, at any level, are ignored (the service may add some): on success `why`
 *     holds a note naming the first one and their count ("psk response: ignored 2 unknown
 *     fields (first \"Extra\")"), or "" when there were none; the caller logs it;
 *   - known fields keep their types and ranges; the numbers MACLength and KeyLength are accepted
 *     as JSON integers or as decimal strings ("128"); `null` counts as absent, which is fine for
 *     optional fields (RefreshToken, KeyLength) and "missing (null)" for required ones.
 * Outputs are written only on success. On failure a short, lower-case reason ("psk response:
 * Key: wrong length 15 bytes", "e2e parameters response: MACLength: expected a whole number (or
 * its decimal string), got a boolean") is written to `why` (may be NULL) that never contains
 * key material, tokens or body bytes other than key names.
 *
 * Errors: PSKGW_EPARSE (not JSON, not an object, missing/mistyped field, bad base64, wrong
 * length or value), PSKGW_ETOOBIG (body over the bound), PSKGW_EINVAL (bad arguments),
 * PSKGW_ENOMEM.
 *
 * Fuzzed by fuzz/fuzz_upstream_response.c and fuzz/fuzz_upstream_jwt.c.
 */
#ifndef PSKGW_UPSTREAM_PARSE_H
#define PSKGW_UPSTREAM_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "upstream/types.h"

/* Largest response body accepted from the service. */
#define PSKGW_UPSTREAM_MAX_BODY (64u * 1024u)
/* Largest AuthToken accepted (it travels in an HTTP header). */
#define PSKGW_UPSTREAM_MAX_TOKEN 8192u
/* Lifetime assumed when the JWT carries no usable `exp` claim. */
#define PSKGW_UPSTREAM_DEFAULT_TOKEN_TTL_MS 3600000u

/* Authenticate response {"AuthToken": s, "RefreshToken": s (optional, may be null)}. The token must be
 * non-empty, at most PSKGW_UPSTREAM_MAX_TOKEN bytes of printable ASCII (no spaces or control
 * characters: it goes into a header). *token_out is malloc'd, owned by the caller, who frees it
 * with pskgw_free_secret_str(). */
int pskgw_upstream_parse_auth(const char *body, size_t len, char **token_out, char *why,
                              size_t why_cap);

/* GetPSK response {"Key": base64, "ROTPublicUID": s, "KeyLength": 128|256|"128"|"256"
 * (optional)}. The key must decode to 16 or 32 bytes and to exactly want_bits / 8 bytes
 * (want_bits 128 or 256); a KeyLength, when present, must agree with the key. A key of the other
 * valid length is refused with a reason that names the likely cause: the device made its PSK
 * with the other length (AT+USECPSK=16|32), so the domain's psk_key_bits does not fit it.
 * ROTPublicUID: 1..64 printable ASCII. */
int pskgw_upstream_parse_psk(const char *body, size_t len, unsigned want_bits,
                             pskgw_upstream_psk_t *out, char *why, size_t why_cap);

/* GetE2EDecryptionParameters response {"Key": base64 (16 bytes), "Nonce": base64 (7..13 bytes),
 * "MACLength": 64|128 (integer or decimal string), "CipherSuite": "AES_128_CCM" (with 128) | "AES_128_CCM_8"
 * (with 64), "ROTPublicUID": s}. */
int pskgw_upstream_parse_e2e(const char *body, size_t len, pskgw_upstream_e2e_t *out, char *why,
                             size_t why_cap);

/* Claims of a JWT (header.payload.signature, payload base64url JSON). *exp and *iat (seconds
 * since the epoch) are written on success; *iat is -1 when the claim is absent.
 * PSKGW_EPARSE when the token is not three segments, the payload is not a JSON object, or `exp`
 * is absent or not a positive integer. The signature is not checked (the gateway only needs to
 * know when to renew). */
int pskgw_upstream_jwt_claims(const char *jwt, size_t len, int64_t *exp, int64_t *iat);

/* Token lifetime in ms from what pskgw_upstream_jwt_claims() returned (its rc, exp, iat) and the
 * wall clock: exp - iat when iat is present (independent of clock skew), shortened to
 * exp - now when that is positive and smaller (the claims are whole seconds); exp - now without
 * iat. Falls back to PSKGW_UPSTREAM_DEFAULT_TOKEN_TTL_MS when rc < 0 or the result is not
 * positive; never below 200 ms and never above 7 days. */
uint64_t pskgw_upstream_token_lifetime_ms(int rc, int64_t exp, int64_t iat, uint64_t now_wall_ms);

/* Request bodies (jansson-built, compact). *out is malloc'd; free with pskgw_free_secret_str()
 * (the authenticate body holds the API secret). */
int pskgw_upstream_build_auth(const char *key_id, const char *secret, char **out);
/* key_id_hex: 2..64 hex digits, sent as KeyID exactly as given (case kept: the gateway passes
 * the identity in the form the device sent it). key_bits: 128 or 256, sent as the string
 * "128"/"256" as in the seed. PSKGW_EINVAL otherwise. */
int pskgw_upstream_build_psk(const char *key_id_hex, unsigned key_bits, char **out);
/* header_hex: 2..64 hex digits, sent as given (e2e/ sends lower case unless the domain's
 * e2e_header_case is "upper"). */
int pskgw_upstream_build_e2e(const char *header_hex, char **out);

#endif
