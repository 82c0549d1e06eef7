/* pskgw_slab: fixed-size slots in pages of their own that go back to the kernel when empty.
 *
 * What it is for (docs/ARCHITECTURE.md, "What a frozen session holds"): glibc's heap keeps the
 * high-water of short-lived allocations (a ramp's awake wolfSSL objects, about 2.4 KB a session)
 * resident between the long-lived ones made after them, so a gateway whose sessions hibernate
 * keeps what its awake sessions once used. Here every zone (one per kind of object: wolfSSL's
 * blocks, frozen sessions, listener sessions' structs, an awake session's other allocations) has its own 64 KiB pages, one size class per page (16-byte steps up to
 * 512 B, then quarter steps to 4 KiB and 1 KiB steps to PSKGW_SLAB_MAX); a page whose last slot is freed goes back to the
 * kernel (madvise(MADV_DONTNEED)) unless it is its class's one spare empty page. No header per
 * slot: a slot's class is its page's.
 *
 * The pages lie in one reserved address range (PSKGW_SLAB_REGION bytes, MAP_NORESERVE: only the
 * pages in use are memory), marked MADV_DONTDUMP: frozen sessions and wolfSSL's objects hold key
 * material, and a core of a dumpable pskgw does not hold them (docs/SECURITY.md, "Core dumps").
 * Every zone but wolfSSL's wipes each slot when it is freed (all of it, whatever was written
 * there); wolfSSL wipes its own secrets before it frees them.
 *
 * pskgw_slab_alloc returns NULL (the caller uses malloc instead) for more than PSKGW_SLAB_MAX
 * bytes, when the range cannot be reserved or is used up; pskgw_slab_owns tells the two apart at
 * free. Under AddressSanitizer free slots are poisoned, and the bytes of a slot past the size
 * asked for.
 *
 * Thread-safe (one mutex). */
#ifndef PSKGW_DTLS_SLAB_H
#define PSKGW_DTLS_SLAB_H

#include <stdbool.h>
#include <stddef.h>

#define PSKGW_SLAB_PAGE   ((size_t)64 * 1024)
#define PSKGW_SLAB_MAX    8192
#define PSKGW_SLAB_REGION ((size_t)16 << 30) /* reserved address space, not memory */

typedef enum {
    PSKGW_SLAB_WOLFSSL = 0, /* wolfSSL's blocks other than record I/O buffers (wolfmem.c) */
    PSKGW_SLAB_FROZEN,      /* frozen sessions (frozen.c): wiped on free */
    PSKGW_SLAB_LSESS,       /* listener sessions' structs (gateway/listen_api.c): long-lived */
    PSKGW_SLAB_AWAKE,       /* what only an awake session holds: the dtls session struct and its
                             * handshake state, the listener session's handshake state, timer and
                             * peer name (pskgw_slab_calloc, pskgw_slab_strdup) */
    PSKGW_SLAB_TEST,        /* the unit test's, wiped on free */
    PSKGW_SLAB_ZONES
} pskgw_slab_zone_t;

typedef struct {
    size_t slots;      /* slots handed out */
    size_t slot_bytes; /* their class sizes summed */
    size_t pages;      /* pages holding slots or kept as a spare: resident at most */
    size_t released;   /* pages given back to the kernel (since start) */
} pskgw_slab_stats_t;

/* n bytes (n <= PSKGW_SLAB_MAX; 0 is served as 1), 16-byte aligned, from zone's pages; NULL
 * otherwise (see above). Not zeroed. */
void *pskgw_slab_alloc(pskgw_slab_zone_t zone, size_t n);
/* True when p came from pskgw_slab_alloc (of any zone). */
bool pskgw_slab_owns(const void *p);
/* The size of p's slot (what it can grow to in place); p from pskgw_slab_alloc. */
size_t pskgw_slab_slot_size(const void *p);
/* p back to its zone (NULL: nothing): wiped first in a wiping zone; its page goes back to the
 * kernel when it was the page's last slot and its class has a spare empty page already. */
void pskgw_slab_free(void *p);
/* n zeroed bytes from zone's pages, else from calloc: more than PSKGW_SLAB_MAX, the range cannot
 * be reserved or is used up, and always under AddressSanitizer (which then checks them as heap
 * blocks, with its quarantine). NULL without memory. Given back with pskgw_slab_release. */
void *pskgw_slab_calloc(pskgw_slab_zone_t zone, size_t n);
/* A copy of str the same way (NULL: str was NULL, or no memory). */
char *pskgw_slab_strdup(pskgw_slab_zone_t zone, const char *str);
/* p back to its zone (pskgw_slab_free) or to free() (NULL: nothing). */
void pskgw_slab_release(void *p);
/* A zone's figures. */
void pskgw_slab_stats(pskgw_slab_zone_t zone, pskgw_slab_stats_t *out);

/* Which memory the slab hands out, for the owner to say at start (dtls/ does no I/O). */
typedef struct {
    bool active;     /* slots from the reserved range: every zone's pages go back to the kernel */
    const char *why; /* when not active: a static lower-case reason; "" when active */
    int err;         /* the errno of the failed reservation, 0 otherwise */
} pskgw_slab_mode_t;

/* The slab's mode, reserving the range now if nothing has yet (so that the answer holds for
 * the process's life: the range is reserved once or never). Not active: the range could not be
 * reserved (vm.overcommit_memory = 2, a LimitAS= below PSKGW_SLAB_REGION: err says), every
 * zone is malloc's; or an AddressSanitizer build, where pskgw_slab_calloc is calloc and
 * wolfSSL's blocks come from the heap. */
void pskgw_slab_mode(pskgw_slab_mode_t *out);

#endif
