/* pskgw_slab (dtls/slab.h): slots reused, empty pages given back to the kernel, slots of the
 * wiping zones wiped when freed, pages kept out of core dumps. The test zone is this test's own:
 * nothing else allocates from it. */
#define _DEFAULT_SOURCE
#include "dtls/slab.h"

#include "peek.h"
#include "proc.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/* Resident 4 KiB pages of the slab page holding p (mincore). */
static size_t resident_pages(const void *p)
{
    uintptr_t page = (uintptr_t)p & ~(uintptr_t)(PSKGW_SLAB_PAGE - 1);
    size_t sys = (size_t)sysconf(_SC_PAGESIZE), k = 0;
    unsigned char vec[PSKGW_SLAB_PAGE / 4096];

    cr_assert_eq(sys, 4096);
    cr_assert_eq(mincore((void *)page, PSKGW_SLAB_PAGE, vec), 0);
    for (size_t i = 0; i < sizeof(vec); i++)
        k += vec[i] & 1;
    return k;
}

Test(slab, a_freed_slot_is_handed_out_again_and_sizes_go_by_class)
{
    void *a = pskgw_slab_alloc(PSKGW_SLAB_TEST, 234);
    void *b;
    pskgw_slab_stats_t st;

    cr_assert_not_null(a);
    cr_assert(pskgw_slab_owns(a));
    cr_assert_eq((uintptr_t)a % 16, 0, "16-byte aligned");
    cr_assert_eq(pskgw_slab_slot_size(a), 240, "16-byte classes up to 512 B");
    pskgw_slab_stats(PSKGW_SLAB_TEST, &st);
    cr_assert_eq(st.slots, 1);
    cr_assert_eq(st.slot_bytes, 240);
    pskgw_slab_free(a);
    b = pskgw_slab_alloc(PSKGW_SLAB_TEST, 240);
    cr_assert_eq(b, a, "the freed slot first");
    pskgw_slab_free(b);
    b = pskgw_slab_alloc(PSKGW_SLAB_TEST, 600);
    cr_assert_eq(pskgw_slab_slot_size(b), 640, "quarter steps above 512 B");
    pskgw_slab_free(b);
    b = pskgw_slab_alloc(PSKGW_SLAB_TEST, PSKGW_SLAB_MAX);
    cr_assert_eq(pskgw_slab_slot_size(b), PSKGW_SLAB_MAX);
    pskgw_slab_free(b);
    cr_assert_null(pskgw_slab_alloc(PSKGW_SLAB_TEST, PSKGW_SLAB_MAX + 1), "the heap's");
    b = malloc(64);
    cr_assert_not(pskgw_slab_owns(b));
    free(b);
    pskgw_slab_free(NULL);
    pskgw_slab_stats(PSKGW_SLAB_TEST, &st);
    cr_assert_eq(st.slots, 0);
}

/* Four pages' worth of 1 KiB slots, all freed: the pages go back to the kernel but one, the
 * class's spare; a page in use keeps its memory. */
Test(slab, empty_pages_go_back_to_the_kernel_but_one_spare)
{
    enum { PER = PSKGW_SLAB_PAGE / 1024, N = 4 * PER };
    void *p[N];
    pskgw_slab_stats_t st;
    size_t released0, gone = 0;

    pskgw_slab_stats(PSKGW_SLAB_TEST, &st);
    released0 = st.released;
    for (size_t i = 0; i < N; i++) {
        p[i] = pskgw_slab_alloc(PSKGW_SLAB_TEST, 1024);
        cr_assert_not_null(p[i]);
        memset(p[i], 0xA5, 1024);
    }
    pskgw_slab_stats(PSKGW_SLAB_TEST, &st);
    cr_assert_geq(st.pages, 4);
    for (size_t i = 0; i < N; i += PER)
        cr_assert_eq(resident_pages(p[i]), PSKGW_SLAB_PAGE / 4096, "written: resident");
    for (size_t i = 0; i < N; i++)
        pskgw_slab_free(p[i]);
    pskgw_slab_stats(PSKGW_SLAB_TEST, &st);
    cr_assert_eq(st.slots, 0);
    cr_assert_leq(st.pages, 1, "%zu pages kept", st.pages);
    cr_assert_geq(st.released - released0, 3);
    for (size_t i = 0; i < N; i += PER)
        gone += resident_pages(p[i]) == 0;
    cr_assert_geq(gone, 3, "%zu of 4 pages left memory", gone);
    /* A released page comes back (zeroed by the kernel) for new slots. */
    p[0] = pskgw_slab_alloc(PSKGW_SLAB_TEST, 1024);
    cr_assert_not_null(p[0]);
    memset(p[0], 1, 1024);
    pskgw_slab_free(p[0]);
}

/* A fleet that goes quiet at once (issue 12): each session has a long-lived struct (listener
 * session, 200 B) and what only an awake one holds (the dtls session struct, the handshake
 * state, the timer, the peer's name), allocated in turn as sessions arrive. When they all
 * freeze, the awake allocations go and their pages go back to the kernel but one spare per
 * class, while the long-lived structs stay packed in pages of their own. When the slab is not
 * active (under ASan) both come from calloc (ASan checks them as heap blocks). */
Test(slab, a_frozen_fleet_gives_its_awake_pages_back_and_keeps_its_structs_packed)
{
    enum { N = 3000 };
    static void *lsess[N], *awake[N][4];
    pskgw_slab_stats_t ls0, aw0, ls, aw;
    pskgw_slab_mode_t mode;

    pskgw_slab_mode(&mode);
    pskgw_slab_stats(PSKGW_SLAB_LSESS, &ls0);
    pskgw_slab_stats(PSKGW_SLAB_AWAKE, &aw0);
    for (size_t i = 0; i < N; i++) {
        lsess[i] = pskgw_slab_calloc(PSKGW_SLAB_LSESS, 200);
        awake[i][0] = pskgw_slab_calloc(PSKGW_SLAB_AWAKE, 248);
        awake[i][1] = pskgw_slab_calloc(PSKGW_SLAB_AWAKE, 120);
        awake[i][2] = pskgw_slab_calloc(PSKGW_SLAB_AWAKE, 152);
        awake[i][3] = pskgw_slab_strdup(PSKGW_SLAB_AWAKE, "203.0.113.254:65535");
        cr_assert_not_null(lsess[i]);
        for (size_t k = 0; k < 4; k++)
            cr_assert_not_null(awake[i][k]);
        cr_assert_str_eq(awake[i][3], "203.0.113.254:65535");
        cr_assert_eq(((const uint8_t *)lsess[i])[199], 0, "zeroed");
        memset(awake[i][0], 0xA5, 248);
    }
    pskgw_slab_stats(PSKGW_SLAB_LSESS, &ls);
    pskgw_slab_stats(PSKGW_SLAB_AWAKE, &aw);
    if (!mode.active) {
        cr_assert(!pskgw_slab_owns(lsess[0]) && !pskgw_slab_owns(awake[0][0]), "calloc's");
        cr_assert_eq(ls.slots, ls0.slots);
        cr_assert_eq(aw.slots, aw0.slots);
    } else {
        cr_assert(pskgw_slab_owns(lsess[N - 1]) && pskgw_slab_owns(awake[N - 1][3]));
        cr_assert_eq(ls.slots - ls0.slots, N);
        cr_assert_eq(aw.slots - aw0.slots, 4 * N);
        cr_assert_geq(aw.pages - aw0.pages, 4 * N * 128 / PSKGW_SLAB_PAGE);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < 4; k++)
            pskgw_slab_release(awake[i][k]);
    pskgw_slab_stats(PSKGW_SLAB_AWAKE, &aw);
    cr_assert_eq(aw.slots, aw0.slots);
    if (mode.active) {
        /* 4 classes (256, 128, 160, 32 B): a spare page each at most. */
        cr_assert_leq(aw.pages, 4, "%zu pages of a frozen fleet's awake zone kept", aw.pages);
        cr_assert_eq(resident_pages(awake[N / 2][0]), 0, "given back to the kernel");
        /* The structs: 208-byte slots, 315 a page, in pages of their own. */
        pskgw_slab_stats(PSKGW_SLAB_LSESS, &ls);
        cr_assert_eq(ls.pages - ls0.pages, (N + 314) / 315, "%zu pages", ls.pages - ls0.pages);
    }
    for (size_t i = 0; i < N; i++)
        pskgw_slab_release(lsess[i]);
    pskgw_slab_release(NULL);
}

/* pskgw_slab_calloc zeroes a slot of the wolfSSL zone (not wiped when freed). */
Test(slab, calloc_zeroes_a_reused_slot)
{
    uint8_t *a = pskgw_slab_alloc(PSKGW_SLAB_WOLFSSL, 100), *b;

    cr_assert_not_null(a);
    memset(a, 0xA5, 100);
    pskgw_slab_free(a);
    b = pskgw_slab_calloc(PSKGW_SLAB_WOLFSSL, 100);
    cr_assert_not_null(b);
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(b[i], 0, "byte %zu", i);
    pskgw_slab_release(b);
}

/* The test zone wipes like the frozen sessions' zone: a freed slot holds nothing of what was
 * written but the free list's 4-byte link. */
Test(slab, a_freed_slot_of_a_wiping_zone_is_wiped)
{
    uint8_t *keep = pskgw_slab_alloc(PSKGW_SLAB_TEST, 200); /* the page stays in use */
    uint8_t *p = pskgw_slab_alloc(PSKGW_SLAB_TEST, 200);

    cr_assert_not_null(p);
    memset(p, 0x5C, 200);
    pskgw_slab_free(p);
    cr_assert_eq(peek_nonzero(p, 4, pskgw_slab_slot_size(keep)), 0, "wiped");
    pskgw_slab_free(keep);
}

/* The slab's range is marked don't-dump (VmFlags "dd" in /proc/self/smaps). */
Test(slab, its_pages_are_kept_out_of_core_dumps)
{
    void *p = pskgw_slab_alloc(PSKGW_SLAB_TEST, 64);
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false, dd = false, found = false;

    cr_assert_not_null(p);
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;

        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            found |= in;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0)
            dd = strstr(line, " dd") != NULL;
    }
    fclose(f);
    cr_assert(found);
    cr_assert(dd, "MADV_DONTDUMP");
    pskgw_slab_free(p);
}

/* The mode the gateway reports at start (log line, pskgw_slab_active): in a build without ASan
 * pskgw_slab_calloc hands out slots and the mode is active; under ASan it hands out calloc's
 * blocks and the mode says so, with the reason. */
Test(slab, mode_says_whether_slots_or_heap_blocks_are_handed_out)
{
    pskgw_slab_mode_t m;
    void *p;

    pskgw_slab_mode(&m);
    p = pskgw_slab_calloc(PSKGW_SLAB_TEST, 64);
    cr_assert_not_null(p);
    cr_assert_eq(pskgw_slab_owns(p), m.active);
    cr_assert_eq(m.err, 0, "the range is reserved");
#ifdef PSKGW_TEST_ASAN
    cr_assert(!m.active);
    cr_assert_not_null(strstr(m.why, "AddressSanitizer"), "%s", m.why);
#else
    cr_assert(m.active);
    cr_assert_str_eq(m.why, "");
#endif
    pskgw_slab_release(p);
}

/* What vm.overcommit_memory = 2 or a LimitAS= below the range does: the 16 GiB range cannot be
 * reserved, the slab hands out malloc's blocks, and its mode says so with the errno, for the
 * process's life. (Each Criterion test runs in a process of its own that has not used the slab
 * before.) */
Test(slab, mode_says_malloc_when_the_range_cannot_be_reserved)
{
    struct rlimit old;
    pskgw_slab_mode_t m;
    void *p;

    cr_assert_eq(pskgw_test_limit_address_space((size_t)256 << 20, &old), 0);
    pskgw_slab_mode(&m);
    cr_assert(!m.active);
    cr_assert_eq(m.err, ENOMEM, "errno %d", m.err);
    cr_assert_not_null(strstr(m.why, "could not be reserved"), "%s", m.why);
    p = pskgw_slab_calloc(PSKGW_SLAB_TEST, 64);
    cr_assert_not_null(p);
    cr_assert(!pskgw_slab_owns(p), "malloc's block");
    pskgw_slab_release(p);
    cr_assert_null(pskgw_slab_alloc(PSKGW_SLAB_TEST, 64));
    /* the range is not tried again: the answer holds */
    cr_assert_eq(setrlimit(RLIMIT_AS, &old), 0);
    pskgw_slab_mode(&m);
    cr_assert(!m.active);
    cr_assert_eq(m.err, ENOMEM);
}
