/* Fuzz target: JWT claims parser and token lifetime (upstream/parse.h). The input is the token
 * itself (header.payload.signature with a base64url JSON payload). */
#include "upstream/parse.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t exp = 0;
    int64_t iat = 0;
    int rc = pskgw_upstream_jwt_claims((const char *)data, size, &exp, &iat);
    uint64_t life = pskgw_upstream_token_lifetime_ms(rc, exp, iat, 1700000000000ull);

    if (rc == 0 && (exp <= 0 || (iat != -1 && iat <= 0)))
        abort();
    if (life < 1000 || life > 7ull * 86400 * 1000)
        abort();
    return 0;
}
