/* Fuzz target: hex and base64 decoders (common/codec.h) must never read or write out of
 * bounds, and decode(encode(x)) == x for whatever they accept. */
#include "common/codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t out[512];
    char enc[1100];
    uint8_t back[512];
    size_t n = 0;
    size_t m = 0;

    if (size > 600)
        return 0;
    if (pskgw_b64_decode((const char *)data, size, out, sizeof(out), &n) == 0) {
        if (pskgw_b64_encode(out, n, enc, sizeof(enc)) != 0)
            abort();
        if (pskgw_b64_decode(enc, strlen(enc), back, sizeof(back), &m) != 0 || m != n ||
            memcmp(out, back, n) != 0)
            abort();
    }
    (void)pskgw_b64url_decode((const char *)data, size, out, sizeof(out), &n);
    if (pskgw_hex_decode((const char *)data, size, out, sizeof(out), &n) == 0) {
        if (pskgw_hex_encode(out, n, enc, sizeof(enc), true) != 0)
            abort();
        if (pskgw_hex_decode(enc, strlen(enc), back, sizeof(back), &m) != 0 || m != n ||
            memcmp(out, back, n) != 0)
            abort();
    }
    return 0;
}
