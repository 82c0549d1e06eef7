/* Every examples/ *.conf file loads without errors or warnings (systemd credentials they name are
 * provided in a temporary $CREDENTIALS_DIRECTORY). */
#include "helpers.h"

#include <dirent.h>

TestSuite(config_examples, .init = cfgtest_setup, .fini = cfgtest_teardown);

/* The credentials the examples name (see their headers). */
static void make_credentials(void)
{
    char creds[600];
    snprintf(creds, sizeof(creds), "%s/creds", test_dir);
    cr_assert_eq(mkdir(creds, 0700), 0);
    write_file("creds/acme-api-secret", "acme-secret\n");
    write_file("creds/acme-kek",
               "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
    write_file("creds/fleet-api-secret", "fleet-secret\n");
    write_file("creds/fleet-http-headers", "Authorization: Bearer token\n");
    write_file("creds/fleet-mqtt-password", "mqtt-secret\n");
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
}

static size_t example_paths(char paths[][1024], size_t cap)
{
    const char *dir = getenv("PSKGW_SOURCE_DIR");
    cr_assert_not_null(dir, "PSKGW_SOURCE_DIR is set by CTest");
    char ex[1024];
    snprintf(ex, sizeof(ex), "%s/examples", dir);
    DIR *d = opendir(ex);
    cr_assert_not_null(d, "%s", ex);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".conf") == 0 && n < cap) {
            int w = snprintf(paths[n], 1024, "%s/%s", ex, e->d_name);
            cr_assert(w > 0 && w < 1024);
            n++;
        }
    }
    closedir(d);
    return n;
}

Test(config_examples, every_example_loads)
{
    char paths[32][1024];
    make_credentials();
    size_t n = example_paths(paths, 32);
    cr_assert_geq(n, 3, "demo.conf, production-redis.conf, multi-sink.conf at least");
    for (size_t i = 0; i < n; i++) {
        const char *p[1] = { paths[i] };
        int rc = pskgw_config_load(p, 1, &cfg, &diag);
        if (rc != 0 || diag.nitems != 0)
            diag_dump();
        cr_assert_eq(rc, 0, "%s", paths[i]);
        cr_assert_eq(diag.nitems, 0, "%s: no warning expected", paths[i]);
        pskgw_config_free(cfg);
        cfg = NULL;
    }
}

Test(config_examples, demo_is_what_the_demo_needs)
{
    char p[1024];
    const char *dir = getenv("PSKGW_SOURCE_DIR");
    cr_assert_not_null(dir);
    snprintf(p, sizeof(p), "%s/examples/demo.conf", dir);
    const char *paths[1] = { p };
    cr_assert_eq(pskgw_config_load(paths, 1, &cfg, &diag), 0);
    const pskgw_config_domain_t *d = &cfg->domains[0];
    cr_assert_str_eq(d->name, "demo");
    cr_assert_eq(strncmp(d->api.url, "http://127.0.0.1:", 17), 0);
    cr_assert_str_eq(d->api.key_id, "demo-key");
    cr_assert_str_eq(d->api.secret.data, "demo-secret");
    cr_assert_eq(d->cache.has_redis, false);
    cr_assert_eq(d->e2e, PSKGW_CONFIG_E2E_AUTO);
    cr_assert_eq(d->nsinks, 1);
    cr_assert_eq(d->sinks[0].type, PSKGW_CONFIG_SINK_FILE);
    cr_assert_str_eq(d->sinks[0].file.path, "-");
}

Test(config_examples, production_and_multi_sink_together)
{
    char p1[1024], p2[1024];
    const char *dir = getenv("PSKGW_SOURCE_DIR");
    cr_assert_not_null(dir);
    make_credentials();
    snprintf(p1, sizeof(p1), "%s/examples/production-redis.conf", dir);
    snprintf(p2, sizeof(p2), "%s/examples/multi-sink.conf", dir);
    const char *paths[2] = { p1, p2 };
    int rc = pskgw_config_load(paths, 2, &cfg, &diag);
    if (rc != 0)
        diag_dump();
    cr_assert_eq(rc, 0);
    cr_assert_eq(cfg->ndomains, 2);
    cr_assert(cfg->domains[0].cache.has_redis);
    cr_assert(cfg->domains[0].cache.has_kek);
    cr_assert_eq(cfg->domains[1].nsinks, 5);
    /* both domains spool into one directory (their spool file names differ) */
    cr_assert_str_eq(cfg->domains[0].sinks[0].spool.path, "/var/lib/pskgw/spool");
    cr_assert_str_eq(cfg->domains[1].sinks[1].spool.path, "/var/lib/pskgw/spool");
    cr_assert_str_eq(cfg->domains[1].sinks[1].http.secret_headers[0].data,
                     "Authorization: Bearer token");
    cr_assert(cfg->has_admin);
}
