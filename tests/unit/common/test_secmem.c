#define _GNU_SOURCE
/* common/secmem: don't-dump memory for long-lived key material. */
#include "common/secmem.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The VmFlags of the mapping that holds p in /proc/self/smaps ("" when not found). */
static void vmflags_of(const void *p, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool inside = false;
    uintptr_t a = (uintptr_t)p;

    out[0] = '\0';
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;

        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = a >= lo && a < hi;
            continue;
        }
        if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, cap, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

static bool has_dd(const void *p)
{
    char flags[512];

    vmflags_of(p, flags, sizeof(flags));
    cr_assert(flags[0] != '\0', "no mapping found for %p", p);
    return strstr(flags, " dd") != NULL;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

Test(secmem, blocks_are_zeroed_aligned_and_marked_dontdump)
{
    size_t sizes[] = { 0, 1, 15, 16, 100, 1000, 4000, 4096, 10000, 200000 };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *p = pskgw_secmem_alloc(sizes[i]);

        cr_assert_not_null(p, "size %zu", sizes[i]);
        cr_assert_eq((uintptr_t)p % _Alignof(max_align_t), 0, "size %zu", sizes[i]);
        cr_assert(all_zero(p, sizes[i]), "size %zu", sizes[i]);
        memset(p, 0xA5, sizes[i] ? sizes[i] : 1);
        cr_assert(has_dd(p), "size %zu: VmFlags without dd", sizes[i]);
        if (sizes[i] > 1)
            cr_assert(has_dd(p + sizes[i] - 1), "size %zu: last byte", sizes[i]);
        pskgw_secmem_free(p);
    }
}

Test(secmem, malloc_memory_is_not_marked)
{
    /* the control: the smaps reading tells a marked mapping from an ordinary one */
    void *m = malloc(64);

    cr_assert_not_null(m);
    cr_assert_not(has_dd(m));
    free(m);
}

Test(secmem, free_wipes_the_block_and_keeps_it_mapped_for_reuse)
{
    unsigned char *p = pskgw_secmem_alloc(200);
    unsigned char *q;

    cr_assert_not_null(p);
    memset(p, 0x5A, 200);
    pskgw_secmem_free(p);
    /* the block stays in the arena (never given to malloc), so it can be read: wiped */
    cr_assert(all_zero(p, 200));
    q = pskgw_secmem_alloc(180); /* the same class: the block just freed comes back */
    cr_assert_eq(q, p);
    cr_assert(all_zero(q, 180));
    pskgw_secmem_free(q);
}

Test(secmem, blocks_do_not_overlap_and_the_arena_grows)
{
    enum { N = 2000 }; /* 2000 x 64-byte class blocks: more than one 64 KiB chunk */
    unsigned char *p[N];
    pskgw_secmem_stats_t st;

    for (int i = 0; i < N; i++) {
        p[i] = pskgw_secmem_alloc(40);
        cr_assert_not_null(p[i]);
        memset(p[i], i & 0xff, 40);
    }
    pskgw_secmem_stats(&st);
    cr_assert_geq(st.blocks_in_use, N);
    cr_assert_geq(st.mapped_bytes, 2 * 64 * 1024);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 40; k++)
            cr_assert_eq(p[i][k], i & 0xff, "block %d overwritten", i);
        cr_assert(has_dd(p[i]) || i % 97, "block %d", i); /* spot checks: smaps is slow */
    }
    for (int i = 0; i < N; i++)
        pskgw_secmem_free(p[i]);
    pskgw_secmem_stats(&st);
    cr_assert_eq(st.blocks_in_use, 0);
    cr_assert_geq(st.mapped_bytes, 2 * 64 * 1024, "class chunks are kept");
}

Test(secmem, large_blocks_are_unmapped_on_free)
{
    pskgw_secmem_stats_t before, during, after;
    void *p;

    pskgw_secmem_stats(&before);
    p = pskgw_secmem_alloc(100000);
    cr_assert_not_null(p);
    pskgw_secmem_stats(&during);
    cr_assert_geq(during.mapped_bytes, before.mapped_bytes + 100000);
    pskgw_secmem_free(p);
    pskgw_secmem_stats(&after);
    cr_assert_eq(after.mapped_bytes, before.mapped_bytes);
    cr_assert_eq(after.blocks_in_use, before.blocks_in_use);
}

Test(secmem, impossible_size_returns_null)
{
    cr_assert_null(pskgw_secmem_alloc(SIZE_MAX));
    cr_assert_null(pskgw_secmem_alloc(SIZE_MAX - 8));
    pskgw_secmem_free(NULL);
}

Test(secmem, strdup_copies_into_the_arena)
{
    char *s = pskgw_secmem_strdup("it-secret");

    cr_assert_not_null(s);
    cr_assert_str_eq(s, "it-secret");
    cr_assert(has_dd(s));
    pskgw_secmem_free(s);
}
