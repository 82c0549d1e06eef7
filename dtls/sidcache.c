/* pskgw_sidcache: see sidcache.h. A chained hash table over the session IDs (the table's
 * pointers on the heap, the entries in don't-dump memory) and a doubly linked list in order of
 * use, the least recently used at the tail. */
#include "dtls/sidcache.h"

#include "common/err.h"
#include "common/secmem.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct ent {
    struct ent *hnext;       /* same bucket */
    struct ent *prev, *next; /* use order: prev is more recent */
    uint64_t expires;
    uint8_t id[PSKGW_SID_LEN];
    uint16_t state_len;
    uint8_t id_len; /* identity bytes, NUL not counted */
    bool has_uid;
    uint8_t data[]; /* state, identity NUL, uid NUL */
} ent_t;

struct pskgw_sidcache {
    ent_t **buckets;
    size_t mask;
    size_t max;
    size_t count;
    ent_t *head, *tail;
    pskgw_sidcache_stats_t st;
};

/* Power of two buckets for max entries (at least 16). */
static size_t buckets_for(size_t max)
{
    size_t n = 16;

    while (n < max)
        n <<= 1;
    return n;
}

int pskgw_sidcache_new(size_t max, pskgw_sidcache_t **out)
{
    pskgw_sidcache_t *c;
    size_t n;

    if (out == NULL || max == 0 || max > PSKGW_SIDCACHE_MAX)
        return PSKGW_EINVAL;
    n = buckets_for(max);
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PSKGW_ENOMEM;
    c->buckets = calloc(n, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return PSKGW_ENOMEM;
    }
    c->mask = n - 1;
    c->max = max;
    *out = c;
    return 0;
}

/* The IDs stored are the server's random bytes: their first bytes are as good as a hash. A
 * client can ask for any ID, but only an ID pskgw issued is ever in a chain. */
static size_t bucket_of(const pskgw_sidcache_t *c, const uint8_t id[PSKGW_SID_LEN])
{
    uint64_t h = 0;

    for (int i = 0; i < 8; i++)
        h = h << 8 | id[i];
    return (size_t)(h & c->mask);
}

static ent_t **find_slot(pskgw_sidcache_t *c, const uint8_t id[PSKGW_SID_LEN])
{
    ent_t **pp = &c->buckets[bucket_of(c, id)];

    while (*pp != NULL && memcmp((*pp)->id, id, PSKGW_SID_LEN) != 0)
        pp = &(*pp)->hnext;
    return pp;
}

static void unlink_use(pskgw_sidcache_t *c, ent_t *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(pskgw_sidcache_t *c, ent_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

/* Removes the entry at *pp (its slot in its chain) and wipes it. */
static void drop(pskgw_sidcache_t *c, ent_t **pp)
{
    ent_t *e = *pp;

    *pp = e->hnext;
    unlink_use(c, e);
    c->count--;
    pskgw_secmem_free(e); /* wipes the whole block */
}

static void drop_entry(pskgw_sidcache_t *c, ent_t *e)
{
    drop(c, find_slot(c, e->id));
}

void pskgw_sidcache_free(pskgw_sidcache_t *c)
{
    if (c == NULL)
        return;
    while (c->tail != NULL)
        drop_entry(c, c->tail);
    free(c->buckets);
    free(c);
}

/* Room for one more: expired entries at the tail go first, then the least recently used. */
static void make_room(pskgw_sidcache_t *c, uint64_t now)
{
    for (int i = 0; i < 2 && c->tail != NULL && c->tail->expires <= now; i++) {
        drop_entry(c, c->tail);
        c->st.expired++;
    }
    if (c->count >= c->max && c->tail != NULL) {
        if (c->tail->expires <= now)
            c->st.expired++;
        else
            c->st.evicted++;
        drop_entry(c, c->tail);
    }
}

int pskgw_sidcache_put(pskgw_sidcache_t *c, const uint8_t id[PSKGW_SID_LEN], uint64_t now,
                       uint64_t expires, const uint8_t *state, size_t state_len,
                       const char *identity, const char *uid)
{
    size_t il, ul;
    ent_t **pp, *e;

    if (c == NULL || id == NULL || state == NULL || state_len == 0 ||
        state_len > PSKGW_SID_STATE_MAX || identity == NULL || expires <= now)
        return PSKGW_EINVAL;
    il = strlen(identity);
    ul = uid != NULL ? strlen(uid) : 0;
    if (il == 0 || il > UINT8_MAX || ul > UINT8_MAX)
        return PSKGW_EINVAL;
    pp = find_slot(c, id);
    if (*pp != NULL)
        drop(c, pp); /* replaced: the old state is wiped before the new one is stored */
    make_room(c, now);
    e = pskgw_secmem_alloc(sizeof(*e) + state_len + il + 1 + ul + 1);
    if (e == NULL)
        return PSKGW_ENOMEM;
    memcpy(e->id, id, PSKGW_SID_LEN);
    e->expires = expires;
    e->state_len = (uint16_t)state_len;
    e->id_len = (uint8_t)il;
    e->has_uid = uid != NULL;
    memcpy(e->data, state, state_len);
    memcpy(e->data + state_len, identity, il + 1);
    if (uid != NULL)
        memcpy(e->data + state_len + il + 1, uid, ul + 1);
    pp = find_slot(c, id); /* make_room may have changed the chain */
    e->hnext = *pp;
    *pp = e;
    push_front(c, e);
    c->count++;
    c->st.stored++;
    return 0;
}

int pskgw_sidcache_get(pskgw_sidcache_t *c, const uint8_t id[PSKGW_SID_LEN], uint64_t now,
                       pskgw_sidcache_hit_t *hit)
{
    ent_t **pp, *e;

    if (c == NULL || id == NULL || hit == NULL)
        return PSKGW_EINVAL;
    pp = find_slot(c, id);
    e = *pp;
    if (e == NULL) {
        c->st.unknown++;
        return PSKGW_ENOTFOUND;
    }
    if (e->expires <= now) {
        drop(c, pp);
        c->st.expired++;
        c->st.unknown++;
        return PSKGW_ENOTFOUND;
    }
    unlink_use(c, e);
    push_front(c, e);
    c->st.found++;
    hit->state = e->data;
    hit->state_len = e->state_len;
    hit->identity = (const char *)e->data + e->state_len;
    hit->uid = e->has_uid ? (const char *)e->data + e->state_len + e->id_len + 1 : NULL;
    return 0;
}

void pskgw_sidcache_remove(pskgw_sidcache_t *c, const uint8_t id[PSKGW_SID_LEN])
{
    ent_t **pp;

    if (c == NULL || id == NULL)
        return;
    pp = find_slot(c, id);
    if (*pp != NULL)
        drop(c, pp);
}

int pskgw_sidcache_resize(pskgw_sidcache_t *c, size_t max)
{
    size_t n;
    ent_t **b;

    if (c == NULL || max == 0 || max > PSKGW_SIDCACHE_MAX)
        return PSKGW_EINVAL;
    n = buckets_for(max);
    b = n != c->mask + 1 ? calloc(n, sizeof(*b)) : NULL;
    if (n != c->mask + 1 && b == NULL)
        return PSKGW_ENOMEM;
    while (c->count > max) {
        drop_entry(c, c->tail);
        c->st.evicted++;
    }
    c->max = max;
    if (b == NULL)
        return 0;
    /* Rehash: every entry is in the use list, so the list walks them all. */
    free(c->buckets);
    c->buckets = b;
    c->mask = n - 1;
    for (ent_t *e = c->head; e != NULL; e = e->next) {
        ent_t **pp = &c->buckets[bucket_of(c, e->id)];

        e->hnext = *pp;
        *pp = e;
    }
    return 0;
}

void pskgw_sidcache_clear(pskgw_sidcache_t *c)
{
    if (c == NULL)
        return;
    while (c->tail != NULL) {
        drop_entry(c, c->tail);
        c->st.evicted++;
    }
}

size_t pskgw_sidcache_count(const pskgw_sidcache_t *c)
{
    return c->count;
}

const pskgw_sidcache_stats_t *pskgw_sidcache_stats(const pskgw_sidcache_t *c)
{
    return &c->st;
}
