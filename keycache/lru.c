#include "keycache/lru.h"

#include "common/err.h"
#include "keycache/codec.h"
#include "common/siphash.h"
#include "common/secmem.h"
#include "common/wipe.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS_MAX ((size_t)1 << 22)

struct pskgw_kc_lru {
    pskgw_kc_entry_t **buckets;
    size_t mask;
    size_t count;
    size_t max;
    pskgw_list_t recency; /* pskgw_kc_entry_t.link: first most recent, last least recent */
    uint8_t seed[16];
    pskgw_kc_decode_fn decode; /* NULL: values kept as bytes only */
    void *decode_arg;
    size_t decoded_size;
};

void pskgw_kc_lru_set_decode(pskgw_kc_lru_t *lru, pskgw_kc_decode_fn decode, void *arg, size_t size)
{
    lru->decode = size ? decode : NULL;
    lru->decode_arg = arg;
    lru->decoded_size = decode ? size : 0;
}

uint64_t pskgw_kc_siphash(const uint8_t seed[16], const uint8_t *in, size_t len)
{
    return pskgw_siphash24(seed, in, len);
}

int pskgw_kc_lru_new(size_t max_entries, const uint8_t seed[16], pskgw_kc_lru_t **out)
{
    pskgw_kc_lru_t *lru;
    size_t n = 16;

    if (max_entries == 0 || !seed || !out)
        return PSKGW_EINVAL;
    while (n < max_entries && n < BUCKETS_MAX)
        n <<= 1;
    lru = calloc(1, sizeof(*lru));
    if (!lru)
        return PSKGW_ENOMEM;
    lru->buckets = calloc(n, sizeof(*lru->buckets));
    if (!lru->buckets) {
        free(lru);
        return PSKGW_ENOMEM;
    }
    pskgw_list_init(&lru->recency);
    lru->mask = n - 1;
    lru->max = max_entries;
    memcpy(lru->seed, seed, 16);
    *out = lru;
    return 0;
}

static void entry_free(pskgw_kc_entry_t *e)
{
    pskgw_secmem_free(e);
}

void pskgw_kc_lru_free(pskgw_kc_lru_t *lru)
{
    pskgw_list_t *pos, *next;

    if (!lru)
        return;
    pskgw_list_foreach_safe(pos, next, &lru->recency)
    {
        entry_free(pskgw_container_of(pos, pskgw_kc_entry_t, link));
    }
    free(lru->buckets);
    pskgw_wipe(lru->seed, sizeof(lru->seed));
    free(lru);
}

size_t pskgw_kc_lru_clear(pskgw_kc_lru_t *lru)
{
    size_t n = lru->count;
    pskgw_list_t *pos, *next;

    pskgw_list_foreach_safe(pos, next, &lru->recency)
        entry_free(pskgw_container_of(pos, pskgw_kc_entry_t, link));
    memset(lru->buckets, 0, (lru->mask + 1) * sizeof(*lru->buckets));
    pskgw_list_init(&lru->recency);
    lru->count = 0;
    return n;
}

uint64_t pskgw_kc_lru_hash(const pskgw_kc_lru_t *lru, const uint8_t *key, size_t len)
{
    return pskgw_kc_siphash(lru->seed, key, len);
}

static void list_unlink(pskgw_kc_lru_t *lru, pskgw_kc_entry_t *e)
{
    (void)lru;
    pskgw_list_remove(&e->link);
}

static void list_push_head(pskgw_kc_lru_t *lru, pskgw_kc_entry_t *e)
{
    pskgw_list_insert_head(&lru->recency, &e->link);
}

/* Pointer to the chain link that points at key's entry (or at the chain's NULL end). */
static pskgw_kc_entry_t **find_link(pskgw_kc_lru_t *lru, const uint8_t *key, size_t len, uint64_t h)
{
    pskgw_kc_entry_t **link = &lru->buckets[h & lru->mask];

    while (*link) {
        pskgw_kc_entry_t *e = *link;
        if (e->hash == h && e->key_len == len && memcmp(e->data, key, len) == 0)
            break;
        link = &e->hnext;
    }
    return link;
}

static void drop(pskgw_kc_lru_t *lru, pskgw_kc_entry_t **link)
{
    pskgw_kc_entry_t *e = *link;

    *link = e->hnext;
    list_unlink(lru, e);
    lru->count--;
    entry_free(e);
}

pskgw_kc_entry_t *pskgw_kc_lru_get(pskgw_kc_lru_t *lru, const uint8_t *key, size_t len,
                                   uint64_t now)
{
    uint64_t h = pskgw_kc_siphash(lru->seed, key, len);
    pskgw_kc_entry_t **link = find_link(lru, key, len, h);
    pskgw_kc_entry_t *e = *link;

    if (!e)
        return NULL;
    if (e->stale_until <= now) {
        drop(lru, link);
        return NULL;
    }
    if (pskgw_list_first(&lru->recency) != &e->link) {
        list_unlink(lru, e);
        list_push_head(lru, e);
    }
    return e;
}

int pskgw_kc_lru_put(pskgw_kc_lru_t *lru, const uint8_t *key, size_t len, uint8_t kind,
                     const uint8_t *value, size_t value_len, uint64_t fresh_until,
                     uint64_t stale_until, uint64_t *evicted)
{
    uint64_t h = pskgw_kc_siphash(lru->seed, key, len);
    bool decode = lru->decode && kind == PSKGW_KEYCACHE_KIND_VALUE;
    size_t off = (offsetof(pskgw_kc_entry_t, data) + len + value_len + 15) & ~(size_t)15;
    pskgw_kc_entry_t **link;
    pskgw_kc_entry_t *e;

    if (len > UINT32_MAX || value_len > UINT32_MAX)
        return PSKGW_EINVAL;
    e = pskgw_secmem_alloc(decode ? off + lru->decoded_size : sizeof(*e) + len + value_len);
    if (!e)
        return PSKGW_ENOMEM;
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->fresh_until = fresh_until;
    e->stale_until = stale_until < fresh_until ? fresh_until : stale_until;
    e->key_len = (uint32_t)len;
    e->value_len = (uint32_t)value_len;
    e->kind = kind;
    memcpy(e->data, key, len);
    if (value_len)
        memcpy(e->data + len, value, value_len);
    if (decode) {
        uint8_t *out = (uint8_t *)e + off;
        e->decoded_off = (uint32_t)off;
        e->has_decoded = lru->decode(lru->decode_arg, value, value_len, out) == 0;
        if (!e->has_decoded)
            pskgw_wipe(out, lru->decoded_size);
    }

    link = find_link(lru, key, len, h);
    if (*link)
        drop(lru, link);
    while (lru->count >= lru->max && !pskgw_list_empty(&lru->recency)) {
        pskgw_kc_entry_t *victim =
            pskgw_container_of(pskgw_list_last(&lru->recency), pskgw_kc_entry_t, link);
        drop(lru, find_link(lru, victim->data, victim->key_len, victim->hash));
        if (evicted)
            (*evicted)++;
    }
    e->hnext = lru->buckets[h & lru->mask];
    lru->buckets[h & lru->mask] = e;
    list_push_head(lru, e);
    lru->count++;
    return 0;
}

int pskgw_kc_lru_remove(pskgw_kc_lru_t *lru, const uint8_t *key, size_t len)
{
    uint64_t h = pskgw_kc_siphash(lru->seed, key, len);
    pskgw_kc_entry_t **link = find_link(lru, key, len, h);

    if (!*link)
        return 0;
    drop(lru, link);
    return 1;
}

size_t pskgw_kc_lru_count(const pskgw_kc_lru_t *lru)
{
    return lru->count;
}
