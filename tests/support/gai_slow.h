/* Test support: a getaddrinfo() interposer (linked into the test binary, it replaces libc's).
 * Until gai_slow_watch() it only passes every call on to the real getaddrinfo().
 *
 * - Lookups of a name (not a numeric literal) made on the loop thread, the thread that called
 *   gai_slow_watch(), are counted and answered at once: the code under test must resolve names
 *   on the thread pool, and a test that breaks this fails on the count instead of hanging.
 * - Lookups of the slow name on any other thread block until gai_slow_release() (or a 60 s
 *   guard, so that a failed test never hangs), then answer as 127.0.0.1 would. Lookups of the
 *   slow name on the loop thread are answered as 127.0.0.1 at once (and counted).
 * - Everything else goes to the real getaddrinfo().
 */
#ifndef PSKGW_TEST_GAI_SLOW_H
#define PSKGW_TEST_GAI_SLOW_H

/* Start watching: the calling thread is the loop thread; lookups of slow_name (copied; NULL for
 * none) block until released. */
void gai_slow_watch(const char *slow_name);
/* Lookups of slow_name blocked right now (on pool threads). */
int gai_slow_blocked(void);
/* Lookups of names made on the loop thread since gai_slow_watch(). */
int gai_slow_loop_thread_lookups(void);
/* Let the blocked lookups (and later ones) of slow_name finish. */
void gai_slow_release(void);
/* Stop watching (releases blocked lookups): from now on every call goes to the real one. */
void gai_slow_unwatch(void);
/* Whether the real getaddrinfo() resolves name to an IPv4 address on this machine (a test that
 * needs "localhost" skips without it). Call it before gai_slow_watch(). */
int gai_slow_resolves(const char *name);

#endif
