#include "e2e/replay.h"

#include "common/err.h"
#include "common/wipe.h"

#include <wolfssl/options.h>
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
    uint8_t seed[16];
    /* SHA-256 state after the seed padded to one whole block: each fingerprint starts from a
     * copy of it, so the seed costs no compression per payload */
    wc_Sha256 mid;
    int mid_ok;
};

#define SEED_BLOCK 64 /* WC_SHA256_BLOCK_SIZE */

static int mid_init(pskgw_e2e_replay_t *r)
{
    uint8_t block[SEED_BLOCK] = { 0 };
    int ok;

    memcpy(block, r->seed, sizeof(r->seed));
    if (wc_InitSha256(&r->mid) != 0)
        return PSKGW_ECRYPTO;
    r->mid_ok = 1;
    ok = wc_Sha256Update(&r->mid, block, sizeof(block)) == 0;
    pskgw_wipe(block, sizeof(block));
    return ok ? 0 : PSKGW_ECRYPTO;
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
    memcpy(r->seed, seed, sizeof(r->seed));
    if (mid_init(r) < 0) {
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
    pskgw_wipe(r->seed, sizeof(r->seed));
    if (r->mid_ok)
        wc_Sha256Free(&r->mid);
    pskgw_wipe(&r->mid, sizeof(r->mid));
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

static int fingerprint(pskgw_e2e_replay_t *r, const char *device, const char *ki, uint8_t fp[16])
{
    wc_Sha256 sha;
    uint8_t d[WC_SHA256_DIGEST_SIZE];
    static const uint8_t sep = 0;
    int ok;

    if (wc_Sha256Copy(&r->mid, &sha) != 0)
        return PSKGW_ECRYPTO;
    ok = wc_Sha256Update(&sha, (const uint8_t *)device, (word32)strlen(device)) == 0 &&
         wc_Sha256Update(&sha, &sep, 1) == 0 &&
         wc_Sha256Update(&sha, (const uint8_t *)ki, (word32)strlen(ki)) == 0 &&
         wc_Sha256Final(&sha, d) == 0;
    wc_Sha256Free(&sha);
    if (!ok)
        return PSKGW_ECRYPTO;
    memcpy(fp, d, 16);
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
