/* The E2E replay window: same KI from the same device within the window, bounds, eviction. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "e2e/replay.h"

static const uint8_t seed[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6 };

Test(e2e_replay, same_ki_same_device_within_the_window_is_a_replay)
{
    pskgw_e2e_replay_t *r = NULL;

    cr_assert_eq(pskgw_e2e_replay_new(100, 1000, seed, &r), 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", "11010000aa", 10), 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", "11010000aa", 500), 1);
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", "11010000aa", 1009), 1, "time not renewed");
    /* another device, another KI: not replays */
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID1", "11010000aa", 600), 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", "11010000ab", 600), 0);
    /* the separator: ("UID0", "1") is not ("UID01", "") */
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID01", "1", 600), 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", "11", 600), 0);
    cr_assert_eq(pskgw_e2e_replay_count(r), 5);
    pskgw_e2e_replay_free(r);
}

Test(e2e_replay, forgotten_after_the_window)
{
    pskgw_e2e_replay_t *r = NULL;

    cr_assert_eq(pskgw_e2e_replay_new(100, 1000, seed, &r), 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", "aa", 10), 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", "aa", 1010), 0, "window is [at, at + 1000)");
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", "aa", 1500), 1);
    cr_assert_eq(pskgw_e2e_replay_count(r), 1);
    pskgw_e2e_replay_free(r);
}

/* Never more than max_entries pairs: the oldest goes first, the newest are still caught. */
Test(e2e_replay, bounded_oldest_forgotten_first)
{
    pskgw_e2e_replay_t *r = NULL;
    char ki[32];

    cr_assert_eq(pskgw_e2e_replay_new(64, 1000000, seed, &r), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(ki, sizeof(ki), "%08x", i);
        cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", ki, 1), 0, "ki %d", i);
        cr_assert_leq(pskgw_e2e_replay_count(r), 64);
    }
    cr_assert_eq(pskgw_e2e_replay_count(r), 64);
    for (int i = 1000 - 64; i < 1000; i++) {
        snprintf(ki, sizeof(ki), "%08x", i);
        cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", ki, 2), 1, "recent ki %d", i);
    }
    snprintf(ki, sizeof(ki), "%08x", 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, "UID0", ki, 2), 0, "oldest ki forgotten");
    pskgw_e2e_replay_free(r);
}

Test(e2e_replay, arguments)
{
    pskgw_e2e_replay_t *r = NULL;

    cr_assert_eq(pskgw_e2e_replay_new(0, 1, seed, &r), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_replay_new(1, 0, seed, &r), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_replay_new(1, 1, NULL, &r), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_replay_new(1, 10, seed, &r), 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, NULL, "aa", 1), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_replay_seen(r, "a", "aa", 1), 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, "a", "bb", 2), 0); /* evicts the first */
    cr_assert_eq(pskgw_e2e_replay_seen(r, "a", "aa", 3), 0);
    pskgw_e2e_replay_free(r);
    pskgw_e2e_replay_free(NULL);
}

/* The fingerprint hashes the pair in a bounded buffer: a pair no device can send (device, a 0
 * byte and the KI: over 160 bytes) is refused, not remembered; the longest real pair (a 64-character
 * ROTPublicUID and a 32-digit KI) is kept. */
Test(e2e_replay, pairs_longer_than_a_real_one_refused)
{
    pskgw_e2e_replay_t *r = NULL;
    char uid[65];
    char ki[33];
    char big[161];

    memset(uid, 'U', 64);
    uid[64] = '\0';
    memset(ki, 'a', 32);
    ki[32] = '\0';
    memset(big, 'B', 160);
    big[160] = '\0';
    cr_assert_eq(pskgw_e2e_replay_new(100, 1000, seed, &r), 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, uid, ki, 10), 0);
    cr_assert_eq(pskgw_e2e_replay_seen(r, uid, ki, 11), 1);
    cr_assert_eq(pskgw_e2e_replay_seen(r, big, "", 12), PSKGW_EINVAL);
    cr_assert_eq(pskgw_e2e_replay_seen(r, big + 1, "", 12), 0, "159 + 1 bytes: kept");
    cr_assert_eq(pskgw_e2e_replay_count(r), 2);
    pskgw_e2e_replay_free(r);
}
