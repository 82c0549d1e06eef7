/* pskgw_wolfmem: wolfSSL's heap, with its record I/O buffers recycled.
 *
 * The gateway profile builds wolfSSL with XMALLOC_USER (scripts/wolfssl-profile): every XMALLOC,
 * XREALLOC and XFREE of the library is a call to the functions of this module, with the block's
 * type. wolfSSL grows a session's 5-byte static input buffer for every datagram it reads (about
 * 1.9 KB: MTU + 500) and its output buffer for every record it sends, and frees both once the
 * record is processed or sent (docs/WOLFSSL.md, "Per record"): one malloc and one free per
 * record each way. Here the blocks of those two types (DYNAMIC_TYPE_IN_BUFFER,
 * DYNAMIC_TYPE_OUT_BUFFER) come from per-thread freelists of power-of-two size classes (256 B
 * to 32 KiB; each class keeps at most 32 blocks and 128 KiB, so at most about 640 KB stay
 * pooled); a class's first blocks and anything larger come from the heap. Every other block
 * (the session objects, keys, handshake state) comes from the slab's wolfSSL zone
 * (dtls/slab.h): no header, rounded to the slot's class, in pages of their own that go back to
 * the kernel when their last block is freed, so what a ramp of awake sessions once used does not
 * stay resident once they hibernate or end, and kept out of core dumps. Blocks over
 * PSKGW_SLAB_MAX, and every block while allocators are set (below) or under AddressSanitizer
 * (which then checks them as heap blocks), go to the heap as they are.
 *
 * The heap is libc's, or the functions given to wolfSSL_SetAllocators(): this module defines
 * wolfSSL_SetAllocators/wolfSSL_GetAllocators itself when the build has XMALLOC_USER (wolfSSL's
 * memory.c then has none), with wolfSSL's semantics, so the tests' allocation counter
 * (tests/support/allocfail.h) and bench/wolfpair.c's heap accounting see every block the pool
 * takes from the heap (the slab is not used while they are set). Setting allocators returns the pooled blocks to the previous ones first;
 * blocks still in use would be freed through the new ones, so, as with wolfSSL's own, set them
 * before wolfSSL allocates anything (the tests do it in a constructor, wolfpair first in main).
 *
 * Freed I/O buffers hold no secret: wolfSSL wipes the input buffer before freeing it, and the
 * output buffer holds records already encrypted (or handshake messages sent in clear). Under
 * AddressSanitizer a pooled block is poisoned until it is handed out again.
 *
 * Thread-safe (per-thread freelists; a block freed by another thread joins that thread's list).
 * Linked into every program that links the gateway-profile wolfSSL (cmake/PskgwDeps.cmake).
 * Built against a wolfSSL without XMALLOC_USER (another prefix, bench/wolfpair-compare), the
 * functions below report a disabled pool and do nothing.
 */
#ifndef PSKGW_DTLS_WOLFMEM_H
#define PSKGW_DTLS_WOLFMEM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    size_t blocks; /* I/O buffers held in this thread's freelists */
    size_t bytes;  /* their size classes summed */
    size_t hits;   /* I/O buffers handed out from a freelist (this thread, since start) */
    size_t misses; /* I/O buffers taken from the heap (this thread, since start) */
    long live;     /* I/O buffers handed out by this thread minus those it took back */
} pskgw_wolfmem_stats_t;

/* True when wolfSSL allocates through this module (the profile has XMALLOC_USER). */
bool pskgw_wolfmem_enabled(void);

/* This thread's pool figures (zeros when disabled). */
void pskgw_wolfmem_stats(pskgw_wolfmem_stats_t *out);

/* Returns this thread's pooled blocks to the heap (heap measurements; idle trimming). */
void pskgw_wolfmem_trim(void);

#endif
