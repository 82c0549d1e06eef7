/* Reading memory a test means to look at after it was freed: wiped secrets (a freed slab slot
 * stays mapped; AddressSanitizer poisons it, hence the attribute); whether this is an
 * AddressSanitizer build. */
#ifndef PSKGW_TESTS_PEEK_H
#define PSKGW_TESTS_PEEK_H

#include <stddef.h>
#include <stdint.h>

/* Defined in an AddressSanitizer build (gcc's macro, clang's feature). */
#if defined(__SANITIZE_ADDRESS__)
#define PSKGW_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PSKGW_TEST_ASAN 1
#endif
#endif

/* The bytes of p[from, n) that are not zero. */
__attribute__((no_sanitize_address, unused)) static size_t peek_nonzero(const uint8_t *p,
                                                                        size_t from, size_t n)
{
    size_t k = 0;

    for (size_t i = from; i < n; i++)
        k += ((const volatile uint8_t *)p)[i] != 0;
    return k;
}

#endif
