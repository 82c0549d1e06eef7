/* libpskgw-malloccount.so: counts every heap allocation of a process (LD_PRELOAD), for
 * scripts/bench's allocations-per-message figure (a report, not a test).
 *
 *   LD_PRELOAD=build-bench/libpskgw-malloccount.so PSKGW_MALLOCCOUNT_FILE=/tmp/n pskgw ...
 *   kill -USR2 <pid>   # writes "<allocations>\n" to /tmp/n
 *
 * malloc, calloc, realloc, posix_memalign, aligned_alloc and memalign are counted (all threads:
 * the loop, libuv's thread pool, libraries; glibc's own strdup etc. call malloc and are counted
 * through it), then forwarded to glibc's __libc_* functions. The file is written from the
 * SIGUSR2 handler with open/write/close only (async-signal-safe). Not for sanitizer builds.
 *
 * With PSKGW_MALLOCCOUNT_LIVE=<file> it also keeps the live blocks by malloc_usable_size (16-byte
 * classes up to 8 KiB, larger ones together: free is intercepted too) and the same SIGUSR2
 * writes them there, "<usable size> <live blocks>" per line (the last line, "8192+ <blocks>
 * <bytes>", the larger ones): two dumps at different session counts, subtracted, give what a
 * session holds, block by block (docs/ARCHITECTURE.md, "What an awake session holds"). */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t nmemb, size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

void *malloc(size_t n);
void *calloc(size_t nmemb, size_t n);
void *realloc(void *p, size_t n);
int posix_memalign(void **out, size_t align, size_t n);
void *aligned_alloc(size_t align, size_t n);
void *memalign(size_t align, size_t n);
void free(void *p);
extern void __libc_free(void *p);

#define LIVE_BINS 512 /* 16-byte classes of usable size below 8 KiB */

static atomic_ulong count;
static char path[512];
static char live_path[512];
static bool live_on;
static atomic_long live[LIVE_BINS + 1];
static atomic_long live_big_bytes;

static void live_add(void *p, long sign)
{
    size_t u;
    size_t b;

    if (!live_on || p == NULL)
        return;
    u = malloc_usable_size(p);
    b = u / 16;
    if (b >= LIVE_BINS) {
        b = LIVE_BINS;
        atomic_fetch_add_explicit(&live_big_bytes, sign * (long)u, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&live[b], sign, memory_order_relaxed);
}

void *malloc(size_t n)
{
    void *p;

    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    p = __libc_malloc(n);
    live_add(p, 1);
    return p;
}

void *calloc(size_t nmemb, size_t n)
{
    void *p;

    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    p = __libc_calloc(nmemb, n);
    live_add(p, 1);
    return p;
}

void *realloc(void *p, size_t n)
{
    void *q;

    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    if (live_on && p != NULL) {
        live_add(p, -1); /* gone, moved or resized: counted again below (or back on failure) */
        q = __libc_realloc(p, n);
        live_add(q != NULL ? q : (n > 0 ? p : NULL), 1);
        return q;
    }
    q = __libc_realloc(p, n);
    live_add(q, 1);
    return q;
}

void free(void *p)
{
    live_add(p, -1);
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p;

    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    live_add(p, 1);
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    void *p;

    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    p = __libc_memalign(align, n);
    live_add(p, 1);
    return p;
}

void *memalign(size_t align, size_t n)
{
    void *p;

    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    p = __libc_memalign(align, n);
    live_add(p, 1);
    return p;
}

/* Decimal digits of v at buf + n; the new n. */
static size_t put_ul(char *buf, size_t n, unsigned long v)
{
    char tmp[24];
    size_t k = 0;

    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        buf[n++] = tmp[--k];
    return n;
}

static void write_live(void)
{
    char buf[64];
    int fd = open(live_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd < 0)
        return;
    for (size_t b = 0; b <= LIVE_BINS; b++) {
        long v = atomic_load_explicit(&live[b], memory_order_relaxed);
        size_t n = 0;

        if (v == 0)
            continue;
        if (b == LIVE_BINS) {
            n = put_ul(buf, n, LIVE_BINS * 16);
            buf[n++] = '+';
        } else {
            n = put_ul(buf, n, b * 16 + 8); /* glibc's usable sizes are 16k + 8 */
        }
        buf[n++] = ' ';
        if (v < 0)
            buf[n++] = '-';
        n = put_ul(buf, n, (unsigned long)(v < 0 ? -v : v));
        if (b == LIVE_BINS) {
            long big = atomic_load_explicit(&live_big_bytes, memory_order_relaxed);

            buf[n++] = ' ';
            if (big < 0)
                buf[n++] = '-';
            n = put_ul(buf, n, (unsigned long)(big < 0 ? -big : big));
        }
        buf[n++] = '\n';
        (void)!write(fd, buf, n);
    }
    close(fd);
}

static void on_usr2(int sig)
{
    char buf[32];
    size_t n;
    int saved = errno;
    int fd;

    (void)sig;
    n = put_ul(buf, 0, atomic_load_explicit(&count, memory_order_relaxed));
    buf[n++] = '\n';
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        (void)!write(fd, buf, n);
        close(fd);
    }
    if (live_on)
        write_live();
    errno = saved;
}

__attribute__((constructor)) static void init(void)
{
    const char *p = getenv("PSKGW_MALLOCCOUNT_FILE");
    const char *lp = getenv("PSKGW_MALLOCCOUNT_LIVE");
    struct sigaction sa;

    if (!p || strlen(p) >= sizeof(path))
        return;
    memcpy(path, p, strlen(p) + 1);
    /* Blocks allocated before this are not counted, so their frees may take a class below 0
     * (written as such): a difference of two dumps is exact all the same. */
    if (lp != NULL && strlen(lp) < sizeof(live_path)) {
        memcpy(live_path, lp, strlen(lp) + 1);
        live_on = true;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}
