/* Fuzz target: the ClientKeyExchange identity pre-parser (dtls/parse.h): DTLS fragment
 * reassembly over several datagrams, the TLS stream scan, and identity normalisation. The input
 * is split into datagrams at each "\xff\xfe\xfd\xfc" marker. */
#include "dtls/parse.h"

#include <stdlib.h>
#include <string.h>

static void check_identity(const uint8_t *id, size_t n)
{
    char hex[PSKGW_IDENTITY_HEX_CAP];

    if (n == 0 || n > PSKGW_IDENTITY_MAX_RAW)
        abort();
    if (pskgw_identity_normalize(id, n, hex, sizeof(hex)) != 0)
        abort();
    if (strlen(hex) != n && strlen(hex) != 2 * n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t marker[4] = { 0xff, 0xfe, 0xfd, 0xfc };
    pskgw_cke_asm_t a;
    uint8_t scratch[4096];
    const uint8_t *id = NULL;
    size_t n = 0;
    size_t start = 0;

    if (size > 8192)
        return 0;
    pskgw_cke_asm_init(&a);
    for (size_t i = 0; i <= size; i++) {
        bool end = i == size || (size - i >= 4 && memcmp(data + i, marker, 4) == 0);
        bool has = false;
        bool first = false;

        if (!end)
            continue;
        if (pskgw_cke_asm_feed(&a, data + start, i - start, 64, &id, &n, &has, &first) == 1)
            check_identity(id, n);
        start = i + 4;
        i += 3;
    }
    if (pskgw_tls_find_cke_identity(data, size, 128, scratch, sizeof(scratch), &id, &n) == 1) {
        if (id < scratch || id + n > scratch + sizeof(scratch))
            abort();
        check_identity(id, n);
    }
    if (size >= 2 && pskgw_cke_identity(data, size, 128, &id, &n) == 0) {
        if (id + n > data + size)
            abort();
        check_identity(id, n);
    }
    return 0;
}
