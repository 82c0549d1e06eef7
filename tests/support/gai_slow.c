/* getaddrinfo() interposer: see gai_slow.h. */
#define _GNU_SOURCE
#include "gai_slow.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_t loop_thread;
static bool watching;
static bool released;
static char slow[256];
static int blocked;
static int loop_lookups;

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

void gai_slow_watch(const char *slow_name)
{
    pthread_mutex_lock(&mu);
    loop_thread = pthread_self();
    snprintf(slow, sizeof(slow), "%s", slow_name ? slow_name : "");
    released = false;
    blocked = 0;
    loop_lookups = 0;
    watching = true;
    pthread_mutex_unlock(&mu);
}

int gai_slow_blocked(void)
{
    int n;

    pthread_mutex_lock(&mu);
    n = blocked;
    pthread_mutex_unlock(&mu);
    return n;
}

int gai_slow_loop_thread_lookups(void)
{
    int n;

    pthread_mutex_lock(&mu);
    n = loop_lookups;
    pthread_mutex_unlock(&mu);
    return n;
}

void gai_slow_release(void)
{
    pthread_mutex_lock(&mu);
    released = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

void gai_slow_unwatch(void)
{
    pthread_mutex_lock(&mu);
    watching = false;
    released = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

int gai_slow_resolves(const char *name)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    if (getaddrinfo(name, NULL, &hints, &res) != 0)
        return 0;
    freeaddrinfo(res);
    return 1;
}

static bool numeric(const char *node)
{
    unsigned char a[16];

    return inet_pton(AF_INET, node, a) == 1 || inet_pton(AF_INET6, node, a) == 1;
}

/* Block until released, or until the guard passes (a failed test must not hang). */
static void hold(void)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    blocked++;
    while (!released) {
        if (pthread_cond_timedwait(&cv, &mu, &until) != 0)
            break;
    }
    blocked--;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    static gai_fn real;
    bool is_slow = false;

    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
    pthread_mutex_lock(&mu);
    if (watching && node && !numeric(node)) {
        is_slow = slow[0] && strcmp(node, slow) == 0;
        if (pthread_equal(pthread_self(), loop_thread))
            loop_lookups++;
        else if (is_slow)
            hold();
    }
    pthread_mutex_unlock(&mu);
    return real(is_slow ? "127.0.0.1" : node, service, hints, res);
}
