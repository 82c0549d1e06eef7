/* pskgw_dtls_ctx: the per-listener (D)TLS context.
 *
 * Owns one wolfSSL CTX (DTLS 1.2 or TLS 1.2 server, static PSK suites only), a DRBG shared by all
 * of its sessions, and the stateless-cookie secrets. Does no I/O and reads no clock: `now` is
 * monotonic milliseconds given by the caller. One loop thread; no locks.
 *
 * Stateless cookies (DTLS): pskgw_dtls_ctx_check_hello() answers a ClientHello without a valid
 * cookie with a HelloVerifyRequest written into the caller's buffer and keeps nothing about the
 * peer. The cookie is exactly wolfSSL's (HMAC-SHA256 over the peer bytes, version, random,
 * session id, suites and compression), so the fresh session created for a ClientHello with a
 * valid cookie, given the same secret and peer bytes, accepts it.
 *
 * Cookie lifetime: time is cut into periods of cookie_rotate_ms (period = now / cookie_rotate_ms,
 * on the caller's clock), with a fresh random secret for each. A cookie is accepted in the
 * period it was made and the next one only, so a captured ClientHello replays for at most
 * 2 * cookie_rotate_ms (the cookie's time is the secret's period); after a gap of two periods
 * no old secret is kept at all.
 */
#ifndef PSKGW_DTLS_CTX_H
#define PSKGW_DTLS_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtls/ticket.h"

typedef struct pskgw_dtls_ctx pskgw_dtls_ctx_t;

typedef enum {
    PSKGW_FRAMING_RECORD = 0, /* each TLS record's plaintext is one message (DTLS: always) */
    PSKGW_FRAMING_LEN16 = 1,  /* 2-byte big-endian length, then the message */
    PSKGW_FRAMING_NEWLINE = 2 /* message bytes up to '\n' (a preceding '\r' is removed too) */
} pskgw_framing_t;

#define PSKGW_DTLS_DEFAULT_CIPHERS \
    "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:PSK-AES128-CBC-SHA256:PSK-AES128-CBC-SHA"

typedef struct {
    bool dtls;                     /* true: DTLS 1.2 (UDP); false: TLS 1.2 (stream) */
    const char *ciphers;           /* OpenSSL-style list, ':'-separated; NULL: the default */
    size_t max_identity_len;       /* raw identity bytes; 0: 128 (also the maximum) */
    size_t max_parked_bytes;       /* bytes held per session while a lookup runs; 0: 4096 */
    size_t max_message;            /* plaintext bytes per message; 0: 4096 (max 16384) */
    pskgw_framing_t framing;       /* TLS only */
    uint32_t handshake_timeout_ms; /* 0: 10000 */
    uint32_t half_open_timeout_ms; /* until the ClientKeyExchange; 0 or above the handshake
                                    * timeout: the handshake timeout */
    uint32_t idle_timeout_s;       /* 0: no idle timeout */
    uint32_t cookie_rotate_ms;     /* cookie secret period; 0: 30000 */
    uint16_t mtu;                  /* DTLS record MTU; 0: 1400 */
    /* DTLS 1.2 Connection ID (RFC 9146, dtls/cid.h): 0 off; else every session offers a CID of
     * this many bytes (PSKGW_CID_MIN..PSKGW_CID_MAX) to a client that asks, byte 0 cid_worker,
     * the rest from the context's DRBG. */
    uint8_t cid_len;
    uint8_t cid_worker;
    /* Session tickets (dtls/ticket.h): NULL none (no resumption at all); else the context
     * takes a reference (dropped when it is freed or the keys are replaced), sets wolfSSL's
     * session timeout to their lifetime and, when pskgw_ticket_keys_session_cache() is above 0,
     * keeps a session-ID cache of that many sessions for clients without tickets (its own, for
     * its life: replaced keys do not resize or empty it). */
    pskgw_ticket_keys_t *tickets;
} pskgw_dtls_options_t;

/* Validates the options and makes the context, holding one reference. Errors: PSKGW_ECONFIG (a
 * NULL cipher, an unknown suite, a non-PSK suite, a bad limit; *why names it, static string),
 * PSKGW_ENOMEM, PSKGW_ETLS. */
int pskgw_dtls_ctx_new(const pskgw_dtls_options_t *opt, pskgw_dtls_ctx_t **out, const char **why);
/* Reference counting (one loop thread): a context replaced by a reload stays alive for the
 * sessions made from it while its owner moves on to a new one. Whoever keeps a session made from
 * ctx takes a reference for it (the gateway's listener does, per session) and drops it once the
 * session is freed. ref returns ctx. free drops one reference and frees the context with the
 * last; every session made from it must be freed by then. NULL is accepted by both. */
pskgw_dtls_ctx_t *pskgw_dtls_ctx_ref(pskgw_dtls_ctx_t *ctx);
void pskgw_dtls_ctx_free(pskgw_dtls_ctx_t *ctx);

/* Replaces the idle timeout (seconds, 0: none) that the established sessions made from ctx
 * read: their next deadline (pskgw_dtls_session_timeout, the deadline announced after their next
 * entry) uses it. A reload applies a new idle timeout to sessions of a replaced context so. */
void pskgw_dtls_ctx_set_idle_timeout(pskgw_dtls_ctx_t *ctx, uint32_t idle_timeout_s);

/* The options in effect (defaults filled in). Borrowed; ciphers points into the context. */
const pskgw_dtls_options_t *pskgw_dtls_ctx_options(const pskgw_dtls_ctx_t *ctx);

/* Maximum size of a HelloVerifyRequest datagram. */
#define PSKGW_DTLS_HVR_MAX 64

/* Classifies a datagram from a peer without a session (DTLS only):
 *   1  a ClientHello carrying a valid cookie: create a session for this peer and feed it.
 *   0  a ClientHello without a valid cookie: send out[0..*out_len) back to the peer; keep nothing.
 *   PSKGW_EPARSE  anything else (drop it).
 * peer/peer_len: bytes naming the peer's address, the same for every datagram of that peer
 * (the listener uses family, port and address). Rotates the secret when due. */
int pskgw_dtls_ctx_check_hello(pskgw_dtls_ctx_t *ctx, uint64_t now, const uint8_t *peer,
                               size_t peer_len, const uint8_t *dgram, size_t len, uint8_t *out,
                               size_t cap, size_t *out_len);

/* Replaces the ticket keys (a reload that rotated the shared secrets); new handshakes use them
 * at once. Only a context made with tickets; keys not NULL. Errors: PSKGW_EINVAL. */
int pskgw_dtls_ctx_set_tickets(pskgw_dtls_ctx_t *ctx, pskgw_ticket_keys_t *keys);

/* Forces a secret rotation now (tests and operators). */
int pskgw_dtls_ctx_rotate_cookie_secret(pskgw_dtls_ctx_t *ctx, uint64_t now);

#endif
