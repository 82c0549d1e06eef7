/* The schema of a domain file: one table row per key (type, range, default, where it goes), and
 * the cross-field checks that a table cannot express. docs/CONFIG.md mirrors this file: change
 * both together. */
#include "config/internal.h"
#include "config/url.h"

#include "common/wipe.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static_assert(sizeof(pskgw_config_proto_t) == sizeof(int), "enums are stored as int");
static_assert(sizeof(pskgw_log_level_t) == sizeof(int), "enums are stored as int");
static_assert(sizeof(bool) == 1, "bools are stored as bool");

#define FIELD_SIZE(T, f) sizeof(((T *)0)->f)

#define K_STR(n, T, f, fl, mn, mx, d, ...)                                                    \
    {                                                                                         \
        .name = (n), .type = KT_STR, .flags = (fl), .min = (mn), .max = (mx), .def_str = (d), \
        .off = offsetof(T, f), .present_off = NO_OFF, __VA_ARGS__                             \
    }
#define K_UINT(n, T, f, fl, mn, mx, d, ...)                                                  \
    {                                                                                        \
        .name = (n), .type = KT_UINT, .flags = (fl), .min = (mn), .max = (mx), .def = (d),   \
        .off = offsetof(T, f), .width = FIELD_SIZE(T, f), .present_off = NO_OFF, __VA_ARGS__ \
    }
#define K_BOOL(n, T, f, d, ...)                                                                 \
    {                                                                                           \
        .name = (n), .type = KT_BOOL, .def = (d), .off = offsetof(T, f), .present_off = NO_OFF, \
        __VA_ARGS__                                                                             \
    }
#define K_ENUM(n, T, f, fl, e, d, ...)                                                       \
    {                                                                                        \
        .name = (n), .type = KT_ENUM, .flags = (fl), .enums = (e), .def = (d),               \
        .off = offsetof(T, f), .width = FIELD_SIZE(T, f), .present_off = NO_OFF, __VA_ARGS__ \
    }
#define K_GROUP(n, T, f, fl, present, sch)                                   \
    {                                                                        \
        .name = (n), .type = KT_GROUP, .flags = (fl), .off = offsetof(T, f), \
        .present_off = (present), .sub = &(sch)                              \
    }
#define K_GLIST(n, T, f, cnt, fl, mn, mx, sch)                                                     \
    {                                                                                              \
        .name = (n), .type = KT_GROUPLIST, .flags = (fl), .min = (mn), .max = (mx),                \
        .off = offsetof(T, f), .count_off = offsetof(T, cnt), .present_off = NO_OFF, .sub = &(sch) \
    }
#define K_SLIST(n, T, f, cnt, mn, mx, ...)                                                \
    {                                                                                     \
        .name = (n), .type = KT_STRLIST, .min = (mn), .max = (mx), .off = offsetof(T, f), \
        .count_off = offsetof(T, cnt), .present_off = NO_OFF, __VA_ARGS__                 \
    }
#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))
#define W(v)     (1u << (v))

#define PATH_MAX_LEN 4096
#define SECRET_MAX   (64 * 1024)

/* ---- small checks ---- */

static const config_setting_t *member(const config_setting_t *s, const char *name)
{
    return config_setting_get_member(s, name);
}

static unsigned line_of(const config_setting_t *s, const char *name)
{
    const config_setting_t *m = member(s, name);
    return cfg_line(m != NULL ? m : s);
}

static void check_readable(cfg_ctx_t *ctx, unsigned line, const char *path, const char *file)
{
    if (file != NULL && access(file, R_OK) != 0)
        cfg_error(ctx, line, path, "cannot read \"%s\": %s", file, strerror(errno));
}

/* A topic/stream template: {domain}, {rot_public_uid}, {psk_identity}; mqtt: no wildcards. */
static void check_template(cfg_ctx_t *ctx, unsigned line, const char *path, const char *t,
                           bool mqtt)
{
    static const char *const names[] = { "{domain}", "{rot_public_uid}", "{psk_identity}" };
    for (const char *p = t; *p != '\0'; p++) {
        if (*p == '{') {
            bool ok = false;
            for (size_t i = 0; i < 3; i++) {
                size_t n = strlen(names[i]);
                if (strncmp(p, names[i], n) == 0) {
                    ok = true;
                    p += n - 1;
                    break;
                }
            }
            if (!ok) {
                cfg_error(ctx, line, path,
                          "unknown placeholder (use {domain}, {rot_public_uid}, {psk_identity})");
                return;
            }
        } else if (*p == '}') {
            cfg_error(ctx, line, path, "unbalanced '}'");
            return;
        } else if (mqtt && (*p == '+' || *p == '#')) {
            cfg_error(ctx, line, path, "must not contain the wildcards '+' or '#'");
            return;
        }
    }
}

/* "Name: value" with an RFC 9110 token name; framing headers refused. */
static const char *header_problem(const char *h)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    const char *colon = strchr(h, ':');
    if (colon == NULL || colon == h)
        return "must be \"Name: value\"";
    for (const char *p = h; p < colon; p++) {
        if (!isalnum((unsigned char)*p) && strchr(tchar, *p) == NULL)
            return "header name must be an HTTP token";
    }
    size_t n = (size_t)(colon - h);
    if ((n == 14 && strncasecmp(h, "Content-Length", n) == 0) ||
        (n == 17 && strncasecmp(h, "Transfer-Encoding", n) == 0) ||
        (n == 4 && strncasecmp(h, "Host", n) == 0))
        return "this header is set by pskgw";
    return NULL;
}

/* "key=value" librdkafka property; pskgw's delivery guarantees are not negotiable. */
static const char *property_problem(const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv || eq[1] == '\0')
        return "must be \"key=value\"";
    for (const char *p = kv; p < eq; p++) {
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '.' && *p != '_')
            return "property name must be lower-case letters, digits, '.' and '_'";
    }
    size_t n = (size_t)(eq - kv);
    static const char *const fixed[] = { "acks", "request.required.acks", "enable.idempotence",
                                         "bootstrap.servers", "metadata.broker.list" };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (strlen(fixed[i]) == n && strncmp(kv, fixed[i], n) == 0)
            return "set by pskgw (at-least-once delivery needs acks=all and idempotence; "
                   "brokers come from `brokers`)";
    }
    return NULL;
}

static bool secretish_property(const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t n = eq != NULL ? (size_t)(eq - kv) : strlen(kv);
    static const char *const words[] = { "password", "secret", "key.pem", "token" };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t w = strlen(words[i]);
        for (size_t j = 0; j + w <= n; j++) {
            if (strncmp(kv + j, words[i], w) == 0)
                return true;
        }
    }
    return false;
}

/* Read a secret file of lines, each checked by problem(); into *arr / *n. */
static void read_secret_lines(cfg_ctx_t *ctx, unsigned line, const char *path, const char *name,
                              const char *(*problem)(const char *), pskgw_config_secret_t **arr,
                              size_t *n)
{
    pskgw_config_secret_t all = { 0 };
    if (cfg_read_secret(ctx, line, path, name, SECRET_MAX, true, &all) < 0)
        return;
    size_t count = 1;
    for (size_t i = 0; i < all.len; i++)
        count += all.data[i] == '\n';
    pskgw_config_secret_t *out = calloc(count, sizeof(*out));
    size_t used = 0;
    if (out == NULL) {
        ctx->oom = true;
        goto done;
    }
    char *p = all.data;
    for (size_t ln = 1; p != NULL; ln++) {
        char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len > 0) {
            char *l = malloc(len + 1);
            if (l == NULL) {
                ctx->oom = true;
                break;
            }
            memcpy(l, p, len);
            l[len] = '\0';
            const char *why = problem(l);
            bool ctrl = false;
            for (size_t i = 0; i < len; i++)
                ctrl = ctrl || (unsigned char)l[i] < 0x20 || l[i] == 0x7f;
            if (ctrl)
                why = "contains control characters";
            out[used].data = l;
            out[used].len = len;
            used++;
            if (why != NULL)
                cfg_error(ctx, line, path, "line %zu of the secret file: %s", ln, why);
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    *arr = out;
    *n = used;
done:
    cfg_secret_free(&all);
}

static void free_secret_lines(pskgw_config_secret_t **arr, size_t *n)
{
    for (size_t i = 0; *arr != NULL && i < *n; i++)
        cfg_secret_free(&(*arr)[i]);
    free(*arr);
    *arr = NULL;
    *n = 0;
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

static const cfg_schema_t api_schema = { "api",       api_keys,   NKEYS(api_keys),
                                         sizeof(API), api_finish, api_release };

/* ---- listeners ---- */

static const cfg_enum_t proto_enum[] = {
    { "udp", PSKGW_CONFIG_PROTO_UDP },
    { "tcp", PSKGW_CONFIG_PROTO_TCP },
    { NULL, 0 },
};
static const cfg_enum_t framing_enum[] = {
    { "len16", PSKGW_CONFIG_FRAMING_LEN16 },
    { "newline", PSKGW_CONFIG_FRAMING_NEWLINE },
    { "record", PSKGW_CONFIG_FRAMING_RECORD },
    { NULL, 0 },
};
static const cfg_enum_t cid_enum[] = {
    { "off", PSKGW_CONFIG_CID_OFF },
    { "on", PSKGW_CONFIG_CID_ON },
    { NULL, 0 },
};
static const cfg_enum_t ack_enum[] = {
    { "none", PSKGW_CONFIG_ACK_NONE },
    { "accepted", PSKGW_CONFIG_ACK_ACCEPTED },
    { NULL, 0 },
};

typedef pskgw_config_listener_t LIS;
static const cfg_key_t listener_keys[] = {
    K_ENUM("proto", LIS, proto, F_REQUIRED | F_DISCR, proto_enum, PSKGW_CONFIG_PROTO_UDP),
    K_STR("name", LIS, name, 0, 1, 64, NULL),
    K_STR("address", LIS, address, 0, 1, 64, "0.0.0.0"),
    K_UINT("port", LIS, port, F_REQUIRED, 0, 65535, 0),
    K_ENUM("framing", LIS, framing, 0, framing_enum, PSKGW_CONFIG_FRAMING_LEN16,
           .when = W(PSKGW_CONFIG_PROTO_TCP)),
    K_ENUM("ack", LIS, ack, 0, ack_enum, PSKGW_CONFIG_ACK_NONE),
    K_UINT("max_message_bytes", LIS, max_message_bytes, 0, 1, 1048576, 0),
    K_UINT("cookie_rotate_s", LIS, cookie_rotate_s, 0, 5, 3600, 30,
           .when = W(PSKGW_CONFIG_PROTO_UDP)),
    /* DTLS 1.2 Connection ID (RFC 9146): docs/CONFIG.md */
    K_ENUM("cid", LIS, cid, 0, cid_enum, PSKGW_CONFIG_CID_ON, .when = W(PSKGW_CONFIG_PROTO_UDP)),
    K_UINT("cid_length", LIS, cid_length, 0, 4, 16, 8, .when = W(PSKGW_CONFIG_PROTO_UDP)),
};

static void listener_finish(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, size_t i,
                            void *obj)
{
    LIS *l = obj;
    char kp[CFG_PATH_MAX];
    (void)i;
    l->line = cfg_line(s);
    if (l->address != NULL && !cfg_ip_literal(l->address)) {
        cfg_path_member(kp, path, "address");
        cfg_error(ctx, line_of(s, "address"), kp,
                  "must be a numeric IPv4 or IPv6 address (\"0.0.0.0\", \"::\", \"127.0.0.1\")");
    }
    if (l->name != NULL && !cfg_name_ok(l->name)) {
        cfg_path_member(kp, path, "name");
        cfg_error(ctx, line_of(s, "name"), kp, "may hold only letters, digits, '-', '_', '.'");
    }
}

static const cfg_schema_t listener_schema = { "listener",  listener_keys,   NKEYS(listener_keys),
                                              sizeof(LIS), listener_finish, NULL };

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

static const cfg_schema_t cache_schema = { "cache",       cache_keys,   NKEYS(cache_keys),
                                           sizeof(CACHE), cache_finish, cache_release };

/* ---- sinks ---- */

static const cfg_enum_t sink_type_enum[] = {
    { "file", PSKGW_CONFIG_SINK_FILE },   { "http", PSKGW_CONFIG_SINK_HTTP },
    { "mqtt", PSKGW_CONFIG_SINK_MQTT },   { "redis-stream", PSKGW_CONFIG_SINK_REDIS_STREAM },
    { "kafka", PSKGW_CONFIG_SINK_KAFKA }, { NULL, 0 },
};
static const cfg_enum_t fsync_enum[] = {
    { "always", PSKGW_CONFIG_FSYNC_ALWAYS },
    { "batch", PSKGW_CONFIG_FSYNC_BATCH },
    { "never", PSKGW_CONFIG_FSYNC_NEVER },
    { NULL, 0 },
};
static const cfg_enum_t payload_enum[] = {
    { "base64", PSKGW_CONFIG_PAYLOAD_BASE64 },
    { "raw", PSKGW_CONFIG_PAYLOAD_RAW },
    { NULL, 0 },
};

typedef pskgw_config_spool_t SPOOL;
static const cfg_key_t spool_keys[] = {
    K_STR("path", SPOOL, path, F_REQUIRED | F_PATH, 1, PATH_MAX_LEN, NULL),
    K_UINT("max_bytes", SPOOL, max_bytes, 0, 65536, (uint64_t)1 << 50, (uint64_t)1 << 30),
    K_ENUM("fsync", SPOOL, fsync, 0, fsync_enum, PSKGW_CONFIG_FSYNC_BATCH),
};
static const cfg_schema_t spool_schema = { "spool",       spool_keys, NKEYS(spool_keys),
                                           sizeof(SPOOL), NULL,       NULL };

#define S_FILE    W(PSKGW_CONFIG_SINK_FILE)
#define S_HTTP    W(PSKGW_CONFIG_SINK_HTTP)
#define S_MQTT    W(PSKGW_CONFIG_SINK_MQTT)
#define S_RSTREAM W(PSKGW_CONFIG_SINK_REDIS_STREAM)
#define S_KAFKA   W(PSKGW_CONFIG_SINK_KAFKA)

typedef pskgw_config_sink_t SINK;
static const cfg_key_t sink_keys[] = {
    K_ENUM("type", SINK, type, F_REQUIRED | F_DISCR, sink_type_enum, 0),
    K_STR("name", SINK, name, 0, 1, 64, NULL),
    K_UINT("queue_size", SINK, queue_size, 0, 1, 10000000, 10000),
    K_UINT("in_flight", SINK, in_flight, 0, 1, 100000, 64),
    K_UINT("retry_max_ms", SINK, retry_max_ms, 0, 1, 3600000, 30000),
    K_GROUP("spool", SINK, spool, 0, offsetof(SINK, has_spool), spool_schema),
    K_ENUM("payload", SINK, payload, 0, payload_enum, PSKGW_CONFIG_PAYLOAD_BASE64),
    /* file */
    K_STR("path", SINK, file.path, F_REQUIRED | F_PATH, 1, PATH_MAX_LEN, NULL, .when = S_FILE),
    /* http */
    K_STR("url", SINK, http.url, F_REQUIRED, 1, 2048, NULL, .when = S_HTTP),
    K_SLIST("headers", SINK, http.headers, http.nheaders, 0, 64, .when = S_HTTP),
    K_STR("headers_file", SINK, http.headers_file, 0, 1, PATH_MAX_LEN, NULL, .when = S_HTTP),
    K_UINT("timeout_ms", SINK, http.timeout_ms, 0, 100, 600000, 5000, .when = S_HTTP),
    K_STR("dead_letter_path", SINK, http.dead_letter_path, F_PATH, 1, PATH_MAX_LEN, NULL,
          .when = S_HTTP),
    /* mqtt */
    K_STR("host", SINK, mqtt.host, F_REQUIRED, 1, 255, NULL, .when = S_MQTT),
    K_UINT("port", SINK, mqtt.port, 0, 1, 65535, 1883, .when = S_MQTT),
    K_STR("topic", SINK, mqtt.topic, 0, 1, 1024, "pskgw/{domain}/{rot_public_uid}", .when = S_MQTT),
    K_UINT("qos", SINK, mqtt.qos, 0, 0, 2, 1, .when = S_MQTT),
    K_STR("client_id", SINK, mqtt.client_id, 0, 1, 128, NULL, .when = S_MQTT),
    K_STR("username", SINK, mqtt.username, 0, 1, 256, NULL, .when = S_MQTT),
    K_STR("password_file", SINK, mqtt.password_file, 0, 1, PATH_MAX_LEN, NULL, .when = S_MQTT),
    K_UINT("keepalive_s", SINK, mqtt.keepalive_s, 0, 5, 65535, 60, .when = S_MQTT),
    /* redis-stream */
    K_STR("url", SINK, redis_stream.redis.url, F_REQUIRED, 1, 1024, NULL, .when = S_RSTREAM),
    K_STR("password_file", SINK, redis_stream.redis.password_file, 0, 1, PATH_MAX_LEN, NULL,
          .when = S_RSTREAM),
    K_STR("stream", SINK, redis_stream.stream, 0, 1, 256, "pskgw:{domain}", .when = S_RSTREAM),
    K_UINT("maxlen", SINK, redis_stream.maxlen, 0, 0, 1000000000000ull, 1000000, .when = S_RSTREAM),
    /* kafka */
    K_STR("brokers", SINK, kafka.brokers, F_REQUIRED, 1, 4096, NULL, .when = S_KAFKA),
    K_STR("topic", SINK, kafka.topic, F_REQUIRED, 1, 249, NULL, .when = S_KAFKA),
    K_SLIST("properties", SINK, kafka.properties, kafka.nproperties, 0, 64, .when = S_KAFKA),
    K_STR("properties_file", SINK, kafka.properties_file, 0, 1, PATH_MAX_LEN, NULL,
          .when = S_KAFKA),
};

static void sink_http(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, SINK *k)
{
    char kp[CFG_PATH_MAX];
    if (k->http.url != NULL) {
        cfg_path_member(kp, path, "url");
        (void)cfg_check_http_url(ctx, line_of(s, "url"), kp, k->http.url);
    }
    for (size_t i = 0; i < k->http.nheaders; i++) {
        const char *why = k->http.headers[i] != NULL ? header_problem(k->http.headers[i]) : NULL;
        if (why != NULL) {
            char hp[CFG_PATH_MAX];
            cfg_path_member(kp, path, "headers");
            cfg_path_index(hp, kp, i);
            cfg_error(ctx, line_of(s, "headers"), hp, "%s", why);
        }
    }
    if (k->http.headers_file != NULL) {
        cfg_path_member(kp, path, "headers_file");
        read_secret_lines(ctx, line_of(s, "headers_file"), kp, k->http.headers_file, header_problem,
                          &k->http.secret_headers, &k->http.nsecret_headers);
    }
}

static void sink_mqtt(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, SINK *k)
{
    char kp[CFG_PATH_MAX];
    if (k->mqtt.host != NULL && !cfg_name_ok(k->mqtt.host) && !cfg_ip_literal(k->mqtt.host)) {
        cfg_path_member(kp, path, "host");
        cfg_error(ctx, line_of(s, "host"), kp, "must be a host name or an IP address");
    }
    if (k->mqtt.topic != NULL) {
        cfg_path_member(kp, path, "topic");
        check_template(ctx, line_of(s, "topic"), kp, k->mqtt.topic, true);
    }
    if (k->mqtt.password_file != NULL) {
        cfg_path_member(kp, path, "password_file");
        if (k->mqtt.username == NULL)
            cfg_error(ctx, line_of(s, "password_file"), kp, "needs a username");
        (void)cfg_read_secret(ctx, line_of(s, "password_file"), kp, k->mqtt.password_file,
                              SECRET_MAX, true, &k->mqtt.password);
    }
}

static void sink_redis_stream(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, SINK *k)
{
    char kp[CFG_PATH_MAX];
    pskgw_config_redis_t *r = &k->redis_stream.redis;
    if (r->url != NULL) {
        cfg_path_member(kp, path, "url");
        (void)cfg_parse_redis_url(ctx, line_of(s, "url"), kp, r);
    }
    if (r->password_file != NULL) {
        cfg_path_member(kp, path, "password_file");
        (void)cfg_read_secret(ctx, line_of(s, "password_file"), kp, r->password_file, SECRET_MAX,
                              true, &r->password);
    }
    if (k->redis_stream.stream != NULL) {
        cfg_path_member(kp, path, "stream");
        check_template(ctx, line_of(s, "stream"), kp, k->redis_stream.stream, false);
    }
}

static void sink_kafka(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, SINK *k)
{
    char kp[CFG_PATH_MAX];
    if (k->kafka.topic != NULL) {
        for (const char *p = k->kafka.topic; *p != '\0'; p++) {
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') {
                cfg_path_member(kp, path, "topic");
                cfg_error(ctx, line_of(s, "topic"), kp,
                          "may hold only letters, digits, '.', '_' and '-'");
                break;
            }
        }
    }
    if (k->kafka.brokers != NULL) {
        const char *b = k->kafka.brokers;
        bool bad = b[0] == ',' || b[strlen(b) - 1] == ',' || strstr(b, ",,") != NULL ||
                   strchr(b, ' ') != NULL;
        if (bad) {
            cfg_path_member(kp, path, "brokers");
            cfg_error(ctx, line_of(s, "brokers"), kp,
                      "must be \"host:port,host:port\" without spaces or empty entries");
        }
    }
    for (size_t i = 0; i < k->kafka.nproperties; i++) {
        const char *kv = k->kafka.properties[i];
        if (kv == NULL)
            continue;
        char hp[CFG_PATH_MAX];
        cfg_path_member(kp, path, "properties");
        cfg_path_index(hp, kp, i);
        const char *why = property_problem(kv);
        if (why != NULL)
            cfg_error(ctx, line_of(s, "properties"), hp, "%s", why);
        else if (secretish_property(kv))
            cfg_warn(ctx, line_of(s, "properties"), hp,
                     "looks like a secret in the config file; prefer properties_file");
    }
    if (k->kafka.properties_file != NULL) {
        cfg_path_member(kp, path, "properties_file");
        read_secret_lines(ctx, line_of(s, "properties_file"), kp, k->kafka.properties_file,
                          property_problem, &k->kafka.secret_properties,
                          &k->kafka.nsecret_properties);
    }
}

static void sink_finish(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, size_t i,
                        void *obj)
{
    SINK *k = obj;
    char kp[CFG_PATH_MAX];
    (void)i;
    k->line = cfg_line(s);
    if (k->name != NULL && !cfg_name_ok(k->name)) {
        cfg_path_member(kp, path, "name");
        cfg_error(ctx, line_of(s, "name"), kp, "may hold only letters, digits, '-', '_', '.'");
    }
    if (k->payload == PSKGW_CONFIG_PAYLOAD_RAW &&
        (k->type == PSKGW_CONFIG_SINK_FILE || k->type == PSKGW_CONFIG_SINK_HTTP)) {
        cfg_path_member(kp, path, "payload");
        cfg_error(ctx, line_of(s, "payload"), kp,
                  "\"raw\" is only valid for mqtt, redis-stream and kafka sinks");
    }
    switch (k->type) {
    case PSKGW_CONFIG_SINK_FILE:
        break;
    case PSKGW_CONFIG_SINK_HTTP:
        sink_http(ctx, s, path, k);
        break;
    case PSKGW_CONFIG_SINK_MQTT:
        sink_mqtt(ctx, s, path, k);
        break;
    case PSKGW_CONFIG_SINK_REDIS_STREAM:
        sink_redis_stream(ctx, s, path, k);
        break;
    case PSKGW_CONFIG_SINK_KAFKA:
        sink_kafka(ctx, s, path, k);
        break;
    }
}

static void sink_release(void *obj)
{
    SINK *k = obj;
    free_secret_lines(&k->http.secret_headers, &k->http.nsecret_headers);
    cfg_secret_free(&k->mqtt.password);
    cfg_redis_release(&k->redis_stream.redis);
    free_secret_lines(&k->kafka.secret_properties, &k->kafka.nsecret_properties);
}

static const cfg_schema_t sink_schema = { "sink",       sink_keys,   NKEYS(sink_keys),
                                          sizeof(SINK), sink_finish, sink_release };

/* ---- limits, admin, log ---- */

typedef pskgw_config_limits_t LIM;
static const cfg_key_t limits_keys[] = {
    K_UINT("max_sessions", LIM, max_sessions, 0, 1, 10000000, 100000),
    K_UINT("max_pending_handshakes", LIM, max_pending_handshakes, 0, 1, 1000000, 5000),
    K_UINT("handshake_timeout_ms", LIM, handshake_timeout_ms, 0, 100, 600000, 30000),
    K_UINT("idle_timeout_s", LIM, idle_timeout_s, 0, 1, 604800, 600),
    K_UINT("per_ip_handshakes_per_s", LIM, per_ip_handshakes_per_s, 0, 0, 1000000, 1000),
    K_UINT("per_ip_handshake_burst", LIM, per_ip_handshake_burst, 0, 1, 1000000, 5000),
    K_UINT("identity_fail_max", LIM, identity_fail_max, 0, 0, 1000, 5),
    K_UINT("source_fail_max", LIM, source_fail_max, 0, 0, 1000000, 50),
    K_UINT("identity_block_s", LIM, identity_block_s, 0, 1, 86400, 300),
    K_UINT("half_open_per_source", LIM, half_open_per_source, 0, 0, 65535, 1000),
    K_UINT("half_open_timeout_ms", LIM, half_open_timeout_ms, 0, 100, 600000, 10000),
    K_UINT("ipv6_source_prefix", LIM, ipv6_source_prefix, 0, 1, 128, 64),
    K_UINT("max_message_bytes", LIM, max_message_bytes, 0, 1, 1048576, 16384),
    K_UINT("max_identity_len", LIM, max_identity_len, 0, 1, 128, 64),
    K_UINT("max_parked_bytes", LIM, max_parked_bytes, 0, 256, 1048576, 8192),
    K_UINT("lookups_in_flight", LIM, lookups_in_flight, 0, 0, 100000, 0),
    K_UINT("lookups_per_source", LIM, lookups_per_source, 0, 1, 100000, 8),
    K_UINT("lookup_queue_per_source", LIM, lookup_queue_per_source, 0, 0, 100000, 256),
    K_UINT("lookups_per_source_per_s", LIM, lookups_per_source_per_s, 0, 0, 1000000, 100),
    K_UINT("lookup_burst", LIM, lookup_burst, 0, 1, 1000000, 200),
    K_UINT("good_source_share_pct", LIM, good_source_share_pct, 0, 0, 90, 25),
    K_UINT("good_source_window_s", LIM, good_source_window_s, 0, 0, 604800, 3600),
};
static const cfg_schema_t limits_schema = { "limits",    limits_keys, NKEYS(limits_keys),
                                            sizeof(LIM), NULL,        NULL };

typedef pskgw_config_admin_t ADM;
static const cfg_key_t admin_keys[] = {
    K_STR("address", ADM, address, 0, 1, 64, "127.0.0.1"),
    K_UINT("port", ADM, port, 0, 0, 65535, 9464),
    K_STR("token_file", ADM, token_file, 0, 1, PATH_MAX_LEN, NULL),
};

static bool loopback_ip(const char *s)
{
    return strncmp(s, "127.", 4) == 0 || strcmp(s, "::1") == 0;
}

static void admin_finish(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, size_t i,
                         void *obj)
{
    ADM *a = obj;
    char kp[CFG_PATH_MAX];
    (void)i;
    if (a->address != NULL && !cfg_ip_literal(a->address)) {
        cfg_path_member(kp, path, "address");
        cfg_error(ctx, line_of(s, "address"), kp, "must be a numeric IPv4 or IPv6 address");
    }
    if (a->token_file != NULL) {
        cfg_path_member(kp, path, "token_file");
        (void)cfg_read_secret(ctx, line_of(s, "token_file"), kp, a->token_file, SECRET_MAX, true,
                              &a->token);
    } else if (a->address != NULL && !loopback_ip(a->address)) {
        cfg_path_member(kp, path, "token_file");
        cfg_error(ctx, cfg_line(s), kp,
                  "required when the admin address is not loopback (the /admin/ routes act on "
                  "sessions and keys)");
    }
}

static void admin_release(void *obj)
{
    cfg_secret_free(&((ADM *)obj)->token);
}

static const cfg_schema_t admin_schema = { "admin",     admin_keys,   NKEYS(admin_keys),
                                           sizeof(ADM), admin_finish, admin_release };

static const cfg_enum_t log_level_enum[] = {
    { "err", PSKGW_LOG_ERR },   { "warning", PSKGW_LOG_WARNING }, { "notice", PSKGW_LOG_NOTICE },
    { "info", PSKGW_LOG_INFO }, { "debug", PSKGW_LOG_DEBUG },     { NULL, 0 },
};
static const cfg_enum_t log_format_enum[] = {
    { "text", PSKGW_LOG_FORMAT_TEXT },
    { "json", PSKGW_LOG_FORMAT_JSON },
    { NULL, 0 },
};

typedef pskgw_config_log_t LOG;
static const cfg_key_t log_keys[] = {
    K_ENUM("level", LOG, level, 0, log_level_enum, PSKGW_LOG_INFO),
    K_ENUM("format", LOG, format, 0, log_format_enum, PSKGW_LOG_FORMAT_TEXT),
};
static const cfg_schema_t log_schema = {
    "log", log_keys, NKEYS(log_keys), sizeof(LOG), NULL, NULL
};

/* ---- the domain ---- */

static const cfg_enum_t e2e_enum[] = {
    { "off", PSKGW_CONFIG_E2E_OFF },
    { "auto", PSKGW_CONFIG_E2E_AUTO },
    { "required", PSKGW_CONFIG_E2E_REQUIRED },
    { NULL, 0 },
};

static const cfg_enum_t e2e_header_case_enum[] = {
    { "lower", PSKGW_CONFIG_E2E_HEADER_LOWER },
    { "upper", PSKGW_CONFIG_E2E_HEADER_UPPER },
    { NULL, 0 },
};

static const cfg_enum_t e2e_v2_layout_enum[] = {
    { "seed", PSKGW_CONFIG_E2E_V2_SEED },
    { "pad1", PSKGW_CONFIG_E2E_V2_PAD1 },
    { NULL, 0 },
};

static const cfg_enum_t e2e_replay_enum[] = {
    { "flag", PSKGW_CONFIG_E2E_REPLAY_FLAG },
    { "reject", PSKGW_CONFIG_E2E_REPLAY_REJECT },
    { NULL, 0 },
};

typedef pskgw_config_domain_t DOM;
static const cfg_key_t domain_keys[] = {
    K_STR("domain", DOM, name, F_REQUIRED, 1, 64, NULL),
    K_GROUP("api", DOM, api, F_REQUIRED, NO_OFF, api_schema),
    K_GLIST("listeners", DOM, listeners, nlisteners, F_REQUIRED, 1, 64, listener_schema),
    K_STR("ciphers", DOM, ciphers, 0, 1, 1024, PSKGW_CONFIG_DEFAULT_CIPHERS),
    K_GROUP("cache", DOM, cache, 0, NO_OFF, cache_schema),
    K_ENUM("e2e", DOM, e2e, 0, e2e_enum, PSKGW_CONFIG_E2E_OFF),
    K_ENUM("e2e_header_case", DOM, e2e_header_case, 0, e2e_header_case_enum,
           PSKGW_CONFIG_E2E_HEADER_LOWER),
    K_ENUM("e2e_v2_layout", DOM, e2e_v2_layout, 0, e2e_v2_layout_enum, PSKGW_CONFIG_E2E_V2_SEED),
    K_ENUM("e2e_replay", DOM, e2e_replay, 0, e2e_replay_enum, PSKGW_CONFIG_E2E_REPLAY_FLAG),
    K_UINT("e2e_replay_window_s", DOM, e2e_replay_window_s, 0, 1, 31536000, 86400),
    K_UINT("e2e_replay_entries", DOM, e2e_replay_entries, 0, 1, 10000000, 100000),
    K_GLIST("sinks", DOM, sinks, nsinks, F_REQUIRED, 1, 16, sink_schema),
    K_GROUP("limits", DOM, limits, 0, NO_OFF, limits_schema),
    K_GROUP("admin", DOM, admin, 0, offsetof(DOM, has_admin), admin_schema),
    K_GROUP("log", DOM, log, 0, offsetof(DOM, has_log), log_schema),
    K_STR("deny_file", DOM, deny_file, F_PATH, 1, PATH_MAX_LEN, NULL),
};

/* Give unnamed entries "<base>" or "<base>:<index>" (when taken), and check uniqueness. */
static void listener_names(cfg_ctx_t *ctx, DOM *d)
{
    for (size_t i = 0; i < d->nlisteners; i++) {
        LIS *l = &d->listeners[i];
        if (l->name != NULL)
            continue;
        char name[96];
        snprintf(name, sizeof(name), "%s:%u", pskgw_config_proto_name(l->proto), (unsigned)l->port);
        for (size_t j = 0; j < d->nlisteners; j++) {
            if (j != i && d->listeners[j].name != NULL && strcmp(d->listeners[j].name, name) == 0) {
                snprintf(name, sizeof(name), "%s:%u:%zu", pskgw_config_proto_name(l->proto),
                         (unsigned)l->port, i);
                break;
            }
        }
        l->name = strdup(name);
        if (l->name == NULL)
            ctx->oom = true;
    }
    for (size_t i = 0; i < d->nlisteners; i++) {
        for (size_t j = 0; j < i; j++) {
            const char *a = d->listeners[i].name, *b = d->listeners[j].name;
            if (a != NULL && b != NULL && strcmp(a, b) == 0) {
                char kp[CFG_PATH_MAX];
                snprintf(kp, sizeof(kp), "listeners[%zu].name", i);
                cfg_error(ctx, d->listeners[i].line, kp, "\"%s\" is already used by listeners[%zu]",
                          a, j);
            }
        }
    }
}

/* What a listener refuses at start is refused here, so --check-config says so first. */
static void listener_limits(cfg_ctx_t *ctx, DOM *d)
{
    for (size_t i = 0; i < d->nlisteners; i++) {
        LIS *l = &d->listeners[i];
        /* dtls/ctx.h: at most 16384 plaintext bytes per message, for every protocol and
         * framing (one record for udp and record framing; the stream's message buffer for
         * len16 and newline). */
        const uint32_t cap = 16384;
        const char *why = l->proto == PSKGW_CONFIG_PROTO_UDP
                              ? "udp listeners carry one DTLS record per message"
                          : l->framing == PSKGW_CONFIG_FRAMING_RECORD
                              ? "record framing carries one TLS record per message"
                              : "a listener handles messages of at most 16384 bytes";
        if (l->max_message_bytes == 0) {
            l->max_message_bytes =
                d->limits.max_message_bytes < cap ? d->limits.max_message_bytes : cap;
        } else if (l->max_message_bytes > cap) {
            char kp[CFG_PATH_MAX];
            snprintf(kp, sizeof(kp), "listeners[%zu].max_message_bytes", i);
            cfg_error(ctx, l->line, kp, "must be at most %u: %s (got %u)", (unsigned)cap, why,
                      (unsigned)l->max_message_bytes);
        }
    }
}

static void sink_names(cfg_ctx_t *ctx, DOM *d)
{
    for (size_t i = 0; i < d->nsinks; i++) {
        SINK *k = &d->sinks[i];
        if (k->name != NULL)
            continue;
        char name[64];
        snprintf(name, sizeof(name), "%s-%zu", pskgw_config_sink_type_name(k->type), i);
        k->name = strdup(name);
        if (k->name == NULL)
            ctx->oom = true;
    }
    for (size_t i = 0; i < d->nsinks; i++) {
        for (size_t j = 0; j < i; j++) {
            const char *a = d->sinks[i].name, *b = d->sinks[j].name;
            if (a != NULL && b != NULL && strcmp(a, b) == 0) {
                char kp[CFG_PATH_MAX];
                snprintf(kp, sizeof(kp), "sinks[%zu].name", i);
                cfg_error(ctx, d->sinks[i].line, kp, "\"%s\" is already used by sinks[%zu]", a, j);
            }
        }
    }
}

static void domain_finish(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, size_t i,
                          void *obj)
{
    DOM *d = obj;
    (void)path;
    (void)i;
    if (d->name != NULL && !cfg_name_ok(d->name))
        cfg_error(ctx, line_of(s, "domain"), "domain",
                  "may hold only letters, digits, '-', '_', '.'");
    if (d->ciphers != NULL)
        cfg_parse_ciphers(ctx, line_of(s, "ciphers"), "ciphers", d->ciphers, d);
    listener_names(ctx, d);
    listener_limits(ctx, d);
    sink_names(ctx, d);
    if (d->deny_file != NULL)
        (void)cfg_read_deny(ctx, line_of(s, "deny_file"), "deny_file", d->deny_file, &d->deny,
                            &d->ndeny);
}

static void domain_release(void *obj)
{
    DOM *d = obj;
    free(d->ciphers_wolfssl);
    d->ciphers_wolfssl = NULL;
    free(d->source);
    d->source = NULL;
    cfg_deny_free(d->deny, d->ndeny);
    d->deny = NULL;
    d->ndeny = 0;
}

const cfg_schema_t cfg_domain_schema = { "domain",    domain_keys,   NKEYS(domain_keys),
                                         sizeof(DOM), domain_finish, domain_release };

/* ---- names ---- */

const char *pskgw_config_proto_name(pskgw_config_proto_t p)
{
    return p == PSKGW_CONFIG_PROTO_TCP ? "tcp" : "udp";
}

const char *pskgw_config_framing_name(pskgw_config_framing_t f)
{
    switch (f) {
    case PSKGW_CONFIG_FRAMING_LEN16:
        return "len16";
    case PSKGW_CONFIG_FRAMING_NEWLINE:
        return "newline";
    case PSKGW_CONFIG_FRAMING_RECORD:
        return "record";
    default:
        return "none";
    }
}

const char *pskgw_config_sink_type_name(pskgw_config_sink_type_t t)
{
    for (const cfg_enum_t *e = sink_type_enum; e->name != NULL; e++) {
        if (e->value == (int)t)
            return e->name;
    }
    return "unknown";
}

const char *pskgw_config_e2e_name(pskgw_config_e2e_t m)
{
    for (const cfg_enum_t *e = e2e_enum; e->name != NULL; e++) {
        if (e->value == (int)m)
            return e->name;
    }
    return "unknown";
}
