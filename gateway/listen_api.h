/* pskgw_listener: one PSK DTLS (UDP) or TLS (TCP) listener of a domain, on the gateway's loop.
 *
 * UDP: one socket; datagrams are demultiplexed by peer address (IPv4 and IPv6) to per-peer
 * sessions in a hash table, and, with cid_len > 0, tls12_cid records by their Connection ID to
 * the session that issued it (a second hash table, listen_cid.c): a device whose NAT mapping
 * changed keeps its session, whose address moves once a record from the new address
 * authenticated with a higher sequence number (RFC 9146 section 6). A ClientHello from a peer without a session is answered with a
 * stateless HelloVerifyRequest (dtls/ctx.h); only a ClientHello with a valid cookie creates a
 * session. TCP: one session per connection.
 *
 * Each session is a pskgw_dtls_session (dtls/session.h) plus a uv timer. PSK identities are
 * resolved through the borrowed resolver (dtls/resolver.h) without ever blocking the loop.
 * Every decrypted message goes to on_message with its metadata.
 *
 * Limits (options; 0 picks the default in brackets). A "source" is the peer's IPv4 address, or
 * its IPv6 address's first ipv6_source_prefix bits (listen_limits.h):
 *   max_sessions [100000]            sessions (handshaking + established); new handshakes are
 *                                    refused when full (counter refused_max_sessions)
 *   max_pending_handshakes [10000]   sessions waiting for a resolver lookup (parked)
 *   handshake_timeout_ms [10000]     handshake deadline
 *   half_open_timeout_ms [= handshake_timeout_ms, at most it]  a handshake whose
 *                                    ClientKeyExchange has not arrived by then ends
 *   half_open_per_source [1000]      handshakes in progress per source; over it a new one is
 *                                    refused (counter refused_half_open)
 *   idle_timeout_s [300]             established session without input is closed (close_notify)
 *   handshakes_per_ip [100]          new sessions per source per second (token bucket);
 *                                    over it: counter rate_limited
 *   handshakes_per_ip_burst [= handshakes_per_ip]  bucket size: new sessions one source
 *                                    may start at once
 *   identity_failure_max [5]         failed handshakes (bad Finished: wrong key) of one identity
 *                                    from one source within identity_block_s; beyond it that
 *                                    identity's handshakes from that source fail like a wrong
 *                                    key without a lookup (counter blocked_identities), one more
 *                                    attempt allowed every identity_block_s / identity_failure_max
 *   source_failure_max [50]          failed handshakes of one source (any identity) within
 *                                    identity_block_s; beyond it new handshakes from that
 *                                    source are refused (counter throttled_sources), likewise
 *   identity_block_s [300]           the failure period of both; never an identity-wide block:
 *                                    other sources' failures never refuse a handshake
 *   ipv6_source_prefix [64]          IPv6 prefix length that makes one source (1..128)
 *   max_identity_len [128]           raw identity bytes
 *   max_parked_bytes [4096]          handshake bytes held per session while its key is looked
 *                                    up (dtls/ctx.h); beyond it a DTLS datagram is dropped (the
 *                                    peer retransmits) and a TLS connection is ended
 *   max_message [4096]               plaintext bytes per message (max 16384)
 *   cookie_rotate_s [30]             cookie secret period: a cookie is accepted in the period
 *                                    it was made and the next one, so at most 2 * cookie_rotate_s
 *                                    after it was made (dtls/ctx.h)
 *   hibernate_after_s [30]           UDP: an established session idle that long hibernates
 *                                    (dtls/session.h; one sweep per listener); UINT32_MAX off
 *   Lookup admission (lookup_admit.h): a cold lookup is one the resolver's lookup() missed
 *   (cached identities go on at once and never wait):
 *   lookups_in_flight [32]           cold lookups at the resolver at once, all sources; beyond
 *                                    it they wait in per-source queues served round-robin
 *   lookups_per_source [8]           cold lookups of one source at the resolver at once
 *   lookup_queue_per_source [256]    cold lookups of one source waiting; beyond it refused
 *                                    (counter lookups_refused_queue)
 *   lookups_per_source_per_s [100]   new cold lookups per second per source (token bucket;
 *                                    UINT32_MAX: off); beyond it refused (lookups_refused_rate)
 *   lookup_burst [2 * lookups_per_source_per_s]  its bucket size
 *   good_source_reserve [lookups_in_flight / 4]  of lookups_in_flight, kept for sources that
 *                                    completed a handshake within good_source_window_s, whose
 *                                    waiting lookups also go first (UINT32_MAX: none kept)
 *   good_source_window_s [3600]      how long a completed handshake counts as a good record
 *
 * UDP sessions and new handshakes from the same address and port: a ClientHello with a new
 * random and a valid cookie starts a new handshake. If the existing session is established,
 * it stays (and keeps its application data) until the new handshake completes (the client's
 * Finished verified), then the new one replaces it (RFC 6347 4.2.8); a replayed ClientHello
 * that cannot finish ends nothing. A session still in its handshake is replaced at once.
 *
 * Ownership: the listener owns its sockets, timers, sessions and wolfSSL objects. resolver and
 * loop are borrowed and must outlive the listener (until the close callback).
 * Threading: the loop's thread only.
 */
#ifndef PSKGW_GATEWAY_LISTEN_API_H
#define PSKGW_GATEWAY_LISTEN_API_H

#include "dtls/ctx.h"
#include "dtls/resolver.h"
#include "gateway/forward.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct pskgw_listener pskgw_listener_t;

typedef enum {
    PSKGW_LISTEN_UDP = 0, /* DTLS 1.2 */
    PSKGW_LISTEN_TCP = 1  /* TLS 1.2 */
} pskgw_listen_proto_t;

typedef struct {
    const char *domain; /* copied; required */
    const char *name;   /* listener name, copied; required */
    pskgw_listen_proto_t proto;
    const char *address;     /* "0.0.0.0", "::", "127.0.0.1", ... copied; required */
    uint16_t port;           /* 0: a free port (see pskgw_listener_port) */
    pskgw_framing_t framing; /* TCP only: len16 | newline | record */
    size_t max_message;
    const char *ciphers; /* OpenSSL-style names, ':'-separated; NULL: the four defaults */
    uint32_t max_sessions;
    uint32_t max_pending_handshakes;
    uint32_t handshake_timeout_ms;
    uint32_t idle_timeout_s;
    uint32_t handshakes_per_ip;
    uint32_t handshakes_per_ip_burst;
    uint32_t identity_failure_max;
    uint32_t source_failure_max;
    uint32_t identity_block_s;
    uint32_t half_open_timeout_ms;
    uint32_t half_open_per_source;
    uint32_t ipv6_source_prefix;
    size_t max_identity_len;
    size_t max_parked_bytes;
    uint32_t cookie_rotate_s;
    uint32_t hibernate_after_s;
    uint32_t lookups_in_flight;        /* cold lookups at the resolver at once */
    uint32_t lookups_per_source;       /* of them, from one source */
    uint32_t lookup_queue_per_source;  /* waiting per source */
    uint32_t lookups_per_source_per_s; /* new cold lookups per second per source */
    uint32_t lookup_burst;             /* bucket size of that rate */
    uint32_t good_source_reserve;      /* of lookups_in_flight, for sources with a good record */
    uint32_t good_source_window_s;     /* a completed handshake is a good record this long */
    bool reuseport; /* SO_REUSEPORT: one listener per worker process on the same port */
    /* forward.enabled: each session's cleartext goes to forward.backend, not to on_message
     * (gateway/forward.h); TCP then needs framing record. */
    pskgw_forward_opts_t forward;
    /* UDP: DTLS 1.2 Connection ID (RFC 9146, dtls/cid.h). cid_len 0: off; 4..16: sessions
     * offer a CID of that length, byte 0 = worker (the worker index, 0 for a single process),
     * and a record carrying a known CID reaches its session from any address. */
    uint8_t cid_len;
    uint8_t worker;
    /* Session tickets (dtls/ticket.h): NULL off; else the listener's context takes a reference. */
    pskgw_ticket_keys_t *tickets;
    /* UDP: hibernated sessions shared through Redis (gateway/sessredis.h; borrowed, must outlive
     * the listener); NULL off. Each hibernation also stores the session there; a record of a
     * session this listener does not hold (not a ClientHello, from an unknown address, or an
     * unknown Connection ID) is held while the session is looked up there, at most
     * sessions_park_per_source datagrams per source [4] and sessions_park_total [1024]. */
    struct pskgw_sessredis *sessions;
    uint32_t sessions_park_per_source;
    uint32_t sessions_park_total;
} pskgw_listener_opts_t;

/* Metadata of one message; every pointer is valid during the callback only. */
typedef struct {
    const char *domain;
    const char *listener;
    const char *transport;      /* "dtls" | "tls" */
    const char *peer;           /* "192.0.2.1:5684", "[2001:db8::1]:5684" */
    const char *identity;       /* PSK identity as KeyID hex (pskgw_identity_normalize) */
    const char *rot_public_uid; /* from the resolver; "" if it gave none */
    uint64_t session_id;        /* unique per process run, never 0 */
    uint64_t seq;               /* per session, from 1 */
} pskgw_msg_meta_t;

/* One decrypted message. data/meta valid during the call only. The callback may call
 * pskgw_listener_send() and pskgw_listener_close(). */
typedef void (*pskgw_listener_msg_cb)(void *arg, const pskgw_msg_meta_t *meta, const uint8_t *data,
                                      size_t len);
typedef void (*pskgw_listener_close_cb)(pskgw_listener_t *l, void *arg);

/* Counters for the metrics endpoint: monotonic totals except sessions_active and
 * pending_lookups (gauges). */
typedef struct {
    uint64_t datagrams_in;       /* UDP datagrams / TCP reads received */
    uint64_t datagrams_out;      /* UDP datagrams / TCP writes sent */
    uint64_t send_dropped;       /* UDP datagrams the socket refused (full buffer, ...): lost */
    uint64_t bad_datagrams;      /* no session and not a ClientHello */
    uint64_t cookies_sent;       /* HelloVerifyRequests */
    uint64_t cookie_verified;    /* ClientHellos with a valid cookie */
    uint64_t connections;        /* TCP connections accepted */
    uint64_t handshakes_started; /* sessions created */
    uint64_t handshakes_completed;
    uint64_t handshakes_failed; /* sessions that ended before completing */
    uint64_t auth_failures;     /* of which: wrong key / unknown / refused identity */
    uint64_t lookups_parked;
    uint64_t lookups_failed; /* resolver unavailable */
    uint64_t refused_max_sessions;
    uint64_t refused_pending; /* max_pending_handshakes reached */
    uint64_t rate_limited;
    uint64_t blocked_identities; /* handshakes of an identity throttled for its source */
    uint64_t throttled_sources;  /* new handshakes refused: their source failed too often */
    uint64_t refused_half_open;  /* new handshakes refused: half_open_per_source reached */
    uint64_t half_open_timeouts; /* handshakes ended by half_open_timeout_ms */
    uint64_t rehandshakes;       /* established sessions replaced by a completed handshake */
    uint64_t idle_closes;
    uint64_t messages;
    uint64_t bytes;                 /* message bytes */
    uint64_t messages_dropped;      /* above max_message */
    uint64_t lookups_admitted;      /* cold lookups sent to the resolver at once */
    uint64_t lookups_queued;        /* cold lookups that waited for their source's turn */
    uint64_t lookups_dequeued;      /* waiting lookups sent to the resolver at their turn */
    uint64_t lookups_good;          /* cold lookups sent in the good-record class */
    uint64_t lookups_refused_rate;  /* refused: lookups_per_source_per_s */
    uint64_t lookups_refused_queue; /* refused: lookup_queue_per_source full */
    uint64_t lookups_withdrawn;     /* waiting lookups whose handshake ended first */
    uint64_t lookups_stale_known;   /* lookups of a known identity with a stale key: never wait */
    uint64_t cid_address_changes;   /* sessions whose peer address moved (RFC 9146 section 6) */
    uint64_t cid_unknown_records;   /* tls12_cid datagrams with no session: dropped */
    uint64_t cid_sessions;          /* gauge: established sessions with a negotiated CID */
    uint64_t hibernations;          /* established sessions that hibernated (hibernate.c) */
    uint64_t thaws;                 /* hibernated sessions woken by a record or a write */
    uint64_t thaw_failures;         /* ... that could not be woken (the session ended) */
    uint64_t hibernated;            /* gauge: hibernated sessions now */
    uint64_t redis_stored;          /* hibernations also handed to the Redis store (sessions) */
    uint64_t redis_parked;          /* datagrams held while their session was looked up in Redis */
    uint64_t redis_park_refused; /* ... not held: a bound reached or that peer already looked up */
    uint64_t redis_imported;     /* sessions taken from Redis: continued with no handshake */
    uint64_t redis_forgotten;    /* stored sessions that woke here: their Redis copy deleted */
    uint64_t sessions_active;    /* gauge */
    uint64_t pending_lookups;    /* gauge */
    uint64_t lookups_in_flight;  /* gauge: cold lookups at the resolver */
    uint64_t lookups_waiting;    /* gauge: cold lookups waiting for their turn */
} pskgw_listener_counters_t;

/* Validates the options, binds and starts. Errors: PSKGW_EINVAL (NULL arguments), PSKGW_ECONFIG
 * (bad option or cipher list; *why says which, static string), PSKGW_EIO and other codes from
 * pskgw_err_from_errno() for bind/listen failures, PSKGW_ENOMEM, PSKGW_ECRYPTO (no random seed),
 * PSKGW_ETLS (wolfSSL). On error nothing is left running. */
int pskgw_listener_new(uv_loop_t *loop, const pskgw_listener_opts_t *opts,
                       const pskgw_psk_resolver_t *resolver, pskgw_listener_msg_cb on_message,
                       void *arg, pskgw_listener_t **out, const char **why);

/* The bound port (useful with port 0). */
uint16_t pskgw_listener_port(const pskgw_listener_t *l);
/* Reload: new max_sessions and max_pending_handshakes (0: the default), checked from the next
 * new session or lookup on; sessions already above a lowered bound are not closed. */
/* Replaces the ticket keys (a reload rotated them). Only for a listener started with tickets:
 * else PSKGW_EINVAL (tickets switched on or off take a new listener). */
int pskgw_listener_set_tickets(pskgw_listener_t *l, pskgw_ticket_keys_t *keys);

void pskgw_listener_set_session_limits(pskgw_listener_t *l, uint32_t max_sessions,
                                       uint32_t max_pending_handshakes);

/* Live counters (borrowed; valid until the close callback). */
const pskgw_listener_counters_t *pskgw_listener_counters(const pskgw_listener_t *l);
/* The forwarding counters (forward.h), or NULL when the listener does not forward. */
const pskgw_forward_counters_t *pskgw_listener_forward_counters(const pskgw_listener_t *l);

/* Encrypt and send one message to the device of session_id (DTLS: one record; TLS: framed).
 * 0, PSKGW_ENOTFOUND (no such session, or it ended), PSKGW_EAGAIN (handshake not finished),
 * PSKGW_EBUSY (hibernated and stored in Redis: it sends nothing before a record of its device
 * claims it there, docs/SECURITY.md "Sessions in Redis"),
 * PSKGW_ETOOBIG (above max_message), PSKGW_ECLOSED (listener closing), PSKGW_ETLS, PSKGW_EIO
 * (not sent: the socket refused it (DTLS, the session goes on) or the connection failed).
 * UDP, called while the listener handles a receive batch (from a message callback): 0 means
 * queued for the batch's sendmmsg; a datagram the socket refuses then is lost, counted in
 * send_dropped (pskgw_listener_counters_t) and logged (rate-limited). */
int pskgw_listener_send(pskgw_listener_t *l, uint64_t session_id, const uint8_t *data, size_t len);

/* One established session, for the admin API; pointers valid during the callback only. */
typedef struct {
    const char *peer;
    const char *identity;       /* KeyID hex */
    const char *rot_public_uid; /* "" when the resolver gave none */
    uint64_t session_id;
    uint64_t age_ms;    /* since the session started (its ClientHello) */
    uint64_t idle_ms;   /* since its last message in or out (or its start) */
    uint64_t bytes_in;  /* message bytes received */
    uint64_t bytes_out; /* message bytes sent */
} pskgw_listener_session_info_t;
typedef void (*pskgw_listener_session_cb)(void *arg, const pskgw_listener_session_info_t *info);

/* Calls cb for each established session, of identity only when identity is not NULL (compared
 * without regard to case). cb must not close sessions or the listener. Returns how many. */
size_t pskgw_listener_sessions(pskgw_listener_t *l, const char *identity,
                               pskgw_listener_session_cb cb, void *arg);
/* Ends every session of identity (case ignored): established ones get close_notify first,
 * handshakes in progress just end. Returns how many ended (0: none, or the listener closing;
 * PSKGW_ENOMEM: none ended). */
int pskgw_listener_close_identity(pskgw_listener_t *l, const char *identity);

/* Stops accepting, ends every session (pending lookups are cancelled; established sessions get
 * close_notify), closes every handle and frees everything; cb (may be NULL) fires once when all
 * is released, from a libuv close callback. Calling it again does nothing. */
void pskgw_listener_close(pskgw_listener_t *l, pskgw_listener_close_cb cb, void *arg);

/* Parse "udp"/"tcp" and "len16"/"newline"/"record". 0 or PSKGW_EINVAL. */
int pskgw_listen_proto_parse(const char *s, pskgw_listen_proto_t *out);
int pskgw_listen_framing_parse(const char *s, pskgw_framing_t *out);

#endif
