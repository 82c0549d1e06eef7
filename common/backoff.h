/* pskgw_backoff: the one capped, jittered exponential backoff of the gateway (issue 18.3), used
 * by the security-service client (authentication and request retries), the Redis connection
 * (reconnects) and the sinks (per-message retries).
 *
 * A policy says how the delays grow: the step for failure number `attempt` (1 for the first) is
 * min_ms * factor^(attempt-1), never above max_ms; the delay is drawn uniformly from
 * [step - step*below_pct/100, step + step*above_pct/100] and then capped at max_ms (a band
 * reaching over max_ms puts that part of its draws on max_ms), and it is at least 1 ms.
 * The callers' policies: upstream and sinks {base, max, 2, 50, 0} (the upper half of the step),
 * redisconn {min, max, 2, 20, 20} (80..120 % of the step).
 *
 * pskgw_backoff_delay_ms() is pure: the random number is a parameter. A pskgw_backoff_t owns a
 * jitter source per object (xorshift64, seeded by its owner, for example with
 * pskgw_backoff_seed(): objects started together do not retry in step) or uses an injected
 * generator (tests), and counts failures for owners that retry one thing at a time.
 * Jitter needs spread, not secrecy: never use these numbers for anything secret.
 * No I/O, no clock, no allocation (only pskgw_backoff_seed() reads the system's random source).
 */
#ifndef PSKGW_COMMON_BACKOFF_H
#define PSKGW_COMMON_BACKOFF_H

#include <stdint.h>

typedef struct {
    uint64_t min_ms;    /* step of the first failure (0 is taken as 1) */
    uint64_t max_ms;    /* no delay above it (it wins over min_ms; 0 is taken as min_ms) */
    unsigned factor;    /* growth per failure (0 is taken as 2, 1 keeps the step) */
    unsigned below_pct; /* jitter under the step, 0..100 (more is taken as 100) */
    unsigned above_pct; /* jitter over the step (before the cap at max_ms), 0..100 */
} pskgw_backoff_policy_t;

/* Uniform 32-bit random numbers (an injected jitter source). */
typedef uint32_t (*pskgw_backoff_random_fn)(void *arg);

typedef struct {
    pskgw_backoff_policy_t policy;
    unsigned attempt; /* failures since the last reset (pskgw_backoff_next) */
    uint64_t rng;     /* xorshift64 state, never 0 */
    pskgw_backoff_random_fn random;
    void *random_arg;
} pskgw_backoff_t;

/* The delay in ms before retry number attempt (0 is taken as 1) with the random number r
 * (any value; r = 0 gives the lowest delay of the band). Pure; no overflow for any attempt,
 * factor or max_ms. */
uint64_t pskgw_backoff_delay_ms(const pskgw_backoff_policy_t *p, unsigned attempt, uint64_t r);

/* The lowest and highest delay pskgw_backoff_delay_ms() can give for attempt. */
void pskgw_backoff_bounds_ms(const pskgw_backoff_policy_t *p, unsigned attempt, uint64_t *lo,
                             uint64_t *hi);

/* Set up b (caller memory, nothing to free) with a copy of the policy, no failures counted and
 * its own jitter source seeded with seed (0 is replaced by a fixed non-zero value). */
void pskgw_backoff_init(pskgw_backoff_t *b, const pskgw_backoff_policy_t *p, uint64_t seed);

/* Draw jitter from random(arg) instead of the internal generator (NULL: back to it). */
void pskgw_backoff_set_random(pskgw_backoff_t *b, pskgw_backoff_random_fn random, void *arg);

/* One more failure: counts it and returns the delay for it. */
uint64_t pskgw_backoff_next(pskgw_backoff_t *b);

/* One more failure, counted without drawing a delay (the caller waits for one it was told, for
 * example a Retry-After). */
void pskgw_backoff_count(pskgw_backoff_t *b);

/* The delay for an attempt number the caller counts itself (per request, per message), drawn
 * from b's jitter source; b's own count is not touched. */
uint64_t pskgw_backoff_at(pskgw_backoff_t *b, unsigned attempt);

/* Success: the next failure starts again from min_ms. The jitter source goes on. */
void pskgw_backoff_reset(pskgw_backoff_t *b);

/* One draw of b's jitter source (32 bits; the injected generator when one is set). */
uint32_t pskgw_backoff_random(pskgw_backoff_t *b);

/* A seed for one object: the system's random source (getrandom), mixed with salt (for example
 * the object's address) and, when that source fails, the monotonic clock. Never 0. */
uint64_t pskgw_backoff_seed(const void *salt);

#endif
