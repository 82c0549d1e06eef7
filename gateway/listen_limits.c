/* Listener limits: see listen_limits.h. */
#include "gateway/listen_limits.h"

#include <string.h>

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void pskgw_rate_limit_init(pskgw_rate_limit_t *r, uint32_t per_s, uint32_t burst)
{
    memset(r, 0, sizeof(*r));
    r->per_s = per_s;
    r->burst = burst != 0 ? burst : per_s;
}

bool pskgw_rate_limit_take(pskgw_rate_limit_t *r, const uint8_t *addr, size_t len, uint64_t now)
{
    pskgw_rate_slot_t *s;
    uint8_t key[17] = { 0 };
    uint64_t cap;

    if (r->per_s == 0)
        return true;
    if (len > sizeof(key))
        len = sizeof(key);
    memcpy(key, addr, len);
    s = &r->slots[fnv1a(key, sizeof(key)) % PSKGW_LIMIT_SLOTS];
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

void pskgw_ident_block_init(pskgw_ident_block_t *b, uint32_t max_failures, uint64_t period_ms)
{
    memset(b, 0, sizeof(*b));
    b->max_failures = max_failures;
    b->period_ms = period_ms;
}

static pskgw_ident_slot_t *ident_slot(pskgw_ident_block_t *b, const char *identity, uint64_t *h)
{
    *h = fnv1a((const uint8_t *)identity, strlen(identity)) | 1; /* 0 marks an empty slot */
    return &b->slots[*h % PSKGW_LIMIT_SLOTS];
}

bool pskgw_ident_block_check(pskgw_ident_block_t *b, const char *identity, uint64_t now)
{
    uint64_t h;
    pskgw_ident_slot_t *s;

    if (b->max_failures == 0 || identity == NULL)
        return false;
    s = ident_slot(b, identity, &h);
    return s->hash == h && now < s->blocked_until;
}

bool pskgw_ident_block_fail(pskgw_ident_block_t *b, const char *identity, uint64_t now)
{
    uint64_t h;
    pskgw_ident_slot_t *s;

    if (b->max_failures == 0 || identity == NULL)
        return false;
    s = ident_slot(b, identity, &h);
    if (s->hash != h || now - s->window_start >= b->period_ms) {
        if (now < s->blocked_until)
            return false; /* a block (this identity's or a colliding one's) is kept */
        s->hash = h;
        s->failures = 0;
        s->window_start = now;
        s->blocked_until = 0;
    }
    s->failures++;
    if (s->failures == b->max_failures) {
        s->blocked_until = now + b->period_ms;
        return true;
    }
    return false;
}
