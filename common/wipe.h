/* Wiping secrets. Key material (PSKs, API secrets, tokens, E2E keys) is wiped with
 * pskgw_wipe() before its memory is released; the compiler may not elide it. */
#ifndef PSKGW_COMMON_WIPE_H
#define PSKGW_COMMON_WIPE_H

#include <stddef.h>

void pskgw_wipe(void *p, size_t n);
/* Wipe n bytes at p, then free(p). NULL is accepted. */
void pskgw_free_secret(void *p, size_t n);
/* Wipe a NUL-terminated string (its whole length and the NUL), then free it. NULL accepted. */
void pskgw_free_secret_str(char *s);
/* An allocator that wipes every block when it is freed: for libraries that hold secrets in
 * buffers they free themselves (jansson: json_set_alloc_funcs(pskgw_wiping_malloc,
 * pskgw_wiping_free)). The block's size is kept in a header in front of it. */
void *pskgw_wiping_malloc(size_t n);
void pskgw_wiping_free(void *p);
/* The rest of a malloc family, for libraries that want all of it (libcurl:
 * curl_global_init_mem). realloc moves the block and wipes the old one. */
void *pskgw_wiping_realloc(void *p, size_t n);
void *pskgw_wiping_calloc(size_t nmemb, size_t size);
char *pskgw_wiping_strdup(const char *s);
/* Constant-time comparison: 0 when equal. */
int pskgw_memeq_ct(const void *a, const void *b, size_t n);

/* Test only: observe wipe-on-free. The hook is called with every block that
 * pskgw_free_secret(), pskgw_free_secret_str() and the wiping allocator release (for the
 * allocator: the whole block, its size header included), after the wipe and just before free(),
 * so that a test can check that all n bytes at p are zero. It may be called from any thread that
 * frees through these functions; it must not free or allocate through them. NULL (the default)
 * removes it. Production code never sets it. */
typedef void (*pskgw_wipe_release_hook_t)(const void *p, size_t n);
void pskgw_wipe_test_set_release_hook(pskgw_wipe_release_hook_t hook);

#endif
