/* Wiping secrets. Key material (PSKs, API secrets, tokens, E2E keys) is wiped with
 * pskgw_wipe() before its memory is released; the compiler may not elide it. */
#ifndef PSKGW_COMMON_WIPE_H
#define PSKGW_COMMON_WIPE_H

#include <stddef.h>

void pskgw_wipe(void *p, size_t n);
/* Wipe n bytes at p, then free(p). NULL is accepted. */
void pskgw_free_secret(void *p, size_t n);
/* Wipe a NUL-terminated string (its whole length), then free it. NULL is accepted. */
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

#endif
