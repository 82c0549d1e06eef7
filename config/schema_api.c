/* The schema of a domain file, the api and cache groups (see schema.c): the security service's
 * URL, secret and paths; the PSK cache, its Redis layer and key-encryption key. */
#include "config/schema.h"
#include "config/url.h"

#include "common/codec.h"
#include "common/wipe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- small checks ---- */

static void check_readable(cfg_ctx_t *ctx, unsigned line, const char *path, const char *file)
{
    if (file != NULL && access(file, R_OK) != 0)
        cfg_error(ctx, line, path, "cannot read \"%s\": %s", file, strerror(errno));
}

/* ---- api ---- */

static const cfg_enum_t auth_header_enum[] = {
    { "raw", PSKGW_CONFIG_AUTH_RAW },
    { "bearer", PSKGW_CONFIG_AUTH_BEARER },
    { NULL, 0 },
};
static const uint64_t psk_bits_choices[] = { 128, 256, 0 };

typedef pskgw_config_api_paths_t PATHS;
static const cfg_key_t paths_keys[] = {
    K_STR("authenticate", PATHS, authenticate, 0, 1, 1024, "/v1/authenticate"),
    K_STR("get_psk", PATHS, get_psk, 0, 1, 1024, "/v1/GetPSK"),
    K_STR("e2e_params", PATHS, e2e_params, 0, 1, 1024, "/v1/GetE2EDecryptionParameters"),
};

static void paths_finish(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, size_t i,
                         void *obj)
{
    PATHS *p = obj;
    const char *names[] = { "authenticate", "get_psk", "e2e_params" };
    const char *vals[] = { p->authenticate, p->get_psk, p->e2e_params };
    char kp[CFG_PATH_MAX];
    (void)i;
    for (size_t k = 0; k < 3; k++) {
        if (vals[k] != NULL && vals[k][0] != '/') {
            cfg_path_member(kp, path, names[k]);
            cfg_error(ctx, line_of(s, names[k]), kp, "must start with '/'");
        }
    }
}

static const cfg_schema_t paths_schema = { "paths",       paths_keys,   NKEYS(paths_keys),
                                           sizeof(PATHS), paths_finish, NULL };

typedef pskgw_config_api_t API;
static const cfg_key_t api_keys[] = {
    K_STR("url", API, url, F_REQUIRED, 1, 2048, NULL),
    K_STR("key_id", API, key_id, F_REQUIRED, 1, 256, NULL),
    K_STR("secret_file", API, secret_file, 0, 1, PATH_MAX_LEN, NULL),
    K_STR("secret", API, secret.data, 0, 1, 4096, NULL),
    K_ENUM("auth_header", API, auth_header, 0, auth_header_enum, PSKGW_CONFIG_AUTH_RAW),
    K_UINT("psk_key_bits", API, psk_key_bits, 0, 128, 256, 128, .choices = psk_bits_choices),
    K_UINT("timeout_ms", API, timeout_ms, 0, 100, 600000, 3000),
    K_UINT("deadline_ms", API, deadline_ms, 0, 100, 3600000, 10000),
    K_UINT("retry_min_ms", API, retry_min_ms, 0, 1, 60000, 100),
    K_UINT("retry_max_ms", API, retry_max_ms, 0, 1, 600000, 2000),
    K_UINT("max_in_flight", API, max_in_flight, 0, 1, 100000, 64),
    K_UINT("queue_size", API, queue_size, 0, 0, 10000000, 10000),
    K_UINT("max_connections", API, max_connections, 0, 1, 100000, 0),
    K_UINT("reauth_interval_ms", API, reauth_interval_ms, 0, 1000, 3600000, 10000),
    K_STR("ca_file", API, ca_file, F_PATH, 1, PATH_MAX_LEN, NULL),
    K_GROUP("paths", API, paths, 0, NO_OFF, paths_schema),
};

static void api_finish(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, size_t i,
                       void *obj)
{
    API *a = obj;
    char kp[CFG_PATH_MAX];
    (void)i;
    if (a->url != NULL) {
        cfg_path_member(kp, path, "url");
        if (cfg_check_http_url(ctx, line_of(s, "url"), kp, a->url) == 0) {
            size_t n = strlen(a->url);
            while (n > 0 && a->url[n - 1] == '/')
                a->url[--n] = '\0';
            if (strncasecmp(a->url, "http://", 7) == 0 && !cfg_loopback_url(a->url))
                cfg_warn(ctx, line_of(s, "url"), kp,
                         "plain http sends the API secret and keys in clear; use https");
        }
    }
    const config_setting_t *inl = member(s, "secret");
    if (a->secret.data != NULL)
        a->secret.len = strlen(a->secret.data);
    if (a->secret_file != NULL && a->secret.data != NULL) {
        cfg_path_member(kp, path, "secret");
        cfg_error(ctx, line_of(s, "secret"), kp, "give secret_file or secret, not both");
    } else if (a->secret.data != NULL) {
        cfg_path_member(kp, path, "secret");
        cfg_warn(ctx, line_of(s, "secret"), kp,
                 "inline secret in the config file; prefer secret_file or a systemd credential");
    } else if (a->secret_file != NULL) {
        cfg_path_member(kp, path, "secret_file");
        (void)cfg_read_secret(ctx, line_of(s, "secret_file"), kp, a->secret_file, SECRET_MAX, true,
                              &a->secret);
    } else if (inl == NULL) {
        cfg_path_member(kp, path, "secret_file");
        cfg_error(ctx, cfg_line(s), kp, "missing required key (or an inline `secret`)");
    }
    /* libconfig's own copy of an inline secret is wiped now, not left for config_destroy. */
    if (inl != NULL && config_setting_type(inl) == CONFIG_TYPE_STRING) {
        char *v = (char *)config_setting_get_string(inl);
        if (v != NULL)
            pskgw_wipe(v, strlen(v));
    }
    if (a->ca_file != NULL) {
        cfg_path_member(kp, path, "ca_file");
        check_readable(ctx, line_of(s, "ca_file"), kp, a->ca_file);
    }
    if (a->retry_min_ms > a->retry_max_ms) {
        cfg_path_member(kp, path, "retry_min_ms");
        cfg_error(ctx, line_of(s, "retry_min_ms"), kp, "must not exceed retry_max_ms (%u > %u)",
                  (unsigned)a->retry_min_ms, (unsigned)a->retry_max_ms);
    }
    if (a->deadline_ms < a->timeout_ms) {
        cfg_path_member(kp, path, "deadline_ms");
        cfg_error(ctx, line_of(s, "deadline_ms"), kp, "must be at least timeout_ms (%u < %u)",
                  (unsigned)a->deadline_ms, (unsigned)a->timeout_ms);
    }
}

static void api_release(void *obj)
{
    API *a = obj;
    cfg_secret_free(&a->secret);
}

const cfg_schema_t cfg_api_schema = { "api",       api_keys,   NKEYS(api_keys),
                                      sizeof(API), api_finish, api_release };

/* ---- cache ---- */

typedef pskgw_config_cache_t CACHE;
static const cfg_key_t cache_keys[] = {
    K_UINT("entries", CACHE, entries, 0, 1, 100000000, 100000),
    K_UINT("ttl_s", CACHE, ttl_s, 0, 1, 31536000, 86400),
    K_UINT("negative_ttl_s", CACHE, negative_ttl_s, 0, 0, 86400, 60),
    K_UINT("negative_entries", CACHE, negative_entries, 0, 1, 100000000, 10000),
    K_UINT("stale_s", CACHE, stale_s, 0, 0, 31536000, 604800),
    K_UINT("e2e_entries", CACHE, e2e_entries, 0, 1, 100000000, 100000),
    K_UINT("e2e_ttl_s", CACHE, e2e_ttl_s, 0, 1, 31536000, 86400),
    K_UINT("max_waiters", CACHE, max_waiters, 0, 1, 1000000, 1024),
    K_STR("redis", CACHE, redis.url, 0, 1, 1024, NULL),
    K_STR("redis_password_file", CACHE, redis.password_file, 0, 1, PATH_MAX_LEN, NULL),
    K_UINT("redis_timeout_ms", CACHE, redis_timeout_ms, 0, 10, 60000, 1000),
    K_STR("kek_file", CACHE, kek_file, 0, 1, PATH_MAX_LEN, NULL),
};

static void cache_finish(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, size_t i,
                         void *obj)
{
    CACHE *c = obj;
    char kp[CFG_PATH_MAX];
    (void)i;
    if (c->redis.url != NULL) {
        cfg_path_member(kp, path, "redis");
        if (cfg_parse_redis_url(ctx, line_of(s, "redis"), kp, &c->redis) == 0)
            c->has_redis = true;
        if (c->kek_file == NULL) {
            cfg_path_member(kp, path, "kek_file");
            cfg_error(ctx, line_of(s, "redis"), kp,
                      "required with cache.redis (values in Redis are encrypted)");
        }
    } else if (c->redis.password_file != NULL) {
        cfg_path_member(kp, path, "redis_password_file");
        cfg_error(ctx, line_of(s, "redis_password_file"), kp, "only valid with cache.redis");
    }
    if (c->redis.password_file != NULL && c->redis.url != NULL) {
        cfg_path_member(kp, path, "redis_password_file");
        (void)cfg_read_secret(ctx, line_of(s, "redis_password_file"), kp, c->redis.password_file,
                              SECRET_MAX, true, &c->redis.password);
    }
    if (c->kek_file != NULL) {
        cfg_path_member(kp, path, "kek_file");
        if (cfg_read_kek(ctx, line_of(s, "kek_file"), kp, c->kek_file, c->kek) == 0)
            c->has_kek = true;
        if (c->redis.url == NULL)
            cfg_warn(ctx, line_of(s, "kek_file"), kp, "unused without cache.redis");
    }
}

static void cache_release(void *obj)
{
    CACHE *c = obj;
    cfg_redis_release(&c->redis);
    pskgw_wipe(c->kek, sizeof(c->kek));
    c->has_kek = false;
}

const cfg_schema_t cfg_cache_schema = { "cache",       cache_keys,   NKEYS(cache_keys),
                                        sizeof(CACHE), cache_finish, cache_release };

/* ---- resumption ---- */

typedef pskgw_config_resumption_t RES;
static const cfg_key_t resumption_keys[] = {
    K_STR("ticket_key_file", RES, ticket_key_file, F_REQUIRED, 1, PATH_MAX_LEN, NULL),
    K_UINT("ticket_lifetime_s", RES, ticket_lifetime_s, 0, 60, 604800, 86400),
    K_UINT("session_cache", RES, session_cache, 0, 0, 1000000, 10000),
};

/* One secret per line (64 hex characters), current first; '#' and blank lines skipped. */
static void read_ticket_secrets(cfg_ctx_t *ctx, unsigned line, const char *kp, RES *r)
{
    pskgw_config_secret_t s = { 0 };
    const char *p, *end;
    size_t n = 0;

    if (cfg_read_secret(ctx, line, kp, r->ticket_key_file, 4096, false, &s) < 0)
        return;
    for (p = s.data, end = s.data + s.len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl != NULL ? nl : end) - p);

        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len > 0 && p[0] != '#') {
            if (r->nsecrets == PSKGW_CONFIG_TICKET_SECRETS) {
                cfg_error(ctx, line, kp, "at most %d secrets (current first, then previous)",
                          PSKGW_CONFIG_TICKET_SECRETS);
                break;
            }
            if (len != 64 || pskgw_hex_decode(p, 64, r->secrets[r->nsecrets], 32, &n) != 0 ||
                n != 32) {
                cfg_error(ctx, line, kp, "each line must be a secret of 64 hex characters");
                break;
            }
            r->nsecrets++;
        }
        p = nl != NULL ? nl + 1 : end;
    }
    if (r->nsecrets == 0 && s.data != NULL && p >= end)
        cfg_error(ctx, line, kp, "no secret in the file");
    cfg_secret_free(&s);
}

static void resumption_finish(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, size_t i,
                              void *obj)
{
    RES *r = obj;
    char kp[CFG_PATH_MAX];
    (void)i;
    if (r->ticket_key_file != NULL) {
        cfg_path_member(kp, path, "ticket_key_file");
        read_ticket_secrets(ctx, line_of(s, "ticket_key_file"), kp, r);
    }
}

static void resumption_release(void *obj)
{
    RES *r = obj;
    pskgw_wipe(r->secrets, sizeof(r->secrets));
    r->nsecrets = 0;
}

const cfg_schema_t cfg_resumption_schema = { "resumption",           resumption_keys,
                                             NKEYS(resumption_keys), sizeof(RES),
                                             resumption_finish,      resumption_release };

/* ---- sessions ---- */

typedef pskgw_config_sessions_t SESS;
static const cfg_key_t sessions_keys[] = {
    K_STR("redis", SESS, redis.url, F_REQUIRED, 1, 1024, NULL),
    K_STR("redis_password_file", SESS, redis.password_file, 0, 1, PATH_MAX_LEN, NULL),
    K_UINT("redis_timeout_ms", SESS, redis_timeout_ms, 0, 10, 60000, 1000),
    K_STR("node_id", SESS, node_id, 0, 1, 128, NULL),
    K_UINT("lease_ms", SESS, lease_ms, 0, 100, 86400000, 30000),
    K_UINT("park_per_source", SESS, park_per_source, 0, 1, 1000, 4),
    K_UINT("park_total", SESS, park_total, 0, 1, 100000, 1024),
};

static void sessions_finish(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, size_t i,
                            void *obj)
{
    SESS *c = obj;
    char kp[CFG_PATH_MAX];
    (void)i;
    if (c->redis.url != NULL) {
        cfg_path_member(kp, path, "redis");
        (void)cfg_parse_redis_url(ctx, line_of(s, "redis"), kp, &c->redis);
    }
    if (c->redis.password_file != NULL && c->redis.url != NULL) {
        cfg_path_member(kp, path, "redis_password_file");
        (void)cfg_read_secret(ctx, line_of(s, "redis_password_file"), kp, c->redis.password_file,
                              SECRET_MAX, true, &c->redis.password);
    }
}

static void sessions_release(void *obj)
{
    SESS *c = obj;
    cfg_redis_release(&c->redis);
}

const cfg_schema_t cfg_sessions_schema = { "sessions",   sessions_keys,   NKEYS(sessions_keys),
                                           sizeof(SESS), sessions_finish, sessions_release };
