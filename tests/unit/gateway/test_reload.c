/* The reload's tolerant load and file listing (gateway/reload.h) over real files: a broken file
 * is marked and its domain left out while the others load; no valid file, or valid files that
 * conflict, refuse; a directory is listed again (sorted, *.conf only). */
#include "common/err.h"
#include "gateway/reload.h"
#include "proc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[256];

static void setup(void)
{
    char p[400];
    FILE *f;

    cr_assert_eq(pskgw_test_tmpdir(tmp, sizeof(tmp)), 0);
    snprintf(p, sizeof(p), "%s/it.secret", tmp);
    f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("it-secret", f);
    fclose(f);
}

static void teardown(void)
{
    pskgw_test_rmtree(tmp);
}

TestSuite(reload, .init = setup, .fini = teardown, .timeout = 30);

/* Writes <tmp>/<file> for domain name (extra appended); path in out. */
static void write_domain(const char *file, const char *name, const char *extra, char *out,
                         size_t cap)
{
    FILE *f;

    snprintf(out, cap, "%s/%s", tmp, file);
    f = fopen(out, "w");
    cr_assert_not_null(f);
    fprintf(
        f,
        "domain = \"%s\";\n"
        "api = { url = \"http://127.0.0.1:1\"; key_id = \"k\"; secret_file = \"it.secret\"; };\n"
        "listeners = ( { name = \"dtls\"; proto = \"udp\"; address = \"127.0.0.1\"; port = 0; } "
        ");\n"
        "sinks = ( { type = \"file\"; path = \"%s/%s.jsonl\"; } );\n"
        "%s\n",
        name, tmp, name, extra);
    fclose(f);
}

Test(reload, broken_file_is_marked_and_the_others_load)
{
    char a[400], b[400], c[400];
    const char *files[3] = { a, b, c };
    bool broken[3];
    pskgw_config_t *cfg = NULL;

    write_domain("a.conf", "a", "", a, sizeof(a));
    write_domain("b.conf", "b", "cache = { entries = \"many\"; };", b, sizeof(b));
    write_domain("c.conf", "c", "", c, sizeof(c));
    cr_assert_eq(pskgw_reload_load(files, 3, &cfg, broken), 0);
    cr_assert(!broken[0] && broken[1] && !broken[2]);
    cr_assert_eq(cfg->ndomains, 2);
    cr_assert_not_null(pskgw_config_find_domain(cfg, "a"));
    cr_assert_null(pskgw_config_find_domain(cfg, "b"));
    cr_assert_not_null(pskgw_config_find_domain(cfg, "c"));
    pskgw_config_free(cfg);
}

Test(reload, all_valid_loads_once_with_nothing_marked)
{
    char a[400], b[400];
    const char *files[2] = { a, b };
    bool broken[2] = { true, true };
    pskgw_config_t *cfg = NULL;

    write_domain("a.conf", "a", "", a, sizeof(a));
    write_domain("b.conf", "b", "", b, sizeof(b));
    cr_assert_eq(pskgw_reload_load(files, 2, &cfg, broken), 0);
    cr_assert(!broken[0] && !broken[1]);
    cr_assert_eq(cfg->ndomains, 2);
    pskgw_config_free(cfg);
}

Test(reload, no_valid_file_refuses)
{
    char a[400], b[400];
    const char *files[2] = { a, b };
    bool broken[2];
    pskgw_config_t *cfg = NULL;

    write_domain("a.conf", "a", "e2e = 5;", a, sizeof(a));
    write_domain("b.conf", "b", "cache = { entries = \"many\"; };", b, sizeof(b));
    cr_assert_eq(pskgw_reload_load(files, 2, &cfg, broken), PSKGW_ECONFIG);
    cr_assert_null(cfg);
    cr_assert(broken[0] && broken[1]);
}

Test(reload, valid_files_that_conflict_refuse)
{
    char a[400], b[400], c[400];
    const char *files[3] = { a, b, c };
    bool broken[3];
    pskgw_config_t *cfg = NULL;

    write_domain("a.conf", "same", "", a, sizeof(a));
    write_domain("b.conf", "same", "", b, sizeof(b));
    write_domain("c.conf", "c", "cache = { entries = \"many\"; };", c, sizeof(c));
    cr_assert_eq(pskgw_reload_load(files, 3, &cfg, broken), PSKGW_ECONFIG);
    cr_assert_null(cfg);
}

Test(reload, files_then_each_directory_listed_sorted)
{
    char dir[400], p[500], x[400];
    const char *files[1] = { x };
    const char *dirs[1] = { dir };
    char **v = NULL;
    size_t n = 0;
    FILE *f;

    snprintf(x, sizeof(x), "%s/explicit.conf", tmp);
    snprintf(dir, sizeof(dir), "%s/d", tmp);
    cr_assert_eq(mkdir(dir, 0700), 0);
    const char *names[] = { "b.conf", "a.conf", ".hidden.conf", "notes.txt" };
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        f = fopen(p, "w");
        cr_assert_not_null(f);
        fclose(f);
    }
    cr_assert_eq(pskgw_reload_files(files, 1, dirs, 1, &v, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(v[0], x);
    snprintf(p, sizeof(p), "%s/a.conf", dir);
    cr_assert_str_eq(v[1], p);
    snprintf(p, sizeof(p), "%s/b.conf", dir);
    cr_assert_str_eq(v[2], p);
    pskgw_reload_files_free(v, n);
}

Test(reload, unreadable_directory_is_an_error)
{
    char dir[400];
    const char *dirs[1] = { dir };
    char **v = NULL;
    size_t n = 0;

    snprintf(dir, sizeof(dir), "%s/missing", tmp);
    cr_assert_eq(pskgw_reload_files(NULL, 0, dirs, 1, &v, &n), PSKGW_EIO);
    cr_assert_null(v);
}
