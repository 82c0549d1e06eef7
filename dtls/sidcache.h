/* pskgw_sidcache: the bounded in-process cache behind RFC 5246 (7.3) session-ID resumption.
 *
 * One cache per (D)TLS context, i.e. per listener: a session ID issued by one listener is never
 * found by another (another domain's listener above all). An entry holds what an abbreviated
 * handshake needs and what the envelope needs: wolfSSL's serialised session (master secret,
 * suite, version, extended-master-secret flag), the PSK identity and the ROTPublicUID. It lives
 * in one block of don't-dump memory (common/secmem.h), wiped when the entry goes (eviction,
 * expiry, replacement, the cache's free).
 *
 * Bounded: at most `max` entries; storing into a full cache drops the least recently used
 * entry (counted as evicted, or as expired when its time had passed). An entry expires at the
 * time given when it was stored (`now` and `expires` are the caller's monotonic clock, in the
 * same unit); an expired entry is never returned and is dropped when met. Does no I/O and
 * reads no clock; one thread; no locks. */
#ifndef PSKGW_DTLS_SIDCACHE_H
#define PSKGW_DTLS_SIDCACHE_H

#include <stddef.h>
#include <stdint.h>

#define PSKGW_SID_LEN       32   /* a session ID as pskgw's server issues them (RFC 5246: 0-32) */
#define PSKGW_SID_STATE_MAX 1024 /* bytes of serialised session state accepted per entry */
#define PSKGW_SIDCACHE_MAX  1000000 /* entries */

typedef struct pskgw_sidcache pskgw_sidcache_t;

typedef struct {
    uint64_t stored;  /* entries stored */
    uint64_t found;   /* lookups that found a live entry */
    uint64_t unknown; /* lookups that found no live entry (expired ones included) */
    uint64_t expired; /* entries dropped because their time had passed */
    uint64_t evicted; /* live entries dropped to make room */
} pskgw_sidcache_stats_t;

/* What a lookup found: borrowed, valid until the next call on the cache. */
typedef struct {
    const uint8_t *state;
    size_t state_len;
    const char *identity;
    const char *uid; /* NULL: none */
} pskgw_sidcache_hit_t;

/* max: 1..PSKGW_SIDCACHE_MAX. Errors: PSKGW_EINVAL, PSKGW_ENOMEM. */
int pskgw_sidcache_new(size_t max, pskgw_sidcache_t **out);
/* Wipes and frees every entry, then the cache. NULL accepted. */
void pskgw_sidcache_free(pskgw_sidcache_t *c);

/* Stores (or replaces) the entry of id. state: state_len bytes (1..PSKGW_SID_STATE_MAX);
 * identity: not NULL, not empty; uid may be NULL. Errors: PSKGW_EINVAL (bad arguments, expires
 * not after now), PSKGW_ENOMEM (nothing stored; what was there for id is gone). */
int pskgw_sidcache_put(pskgw_sidcache_t *c, const uint8_t id[PSKGW_SID_LEN], uint64_t now,
                       uint64_t expires, const uint8_t *state, size_t state_len,
                       const char *identity, const char *uid);
/* The live entry of id (and it becomes the most recently used): 0 with *hit filled, or
 * PSKGW_ENOTFOUND (none, or expired: dropped). */
int pskgw_sidcache_get(pskgw_sidcache_t *c, const uint8_t id[PSKGW_SID_LEN], uint64_t now,
                       pskgw_sidcache_hit_t *hit);
/* Drops the entry of id, if any (a session that must not resume again). */
void pskgw_sidcache_remove(pskgw_sidcache_t *c, const uint8_t id[PSKGW_SID_LEN]);

/* A new bound (a reload's session_cache), 1..PSKGW_SIDCACHE_MAX: when it is below the count, the
 * least recently used entries go (wiped, counted as evicted) until max are left; the others stay
 * with their order of use. Errors: PSKGW_EINVAL, PSKGW_ENOMEM (nothing changed). */
int pskgw_sidcache_resize(pskgw_sidcache_t *c, size_t max);
/* Drops (wipes) every entry, counted as evicted; the bound stays. */
void pskgw_sidcache_clear(pskgw_sidcache_t *c);

size_t pskgw_sidcache_count(const pskgw_sidcache_t *c);
/* Counters (borrowed; live as long as c). */
const pskgw_sidcache_stats_t *pskgw_sidcache_stats(const pskgw_sidcache_t *c);

#endif
