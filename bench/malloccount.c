/* libpskgw-malloccount.so: counts every heap allocation of a process (LD_PRELOAD), for
 * scripts/bench's allocations-per-message figure (a report, not a test).
 *
 *   LD_PRELOAD=build-bench/libpskgw-malloccount.so PSKGW_MALLOCCOUNT_FILE=/tmp/n pskgw ...
 *   kill -USR2 <pid>   # writes "<allocations>\n" to /tmp/n
 *
 * malloc, calloc, realloc, posix_memalign, aligned_alloc and memalign are counted (all threads:
 * the loop, libuv's thread pool, libraries; glibc's own strdup etc. call malloc and are counted
 * through it), then forwarded to glibc's __libc_* functions. The file is written from the
 * SIGUSR2 handler with open/write/close only (async-signal-safe). Not for sanitizer builds. */
#include <errno.h>
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

static atomic_ulong count;
static char path[512];

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t nmemb, size_t n)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return __libc_calloc(nmemb, n);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p;

    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return __libc_memalign(align, n);
}

static void on_usr2(int sig)
{
    char buf[32];
    char tmp[24];
    unsigned long v = atomic_load_explicit(&count, memory_order_relaxed);
    size_t n = 0;
    size_t k = 0;
    int saved = errno;
    int fd;

    (void)sig;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        buf[n++] = tmp[--k];
    buf[n++] = '\n';
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        (void)!write(fd, buf, n);
        close(fd);
    }
    errno = saved;
}

__attribute__((constructor)) static void init(void)
{
    const char *p = getenv("PSKGW_MALLOCCOUNT_FILE");
    struct sigaction sa;

    if (!p || strlen(p) >= sizeof(path))
        return;
    memcpy(path, p, strlen(p) + 1);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}
