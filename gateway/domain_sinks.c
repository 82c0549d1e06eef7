/* A domain's sink configuration translated into the sink set's options (sinks/sinkset.h),
 * shared by the start (domain.c) and the reload (reload.c). Secret header and property lines are
 * split into copies that are wiped when the options are freed. */
#include "gateway/domain_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits "Name: value" / "key=value" into kv (pointing into copies kept in store). */
static int split_kv(const char *line, char sep, pskgw_sink_kv_t *kv, char **store)
{
    char *copy = strdup(line);
    char *p;

    if (!copy)
        return PSKGW_ENOMEM;
    p = strchr(copy, sep);
    if (!p) {
        pskgw_free_secret_str(copy);
        return PSKGW_ECONFIG;
    }
    *p++ = '\0';
    while (*p == ' ' || *p == '\t')
        p++;
    kv->key = copy;
    kv->value = p;
    *store = copy;
    return 0;
}

struct pskgw_domain_sink_opts {
    size_t nsinks;
    pskgw_sink_options_t *opts;
    pskgw_sink_kv_t *kvs;
    char **store;
    char **names;
    size_t nkv;
    size_t nnames;
};

void pskgw_domain_sink_opts_free(struct pskgw_domain_sink_opts *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nkv; i++)
        pskgw_free_secret_str(b->store[i]);
    for (size_t i = 0; i < b->nnames; i++)
        free(b->names[i]);
    free(b->opts);
    free(b->kvs);
    free(b->store);
    free(b->names);
    free(b);
}

static int add_kvs(struct pskgw_domain_sink_opts *b, char *const *lines, size_t n,
                   const pskgw_config_secret_t *secret, size_t nsecret, char sep,
                   const pskgw_sink_kv_t **out, size_t *out_n)
{
    size_t first = b->nkv;
    int rc;

    for (size_t i = 0; i < n + nsecret; i++) {
        const char *line = i < n ? lines[i] : secret[i - n].data;

        rc = split_kv(line, sep, &b->kvs[b->nkv], &b->store[b->nkv]);
        if (rc < 0)
            return rc;
        b->nkv++;
    }
    *out = b->kvs + first;
    *out_n = b->nkv - first;
    return 0;
}

/* Fills o from the config of sink s (o->name is set by the caller). */
static int fill_sink(struct pskgw_domain_sink_opts *b, const pskgw_config_sink_t *s,
                     pskgw_sink_options_t *o)
{
    o->payload =
        s->payload == PSKGW_CONFIG_PAYLOAD_RAW ? PSKGW_SINK_PAYLOAD_RAW : PSKGW_SINK_PAYLOAD_JSON;
    o->queue_size = s->queue_size;
    o->in_flight = s->in_flight;
    o->retry_max_ms = s->retry_max_ms;
    if (s->has_spool) {
        o->spool.path = s->spool.path;
        o->spool.max_bytes = s->spool.max_bytes;
        o->spool.fsync = s->spool.fsync == PSKGW_CONFIG_FSYNC_ALWAYS  ? PSKGW_SINK_FSYNC_ALWAYS
                         : s->spool.fsync == PSKGW_CONFIG_FSYNC_NEVER ? PSKGW_SINK_FSYNC_NEVER
                                                                      : PSKGW_SINK_FSYNC_BATCH;
    }
    switch (s->type) {
    case PSKGW_CONFIG_SINK_FILE:
        o->type = PSKGW_SINK_FILE;
        o->file.path = s->file.path;
        break;
    case PSKGW_CONFIG_SINK_HTTP:
        o->type = PSKGW_SINK_HTTP;
        o->http.url = s->http.url;
        o->http.timeout_ms = s->http.timeout_ms;
        o->http.probe_interval_ms = s->http.probe == PSKGW_CONFIG_SINK_PROBE_HEAD
                                        ? (uint64_t)s->http.probe_interval_s * 1000
                                        : 0;
        o->dead_letter_path = s->http.dead_letter_path;
        return add_kvs(b, s->http.headers, s->http.nheaders, s->http.secret_headers,
                       s->http.nsecret_headers, ':', &o->http.headers, &o->http.n_headers);
    case PSKGW_CONFIG_SINK_MQTT:
        o->type = PSKGW_SINK_MQTT;
        o->mqtt.host = s->mqtt.host;
        o->mqtt.port = s->mqtt.port;
        o->mqtt.topic = s->mqtt.topic;
        o->mqtt.qos = (int)s->mqtt.qos;
        o->mqtt.client_id = s->mqtt.client_id;
        o->mqtt.username = s->mqtt.username;
        o->mqtt.password = s->mqtt.password.data;
        o->mqtt.keepalive = (int)s->mqtt.keepalive_s;
        break;
    case PSKGW_CONFIG_SINK_REDIS_STREAM:
        o->type = PSKGW_SINK_REDIS_STREAM;
        o->redis.url = s->redis_stream.redis.url;
        o->redis.password = s->redis_stream.redis.password.data; /* AUTH; NULL: none */
        o->redis.stream = s->redis_stream.stream;
        o->redis.maxlen = s->redis_stream.maxlen;
        break;
    case PSKGW_CONFIG_SINK_KAFKA:
        o->type = PSKGW_SINK_KAFKA;
        o->kafka.brokers = s->kafka.brokers;
        o->kafka.topic = s->kafka.topic;
        return add_kvs(b, s->kafka.properties, s->kafka.nproperties, s->kafka.secret_properties,
                       s->kafka.nsecret_properties, '=', &o->kafka.props, &o->kafka.n_props);
    }
    return 0;
}

int pskgw_domain_sink_opts(pskgw_domain_t *d, const pskgw_config_domain_t *cfg,
                           struct pskgw_domain_sink_opts **out, const pskgw_sink_options_t **opts)
{
    struct pskgw_domain_sink_opts *b = calloc(1, sizeof(*b));
    size_t nkv = 0;
    int rc = PSKGW_ENOMEM;

    if (!b)
        return PSKGW_ENOMEM;
    for (size_t i = 0; i < cfg->nsinks; i++)
        nkv += cfg->sinks[i].http.nheaders + cfg->sinks[i].http.nsecret_headers +
               cfg->sinks[i].kafka.nproperties + cfg->sinks[i].kafka.nsecret_properties;
    b->nsinks = cfg->nsinks;
    b->opts = calloc(cfg->nsinks, sizeof(*b->opts));
    b->kvs = calloc(nkv + 1, sizeof(*b->kvs));
    b->store = calloc(nkv + 1, sizeof(*b->store));
    b->names = calloc(cfg->nsinks, sizeof(*b->names));
    if (!b->opts || !b->kvs || !b->store || !b->names)
        goto fail;
    for (size_t i = 0; i < cfg->nsinks; i++) {
        const pskgw_config_sink_t *s = &cfg->sinks[i];
        size_t len = strlen(cfg->name) + strlen(s->name) + 16;

        b->names[i] = malloc(len);
        if (!b->names[i])
            goto fail;
        b->nnames++;
        if (d->worker >= 0)
            snprintf(b->names[i], len, "%s-%s-w%d", cfg->name, s->name, d->worker);
        else
            snprintf(b->names[i], len, "%s-%s", cfg->name, s->name);
        b->opts[i].name = b->names[i];
        rc = fill_sink(b, s, &b->opts[i]);
        if (rc < 0)
            goto fail;
    }
    *out = b;
    *opts = b->opts;
    return 0;
fail:
    PSKGW_ERR("domain \"%s\": sink options not built: %s", cfg->name, pskgw_strerror(rc));
    pskgw_domain_sink_opts_free(b);
    return rc;
}
