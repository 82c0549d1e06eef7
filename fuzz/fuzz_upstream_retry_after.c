/* Fuzz target: the Retry-After header value (upstream/policy.h): delay-seconds and the three
 * HTTP-date forms. Any accepted value must give a delay within the documented bounds; nothing
 * may read out of bounds (the value is not NUL-terminated). */
#include "upstream/policy.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = malloc(size ? size : 1); /* exactly size bytes: no terminator to lean on */
    int64_t s;
    int64_t d;
    int64_t a;

    if (!v)
        return 0;
    if (size)
        memcpy(v, data, size);
    s = pskgw_upstream_retry_after_ms(v, size);
    d = pskgw_upstream_http_date_ms(v, size);
    a = pskgw_upstream_retry_after_at_ms(v, size, 1445412480000ull);
    if (s < -1 || s > 86400000 || a < -1 || a > 86400000 || d < -1)
        abort();
    if (s >= 0 && a != s)
        abort();
    if (s < 0 && (d >= 0) != (a >= 0))
        abort();
    free(v);
    return 0;
}
