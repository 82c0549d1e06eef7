/* Hex and base64 codecs (pure functions; fuzzed by fuzz/fuzz_codec.c).
 *
 * Encoders write a NUL-terminated string and need an output of the size the *_encoded_len()
 * helpers give (including the NUL). Decoders are strict: they reject bad characters, bad padding
 * and odd lengths, and write only on success. All return 0 or a negative PSKGW_E* code:
 *   PSKGW_EPARSE  input is not valid in that encoding
 *   PSKGW_ETOOBIG output buffer too small
 */
#ifndef PSKGW_COMMON_CODEC_H
#define PSKGW_COMMON_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline size_t pskgw_hex_encoded_len(size_t n)
{
    return 2 * n + 1;
}

static inline size_t pskgw_b64_encoded_len(size_t n)
{
    return 4 * ((n + 2) / 3) + 1;
}

/* upper: true for "0A1B", false for "0a1b". out must hold 2*n+1 bytes. */
int pskgw_hex_encode(const uint8_t *in, size_t n, char *out, size_t out_cap, bool upper);
/* Accepts upper and lower case; `len` characters (must be even). *out_len = bytes written. */
int pskgw_hex_decode(const char *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len);
/* true if every one of `len` bytes is an ASCII hex digit and len is even and non-zero. */
bool pskgw_is_hex(const uint8_t *in, size_t len);

/* Standard alphabet with '=' padding (RFC 4648 section 4). */
int pskgw_b64_encode(const uint8_t *in, size_t n, char *out, size_t out_cap);
/* Standard alphabet; padding required; no whitespace. */
int pskgw_b64_decode(const char *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len);
/* URL alphabet (RFC 4648 section 5), padding optional: for JWT segments. */
int pskgw_b64url_decode(const char *in, size_t len, uint8_t *out, size_t out_cap, size_t *out_len);

#endif
