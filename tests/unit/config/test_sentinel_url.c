/* redis+sentinel:// URLs for cache.redis and the redis-stream sink: the sentinel list, the
 * master's name and the database parsed (host NULL: the master is asked from the sentinels),
 * the password file kept for the master, and every malformed URL refused with its reason. */
#include "helpers.h"

TestSuite(config_sentinel, .init = cfgtest_setup, .fini = cfgtest_teardown);

#define KEK "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"

Test(config_sentinel, cache_and_sink_urls_parsed)
{
    const pskgw_config_domain_t *d;

    write_file("kek", KEK);
    write_file("redis.pw", "redis-pass\n");
    cr_assert_eq(
        load_text("acme.conf",
                  "domain = \"acme\";\n" MIN_API MIN_LISTENERS
                  "cache = { redis = \"redis+sentinel://10.0.0.1:26379,[::1]:26380,s3/pskgw/2\";\n"
                  "          redis_password_file = \"redis.pw\"; kek_file = \"./kek\"; };\n"
                  "sinks = ( { type = \"redis-stream\"; url = "
                  "\"redis+sentinel://127.0.0.1:26379/pskgw-stream\"; } );\n"),
        0);
    diag_dump();
    d = &cfg->domains[0];
    cr_assert(d->cache.has_redis);
    cr_assert_str_eq(d->cache.redis.sentinels, "10.0.0.1:26379,[::1]:26380,s3");
    cr_assert_str_eq(d->cache.redis.master_name, "pskgw");
    cr_assert_eq(d->cache.redis.db, 2);
    cr_assert_null(d->cache.redis.host);
    cr_assert_str_eq((const char *)d->cache.redis.password.data, "redis-pass");
    cr_assert_str_eq(d->sinks[0].redis_stream.redis.sentinels, "127.0.0.1:26379");
    cr_assert_str_eq(d->sinks[0].redis_stream.redis.master_name, "pskgw-stream");
    cr_assert_eq(d->sinks[0].redis_stream.redis.db, 0);
}

Test(config_sentinel, malformed_urls_refused)
{
    static const char *const bad[] = {
        "redis+sentinel://",
        "must be a redis+sentinel://",
        "redis+sentinel:///m/0",
        "must be a redis+sentinel://",
        "redis+sentinel://h:1",
        "the master's name is missing",
        "redis+sentinel://h:1/",
        "the master's name is missing",
        "redis+sentinel://h:1/bad name",
        "must be a redis+sentinel://",
        "redis+sentinel://h:1/m$x",
        "bad master name",
        "redis+sentinel://h:0/m",
        "sentinel 1: must be host:port",
        "redis+sentinel://h:1,h:99999/m",
        "sentinel 2: must be host:port",
        "redis+sentinel://h:1,,h:2/m",
        "sentinel 2: must be host:port",
        "redis+sentinel://h:1,/m",
        "empty sentinel after ','",
        "redis+sentinel://[::1/m",
        "sentinel 1: must be host:port",
        "redis+sentinel://[zz]:1/m",
        "sentinel 1: must be host:port",
        "redis+sentinel://h:x/m",
        "sentinel 1: must be host:port",
        "redis+sentinel://h:1/m/x",
        "database must be a number",
        "redis+sentinel://h:1/m/2000000",
        "database must be a number",
        "redis+sentinel://u:pw@h:1/m",
        "credentials in the URL",
        "redis+sentinel://h:1/m?x=1",
        "must be a redis+sentinel://",
    };

    write_file("kek", KEK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i += 2) {
        char text[1024];

        snprintf(text, sizeof(text),
                 MIN_CONF "cache = { redis = \"%s\"; kek_file = \"./kek\"; };\n", bad[i]);
        cr_assert_eq(load_text("acme.conf", text), PSKGW_ECONFIG, "%s", bad[i]);
        cr_assert(diag_has("acme.conf:6: cache.redis: ", bad[i + 1], NULL), "%s", bad[i]);
        pskgw_config_diag_deinit(&diag);
        pskgw_config_diag_init(&diag);
    }
    /* seventeen sentinels: one too many */
    char url[512] = "redis+sentinel://";
    for (int i = 0; i < 17; i++)
        snprintf(url + strlen(url), sizeof(url) - strlen(url), "%sh%d:1", i ? "," : "", i);
    snprintf(url + strlen(url), sizeof(url) - strlen(url), "/m");
    char text[1024];
    snprintf(text, sizeof(text),
             "domain = \"acme\";\n" MIN_API MIN_LISTENERS
             "sinks = ( { type = \"redis-stream\"; url = \"%s\"; } );\n",
             url);
    cr_assert_eq(load_text("acme.conf", text), PSKGW_ECONFIG);
    cr_assert(
        diag_has("sinks[0].url: sentinel 17: must be host:port or [IPv6]:port (at most 16)", NULL));
}
