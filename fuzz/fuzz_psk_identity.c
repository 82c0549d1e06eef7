/* Fuzz target: the PSK identity plausibility check (keycache/psk_identity.h) sees identities that
 * anyone can send. It must never read out of bounds, must give a known reason, and must agree with
 * the DTLS layer's normalisation: whatever a peer sends, its normalised KeyID either passes or is
 * refused for one reason, and a passing KeyID is whole hex bytes (either case: ASCII hex keeps the
 * device's case) of a valid length. */
#include "dtls/parse.h"
#include "keycache/psk_identity.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char hex[2 * 256 + 1];
    pskgw_psk_id_reason_t r = pskgw_psk_identity_check((const char *)data, size);

    if (r >= PSKGW_PSK_ID_REASON_COUNT_ || !pskgw_psk_id_reason_name(r))
        abort();
    if (size <= 256 && pskgw_identity_normalize(data, size, hex, sizeof(hex)) == 0) {
        size_t n = strlen(hex);
        r = pskgw_psk_identity_check(hex, n);
        if (r == PSKGW_PSK_ID_OK &&
            (n % 2 != 0 || n < 2 * PSKGW_PSK_IDENTITY_MIN_BYTES ||
             n > 2 * PSKGW_PSK_IDENTITY_MAX_BYTES || strspn(hex, "0123456789ABCDEFabcdef") != n))
            abort();
    }
    return 0;
}
