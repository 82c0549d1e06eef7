/* The value format of the PSK cache ("psk" instance): what the gateway's GetPSK adapter stores
 * and what its DTLS resolver adapter reads back. Pure functions (fuzzed with the stored-value
 * codec by fuzz/fuzz_keycache_codec.c).
 *
 *   0x01 | psk_len (1, 1..64) | psk (psk_len) | uid_len (1, 0..64) | uid (uid_len, 0x21..0x7e)
 *
 * The bytes hold the key: wipe them when done. Errors (out-parameters written only on success):
 *   PSKGW_EINVAL   NULL pointer, psk_len 0 or > 64, uid longer than 64 or not printable ASCII
 *   PSKGW_ETOOBIG  output too small
 *   PSKGW_EPARSE   bytes that are not exactly this format
 */
#ifndef PSKGW_KEYCACHE_PSK_VALUE_H
#define PSKGW_KEYCACHE_PSK_VALUE_H

#include <stddef.h>
#include <stdint.h>

#define PSKGW_KEYCACHE_PSK_MAX       64
#define PSKGW_KEYCACHE_UID_MAX       64 /* characters, without the NUL */
#define PSKGW_KEYCACHE_PSK_VALUE_MAX (3 + PSKGW_KEYCACHE_PSK_MAX + PSKGW_KEYCACHE_UID_MAX)

/* uid: NUL-terminated ROTPublicUID ("" when unknown). */
int pskgw_keycache_psk_value_encode(const uint8_t *psk, size_t psk_len, const char *uid,
                                    uint8_t *out, size_t cap, size_t *out_len);

/* psk (psk_cap bytes) receives the key, *psk_len its length; uid (uid_cap >= uid_len + 1)
 * receives the NUL-terminated UID. */
int pskgw_keycache_psk_value_decode(const uint8_t *in, size_t len, uint8_t *psk, size_t psk_cap,
                                    size_t *psk_len, char *uid, size_t uid_cap);

#endif
