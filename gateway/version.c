#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>

#include "gateway/version.h"
#include "common/err.h"
#include "config/config.h"

#include <stdint.h>
#include <string.h>

#define MAX_SUITES 64

/* wolfSSL lists some suites under two names (PSK-AES128-CCM-8 and PSK-AES128-CCM8): each suite
 * is printed once, by the name a domain's `ciphers` takes, and only if the configuration accepts
 * it (a suite the library has but config/cipher.c does not know could not be configured). */
int pskgw_version_print(FILE *out)
{
    char list[4096];
    char *save = NULL;
    uint16_t seen[MAX_SUITES];
    size_t n = 0;

    if (wolfSSL_get_ciphers(list, (int)sizeof(list)) != WOLFSSL_SUCCESS)
        return PSKGW_EINTERNAL;
    fprintf(out, "pskgw %s\n", PSKGW_VERSION);
    /* The library in use (run time) and the headers pskgw was compiled with: a static link makes
     * them equal; both are printed so that a mismatch would show. */
    fprintf(out, "wolfSSL %s (gateway profile, static; compiled with %s)\n", wolfSSL_lib_version(),
            LIBWOLFSSL_VERSION_STRING);
    fprintf(out, "PSK cipher suites (names for `ciphers`):\n");
    for (char *tok = strtok_r(list, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        const pskgw_config_cipher_t *c = strstr(tok, "PSK") ? pskgw_config_cipher_find(tok) : NULL;
        int dup = 0;

        if (!c)
            continue;
        for (size_t i = 0; i < n; i++)
            dup = dup || seen[i] == c->iana;
        if (dup || n == MAX_SUITES)
            continue;
        seen[n++] = c->iana;
        if (strcmp(c->name, c->wolfssl) != 0)
            fprintf(out, "  %s (0x%04X; wolfSSL's name %s is accepted too)\n", c->name,
                    (unsigned)c->iana, c->wolfssl);
        else
            fprintf(out, "  %s (0x%04X)\n", c->name, (unsigned)c->iana);
    }
    return n > 0 ? 0 : PSKGW_EUNSUPPORTED;
}
