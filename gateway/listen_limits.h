/* Listener limits with bounded memory and injected time (pure; unit-tested).
 *
 *  - pskgw_rate_limit: a per-source token bucket for new handshakes (refilled at per_s tokens
 *    per second, holding at most burst tokens; a new source starts with a full bucket).
 *  - pskgw_fail_throttle: failed handshakes counted per key (a source, or a source and an
 *    identity) in leaky buckets: a key may fail `max` times, then once per period/max; while
 *    over, it is throttled. No identity-wide state: a key always includes the source.
 *  - pskgw_halfopen: handshakes in progress per source, bounded.
 *  - pskgw_good_sources: sources that completed a handshake recently (a good record), for the
 *    lookup admission's reserved share (lookup_admit.h).
 *
 * The last three are exact per key and bounded: set-associative tables (PSKGW_LIMIT_SETS sets of
 * PSKGW_LIMIT_WAYS entries) placed by SipHash-2-4 under a per-listener random key and told
 * apart by a 64-bit keyed fingerprint, so without the secret nobody can aim keys at one set.
 * A key with no entry is clean: another key's failures never throttle it (a fingerprint
 * collision is a 2^-64 accident). When a set is full, the newcomer replaces the entry that
 * weighs least now (lowest leaked level / fewest handshakes): nothing is pinned, and a
 * replacement only forgets, making a limit more lenient for the forgotten key, never stricter
 * for anyone.
 *
 * Sources (pskgw_source_of): the IPv4 address; for IPv6 the address masked to its first
 * prefix6 bits (a /64 is one customer line: its addresses cost an attacker nothing). */
#ifndef PSKGW_GATEWAY_LISTEN_LIMITS_H
#define PSKGW_GATEWAY_LISTEN_LIMITS_H

#include "common/siphash.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSKGW_LIMIT_SLOTS    1024
#define PSKGW_LIMIT_SETS     2048
#define PSKGW_LIMIT_WAYS     4
#define PSKGW_SOURCE_MAX     17 /* family byte + up to 16 address bytes */
#define PSKGW_LIMIT_SEED_LEN 32 /* two SipHash keys */

/* The source of a peer key as the listener builds it (family byte 4 or 6, 2 port bytes, the
 * address): family byte + IPv4 address, or + IPv6 address with the bits after prefix6 cleared
 * (prefix6 in 1..128; others are read as 64). Returns its length (5 or 17), 0 on a bad key. */
size_t pskgw_source_of(const uint8_t *peer_key, size_t len, unsigned prefix6,
                       uint8_t out[PSKGW_SOURCE_MAX]);

typedef struct {
    uint8_t addr[PSKGW_SOURCE_MAX];
    bool used;
    uint64_t tokens_milli; /* tokens * 1000 (per_s * 1000 does not fit 32 bits) */
    uint64_t last_ms;
} pskgw_rate_slot_t;

typedef struct {
    uint32_t per_s; /* 0: unlimited */
    uint32_t burst; /* bucket size */
    uint8_t key[16];
    pskgw_rate_slot_t slots[PSKGW_LIMIT_SLOTS];
} pskgw_rate_limit_t;

/* per_s: tokens per second per source (0: unlimited); burst: the bucket size, i.e. handshakes
 * a source may start at once (0: the same as per_s). seed: 16 random bytes (NULL: zeros, tests).
 * A newcomer in a taken slot replaces it with a full bucket: that can only make the limit more
 * lenient, and the slot is chosen by a keyed hash. */
void pskgw_rate_limit_init(pskgw_rate_limit_t *r, uint32_t per_s, uint32_t burst,
                           const uint8_t *seed);
/* addr: a source (pskgw_source_of), len <= PSKGW_SOURCE_MAX. true when allowed (a token is
 * taken), false when over the rate. */
bool pskgw_rate_limit_take(pskgw_rate_limit_t *r, const uint8_t *addr, size_t len, uint64_t now);

typedef struct {
    uint64_t fp; /* keyed fingerprint, 0: empty */
    uint64_t last_ms;
    uint32_t v; /* fail throttle: failures * 1000, leaking; half-open: handshakes */
} pskgw_limit_entry_t;

typedef struct {
    uint8_t key[PSKGW_LIMIT_SEED_LEN]; /* placement key, fingerprint key */
    pskgw_limit_entry_t e[PSKGW_LIMIT_SETS][PSKGW_LIMIT_WAYS];
} pskgw_limit_table_t;

typedef struct {
    uint32_t max;       /* failures a key may have in a period; 0: never throttled */
    uint64_t period_ms; /* the whole level leaks out in one period */
    pskgw_limit_table_t t;
} pskgw_fail_throttle_t;

/* max <= 1000000; seed: PSKGW_LIMIT_SEED_LEN random bytes (NULL: zeros, tests only). */
void pskgw_fail_throttle_init(pskgw_fail_throttle_t *t, uint32_t max, uint64_t period_ms,
                              const uint8_t *seed);
/* true while the key is throttled: it failed max times with nothing leaked out since. */
bool pskgw_fail_throttle_blocked(const pskgw_fail_throttle_t *t, const uint8_t *key, size_t len,
                                 uint64_t now);
/* Records one failure of key; true when the key is throttled after it. */
bool pskgw_fail_throttle_fail(pskgw_fail_throttle_t *t, const uint8_t *key, size_t len,
                              uint64_t now);

typedef struct {
    uint32_t max; /* handshakes in progress per source; 0: unlimited */
    pskgw_limit_table_t t;
} pskgw_halfopen_t;

/* What a taken slot holds, to give it back. */
typedef struct {
    uint64_t fp;
    uint16_t set;
    bool held;
} pskgw_halfopen_ticket_t;

/* max: 0 unlimited. seed: PSKGW_LIMIT_SEED_LEN random bytes (NULL: zeros, tests only). */
void pskgw_halfopen_init(pskgw_halfopen_t *h, uint32_t max, const uint8_t *seed);
/* A new handshake from source key: true and *ticket held when below max, false when the
 * source has max handshakes in progress (nothing taken). */
bool pskgw_halfopen_take(pskgw_halfopen_t *h, const uint8_t *key, size_t len,
                         pskgw_halfopen_ticket_t *ticket);
/* Gives a held ticket back (no-op otherwise); the ticket is then not held. */
void pskgw_halfopen_release(pskgw_halfopen_t *h, pskgw_halfopen_ticket_t *ticket);

typedef struct {
    uint64_t window_ms; /* a source is good this long after its last completed handshake */
    pskgw_limit_table_t t;
} pskgw_good_sources_t;

/* window_ms: 0 means no source is ever good. seed: PSKGW_LIMIT_SEED_LEN random bytes (NULL:
 * zeros, tests only). Only a completed handshake (a key the peer proved) marks a source, so a
 * flood without keys cannot push good sources out: a full set forgets its oldest record. */
void pskgw_good_sources_init(pskgw_good_sources_t *g, uint64_t window_ms, const uint8_t *seed);
/* A handshake from source key completed at now. */
void pskgw_good_sources_mark(pskgw_good_sources_t *g, const uint8_t *key, size_t len, uint64_t now);
/* true when source key completed a handshake within window_ms before now. */
bool pskgw_good_sources_test(const pskgw_good_sources_t *g, const uint8_t *key, size_t len,
                             uint64_t now);

#endif
