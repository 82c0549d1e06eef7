#include "common/clock.h"
#include "common/err.h"

#include <stdio.h>
#include <time.h>

uint64_t pskgw_clock_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t pskgw_clock_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int pskgw_clock_rfc3339(uint64_t wall_ms, char *out, size_t cap)
{
    time_t secs = (time_t)(wall_ms / 1000u);
    struct tm tm;
    int n;

    if (cap < 25 || !gmtime_r(&secs, &tm))
        return PSKGW_ETOOBIG;
    n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(wall_ms % 1000u));
    return n > 0 && (size_t)n < cap ? 0 : PSKGW_ETOOBIG;
}
