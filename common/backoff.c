#include "common/backoff.h"

#include <limits.h>
#include <stddef.h>
#include <sys/random.h>
#include <time.h>

/* floor(v * pct / 100) without overflowing: pct <= 100. */
static uint64_t pct_of(uint64_t v, unsigned pct)
{
    return v / 100 * pct + v % 100 * pct / 100;
}

/* The step of failure number attempt: min * factor^(attempt-1), capped at max. */
static uint64_t step_ms(const pskgw_backoff_policy_t *p, unsigned attempt, uint64_t max)
{
    uint64_t step = p->min_ms ? p->min_ms : 1;
    uint64_t factor = p->factor ? p->factor : 2;

    if (factor < 2)
        return step < max ? step : max;
    for (unsigned i = 1; i < attempt && step < max; i++)
        step = step > max / factor ? max : step * factor;
    return step < max ? step : max;
}

void pskgw_backoff_bounds_ms(const pskgw_backoff_policy_t *p, unsigned attempt, uint64_t *lo,
                             uint64_t *hi)
{
    uint64_t max = p->max_ms ? p->max_ms : (p->min_ms ? p->min_ms : 1);
    uint64_t step = step_ms(p, attempt, max);
    unsigned below = p->below_pct < 100 ? p->below_pct : 100;
    unsigned above = p->above_pct < 100 ? p->above_pct : 100;
    uint64_t over = pct_of(step, above);

    *lo = step - pct_of(step, below);
    *hi = step > UINT64_MAX - over ? UINT64_MAX : step + over;
}

uint64_t pskgw_backoff_delay_ms(const pskgw_backoff_policy_t *p, unsigned attempt, uint64_t r)
{
    uint64_t max = p->max_ms ? p->max_ms : (p->min_ms ? p->min_ms : 1);
    uint64_t lo;
    uint64_t hi;
    uint64_t d;

    pskgw_backoff_bounds_ms(p, attempt, &lo, &hi);
    /* Draw over the whole band, then cap: a band reaching over max puts those draws on max. */
    d = hi - lo == UINT64_MAX ? r : lo + r % (hi - lo + 1);
    if (d > max)
        d = max;
    return d ? d : 1;
}

void pskgw_backoff_init(pskgw_backoff_t *b, const pskgw_backoff_policy_t *p, uint64_t seed)
{
    b->policy = *p;
    b->attempt = 0;
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
    b->random = NULL;
    b->random_arg = NULL;
}

void pskgw_backoff_set_random(pskgw_backoff_t *b, pskgw_backoff_random_fn random, void *arg)
{
    b->random = random;
    b->random_arg = arg;
}

uint32_t pskgw_backoff_random(pskgw_backoff_t *b)
{
    uint64_t x;

    if (b->random)
        return b->random(b->random_arg);
    x = b->rng; /* xorshift64 (Marsaglia 13/7/17): spread, not secrecy */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    return (uint32_t)(x >> 32);
}

uint64_t pskgw_backoff_at(pskgw_backoff_t *b, unsigned attempt)
{
    return pskgw_backoff_delay_ms(&b->policy, attempt, pskgw_backoff_random(b));
}

void pskgw_backoff_count(pskgw_backoff_t *b)
{
    if (b->attempt < UINT_MAX)
        b->attempt++;
}

uint64_t pskgw_backoff_next(pskgw_backoff_t *b)
{
    pskgw_backoff_count(b);
    return pskgw_backoff_at(b, b->attempt);
}

void pskgw_backoff_reset(pskgw_backoff_t *b)
{
    b->attempt = 0;
}

uint64_t pskgw_backoff_seed(const void *salt)
{
    uint64_t s = 0;
    struct timespec ts;

    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    s ^= (uint64_t)(uintptr_t)salt * 0x9e3779b97f4a7c15ULL;
    return s ? s : 1;
}
