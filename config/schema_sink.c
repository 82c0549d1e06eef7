/* The schema of a domain file, the sinks (see schema.c): one table of every sink type's keys
 * (selected by `type`), the checks of templates, headers and Kafka properties, and the secret files
 * of lines (headers_file, properties_file). */
#include "config/schema.h"
#include "config/url.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- small checks ---- */

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

/* ---- sinks ---- */

static const cfg_enum_t sink_type_enum[] = {
    { "file", PSKGW_CONFIG_SINK_FILE },   { "http", PSKGW_CONFIG_SINK_HTTP },
    { "mqtt", PSKGW_CONFIG_SINK_MQTT },   { "redis-stream", PSKGW_CONFIG_SINK_REDIS_STREAM },
    { "kafka", PSKGW_CONFIG_SINK_KAFKA }, { NULL, 0 },
};
static const cfg_enum_t probe_enum[] = {
    { "head", PSKGW_CONFIG_SINK_PROBE_HEAD },
    { "off", PSKGW_CONFIG_SINK_PROBE_OFF },
    { NULL, 0 },
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
    K_ENUM("probe", SINK, http.probe, 0, probe_enum, PSKGW_CONFIG_SINK_PROBE_HEAD, .when = S_HTTP),
    K_UINT("probe_interval_s", SINK, http.probe_interval_s, 0, 1, 3600, 10, .when = S_HTTP),
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

const cfg_schema_t cfg_sink_schema = { "sink",       sink_keys,   NKEYS(sink_keys),
                                       sizeof(SINK), sink_finish, sink_release };

/* ---- names ---- */

const char *pskgw_config_sink_type_name(pskgw_config_sink_type_t t)
{
    for (const cfg_enum_t *e = sink_type_enum; e->name != NULL; e++) {
        if (e->value == (int)t)
            return e->name;
    }
    return "unknown";
}
