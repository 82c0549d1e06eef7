#include "common/backoff.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>

static const pskgw_backoff_policy_t upper_half = { 100, 2000, 2, 50, 0 };    /* upstream, sinks */
static const pskgw_backoff_policy_t plus_minus_20 = { 50, 5000, 2, 20, 20 }; /* redisconn */

static uint64_t step_of(uint64_t min, uint64_t max, unsigned attempt)
{
    uint64_t s = min;

    for (unsigned i = 1; i < attempt && s < max; i++)
        s *= 2;
    return s < max ? s : max;
}

Test(backoff, bounds_follow_the_step)
{
    for (unsigned a = 1; a <= 40; a++) {
        uint64_t step = step_of(100, 2000, a);
        uint64_t lo;
        uint64_t hi;

        pskgw_backoff_bounds_ms(&upper_half, a, &lo, &hi);
        cr_assert_eq(lo, step - step / 2, "attempt %u", a);
        cr_assert_eq(hi, step, "attempt %u", a);
        cr_assert_eq(pskgw_backoff_delay_ms(&upper_half, a, 0), lo);
        cr_assert_eq(pskgw_backoff_delay_ms(&upper_half, a, hi - lo), hi);
        cr_assert_eq(pskgw_backoff_delay_ms(&upper_half, a, hi - lo + 1), lo, "wraps");
    }
    /* attempt 0 is the first attempt */
    cr_assert_eq(pskgw_backoff_delay_ms(&upper_half, 0, 7),
                 pskgw_backoff_delay_ms(&upper_half, 1, 7));
}

Test(backoff, never_above_max)
{
    for (unsigned a = 1; a <= 64; a++)
        for (uint64_t r = 0; r < 5000; r += 13) {
            cr_assert_leq(pskgw_backoff_delay_ms(&upper_half, a, r * 2654435761u), 2000);
            cr_assert_leq(pskgw_backoff_delay_ms(&plus_minus_20, a, r * 2654435761u), 5000);
        }
}

Test(backoff, plus_minus_20_percent_capped_at_max)
{
    uint64_t lo;
    uint64_t hi;

    pskgw_backoff_bounds_ms(&plus_minus_20, 1, &lo, &hi);
    cr_assert_eq(lo, 40);
    cr_assert_eq(hi, 60);
    pskgw_backoff_bounds_ms(&plus_minus_20, 3, &lo, &hi);
    cr_assert_eq(lo, 160);
    cr_assert_eq(hi, 240);
    /* at the cap: the band is 4000..6000, the upper part lands on 5000 */
    pskgw_backoff_bounds_ms(&plus_minus_20, 20, &lo, &hi);
    cr_assert_eq(lo, 4000);
    cr_assert_eq(hi, 6000);
    cr_assert_eq(pskgw_backoff_delay_ms(&plus_minus_20, 20, 0), 4000);
    cr_assert_eq(pskgw_backoff_delay_ms(&plus_minus_20, 20, 1000), 5000);
    cr_assert_eq(pskgw_backoff_delay_ms(&plus_minus_20, 20, 2000), 5000);
}

Test(backoff, jitter_spreads_over_the_band)
{
    pskgw_backoff_t b;
    uint64_t seen_min = UINT64_MAX;
    uint64_t seen_max = 0;
    unsigned below_step = 0;
    unsigned above_step = 0;

    pskgw_backoff_init(&b, &plus_minus_20, 42);
    for (int k = 0; k < 4000; k++) {
        uint64_t d = pskgw_backoff_at(&b, 4); /* step 400: band 320..480 */
        cr_assert(d >= 320 && d <= 480, "%llu", (unsigned long long)d);
        seen_min = d < seen_min ? d : seen_min;
        seen_max = d > seen_max ? d : seen_max;
        below_step += d < 400;
        above_step += d > 400;
    }
    cr_assert_lt(seen_min, 330);
    cr_assert_gt(seen_max, 470);
    /* roughly even on both sides of the step */
    cr_assert(below_step > 1500 && above_step > 1500, "%u below, %u above", below_step, above_step);
}

Test(backoff, next_counts_and_reset_starts_over)
{
    pskgw_backoff_t b;

    pskgw_backoff_init(&b, &upper_half, 7);
    for (unsigned a = 1; a <= 10; a++) {
        uint64_t step = step_of(100, 2000, a);
        uint64_t d = pskgw_backoff_next(&b);

        cr_assert_eq(b.attempt, a);
        cr_assert(d >= step - step / 2 && d <= step, "attempt %u: %llu", a, (unsigned long long)d);
    }
    cr_assert_geq(pskgw_backoff_next(&b), 1000);
    pskgw_backoff_reset(&b);
    cr_assert_eq(b.attempt, 0);
    cr_assert_leq(pskgw_backoff_next(&b), 100);
    cr_assert_eq(b.attempt, 1);
    pskgw_backoff_count(&b);
    cr_assert_eq(b.attempt, 2, "count() counts without a draw");
    cr_assert_leq(pskgw_backoff_next(&b), 400);
    cr_assert_eq(b.attempt, 3);
    /* at() leaves the count alone */
    cr_assert_geq(pskgw_backoff_at(&b, 30), 1000);
    cr_assert_eq(b.attempt, 3);
}

Test(backoff, no_overflow_at_high_attempt_counts)
{
    const pskgw_backoff_policy_t huge = { 3, UINT64_MAX, 1000, 50, 100 };
    const pskgw_backoff_policy_t big_step = { UINT64_MAX / 2, UINT64_MAX, 2, 0, 100 };
    pskgw_backoff_t b;
    uint64_t lo;
    uint64_t hi;

    cr_assert_eq(pskgw_backoff_delay_ms(&upper_half, UINT_MAX, 0), 1000);
    cr_assert_eq(pskgw_backoff_delay_ms(&upper_half, UINT_MAX, UINT64_MAX),
                 1000 + UINT64_MAX % 1001);
    pskgw_backoff_bounds_ms(&huge, UINT_MAX, &lo, &hi);
    cr_assert_eq(hi, UINT64_MAX, "the step saturates at max, the band at UINT64_MAX");
    cr_assert_eq(lo, UINT64_MAX - UINT64_MAX / 2);
    pskgw_backoff_bounds_ms(&big_step, 1, &lo, &hi);
    cr_assert_eq(lo, UINT64_MAX / 2);
    cr_assert_eq(hi, UINT64_MAX - 1, "step + 100 %% of it, no wrap");
    pskgw_backoff_bounds_ms(&big_step, 2, &lo, &hi);
    cr_assert_eq(lo, UINT64_MAX - 1);
    cr_assert_eq(hi, UINT64_MAX);
    cr_assert_geq(pskgw_backoff_delay_ms(&big_step, 5, 12345), UINT64_MAX - 1);
    /* the count saturates instead of wrapping to the first step */
    pskgw_backoff_init(&b, &upper_half, 1);
    b.attempt = UINT_MAX - 1;
    pskgw_backoff_next(&b);
    pskgw_backoff_next(&b);
    cr_assert_eq(b.attempt, UINT_MAX);
    cr_assert_geq(pskgw_backoff_next(&b), 1000);
}

Test(backoff, degenerate_policies)
{
    const pskgw_backoff_policy_t zeros = { 0, 0, 0, 0, 0 };
    const pskgw_backoff_policy_t max_below_min = { 500, 100, 2, 50, 0 };
    const pskgw_backoff_policy_t flat = { 100, 2000, 1, 0, 0 };
    const pskgw_backoff_policy_t all_below = { 100, 2000, 2, 250, 0 };

    cr_assert_eq(pskgw_backoff_delay_ms(&zeros, 1, 0), 1);
    cr_assert_eq(pskgw_backoff_delay_ms(&zeros, 50, UINT64_MAX), 1);
    cr_assert_leq(pskgw_backoff_delay_ms(&max_below_min, 1, UINT64_MAX), 100, "max wins");
    cr_assert_eq(pskgw_backoff_delay_ms(&flat, UINT_MAX, 99), 100, "factor 1 keeps the step");
    cr_assert_eq(pskgw_backoff_delay_ms(&all_below, 1, 0), 1, "never 0");
}

static uint32_t fixed_random(void *arg)
{
    unsigned *calls = arg;

    (*calls)++;
    return 25;
}

Test(backoff, injected_random_is_used)
{
    pskgw_backoff_t b;
    unsigned calls = 0;

    pskgw_backoff_init(&b, &upper_half, 1);
    pskgw_backoff_set_random(&b, fixed_random, &calls);
    cr_assert_eq(pskgw_backoff_next(&b), 50 + 25);
    cr_assert_eq(pskgw_backoff_at(&b, 2), 100 + 25);
    cr_assert_eq(pskgw_backoff_random(&b), 25);
    cr_assert_eq(calls, 3);
    pskgw_backoff_set_random(&b, NULL, NULL);
    pskgw_backoff_next(&b);
    cr_assert_eq(calls, 3);
}

Test(backoff, seeds_make_separate_sequences)
{
    pskgw_backoff_t a;
    pskgw_backoff_t b;
    pskgw_backoff_t c;
    pskgw_backoff_t z;
    int differ = 0;

    pskgw_backoff_init(&a, &upper_half, 1);
    pskgw_backoff_init(&b, &upper_half, 2);
    pskgw_backoff_init(&c, &upper_half, 1);
    pskgw_backoff_init(&z, &upper_half, 0);
    for (int k = 0; k < 64; k++) {
        uint32_t x = pskgw_backoff_random(&a);

        differ += x != pskgw_backoff_random(&b);
        cr_assert_eq(x, pskgw_backoff_random(&c), "same seed, same sequence");
        cr_assert_neq(z.rng, 0);
        pskgw_backoff_random(&z);
    }
    cr_assert_gt(differ, 60);
    cr_assert_neq(pskgw_backoff_seed(&a), 0);
    cr_assert_neq(pskgw_backoff_seed(&a), pskgw_backoff_seed(&b));
}
