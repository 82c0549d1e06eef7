/* Shared by the config tests: a temporary directory per test, files written into it, loading
 * them and looking for diagnostics. */
#ifndef PSKGW_TEST_CONFIG_HELPERS_H
#define PSKGW_TEST_CONFIG_HELPERS_H

#include "config/config.h"

#include "common/err.h"
#include "proc.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The secret every test domain uses unless it says otherwise. */
#define TEST_SECRET "s3cr3t-value-Zq9"

/* The minimal valid domain: the secret comes from api.secret next to the file. */
#define MIN_API                                                                  \
    "api = { url = \"https://ssapi.services.u-blox.com\"; key_id = \"KEY-1\";\n" \
    "        secret_file = \"./api.secret\"; };\n"
#define MIN_LISTENERS "listeners = ( { proto = \"udp\"; port = 5684; } );\n"
#define MIN_SINKS     "sinks = ( { type = \"file\"; path = \"-\"; } );\n"
#define MIN_CONF      "domain = \"acme\";\n" MIN_API MIN_LISTENERS MIN_SINKS

extern char test_dir[512];
extern pskgw_config_diag_t diag;
extern pskgw_config_t *cfg;

void cfgtest_setup(void);
void cfgtest_teardown(void);

/* Write text to test_dir/name (mode 0600); returns the full path (static per call site use). */
const char *write_file(const char *name, const char *text);
const char *write_bytes(const char *name, const void *data, size_t len);
/* Full path of test_dir/name in a static buffer. */
const char *tpath(const char *name);
/* Write test_dir/name and load it: the pskgw_config_load() result. */
int load_text(const char *name, const char *text);
/* Load two texts as two files. */
int load_two(const char *n1, const char *t1, const char *n2, const char *t2);
/* Does any diagnostic's text contain every one of the NULL-terminated substrings? */
bool diag_has(const char *first, ...);
/* Print the diagnostics (for failing assertions). */
void diag_dump(void);

#endif
