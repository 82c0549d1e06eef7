#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>

#include "gateway/version.h"
#include "common/err.h"

#include <string.h>

int pskgw_version_print(FILE *out)
{
    char list[4096];
    char *save = NULL;
    int n = 0;

    if (wolfSSL_get_ciphers(list, (int)sizeof(list)) != WOLFSSL_SUCCESS)
        return PSKGW_EINTERNAL;
    fprintf(out, "pskgw %s\n", PSKGW_VERSION);
    fprintf(out, "wolfSSL %s (gateway profile, static)\n", LIBWOLFSSL_VERSION_STRING);
    fprintf(out, "PSK cipher suites:");
    for (char *tok = strtok_r(list, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        if (strstr(tok, "PSK")) {
            fprintf(out, " %s", tok);
            n++;
        }
    }
    fprintf(out, "\n");
    return n > 0 ? 0 : PSKGW_EUNSUPPORTED;
}
