/* Test support: a getaddrinfo() interposer for a whole process (LD_PRELOAD=libpskgw-gaihold.so),
 * for the gateway's integration tests where gai_slow.h (linked into a test binary) cannot reach.
 *
 * PSKGW_GAI_HOLD_NAME names a host, PSKGW_GAI_HOLD_FILE a path. A lookup of that name:
 * - on the process's main thread (the gateway's loop): creates FILE.loop and answers at once as
 *   127.0.0.1 would (a test that finds FILE.loop fails: names must resolve on the thread pool);
 * - on any other thread: creates FILE.blocked, then blocks until FILE exists (a 60 s guard, so a
 *   failed test never hangs), then answers as 127.0.0.1 would.
 * Every other lookup goes to the real getaddrinfo(). Without both variables it only passes on.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static void mark(const char *file, const char *suffix)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof(path), "%s.%s", file, suffix);
    fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    const char *name = getenv("PSKGW_GAI_HOLD_NAME");
    const char *file = getenv("PSKGW_GAI_HOLD_FILE");

    if (real == NULL)
        return EAI_SYSTEM;
    if (name == NULL || file == NULL || node == NULL || strcmp(node, name) != 0)
        return real(node, service, hints, res);
    if ((pid_t)syscall(SYS_gettid) == getpid()) {
        mark(file, "loop");
        return real("127.0.0.1", service, hints, res);
    }
    mark(file, "blocked");
    for (int i = 0; i < 6000 && access(file, F_OK) != 0; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };

        nanosleep(&ts, NULL); /* polls for the test's release: the file */
    }
    return real("127.0.0.1", service, hints, res);
}
