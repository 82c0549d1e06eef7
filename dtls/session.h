/* pskgw_dtls_session: one PSK (D)TLS 1.2 server session, driven by bytes and time.
 *
 * The session never owns a socket, timer or clock. The owner (a gateway listener) gives it the
 * peer's datagrams (DTLS) or stream bytes (TLS) with pskgw_dtls_session_feed(), calls
 * pskgw_dtls_session_timeout() when the deadline it last announced through cbs.timer passes,
 * and gets back: bytes to send (cbs.send), decrypted messages (cbs.message), lifecycle events
 * (cbs.event) and the end of the session (cbs.closed, exactly once).
 *
 * Asynchronous identity resolution: before a flight reaches wolfSSL, the session reads the PSK
 * identity from the plaintext ClientKeyExchange (reassembled from fragments). A synchronous
 * resolver->lookup() hit is used at once; otherwise the flight is parked (at most
 * max_parked_bytes; a retransmitted flight replaces the parked one), resolver->resolve() runs,
 * and the parked bytes are fed when it calls back. wolfSSL's PSK callback only copies the
 * resolved key. An unknown, refused, blocked or oversize identity gets a random key, so it fails
 * exactly like a wrong key (DTLS: the client's Finished is dropped and the session ends; TLS:
 * bad_record_mac), revealing nothing about which identities exist.
 *
 * Callbacks fire only from inside the session's own entry points (feed, timeout, write,
 * close_notify) or from the resolver's completion. The owner must not free the session inside a
 * callback other than `closed`... and not even there: pskgw_dtls_session_free() called inside a
 * callback is deferred until the entry point returns (safe), but the owner's own memory that the
 * callbacks use must stay valid until then.
 */
#ifndef PSKGW_DTLS_SESSION_H
#define PSKGW_DTLS_SESSION_H

#include "dtls/ctx.h"
#include "dtls/resolver.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pskgw_dtls_session pskgw_dtls_session_t;

typedef enum {
    PSKGW_DTLS_EV_IDENTITY = 1,    /* identity read; return <0 to refuse (blocked identity) */
    PSKGW_DTLS_EV_PARK,            /* lookup must wait; return <0 to refuse (too many pending) */
    PSKGW_DTLS_EV_UNPARK,          /* the parked lookup ended (any status) */
    PSKGW_DTLS_EV_LOOKUP_FAILED,   /* resolver unavailable: the session ends with PSKGW_EUNAVAIL */
    PSKGW_DTLS_EV_ESTABLISHED,     /* handshake complete */
    PSKGW_DTLS_EV_AUTH_FAILED,     /* the peer's Finished failed: wrong key or refused identity */
    PSKGW_DTLS_EV_MESSAGE_DROPPED, /* a message above max_message was dropped (DTLS) */
    PSKGW_DTLS_EV_PEER_MOVED,      /* pskgw_dtls_session_feed_cid: move the peer address now */
    PSKGW_DTLS_EV_THAWED,          /* a hibernated session got its wolfSSL object back */
    PSKGW_DTLS_EV_THAW_FAILED      /* ... or could not: the session ends with PSKGW_ETLS */
} pskgw_dtls_event_t;

typedef struct {
    /* Bytes for the peer: one datagram (DTLS) or stream bytes (TLS). Borrowed during the call.
     * Return 0, or <0 if they could not be queued (DTLS: treated as loss; TLS: ends session). */
    int (*send)(void *arg, const uint8_t *data, size_t len);
    /* One application message (DTLS: one record; TLS: per framing). Borrowed during the call.
     * seq counts from 1. */
    void (*message)(void *arg, uint64_t seq, const uint8_t *data, size_t len);
    /* Events; identity is the KeyID (NULL before it is known). Return value used for
     * PSKGW_DTLS_EV_IDENTITY and PSKGW_DTLS_EV_PARK only. May be NULL. */
    int (*event)(void *arg, pskgw_dtls_event_t ev, const char *identity);
    /* The next absolute deadline (ms) at which pskgw_dtls_session_timeout() must be called, or
     * UINT64_MAX for none. Announced after every entry point that changed it. */
    void (*timer)(void *arg, uint64_t deadline_ms);
    /* The session is over (called once). reason: 0 close_notify from the peer or local close,
     * PSKGW_ETIMEOUT handshake deadline, half-open deadline (no ClientKeyExchange yet: identity
     * still NULL) or retransmissions exhausted, PSKGW_EAGAIN idle timeout,
     * PSKGW_EAUTH authentication failed, PSKGW_EUNAVAIL key lookup unavailable,
     * PSKGW_ETLS fatal alert or protocol error, PSKGW_ETOOBIG oversize TLS message or held
     * stream bytes, PSKGW_EIO send failure, PSKGW_EBUSY the PARK event was refused,
     * PSKGW_ENOMEM. After it no other callback fires; the owner frees the session. */
    void (*closed)(void *arg, int reason);
    /* The current time (monotonic ms); used on resolver completion, which carries no time. */
    uint64_t (*now)(void *arg);
} pskgw_dtls_session_cbs_t;

/* A session for one peer. ctx and cbs are borrowed and must outlive the session; resolver is
 * borrowed until the handshake completes: the session lets go of it before
 * PSKGW_DTLS_EV_ESTABLISHED fires, so the owner may free it from that event on (an established
 * session resolves no identity). arg is passed to every callback. peer bytes as for
 * pskgw_dtls_ctx_check_hello (DTLS; ignored for TLS). Errors: PSKGW_EINVAL, PSKGW_ENOMEM,
 * PSKGW_ETLS. */
int pskgw_dtls_session_new(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                           const pskgw_dtls_session_cbs_t *cbs, void *arg, const uint8_t *peer,
                           size_t peer_len, uint64_t now, pskgw_dtls_session_t **out);

/* Frees the session: wolfSSL object, parked bytes, key material (wiped). A pending lookup is
 * cancelled. No callback fires from it (not even closed). Deferred when called from inside a
 * callback of this session. NULL is accepted. */
void pskgw_dtls_session_free(pskgw_dtls_session_t *s);

/* Give one datagram (DTLS) or the next stream bytes (TLS). Returns 0, or PSKGW_ECLOSED if the
 * session is already over (nothing done). Errors in the bytes end the session via cbs.closed. */
int pskgw_dtls_session_feed(pskgw_dtls_session_t *s, const uint8_t *data, size_t len, uint64_t now);

/* DTLS Connection ID (RFC 9146; dtls/cid.h): a datagram that came from an address other than the
 * session's, fed like pskgw_dtls_session_feed, tls12_cid record by record (records with another
 * CID and anything after a malformed record are dropped). When one of its records authenticates
 * (decrypts to plaintext under the session's keys) and its epoch and sequence number are above
 * those of every datagram that authenticated before (RFC 9146 section 6), the event
 * PSKGW_DTLS_EV_PEER_MOVED fires, once per call, before that record's message is delivered: the
 * owner moves the session's peer address to the datagram's then, so that answers to the message
 * go there; *move tells that it fired. cbs.send always means the owner's current address: a
 * record that does not authenticate gets no answer at its address. 0, PSKGW_ECLOSED, PSKGW_EINVAL,
 * PSKGW_ENOTFOUND (the session is not established with a negotiated CID: nothing done). */
int pskgw_dtls_session_feed_cid(pskgw_dtls_session_t *s, const uint8_t *data, size_t len,
                                uint64_t now, bool *move);

/* The CID the peer puts in its records, once the handshake negotiated one (the client asked
 * and the context offers CIDs): a pointer borrowed from the session and *len (optional); else
 * NULL. */
const uint8_t *pskgw_dtls_session_cid(const pskgw_dtls_session_t *s, size_t *len);

/* DTLS: the random (32 bytes) of the ClientHello that started the session, noted by the owner
 * when it makes the session; hello_is tells whether a ClientHello with that random is that one
 * (a late network duplicate, not a device restart). The session keeps 64 bits of it (folded), for
 * its whole life awake; an imported or unfrozen session knows none (false). */
void pskgw_dtls_session_note_hello(pskgw_dtls_session_t *s, const uint8_t random[32]);
bool pskgw_dtls_session_hello_is(const pskgw_dtls_session_t *s, const uint8_t random[32]);

/* Call when the announced deadline has passed (calling early is harmless). */
void pskgw_dtls_session_timeout(pskgw_dtls_session_t *s, uint64_t now);

/* Count activity the peer did not send for the idle timeout (a forwarding session whose
 * backend streams to the device: the idle deadline restarts at now, as for an authenticated
 * record in). No-op before the handshake completes or once the session is over. */
void pskgw_dtls_session_touch(pskgw_dtls_session_t *s, uint64_t now);

/* Encrypt and send one message (DTLS: one record; TLS: framed per options). 0, PSKGW_EAGAIN
 * (handshake not finished), PSKGW_ECLOSED, PSKGW_ETOOBIG (above max_message), PSKGW_ETLS,
 * PSKGW_EIO (cbs.send refused it: TLS ends the session; DTLS loses this one datagram and the
 * session goes on). */
int pskgw_dtls_session_write(pskgw_dtls_session_t *s, const uint8_t *data, size_t len);

/* Send close_notify and end the session (cbs.closed with 0). No-op if already over. */
void pskgw_dtls_session_close_notify(pskgw_dtls_session_t *s);

/* State for metadata. Strings are borrowed from the session (NULL until known) until its next
 * entry point or free: hibernation and thaw move them. */
bool pskgw_dtls_session_established(const pskgw_dtls_session_t *s);
bool pskgw_dtls_session_is_closed(const pskgw_dtls_session_t *s);
bool pskgw_dtls_session_lookup_pending(const pskgw_dtls_session_t *s);
const char *pskgw_dtls_session_identity(const pskgw_dtls_session_t *s);
const char *pskgw_dtls_session_uid(const pskgw_dtls_session_t *s);
/* Negotiated suite name ("PSK-AES128-CCM-8"), or NULL before the handshake. */
const char *pskgw_dtls_session_cipher(const pskgw_dtls_session_t *s);

/* ---- hibernation (dtls/hibernate.c) ----
 * An established DTLS session can hibernate: wolfSSL's state (wolfSSL_dtls_export) goes into one
 * compact blob held by the session and the WOLFSSL object is freed. Identity, ROTPublicUID,
 * delivered count and deadlines stay in the session. The next entry point that needs wolfSSL
 * (feed, feed_cid, write, close_notify) thaws it first: a new WOLFSSL object imports the blob,
 * with the write sequence number moved PSKGW_DTLS_SEQ_JUMP ahead so that no record sequence
 * number (the AES-CCM nonce) can be used twice even if the blob were older than the session's
 * last records; then the call goes on as usual. cbs.event fires PSKGW_DTLS_EV_THAWED, or
 * PSKGW_DTLS_EV_THAW_FAILED and the session ends with PSKGW_ETLS. An idle timeout of a
 * hibernated session ends it without close_notify. A session with a negotiated Connection ID
 * keeps it while hibernated (pskgw_dtls_session_cid, pskgw_dtls_session_feed_cid: a record from
 * a new address thaws it and the RFC 9146 section 6 rule holds across the thaw); the thaw puts
 * both CIDs, ours and the peer's, back on the imported wolfSSL object. */
#define PSKGW_DTLS_SEQ_JUMP ((uint64_t)1 << 24)

/* Hibernate now. 0; PSKGW_EINVAL (NULL, TLS, inside a callback), PSKGW_ECLOSED, PSKGW_EAGAIN
 * (handshake not finished, or the peer has not yet confirmed it: wolfSSL still holds our last
 * flight), PSKGW_EEXISTS (already hibernated), PSKGW_ENOMEM, PSKGW_ETLS (export failed). On
 * error the session is unchanged and awake. */
int pskgw_dtls_session_hibernate(pskgw_dtls_session_t *s);
bool pskgw_dtls_session_hibernated(const pskgw_dtls_session_t *s);
/* Bytes of wolfSSL's export a hibernated session holds, packed (0 when awake). */
size_t pskgw_dtls_session_blob_size(const pskgw_dtls_session_t *s);
/* Monotonic ms of the last authenticated record (or of the end of the handshake). */
uint64_t pskgw_dtls_session_last_rx(const pskgw_dtls_session_t *s);
/* What a session holds, in bytes asked of malloc (its own overhead, about 8 bytes per
 * allocation rounded up to 16, not counted): the session structure, the hibernation blob's
 * allocation (0 when awake), the identity and ROTPublicUID strings, and how many allocations
 * these are. wolfSSL's object of an awake session is not counted. For memory reports. */
typedef struct {
    size_t session;
    size_t blob;
    size_t strings;
    size_t allocations;
} pskgw_dtls_session_sizes_t;
void pskgw_dtls_session_sizes(const pskgw_dtls_session_t *s, pskgw_dtls_session_sizes_t *out);

/* Restart without a handshake: an established DTLS session as one self-contained record (the
 * hibernation blob plus identity, ROTPublicUID, messages delivered, the highest record that
 * authenticated, the negotiated Connection IDs and the ms it has been idle at `now`), for
 * another process to import. The session hibernates first if it is awake (same
 * conditions and errors as pskgw_dtls_session_hibernate, PSKGW_EEXISTS aside) and stays
 * hibernated and usable. *out is malloc'ed, to be wiped (it holds the session keys) and freed by
 * the caller. */
int pskgw_dtls_session_export(pskgw_dtls_session_t *s, uint64_t now, uint8_t **out, size_t *len);
/* A session from such a record, hibernated: the peer's next record thaws it (the write sequence
 * number jumps, see above), with no handshake. ctx, resolver, cbs, arg as for
 * pskgw_dtls_session_new; its idle time goes on from the record's; its CID, if it negotiated
 * one, is pskgw_dtls_session_cid() at once (the owner indexes it before the first record). The
 * record is not changed. No callback fires from it: call pskgw_dtls_session_timeout(s, now) once
 * to have its idle deadline announced. pskgw_dtls_session_cipher() is NULL until it thaws. PSKGW_EINVAL, PSKGW_EPARSE (malformed record), PSKGW_ENOMEM. */
int pskgw_dtls_session_import(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                              const pskgw_dtls_session_cbs_t *cbs, void *arg, const uint8_t *rec,
                              size_t len, uint64_t now, pskgw_dtls_session_t **out);
/* The idle ms a record says (0 for a malformed one): to drop expired records before import. */
uint64_t pskgw_dtls_session_record_idle_ms(const uint8_t *rec, size_t len);

/* ---- frozen sessions (dtls/hibernate.c) ----
 * The smallest form of a hibernated session, for an owner that keeps many idle ones: one slot of
 * the slab's frozen zone (dtls/slab.h: pages of their own, kept out of core dumps, wiped when
 * freed; malloc when the slab has none) holding what a thaw needs (wolfSSL's export packed, the peer's CID and ours,
 * identity, ROTPublicUID, messages delivered, the highest record that authenticated, the last
 * record's time), and no session structure. Never leaves the process (a hand-over or a store
 * uses pskgw_dtls_session_export).
 * freeze: s hibernates first if it is awake (same conditions and errors as
 * pskgw_dtls_session_hibernate, PSKGW_EEXISTS aside; PSKGW_EINVAL inside a callback of s,
 * PSKGW_ECLOSED once it ended, PSKGW_EINVAL for an identity or ROTPublicUID over 254
 * characters: it stays hibernated), then
 * *out holds it and s is freed; on error s is unchanged. unfreeze: a session from f, hibernated
 * and usable as after pskgw_dtls_session_import (ctx, resolver, cbs, arg as for
 * pskgw_dtls_session_new; no callback fires from it); f is wiped and freed on success, unchanged
 * on error (PSKGW_EINVAL, PSKGW_ENOMEM); pskgw_dtls_session_cipher() is NULL until it thaws. frozen_free: wiped and freed (NULL: nothing). The
 * accessors read f as the session's own would: identity, uid and cid NULL when it has none. */
typedef struct pskgw_dtls_frozen pskgw_dtls_frozen_t;
int pskgw_dtls_session_freeze(pskgw_dtls_session_t *s, pskgw_dtls_frozen_t **out);
int pskgw_dtls_session_unfreeze(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                                const pskgw_dtls_session_cbs_t *cbs, void *arg,
                                pskgw_dtls_frozen_t *f, uint64_t now, pskgw_dtls_session_t **out);
void pskgw_dtls_frozen_free(pskgw_dtls_frozen_t *f);
const char *pskgw_dtls_frozen_identity(const pskgw_dtls_frozen_t *f);
const char *pskgw_dtls_frozen_uid(const pskgw_dtls_frozen_t *f);
const uint8_t *pskgw_dtls_frozen_cid(const pskgw_dtls_frozen_t *f, size_t *len);
uint64_t pskgw_dtls_frozen_last_rx(const pskgw_dtls_frozen_t *f);
/* The memory f takes, for memory reports: its slab slot's size, or the bytes asked of malloc. */
size_t pskgw_dtls_frozen_size(const pskgw_dtls_frozen_t *f);

#endif
