/* pskgw_rotkeys: the simulated "root of trust" shared by pskgw-sim and the device-fleet simulator.
 *
 * Everything a simulated u-blox module holds (PSK identity, PSK, ROTPublicUID, E2E key identities,
 * E2E key and nonce) is derived deterministically from a seed string and a device index, so that
 * the simulated service and the simulated devices agree without sharing a table. The simulator
 * recognises a real device from an unknown identity by an HMAC tag inside the identity.
 *
 * Derivation (all HMAC-SHA256 from wolfCrypt; "|" is concatenation; integers big-endian):
 *   K        = HMAC(key = "pskgw-rotkeys-v1", msg = seed)                  (32-byte seed key)
 *   identity = 0x11 0x01 | index (4) | HMAC(K, "id" | 0x11 0x01 | index)[0..8]      (14 bytes)
 *              ASCII form: 28 upper-case hex digits, e.g. "110100000007" + 16 tag digits
 *   session identity (a fresh pair per handshake, as AT+USECPSK gives one per call):
 *            = 0x11 0x01 | index (4) | session (4)
 *              | HMAC(K, "ids" | 0x11 0x01 | index | session)[0..4]                   (14 bytes)
 *   PSK      = HMAC(K, "psk" | identity (14) | key_bits (2))[0..key_bits/8]   (16 or 32 bytes)
 *              (the same rule for both kinds of identity)
 *   UID      = "0002" | hex8(index) | HEX(HMAC(K, "uid" | index)[0..2])  (16 upper-case hex chars)
 *   KI V1    = 0x11 0x01 | index (4) | tag8 | counter (2)                              (16 bytes)
 *              tag8 = HMAC(K, "ki" | 0x01 | index | counter)[0..8]
 *   KI V2    = 0x21 | index (4) | counter (2) | tag4                                   (11 bytes)
 *              tag4 = HMAC(K, "ki" | 0x02 | index | counter)[0..4]
 *   E2E key  = HMAC(K, "e2e-key" | KI)[0..16]
 *   nonce    = HMAC(K, "e2e-nonce" | KI)[0..n], n = 13 (V1) or 12 (V2)
 *   MAC      = 128 bits, "AES_128_CCM" (V1); V2 by layout candidate (the gateway's e2e/header.c
 *              table; config key e2e_v2_layout):
 *                seed  KI | ciphertext | tag, 64 bits "AES_128_CCM_8"           (19 bytes)
 *                pad1  KI | 0x00 | ciphertext | tag, 128 bits "AES_128_CCM"     (28 bytes)
 * The V1 layout mirrors the public examples (prefix 1101, 4-byte device, 8 bytes, 2 bytes 0000).
 * A new counter gives a new KI, hence a new key and nonce: a device that encrypts several messages
 * should use a new counter for each (pskgw_rot_e2e_encrypt uses counter 0).
 *
 * E2E payload (docs: shared/spec/e2e-format.md): KI | AES-CCM ciphertext | tag, no associated
 * data. Overhead: V1 16 + 16 = 32 bytes ("HELLO" -> 37), V2 11 + 8 = 19 bytes.
 *
 * All functions are pure (no global state, no I/O), thread-compatible, and return 0 or a negative
 * PSKGW_E* code; out-parameters are written only on success. Intermediate key material is wiped.
 * Common errors:
 *   PSKGW_EINVAL   NULL pointer, unknown version, key_bits other than 128/256
 *   PSKGW_ETOOBIG  output buffer too small (or plaintext too large)
 *   PSKGW_EPARSE   hex input that is not hex or has the wrong length
 *   PSKGW_ENOTFOUND  bytes that are not an identity/KI of this seed (prefix or tag mismatch)
 *   PSKGW_ECRYPTO  wolfCrypt failed
 * The seed is a NUL-terminated string (any length, may be empty); it is borrowed.
 */
#ifndef PSKGW_TOOLS_ROTKEYS_H
#define PSKGW_TOOLS_ROTKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSKGW_ROT_IDENTITY_LEN     14
#define PSKGW_ROT_IDENTITY_HEX_LEN 28 /* characters, without the NUL */
#define PSKGW_ROT_UID_LEN          16 /* characters, without the NUL */
#define PSKGW_ROT_PSK_MAX_LEN      32
#define PSKGW_ROT_KI_V1_LEN        16
#define PSKGW_ROT_KI_V2_LEN        11
#define PSKGW_ROT_KI_MAX_LEN       16
#define PSKGW_ROT_E2E_KEY_LEN      16
#define PSKGW_ROT_NONCE_V1_LEN     13
#define PSKGW_ROT_NONCE_V2_LEN     12
#define PSKGW_ROT_NONCE_MAX_LEN    13
#define PSKGW_ROT_TAG_V1_LEN       16
#define PSKGW_ROT_TAG_V2_LEN       8

/* Largest plaintext pskgw_rot_e2e_encrypt accepts. */
#define PSKGW_ROT_E2E_MAX_PLAINTEXT 65536

/* ---- PSK identity, PSK, ROTPublicUID ---- */

/* The 14 identity bytes of device `device`. */
int pskgw_rot_identity(const char *seed, uint32_t device, uint8_t out[PSKGW_ROT_IDENTITY_LEN]);

/* The identity as 28 upper-case hex characters plus NUL (out must hold 29 bytes). */
int pskgw_rot_identity_hex(const char *seed, uint32_t device,
                           char out[PSKGW_ROT_IDENTITY_HEX_LEN + 1]);

/* Check identity bytes: *device = its index when `id` is exactly an identity of this seed.
 * PSKGW_EINVAL (NULL), PSKGW_ENOTFOUND (wrong length, prefix or tag). */
int pskgw_rot_identity_check(const char *seed, const uint8_t *id, size_t len, uint32_t *device);

/* Same for the ASCII form (`len` characters, upper or lower case hex).
 * PSKGW_EPARSE when not 28 hex characters; otherwise as pskgw_rot_identity_check. */
int pskgw_rot_identity_check_hex(const char *seed, const char *hex, size_t len, uint32_t *device);

/* The PSK of device `device` for key_bits 128 (16 bytes) or 256 (32 bytes).
 * *out_len = key_bits / 8. PSKGW_EINVAL for other key_bits; PSKGW_ETOOBIG when cap is short. */
int pskgw_rot_psk(const char *seed, uint32_t device, unsigned key_bits, uint8_t *out, size_t cap,
                  size_t *out_len);

/* The identity of device `device` for handshake `session` (see the derivation above). */
int pskgw_rot_identity_session(const char *seed, uint32_t device, uint32_t session,
                               uint8_t out[PSKGW_ROT_IDENTITY_LEN]);
/* The same as 28 upper-case hex characters plus NUL. */
int pskgw_rot_identity_session_hex(const char *seed, uint32_t device, uint32_t session,
                                   char out[PSKGW_ROT_IDENTITY_HEX_LEN + 1]);

/* What an identity of this seed designates. */
typedef struct {
    uint32_t device;
    uint32_t session; /* 0 when !per_session */
    bool per_session; /* a session identity (else the device's fixed identity) */
} pskgw_rot_id_info_t;

/* Resolve any identity of this seed: the device's fixed identity or one of its session
 * identities. PSKGW_EINVAL (NULL), PSKGW_ENOTFOUND (neither). */
int pskgw_rot_identity_resolve(const char *seed, const uint8_t *id, size_t len,
                               pskgw_rot_id_info_t *info);
/* Same for the ASCII form (28 hex characters, any case); PSKGW_EPARSE otherwise. */
int pskgw_rot_identity_resolve_hex(const char *seed, const char *hex, size_t len,
                                   pskgw_rot_id_info_t *info);

/* The PSK of an identity (either kind, resolved first: PSKGW_ENOTFOUND for a foreign one).
 * key_bits 128 or 256; *out_len = key_bits / 8. Errors as pskgw_rot_psk and _resolve. */
int pskgw_rot_identity_psk(const char *seed, const uint8_t *id, size_t len, unsigned key_bits,
                           uint8_t *out, size_t cap, size_t *out_len);
/* Same for the ASCII form (28 hex characters, any case); PSKGW_EPARSE otherwise. */
int pskgw_rot_identity_psk_hex(const char *seed, const char *hex, size_t len, unsigned key_bits,
                               uint8_t *out, size_t cap, size_t *out_len);

/* The device's ROTPublicUID: 16 upper-case hex characters plus NUL, starting "0002". */
int pskgw_rot_uid(const char *seed, uint32_t device, char out[PSKGW_ROT_UID_LEN + 1]);

/* ---- E2E ---- */

typedef enum {
    PSKGW_ROT_E2E_V1 = 1, /* 16-byte KI, AES_128_CCM, 13-byte nonce, 16-byte tag */
    PSKGW_ROT_E2E_V2 = 2, /* 11-byte KI, AES_128_CCM_8, 12-byte nonce, 8-byte tag */
} pskgw_rot_e2e_version_t;

/* What a valid KI designates. */
typedef struct {
    uint32_t device;
    int version; /* PSKGW_ROT_E2E_V1 or _V2 */
    uint16_t counter;
} pskgw_rot_ki_info_t;

/* Decryption parameters of one KI, as GetE2EDecryptionParameters returns them. Holds a key:
 * wipe it with pskgw_rot_e2e_params_wipe() when done. */
typedef struct {
    uint8_t key[PSKGW_ROT_E2E_KEY_LEN];
    uint8_t nonce[PSKGW_ROT_NONCE_MAX_LEN];
    size_t nonce_len;         /* 13 (V1) or 12 (V2) */
    unsigned mac_bits;        /* 128 (V1) or 64 (V2) */
    const char *cipher_suite; /* static: "AES_128_CCM" (V1) or "AES_128_CCM_8" (V2) */
    pskgw_rot_ki_info_t info;
} pskgw_rot_e2e_params_t;

/* KI length (16 or 11), tag length (16 or 8) and total overhead (32 or 19) of a version;
 * 0 for an unknown version. */
size_t pskgw_rot_e2e_ki_len(int version);
size_t pskgw_rot_e2e_tag_len(int version);
size_t pskgw_rot_e2e_overhead(int version);

/* The KI of (device, version, counter). *out_len = 16 (V1) or 11 (V2).
 * PSKGW_EINVAL (version), PSKGW_ETOOBIG (cap). */
int pskgw_rot_e2e_ki(const char *seed, uint32_t device, int version, uint16_t counter, uint8_t *out,
                     size_t cap, size_t *out_len);

/* Check a KI: the version comes from its first nibble (0x1 -> 16 bytes, 0x2 -> 11 bytes).
 * PSKGW_EINVAL (NULL), PSKGW_ENOTFOUND (unknown nibble, wrong length, bad prefix or tag). */
int pskgw_rot_e2e_ki_check(const char *seed, const uint8_t *ki, size_t len,
                           pskgw_rot_ki_info_t *info);

/* Same for the ASCII hex form ("EncryptedHeader": 32 or 22 hex characters, any case).
 * PSKGW_EPARSE when not hex of length 32 or 22; otherwise as pskgw_rot_e2e_ki_check. */
int pskgw_rot_e2e_ki_check_hex(const char *seed, const char *hex, size_t len,
                               pskgw_rot_ki_info_t *info);

/* Decryption parameters for a KI (checked as pskgw_rot_e2e_ki_check does). */
int pskgw_rot_e2e_params(const char *seed, const uint8_t *ki, size_t len,
                         pskgw_rot_e2e_params_t *out);

/* Version 2 layout candidates (names as the gateway's config key e2e_v2_layout). */
typedef enum {
    PSKGW_ROT_V2_SEED = 0, /* "seed": KI | ciphertext | 8-byte tag (AES_128_CCM_8) */
    PSKGW_ROT_V2_PAD1 = 1, /* "pad1": KI | 0x00 | ciphertext | 16-byte tag (AES_128_CCM) */
    PSKGW_ROT_V2_COUNT_
} pskgw_rot_v2_layout_t;

/* "seed" / "pad1" -> candidate; PSKGW_EINVAL otherwise. */
int pskgw_rot_v2_layout_parse(const char *name, pskgw_rot_v2_layout_t *out);
/* The candidate's name ("unknown" for other values). Static. */
const char *pskgw_rot_v2_layout_name(pskgw_rot_v2_layout_t v2);
/* Bytes between KI and ciphertext (0 for V1), and the whole overhead (KI + extra + tag) of a
 * version under candidate v2 (V1: 32 whatever v2); 0 for an unknown version or candidate. */
size_t pskgw_rot_e2e_extra_len_as(int version, pskgw_rot_v2_layout_t v2);
size_t pskgw_rot_e2e_overhead_as(int version, pskgw_rot_v2_layout_t v2);

/* Decryption parameters of a KI as a service simulating candidate v2 answers them (V2: suite and
 * MACLength of the candidate; V1 unaffected). pskgw_rot_e2e_params() is candidate "seed".
 * PSKGW_EINVAL also for an unknown candidate. */
int pskgw_rot_e2e_params_as(const char *seed, const uint8_t *ki, size_t len,
                            pskgw_rot_v2_layout_t v2, pskgw_rot_e2e_params_t *out);

/* Wipe the key and nonce of *p (NULL accepted). */
void pskgw_rot_e2e_params_wipe(pskgw_rot_e2e_params_t *p);

/* Device side: encrypt `len` bytes (pt may be NULL when len is 0) as device `device` with
 * counter 0 into out = KI | ciphertext | tag (AES-CCM, no AAD). *out_len = len + overhead.
 * PSKGW_EINVAL (version, NULL), PSKGW_ETOOBIG (cap short or len > PSKGW_ROT_E2E_MAX_PLAINTEXT),
 * PSKGW_ECRYPTO (wolfCrypt). out and pt must not overlap. */
int pskgw_rot_e2e_encrypt(const char *seed, uint32_t device, int version, const uint8_t *pt,
                          size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* Same with an explicit KI counter (a fresh KI, key and nonce per counter value). */
int pskgw_rot_e2e_encrypt_ctr(const char *seed, uint32_t device, int version, uint16_t counter,
                              const uint8_t *pt, size_t len, uint8_t *out, size_t cap,
                              size_t *out_len);

/* Same, V2 laid out as candidate v2: out = KI | extra bytes (0x00) | ciphertext | tag;
 * *out_len = len + pskgw_rot_e2e_overhead_as(version, v2). PSKGW_EINVAL also for an unknown
 * candidate. */
int pskgw_rot_e2e_encrypt_as(const char *seed, uint32_t device, int version, uint16_t counter,
                             pskgw_rot_v2_layout_t v2, const uint8_t *pt, size_t len, uint8_t *out,
                             size_t cap, size_t *out_len);

#endif
