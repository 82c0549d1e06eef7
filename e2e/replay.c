#include "e2e/replay.h"

#include "common/err.h"
#include "common/siphash.h"
#include "common/wipe.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

typedef struct {
    uint8_t fp[16];
    uint64_t at;   /* first seen (monotonic ms) */
    uint32_t next; /* bucket chain */
} entry_t;

struct pskgw_e2e_replay {
    entry_t *ring; /* FIFO by first-seen time: oldest at head */
    size_t cap;
    size_t head;
    size_t count;
    uint32_t *buckets;
    size_t mask;
    uint64_t window;
    /* the fingerprints' SipHash-2-4 key: the first half of the seed's SHA-256, computed once */
    uint8_t key[16];
};

/* device, a 0 byte and the KI: a real pair is at most a ROTPublicUID (64 characters) and a KI's
 * hex (32); longer ones are refused */
#define PAIR_MAX 160

static int derive_key(pskgw_e2e_replay_t *r, const uint8_t seed[16])
{
    uint8_t d[WC_SHA256_DIGEST_SIZE];
    int rc = wc_Sha256Hash(seed, 16, d) == 0 ? 0 : PSKGW_ECRYPTO;

    memcpy(r->key, d, sizeof(r->key));
    pskgw_wipe(d, sizeof(d));
    return rc;
}

int pskgw_e2e_replay_new(size_t max_entries, uint64_t window_ms, const uint8_t seed[16],
                         pskgw_e2e_replay_t **out)
{
    pskgw_e2e_replay_t *r;
    size_t nb = 16;

    if (!out || !seed || max_entries == 0 || window_ms == 0 || max_entries >= NIL)
        return PSKGW_EINVAL;
    while (nb < max_entries && nb < ((size_t)1 << 24))
        nb <<= 1;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PSKGW_ENOMEM;
    r->ring = calloc(max_entries, sizeof(*r->ring));
    r->buckets = malloc(nb * sizeof(*r->buckets));
    if (!r->ring || !r->buckets) {
        pskgw_e2e_replay_free(r);
        return PSKGW_ENOMEM;
    }
    for (size_t i = 0; i < nb; i++)
        r->buckets[i] = NIL;
    r->cap = max_entries;
    r->mask = nb - 1;
    r->window = window_ms;
    if (derive_key(r, seed) < 0) {
        pskgw_e2e_replay_free(r);
        return PSKGW_ECRYPTO;
    }
    *out = r;
    return 0;
}

void pskgw_e2e_replay_free(pskgw_e2e_replay_t *r)
{
    if (!r)
        return;
    pskgw_wipe(r->key, sizeof(r->key));
    free(r->ring);
    free(r->buckets);
    free(r);
}

static size_t bucket_of(const pskgw_e2e_replay_t *r, const uint8_t fp[16])
{
    uint64_t h = 0;

    for (int i = 0; i < 8; i++)
        h = h << 8 | fp[i];
    return (size_t)h & r->mask;
}

/* Forget the oldest pair. */
static void drop_head(pskgw_e2e_replay_t *r)
{
    uint32_t idx = (uint32_t)r->head;
    uint32_t *link = &r->buckets[bucket_of(r, r->ring[idx].fp)];

    while (*link != NIL && *link != idx)
        link = &r->ring[*link].next;
    if (*link == idx)
        *link = r->ring[idx].next;
    r->head = (r->head + 1) % r->cap;
    r->count--;
}

/* 128 bits: SipHash-2-4's 128-bit output of "device \0 ki" under the key (a keyed PRF: nobody
 * without the seed can make two pairs collide or aim them at one bucket), one pass over the pair
 * (two 64-bit SipHashes under two keys took two). */
static int fingerprint(const pskgw_e2e_replay_t *r, const char *device, const char *ki,
                       uint8_t fp[16])
{
    uint8_t pair[PAIR_MAX];
    size_t dl = strlen(device);
    size_t kl = strlen(ki);

    if (dl + 1 + kl > sizeof(pair))
        return PSKGW_EINVAL;
    memcpy(pair, device, dl);
    pair[dl] = 0;
    memcpy(pair + dl + 1, ki, kl);
    pskgw_siphash24_128(r->key, pair, dl + 1 + kl, fp);
    return 0;
}

int pskgw_e2e_replay_seen(pskgw_e2e_replay_t *r, const char *device, const char *ki_hex,
                          uint64_t now)
{
    uint8_t fp[16];
    size_t b;
    size_t slot;
    int rc;

    if (!r || !device || !ki_hex)
        return PSKGW_EINVAL;
    if ((rc = fingerprint(r, device, ki_hex, fp)) < 0)
        return rc;
    /* pairs first seen a window ago or more are forgotten, oldest first */
    while (r->count > 0 && now - r->ring[r->head].at >= r->window)
        drop_head(r);
    b = bucket_of(r, fp);
    for (uint32_t i = r->buckets[b]; i != NIL; i = r->ring[i].next)
        if (memcmp(r->ring[i].fp, fp, sizeof(fp)) == 0)
            return 1;
    if (r->count == r->cap)
        drop_head(r);
    slot = (r->head + r->count) % r->cap;
    memcpy(r->ring[slot].fp, fp, sizeof(fp));
    r->ring[slot].at = now;
    r->ring[slot].next = r->buckets[b];
    r->buckets[b] = (uint32_t)slot;
    r->count++;
    return 0;
}

size_t pskgw_e2e_replay_count(const pskgw_e2e_replay_t *r)
{
    return r->count;
}
