/* gateway/listen_limits.h: per-source token bucket, failure throttle and half-open bound, with
 * injected time. */
#include "gateway/listen_limits.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static pskgw_rate_limit_t rl;
static pskgw_fail_throttle_t ft;
static pskgw_halfopen_t ho;

Test(limits, token_bucket_per_ip)
{
    const uint8_t a[5] = { 4, 127, 0, 0, 1 };
    const uint8_t b[5] = { 4, 10, 0, 0, 2 };

    pskgw_rate_limit_init(&rl, 3, 0, NULL);
    for (int i = 0; i < 3; i++)
        cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 1000));
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 1000), "burst used up");
    cr_assert(pskgw_rate_limit_take(&rl, b, sizeof(b), 1000), "another IP has its own bucket");
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 1100), "0.3 token after 100 ms");
    cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 1334), "one token after 1/3 s");
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 1334));
    pskgw_rate_limit_init(&rl, 0, 0, NULL);
    for (int i = 0; i < 1000; i++)
        cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 0), "0 = unlimited");
}

/* A large configured rate (above 4294967 per second) does not wrap the bucket's capacity into
 * a tiny one that refuses everyone. */
Test(limits, token_bucket_large_rate_does_not_wrap)
{
    const uint8_t a[5] = { 4, 127, 0, 0, 1 };

    pskgw_rate_limit_init(&rl, 4294968u, 0, NULL);
    for (int i = 0; i < 1000; i++)
        cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 1000), "take %d", i);
    pskgw_rate_limit_init(&rl, UINT32_MAX, 0, NULL);
    cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 1000));
    cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 5000000));
}

/* A burst larger than the rate: a source may start `burst` handshakes at once, then gets
 * `per_s` a second, and an idle source saves up no more than `burst`. */
Test(limits, burst_larger_than_rate_admits_a_burst)
{
    const uint8_t a[5] = { 4, 127, 0, 0, 1 };
    const uint8_t b[5] = { 4, 10, 0, 0, 2 };

    pskgw_rate_limit_init(&rl, 2, 10, NULL);
    for (int i = 0; i < 10; i++)
        cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 1000), "take %d of the burst", i);
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 1000), "burst of 10 used up");
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 1400), "0.8 token after 400 ms");
    cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 1500), "2 per second: one after 500 ms");
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 1500));
    /* 2 s refill only 4: the bucket does not refill in one second as when burst = rate */
    for (int i = 0; i < 4; i++)
        cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 3500), "take %d after 2 s", i);
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 3500), "4 tokens in 2 s, not 10");
    /* a long idle time refills up to the burst, not beyond */
    for (int i = 0; i < 10; i++)
        cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 100000), "take %d after idling", i);
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 100000), "capped at the burst");
    for (int i = 0; i < 10; i++)
        cr_assert(pskgw_rate_limit_take(&rl, b, sizeof(b), 100000), "another IP: its own burst");
    /* burst 0 is the rate; a burst below the rate caps at the burst */
    pskgw_rate_limit_init(&rl, 3, 0, NULL);
    for (int i = 0; i < 3; i++)
        cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 0));
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 0), "burst 0 = the rate");
    pskgw_rate_limit_init(&rl, 100, 1, NULL);
    cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 0));
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 0), "burst 1");
    cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 10), "one token every 10 ms");
    cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 1000));
    cr_assert(!pskgw_rate_limit_take(&rl, a, sizeof(a), 1000), "at most 1 after a second");
    /* the largest values do not overflow the refill arithmetic */
    pskgw_rate_limit_init(&rl, 1, UINT32_MAX, NULL);
    for (int i = 0; i < 1000; i++)
        cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), 0));
    cr_assert(pskgw_rate_limit_take(&rl, a, sizeof(a), UINT64_MAX / 2));
}

/* SipHash-2-4 reference vectors (Aumasson & Bernstein, key 00..0f). */
Test(limits, siphash_reference_vectors)
{
    uint8_t key[16];
    uint8_t msg[64];

    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    cr_assert_eq(pskgw_siphash24(key, msg, 0), 0x726fdb47dd0e0e31ULL);
    cr_assert_eq(pskgw_siphash24(key, msg, 15), 0xa129ca6149be45e5ULL);
    cr_assert_eq(pskgw_siphash24(key, msg, 8), 0x93f5f5799a932462ULL);
}

Test(limits, source_is_the_ipv4_address_or_the_ipv6_prefix)
{
    /* peer keys as the listener builds them: family, port (2 bytes), address */
    const uint8_t v4[7] = { 4, 0x16, 0x34, 127, 0, 0, 2 };
    uint8_t v6[19] = { 6, 0x16, 0x34 };
    uint8_t out[PSKGW_SOURCE_MAX];
    uint8_t want[PSKGW_SOURCE_MAX] = { 6 };

    cr_assert_eq(pskgw_source_of(v4, sizeof(v4), 64, out), 5);
    cr_assert_eq(memcmp(out, (const uint8_t[]){ 4, 127, 0, 0, 2 }, 5), 0, "no port");
    for (int i = 0; i < 16; i++)
        v6[3 + i] = 0xAB;
    cr_assert_eq(pskgw_source_of(v6, sizeof(v6), 64, out), 17);
    memset(want + 1, 0xAB, 8);
    cr_assert_eq(memcmp(out, want, 17), 0, "/64: the interface identifier is cleared");
    cr_assert_eq(pskgw_source_of(v6, sizeof(v6), 0, out), 17);
    cr_assert_eq(memcmp(out, want, 17), 0, "0 reads as /64");
    cr_assert_eq(pskgw_source_of(v6, sizeof(v6), 52, out), 17);
    cr_assert_eq(out[7], 0xA0, "/52 keeps the first 4 bits of byte 7");
    cr_assert_eq(out[8], 0);
    cr_assert_eq(pskgw_source_of(v6, sizeof(v6), 128, out), 17);
    cr_assert_eq(out[16], 0xAB, "/128: the whole address");
    cr_assert_eq(pskgw_source_of(v6, 7, 64, out), 0, "bad key");
}

Test(limits, failures_throttle_a_key_and_leak_out)
{
    const uint8_t a[5] = { 4, 127, 0, 0, 2 };
    const uint8_t b[5] = { 4, 127, 0, 0, 3 };

    pskgw_fail_throttle_init(&ft, 3, 60000, NULL);
    cr_assert(!pskgw_fail_throttle_fail(&ft, a, sizeof(a), 0));
    cr_assert(!pskgw_fail_throttle_fail(&ft, a, sizeof(a), 10));
    cr_assert(!pskgw_fail_throttle_blocked(&ft, a, sizeof(a), 20));
    cr_assert(pskgw_fail_throttle_fail(&ft, a, sizeof(a), 20), "the third failure throttles");
    cr_assert(pskgw_fail_throttle_blocked(&ft, a, sizeof(a), 21));
    cr_assert(!pskgw_fail_throttle_blocked(&ft, b, sizeof(b), 21), "only that key");
    for (int i = 0; i < 100; i++)
        (void)pskgw_fail_throttle_fail(&ft, a, sizeof(a), 30);
    /* capped at max: one failure leaks out every period / max = 20 s, then one more try */
    cr_assert(pskgw_fail_throttle_blocked(&ft, a, sizeof(a), 20000));
    cr_assert(!pskgw_fail_throttle_blocked(&ft, a, sizeof(a), 20031), "one try after 20 s");
    cr_assert(pskgw_fail_throttle_fail(&ft, a, sizeof(a), 20031), "and throttled again");
    cr_assert(!pskgw_fail_throttle_blocked(&ft, a, sizeof(a), 80031), "all leaked in a period");
    pskgw_fail_throttle_init(&ft, 0, 1000, NULL);
    cr_assert(!pskgw_fail_throttle_fail(&ft, a, sizeof(a), 0));
    cr_assert(!pskgw_fail_throttle_blocked(&ft, a, sizeof(a), 0), "0 = never throttled");
}

/* An attacker with many sources failing at once fills the table: no clean key is ever
 * throttled by it, and the attacker's newest failures are always counted (no pinned entry
 * keeps a newcomer out). */
Test(limits, a_full_failure_table_never_throttles_a_clean_key)
{
    uint8_t seed[PSKGW_LIMIT_SEED_LEN];
    uint8_t k[8] = { 'a' };
    int counted = 0;

    for (size_t i = 0; i < sizeof(seed); i++)
        seed[i] = (uint8_t)(i * 7 + 1);
    pskgw_fail_throttle_init(&ft, 1, 300000, seed);
    for (uint32_t i = 0; i < 4 * PSKGW_LIMIT_SETS * PSKGW_LIMIT_WAYS; i++) {
        memcpy(k + 1, &i, sizeof(i));
        (void)pskgw_fail_throttle_fail(&ft, k, sizeof(k), 1);
    }
    k[0] = 'c';
    for (uint32_t i = 0; i < 20000; i++) {
        memcpy(k + 1, &i, sizeof(i));
        cr_assert(!pskgw_fail_throttle_blocked(&ft, k, sizeof(k), 2), "clean key %u", i);
    }
    k[0] = 'n';
    for (uint32_t i = 0; i < 1000; i++) {
        memcpy(k + 1, &i, sizeof(i));
        counted += pskgw_fail_throttle_fail(&ft, k, sizeof(k), 3) &&
                   pskgw_fail_throttle_blocked(&ft, k, sizeof(k), 3);
    }
    cr_assert_eq(counted, 1000, "every newcomer's failure is counted");
}

Test(limits, half_open_bound_per_source)
{
    const uint8_t a[5] = { 4, 127, 0, 0, 2 };
    const uint8_t b[5] = { 4, 127, 0, 0, 3 };
    pskgw_halfopen_ticket_t t[4];
    pskgw_halfopen_ticket_t u;

    pskgw_halfopen_init(&ho, 3, NULL);
    for (int i = 0; i < 3; i++)
        cr_assert(pskgw_halfopen_take(&ho, a, sizeof(a), &t[i]));
    cr_assert(!pskgw_halfopen_take(&ho, a, sizeof(a), &t[3]), "the fourth is refused");
    cr_assert(!t[3].held);
    cr_assert(pskgw_halfopen_take(&ho, b, sizeof(b), &u), "another source has its own bound");
    pskgw_halfopen_release(&ho, &t[0]);
    cr_assert(!t[0].held);
    pskgw_halfopen_release(&ho, &t[0]); /* twice: no-op */
    cr_assert(pskgw_halfopen_take(&ho, a, sizeof(a), &t[0]), "one given back, one taken");
    cr_assert(!pskgw_halfopen_take(&ho, a, sizeof(a), &t[3]));
    for (int i = 0; i < 3; i++)
        pskgw_halfopen_release(&ho, &t[i]);
    pskgw_halfopen_release(&ho, &u);
    pskgw_halfopen_init(&ho, 0, NULL);
    for (int i = 0; i < 100; i++)
        cr_assert(pskgw_halfopen_take(&ho, a, sizeof(a), &u), "0 = unlimited");
}

/* Many sources at their bound fill the table: a new source still gets its handshakes. */
Test(limits, a_full_half_open_table_never_refuses_a_new_source)
{
    uint8_t k[8] = { 'a' };
    pskgw_halfopen_ticket_t t;

    pskgw_halfopen_init(&ho, 2, NULL);
    for (uint32_t i = 0; i < 2 * PSKGW_LIMIT_SETS * PSKGW_LIMIT_WAYS; i++) {
        memcpy(k + 1, &i, sizeof(i));
        cr_assert(pskgw_halfopen_take(&ho, k, sizeof(k), &t));
        (void)pskgw_halfopen_take(&ho, k, sizeof(k), &t);
    }
    k[0] = 'c';
    for (uint32_t i = 0; i < 20000; i++) {
        memcpy(k + 1, &i, sizeof(i));
        cr_assert(pskgw_halfopen_take(&ho, k, sizeof(k), &t), "new source %u", i);
    }
}
