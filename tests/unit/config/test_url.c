/* config/url.c on its own: redis:// and redis+sentinel:// parsed into a pskgw_config_redis_t
 * (defaults, brackets, ports, databases; every malformed URL refused with its reason and r left
 * as it was), the http(s):// check, the loopback test, host names and IP literals. */
#include "config/url.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static pskgw_config_diag_t diag;
static cfg_ctx_t ctx;

static void setup(void)
{
    pskgw_config_diag_init(&diag);
    memset(&ctx, 0, sizeof(ctx));
    ctx.diag = &diag;
    ctx.file = "t.conf";
}

static void teardown(void)
{
    pskgw_config_diag_deinit(&diag);
}

TestSuite(config_url, .init = setup, .fini = teardown);

/* Parse url into a fresh r; the caller releases r. */
static int parse(const char *url, pskgw_config_redis_t *r)
{
    memset(r, 0, sizeof(*r));
    r->url = (char *)url;
    return cfg_parse_redis_url(&ctx, 3, "cache.redis", r);
}

static const char *last_message(void)
{
    cr_assert_gt(diag.nitems, 0);
    return diag.items[diag.nitems - 1].message;
}

Test(config_url, redis_defaults_and_parts)
{
    pskgw_config_redis_t r;

    cr_assert_eq(parse("redis://", &r), 0);
    cr_assert_str_eq(r.host, "127.0.0.1");
    cr_assert_eq(r.port, 6379);
    cr_assert_eq(r.db, 0);
    cr_assert_null(r.sentinels);
    cfg_redis_release(&r);
    cr_assert_null(r.host);

    cr_assert_eq(parse("redis://cache-1.example:6380/7", &r), 0);
    cr_assert_str_eq(r.host, "cache-1.example");
    cr_assert_eq(r.port, 6380);
    cr_assert_eq(r.db, 7);
    cfg_redis_release(&r);

    cr_assert_eq(parse("REDIS://[::1]:7000/", &r), 0);
    cr_assert_str_eq(r.host, "::1");
    cr_assert_eq(r.port, 7000);
    cr_assert_eq(r.db, 0);
    cfg_redis_release(&r);

    cr_assert_eq(parse("redis://:6390", &r), 0);
    cr_assert_str_eq(r.host, "127.0.0.1");
    cr_assert_eq(r.port, 6390);
    cfg_redis_release(&r);
    cr_assert_eq(ctx.nerrors, 0);
}

Test(config_url, sentinel_parts)
{
    pskgw_config_redis_t r;

    cr_assert_eq(parse("redis+sentinel://10.0.0.1:26379,[::1],s3:26380/pskgw/2", &r), 0);
    cr_assert_null(r.host);
    cr_assert_str_eq(r.sentinels, "10.0.0.1:26379,[::1],s3:26380");
    cr_assert_str_eq(r.master_name, "pskgw");
    cr_assert_eq(r.db, 2);
    cfg_redis_release(&r);
    cr_assert_null(r.sentinels);
    cr_assert_null(r.master_name);
    cr_assert_eq(ctx.nerrors, 0);
}

Test(config_url, malformed_redis_urls_refused_and_r_untouched)
{
    static const char *const bad[] = {
        "rediss://h:1",
        "TLS to Redis (rediss://) is not supported",
        "http://h:1",
        "must be a redis://host:port/db URL (or redis+sentinel://",
        "redis://user:pw@h:1",
        "credentials in the URL are not accepted",
        "redis://h:1/0?x=1",
        "must be a redis://host:port/db URL (no query)",
        "redis://[::1",
        "bad IPv6 address in brackets",
        "redis://[]:1",
        "bad IPv6 address in brackets",
        "redis://[nothex]:1",
        "bad IPv6 address in brackets",
        "redis://bad$host:1",
        "bad host name",
        "redis://h:",
        "bad port",
        "redis://h:0",
        "port must be between 1 and 65535",
        "redis://h:65536",
        "port must be between 1 and 65535",
        "redis://h:1x",
        "port must be between 1 and 65535",
        "redis://h:1/x",
        "database must be a number",
        "redis://h:1/1000001",
        "database must be a number between 0 and 1000000",
        "redis://[::1]x",
        "must be a redis://host:port/db URL",
        "redis+sentinel://h:1",
        "the master's name is missing",
        "redis+sentinel://h:1,/m",
        "empty sentinel after ','",
        "redis+sentinel://h:99999/m",
        "sentinel 1: must be host:port",
        "redis+sentinel://h:1/m$x",
        "bad master name",
        "redis+sentinel://h:1/m/x",
        "database must be a number between 0 and 1000000",
        "redis+sentinel://u:p@h:1/m",
        "credentials in the URL are not accepted",
    };
    char longhost[300];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i += 2) {
        pskgw_config_redis_t r;
        size_t before = ctx.nerrors;

        cr_assert_eq(parse(bad[i], &r), -1, "%s accepted", bad[i]);
        cr_assert_eq(ctx.nerrors, before + 1, "%s: one error", bad[i]);
        cr_assert(strstr(last_message(), bad[i + 1]) != NULL, "%s: got \"%s\"", bad[i],
                  last_message());
        cr_assert_null(r.host);
        cr_assert_null(r.sentinels);
        cr_assert_null(r.master_name);
        cr_assert_str_eq(diag.items[diag.nitems - 1].path, "cache.redis");
        cr_assert_eq(diag.items[diag.nitems - 1].line, 3);
    }
    memcpy(longhost, "redis://", 8);
    memset(longhost + 8, 'h', 280);
    longhost[288] = '\0';
    {
        pskgw_config_redis_t r;
        cr_assert_eq(parse(longhost, &r), -1);
        cr_assert(strstr(last_message(), "host name too long") != NULL);
    }
    cr_assert_eq(ctx.oom, false);
}

Test(config_url, a_second_parse_replaces_the_fields)
{
    pskgw_config_redis_t r;

    cr_assert_eq(parse("redis://a:1/1", &r), 0);
    r.url = "redis://b:2/2";
    cr_assert_eq(cfg_parse_redis_url(&ctx, 1, "x", &r), 0);
    cr_assert_str_eq(r.host, "b");
    cr_assert_eq(r.port, 2);
    cr_assert_eq(r.db, 2);
    r.url = "redis://c:0";
    cr_assert_eq(cfg_parse_redis_url(&ctx, 1, "x", &r), -1);
    cr_assert_str_eq(r.host, "b", "a refused URL keeps what was parsed before");
    cfg_redis_release(&r);
}

Test(config_url, http_urls_and_loopback)
{
    cr_assert_eq(cfg_check_http_url(&ctx, 1, "api.url", "https://api.example/x"), 0);
    cr_assert_eq(cfg_check_http_url(&ctx, 1, "api.url", "HTTP://127.0.0.1:8080"), 0);
    cr_assert_eq(ctx.nerrors, 0);
    static const char *const bad[] = { "ftp://h", "https://", "http:///x", "http://h x", "h" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(cfg_check_http_url(&ctx, 1, "api.url", bad[i]), -1, "%s accepted", bad[i]);
        cr_assert(strstr(last_message(), "must be an http:// or https:// URL with a host"));
    }
    cr_assert_eq(ctx.nerrors, 5);

    cr_assert(cfg_loopback_url("http://127.0.0.1:80/x"));
    cr_assert(cfg_loopback_url("http://LOCALHOST/x"));
    cr_assert(cfg_loopback_url("http://[::1]:8080"));
    cr_assert_not(cfg_loopback_url("http://10.0.0.1/"));
    cr_assert_not(cfg_loopback_url("https://api.example/127."));
}

Test(config_url, names_and_ip_literals)
{
    cr_assert(cfg_name_ok("cache-1.example_a"));
    cr_assert_not(cfg_name_ok("a b"));
    cr_assert_not(cfg_name_ok("a:b"));
    cr_assert(cfg_ip_literal("10.1.2.3"));
    cr_assert(cfg_ip_literal("fe80::1"));
    cr_assert_not(cfg_ip_literal("[::1]"));
    cr_assert_not(cfg_ip_literal("host"));
}
