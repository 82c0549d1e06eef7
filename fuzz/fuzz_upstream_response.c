/* Fuzz target: the security-service response parsers (upstream/parse.h). The first byte picks
 * the parser; the rest is the response body. Whatever a parser accepts must satisfy the
 * documented bounds; nothing may read or write out of bounds or leak. */
#include "common/wipe.h"
#include "upstream/parse.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body;
    size_t len;
    char why[160];

    if (size < 1)
        return 0;
    body = (const char *)data + 1;
    len = size - 1;
    switch (data[0] % 4) {
    case 0: {
        pskgw_upstream_psk_t r;
        unsigned bits = (data[0] & 0x80) ? 256 : 128;
        if (pskgw_upstream_parse_psk(body, len, bits, &r, why, sizeof(why)) == 0) {
            if (r.key_len != bits / 8 || strlen(r.rot_uid) == 0 || strlen(r.rot_uid) > 64)
                abort();
        }
        break;
    }
    case 1: {
        pskgw_upstream_e2e_t r;
        if (pskgw_upstream_parse_e2e(body, len, &r, why, sizeof(why)) == 0) {
            if (r.nonce_len < 7 || r.nonce_len > 13 || (r.mac_bits != 64 && r.mac_bits != 128))
                abort();
            if (strcmp(r.cipher_suite, r.mac_bits == 128 ? "AES_128_CCM" : "AES_128_CCM_8"))
                abort();
        }
        break;
    }
    case 2: {
        char *tok = NULL;
        if (pskgw_upstream_parse_auth(body, len, &tok, why, sizeof(why)) == 0) {
            size_t n = strlen(tok);
            if (n == 0 || n > PSKGW_UPSTREAM_MAX_TOKEN || strpbrk(tok, " \r\n"))
                abort();
            pskgw_free_secret_str(tok);
        }
        break;
    }
    default: {
        int64_t exp = 0;
        int64_t iat = 0;
        int rc = pskgw_upstream_jwt_claims(body, len, &exp, &iat);
        uint64_t life = pskgw_upstream_token_lifetime_ms(rc, exp, iat, 1700000000000ull);
        if (rc == 0 && exp <= 0)
            abort();
        if (life < 1000 || life > 7ull * 86400 * 1000)
            abort();
        break;
    }
    }
    return 0;
}
