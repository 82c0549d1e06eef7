/* Layer 1 of the key cache: a bounded in-process LRU with expiry (module-internal).
 *
 * A hash table (chained, keyed SipHash-2-4 with a random seed, so identities chosen by a peer
 * cannot flood one bucket) plus an intrusive doubly-linked recency list. Each entry is one
 * allocation holding key and value; it is wiped before it is freed (eviction, replacement, expiry
 * or pskgw_kc_lru_free). Pure: no I/O, no clock (callers pass `now`, monotonic ms).
 *
 * Owner: the key cache (keycache.c). Entry pointers returned by get are borrowed and valid until
 * the next put/remove/get/free on the same LRU.
 */
#ifndef PSKGW_KEYCACHE_LRU_H
#define PSKGW_KEYCACHE_LRU_H

#include "common/list.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pskgw_kc_entry {
    struct pskgw_kc_entry *hnext; /* hash chain */
    pskgw_list_t link;            /* recency list: first = most recent */
    uint64_t hash;
    uint64_t fresh_until; /* monotonic ms: fresh before this */
    uint64_t stale_until; /* monotonic ms: dropped at this (>= fresh_until) */
    uint64_t retry_after; /* monotonic ms: stale served without refresh before this */
    uint32_t key_len;
    uint32_t value_len;
    uint8_t kind;         /* pskgw_keycache_kind_t */
    uint8_t has_decoded;  /* the decode hook's struct follows the value (pskgw_kc_entry_decoded) */
    uint32_t decoded_off; /* its offset from the entry's start (16-byte aligned) */
    uint8_t data[];       /* key, then value, then the decoded struct */
} pskgw_kc_entry_t;

typedef struct pskgw_kc_lru pskgw_kc_lru_t;

static inline const uint8_t *pskgw_kc_entry_value(const pskgw_kc_entry_t *e)
{
    return e->data + e->key_len;
}

/* The value decoded by the LRU's decode hook (pskgw_kc_lru_set_decode), stored with the entry
 * in the same don't-dump block and wiped with it; NULL when there is no hook, the entry is a
 * refusal or the value did not decode. */
static inline const void *pskgw_kc_entry_decoded(const pskgw_kc_entry_t *e)
{
    return e->has_decoded ? (const uint8_t *)e + e->decoded_off : NULL;
}

/* Decode each value entry's value once, when it is put, into size bytes (<= 1024) kept with the
 * entry: decode(arg, value, value_len, out) returns 0 (out filled) or < 0 (the entry is kept
 * without a decoded struct; out is wiped). Set before the first put. */
typedef int (*pskgw_kc_decode_fn)(void *arg, const uint8_t *value, size_t value_len, void *out);
void pskgw_kc_lru_set_decode(pskgw_kc_lru_t *lru, pskgw_kc_decode_fn decode, void *arg,
                             size_t size);

/* SipHash-2-4 of (key, len) under a 16-byte seed: pskgw_siphash24 (common/siphash.h). */
uint64_t pskgw_kc_siphash(const uint8_t seed[16], const uint8_t *in, size_t len);

/* max_entries >= 1. seed: 16 random bytes (copied). 0, PSKGW_EINVAL or PSKGW_ENOMEM. */
int pskgw_kc_lru_new(size_t max_entries, const uint8_t seed[16], pskgw_kc_lru_t **out);
/* Wipes and frees every entry, then the table. NULL accepted. */
void pskgw_kc_lru_free(pskgw_kc_lru_t *lru);

uint64_t pskgw_kc_lru_hash(const pskgw_kc_lru_t *lru, const uint8_t *key, size_t len);

/* The entry for key, or NULL. An entry whose stale_until <= now is dropped (wiped) and NULL is
 * returned. A hit becomes the most recent. */
pskgw_kc_entry_t *pskgw_kc_lru_get(pskgw_kc_lru_t *lru, const uint8_t *key, size_t len,
                                   uint64_t now);

/* Insert or replace key's entry (replacement wipes the old one); a value entry (kind
 * PSKGW_KEYCACHE_KIND_VALUE) is decoded by the decode hook, if any. When the LRU is full, the least
 * recent entry is evicted (*evicted incremented). 0 or PSKGW_ENOMEM (the old entry, if any, is
 * left in place). */
int pskgw_kc_lru_put(pskgw_kc_lru_t *lru, const uint8_t *key, size_t len, uint8_t kind,
                     const uint8_t *value, size_t value_len, uint64_t fresh_until,
                     uint64_t stale_until, uint64_t *evicted);

/* Drop key's entry if present (wiped). Returns 1 if one was dropped, else 0. */
int pskgw_kc_lru_remove(pskgw_kc_lru_t *lru, const uint8_t *key, size_t len);

size_t pskgw_kc_lru_count(const pskgw_kc_lru_t *lru);

/* Drop (wipe) every entry; the LRU stays usable. Returns how many were dropped. */
size_t pskgw_kc_lru_clear(pskgw_kc_lru_t *lru);

#endif
