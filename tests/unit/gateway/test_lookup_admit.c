/* gateway/lookup_admit.h: per-source admission of cold key lookups, with injected time. */
#include "gateway/lookup_admit.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

#define NITEMS 256

static pskgw_lookup_admit_t *adm;
static pskgw_admit_item_t it[NITEMS];

static const uint8_t FLOOD[5] = { 4, 127, 0, 0, 2 };
static const uint8_t DEV_A[5] = { 4, 127, 0, 0, 3 };
static const uint8_t DEV_B[5] = { 4, 127, 0, 0, 4 };

static void mk(uint32_t per_source, uint32_t queue, uint32_t per_s, uint32_t in_flight,
               uint32_t reserve)
{
    pskgw_lookup_admit_opts_t o = { 0 };

    memset(it, 0, sizeof(it));
    o.per_source = per_source;
    o.queue_per_source = queue;
    o.per_source_per_s = per_s;
    o.in_flight = in_flight;
    o.reserve = reserve;
    o.good_window_ms = 60000;
    cr_assert_eq(pskgw_lookup_admit_new(&o, NULL, &adm), 0);
}

static void fini(void)
{
    pskgw_lookup_admit_free(adm);
    adm = NULL;
}

TestSuite(lookup_admit, .fini = fini);

static const pskgw_lookup_admit_counters_t *ctr(void)
{
    return pskgw_lookup_admit_counters(adm);
}

Test(lookup_admit, options_are_checked)
{
    pskgw_lookup_admit_opts_t o = { .per_source = 1, .in_flight = 4, .reserve = 4 };

    cr_assert_eq(pskgw_lookup_admit_new(&o, NULL, &adm), PSKGW_EINVAL, "reserve >= in_flight");
    o.reserve = 0;
    o.per_source = 0;
    cr_assert_eq(pskgw_lookup_admit_new(&o, NULL, &adm), PSKGW_EINVAL);
    o.per_source = 1;
    o.in_flight = 0;
    cr_assert_eq(pskgw_lookup_admit_new(&o, NULL, &adm), PSKGW_EINVAL);
    cr_assert_null(adm);
}

Test(lookup_admit, one_source_gets_per_source_at_once_then_waits_then_is_refused)
{
    mk(2, 3, 0, 16, 0);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[0], FLOOD, 5, 0), PSKGW_ADMIT_GO);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[1], FLOOD, 5, 0), PSKGW_ADMIT_GO);
    for (int i = 2; i < 5; i++)
        cr_assert_eq(pskgw_lookup_admit_take(adm, &it[i], FLOOD, 5, 0), PSKGW_ADMIT_WAITING);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[5], FLOOD, 5, 0), PSKGW_EFULL);
    cr_assert_eq(it[5].state, PSKGW_ADMIT_IDLE);
    cr_assert_null(pskgw_lookup_admit_next(adm, 0), "the source is at its bound");
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[6], DEV_A, 5, 0), PSKGW_ADMIT_GO,
                 "another source is not bound by the first one's");
    pskgw_lookup_admit_release(adm, &it[0], 1);
    cr_assert_eq(pskgw_lookup_admit_next(adm, 1), &it[2], "its oldest waiting lookup goes");
    cr_assert_null(pskgw_lookup_admit_next(adm, 1));
    cr_assert_eq(ctr()->admitted, 3);
    cr_assert_eq(ctr()->queued, 3);
    cr_assert_eq(ctr()->dequeued, 1);
    cr_assert_eq(ctr()->refused_queue, 1);
    cr_assert_eq(ctr()->in_flight, 3);
    cr_assert_eq(ctr()->waiting, 2);
    cr_assert_eq(ctr()->sources, 2);
}

Test(lookup_admit, per_second_bound_per_source)
{
    mk(100, 100, 5, 1000, 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(pskgw_lookup_admit_take(adm, &it[i], FLOOD, 5, 1000), PSKGW_ADMIT_GO);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[5], FLOOD, 5, 1000), PSKGW_ERATELIMIT);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[6], DEV_A, 5, 1000), PSKGW_ADMIT_GO);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[7], FLOOD, 5, 1200), PSKGW_ADMIT_GO,
                 "one token back after 200 ms at 5/s");
    cr_assert_eq(ctr()->refused_rate, 1);
}

/* The global budget is the bottleneck: a flood source's 50 waiting lookups do not stand in
 * front of a new device's lookup: it goes at the next turn after the flood's one. */
Test(lookup_admit, round_robin_across_sources_when_the_budget_is_full)
{
    pskgw_admit_item_t *n;

    mk(4, 100, 0, 2, 0);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[0], FLOOD, 5, 0), PSKGW_ADMIT_GO);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[1], FLOOD, 5, 0), PSKGW_ADMIT_GO);
    for (int i = 2; i < 52; i++)
        cr_assert_eq(pskgw_lookup_admit_take(adm, &it[i], FLOOD, 5, 0), PSKGW_ADMIT_WAITING);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[100], DEV_A, 5, 1), PSKGW_ADMIT_WAITING);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[101], DEV_B, 5, 1), PSKGW_ADMIT_WAITING);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[102], DEV_A, 5, 1), PSKGW_ADMIT_WAITING);

    pskgw_lookup_admit_release(adm, &it[0], 2);
    cr_assert_eq(pskgw_lookup_admit_next(adm, 2), &it[2], "the flood's turn");
    cr_assert_null(pskgw_lookup_admit_next(adm, 2), "budget used");
    pskgw_lookup_admit_release(adm, &it[1], 3);
    cr_assert_eq(pskgw_lookup_admit_next(adm, 3), &it[100], "then device A");
    pskgw_lookup_admit_release(adm, &it[2], 4);
    cr_assert_eq(pskgw_lookup_admit_next(adm, 4), &it[101], "then device B");
    pskgw_lookup_admit_release(adm, &it[100], 5);
    n = pskgw_lookup_admit_next(adm, 5);
    cr_assert_eq(n, &it[3], "then the flood again");
    pskgw_lookup_admit_release(adm, &it[101], 6);
    cr_assert_eq(pskgw_lookup_admit_next(adm, 6), &it[102], "then A's second");
    pskgw_lookup_admit_release(adm, n, 7);
    cr_assert_eq(pskgw_lookup_admit_next(adm, 7), &it[4], "the devices are served: the flood");
}

/* Sixteen flooding sources: a new device waits one turn of each, never their queues. */
Test(lookup_admit, sixteen_flood_sources_one_turn_each)
{
    uint8_t src[16][5];
    int k = 0;
    int served_before_dev = 0;
    pskgw_admit_item_t *n;

    mk(1, 8, 0, 4, 0);
    for (int s = 0; s < 16; s++) {
        memcpy(src[s], (uint8_t[]){ 4, 127, 0, 0, (uint8_t)(10 + s) }, 5);
        for (int i = 0; i < 8; i++)
            cr_assert_geq(pskgw_lookup_admit_take(adm, &it[k++], src[s], 5, 0), 0);
    }
    cr_assert_eq(ctr()->in_flight, 4);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[200], DEV_A, 5, 0), PSKGW_ADMIT_WAITING);
    for (int i = 0; i < k && it[200].state != PSKGW_ADMIT_GO; i++) {
        /* release the oldest lookup at the resolver and give out what may go */
        for (int j = 0; j < k; j++) {
            if (it[j].state == PSKGW_ADMIT_GO) {
                pskgw_lookup_admit_release(adm, &it[j], 1);
                break;
            }
        }
        while ((n = pskgw_lookup_admit_next(adm, 1)) != NULL) {
            if (n != &it[200])
                served_before_dev++;
        }
    }
    cr_assert_eq(it[200].state, PSKGW_ADMIT_GO);
    cr_assert_leq(served_before_dev, 16, "at most one turn of each flooding source, got %d",
                  served_before_dev);
}

/* Sources without a good record use at most in_flight - reserve; a source that completed a
 * handshake recently gets the reserve, and its waiting lookups go first. */
Test(lookup_admit, a_share_is_kept_for_sources_with_a_good_record)
{
    mk(8, 100, 0, 4, 2);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[0], FLOOD, 5, 0), PSKGW_ADMIT_GO);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[1], FLOOD, 5, 0), PSKGW_ADMIT_GO);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[2], FLOOD, 5, 0), PSKGW_ADMIT_WAITING,
                 "the reserve is not for a source without a record");
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[3], DEV_B, 5, 0), PSKGW_ADMIT_WAITING);
    pskgw_lookup_admit_good(adm, DEV_A, 5, 10);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[4], DEV_A, 5, 20), PSKGW_ADMIT_GO);
    cr_assert(it[4].good);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[5], DEV_A, 5, 20), PSKGW_ADMIT_GO);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[6], DEV_A, 5, 20), PSKGW_ADMIT_WAITING);
    cr_assert_eq(ctr()->in_flight, 4);
    pskgw_lookup_admit_release(adm, &it[0], 30);
    cr_assert_eq(pskgw_lookup_admit_next(adm, 30), &it[6], "the good source's lookup goes first");
    pskgw_lookup_admit_release(adm, &it[1], 30);
    cr_assert_null(pskgw_lookup_admit_next(adm, 30), "3 in flight: above the others' share");
    pskgw_lookup_admit_release(adm, &it[4], 30);
    cr_assert_null(pskgw_lookup_admit_next(adm, 30), "2 in flight: the others' share is used");
    pskgw_lookup_admit_release(adm, &it[5], 30);
    cr_assert_eq(pskgw_lookup_admit_next(adm, 30), &it[2], "1 in flight: the flood's turn");
    cr_assert_null(pskgw_lookup_admit_next(adm, 30));
    cr_assert_eq(ctr()->good, 3);
    /* The record ends after the window. */
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[7], DEV_A, 5, 60010), PSKGW_ADMIT_WAITING);
}

Test(lookup_admit, withdrawn_lookups_leave_no_trace)
{
    mk(1, 4, 0, 1, 0);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[0], FLOOD, 5, 0), PSKGW_ADMIT_GO);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[1], FLOOD, 5, 0), PSKGW_ADMIT_WAITING);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[2], DEV_A, 5, 0), PSKGW_ADMIT_WAITING);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[3], FLOOD, 5, 0), PSKGW_ADMIT_WAITING);
    pskgw_lookup_admit_release(adm, &it[2], 1); /* device A's handshake ended while waiting */
    pskgw_lookup_admit_release(adm, &it[1], 1);
    cr_assert_eq(it[1].state, PSKGW_ADMIT_IDLE);
    pskgw_lookup_admit_release(adm, &it[1], 1); /* a no-op */
    cr_assert_eq(ctr()->withdrawn, 2);
    cr_assert_eq(ctr()->sources, 1);
    pskgw_lookup_admit_release(adm, &it[0], 2);
    cr_assert_eq(pskgw_lookup_admit_next(adm, 2), &it[3]);
    cr_assert_null(pskgw_lookup_admit_next(adm, 2));
    pskgw_lookup_admit_release(adm, &it[3], 3);
    cr_assert_eq(ctr()->in_flight, 0);
    cr_assert_eq(ctr()->waiting, 0);
    cr_assert_eq(ctr()->sources, 0);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[4], DEV_A, 5, 4), PSKGW_ADMIT_GO);
}

/* Many sources: the source table grows and shrinks back. */
Test(lookup_admit, many_sources)
{
    static pskgw_admit_item_t many[4000];
    uint8_t s[17] = { 6 };

    mk(1, 1, 0, 100, 0);
    for (int i = 0; i < 4000; i++) {
        s[1] = (uint8_t)(i >> 8);
        s[2] = (uint8_t)i;
        cr_assert_geq(pskgw_lookup_admit_take(adm, &many[i], s, sizeof(s), 0), 0);
    }
    cr_assert_eq(ctr()->sources, 4000);
    cr_assert_eq(ctr()->in_flight, 100);
    for (int i = 0; i < 4000; i++)
        pskgw_lookup_admit_release(adm, &many[i], 1);
    cr_assert_null(pskgw_lookup_admit_next(adm, 1));
    cr_assert_eq(ctr()->sources, 0);
}

Test(lookup_admit, good_sources_table)
{
    pskgw_good_sources_t g;
    uint8_t s[5] = { 4, 10, 0, 0, 0 };

    pskgw_good_sources_init(&g, 1000, NULL);
    cr_assert(!pskgw_good_sources_test(&g, DEV_A, 5, 0));
    pskgw_good_sources_mark(&g, DEV_A, 5, 100);
    cr_assert(pskgw_good_sources_test(&g, DEV_A, 5, 1099));
    cr_assert(!pskgw_good_sources_test(&g, DEV_A, 5, 1100), "the window ended");
    cr_assert(!pskgw_good_sources_test(&g, DEV_B, 5, 500));
    pskgw_good_sources_mark(&g, DEV_A, 5, 2000);
    /* 20000 other sources marked later: the table forgets the oldest, never fails */
    for (int i = 0; i < 20000; i++) {
        s[3] = (uint8_t)(i >> 8);
        s[4] = (uint8_t)i;
        pskgw_good_sources_mark(&g, s, 5, 2001);
    }
    cr_assert(pskgw_good_sources_test(&g, s, 5, 2500));
    pskgw_good_sources_init(&g, 0, NULL);
    pskgw_good_sources_mark(&g, DEV_A, 5, 1);
    cr_assert(!pskgw_good_sources_test(&g, DEV_A, 5, 1), "window 0: never good");
}

/* IPv6: the addresses of one /64 (ipv6_source_prefix) are one source for the admission. */
Test(lookup_admit, an_ipv6_prefix_is_one_source)
{
    uint8_t k1[19] = { 6, 0x16, 0x34, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    uint8_t k2[19];
    uint8_t k3[19];
    uint8_t s1[PSKGW_SOURCE_MAX], s2[PSKGW_SOURCE_MAX], s3[PSKGW_SOURCE_MAX];
    size_t n1, n2, n3;

    memcpy(k2, k1, sizeof(k1));
    k2[18] = 0x99; /* same /64, another address */
    k2[12] = 0x77;
    memcpy(k3, k1, sizeof(k1));
    k3[10] = 2; /* another /64 */
    n1 = pskgw_source_of(k1, sizeof(k1), 64, s1);
    n2 = pskgw_source_of(k2, sizeof(k2), 64, s2);
    n3 = pskgw_source_of(k3, sizeof(k3), 64, s3);
    mk(1, 0, 0, 16, 0);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[0], s1, n1, 0), PSKGW_ADMIT_GO);
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[1], s2, n2, 0), PSKGW_EFULL,
                 "the same /64: its one lookup is taken and none may wait");
    cr_assert_eq(pskgw_lookup_admit_take(adm, &it[2], s3, n3, 0), PSKGW_ADMIT_GO,
                 "another /64 is another source");
}
