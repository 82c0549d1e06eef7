/* pskgw_slab: see slab.h.
 *
 * Layout: one reserved range of PSKGW_SLAB_PAGE-aligned pages, and beside it (reserved the same
 * way) one metadata entry per page, so that a page holds slots only and a released page is not
 * touched again until it is reused. A page in use belongs to one (zone, class); its free slots
 * are a list through their first 4 bytes (offset + 1 of the next, 0: none), and slots never
 * handed out are carved at the end (bump), so a new page is faulted in slot by slot. Pages with a
 * free slot are on their (zone, class)'s partial list, newest first; empty pages not kept as the
 * class's spare are released (MADV_DONTNEED) onto a stack of free pages, which new pages come
 * from before the range's untouched end. */
#define _DEFAULT_SOURCE
#include "dtls/slab.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define SLAB_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SLAB_POISON(p, n)   ((void)(p), (void)(n))
#define SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define NPAGES   ((uint32_t)(PSKGW_SLAB_REGION / PSKGW_SLAB_PAGE))
#define NCLASSES 48

typedef struct {
    uint32_t next, prev; /* partial list or free-page stack: index + 1, 0 none */
    uint32_t free;       /* first free slot's offset + 1, 0 none */
    uint16_t used;       /* slots handed out */
    uint16_t bump;       /* slots carved so far */
    uint8_t zone, cls;
    bool on_partial;
} page_meta_t;

typedef struct {
    uint32_t partial[NCLASSES]; /* index + 1 of the first page with a free slot */
    bool spare[NCLASSES];       /* an empty page kept on the partial list */
    pskgw_slab_stats_t st;
} zone_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *base;      /* the pages; NULL until reserved */
static page_meta_t *meta;  /* NPAGES entries */
static uint32_t top;       /* pages [0, top) have been used */
static uint32_t free_head; /* released pages: index + 1 */
static bool init_failed;
static int init_errno; /* why the reservation failed */
static zone_t zones[PSKGW_SLAB_ZONES];

/* 16..512 by 16 (classes 0..31), then 640..4096 by quarters of a power of two (32..43), then
 * 5..8 KiB by 1 KiB (44..47). */
static size_t class_size(unsigned cls)
{
    static const uint16_t big[] = { 640,  768,  896,  1024, 1280, 1536,
                                    1792, 2048, 2560, 3072, 3584, 4096 };

    if (cls < 32)
        return (size_t)(cls + 1) * 16;
    if (cls < 44)
        return big[cls - 32];
    return (size_t)(cls - 39) * 1024;
}

/* NCLASSES when n is too big. */
static unsigned class_of(size_t n)
{
    if (n <= 512)
        return n == 0 ? 0 : (unsigned)((n + 15) / 16 - 1);
    for (unsigned cls = 32; cls < NCLASSES; cls++)
        if (n <= class_size(cls))
            return cls;
    return NCLASSES;
}

static bool reserve(void)
{
    void *p, *m;

    if (base != NULL || init_failed)
        return base != NULL;
    init_failed = true;
    p = mmap(NULL, PSKGW_SLAB_REGION + PSKGW_SLAB_PAGE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        init_errno = errno;
        return false;
    }
    m = mmap(NULL, (size_t)NPAGES * sizeof(page_meta_t), PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED || madvise(p, PSKGW_SLAB_REGION + PSKGW_SLAB_PAGE, MADV_DONTDUMP) != 0) {
        init_errno = errno;
        munmap(p, PSKGW_SLAB_REGION + PSKGW_SLAB_PAGE);
        if (m != MAP_FAILED)
            munmap(m, (size_t)NPAGES * sizeof(page_meta_t));
        return false;
    }
    meta = m;
    __atomic_store_n(
        &base,
        (uint8_t *)(((uintptr_t)p + PSKGW_SLAB_PAGE - 1) & ~(uintptr_t)(PSKGW_SLAB_PAGE - 1)),
        __ATOMIC_RELEASE);
    init_failed = false;
    return true;
}

static uint8_t *page_at(uint32_t idx)
{
    return base + (size_t)idx * PSKGW_SLAB_PAGE;
}

static void partial_push(zone_t *z, uint32_t idx)
{
    page_meta_t *pm = &meta[idx];

    pm->prev = 0;
    pm->next = z->partial[pm->cls];
    if (pm->next != 0)
        meta[pm->next - 1].prev = idx + 1;
    z->partial[pm->cls] = idx + 1;
    pm->on_partial = true;
}

static void partial_remove(zone_t *z, uint32_t idx)
{
    page_meta_t *pm = &meta[idx];

    if (pm->prev != 0)
        meta[pm->prev - 1].next = pm->next;
    else
        z->partial[pm->cls] = pm->next;
    if (pm->next != 0)
        meta[pm->next - 1].prev = pm->prev;
    pm->next = pm->prev = 0;
    pm->on_partial = false;
}

/* A page for (zone, cls), on its partial list; false when the range is used up. */
static bool new_page(unsigned zone, unsigned cls)
{
    uint32_t idx;
    page_meta_t *pm;

    if (free_head != 0) {
        idx = free_head - 1;
        free_head = meta[idx].next;
    } else if (top < NPAGES) {
        idx = top++;
    } else {
        return false;
    }
    pm = &meta[idx];
    memset(pm, 0, sizeof(*pm));
    pm->zone = (uint8_t)zone;
    pm->cls = (uint8_t)cls;
    SLAB_POISON(page_at(idx), PSKGW_SLAB_PAGE);
    partial_push(&zones[zone], idx);
    zones[zone].st.pages++;
    return true;
}

static size_t per_page(unsigned cls)
{
    return PSKGW_SLAB_PAGE / class_size(cls);
}

void *pskgw_slab_alloc(pskgw_slab_zone_t zone, size_t n)
{
    unsigned cls = class_of(n);
    zone_t *z = &zones[zone];
    page_meta_t *pm;
    uint8_t *slot;
    size_t size;

    if (cls >= NCLASSES || (unsigned)zone >= PSKGW_SLAB_ZONES)
        return NULL;
    size = class_size(cls);
    pthread_mutex_lock(&lock);
    if (!reserve() || (z->partial[cls] == 0 && !new_page(zone, cls))) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    pm = &meta[z->partial[cls] - 1];
    if (pm->free != 0) {
        slot = page_at(z->partial[cls] - 1) + pm->free - 1;
        SLAB_UNPOISON(slot, sizeof(uint32_t));
        memcpy(&pm->free, slot, sizeof(uint32_t));
    } else {
        slot = page_at(z->partial[cls] - 1) + (size_t)pm->bump++ * size;
    }
    if (pm->used++ == 0)
        z->spare[cls] = false; /* it was the spare (or new) */
    if (pm->used == per_page(cls))
        partial_remove(z, z->partial[cls] - 1);
    z->st.slots++;
    z->st.slot_bytes += size;
    pthread_mutex_unlock(&lock);
    SLAB_UNPOISON(slot, n > 0 ? n : 1);
    return slot;
}

bool pskgw_slab_owns(const void *p)
{
    /* set once, under the lock, before any slot exists */
    const uint8_t *b = __atomic_load_n(&base, __ATOMIC_ACQUIRE);

    return b != NULL && (const uint8_t *)p >= b && (const uint8_t *)p < b + PSKGW_SLAB_REGION;
}

size_t pskgw_slab_slot_size(const void *p)
{
    return class_size(meta[((const uint8_t *)p - base) / PSKGW_SLAB_PAGE].cls);
}

/* The page idx of zone z has no slot in use: kept as its class's spare, or released. */
static void page_empty(zone_t *z, uint32_t idx)
{
    page_meta_t *pm = &meta[idx];

    if (!z->spare[pm->cls]) {
        z->spare[pm->cls] = true;
        return;
    }
    partial_remove(z, idx);
    (void)madvise(page_at(idx), PSKGW_SLAB_PAGE, MADV_DONTNEED);
    pm->next = free_head;
    free_head = idx + 1;
    z->st.pages--;
    z->st.released++;
}

void pskgw_slab_free(void *p)
{
    uint32_t idx;
    page_meta_t *pm;
    zone_t *z;
    size_t size, off;

    if (p == NULL)
        return;
    idx = (uint32_t)(((uint8_t *)p - base) / PSKGW_SLAB_PAGE);
    off = (size_t)((uint8_t *)p - page_at(idx));
    pthread_mutex_lock(&lock);
    pm = &meta[idx];
    z = &zones[pm->zone];
    size = class_size(pm->cls);
    SLAB_UNPOISON(p, size);
    if (pm->zone != PSKGW_SLAB_WOLFSSL)
        explicit_bzero(p, size); /* key material; wolfSSL wipes its own secrets */
    memcpy(p, &pm->free, sizeof(uint32_t));
    pm->free = (uint32_t)off + 1;
    SLAB_POISON(p, size);
    if (!pm->on_partial)
        partial_push(z, idx);
    z->st.slots--;
    z->st.slot_bytes -= size;
    if (--pm->used == 0)
        page_empty(z, idx);
    pthread_mutex_unlock(&lock);
}

void pskgw_slab_stats(pskgw_slab_zone_t zone, pskgw_slab_stats_t *out)
{
    pthread_mutex_lock(&lock);
    *out = zones[zone].st;
    pthread_mutex_unlock(&lock);
}

void pskgw_slab_mode(pskgw_slab_mode_t *out)
{
    bool reserved;

    pthread_mutex_lock(&lock);
    reserved = reserve();
    out->err = reserved ? 0 : init_errno;
    pthread_mutex_unlock(&lock);
#ifdef SLAB_ASAN
    if (reserved) {
        out->active = false;
        out->why = "an AddressSanitizer build (calloc's blocks, checked as heap blocks)";
        return;
    }
#endif
    out->active = reserved;
    out->why = reserved ? "" : "the address range could not be reserved";
}

void *pskgw_slab_calloc(pskgw_slab_zone_t zone, size_t n)
{
#ifndef SLAB_ASAN
    void *p = pskgw_slab_alloc(zone, n);

    if (p != NULL) {
        memset(p, 0, n > 0 ? n : 1);
        return p;
    }
#else
    (void)zone;
#endif
    return calloc(1, n > 0 ? n : 1);
}

char *pskgw_slab_strdup(pskgw_slab_zone_t zone, const char *str)
{
    size_t n;
    char *p;

    if (str == NULL)
        return NULL;
    n = strlen(str) + 1;
    if ((p = pskgw_slab_calloc(zone, n)) != NULL)
        memcpy(p, str, n);
    return p;
}

void pskgw_slab_release(void *p)
{
    if (pskgw_slab_owns(p))
        pskgw_slab_free(p);
    else
        free(p);
}
