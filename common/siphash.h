/* SipHash-2-4 (Aumasson, Bernstein): the keyed hash of the gateway's and the key cache's tables
 * (a peer cannot aim its keys at one bucket without the key). Pure, no allocation. */
#ifndef PSKGW_COMMON_SIPHASH_H
#define PSKGW_COMMON_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of data[0..len) under a 16-byte key. data may be NULL when len is 0. */
uint64_t pskgw_siphash24(const uint8_t key[16], const uint8_t *data, size_t len);

#endif
