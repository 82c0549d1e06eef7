/* pskgw_wolfmem: see wolfmem.h. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/types.h>
#include <wolfssl/wolfcrypt/memory.h>

#include "dtls/slab.h"
#include "dtls/wolfmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define WM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WM_ASAN 1
#endif
#endif
#ifdef WM_ASAN
#include <sanitizer/asan_interface.h>
#define WM_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define WM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define WM_POISON(p, n)   ((void)(p), (void)(n))
#define WM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifdef XMALLOC_USER

#define WM_MIN_SHIFT   8 /* the smallest class: 256 B */
#define WM_CLASSES     8 /* 256 B .. 32 KiB */
#define WM_KEEP_BLOCKS 32u
#define WM_KEEP_BYTES  (128u * 1024u)
#define WM_MAGIC       0x70736b6du
#define WM_UNPOOLED    0xffu

/* In front of every I/O buffer; 16 bytes, so the buffer keeps malloc's 16-byte alignment. */
typedef struct wm_hdr {
    uint32_t magic;
    uint32_t cls; /* size class, or WM_UNPOOLED (larger than the largest class) */
    union {
        struct wm_hdr *next; /* in a freelist */
        size_t size;         /* handed out: the size asked for */
    } u;
} wm_hdr_t;
_Static_assert(sizeof(wm_hdr_t) == 16, "the header keeps the buffer 16-byte aligned");

typedef struct {
    wm_hdr_t *head[WM_CLASSES];
    unsigned count[WM_CLASSES];
    size_t hits;
    size_t misses;
    long live;
} wm_pool_t;

static _Thread_local wm_pool_t pool;
/* The heap (wolfSSL_SetAllocators); NULL: libc. */
static wolfSSL_Malloc_cb heap_malloc;
static wolfSSL_Free_cb heap_free;
static wolfSSL_Realloc_cb heap_realloc;

static void *h_malloc(size_t n)
{
    return heap_malloc != NULL ? heap_malloc(n) : malloc(n);
}

static void h_free(void *p)
{
    if (heap_free != NULL)
        heap_free(p);
    else
        free(p);
}

static void *h_realloc(void *p, size_t n)
{
    return heap_realloc != NULL ? heap_realloc(p, n) : realloc(p, n);
}

static bool is_io(int type)
{
    return type == DYNAMIC_TYPE_IN_BUFFER || type == DYNAMIC_TYPE_OUT_BUFFER;
}

static size_t class_size(unsigned cls)
{
    return (size_t)1 << (cls + WM_MIN_SHIFT);
}

static unsigned class_of(size_t n)
{
    for (unsigned cls = 0; cls < WM_CLASSES; cls++)
        if (n <= class_size(cls))
            return cls;
    return WM_UNPOOLED;
}

static unsigned keep_max(unsigned cls)
{
    size_t by_bytes = WM_KEEP_BYTES / class_size(cls);

    return by_bytes < WM_KEEP_BLOCKS ? (unsigned)by_bytes : WM_KEEP_BLOCKS;
}

/* The buffer of h handed out for n bytes: under ASan only those n are addressable. */
static void *hand_out(wm_hdr_t *h, size_t n)
{
    void *p = h + 1;

    h->u.size = n;
    if (h->cls != WM_UNPOOLED) {
        WM_UNPOISON(p, class_size(h->cls));
        WM_POISON((uint8_t *)p + n, class_size(h->cls) - n);
    }
    return p;
}

static void *io_alloc(size_t n)
{
    unsigned cls = class_of(n);
    wm_hdr_t *h = cls != WM_UNPOOLED ? pool.head[cls] : NULL;

    if (h != NULL) {
        pool.head[cls] = h->u.next;
        pool.count[cls]--;
        pool.hits++;
        pool.live++;
        return hand_out(h, n);
    }
    if (n > SIZE_MAX - sizeof(*h))
        return NULL;
    h = h_malloc(sizeof(*h) + (cls != WM_UNPOOLED ? class_size(cls) : n));
    if (h == NULL)
        return NULL;
    pool.misses++;
    pool.live++;
    h->magic = WM_MAGIC;
    h->cls = cls;
    return hand_out(h, n);
}

static wm_hdr_t *header_of(void *p)
{
    wm_hdr_t *h = (wm_hdr_t *)p - 1;

    /* wolfSSL frees an I/O buffer with the type it allocated it with; anything else means the
     * heap is already corrupt: stop here rather than free a pointer that is not a block. */
    if (h->magic != WM_MAGIC)
        abort();
    return h;
}

static void release(wm_hdr_t *h)
{
    if (h->cls != WM_UNPOOLED)
        WM_UNPOISON(h + 1, class_size(h->cls));
    h->magic = 0;
    h_free(h);
}

static void io_free(void *p)
{
    wm_hdr_t *h = header_of(p);
    unsigned cls = h->cls;

    pool.live--;
    if (cls == WM_UNPOOLED || pool.count[cls] >= keep_max(cls)) {
        release(h);
        return;
    }
    h->u.next = pool.head[cls];
    pool.head[cls] = h;
    pool.count[cls]++;
    WM_POISON(h + 1, class_size(cls));
}

static void *io_realloc(void *p, size_t n)
{
    wm_hdr_t *h;
    void *q;

    if (p == NULL)
        return io_alloc(n);
    h = header_of(p);
    if (h->cls != WM_UNPOOLED && n <= class_size(h->cls))
        return hand_out(h, n);
    q = io_alloc(n);
    if (q == NULL)
        return NULL; /* p stays valid, as with realloc */
    memcpy(q, p, h->u.size < n ? h->u.size : n);
    io_free(p);
    return q;
}

/* Every other block: from the slab's wolfSSL zone (pages that go back to the kernel when empty),
 * unless allocators were set (the tests' counter, wolfpair's accounting: they see every block)
 * or under AddressSanitizer (which then checks wolfSSL's blocks as heap blocks); from the heap
 * when the slab has none (a block over PSKGW_SLAB_MAX). */
static void *obj_alloc(size_t n)
{
#ifndef WM_ASAN
    if (heap_malloc == NULL) {
        void *p = pskgw_slab_alloc(PSKGW_SLAB_WOLFSSL, n);

        if (p != NULL)
            return p;
    }
#endif
    return h_malloc(n);
}

static void obj_free(void *p)
{
    if (pskgw_slab_owns(p))
        pskgw_slab_free(p);
    else
        h_free(p);
}

static void *obj_realloc(void *p, size_t n)
{
    size_t have;
    void *q;

    if (p == NULL)
        return obj_alloc(n);
    if (!pskgw_slab_owns(p))
        return h_realloc(p, n);
    have = pskgw_slab_slot_size(p);
    if (n <= have)
        return p;
    q = obj_alloc(n);
    if (q == NULL)
        return NULL; /* p stays valid, as with realloc */
    memcpy(q, p, have);
    pskgw_slab_free(p);
    return q;
}

void *XMALLOC(size_t n, void *heap, int type)
{
    (void)heap;
    return is_io(type) ? io_alloc(n) : obj_alloc(n);
}

void *XREALLOC(void *p, size_t n, void *heap, int type)
{
    (void)heap;
    return is_io(type) ? io_realloc(p, n) : obj_realloc(p, n);
}

void XFREE(void *p, void *heap, int type)
{
    (void)heap;
    if (p == NULL)
        return;
    if (is_io(type))
        io_free(p);
    else
        obj_free(p);
}

/* wolfSSL's memory.c defines these only without XMALLOC_USER; same contract. */
int wolfSSL_SetAllocators(wolfSSL_Malloc_cb mf, wolfSSL_Free_cb ff, wolfSSL_Realloc_cb rf)
{
    pskgw_wolfmem_trim(); /* pooled blocks go back to the heap they came from */
    heap_malloc = mf;
    heap_free = ff;
    heap_realloc = rf;
    return 0;
}

int wolfSSL_GetAllocators(wolfSSL_Malloc_cb *mf, wolfSSL_Free_cb *ff, wolfSSL_Realloc_cb *rf)
{
    if (mf != NULL)
        *mf = heap_malloc;
    if (ff != NULL)
        *ff = heap_free;
    if (rf != NULL)
        *rf = heap_realloc;
    return 0;
}

bool pskgw_wolfmem_enabled(void)
{
    return true;
}

void pskgw_wolfmem_stats(pskgw_wolfmem_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned cls = 0; cls < WM_CLASSES; cls++) {
        out->blocks += pool.count[cls];
        out->bytes += pool.count[cls] * class_size(cls);
    }
    out->hits = pool.hits;
    out->misses = pool.misses;
    out->live = pool.live;
}

void pskgw_wolfmem_trim(void)
{
    for (unsigned cls = 0; cls < WM_CLASSES; cls++) {
        while (pool.head[cls] != NULL) {
            wm_hdr_t *h = pool.head[cls];

            pool.head[cls] = h->u.next;
            release(h);
        }
        pool.count[cls] = 0;
    }
}

#else /* a wolfSSL built without XMALLOC_USER allocates through its own memory.c */

bool pskgw_wolfmem_enabled(void)
{
    return false;
}

void pskgw_wolfmem_stats(pskgw_wolfmem_stats_t *out)
{
    memset(out, 0, sizeof(*out));
}

void pskgw_wolfmem_trim(void)
{
}

#endif
