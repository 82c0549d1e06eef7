/* Layer-1 LRU: bound, eviction order, recency, expiry, replacement; SipHash-2-4 vectors. */
#include "common/err.h"
#include "keycache/codec.h"
#include "keycache/lru.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static const uint8_t seed[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static void put(pskgw_kc_lru_t *lru, const char *k, const char *v, uint64_t fresh, uint64_t stale,
                uint64_t *ev)
{
    cr_assert_eq(pskgw_kc_lru_put(lru, (const uint8_t *)k, strlen(k), PSKGW_KEYCACHE_KIND_VALUE,
                                  (const uint8_t *)v, strlen(v), fresh, stale, ev),
                 0);
}

static pskgw_kc_entry_t *get(pskgw_kc_lru_t *lru, const char *k, uint64_t now)
{
    return pskgw_kc_lru_get(lru, (const uint8_t *)k, strlen(k), now);
}

Test(keycache_lru, siphash_reference_vectors)
{
    uint8_t msg[15];

    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    /* From the SipHash paper (appendix A) and the reference vectors.h. */
    cr_assert_eq(pskgw_kc_siphash(seed, msg, 15), 0xa129ca6149be45e5ULL);
    cr_assert_eq(pskgw_kc_siphash(seed, msg, 0), 0x726fdb47dd0e0e31ULL);
    cr_assert_eq(pskgw_kc_siphash(seed, msg, 8), 0x93f5f5799a932462ULL);
}

Test(keycache_lru, bound_and_eviction_order)
{
    pskgw_kc_lru_t *lru = NULL;
    uint64_t ev = 0;

    cr_assert_eq(pskgw_kc_lru_new(3, seed, &lru), 0);
    put(lru, "a", "1", 100, 100, &ev);
    put(lru, "b", "2", 100, 100, &ev);
    put(lru, "c", "3", 100, 100, &ev);
    cr_assert_eq(pskgw_kc_lru_count(lru), 3);
    cr_assert_eq(ev, 0);
    cr_assert_not_null(get(lru, "a", 0)); /* a becomes the most recent: b is now the oldest */
    put(lru, "d", "4", 100, 100, &ev);
    cr_assert_eq(ev, 1);
    cr_assert_eq(pskgw_kc_lru_count(lru), 3);
    cr_assert_null(get(lru, "b", 0));
    put(lru, "e", "5", 100, 100, &ev); /* order now: a(oldest? no) c a d -> c is oldest */
    cr_assert_eq(ev, 2);
    cr_assert_null(get(lru, "c", 0));
    cr_assert_not_null(get(lru, "a", 0));
    cr_assert_not_null(get(lru, "d", 0));
    cr_assert_not_null(get(lru, "e", 0));
    pskgw_kc_lru_free(lru);
}

Test(keycache_lru, expiry_replace_remove)
{
    pskgw_kc_lru_t *lru = NULL;
    pskgw_kc_entry_t *e;
    uint64_t ev = 0;

    cr_assert_eq(pskgw_kc_lru_new(10, seed, &lru), 0);
    put(lru, "k", "old", 10, 20, &ev);
    e = get(lru, "k", 19);
    cr_assert_not_null(e);
    cr_assert_eq(e->fresh_until, 10);
    cr_assert_null(get(lru, "k", 20), "kept past stale_until");
    cr_assert_eq(pskgw_kc_lru_count(lru), 0, "expired entry not dropped");

    put(lru, "k", "old", 10, 20, &ev);
    put(lru, "k", "newer", 30, 40, &ev);
    cr_assert_eq(pskgw_kc_lru_count(lru), 1);
    e = get(lru, "k", 25);
    cr_assert_eq(e->value_len, 5);
    cr_assert(memcmp(pskgw_kc_entry_value(e), "newer", 5) == 0);
    cr_assert_eq(memcmp(e->data, "k", 1), 0);
    cr_assert_eq(pskgw_kc_lru_remove(lru, (const uint8_t *)"k", 1), 1);
    cr_assert_eq(pskgw_kc_lru_remove(lru, (const uint8_t *)"k", 1), 0);
    cr_assert_eq(pskgw_kc_lru_count(lru), 0);
    cr_assert_eq(ev, 0);
    cr_assert_eq(pskgw_kc_lru_new(0, seed, &lru), PSKGW_EINVAL);
    pskgw_kc_lru_free(lru);
}

Test(keycache_lru, many_keys_with_collisions_in_small_table)
{
    pskgw_kc_lru_t *lru = NULL;
    uint64_t ev = 0;
    char k[16];

    cr_assert_eq(pskgw_kc_lru_new(1000, seed, &lru), 0);
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof(k), "id%d", i);
        put(lru, k, k, 100, 100, &ev);
    }
    cr_assert_eq(ev, 2000);
    cr_assert_eq(pskgw_kc_lru_count(lru), 1000);
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof(k), "id%d", i);
        pskgw_kc_entry_t *e = get(lru, k, 0);
        if (i < 2000) {
            cr_assert_null(e, "%s", k);
        } else {
            cr_assert_not_null(e, "%s", k);
            cr_assert_eq(e->value_len, strlen(k));
        }
    }
    pskgw_kc_lru_free(lru);
}

/* Emptied when an invalidation subscription is made: every entry goes, the LRU stays usable. */
Test(keycache_lru, clear_drops_everything_and_stays_usable)
{
    pskgw_kc_lru_t *lru = NULL;
    uint64_t ev = 0;
    char k[16];

    cr_assert_eq(pskgw_kc_lru_new(4, seed, &lru), 0);
    cr_assert_eq(pskgw_kc_lru_clear(lru), 0);
    for (int i = 0; i < 4; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        put(lru, k, "v", 100, 200, &ev);
    }
    cr_assert_eq(pskgw_kc_lru_count(lru), 4);
    cr_assert_eq(pskgw_kc_lru_clear(lru), 4);
    cr_assert_eq(pskgw_kc_lru_count(lru), 0);
    cr_assert_null(get(lru, "k0", 10));
    cr_assert_null(get(lru, "k3", 10));
    put(lru, "k9", "w", 100, 200, &ev);
    cr_assert_not_null(get(lru, "k9", 10));
    cr_assert_eq(pskgw_kc_lru_remove(lru, (const uint8_t *)"k9", 2), 1);
    cr_assert_eq(pskgw_kc_lru_count(lru), 0);
    cr_assert_eq(ev, 0);
    pskgw_kc_lru_free(lru);
}
