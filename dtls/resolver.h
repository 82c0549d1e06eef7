/* The PSK resolver interface: how the (D)TLS layer learns the key for an identity.
 *
 * Implemented by the key cache (keycache/); the gateway hands it to the listeners as this
 * struct of function pointers. Tests use a small in-memory resolver behind the same pointers.
 *
 * identity_hex_upper: the KeyID, hex, NUL-terminated: ASCII-hex identities keep the device's
 * case, raw ones are upper case (see pskgw_identity_normalize).
 *
 * lookup(): the synchronous in-process hit. Returns 0 and writes psk (*psk_len in: capacity,
 *   out: length) and uid (NUL-terminated ROTPublicUID, "" if unknown) when the key is in memory;
 *   any negative code otherwise (PSKGW_ENOTFOUND: not cached; PSKGW_EAGAIN: known, but only a
 *   stale key is in memory: resolve() refreshes it, or serves it if the service fails). Never
 *   does I/O. May be NULL.
 *
 * resolve(): asynchronous. Either fails at once with a negative code (and never calls back), or
 *   returns 0, sets *handle and later calls cb exactly once with:
 *     0                               found: psk/psk_len/rot_public_uid valid during cb only
 *     PSKGW_EDENIED, PSKGW_ENOTFOUND  refused: the handshake fails like a wrong key
 *     PSKGW_EUNAVAIL, PSKGW_ETIMEOUT, PSKGW_EBUSY   unavailable: the handshake is dropped
 *     PSKGW_ECANCELED                 after cancel()
 *   cb is never called from inside resolve() itself.
 *
 * cancel(): for a handle whose cb has not fired yet; cb is then called once with
 *   PSKGW_ECANCELED (during cancel() or later: callers accept both).
 */
#ifndef PSKGW_DTLS_RESOLVER_H
#define PSKGW_DTLS_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

typedef void (*pskgw_psk_done_cb)(void *arg, int status, const uint8_t *psk, size_t psk_len,
                                  const char *rot_public_uid);

typedef struct {
    int (*resolve)(void *ctx, const char *identity_hex_upper, pskgw_psk_done_cb cb, void *arg,
                   void **handle);
    void (*cancel)(void *ctx, void *handle);
    int (*lookup)(void *ctx, const char *identity_hex_upper, uint8_t *psk, size_t *psk_len,
                  char *uid, size_t uid_cap);
    void *ctx;
} pskgw_psk_resolver_t;

/* Largest PSK accepted from a resolver (wolfSSL's MAX_PSK_KEY_LEN). */
#define PSKGW_PSK_MAX 64
/* Capacity for a ROTPublicUID string including NUL. */
#define PSKGW_UID_CAP 64

#endif
