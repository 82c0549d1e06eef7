/* Fuzz target: any bytes as a domain file (config/config.h). Loading must never crash, leak or
 * read out of bounds; an accepted configuration must be complete and free cleanly. The text is
 * loaded once alone and once next to a fixed valid domain, to reach the cross-file checks. */
#include "config/config.h"

#include "common/err.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

static const char base[] =
    "domain = \"base\";\n"
    "api = { url = \"http://127.0.0.1:1\"; key_id = \"k\"; secret = \"s\"; };\n"
    "listeners = ( { proto = \"udp\"; address = \"127.0.0.1\"; port = 5684; } );\n"
    "sinks = ( { type = \"file\"; path = \"/tmp/pskgw-fuzz-out\"; } );\n"
    "admin = { port = 9464; };\n";

/* libconfig 1.5 (Debian 12) leaks the string it is scanning when a syntax error stops its
 * parser (strbuf_append / scanctx_take_string without a bison %destructor); that leak is
 * libconfig's, bounded to one per failed parse, and not what this target looks for. Our own
 * allocations never have libconfig in their stack, so they stay checked. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig.so\n";
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pskgw_log_set_level(PSKGW_LOG_ERR); /* warnings (inline secrets) would flood the output */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    pskgw_config_diag_t diag;
    pskgw_config_t *cfg = NULL;
    pskgw_config_diag_init(&diag);
    int rc = pskgw_config_load_string("fuzz.conf", text, &cfg, &diag);
    if (rc == 0) {
        if (cfg == NULL || cfg->ndomains != 1 || cfg->domains[0].nlisteners == 0 ||
            cfg->domains[0].nsinks == 0 || cfg->domains[0].api.secret.data == NULL ||
            cfg->domains[0].nciphers == 0 || diag.nerrors != 0)
            abort();
        pskgw_config_free(cfg);
    } else if (rc == PSKGW_ECONFIG && diag.nerrors == 0) {
        abort();
    }
    cfg = NULL;

    const char *names[2] = { "base.conf", "fuzz.conf" };
    const char *texts[2] = { base, text };
    rc = pskgw_config_load_strings(names, texts, 2, &cfg, &diag);
    if (rc == 0)
        pskgw_config_free(cfg);

    pskgw_config_diag_deinit(&diag);
    free(text);
    return 0;
}
