/* Listener internals shared by listen_api.c, udp_listener.c and tcp_listener.c. */
#ifndef PSKGW_GATEWAY_LISTEN_INTERNAL_H
#define PSKGW_GATEWAY_LISTEN_INTERNAL_H

#include "common/list.h"
#include "gateway/listen_api.h"
#include "gateway/listen_limits.h"
#include "gateway/lookup_admit.h"

#include "dtls/cid.h"
#include "dtls/session.h"

#include <netinet/in.h>
#include <uv.h>

#define PSKGW_PEER_KEY_MAX 19 /* family + port + IPv6 address */
#define PSKGW_PEER_STR_CAP 64

typedef struct pskgw_lsess pskgw_lsess_t;

typedef struct {
    uv_tcp_t handle;
    size_t queued; /* bytes in uv_write requests */
} pskgw_lsess_tcp_t;
typedef struct pskgw_fwd pskgw_fwd_t;
typedef struct pskgw_admit_req pskgw_admit_req_t;

/* A session's handshake-only state (its own allocation, s->hs): a frozen session holds none. */
typedef struct {
    /* The resolver given to the session's dtls session: the listener's, behind the lookup
     * admission (listen_admit.c); ctx is the session. */
    pskgw_psk_resolver_t res;
    pskgw_admit_req_t *areq;           /* admitted at PARK, handed to resolve() next */
    pskgw_lsess_t *predecessor;        /* UDP: the established session this handshake replaces */
    pskgw_halfopen_ticket_t half_open; /* held until established or ended */
    uint8_t src[PSKGW_SOURCE_MAX];     /* the source (address or IPv6 prefix) for the limits */
    uint8_t src_len;
    bool stale_known; /* the last lookup() found only a stale key: no cold lookup */
} pskgw_lsess_hs_t;

struct pskgw_lsess {
    pskgw_listener_t *l;
    uint64_t id;
    pskgw_dtls_session_t *ds; /* NULL once ended, and while frozen */
    /* A hibernated UDP session of a listener that does not forward keeps no dtls session
     * struct: its smallest form (dtls/session.h, "frozen sessions"), made by the sweep
     * (hibernate.c); pskgw_lsess_ds() makes ds again from it when an entry point needs it. */
    pskgw_dtls_frozen_t *frozen;
    /* The DTLS context ds is made from (a reference, dropped when the struct is freed): the
     * listener's at the session's creation; a reload may give the listener a new one since. */
    pskgw_dtls_ctx_t *dctx;
    /* Handshake deadlines, the idle deadline without the sweep, the TCP linger. NULL when none:
     * an established UDP session under the hibernation sweep gives its timer up (cb_timer),
     * since the sweep checks its deadlines (hibernate.c); a reload that stops the sweep gives
     * it one again. Its own allocation, freed in its close callback. */
    uv_timer_t *timer;
    uint8_t pending_closes; /* handles (the TCP connection, the timer: at most 2) not yet closed */
    bool ended;
    bool established;
    bool parked;
    bool blocked;
    bool in_peer_table;
    bool hibernated; /* counted in counters.hibernated (hibernate.c) */
    /* Its record may be in the Redis store: it thaws here only once claimed there
     * (pskgw_listen_sessredis_claim), and nothing is sent to its peer until then. */
    bool in_redis;
    /* What only a handshake uses (pskgw_lsess_hs_t): made with the struct, freed when the
     * handshake completes (the dtls session lets go of hs->res then: dtls/session.h), when the
     * session freezes or with the struct. NULL after; a thawed session's dtls session gets the
     * listener's resolver (no handshake runs on it). */
    pskgw_lsess_hs_t *hs;
    /* UDP: a handshake from the peer of an established session replaces it only when it
     * completes (RFC 6347 4.2.8); until then the old session is in the peer table and the new
     * one hangs off it as its successor (and the successor's hs->predecessor is the old one). */
    pskgw_lsess_t *successor;
    pskgw_lsess_t *next_peer; /* UDP peer table chain */
    pskgw_lsess_t *next_id;   /* id table chain */
    /* "ip:port" (malloc'ed): what log lines and cb_message name the peer by. A frozen session
     * holds none (hibernate.c): pskgw_lsess_ds() formats it again from the address; readers
     * that may meet a frozen session use pskgw_lsess_peer(). */
    char *peer;
    pskgw_cid_entry_t cid; /* in l->by_cid once established with a negotiated CID */
    uint64_t started_ms;   /* uv_now() at creation */
    uint64_t last_ms;      /* uv_now() of the last message in or out (or the creation) */
    uint64_t bytes_in;     /* message bytes received */
    uint64_t bytes_out;    /* message bytes sent (pskgw_listener_send) */
    pskgw_fwd_t *fwd;      /* forwarding listeners: the backend flow (forward_internal.h) */
    union {
        struct {
            /* The peer (sockaddr_in or sockaddr_in6); its peer-table key is not stored but
             * derived from it (pskgw_lsess_key); lsess_new sets it from the key it is given. */
            struct sockaddr_in6 addr;
            /* With in_redis: the first bytes of the value stored under its address
             * (sessredis.h, PSKGW_SESSREDIS_STAMP_LEN), which its claim compares; all zero: not
             * known (a state file of an earlier version), the claim then takes any value. In
             * the union's padding (the TCP pointer's 8 bytes against the address's 28): the
             * struct keeps its 200 bytes. */
            uint8_t redis_stamp[4];
        } udp;
        /* TCP: the connection in an allocation of its own (lsess_new, freed with the struct),
         * so that UDP sessions do not carry a uv_tcp_t. */
        pskgw_lsess_tcp_t *tcp;
    } u;
};

/* A CID record being fed to session s from an address that is not the session's (listen_cid.c):
 * that address's name (the peer of the messages it carries), sockaddr and peer-table key. One
 * feed at a time, so the listener holds it (s NULL otherwise), not every session. */
typedef struct {
    pskgw_lsess_t *s;
    const char *peer;
    const struct sockaddr *from;
    const uint8_t *key;
    uint8_t key_len;
} pskgw_listen_rx_t;

typedef struct {
    pskgw_lsess_t **b;
    size_t cap; /* power of two */
    size_t n;
    uint64_t seed; /* secret, random per listener (peer table) */
} pskgw_ltable_t;

struct pskgw_listener {
    uv_loop_t *loop;
    pskgw_listener_opts_t opt;
    char *domain;
    char *name;
    char *address;
    pskgw_dtls_ctx_t *dctx;
    pskgw_psk_resolver_t resolver;
    pskgw_listener_msg_cb on_message;
    void *arg;
    pskgw_listener_counters_t counters;
    pskgw_rate_limit_t rate;
    pskgw_fail_throttle_t src_fail;  /* failed handshakes per source */
    pskgw_fail_throttle_t pair_fail; /* failed handshakes per (source, identity) */
    pskgw_halfopen_t half_open;      /* handshakes in progress per source */
    pskgw_lookup_admit_t *admit;     /* cold lookups per source (lookup_admit.h) */
    pskgw_ltable_t by_id;
    pskgw_ltable_t by_peer;   /* UDP */
    pskgw_cid_table_t by_cid; /* UDP with cid_len > 0 (listen_cid.c) */
    uint16_t port;
    union {
        uv_udp_t udp;
        uv_tcp_t tcp;
    } h;
    bool handle_open;
    bool closing;
    int refs; /* 1 (open) + live session structs + open handle */
    pskgw_listener_close_cb close_cb;
    void *close_arg;
    uint8_t *rbuf; /* UDP receive buffer */
    size_t rbuf_len;
    struct pskgw_udp_tx *udp_tx;  /* UDP: datagrams out of a receive batch (udp_listener.c) */
    pskgw_forward_counters_t fwd; /* forwarding listeners (forward.h) */
    uint8_t *fwd_rbuf;            /* their backend reads, PSKGW_FWD_RBUF bytes */
    uv_timer_t hib_timer;         /* UDP with hibernation: the idle sweep (hibernate.c) */
    bool hib_open;
    pskgw_list_t
        sr_parked; /* opt.sessions: datagrams held for a Redis lookup (listen_sessredis.c) */
    uint32_t sr_parked_n;
    /* Ended sessions with no handle left to close, freed by reap_check (listen_api.c); the
     * handle holds a listener reference from its first use until the listener closes. */
    pskgw_lsess_t *reap;
    uv_check_t reap_check;
    bool reap_open;
    pskgw_listen_rx_t rx; /* listen_cid.c */
};

extern const pskgw_dtls_session_cbs_t pskgw_listen_session_cbs;

/* Hibernation (hibernate.c): one repeating sweep per UDP listener hibernates the established
 * sessions idle for hibernate_after_s (coarse: up to a quarter of it late); start holds a
 * listener reference released when the timer handle is closed by stop. on_thaw counts a
 * session's THAWED (ok) or THAW_FAILED event. */
int pskgw_listen_hibernate_start(pskgw_listener_t *l);
void pskgw_listen_hibernate_stop(pskgw_listener_t *l);
/* A reload changed hibernate_after_s or idle_timeout_s: the running sweep takes the new period. */
void pskgw_listen_hibernate_retime(pskgw_listener_t *l);
void pskgw_listen_on_thaw(pskgw_lsess_t *s, bool ok);
/* The session's dtls session for an entry point (feed, write, close_notify, export): a frozen
 * session gets it back, hibernated (the entry point then thaws wolfSSL's part as usual). NULL
 * when the session has ended, has none, or could not be unfrozen (then it has ended, counted as
 * a thaw failure). */
pskgw_dtls_session_t *pskgw_lsess_ds(pskgw_lsess_t *s);
/* What listings and tables read, from ds or the frozen form, without waking it (NULL when the
 * session has ended or has none). */
const char *pskgw_lsess_identity(const pskgw_lsess_t *s);
const char *pskgw_lsess_uid(const pskgw_lsess_t *s);
const uint8_t *pskgw_lsess_cid(const pskgw_lsess_t *s, size_t *len);
/* Monotonic ms of its last authenticated record (0 without ds or frozen form). */
uint64_t pskgw_lsess_last_rx(const pskgw_lsess_t *s);
/* Restart without a handshake (handover.h; UDP listeners that do not forward): export ends every
 * established session it can export without a word to the peer (they go to the state file);
 * import takes this listener's sessions from the previous process, hibernated, dropping those
 * idle past idle_timeout_s. */
void pskgw_listen_handover_export(pskgw_listener_t *l);
void pskgw_listen_handover_import(pskgw_listener_t *l);
/* A listener's record of an established session (u8: the sockaddr's length, with
 * PSKGW_LREC_FLAGGED, and PSKGW_LREC_IN_REDIS when the session is in Redis; the peer's sockaddr;
 * with PSKGW_LREC_IN_REDIS its redis_stamp (4 bytes); the dtls session's record:
 * pskgw_dtls_session_export, so the session is hibernated after it); *out malloc'ed, to be wiped and freed. And a session back from such a record, hibernated, in
 * the tables: 0, PSKGW_ETIMEOUT (idle past idle_timeout_s), PSKGW_EEXISTS (a session at that
 * address already), PSKGW_EPARSE, PSKGW_ENOMEM (nothing left behind on error). */
#define PSKGW_LREC_FLAGGED  0x80 /* a record of this version: the next bit says in_redis */
#define PSKGW_LREC_IN_REDIS 0x40 /* in Redis: the stamp follows the sockaddr */
int pskgw_listen_export_record(pskgw_listener_t *l, pskgw_lsess_t *s, uint64_t now, uint8_t **out,
                               size_t *len);
int pskgw_listen_import_record(pskgw_listener_t *l, const uint8_t *rec, size_t len, uint64_t now,
                               pskgw_lsess_t **out);

/* Sessions shared through Redis (listen_sessredis.c; listeners with opt.sessions). store: a
 * session that just hibernated goes to the store too. thawed: a session that may be stored woke
 * here without a claim (a backstop: every thaw of such a session is claimed first): its
 * stored record is deleted. park: a datagram for no session of this listener (by
 * address, or cid_name for an unknown Connection ID, else NULL): true when it is held while
 * its session is looked up (then fed to it, or dropped), false when the caller goes on as
 * without Redis. stop: the listener closes: every lookup is cancelled, datagrams dropped. */
void pskgw_listen_sessredis_store(pskgw_lsess_t *s, uint64_t now);
void pskgw_listen_sessredis_thawed(pskgw_lsess_t *s);
bool pskgw_listen_sessredis_park(pskgw_listener_t *l, const struct sockaddr *from,
                                 const uint8_t *key, uint8_t key_len, const char *peer,
                                 const char *cid_name, const uint8_t *data, size_t len);
/* While a peer's new handshake runs beside its established session: whether a record belongs
 * to the new one (anything in epoch 0, handshake and ChangeCipherSpec records) rather than to
 * the established session (udp_listener.c). */
bool pskgw_listen_for_successor(const uint8_t *d, size_t len);
/* claim: a datagram from the peer of s, a session with in_redis (by its address, or by_cid from
 * from, named peer; NULL: the session's own address): false when it goes on as today (a ClientHello: it thaws nothing); else true, the
 * datagram taken: held while the session is claimed in Redis (one claim per session, bounded
 * as park's datagrams) and fed to it only if the claim is won; a claim lost ends the session
 * without a datagram sent; one Redis could not answer leaves it hibernated, the datagram
 * dropped (sessredis.h, "Claims"). */
bool pskgw_listen_sessredis_claim(pskgw_lsess_t *s, const struct sockaddr *from, const uint8_t *key,
                                  uint8_t key_len, const char *peer, bool by_cid,
                                  const uint8_t *data, size_t len);
void pskgw_listen_sessredis_stop(pskgw_listener_t *l);

/* Session tables. */
pskgw_lsess_t *pskgw_ltable_find_id(pskgw_ltable_t *t, uint64_t id);
pskgw_lsess_t *pskgw_ltable_find_peer(pskgw_ltable_t *t, const uint8_t *key, size_t len);

/* Peer table membership (listen_api.c): insert (0 or PSKGW_ENOMEM) and remove s by s->key. */
int pskgw_ltable_insert_peer(pskgw_ltable_t *t, pskgw_lsess_t *s);
void pskgw_ltable_remove_peer(pskgw_ltable_t *t, pskgw_lsess_t *s);

/* Connection ID (listen_cid.c). established: index an established session by its negotiated
 * CID (nothing if none). forget: out of the CID table (idempotent). recv: a tls12_cid datagram
 * (listener with cid_len > 0): to the session of its CID, from its address or a new one; an
 * unknown CID goes to the session at the datagram's address (a handshake's Finished, before the
 * session is established), else it is dropped and counted. */
void pskgw_listen_cid_established(pskgw_lsess_t *s);
void pskgw_listen_cid_forget(pskgw_lsess_t *s);
/* The session's record from l->rx.from authenticated with a higher sequence number
 * (PSKGW_DTLS_EV_PEER_MOVED): its peer address moves there. */
void pskgw_listen_cid_moved(pskgw_lsess_t *s);
void pskgw_listen_cid_recv(pskgw_listener_t *l, const struct sockaddr *from, const uint8_t *key,
                           uint8_t key_len, const char *peer, const uint8_t *data, size_t len);

/* Allocate a session struct (with its handshake's state s->hs and a copy of peer), give it an
 * id, insert in by_id (and by_peer when key_len > 0: a UDP session's address is set from the
 * key, which is derived from it from then on), init its timer. The caller then creates s->ds.
 * 0, PSKGW_EINVAL (a malformed key) or PSKGW_ENOMEM. */
int pskgw_lsess_new(pskgw_listener_t *l, const uint8_t *key, size_t key_len, const char *peer,
                    pskgw_lsess_t **out);
/* The same, but kept out of by_peer: the new handshake beside a peer's established session
 * (its successor); it takes the peer-table place when the old session ends. */
int pskgw_lsess_new_beside(pskgw_listener_t *l, const uint8_t *key, size_t key_len,
                           const char *peer, pskgw_lsess_t **out);
/* The limits on a new handshake from a source (pskgw_source_of): the per-source handshake
 * rate, the failure throttle and the bound on handshakes in progress. 0 and *ticket held (give
 * it to the session, or back with pskgw_halfopen_release), or PSKGW_EBUSY when refused
 * (counted and logged, nothing held). */
int pskgw_listen_admit(pskgw_listener_t *l, const uint8_t *src, size_t src_len, const char *peer,
                       pskgw_halfopen_ticket_t *ticket);
/* The lookup admission (listen_admit.c). The session's resolver (s->res): lookup() is the
 * listener's; resolve() hands over the lookup admitted at PARK: at the resolver at once, or
 * waiting for its turn (then the resolver is called when pskgw_lookup_admit_next gives it out);
 * cancel() withdraws a waiting lookup (its callback fires at once with PSKGW_ECANCELED) or
 * cancels it at the resolver. */
int pskgw_listen_admit_new(pskgw_listener_t *l, const uint8_t *seed);
pskgw_psk_resolver_t pskgw_listen_admit_resolver(pskgw_lsess_t *s);
/* PARK: a cold lookup of identity; 0 when admitted (at once or waiting), PSKGW_EBUSY when
 * refused (counted, logged). A lookup of a known identity whose key is stale (the resolver's
 * lookup() said PSKGW_EAGAIN) is no cold lookup: it goes to the resolver at once, uncounted by
 * the admission (counter lookups_stale_known). UNPARK: gives back an admission resolve() never took. */
int pskgw_listen_on_park(pskgw_lsess_t *s, const char *identity, uint64_t now);
void pskgw_listen_on_unpark(pskgw_lsess_t *s, uint64_t now);
/* A handshake of the session completed: its source has a good record. */
void pskgw_listen_on_established(pskgw_lsess_t *s, uint64_t now);
/* Attaches an admitted handshake's source and ticket to its session. */
void pskgw_lsess_set_source(pskgw_lsess_t *s, const uint8_t *src, size_t src_len,
                            const pskgw_halfopen_ticket_t *ticket);
/* Ends a session: out of the tables, dtls session freed (deferred if inside it), handles
 * closed; the struct is freed in the last close callback. Idempotent. */
void pskgw_lsess_end(pskgw_lsess_t *s);
/* A close callback for handles embedded in a session (handle->data = session). */
void pskgw_lsess_handle_closed(uv_handle_t *h);
/* listen_lsess.c. free_struct: the struct and what only it points at (lsess_new's error path;
 * the last close callback). timer: the session's timer, made again (and counted in
 * pending_closes) when it had been given up; NULL without memory. timer_drop: the timer closed
 * and freed in its close callback (idempotent; a live session's timer closing does not free it).
 * reap_later: an ended session with no handle left to close, freed by the listener's reaper (a
 * uv_check handle: never inside the callback that ended it). reap_stop: the listener closes
 * (after its sessions ended): the reaper's handle is closed, its close callback frees the rest. */
void pskgw_lsess_free_struct(pskgw_lsess_t *s);
/* hs_drop: the handshake-only state freed (its ticket released, an admission given back); only
 * once s->ds no longer borrows hs->res: its handshake completed (dtls/session.h) or it is gone.
 * peer: s->peer, or (a frozen session, which holds none) its name formatted from its address
 * into buf. */
void pskgw_lsess_hs_drop(pskgw_lsess_t *s);
const char *pskgw_lsess_peer(const pskgw_lsess_t *s, char buf[PSKGW_PEER_STR_CAP]);
/* The session's peer name replaced by a copy of peer: 0, or PSKGW_ENOMEM (the old one kept). */
int pskgw_lsess_set_peer(pskgw_lsess_t *s, const char *peer);
uv_timer_t *pskgw_lsess_timer(pskgw_lsess_t *s);
void pskgw_lsess_timer_drop(pskgw_lsess_t *s);
void pskgw_lsess_reap_later(pskgw_lsess_t *s);
void pskgw_listen_reap_stop(pskgw_listener_t *l);
/* Drop a listener reference; frees the listener after close when none are left. */
void pskgw_listener_unref(pskgw_listener_t *l);

/* Session events that the limits answer (listen_admit.c): the identity was read (return <0 to
 * make it fail like a wrong key: throttled for its source), the handshake failed on its key. */
int pskgw_listen_on_identity(pskgw_lsess_t *s, const char *identity, uint64_t now);
void pskgw_listen_on_auth_failed(pskgw_lsess_t *s, const char *identity, uint64_t now);

/* Identities in log lines: at most PSKGW_LOG_ID_MAX input bytes; an escaped copy needs at most
 * PSKGW_LOG_ID_CAP bytes. */
#define PSKGW_LOG_ID_MAX 80
#define PSKGW_LOG_ID_CAP (PSKGW_LOG_ID_MAX * 4 + 8)

/* A network identity for a log line: printable ASCII kept but '"' and '\\', others as \xNN,
 * at most 80 input bytes ("..." marks a cut); out gets at most cap bytes with the NUL. */
void pskgw_listen_log_identity(const char *id, char *out, size_t cap);

/* The peer key (family, port, address bytes): what the peer table is keyed by; no formatting
 * (the UDP receive path looks a session up by it and names the peer only when it must). */
int pskgw_listen_peer_key(const struct sockaddr *sa, uint8_t *key, uint8_t *key_len);
/* The sockaddr a peer key stands for (port and address; 0 or PSKGW_EINVAL), and a UDP
 * session's peer key, derived from its address (its length; 0 for TCP sessions, which are not
 * in the peer table): a few copies, no formatting. */
int pskgw_listen_peer_addr(const uint8_t *key, size_t key_len, struct sockaddr_in6 *out);
uint8_t pskgw_lsess_key(const pskgw_lsess_t *s, uint8_t key[PSKGW_PEER_KEY_MAX]);
/* "ip:port" / "[ip6]:port" and the peer key (key NULL: the name only). */
int pskgw_listen_peer_name(const struct sockaddr *sa, char *out, size_t cap, uint8_t *key,
                           uint8_t *key_len);

/* A bound socket with SO_REUSEPORT (type SOCK_DGRAM or SOCK_STREAM), non-blocking; the fd or
 * a negative PSKGW_E* code. */
int pskgw_listen_reuseport_socket(const struct sockaddr *sa, int type);

/* Forwarding (forward.c): start the backend flow when s is established (0 when the listener
 * does not forward; <0: end the session); hand it a device message; the device session ends;
 * TCP: the device's write queue went down (tcp_listener.c); stop/resume reading the device. */
int pskgw_fwd_start(pskgw_lsess_t *s);
void pskgw_fwd_from_device(pskgw_lsess_t *s, const uint8_t *data, size_t len);
void pskgw_fwd_detach(pskgw_lsess_t *s);
void pskgw_fwd_device_drained(pskgw_lsess_t *s);
void pskgw_tcp_pause(pskgw_lsess_t *s, bool pause);

/* Per-protocol parts. */
int pskgw_udp_listener_start(pskgw_listener_t *l, const char **why);
int pskgw_udp_send(pskgw_lsess_t *s, const uint8_t *data, size_t len);
/* Ends the receive batch: the datagrams queued during it go out now (one sendmmsg; nothing if
 * none) and later sends go out at once. Called at the batch's end (UV_UDP_MMSG_FREE) and before
 * the listener's handle stops (a batch cut short by a close gets no UV_UDP_MMSG_FREE). */
void pskgw_udp_flush(pskgw_listener_t *l);
/* sendmmsg calls made and datagrams handed to them (tests, bench). */
void pskgw_udp_tx_stats(const pskgw_listener_t *l, uint64_t *flushes, uint64_t *batched);
int pskgw_tcp_listener_start(pskgw_listener_t *l, const char **why);
int pskgw_tcp_send(pskgw_lsess_t *s, const uint8_t *data, size_t len);

#endif
