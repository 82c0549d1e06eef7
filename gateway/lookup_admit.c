/* pskgw_lookup_admit: see lookup_admit.h. */
#include "gateway/lookup_admit.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

enum { CLASS_GOOD = 0, CLASS_OTHER = 1 };

/* A source with lookups at the resolver or waiting. */
struct pskgw_admit_src {
    pskgw_admit_src_t *next_hash;
    pskgw_list_t ring_link; /* in its class's ring while eligible */
    pskgw_list_t waiting_q; /* pskgw_admit_item_t.link: waiting, oldest first */
    uint32_t in_flight;
    uint32_t waiting;
    int ring; /* -1: in none */
    uint8_t key[PSKGW_SOURCE_MAX];
    uint8_t len;
};

typedef struct {
    pskgw_list_t head; /* pskgw_admit_src_t.ring_link */
} ring_t;

struct pskgw_lookup_admit {
    pskgw_lookup_admit_opts_t o;
    pskgw_lookup_admit_counters_t c;
    pskgw_rate_limit_t rate;
    pskgw_good_sources_t good;
    uint8_t hkey[16]; /* placement of the source table */
    pskgw_admit_src_t **b;
    size_t cap; /* power of two */
    size_t n;
    ring_t rings[2]; /* sources with waiting lookups that may go when the budget allows */
};

/* ---- sources ------------------------------------------------------------------------------ */

static size_t slot(const pskgw_lookup_admit_t *a, const uint8_t *key, size_t len, size_t cap)
{
    return (size_t)pskgw_siphash24(a->hkey, key, len) & (cap - 1);
}

static int grow(pskgw_lookup_admit_t *a)
{
    size_t ncap = a->cap * 2;
    pskgw_admit_src_t **nb = calloc(ncap, sizeof(*nb));

    if (nb == NULL)
        return PSKGW_ENOMEM;
    for (size_t i = 0; i < a->cap; i++) {
        pskgw_admit_src_t *s = a->b[i];

        while (s != NULL) {
            pskgw_admit_src_t *next = s->next_hash;
            size_t j = slot(a, s->key, s->len, ncap);

            s->next_hash = nb[j];
            nb[j] = s;
            s = next;
        }
    }
    free(a->b);
    a->b = nb;
    a->cap = ncap;
    return 0;
}

static pskgw_admit_src_t *src_get(pskgw_lookup_admit_t *a, const uint8_t *key, size_t len)
{
    pskgw_admit_src_t *s;
    size_t j = slot(a, key, len, a->cap);

    for (s = a->b[j]; s != NULL; s = s->next_hash) {
        if (s->len == len && memcmp(s->key, key, len) == 0)
            return s;
    }
    if (a->n + 1 > a->cap && grow(a) < 0)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    memcpy(s->key, key, len);
    s->len = (uint8_t)len;
    s->ring = -1;
    pskgw_list_init(&s->waiting_q);
    j = slot(a, key, len, a->cap);
    s->next_hash = a->b[j];
    a->b[j] = s;
    a->n++;
    a->c.sources = a->n;
    return s;
}

/* Frees a source with nothing at the resolver and nothing waiting. */
static void src_put(pskgw_lookup_admit_t *a, pskgw_admit_src_t *s)
{
    pskgw_admit_src_t **pp;

    if (s->in_flight > 0 || s->waiting > 0 || s->ring >= 0)
        return;
    for (pp = &a->b[slot(a, s->key, s->len, a->cap)]; *pp != NULL; pp = &(*pp)->next_hash) {
        if (*pp == s) {
            *pp = s->next_hash;
            a->n--;
            a->c.sources = a->n;
            free(s);
            return;
        }
    }
}

/* ---- rings -------------------------------------------------------------------------------- */

static void ring_remove(pskgw_lookup_admit_t *a, pskgw_admit_src_t *s)
{
    (void)a;
    if (s->ring < 0)
        return;
    pskgw_list_remove(&s->ring_link);
    s->ring = -1;
}

/* Puts s at the tail of its class's ring when it has waiting lookups and room at the resolver;
 * the class is read now (a source that just completed a handshake moves up at its next turn). */
static void ring_update(pskgw_lookup_admit_t *a, pskgw_admit_src_t *s, uint64_t now)
{
    ring_t *r;
    bool eligible = s->waiting > 0 && s->in_flight < a->o.per_source;

    if (!eligible) {
        ring_remove(a, s);
        return;
    }
    if (s->ring >= 0)
        return;
    s->ring = pskgw_good_sources_test(&a->good, s->key, s->len, now) ? CLASS_GOOD : CLASS_OTHER;
    r = &a->rings[s->ring];
    pskgw_list_insert_tail(&r->head, &s->ring_link);
}

/* Room at the resolver for a lookup of this class. */
static bool budget(const pskgw_lookup_admit_t *a, int cls)
{
    uint64_t cap = a->o.in_flight - (cls == CLASS_GOOD ? 0 : a->o.reserve);

    return a->c.in_flight < cap;
}

static void go(pskgw_lookup_admit_t *a, pskgw_admit_item_t *item, pskgw_admit_src_t *s, int cls)
{
    item->state = PSKGW_ADMIT_GO;
    item->good = cls == CLASS_GOOD;
    s->in_flight++;
    a->c.in_flight++;
    if (item->good)
        a->c.good++;
}

/* ---- API ---------------------------------------------------------------------------------- */

int pskgw_lookup_admit_new(const pskgw_lookup_admit_opts_t *o, const uint8_t *seed,
                           pskgw_lookup_admit_t **out)
{
    pskgw_lookup_admit_t *a;

    if (o == NULL || out == NULL || o->per_source == 0 || o->in_flight == 0 ||
        o->reserve >= o->in_flight)
        return PSKGW_EINVAL;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return PSKGW_ENOMEM;
    a->o = *o;
    for (size_t i = 0; i < sizeof(a->rings) / sizeof(a->rings[0]); i++)
        pskgw_list_init(&a->rings[i].head);
    a->cap = 64;
    a->b = calloc(a->cap, sizeof(*a->b));
    if (a->b == NULL) {
        free(a);
        return PSKGW_ENOMEM;
    }
    pskgw_rate_limit_init(&a->rate, o->per_source_per_s, o->burst, seed);
    pskgw_good_sources_init(&a->good, o->good_window_ms,
                            seed != NULL ? seed + PSKGW_LIMIT_SEED_LEN : NULL);
    if (seed != NULL)
        memcpy(a->hkey, seed + 16, sizeof(a->hkey));
    *out = a;
    return 0;
}

void pskgw_lookup_admit_free(pskgw_lookup_admit_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->cap; i++) {
        pskgw_admit_src_t *s = a->b[i];

        while (s != NULL) {
            pskgw_admit_src_t *next = s->next_hash;

            free(s);
            s = next;
        }
    }
    free(a->b);
    free(a);
}

int pskgw_lookup_admit_take(pskgw_lookup_admit_t *a, pskgw_admit_item_t *item, const uint8_t *src,
                            size_t len, uint64_t now)
{
    pskgw_admit_src_t *s;
    int cls;

    if (item->state != PSKGW_ADMIT_IDLE || len == 0 || len > PSKGW_SOURCE_MAX)
        return PSKGW_EINVAL;
    if (!pskgw_rate_limit_take(&a->rate, src, len, now)) {
        a->c.refused_rate++;
        return PSKGW_ERATELIMIT;
    }
    s = src_get(a, src, len);
    if (s == NULL)
        return PSKGW_ENOMEM;
    item->src = s;
    cls = pskgw_good_sources_test(&a->good, src, len, now) ? CLASS_GOOD : CLASS_OTHER;
    /* Waiting lookups of this class would have gone if the budget allowed: none can be passed. */
    if (s->waiting == 0 && s->in_flight < a->o.per_source && budget(a, cls)) {
        go(a, item, s, cls);
        a->c.admitted++;
        return PSKGW_ADMIT_GO;
    }
    if (s->waiting >= a->o.queue_per_source) {
        a->c.refused_queue++;
        item->src = NULL;
        src_put(a, s);
        return PSKGW_EFULL;
    }
    item->state = PSKGW_ADMIT_WAITING;
    pskgw_list_insert_tail(&s->waiting_q, &item->link);
    s->waiting++;
    a->c.waiting++;
    a->c.queued++;
    ring_update(a, s, now);
    return PSKGW_ADMIT_WAITING;
}

static void unlink_waiting(pskgw_lookup_admit_t *a, pskgw_admit_src_t *s, pskgw_admit_item_t *item)
{
    pskgw_list_remove(&item->link);
    s->waiting--;
    a->c.waiting--;
}

void pskgw_lookup_admit_release(pskgw_lookup_admit_t *a, pskgw_admit_item_t *item, uint64_t now)
{
    pskgw_admit_src_t *s = item->src;

    if (item->state == PSKGW_ADMIT_IDLE || s == NULL)
        return;
    if (item->state == PSKGW_ADMIT_WAITING) {
        unlink_waiting(a, s, item);
        a->c.withdrawn++;
    } else {
        s->in_flight--;
        a->c.in_flight--;
    }
    item->state = PSKGW_ADMIT_IDLE;
    item->src = NULL;
    ring_update(a, s, now); /* out when nothing waits, in when it has room again */
    src_put(a, s);
}

pskgw_admit_item_t *pskgw_lookup_admit_next(pskgw_lookup_admit_t *a, uint64_t now)
{
    for (int cls = CLASS_GOOD; cls <= CLASS_OTHER; cls++) {
        pskgw_admit_src_t *s =
            pskgw_list_entry(pskgw_list_first(&a->rings[cls].head), pskgw_admit_src_t, ring_link);
        pskgw_admit_item_t *item;

        if (s == NULL || !budget(a, cls))
            continue;
        item = pskgw_list_entry(pskgw_list_first(&s->waiting_q), pskgw_admit_item_t, link);
        ring_remove(a, s);
        unlink_waiting(a, s, item);
        go(a, item, s, cls);
        a->c.dequeued++;
        ring_update(a, s, now); /* back at the tail: one lookup per source per turn */
        return item;
    }
    return NULL;
}

void pskgw_lookup_admit_good(pskgw_lookup_admit_t *a, const uint8_t *src, size_t len, uint64_t now)
{
    pskgw_good_sources_mark(&a->good, src, len, now);
}

const pskgw_lookup_admit_counters_t *pskgw_lookup_admit_counters(const pskgw_lookup_admit_t *a)
{
    return &a->c;
}
