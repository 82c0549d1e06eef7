/* dtls/ module-internal: the context's and the session's layouts, shared by ctx.c, session.c,
 * session_cid.c, session_lookup.c, wolfio.c, framing.c, ticket.c and hibernate.c. */
#ifndef PSKGW_DTLS_INTERNAL_H
#define PSKGW_DTLS_INTERNAL_H

#include "dtls/cid.h"
#include "dtls/ctx.h"
#include "dtls/parse.h"
#include "dtls/session.h"
#include "dtls/sidcache.h"
#include "dtls/ticket.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#define PSKGW_COOKIE_SECRET_LEN 32
#define PSKGW_COOKIE_MEMO_PEER  32  /* peer bytes remembered (the listener uses 7 or 19) */
#define PSKGW_COOKIE_MEMO_DGRAM 512 /* a longer ClientHello is checked again, not remembered */
#define PSKGW_TLS_SCRATCH       4096
#define PSKGW_RNG_POOL          256
#define PSKGW_RNG_TAKE_MAX      32
#define PSKGW_READ_BUF          16384
#define PSKGW_PEER_CID_MAX      255 /* the peer's CID: a u8-length vector (RFC 9146) */

struct pskgw_dtls_ctx {
    pskgw_dtls_options_t opt;
    unsigned refs; /* pskgw_dtls_ctx_ref / _free (ctx.h) */
    char *ciphers;
    WOLFSSL_CTX *wctx;
    WC_RNG rng;
    bool rng_ok;
    /* Random bytes drawn ahead from rng, PSKGW_RNG_POOL at a time, for requests up to
     * PSKGW_RNG_TAKE_MAX bytes (a CID, a cookie secret, an IV): one DRBG call serves many, each
     * byte is handed out once and wiped as it goes (pskgw_dtls_ctx_random). The rng_left bytes at
     * the end of rng_pool are the unused ones. */
    uint8_t rng_pool[PSKGW_RNG_POOL];
    size_t rng_left;
    bool inited;                                /* wolfSSL_Init done */
    uint8_t secret[2][PSKGW_COOKIE_SECRET_LEN]; /* [0] current, [1] previous */
    bool have_prev;
    bool secret_set;
    uint64_t period; /* of secret[0]: now / cookie_rotate_ms */
    /* The cookie HMAC keyed once per secret (ctx.c): [secret][0] SHA-256 over K ^ ipad,
     * [secret][1] over K ^ opad; key material, wiped with the secrets. */
    wc_Sha256 cookie_pad[2][2];
    /* The last ClientHello whose cookie check_hello accepted, and the secret that made it: the
     * secret pick for the session that follows (pskgw_dtls_ctx_cookie_index) without a second
     * HMAC. Cleared whenever the secrets change. */
    uint8_t memo_peer[PSKGW_COOKIE_MEMO_PEER];
    uint8_t memo_dgram[PSKGW_COOKIE_MEMO_DGRAM];
    size_t memo_peer_len;
    size_t memo_len; /* 0: nothing remembered */
    int memo_idx;
    pskgw_ticket_keys_t *tickets; /* borrowed; NULL: no tickets (dtls/ticket.h) */
    pskgw_sidcache_t *sids;       /* owned; NULL: no session-ID resumption (ticket.c) */
    /* Shared scratch (one thread): TLS CKE pre-parse, plaintext reads. */
    uint8_t scratch[PSKGW_TLS_SCRATCH];
    uint8_t readbuf[PSKGW_READ_BUF];
};

/* Which secret validates this ClientHello from peer: 0 current, 1 previous, <0 none. */
int pskgw_dtls_ctx_cookie_index(pskgw_dtls_ctx_t *ctx, const uint8_t *peer, size_t peer_len,
                                const uint8_t *dgram, size_t len);
/* wolfSSL I/O callbacks (session.c); the I/O context is the session. */
int pskgw_dtls_io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx);
int pskgw_dtls_io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx);

/* wolfSSL's ticket callback (ticket.c); the user context is the ctx's pskgw_ticket_keys_t. */
int pskgw_ticket_enc_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
                        unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                        unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc, unsigned char *t,
                        int in_len, int *out_len, void *user);
/* Counts a handshake that just ended, full or resumed (ticket.c; no-op without tickets). */
void pskgw_ticket_note_established(pskgw_dtls_session_t *s);
/* Session-ID resumption (RFC 5246 7.3; ticket.c): wolfSSL's external session cache callbacks
 * over the context's pskgw_sidcache_t. new: a full handshake's session (not one that got a
 * ticket) stored with the session's identity and uid, for the ticket lifetime; get: the
 * session of a ClientHello's session ID, its identity and uid set on the session and checked
 * as a ticket's are. */
int pskgw_sid_new_cb(WOLFSSL *ssl, WOLFSSL_SESSION *sess);
WOLFSSL_SESSION *pskgw_sid_get_cb(WOLFSSL *ssl, const unsigned char *id, int len, int *copy);

/* Fill buf with random bytes from the context's DRBG; up to PSKGW_RNG_TAKE_MAX bytes come from
 * its pool (drawn ahead, each byte once). 0 or PSKGW_ECRYPTO. */
int pskgw_dtls_ctx_random(pskgw_dtls_ctx_t *ctx, uint8_t *buf, size_t len);

/* ---- the session (session.c, wolfio.c, framing.c) ---- */

typedef enum {
    KEY_NONE = 0, /* identity not seen yet */
    KEY_PENDING,  /* resolver running; input parked */
    KEY_READY,    /* s->hs->psk holds the key */
    KEY_RANDOM    /* refused/unknown/blocked: a random key makes it fail like a wrong one */
} key_state_t;

typedef struct {
    pskgw_dtls_session_t *s; /* NULL once the session gave up on it */
    void *handle;
} resolve_req_t;

/* Handshake-only state, freed (wiped) when the handshake ends: an established session holds
 * none of it. */
typedef struct {
    uint8_t psk[PSKGW_PSK_MAX]; /* KEY_READY: the resolved key, copied into wolfSSL's callback */
    size_t psk_len;
    pskgw_cke_asm_t cke;
    uint8_t raw_id[PSKGW_IDENTITY_MAX_RAW];
    size_t raw_id_len;
    uint8_t peer[64];
    size_t peer_len;
    uint8_t *park; /* DTLS: [u16 len][datagram]...; TLS: stream bytes */
    size_t park_len;
} hs_state_t;

/* One per session, awake or hibernated: the 8-byte fields first, then the smaller ones, the flags
 * a bit each, so that it fits a 256-byte malloc chunk (248 bytes usable; docs/ARCHITECTURE.md,
 * "What an awake session holds"). What only the handshake uses and a half-open handshake can
 * give up between datagrams is in hs. */
struct pskgw_dtls_session {
    pskgw_dtls_ctx_t *ctx;
    /* Borrowed until the handshake completes (NULL from then on: the owner may free it once
     * PSKGW_DTLS_EV_ESTABLISHED has fired; session.h). */
    const pskgw_psk_resolver_t *resolver;
    const pskgw_dtls_session_cbs_t *cbs; /* borrowed: outlives the session (session.h) */
    void *arg;
    WOLFSSL *ssl;

    const uint8_t *in; /* input offered to wolfSSL's recv callback */
    size_t in_len;

    uint64_t now;
    uint64_t hs_deadline;
    uint64_t ho_deadline; /* half-open: until the identity is known */
    uint64_t rtx_deadline;
    uint64_t last_rx;
    uint64_t announced;
    uint64_t seq;
    uint64_t authed; /* DTLS: records that authenticated (decrypted to plaintext) */
    uint64_t rx_top; /* DTLS: highest (epoch << 48 | seq) of a datagram that authenticated */
    uint64_t rx_key; /* pskgw_dtls_session_feed_cid: the record's epoch << 48 | seq */
    /* DTLS: the random of the ClientHello that started the session, folded to 64 bits
     * (pskgw_dtls_session_note_hello); 0: not known (imported, unfrozen). */
    uint64_t hello;

    char *identity;
    char *uid;
    hs_state_t *hs; /* NULL once established or closed */
    resolve_req_t *req;

    uint8_t *fbuf; /* TLS len16/newline framing */
    size_t flen;

    /* Hibernation (hibernate.c): ssl is NULL; blob is the hibernated session's one allocation:
     * wolfSSL's export, packed (blob_len bytes), the peer's CID (peer_cid_len bytes, with
     * cid_on: wolfSSL's export leaves the CIDs out; ours is cid below), then identity and uid
     * (strings_in_blob: they point there); seq_off is where the 48-bit write sequence number
     * sits in the unpacked export; cipher_name is wolfSSL's static suite name. */
    uint8_t *blob;
    const char *cipher_name;

    key_state_t key;
    int depth;
    uint16_t blob_len;
    uint16_t seq_off;
    uint8_t peer_cid_len;
    uint8_t cid_len;
    uint8_t cid[PSKGW_CID_MAX]; /* DTLS: the CID offered (cid_len > 0) */

    /* Flags, a bit each. */
    bool hibernated : 1;
    bool strings_in_blob : 1;
    bool cid_on : 1; /* the handshake negotiated it: the peer's records carry cid */
    /* pskgw_dtls_session_feed_cid: the record being fed came from a new address (rx_key: its
     * epoch << 48 | seq); rx_moved: PSKGW_DTLS_EV_PEER_MOVED fired during this call. */
    bool rx_new_peer : 1;
    bool rx_moved : 1;
    bool resumed_by_id : 1; /* the session-ID cache answered the ClientHello (ticket.c) */
    bool dtls : 1;
    bool established : 1;
    bool closed : 1;
    bool free_deferred : 1;
    bool cke_fed : 1;            /* a ClientKeyExchange reached wolfSSL */
    bool server_flight_sent : 1; /* TLS: our first flight went out */
    bool sent : 1;               /* something was sent during this entry point */
    bool send_failed : 1;
    bool dgram_dropped : 1; /* DTLS: a datagram the owner could not send (a loss) */
    bool fed_once : 1;
    bool hs_freed : 1; /* wolfSSL_FreeHandshakeResources done */
    bool ccs_fed : 1;  /* DTLS: the client's ChangeCipherSpec reached wolfSSL */
};

/* Hibernation (hibernate.c): a hibernated session gets its wolfSSL object back (import, write
 * sequence jumped); 0, or <0 with the blob wiped and freed (the caller ends the session). Does
 * nothing for a session that is awake. */
int pskgw_dtls_session_thaw(pskgw_dtls_session_t *s);
/* wolfSSL's export/import peer callbacks: the owner keeps the peer address, so the blob holds
 * none (export writes an empty one, import ignores it). */
int pskgw_dtls_io_get_peer(WOLFSSL *ssl, char *ip, int *ip_sz, unsigned short *port, int *fam);
int pskgw_dtls_io_set_peer(WOLFSSL *ssl, char *ip, int ip_sz, unsigned short port, int fam);
/* A new session's common fields (hibernate.c), for pskgw_dtls_session_new and the shell below:
 * from the awake zone, zeroed, with its context, resolver, callbacks, arg and time, no deadline
 * yet. 0, PSKGW_EINVAL (a missing argument or callback) or PSKGW_ENOMEM. */
int pskgw_dtls_session_blank(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                             const pskgw_dtls_session_cbs_t *cbs, void *arg, uint64_t now,
                             pskgw_dtls_session_t **out);
/* A hibernated session's shell (hibernate.c), for an import and an unfreeze: an established
 * DTLS session with a key, no wolfSSL object and no blob yet (the caller fills them and sets
 * hibernated). 0, PSKGW_EINVAL (a missing argument or callback, a TLS context) or
 * PSKGW_ENOMEM. */
int pskgw_dtls_session_shell(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                             const pskgw_dtls_session_cbs_t *cbs, void *arg, uint64_t now,
                             pskgw_dtls_session_t **out);
/* Wipe and free the blob (do_free). */
void pskgw_dtls_session_drop_blob(pskgw_dtls_session_t *s);

/* An entry point's frame (session.c): enter counts the depth and moves s->now forward to now;
 * leave undoes it and, at the outermost level, frees a session whose free was deferred (s is
 * gone then) or announces a changed deadline to the owner's timer callback. */
void pskgw_dtls_session_enter(pskgw_dtls_session_t *s, uint64_t now);
void pskgw_dtls_session_leave(pskgw_dtls_session_t *s);
/* Inside enter/leave: a hibernated session gets its wolfSSL object back before an entry point
 * uses it (THAWED or THAW_FAILED event). false: it could not, and the session has ended
 * (session.c). */
bool pskgw_dtls_session_wake(pskgw_dtls_session_t *s);
/* Inside enter/leave: input bytes (a datagram, or stream bytes) to the handshake or the record
 * drive; nothing once the session is closed (session.c). */
void pskgw_dtls_session_process(pskgw_dtls_session_t *s, const uint8_t *data, size_t len);
/* The owner's event callback for s (0 without one; <0: the owner refuses, e.g. PARK over its
 * limit) (session.c). */
int pskgw_dtls_session_event(pskgw_dtls_session_t *s, pskgw_dtls_event_t ev);
/* DTLS, after our flight went out during this entry point (s->sent): the retransmission
 * deadline from wolfSSL's current timeout (1 s, doubling) (session.c). */
void pskgw_dtls_session_arm_rtx(pskgw_dtls_session_t *s);

/* Identity resolution and parking (session_lookup.c). start_lookup: the identity raw[raw_len]
 * from the ClientKeyExchange, normalised (IDENTITY event), from resolver.lookup() (KEY_READY)
 * or else resolver.resolve() (PARK event, KEY_PENDING); a bad identity or a refused IDENTITY
 * event gives KEY_RANDOM; a refused PARK or a failed resolve() ends the session. The answer comes in the resolver's callback,
 * which feeds the parked input inside enter/leave. cancel_lookup: the pending lookup given up
 * (the request is freed when the resolver calls back). park: input held while KEY_PENDING
 * (DTLS: [u16 len][datagram], restart keeps only the newest flight, over max_parked_bytes
 * dropped; TLS: over the bound or no memory ends the session). feed_parked: the parked input
 * to pskgw_dtls_session_process, then freed. */
void pskgw_dtls_session_start_lookup(pskgw_dtls_session_t *s, const uint8_t *raw, size_t raw_len);
void pskgw_dtls_session_cancel_lookup(pskgw_dtls_session_t *s);
void pskgw_dtls_session_park(pskgw_dtls_session_t *s, const uint8_t *data, size_t len,
                             bool restart);
void pskgw_dtls_session_feed_parked(pskgw_dtls_session_t *s);

/* DTLS, at creation: the server's CID (dtls/cid.h layout, ctx's cid_len and cid_worker) offered
 * to a client that asks for one; 0, or PSKGW_ECRYPTO / PSKGW_ETLS (session_cid.c). */
int pskgw_dtls_session_offer_cid(pskgw_dtls_session_t *s);

/* Close s once (reason to the owner's closed callback): cancels a pending lookup, wipes the key,
 * frees the handshake state (session.c). */
void pskgw_dtls_end_session(pskgw_dtls_session_t *s, int reason);

/* Hand one message to the owner's message callback, numbered (framing.c). */
void pskgw_dtls_deliver(pskgw_dtls_session_t *s, const uint8_t *data, size_t len);

/* TLS: cut the plaintext stream into messages per the context's framing and deliver them; a
 * message over max_message or no memory ends the session (framing.c). */
void pskgw_dtls_frame_input(pskgw_dtls_session_t *s, const uint8_t *data, size_t len);

#endif
