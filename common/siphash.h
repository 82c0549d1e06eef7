/* SipHash-2-4 (Aumasson, Bernstein): the keyed hash of the gateway's and the key cache's tables
 * (a peer cannot aim its keys at one bucket without the key) and of the E2E replay table's
 * fingerprints (128-bit output). Pure, no allocation. */
#ifndef PSKGW_COMMON_SIPHASH_H
#define PSKGW_COMMON_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of data[0..len) under a 16-byte key. data may be NULL when len is 0. */
uint64_t pskgw_siphash24(const uint8_t key[16], const uint8_t *data, size_t len);

/* SipHash-2-4 with its 128-bit output (the reference implementation's outlen 16: the paper's
 * variant with 0xee in v1 and v2 and a second finalisation after v1 ^= 0xdd) of data[0..len)
 * under a 16-byte key, written to out as the reference writes it (two little-endian 64-bit
 * words). One pass over the data: what two 64-bit hashes under two keys would give, for about
 * the cost of one plus four rounds. data may be NULL when len is 0. */
void pskgw_siphash24_128(const uint8_t key[16], const uint8_t *data, size_t len, uint8_t out[16]);

#endif
