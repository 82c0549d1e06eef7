/* Time helpers. Protocol modules never read the clock themselves: they are given `now`
 * (milliseconds, monotonic) by the gateway, which reads it here. */
#ifndef PSKGW_COMMON_CLOCK_H
#define PSKGW_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds. */
uint64_t pskgw_clock_mono_ms(void);
/* Wall-clock milliseconds since the Unix epoch. */
uint64_t pskgw_clock_wall_ms(void);
/* RFC 3339 UTC with milliseconds ("2026-11-21T10:00:00.123Z") into out (>= 25 bytes).
 * 0 or PSKGW_ETOOBIG. */
int pskgw_clock_rfc3339(uint64_t wall_ms, char *out, size_t cap);

#endif
