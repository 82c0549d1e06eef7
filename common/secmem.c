#define _DEFAULT_SOURCE
#include "common/secmem.h"

#include "common/wipe.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Each block starts with this header; the caller's bytes follow it, aligned for any type. A
 * class block's `size` is its class size (header included); a large block's is its mapping's
 * length. On a free list, `next` links the (wiped) blocks of a class. */
typedef union {
    struct {
        size_t size;
        unsigned cls; /* index in class_size[], NCLASS for a large block */
    } h;
    void *next;
    max_align_t align;
} secmem_hdr_t;

#define NCLASS      8
#define CHUNK_BYTES (64 * 1024)

static const size_t class_size[NCLASS] = { 32, 64, 128, 256, 512, 1024, 2048, 4096 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static secmem_hdr_t *free_list[NCLASS];
static pskgw_secmem_stats_t stats;

/* Anonymous private pages marked MADV_DONTDUMP. NULL (errno ENOMEM) on failure. */
static void *map_dontdump(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    if (madvise(p, len, MADV_DONTDUMP) != 0) {
        munmap(p, len);
        errno = ENOMEM;
        return NULL;
    }
    stats.mapped_bytes += len;
    return p;
}

/* Map a new chunk for class c and put its blocks on the free list. Called with the lock held. */
static int grow_class(unsigned c)
{
    size_t bs = class_size[c];
    size_t len = bs > CHUNK_BYTES ? bs : CHUNK_BYTES;
    unsigned char *chunk = map_dontdump(len);

    if (!chunk)
        return -1;
    for (size_t off = len; off >= bs; off -= bs) {
        secmem_hdr_t *b = (secmem_hdr_t *)(chunk + off - bs);

        b->next = free_list[c];
        free_list[c] = b;
    }
    return 0;
}

static void *alloc_large(size_t need)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    size_t len;
    secmem_hdr_t *b;

    if (need > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    len = (need + page - 1) / page * page;
    b = map_dontdump(len);
    if (!b)
        return NULL;
    b->h.size = len;
    b->h.cls = NCLASS;
    stats.blocks_in_use++;
    return b + 1;
}

void *pskgw_secmem_alloc(size_t n)
{
    size_t need;
    secmem_hdr_t *b;
    unsigned c = 0;
    void *p = NULL;

    if (n == 0)
        n = 1;
    if (n > SIZE_MAX - sizeof(secmem_hdr_t)) {
        errno = ENOMEM;
        return NULL;
    }
    need = n + sizeof(secmem_hdr_t);
    pthread_mutex_lock(&lock);
    while (c < NCLASS && class_size[c] < need)
        c++;
    if (c == NCLASS) {
        p = alloc_large(need);
        goto out;
    }
    if (!free_list[c] && grow_class(c) != 0)
        goto out;
    b = free_list[c];
    free_list[c] = b->next;
    b->h.size = class_size[c];
    b->h.cls = c;
    stats.blocks_in_use++;
    p = b + 1;
out:
    pthread_mutex_unlock(&lock);
    return p; /* zeroed: fresh pages are, and a freed block was wiped */
}

void pskgw_secmem_free(void *p)
{
    secmem_hdr_t *b;
    size_t size;
    unsigned c;

    if (!p)
        return;
    b = (secmem_hdr_t *)p - 1;
    size = b->h.size;
    c = b->h.cls;
    pskgw_wipe(p, size - sizeof(*b));
    pthread_mutex_lock(&lock);
    stats.blocks_in_use--;
    if (c >= NCLASS) {
        stats.mapped_bytes -= size;
        pskgw_wipe(b, sizeof(*b));
        munmap(b, size);
    } else {
        pskgw_wipe(b, sizeof(*b));
        b->next = free_list[c];
        free_list[c] = b;
    }
    pthread_mutex_unlock(&lock);
}

void *pskgw_secmem_calloc(size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return pskgw_secmem_alloc(nmemb * size);
}

char *pskgw_secmem_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = pskgw_secmem_alloc(n);

    if (p)
        memcpy(p, s, n);
    return p;
}

void pskgw_secmem_stats(pskgw_secmem_stats_t *out)
{
    pthread_mutex_lock(&lock);
    *out = stats;
    pthread_mutex_unlock(&lock);
}
