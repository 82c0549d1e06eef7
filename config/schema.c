/* The schema of a domain file: one table row per key (type, range, default, where it goes), and
 * the cross-field checks that a table cannot express. docs/CONFIG.md mirrors these files: change
 * both together. This file: listeners, limits, admin, log and the domain's top-level walk; api and
 * cache in schema_api.c, sinks in schema_sink.c. */
#include "config/schema.h"
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
    K_UINT("hibernate_after_s", LIS, hibernate_after_s, 0, 0, 604800, 30,
           .when = W(PSKGW_CONFIG_PROTO_UDP)),
    /* forwarding (issue 14): checked in forward_finish */
    K_STR("forward", LIS, forward, 0, 1, 128, NULL),
    K_BOOL("proxy_protocol", LIS, proxy_protocol, 0),
    K_UINT("forward_connect_timeout_ms", LIS, forward_connect_timeout_ms, 0, 100, 600000, 5000,
           .when = W(PSKGW_CONFIG_PROTO_TCP)),
    K_UINT("forward_buffer_bytes", LIS, forward_buffer_bytes, 0, 16384, 16777216, 65536),
    /* DTLS 1.2 Connection ID (RFC 9146): docs/CONFIG.md */
    K_ENUM("cid", LIS, cid, 0, cid_enum, PSKGW_CONFIG_CID_ON, .when = W(PSKGW_CONFIG_PROTO_UDP)),
    K_UINT("cid_length", LIS, cid_length, 0, 4, 16, 8, .when = W(PSKGW_CONFIG_PROTO_UDP)),
    /* checked in listener_finish: wolfSSL's window is fixed at build time */
    K_UINT("replay_window", LIS, replay_window, 0, 1, 1048576, PSKGW_CONFIG_REPLAY_WINDOW,
           .when = W(PSKGW_CONFIG_PROTO_UDP)),
};

/* A DNS host name: labels of 1-63 letters, digits and '-' (not first or last), dots between,
 * at most 253 characters. */
static bool host_name_ok(const char *h)
{
    size_t len = strlen(h), label = 0;

    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = h[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || h[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum((unsigned char)c) || (c == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* forward = "tcp://HOST:PORT" | "udp://HOST:PORT": the scheme matches proto, HOST a numeric
 * literal ([...] for IPv6) or a host name (resolved by the gateway), PORT 1..65535; forward's keys only with forward; no framing or ack
 * (bytes pass as they are, the backend answers). */
static void forward_finish(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, LIS *l)
{
    const char *scheme = l->proto == PSKGW_CONFIG_PROTO_TCP ? "tcp://" : "udp://";
    static const char *const only[] = { "proxy_protocol", "forward_connect_timeout_ms",
                                        "forward_buffer_bytes" };
    char kp[CFG_PATH_MAX], host[256];
    const char *h, *end, *colon;
    char *stop = NULL;
    unsigned long port;

    if (l->forward == NULL) {
        for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++) {
            if (config_setting_get_member(s, only[i]) != NULL) {
                cfg_path_member(kp, path, only[i]);
                cfg_error(ctx, line_of(s, only[i]), kp, "only valid with forward");
            }
        }
        return;
    }
    if (config_setting_get_member(s, "framing") != NULL || config_setting_get_member(s, "ack")) {
        const char *k = config_setting_get_member(s, "framing") != NULL ? "framing" : "ack";
        cfg_path_member(kp, path, k);
        cfg_error(ctx, line_of(s, k), kp,
                  "not used with forward (the bytes pass as they are, the server answers)");
    }
    cfg_path_member(kp, path, "forward");
    if (strncmp(l->forward, scheme, 6) != 0) {
        cfg_error(ctx, line_of(s, "forward"), kp,
                  "a %s listener forwards to %sHOST:PORT (got \"%s\")",
                  pskgw_config_proto_name(l->proto), scheme, l->forward);
        return;
    }
    h = l->forward + 6;
    if (h[0] == '[') {
        end = strchr(h, ']');
        colon = end != NULL && end[1] == ':' ? end + 1 : NULL;
        h++;
    } else {
        end = colon = strrchr(h, ':');
    }
    if (colon == NULL || end == NULL || (size_t)(end - h) >= sizeof(host)) {
        cfg_error(ctx, line_of(s, "forward"), kp, "must be %sHOST:PORT (got \"%s\")", scheme,
                  l->forward);
        return;
    }
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
    port = strtoul(colon + 1, &stop, 10);
    if (h[-1] == '['
            ? !cfg_ip_literal(host) || strchr(host, ':') == NULL
            : strchr(host, ':') != NULL || (!cfg_ip_literal(host) && !host_name_ok(host))) {
        cfg_error(ctx, line_of(s, "forward"), kp,
                  "HOST must be a numeric IPv4 address, an [IPv6] literal or a host name (got "
                  "\"%s\")",
                  host);
        return;
    }
    if (colon[1] < '0' || colon[1] > '9' || *stop != '\0' || port == 0 || port > 65535) {
        cfg_error(ctx, line_of(s, "forward"), kp, "PORT must be 1..65535 (got \"%s\")", colon + 1);
        return;
    }
    free(l->forward_host);
    l->forward_host = strdup(host);
    if (l->forward_host == NULL)
        ctx->oom = true;
    l->forward_port = (uint16_t)port;
}

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
    if (l->proto == PSKGW_CONFIG_PROTO_UDP && l->replay_window != PSKGW_CONFIG_REPLAY_WINDOW) {
        cfg_path_member(kp, path, "replay_window");
        cfg_error(ctx, line_of(s, "replay_window"), kp,
                  "%u is not available: the DTLS anti-replay window is wolfSSL's, fixed at %u "
                  "records when wolfSSL is built (WOLFSSL_DTLS_WINDOW_WORDS), with no runtime "
                  "setting; %u is the only value",
                  (unsigned)l->replay_window, PSKGW_CONFIG_REPLAY_WINDOW,
                  PSKGW_CONFIG_REPLAY_WINDOW);
    }
    forward_finish(ctx, s, path, l);
}

static void listener_release(void *obj)
{
    LIS *l = obj;
    free(l->forward_host);
    l->forward_host = NULL;
}

static const cfg_schema_t listener_schema = { "listener",  listener_keys,   NKEYS(listener_keys),
                                              sizeof(LIS), listener_finish, listener_release };

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
    K_GROUP("api", DOM, api, F_REQUIRED, NO_OFF, cfg_api_schema),
    K_GLIST("listeners", DOM, listeners, nlisteners, F_REQUIRED, 1, 64, listener_schema),
    K_STR("ciphers", DOM, ciphers, 0, 1, 1024, PSKGW_CONFIG_DEFAULT_CIPHERS),
    K_GROUP("cache", DOM, cache, 0, NO_OFF, cfg_cache_schema),
    K_ENUM("e2e", DOM, e2e, 0, e2e_enum, PSKGW_CONFIG_E2E_OFF),
    K_ENUM("e2e_header_case", DOM, e2e_header_case, 0, e2e_header_case_enum,
           PSKGW_CONFIG_E2E_HEADER_LOWER),
    K_ENUM("e2e_v2_layout", DOM, e2e_v2_layout, 0, e2e_v2_layout_enum, PSKGW_CONFIG_E2E_V2_SEED),
    K_ENUM("e2e_replay", DOM, e2e_replay, 0, e2e_replay_enum, PSKGW_CONFIG_E2E_REPLAY_FLAG),
    K_UINT("e2e_replay_window_s", DOM, e2e_replay_window_s, 0, 1, 31536000, 86400),
    K_UINT("e2e_replay_entries", DOM, e2e_replay_entries, 0, 1, 10000000, 100000),
    K_GLIST("sinks", DOM, sinks, nsinks, 0, 1, 16, cfg_sink_schema), /* see sinks_needed */
    K_GROUP("limits", DOM, limits, 0, NO_OFF, limits_schema),
    K_GROUP("admin", DOM, admin, 0, offsetof(DOM, has_admin), admin_schema),
    K_GROUP("log", DOM, log, 0, offsetof(DOM, has_log), log_schema),
    K_STR("deny_file", DOM, deny_file, F_PATH, 1, PATH_MAX_LEN, NULL),
    K_GROUP("resumption", DOM, resumption, 0, offsetof(DOM, has_resumption), cfg_resumption_schema),
    K_STR("state_dir", DOM, state_dir, F_PATH, 1, PATH_MAX_LEN, NULL),
    K_GROUP("sessions", DOM, sessions, 0, offsetof(DOM, has_sessions), cfg_sessions_schema),
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
        pskgw_config_sink_t *k = &d->sinks[i];
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

/* sinks may be left out only when every listener forwards (a forward-only domain: nothing
 * reaches a sink); the error names the first listener that needs them, at its line. */
static void sinks_needed(cfg_ctx_t *ctx, const config_setting_t *s, const DOM *d)
{
    if (d->nsinks > 0)
        return;
    if (d->nlisteners == 0)
        cfg_error(ctx, cfg_line(s), "sinks", "missing required key");
    for (size_t i = 0; i < d->nlisteners; i++) {
        const LIS *l = &d->listeners[i];
        if (l->forward == NULL) {
            cfg_error(ctx, l->line, "sinks",
                      "missing required key: listeners[%zu] (\"%s\") does not forward (only a "
                      "domain whose listeners all forward may have no sinks)",
                      i, l->name != NULL ? l->name : "");
            return;
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
    sinks_needed(ctx, s, d);
    if (d->deny_file != NULL)
        (void)cfg_read_deny(ctx, line_of(s, "deny_file"), "deny_file", d->deny_file, &d->deny,
                            &d->ndeny);
    if (d->has_sessions && !d->cache.has_kek && d->cache.kek_file == NULL)
        cfg_error(ctx, line_of(s, "sessions"), "sessions",
                  "needs cache.kek_file (the key every gateway seals the sessions under)");
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

const char *pskgw_config_e2e_name(pskgw_config_e2e_t m)
{
    for (const cfg_enum_t *e = e2e_enum; e->name != NULL; e++) {
        if (e->value == (int)m)
            return e->name;
    }
    return "unknown";
}
