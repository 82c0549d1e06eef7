/* Listener limits: see listen_limits.h. */
#include "gateway/listen_limits.h"

#include <string.h>

size_t pskgw_source_of(const uint8_t *peer_key, size_t len, unsigned prefix6,
                       uint8_t out[PSKGW_SOURCE_MAX])
{
    if (len == 7 && peer_key[0] == 4) {
        out[0] = 4;
        memcpy(out + 1, peer_key + 3, 4);
        return 5;
    }
    if (len != 19 || peer_key[0] != 6)
        return 0;
    if (prefix6 == 0 || prefix6 > 128)
        prefix6 = 64;
    out[0] = 6;
    memcpy(out + 1, peer_key + 3, 16);
    for (unsigned bit = prefix6; bit < 128; bit++)
        out[1 + bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    return 17;
}

/* ---- token bucket ------------------------------------------------------------------------- */

void pskgw_rate_limit_init(pskgw_rate_limit_t *r, uint32_t per_s, uint32_t burst,
                           const uint8_t *seed)
{
    memset(r, 0, sizeof(*r));
    r->per_s = per_s;
    r->burst = burst != 0 ? burst : per_s;
    if (seed != NULL)
        memcpy(r->key, seed, sizeof(r->key));
}

bool pskgw_rate_limit_take(pskgw_rate_limit_t *r, const uint8_t *addr, size_t len, uint64_t now)
{
    pskgw_rate_slot_t *s;
    uint8_t key[PSKGW_SOURCE_MAX] = { 0 };
    uint64_t cap;

    if (r->per_s == 0)
        return true;
    if (len > sizeof(key))
        len = sizeof(key);
    memcpy(key, addr, len);
    s = &r->slots[pskgw_siphash24(r->key, key, sizeof(key)) % PSKGW_LIMIT_SLOTS];
    cap = (uint64_t)r->burst * 1000;
    if (!s->used || memcmp(s->addr, key, sizeof(key)) != 0) {
        memcpy(s->addr, key, sizeof(key));
        s->used = true;
        s->tokens_milli = cap;
        s->last_ms = now;
    } else if (now > s->last_ms) {
        /* per_s tokens per 1000 ms = per_s milli-tokens per ms. fill_ms refills the whole
         * bucket; bounding the elapsed time by it bounds the product (< 2^44). */
        uint64_t fill_ms = cap / r->per_s + 1;
        uint64_t elapsed = now - s->last_ms < fill_ms ? now - s->last_ms : fill_ms;
        uint64_t t = s->tokens_milli + elapsed * r->per_s;

        s->tokens_milli = t > cap ? cap : t;
        s->last_ms = now;
    }
    if (s->tokens_milli < 1000)
        return false;
    s->tokens_milli -= 1000;
    return true;
}

/* ---- exact bounded tables ----------------------------------------------------------------- */

/* The set of key (its index) and its fingerprint. */
static size_t place(const pskgw_limit_table_t *t, const uint8_t *key, size_t len, uint64_t *fp)
{
    *fp = pskgw_siphash24(t->key + 16, key, len) | 1; /* 0 marks an empty entry */
    return (size_t)(pskgw_siphash24(t->key, key, len) % PSKGW_LIMIT_SETS);
}

static const pskgw_limit_entry_t *find_const(const pskgw_limit_entry_t *set, uint64_t fp)
{
    for (int w = 0; w < PSKGW_LIMIT_WAYS; w++) {
        if (set[w].fp == fp)
            return &set[w];
    }
    return NULL;
}

static pskgw_limit_entry_t *find(pskgw_limit_entry_t *set, uint64_t fp)
{
    return (pskgw_limit_entry_t *)find_const(set, fp); /* set is not const here */
}

/* The entry of fp in its set, or a fresh one in place of the entry that weighs least. */
static pskgw_limit_entry_t *claim(pskgw_limit_entry_t *set, uint64_t fp, const uint32_t *weight)
{
    pskgw_limit_entry_t *e = find(set, fp);
    int victim = 0;

    if (e != NULL)
        return e;
    for (int w = 1; w < PSKGW_LIMIT_WAYS; w++) {
        if (weight[w] < weight[victim] ||
            (weight[w] == weight[victim] && set[w].last_ms < set[victim].last_ms))
            victim = w;
    }
    memset(&set[victim], 0, sizeof(set[victim]));
    set[victim].fp = fp;
    return &set[victim];
}

/* ---- failure throttle --------------------------------------------------------------------- */

void pskgw_fail_throttle_init(pskgw_fail_throttle_t *t, uint32_t max, uint64_t period_ms,
                              const uint8_t *seed)
{
    memset(t, 0, sizeof(*t));
    t->max = max > 1000000 ? 1000000 : max;
    t->period_ms = period_ms > 0 ? period_ms : 1;
    if (seed != NULL)
        memcpy(t->t.key, seed, sizeof(t->t.key));
}

/* The entry's level at now: max failures leak out per period. */
static uint32_t leaked(const pskgw_fail_throttle_t *t, const pskgw_limit_entry_t *e, uint64_t now)
{
    uint64_t elapsed = now > e->last_ms ? now - e->last_ms : 0;
    uint64_t out;

    if (e->fp == 0 || elapsed >= t->period_ms)
        return 0;
    out = elapsed * t->max * 1000 / t->period_ms; /* < 2^64: period_ms * 10^9 */
    return out >= e->v ? 0 : e->v - (uint32_t)out;
}

bool pskgw_fail_throttle_blocked(const pskgw_fail_throttle_t *t, const uint8_t *key, size_t len,
                                 uint64_t now)
{
    const pskgw_limit_entry_t *e;
    uint64_t fp = 0;
    size_t set;

    if (t->max == 0)
        return false;
    set = place(&t->t, key, len, &fp);
    e = find_const(t->t.e[set], fp);
    /* Throttled while one more failure would go above max. */
    return e != NULL && leaked(t, e, now) > (t->max - 1) * 1000u;
}

bool pskgw_fail_throttle_fail(pskgw_fail_throttle_t *t, const uint8_t *key, size_t len,
                              uint64_t now)
{
    pskgw_limit_entry_t *set;
    pskgw_limit_entry_t *e;
    uint32_t weight[PSKGW_LIMIT_WAYS];
    uint32_t v;
    uint64_t fp = 0;

    if (t->max == 0)
        return false;
    set = t->t.e[place(&t->t, key, len, &fp)];
    for (int w = 0; w < PSKGW_LIMIT_WAYS; w++)
        weight[w] = leaked(t, &set[w], now);
    e = claim(set, fp, weight);
    v = leaked(t, e, now) + 1000;
    if (v > t->max * 1000u)
        v = t->max * 1000u; /* capped: a flood throttles for period/max, not longer */
    e->v = v;
    e->last_ms = now;
    return v > (t->max - 1) * 1000u;
}

/* ---- handshakes in progress --------------------------------------------------------------- */

void pskgw_halfopen_init(pskgw_halfopen_t *h, uint32_t max, const uint8_t *seed)
{
    memset(h, 0, sizeof(*h));
    h->max = max;
    if (seed != NULL)
        memcpy(h->t.key, seed, sizeof(h->t.key));
}

bool pskgw_halfopen_take(pskgw_halfopen_t *h, const uint8_t *key, size_t len,
                         pskgw_halfopen_ticket_t *ticket)
{
    pskgw_limit_entry_t *set;
    pskgw_limit_entry_t *e;
    uint32_t weight[PSKGW_LIMIT_WAYS];
    uint64_t fp = 0;
    size_t si = 0;

    ticket->held = false;
    if (h->max == 0)
        return true;
    si = place(&h->t, key, len, &fp);
    set = h->t.e[si];
    for (int w = 0; w < PSKGW_LIMIT_WAYS; w++)
        weight[w] = set[w].fp == 0 ? 0 : set[w].v;
    e = claim(set, fp, weight);
    if (e->v >= h->max)
        return false;
    e->v++;
    ticket->fp = fp;
    ticket->set = (uint16_t)si;
    ticket->held = true;
    return true;
}

void pskgw_halfopen_release(pskgw_halfopen_t *h, pskgw_halfopen_ticket_t *ticket)
{
    pskgw_limit_entry_t *e;

    if (!ticket->held)
        return;
    ticket->held = false;
    e = find(h->t.e[ticket->set], ticket->fp);
    if (e == NULL || e->v == 0)
        return; /* replaced meanwhile: its count was forgotten */
    if (--e->v == 0)
        e->fp = 0;
}

/* ---- sources with a good record ----------------------------------------------------------- */

void pskgw_good_sources_init(pskgw_good_sources_t *g, uint64_t window_ms, const uint8_t *seed)
{
    memset(g, 0, sizeof(*g));
    g->window_ms = window_ms;
    if (seed != NULL)
        memcpy(g->t.key, seed, sizeof(g->t.key));
}

void pskgw_good_sources_mark(pskgw_good_sources_t *g, const uint8_t *key, size_t len, uint64_t now)
{
    pskgw_limit_entry_t *set;
    uint32_t weight[PSKGW_LIMIT_WAYS] = { 0 }; /* equal weights: the oldest record goes */
    uint64_t fp = 0;

    if (g->window_ms == 0)
        return;
    set = g->t.e[place(&g->t, key, len, &fp)];
    for (int w = 0; w < PSKGW_LIMIT_WAYS; w++) {
        if (set[w].fp != 0 && now - set[w].last_ms >= g->window_ms)
            set[w].fp = 0; /* expired: free first */
        if (set[w].fp == 0)
            set[w].last_ms = 0;
    }
    claim(set, fp, weight)->last_ms = now;
}

bool pskgw_good_sources_test(const pskgw_good_sources_t *g, const uint8_t *key, size_t len,
                             uint64_t now)
{
    const pskgw_limit_entry_t *e;
    uint64_t fp = 0;
    size_t set;

    if (g->window_ms == 0)
        return false;
    set = place(&g->t, key, len, &fp); /* before fp is read */
    e = find_const(g->t.e[set], fp);
    return e != NULL && now >= e->last_ms && now - e->last_ms < g->window_ms;
}
