/* pskgw_sessredis: hibernated DTLS sessions shared by the gateways of a domain through Redis
 * (issue 12, section 4: a lost node costs its devices one round trip, not a handshake).
 *
 * Each hibernation also stores the session's record (gateway/hibernate.c: the listener's record,
 * as a hand-over writes it) sealed with AES-256-GCM under the domain's cache.kek_file key (every
 * gateway of the domain has it; statefile.h seals the same way: random 12-byte IV, 16-byte tag),
 * with domain, listener and the session's name as associated data, so that a value cannot be
 * moved to another domain, listener or peer. Keys:
 *   pskgw:sess:<domain>:<listener>:<peer>      the session by its address ("ip:port")
 *   pskgw:sess:<domain>:<listener>:cid:<hex>   and by its Connection ID, when it has one
 * each with PX = the session's remaining idle lifetime. The sealed plaintext names both keys, so
 * a node that takes the session by one of them removes both.
 *
 * A node that receives a record for a session it does not hold looks it up (asynchronously):
 * GET; a value that opens is taken by the claim below, comparing the value read (its IV), and
 * only the node whose claim won imports it. Two importers of one record would both jump the
 * write sequence from the same point: the same AES-CCM nonces. A claim refused is a refusal
 * (the device handshakes again, or goes on with the node that holds it).
 *
 * Claims. One session is held by one node at a time: a node that stored a session (in_redis)
 * does not thaw it on a record either (listen_sessredis.c holds the datagram) until it has
 * claimed it: one Lua script (EVAL: atomic in Redis, one round trip) with
 *   KEYS lease  = pskgw:lease:<domain>:<listener>:<peer>
 *        value  = the key compared (the owner's claim: its address key; a take: the name read)
 *        others = the session's other key (address or CID)
 *   ARGV node_id, lease_ms, stamp
 *   1. GET value: none, or one that does not begin with stamp -> 0 (gone)
 *   2. GET lease: another node's -> -1 (held)
 *   3. SET lease node_id PX lease_ms; DEL value others -> the count (>= 1: won)
 * The stamp is the first bytes of the value: its random IV, unique per store. The owner keeps
 * PSKGW_SESSREDIS_STAMP_LEN (4) bytes of the value it stored (pskgw_sessredis_store: in the
 * session struct's padding, no byte more per session); a taker compares the whole 12-byte IV of
 * the value its GET read. A stale owner's claim therefore meets another node's value with the
 * same first 4 bytes with a chance of 2^-32 (the only case the 4 bytes decide). A claim wins only if the very value it means is still
 * there, and removes it in the same step: of all claims of one stored value at most one wins,
 * whatever their order, whatever the leases' ages. Every interleaving of node A (the owner:
 * CLAIM_A) and node B (a taker: GET_B, then CLAIM_B), one value V stored by A:
 *   CLAIM_A, GET_B             B reads nothing: a miss. A alone.
 *   CLAIM_A, GET_B, CLAIM_B    impossible: GET_B found nothing after CLAIM_A.
 *   GET_B, CLAIM_A, CLAIM_B    A wins (V was there); CLAIM_B finds V gone: 0. A alone.
 *   GET_B, CLAIM_B, CLAIM_A    B wins; CLAIM_A finds V gone: 0, A's copy ends unsent. B alone.
 *   GET_B, CLAIM_A, (A hibernates, stores V', lease expired), CLAIM_B
 *                              V' does not begin with V's IV: 0. A alone (the lease alone,
 *                              expired, let B take the stale V here: why the stamp).
 *   GET_B, CLAIM_B, (B hibernates, stores V'' under its own stamp), CLAIM_A
 *                              A's stamp is V's, not V'': 0. B alone (A's stale copy would
 *                              otherwise DEL B's record and go on from V: why the stamp again).
 *   Two takers B and C: both GET V; the first CLAIM wins and deletes V, the second finds it gone.
 *   An expired lease changes none of these: step 1 decides; the lease keeps other versions'
 *   takers out (they checked only SET NX) and tells operators who holds a session.
 * A node that loses ends its copy without sending a datagram (no alert, no close_notify): the
 * other node may be writing under the same keys. No answer (no connection, error reply, the
 * watchdog): the owner keeps its copy hibernated and unclaimed, drops the datagram, and claims
 * again on the device's next record. Not "end it": a Redis outage would then cost every woken
 * device a handshake although no other node can take a session while Redis is down; a claim
 * that ran but whose reply was lost took the value with it, so the next claim finds it gone
 * and ends the copy then. Nothing is sent either way before a claim won. Leases and stamps
 * of a value stored by an earlier version: the owner (a state file without the stamp) claims
 * with none (step 1 takes any value).
 *
 * The connection is a pskgw_redisconn (redisconn/redisconn.h): host or Redis Sentinel, AUTH,
 * SELECT, backoff, watchdog. While it is not connected, stores and lookups fail at once
 * (PSKGW_EUNAVAIL, counted), and the gateway goes on as without Redis. Its commands are bounded
 * (redisconn.h "Bounds": PSKGW_SESSREDIS_IN_FLIGHT sent, PSKGW_SESSREDIS_HELD waiting): a
 * hibernation sweep of 100k sessions stores what fits and drops the rest, all names of a session
 * or none, counted (store_errors and store_dropped; pskgw_sessions_redis_dropped_total{command=
 * "store"}); a dropped session is only not found by
 * another node (one handshake if this node is lost before it wakes). Stores leave
 * PSKGW_SESSREDIS_RESERVE places to lookups, leases and DELs, which must not be dropped for them.
 *
 * Owner: the domain (gateway/domain.c), until the close callback. One loop, not thread-safe.
 * Key material (the sealing key, records) is wiped before it is freed and never logged.
 */
#ifndef PSKGW_GATEWAY_SESSREDIS_H
#define PSKGW_GATEWAY_SESSREDIS_H

#include "gateway/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define PSKGW_SESSREDIS_KEY_LEN  32
#define PSKGW_SESSREDIS_NAME_MAX 80 /* a peer "[v6]:port" or "cid:" + 32 hex */
/* Sealing overhead: IV and tag, plus the names (two u8 lengths and the names). */
#define PSKGW_SESSREDIS_SEAL_OVERHEAD (12 + 16 + 2)
/* Default bounds of the connection's commands (SETs of about 0.8 KB: ~13 MB held at most). */
#define PSKGW_SESSREDIS_IN_FLIGHT 1024
#define PSKGW_SESSREDIS_HELD      16384
#define PSKGW_SESSREDIS_RESERVE   1024 /* held places stores leave to the other commands */
/* A stored value's first bytes (of its random IV): what the owner's claim compares (below,
 * "Claims"); a taker compares the whole IV of the value it read. */
#define PSKGW_SESSREDIS_STAMP_LEN 4

typedef struct pskgw_sessredis pskgw_sessredis_t;
typedef struct pskgw_sessredis_req pskgw_sessredis_req_t;

typedef struct {
    const char *domain;      /* copied; required */
    const char *node_id;     /* the lease holder's name (copied); required */
    const char *host;        /* Redis host (copied); unused with sentinels */
    uint16_t port;           /* unused with sentinels */
    const char *sentinels;   /* Sentinel mode: redisconn.h */
    const char *master_name; /* with sentinels */
    const char *password;    /* AUTH; NULL: none (copied, wiped) */
    int db;                  /* SELECT when > 0 */
    uint32_t timeout_ms;     /* connect + reply watchdog (>= 1) */
    uint32_t lease_ms;       /* PX of a lease (>= 1) */
    const uint8_t *key;      /* PSKGW_SESSREDIS_KEY_LEN bytes (copied, wiped on free) */
    uint32_t max_in_flight;  /* 0: PSKGW_SESSREDIS_IN_FLIGHT */
    uint32_t max_held;       /* 0: PSKGW_SESSREDIS_HELD (stores; the reserve comes on top) */
} pskgw_sessredis_opts_t;

typedef struct {
    uint64_t stores;        /* records stored (SET answered OK) */
    uint64_t store_errors;  /* not stored: no connection, error reply, lost connection, dropped */
    uint64_t store_dropped; /* of store_errors: refused at the bound of held commands */
    uint64_t lookups;       /* lookups started */
    uint64_t hits;          /* a record found, opened and leased: imported */
    uint64_t misses;        /* no record under the name */
    uint64_t refused;       /* a record found but its lease is held by another node */
    uint64_t bad;           /* a value that does not open (damaged, foreign, moved) */
    uint64_t errors;        /* lookups failed: no connection, error reply, lost connection */
    uint64_t leases;        /* leases taken (SET NX answered OK) */
    uint64_t connected;     /* gauge: 1 while the Redis connection is up */
    uint64_t claims_won;    /* claims (pskgw_sessredis_claim) that took the session */
    uint64_t claims_held;   /* claims refused: the lease is another node's */
    uint64_t claims_gone;   /* claims refused: the record gone or another one */
    uint64_t claims_errors; /* claims not answered: no connection, error reply, canceled */
    uint64_t cmd_dropped;   /* other commands (lookups, leases, DELs) refused at the bound of held
                               commands once the reserve was used up (redisconn's dropped) */
} pskgw_sessredis_stats_t;

/* Starts connecting. 0, PSKGW_EINVAL (missing domain, node_id, key, host or sentinels, or
 * lease_ms 0), PSKGW_ENOMEM. */
int pskgw_sessredis_new(uv_loop_t *loop, const pskgw_sessredis_opts_t *opts,
                        pskgw_sessredis_t **out);

/* Stores rec (len bytes, borrowed; the listener's record) sealed under listener and peer, and
 * under cid (cid_len bytes, NULL/0: none) too, for ttl_ms (>= 1). On 0, stamp (optional) gets
 * the first PSKGW_SESSREDIS_STAMP_LEN bytes of the value stored under peer: what this node's
 * claim of the session compares (pskgw_sessredis_claim). Nothing calls back: the
 * outcome is counted (stores, store_errors). 0, PSKGW_EUNAVAIL (not connected: counted as a
 * store error), PSKGW_EBUSY (the bound of held commands: nothing stored, counted as a store
 * error and in store_dropped), PSKGW_EINVAL (a name too long, empty rec, ttl_ms 0),
 * PSKGW_ENOMEM, PSKGW_ECRYPTO. */
int pskgw_sessredis_store(pskgw_sessredis_t *r, const char *listener, const char *peer,
                          const uint8_t *cid, size_t cid_len, const uint8_t *rec, size_t len,
                          uint64_t ttl_ms, uint8_t stamp[PSKGW_SESSREDIS_STAMP_LEN]);

/* The node goes on with a session it stored (it thawed here): its stored record must not be
 * imported elsewhere any more (both would jump the write sequence from the same point), so its
 * keys are DELeted. With a CID, the address key the record was stored under goes too when it is
 * not peer (a CID session that thawed from a new address): the CID's record, read first, names
 * it. Fire and forget. 0, PSKGW_EUNAVAIL, PSKGW_EBUSY (the bound of held commands, reserve
 * included: nothing deleted, counted in cmd_dropped), PSKGW_EINVAL, PSKGW_ENOMEM. */
int pskgw_sessredis_forget(pskgw_sessredis_t *r, const char *listener, const char *peer,
                           const uint8_t *cid, size_t cid_len);

/* The end of a lookup: status 0 with the record (rec/len valid during the callback only; it
 * holds session keys: copy nothing you do not wipe); PSKGW_ENOTFOUND (no record); PSKGW_EBUSY
 * (the lease is held by another node); PSKGW_EPARSE (a value that does not open);
 * PSKGW_EUNAVAIL (no connection, error reply, lost connection); PSKGW_ECANCELED (cancel or
 * close). */
typedef void (*pskgw_sessredis_cb)(void *arg, int status, const uint8_t *rec, size_t len);

/* Looks up the session of listener named name (a peer "ip:port", or from
 * pskgw_sessredis_cid_name). 0: cb fires exactly once, later (never inside this call); *out
 * (optional) is valid until then. Fails at once without calling cb: PSKGW_EUNAVAIL (not
 * connected: counted as an error), PSKGW_EINVAL, PSKGW_ENOMEM. */
int pskgw_sessredis_lookup(pskgw_sessredis_t *r, const char *listener, const char *name,
                           pskgw_sessredis_cb cb, void *arg, pskgw_sessredis_req_t **out);
/* cb fires now with PSKGW_ECANCELED; a lease already asked for is not given back (it expires). */
void pskgw_sessredis_cancel(pskgw_sessredis_req_t *req);

/* Claims the session this node stored under listener and peer (and cid: cid_len bytes, NULL/0:
 * none) before it thaws it here ("Claims" above): in one atomic step in Redis, the value under
 * peer must still begin with stamp (NULL: any value, for a session whose stamp is not known), no
 * other node may hold its lease, and then the lease is taken in this node's name and both keys
 * DELeted. 0: cb fires exactly once, later, with status 0 (this node holds the session: it may
 * thaw it), PSKGW_EBUSY (the lease is another node's), PSKGW_ENOTFOUND (the value is gone or
 * another one: another node took the record, or stored its own since), PSKGW_EUNAVAIL (no
 * answer: error reply, lost connection, watchdog) or PSKGW_ECANCELED; rec is NULL. Counted in
 * claims_*. Fails at once without calling cb: PSKGW_EUNAVAIL (not connected: counted as an
 * error), PSKGW_EINVAL, PSKGW_ENOMEM. Cancelled with pskgw_sessredis_cancel. */
int pskgw_sessredis_claim(pskgw_sessredis_t *r, const char *listener, const char *peer,
                          const uint8_t *cid, size_t cid_len,
                          const uint8_t stamp[PSKGW_SESSREDIS_STAMP_LEN], pskgw_sessredis_cb cb,
                          void *arg, pskgw_sessredis_req_t **out);
/* What a claim's reply means (pure; exposed for tests): status is the command's (0, or
 * PSKGW_ECANCELED / another error), reply_type hiredis' REDIS_REPLY_* and v its integer. 0 (won:
 * v >= 1, the DEL's count), PSKGW_EBUSY (v == -1), PSKGW_ENOTFOUND (v == 0 or below -1),
 * PSKGW_ECANCELED, PSKGW_EUNAVAIL (an error, or a reply that is not an integer). */
int pskgw_sessredis_claim_result(int status, int reply_type, long long v);

/* "cid:<lower-case hex>" into out (cap >= 4 + 2 * len + 1). The length, or PSKGW_EINVAL. */
int pskgw_sessredis_cid_name(const uint8_t *cid, size_t len, char *out, size_t cap);

void pskgw_sessredis_stats(const pskgw_sessredis_t *r, pskgw_sessredis_stats_t *out);

/* Closes: pending lookups complete with PSKGW_ECANCELED (inside this call), the connection
 * closes; cb(arg) (optional) fires from a libuv close callback once all is released. Once. */
void pskgw_sessredis_close(pskgw_sessredis_t *r, void (*cb)(void *arg), void *arg);

/* ---- sealing (pure; exposed for tests) ----
 * sealed = IV(12) | AES-256-GCM(u8 len, peer, u8 len, cid name or "", rec) | tag(16), the
 * associated data domain NUL listener NUL name (the key it is stored under). seal: *out
 * malloc'ed (the caller frees it). open: checks that name is one of the two names inside; *rec
 * points into *plain (malloc'ed, the caller wipes and frees it: pskgw_sessredis_plain_free);
 * *peer and *cid_name are NUL-terminated copies inside out_names (2 * (NAME_MAX + 1) bytes).
 * 0, PSKGW_EINVAL, PSKGW_ENOMEM, PSKGW_ECRYPTO; open: PSKGW_EPARSE (does not authenticate or
 * malformed). */
int pskgw_sessredis_seal(const uint8_t key[PSKGW_SESSREDIS_KEY_LEN], const char *domain,
                         const char *listener, const char *name, const char *peer,
                         const char *cid_name, const uint8_t *rec, size_t len, uint8_t **out,
                         size_t *out_len);
int pskgw_sessredis_open(const uint8_t key[PSKGW_SESSREDIS_KEY_LEN], const char *domain,
                         const char *listener, const char *name, const uint8_t *sealed,
                         size_t sealed_len, uint8_t **plain, size_t *plain_len,
                         char out_names[2 * (PSKGW_SESSREDIS_NAME_MAX + 1)], const char **peer,
                         const char **cid_name, const uint8_t **rec, size_t *rec_len);
void pskgw_sessredis_plain_free(uint8_t *plain, size_t len);

/* Metrics (the admin endpoint's; gateway/domain_sessions.c calls them for every domain with a
 * store): the families' HELP and TYPE lines once, then each store's samples labelled
 * domain="<domain>":
 *   pskgw_sessions_redis_stores_total, _store_errors_total (dropped stores included),
 *   pskgw_sessions_redis_dropped_total{command="store|other"}: stores refused at the bound
 *     (store_dropped: sessions not stored) and other commands refused at it (cmd_dropped),
 *   pskgw_sessions_redis_lookups_total{result}, _leases_total, gauge _connected,
 *   pskgw_sessions_redis_claims_total{result="won|held|gone|error"}. */
void pskgw_sessredis_metrics_families(pskgw_metrics_t *m);
void pskgw_sessredis_metrics_sample(const pskgw_sessredis_t *r, const char *domain,
                                    pskgw_metrics_t *m);

#endif
