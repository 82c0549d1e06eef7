/* pskgw-devsim: one simulated device's PSK (D)TLS client session, driven through memory BIOs.
 *
 * OpenSSL's client API (not wolfSSL, and nothing of the gateway's server path), so that the
 * simulator is an independent peer. The session does no I/O and owns no socket: the caller feeds
 * received bytes with pskgw_devsim_client_feed(), takes bytes to send with
 * pskgw_devsim_client_next_out(), and drives DTLS retransmissions from its own timer with
 * pskgw_devsim_client_timeout_ms() / pskgw_devsim_client_on_timeout(). This file does not include
 * uv.h.
 *
 * DTLS output is cut into datagrams at record boundaries (records are never split; several small
 * records of one flight share a datagram up to the MTU). TLS output is a byte stream.
 *
 * Ownership: a pskgw_devsim_client_ctx_t (one SSL_CTX per run) is owned by the caller and must
 * outlive every client made from it. A client owns its SSL object, its two memory BIOs and a
 * wiped copy of its identity and PSK. Not thread-safe (one loop).
 */
#ifndef PSKGW_TOOLS_DEVSIM_CLIENT_H
#define PSKGW_TOOLS_DEVSIM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PSKGW_DEVSIM_DTLS = 0, /* DTLS 1.2 over UDP */
    PSKGW_DEVSIM_TLS = 1,  /* TLS 1.2 over TCP */
} pskgw_devsim_transport_t;

typedef struct pskgw_devsim_client_ctx pskgw_devsim_client_ctx_t;
typedef struct pskgw_devsim_client pskgw_devsim_client_t;

/* Largest identity and PSK a client accepts (the modules use 14-32 identity bytes). */
#define PSKGW_DEVSIM_MAX_IDENTITY 128
#define PSKGW_DEVSIM_MAX_PSK      64

/* A shared context: protocol pinned to (D)TLS 1.2, cipher list `ciphers` (OpenSSL names, ":"
 * separated; "@SECLEVEL=0" is appended so every PSK suite is allowed), no certificates.
 * Errors: PSKGW_EINVAL (NULL), PSKGW_ENOMEM, PSKGW_ECONFIG (no usable cipher in the list). */
int pskgw_devsim_client_ctx_new(pskgw_devsim_transport_t transport, const char *ciphers,
                                pskgw_devsim_client_ctx_t **out);
/* The same for DTLS 1.2 with an RFC 9146 Connection ID (--cid): OpenSSL 3.0 has none, so these
 * clients are wolfSSL's (client_wolf.h; the gateway-profile build, which must have DTLS 1.2 CID:
 * pskgw_devsim_client_cid_available()). They ask the server for a CID and use it once given.
 * Errors: as above; PSKGW_ECONFIG also when this wolfSSL has no DTLS 1.2 CID. */
int pskgw_devsim_client_ctx_new_cid(const char *ciphers, pskgw_devsim_client_ctx_t **out);
bool pskgw_devsim_client_cid_available(void);
void pskgw_devsim_client_ctx_free(pskgw_devsim_client_ctx_t *ctx);

/* A new client session in the "connect" state; nothing is sent until pskgw_devsim_client_start().
 * identity: the bytes sent in the ClientKeyExchange (1..PSKGW_DEVSIM_MAX_IDENTITY), copied;
 * psk: 1..PSKGW_DEVSIM_MAX_PSK bytes, copied and wiped on free. mtu: largest datagram (DTLS).
 * Errors: PSKGW_EINVAL, PSKGW_ENOMEM, PSKGW_ETLS (OpenSSL refused to make the object). */
int pskgw_devsim_client_new(pskgw_devsim_client_ctx_t *ctx, const uint8_t *identity,
                            size_t identity_len, const uint8_t *psk, size_t psk_len, size_t mtu,
                            pskgw_devsim_client_t **out);
/* NULL accepted. Sends nothing (call pskgw_devsim_client_close_notify() first for a clean end). */
void pskgw_devsim_client_free(pskgw_devsim_client_t *c);

/* Result of driving the handshake. */
typedef enum {
    PSKGW_DEVSIM_HS_PENDING = 0, /* waiting for the peer */
    PSKGW_DEVSIM_HS_DONE = 1,    /* established: application data may flow */
} pskgw_devsim_hs_state_t;

/* Begin (or continue) the handshake; queues the ClientHello. *state tells where it stands.
 * Errors: PSKGW_EAUTH (the peer sent a fatal alert during the handshake: wrong key, unknown
 * identity...), PSKGW_ETLS (any other handshake failure). */
int pskgw_devsim_client_start(pskgw_devsim_client_t *c, pskgw_devsim_hs_state_t *state);

/* Give the session bytes received from the peer (one datagram for DTLS) and process them: continue
 * the handshake and decrypt application records. *state as above. Application data received is
 * counted in *records (number of application records (reads) this call produced; may be NULL).
 * Errors: PSKGW_EAUTH / PSKGW_ETLS as above (during the handshake), PSKGW_ECLOSED (the peer sent
 * close_notify or a fatal alert after the handshake), PSKGW_ENOMEM. */
int pskgw_devsim_client_feed(pskgw_devsim_client_t *c, const uint8_t *data, size_t len,
                             pskgw_devsim_hs_state_t *state, unsigned *records);

/* Application data read by pskgw_devsim_client_feed() goes to cb too (bytes borrowed during
 * the call), in order; NULL: only counted. */
typedef void (*pskgw_devsim_client_data_cb)(void *arg, const uint8_t *data, size_t len);
void pskgw_devsim_client_on_data(pskgw_devsim_client_t *c, pskgw_devsim_client_data_cb cb,
                                 void *arg);

/* Encrypt one application message (one record for DTLS; one SSL_write for TLS).
 * Errors: PSKGW_EINVAL (not established, or len 0 / too large), PSKGW_ETLS. */
int pskgw_devsim_client_write(pskgw_devsim_client_t *c, const uint8_t *msg, size_t len);

/* Queue a close_notify alert (best effort; no error). */
void pskgw_devsim_client_close_notify(pskgw_devsim_client_t *c);

/* The next chunk to send, if any: *data points into a buffer owned by the client, valid until the
 * next call on this client. Returns true and sets *data and *len while there is output. */
bool pskgw_devsim_client_next_out(pskgw_devsim_client_t *c, const uint8_t **data, size_t *len);

/* DTLS: milliseconds until the retransmission timer fires, or -1 when no timer runs. */
int64_t pskgw_devsim_client_timeout_ms(pskgw_devsim_client_t *c);
/* DTLS: the timer fired; retransmit (queues output). Errors: PSKGW_ETIMEOUT (OpenSSL gave up). */
int pskgw_devsim_client_on_timeout(pskgw_devsim_client_t *c);

/* Description of the last fatal alert the peer sent ("decrypt error"...), or NULL. Static text. */
const char *pskgw_devsim_client_peer_alert(const pskgw_devsim_client_t *c);
/* True once the handshake negotiated a Connection ID the client sends (--cid clients only). */
bool pskgw_devsim_client_cid_in_use(pskgw_devsim_client_t *c);
/* The negotiated cipher name (static), or NULL before the handshake completes. */
/* Resumption (--resume; OpenSSL clients only, else no-ops). get1: the established session's
 * state (tickets included), owned by the caller (free with _session_free), NULL when none;
 * set: ask for a ticket (tickets false: none, the session resumes by its ID), and offer session
 * (NULL: none yet) on this handshake (before _start); reused: this handshake was abbreviated. */
void *pskgw_devsim_client_get1_session(pskgw_devsim_client_t *c);
int pskgw_devsim_client_set_session(pskgw_devsim_client_t *c, void *session, bool tickets);
bool pskgw_devsim_client_reused(const pskgw_devsim_client_t *c);
void pskgw_devsim_client_session_free(void *session);

const char *pskgw_devsim_client_cipher(const pskgw_devsim_client_t *c);

#endif
