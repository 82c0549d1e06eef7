/* CRC-32 as used by zlib/PNG/Ethernet (check value: crc("123456789") == 0xCBF43926).
 * Pure functions, no state, thread-safe. Used for spool records (sinks/record.h). */
#ifndef PSKGW_SINKS_CRC32_H
#define PSKGW_SINKS_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t pskgw_crc32(const void *data, size_t len);
/* Continue a CRC: pskgw_crc32_update(pskgw_crc32(a, n), b, m) == CRC of a||b. Start with 0. */
uint32_t pskgw_crc32_update(uint32_t crc, const void *data, size_t len);

#endif
