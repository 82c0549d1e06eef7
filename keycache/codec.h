/* Stored-value codec of the key cache's layer 2 (Redis): pure functions, no I/O, no clock, no
 * global state (fuzzed by fuzz/fuzz_keycache_codec.c).
 *
 * A cache entry stored in Redis is sealed with AES-256-GCM under a 32-byte key-encryption key
 * (KEK). Layout of the stored bytes (format 1):
 *
 *   off 0   1 byte   format version (PSKGW_KEYCACHE_CODEC_FORMAT = 1)
 *   off 1   1 byte   KEK id (which KEK sealed it: rotation keeps the previous one for reading)
 *   off 2  12 bytes  random IV
 *   off 14  n bytes  ciphertext of the plaintext below
 *   last   16 bytes  GCM tag
 *
 *   plaintext: kind (1) | fresh_until_ms (8, big-endian) | stale_until_ms (8, big-endian) |
 *              value_len (2, big-endian) | value (value_len bytes)
 *
 * The associated data binds the two header bytes and the entry's identity:
 *   header (2) | len(domain) (1) | domain | len(name) (1) | name | key_len (2, BE) | key
 * so a value copied to another key, cache or domain does not
 * decrypt. The expiry times are wall-clock milliseconds inside the authenticated plaintext: an old
 * value replayed into Redis is refused once it has expired, whatever the Redis TTL says.
 *
 * Errors (every function returns 0 or one of these; out-parameters are written only on success):
 *   PSKGW_EINVAL    bad argument (NULL pointer, bad kind, lengths beyond the bounds)
 *   PSKGW_ETOOBIG   output buffer too small
 *   PSKGW_EPARSE    stored bytes malformed (too short, unknown format, unknown KEK id, bad kind,
 *                   inconsistent lengths, fresh_until > stale_until)
 *   PSKGW_EBADMAC   the GCM tag does not verify (wrong KEK, tampered or moved value)
 *   PSKGW_ECRYPTO   wolfCrypt failed
 */
#ifndef PSKGW_KEYCACHE_CODEC_H
#define PSKGW_KEYCACHE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define PSKGW_KEYCACHE_CODEC_FORMAT 1
#define PSKGW_KEYCACHE_KEK_LEN      32
#define PSKGW_KEYCACHE_IV_LEN       12
#define PSKGW_KEYCACHE_TAG_LEN      16
#define PSKGW_KEYCACHE_VALUE_MAX    1024 /* largest value the cache stores */
#define PSKGW_KEYCACHE_KEY_MAX      1024 /* largest key (identity) the cache accepts */
#define PSKGW_KEYCACHE_NAME_MAX     16
#define PSKGW_KEYCACHE_DOMAIN_MAX   64
/* header + IV + plaintext header + tag */
#define PSKGW_KEYCACHE_CODEC_OVERHEAD (2 + 12 + 19 + 16)

/* What an entry says about its key. */
typedef enum {
    PSKGW_KEYCACHE_KIND_VALUE = 1,    /* the service gave a value */
    PSKGW_KEYCACHE_KIND_DENIED = 2,   /* the service refused (PSKGW_EDENIED) */
    PSKGW_KEYCACHE_KIND_NOTFOUND = 3, /* the service does not know the key (PSKGW_ENOTFOUND) */
} pskgw_keycache_kind_t;

typedef struct {
    uint8_t kind;            /* pskgw_keycache_kind_t */
    uint64_t fresh_until_ms; /* wall clock: served as fresh before this */
    uint64_t stale_until_ms; /* wall clock: may be served as stale before this (>= fresh) */
    const uint8_t *value;    /* kind VALUE only (may be NULL when value_len == 0) */
    size_t value_len;        /* <= PSKGW_KEYCACHE_VALUE_MAX; 0 for negative kinds */
} pskgw_keycache_record_t;

/* The KEKs a reader accepts: the current one and optionally the previous one (rotation).
 * Borrowed pointers to PSKGW_KEYCACHE_KEK_LEN bytes. */
typedef struct {
    const uint8_t *kek;
    uint8_t kek_id;
    const uint8_t *prev_kek; /* NULL: none */
    uint8_t prev_kek_id;
} pskgw_keycache_keyring_t;

/* Size of the stored form of a value of value_len bytes. */
static inline size_t pskgw_keycache_codec_sealed_len(size_t value_len)
{
    return PSKGW_KEYCACHE_CODEC_OVERHEAD + value_len;
}

/* Seal rec under kek (id kek_id) with the caller's random iv (PSKGW_KEYCACHE_IV_LEN bytes) for
 * the entry (domain 1..64 bytes, name 1..16, key 1..PSKGW_KEYCACHE_KEY_MAX bytes). out needs
 * pskgw_keycache_codec_sealed_len(rec->value_len) bytes. Errors: EINVAL, ETOOBIG, ECRYPTO. */
int pskgw_keycache_codec_encode(const uint8_t *kek, uint8_t kek_id, const uint8_t *iv,
                                const char *domain, const char *name, const uint8_t *key,
                                size_t key_len, const pskgw_keycache_record_t *rec, uint8_t *out,
                                size_t cap, size_t *out_len);

/* Open stored bytes. The KEK is chosen by the stored KEK id among kr's keys; the associated data
 * is built from the stored header and (domain, name, key). The value is copied into value_buf
 * (value_cap bytes); out->value points into value_buf. Intermediate plaintext is wiped.
 * Errors: EINVAL, EPARSE, EBADMAC, ETOOBIG (value_buf too small), ECRYPTO. */
int pskgw_keycache_codec_decode(const pskgw_keycache_keyring_t *kr, const char *domain,
                                const char *name, const uint8_t *key, size_t key_len,
                                const uint8_t *in, size_t in_len, uint8_t *value_buf,
                                size_t value_cap, pskgw_keycache_record_t *out);

#endif
