/* Memory for long-lived key material, kept out of core dumps.
 *
 * Blocks come from anonymous mmap'ed pages marked MADV_DONTDUMP (VmFlags "dd" in
 * /proc/PID/smaps), so that a core of a dumpable pskgw (--allow-core-dumps, or gcore) does not
 * hold them. Requests up to PSKGW_SECMEM_CLASS_MAX bytes are served from per-size-class arenas
 * (64 KiB chunks carved into blocks of 32..4096 bytes, header included); larger ones get pages of
 * their own. Every block is wiped when it is freed; class blocks go back to their class's free
 * list and are reused, never to malloc; large blocks are wiped and unmapped. The arena never
 * shrinks.
 *
 * What belongs here: cached PSKs and E2E parameters (keycache values), the API secret and the
 * AuthToken (upstream), the cache KEK (keycache). Transient buffers (a response body being
 * parsed, a stack copy) stay where they are: see docs/SECURITY.md "Core dumps".
 *
 * Thread-safe (one mutex). Not async-signal-safe. AddressSanitizer does not see these blocks (a
 * leaked one is not reported): pskgw_secmem_stats() counts the blocks in use. */
#ifndef PSKGW_COMMON_SECMEM_H
#define PSKGW_COMMON_SECMEM_H

#include <stddef.h>

#define PSKGW_SECMEM_CLASS_MAX 4096 /* biggest class block, header included */

/* n zeroed bytes (n == 0 is served as 1), aligned for any type, in don't-dump memory; NULL when
 * mmap or madvise fails or n is too big (like malloc: errno is ENOMEM). The caller owns the block
 * and releases it with pskgw_secmem_free(). */
void *pskgw_secmem_alloc(size_t n);
/* Wipe the whole block (the size it was allocated with) and give it back to the arena. NULL is
 * accepted. p must come from pskgw_secmem_alloc() or pskgw_secmem_strdup(). */
void pskgw_secmem_free(void *p);
/* nmemb * size zeroed bytes, NULL also when the product overflows (like calloc). */
void *pskgw_secmem_calloc(size_t nmemb, size_t size);
/* A copy of s in don't-dump memory (free with pskgw_secmem_free()); NULL when out of memory. */
char *pskgw_secmem_strdup(const char *s);

/* Statistics for tests and metrics: bytes mapped by the arena (classes and large blocks) and
 * blocks currently handed out. */
typedef struct {
    size_t mapped_bytes;
    size_t blocks_in_use;
} pskgw_secmem_stats_t;
void pskgw_secmem_stats(pskgw_secmem_stats_t *out);

#endif
