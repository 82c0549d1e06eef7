/* Reload (see reload.h): the tolerant configuration load and the reload of one domain. */
#include "gateway/reload.h"
#include "gateway/admin_routes.h"
#include "gateway/domain_internal.h"
#include "gateway/listen_reload.h"
#include "gateway/reload_listeners.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"

#include <dirent.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- loading ----------------------------------------------------------------------------- */

static int str_eq(const char *a, const char *b);

static void log_errors(const pskgw_config_diag_t *diag)
{
    for (size_t i = 0; i < diag->nitems; i++)
        if (diag->items[i].severity == PSKGW_CONFIG_SEV_ERROR)
            PSKGW_ERR("configuration: %s", diag->items[i].text);
}

static int load_logged(const char *const *files, size_t n, pskgw_config_t **out)
{
    pskgw_config_diag_t diag;
    int rc;

    pskgw_config_diag_init(&diag);
    rc = pskgw_config_load(files, n, out, &diag);
    log_errors(&diag);
    pskgw_config_diag_deinit(&diag);
    return rc;
}

void pskgw_reload_warn_global(const pskgw_config_t *o, const pskgw_config_t *n)
{
    if (o->has_admin != n->has_admin)
        PSKGW_WARN("configuration: admin group %s: not applied until a restart (a changed "
                   "address or port is applied by a reload)",
                   n->has_admin ? "added" : "removed");
}

static const char *level_name(pskgw_log_level_t l)
{
    static const char *const names[] = { "err", "warning", "notice", "info", "debug" };

    return l >= PSKGW_LOG_ERR && l <= PSKGW_LOG_DEBUG ? names[l - PSKGW_LOG_ERR] : "?";
}

void pskgw_reload_log(const pskgw_config_t *o, const pskgw_config_t *n, bool cli_level,
                      bool cli_format)
{
    /* no log group in any file: the defaults, as at start */
    pskgw_log_level_t ol = o->has_log ? o->log.level : PSKGW_LOG_INFO;
    pskgw_log_level_t nl = n->has_log ? n->log.level : PSKGW_LOG_INFO;
    pskgw_log_format_t of = o->has_log ? o->log.format : PSKGW_LOG_FORMAT_TEXT;
    pskgw_log_format_t nf = n->has_log ? n->log.format : PSKGW_LOG_FORMAT_TEXT;

    if (nl != ol && cli_level)
        PSKGW_WARN("configuration: log.level changed: --log-level given on the command line wins");
    if (nl != ol && !cli_level) {
        /* at notice: the line shows under either level */
        PSKGW_NOTICE("configuration: log level now \"%s\"", level_name(nl));
        pskgw_log_set_level(nl);
    }
    if (nf != of && cli_format)
        PSKGW_WARN("configuration: log.format changed: --log-format given on the command line "
                   "wins");
    if (nf != of && !cli_format) {
        PSKGW_NOTICE("configuration: log format now \"%s\"",
                     nf == PSKGW_LOG_FORMAT_JSON ? "json" : "text");
        pskgw_log_set_format(nf);
    }
}

int pskgw_reload_load(const char *const *files, size_t n, pskgw_config_t **out, bool *broken)
{
    const char **good;
    pskgw_config_t *one;
    size_t ngood = 0;
    int rc;

    memset(broken, 0, n * sizeof(*broken));
    rc = load_logged(files, n, out);
    if (rc != PSKGW_ECONFIG || n == 1)
        return rc;
    good = calloc(n, sizeof(*good));
    if (!good)
        return PSKGW_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        /* errors were logged above: this load only sorts the files */
        rc = pskgw_config_load(&files[i], 1, &one, NULL);
        if (rc == PSKGW_ENOMEM)
            goto out;
        broken[i] = rc < 0;
        if (rc == 0) {
            pskgw_config_free(one);
            good[ngood++] = files[i];
        } else {
            PSKGW_ERR("configuration: %s is invalid: its domain is skipped", files[i]);
        }
    }
    rc = PSKGW_ECONFIG;
    if (ngood == 0)
        PSKGW_ERR("configuration: no valid domain file");
    else if (ngood == n || (rc = load_logged(good, ngood, out)) < 0)
        PSKGW_ERR("configuration: the valid files do not load together");
out:
    free(good);
    return rc;
}

/* ---- the files ------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int push(char ***v, size_t *n, size_t *cap, char *s)
{
    if (!s)
        return PSKGW_ENOMEM;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 8;
        char **a = realloc(*v, c * sizeof(*a));

        if (!a) {
            free(s);
            return PSKGW_ENOMEM;
        }
        *v = a;
        *cap = c;
    }
    (*v)[(*n)++] = s;
    return 0;
}

static int list_dir(const char *dir, char ***v, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t first = *n;
    int rc = 0;

    if (!d) {
        PSKGW_ERR("configuration: %s: cannot open directory", dir);
        return PSKGW_EIO;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        size_t plen = strlen(dir) + len + 2;
        char *path;

        if (len < 6 || strcmp(e->d_name + len - 5, ".conf") != 0 || e->d_name[0] == '.')
            continue;
        path = malloc(plen);
        if (path)
            snprintf(path, plen, "%s/%s", dir, e->d_name);
        rc = push(v, n, cap, path);
    }
    closedir(d);
    qsort(*v + first, *n - first, sizeof(char *), cmp_str);
    return rc;
}

void pskgw_reload_files_free(char **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

int pskgw_reload_files(const char *const *files, size_t nfiles, const char *const *dirs,
                       size_t ndirs, char ***out, size_t *nout)
{
    char **v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < nfiles; i++)
        rc = push(&v, &n, &cap, strdup(files[i]));
    for (size_t i = 0; rc == 0 && i < ndirs; i++)
        rc = list_dir(dirs[i], &v, &n, &cap);
    if (rc == 0 && n == 0) {
        PSKGW_ERR("configuration: no *.conf file");
        rc = PSKGW_ENOTFOUND;
    }
    if (rc < 0) {
        pskgw_reload_files_free(v, n);
        return rc;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* ---- comparing settings ------------------------------------------------------------------ */

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int secret_eq(const pskgw_config_secret_t *a, const pskgw_config_secret_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0) &&
           (a->data == NULL) == (b->data == NULL);
}

static int strv_eq(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!str_eq(a[i], b[i]))
            return 0;
    return 1;
}

static int secrets_eq(const pskgw_config_secret_t *a, size_t na, const pskgw_config_secret_t *b,
                      size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!secret_eq(&a[i], &b[i]))
            return 0;
    return 1;
}

static int redis_eq(const pskgw_config_redis_t *a, const pskgw_config_redis_t *b)
{
    return str_eq(a->url, b->url) && str_eq(a->host, b->host) && a->port == b->port &&
           a->db == b->db && secret_eq(&a->password, &b->password);
}

static int sink_eq(const pskgw_config_sink_t *a, const pskgw_config_sink_t *b)
{
    if (!str_eq(a->name, b->name) || a->type != b->type || a->queue_size != b->queue_size ||
        a->in_flight != b->in_flight || a->retry_max_ms != b->retry_max_ms ||
        a->has_spool != b->has_spool || a->payload != b->payload)
        return 0;
    if (a->has_spool &&
        (!str_eq(a->spool.path, b->spool.path) || a->spool.max_bytes != b->spool.max_bytes ||
         a->spool.fsync != b->spool.fsync))
        return 0;
    switch (a->type) {
    case PSKGW_CONFIG_SINK_FILE:
        return str_eq(a->file.path, b->file.path);
    case PSKGW_CONFIG_SINK_HTTP:
        return str_eq(a->http.url, b->http.url) &&
               strv_eq(a->http.headers, a->http.nheaders, b->http.headers, b->http.nheaders) &&
               secrets_eq(a->http.secret_headers, a->http.nsecret_headers, b->http.secret_headers,
                          b->http.nsecret_headers) &&
               a->http.timeout_ms == b->http.timeout_ms && a->http.probe == b->http.probe &&
               a->http.probe_interval_s == b->http.probe_interval_s &&
               str_eq(a->http.dead_letter_path, b->http.dead_letter_path);
    case PSKGW_CONFIG_SINK_MQTT:
        return str_eq(a->mqtt.host, b->mqtt.host) && a->mqtt.port == b->mqtt.port &&
               str_eq(a->mqtt.topic, b->mqtt.topic) && a->mqtt.qos == b->mqtt.qos &&
               str_eq(a->mqtt.client_id, b->mqtt.client_id) &&
               str_eq(a->mqtt.username, b->mqtt.username) &&
               secret_eq(&a->mqtt.password, &b->mqtt.password) &&
               a->mqtt.keepalive_s == b->mqtt.keepalive_s;
    case PSKGW_CONFIG_SINK_REDIS_STREAM:
        return redis_eq(&a->redis_stream.redis, &b->redis_stream.redis) &&
               str_eq(a->redis_stream.stream, b->redis_stream.stream) &&
               a->redis_stream.maxlen == b->redis_stream.maxlen;
    case PSKGW_CONFIG_SINK_KAFKA:
        return str_eq(a->kafka.brokers, b->kafka.brokers) &&
               str_eq(a->kafka.topic, b->kafka.topic) &&
               strv_eq(a->kafka.properties, a->kafka.nproperties, b->kafka.properties,
                       b->kafka.nproperties) &&
               secrets_eq(a->kafka.secret_properties, a->kafka.nsecret_properties,
                          b->kafka.secret_properties, b->kafka.nsecret_properties);
    }
    return 0;
}

static int api_eq(const pskgw_config_api_t *a, const pskgw_config_api_t *b)
{
    /* the API settings are scalars and strings after the secret: compare what a client uses
     * (not reauth_interval_ms: the health judge reads it from the domain's config each time) */
    return str_eq(a->url, b->url) && str_eq(a->key_id, b->key_id) &&
           secret_eq(&a->secret, &b->secret) && a->auth_header == b->auth_header &&
           a->psk_key_bits == b->psk_key_bits && a->timeout_ms == b->timeout_ms &&
           a->deadline_ms == b->deadline_ms && a->max_in_flight == b->max_in_flight &&
           a->queue_size == b->queue_size && a->max_connections == b->max_connections &&
           str_eq(a->ca_file, b->ca_file) && str_eq(a->paths.authenticate, b->paths.authenticate) &&
           str_eq(a->paths.get_psk, b->paths.get_psk) &&
           str_eq(a->paths.e2e_params, b->paths.e2e_params) && a->retry_min_ms == b->retry_min_ms &&
           a->retry_max_ms == b->retry_max_ms;
}

static int cache_eq(const pskgw_config_cache_t *a, const pskgw_config_cache_t *b)
{
    return a->entries == b->entries && a->ttl_s == b->ttl_s &&
           a->negative_ttl_s == b->negative_ttl_s && a->negative_entries == b->negative_entries &&
           a->stale_s == b->stale_s && a->e2e_entries == b->e2e_entries &&
           a->e2e_ttl_s == b->e2e_ttl_s && a->max_waiters == b->max_waiters &&
           a->has_redis == b->has_redis && (!a->has_redis || redis_eq(&a->redis, &b->redis)) &&
           a->redis_timeout_ms == b->redis_timeout_ms && a->has_kek == b->has_kek &&
           memcmp(a->kek, b->kek, sizeof(a->kek)) == 0;
}

/* Settings a reload does not apply to a running domain: a warning names them. */
static void warn_unapplied(const pskgw_config_domain_t *o, const pskgw_config_domain_t *n)
{
    const pskgw_config_limits_t *lo = &o->limits, *ln = &n->limits;

    if (o->e2e_replay_window_s != n->e2e_replay_window_s ||
        o->e2e_replay_entries != n->e2e_replay_entries)
        PSKGW_WARN("domain \"%s\": e2e_replay_window_s or e2e_replay_entries changed: not "
                   "applied until a restart (a new table would forget the key identities seen)",
                   n->name);
    /* the admission limits and the DTLS/TLS settings apply to running listeners
     * (listen_reload.h); these do not */
    if (lo->lookups_in_flight != ln->lookups_in_flight ||
        lo->lookups_per_source != ln->lookups_per_source ||
        lo->lookup_queue_per_source != ln->lookup_queue_per_source ||
        lo->lookups_per_source_per_s != ln->lookups_per_source_per_s ||
        lo->lookup_burst != ln->lookup_burst ||
        lo->good_source_share_pct != ln->good_source_share_pct ||
        lo->good_source_window_s != ln->good_source_window_s)
        PSKGW_WARN("domain \"%s\": lookup admission limits changed: they apply to listeners "
                   "started from now on; running listeners keep theirs until a restart",
                   n->name);
}

/* ---- the lookup stack: upstream client + PSK and E2E caches ----------------------------- */

/* The stack a reload replaced: it serves the lookups already under way (no new ones reach it),
 * then closes: caches first, then the client, then the timer. Counted in d->retiring. */
struct pskgw_domain_old_lookup {
    pskgw_domain_t *d;
    pskgw_upstream_t *up;
    pskgw_keycache_t *kc[2];
    unsigned pending; /* caches closing */
    uv_timer_t timer; /* polls for the end of the lookups under way */
};

#define OLD_LOOKUP_POLL_MS 100

static void old_timer_closed(uv_handle_t *h)
{
    struct pskgw_domain_old_lookup *o = h->data;
    pskgw_domain_t *d = o->d;

    if (!d->closing)
        PSKGW_NOTICE("domain \"%s\": the previous security-service client and caches closed",
                     d->cfg->name);
    d->old_lookup = NULL;
    free(o);
    pskgw_domain_retired_done(d);
}

static void old_up_closed(void *arg)
{
    struct pskgw_domain_old_lookup *o = arg;

    uv_close((uv_handle_t *)&o->timer, old_timer_closed);
}

static void old_caches_done(struct pskgw_domain_old_lookup *o)
{
    pskgw_upstream_t *up = o->up;

    o->up = NULL;
    if (up)
        pskgw_upstream_close(up, old_up_closed, o);
    else
        old_up_closed(o);
}

static void old_cache_closed(pskgw_keycache_t *kc)
{
    pskgw_domain_t *d = pskgw_keycache_data(kc);

    if (--d->old_lookup->pending == 0)
        old_caches_done(d->old_lookup);
}

static int old_idle(const struct pskgw_domain_old_lookup *o)
{
    for (int i = 0; i < 2; i++) {
        pskgw_keycache_stats_t st;

        if (!o->kc[i])
            continue;
        pskgw_keycache_stats(o->kc[i], &st);
        if (st.flights > 0)
            return 0;
    }
    return 1;
}

static void old_poll(uv_timer_t *t)
{
    struct pskgw_domain_old_lookup *o = t->data;

    /* at the domain's shutdown, lookups still under way are canceled as they would be anyway */
    if (!o->d->closing && !old_idle(o))
        return;
    uv_timer_stop(t);
    o->pending = (o->kc[0] != NULL) + (o->kc[1] != NULL);
    if (o->pending == 0) {
        old_caches_done(o);
        return;
    }
    for (int i = 0; i < 2; i++)
        if (o->kc[i])
            pskgw_keycache_close(o->kc[i], old_cache_closed);
}

/* Takes what the stack fields of d hold now into a retiring stack (fields cleared). */
static void retire_lookup(pskgw_domain_t *d, struct pskgw_domain_old_lookup *o)
{
    o->d = d;
    o->up = d->up;
    o->kc[0] = d->psk_cache;
    o->kc[1] = d->e2e_cache;
    d->up = NULL;
    d->psk_cache = d->e2e_cache = NULL;
    uv_timer_init(d->loop, &o->timer);
    o->timer.data = o;
    d->old_lookup = o;
    d->retiring++;
    uv_timer_start(&o->timer, old_poll, 0, OLD_LOOKUP_POLL_MS);
}

/* A stack made by a reload, not yet in use. */
struct lookup_prep {
    struct pskgw_domain_old_lookup *o; /* NULL: api and cache unchanged, nothing made */
    pskgw_upstream_t *up;
    pskgw_keycache_t *kc[2];
};

/* Swaps the stack fields of d with p's. */
static void swap_stack(pskgw_domain_t *d, struct lookup_prep *p)
{
    pskgw_upstream_t *up = d->up;
    pskgw_keycache_t *kc0 = d->psk_cache, *kc1 = d->e2e_cache;

    d->up = p->up;
    d->psk_cache = p->kc[0];
    d->e2e_cache = p->kc[1];
    p->up = up;
    p->kc[0] = kc0;
    p->kc[1] = kc1;
}

/* Makes a new upstream client and caches from ncfg when its api or cache settings changed
 * (into p, d unchanged). */
static int lookup_prepare(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg,
                          struct lookup_prep *p)
{
    const pskgw_config_domain_t *ocfg = d->cfg;
    int rc;

    memset(p, 0, sizeof(*p));
    if (api_eq(&ocfg->api, &ncfg->api) && cache_eq(&ocfg->cache, &ncfg->cache))
        return 0;
    if (d->old_lookup) {
        PSKGW_ERR("domain \"%s\": the previous api/cache change is still draining", ncfg->name);
        return PSKGW_EBUSY;
    }
    p->o = calloc(1, sizeof(*p->o));
    if (!p->o)
        return PSKGW_ENOMEM;
    swap_stack(d, p); /* d's fields empty, p holds the running stack */
    d->cfg = ncfg;
    rc = pskgw_domain_start_lookup(d);
    d->cfg = ocfg;
    swap_stack(d, p); /* d runs as before, p holds what was made */
    if (rc < 0) {
        swap_stack(d, p);
        retire_lookup(d, p->o); /* what was made closes */
        swap_stack(d, p);
        p->o = NULL;
    }
    return rc;
}

/* commit: the new stack serves from now on, the old one drains; else the new one closes. */
static void lookup_finish(pskgw_domain_t *d, struct lookup_prep *p, int commit)
{
    if (!p->o)
        return;
    if (commit) {
        retire_lookup(d, p->o);
        swap_stack(d, p);
        PSKGW_NOTICE("domain \"%s\": api or cache settings changed: new security-service "
                     "client and caches (lookups under way finish on the previous ones)",
                     d->cfg->name);
    } else {
        swap_stack(d, p);
        retire_lookup(d, p->o);
        swap_stack(d, p);
    }
}

/* ---- reloading a domain ------------------------------------------------------------------ */

static const pskgw_config_sink_t *find_sink(const pskgw_config_domain_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nsinks; i++)
        if (strcmp(cfg->sinks[i].name, name) == 0)
            return &cfg->sinks[i];
    return NULL;
}

static int update_sinks(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg)
{
    struct pskgw_domain_sink_opts *b = NULL;
    const pskgw_sink_options_t *opts = NULL;
    bool *keep = calloc(ncfg->nsinks, sizeof(*keep));
    int rc = keep ? pskgw_domain_sink_opts(d, ncfg, &b, &opts) : PSKGW_ENOMEM;

    for (size_t i = 0; rc == 0 && i < ncfg->nsinks; i++) {
        const pskgw_config_sink_t *o = find_sink(d->cfg, ncfg->sinks[i].name);

        keep[i] = o && sink_eq(o, &ncfg->sinks[i]);
    }
    if (rc == 0)
        rc = pskgw_sinkset_update(d->sinks, opts, keep, ncfg->nsinks);
    for (size_t i = 0; rc == 0 && i < ncfg->nsinks; i++)
        if (!keep[i])
            PSKGW_NOTICE("domain \"%s\": sink \"%s\" %s", ncfg->name, ncfg->sinks[i].name,
                         find_sink(d->cfg, ncfg->sinks[i].name) ? "changed: replaced" : "added");
    if (rc == PSKGW_EBUSY)
        PSKGW_ERR("domain \"%s\": sinks not reloaded: a spool is locked by another process",
                  ncfg->name);
    else if (rc < 0)
        PSKGW_ERR("domain \"%s\": sinks not reloaded: %s", ncfg->name, pskgw_strerror(rc));
    for (size_t i = 0; rc == 0 && i < d->cfg->nsinks; i++)
        if (!find_sink(ncfg, d->cfg->sinks[i].name))
            PSKGW_NOTICE("domain \"%s\": sink \"%s\" removed", ncfg->name, d->cfg->sinks[i].name);
    pskgw_domain_sink_opts_free(b);
    free(keep);
    return rc;
}

/* The entries of deny_file present in a and not in b: revoked (revoke) or invalidated like
 * POST /admin/revoke or /admin/invalidate. Returns how many; counts what was published and the
 * sessions closed here. */
static size_t deny_diff(pskgw_domain_t *d, const pskgw_config_domain_t *a,
                        const pskgw_config_domain_t *b, bool revoke, size_t *published, int *closed)
{
    size_t n = 0;

    for (size_t i = 0; i < a->ndeny; i++) {
        bool pub = false;
        int c = 0;

        if (pskgw_config_denied(b, a->deny[i]) ||
            pskgw_admin_routes_revoke(d, a->deny[i], revoke, &pub, &c) < 0)
            continue;
        n++;
        *published += pub;
        *closed += c;
    }
    return n;
}

/* ---- e2e settings ---------------------------------------------------------------------- */

static pskgw_e2e_mode_t e2e_mode(const pskgw_config_domain_t *c)
{
    return c->e2e == PSKGW_CONFIG_E2E_REQUIRED ? PSKGW_E2E_MODE_REQUIRED
           : c->e2e == PSKGW_CONFIG_E2E_AUTO   ? PSKGW_E2E_MODE_AUTO
                                               : PSKGW_E2E_MODE_OFF;
}

/* E2E turned on at reload in a domain started without it: its replay table (before anything
 * else changes, so that a failure leaves the domain as it was). *out NULL when none is needed. */
static int e2e_prepare(pskgw_domain_t *d, const pskgw_config_domain_t *n, pskgw_e2e_replay_t **out)
{
    uint8_t seed[16];
    int rc;

    *out = NULL;
    if (d->replay || e2e_mode(n) == PSKGW_E2E_MODE_OFF)
        return 0;
    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        return PSKGW_EIO;
    rc = pskgw_e2e_replay_new(n->e2e_replay_entries, (uint64_t)n->e2e_replay_window_s * 1000u, seed,
                              out);
    pskgw_wipe(seed, sizeof(seed));
    return rc;
}

/* The mode, header case and V2 layout apply to the messages processed from now on (one waiting
 * for its E2E parameters keeps what it was read with); e2e_replay at once (read per message). */
static void e2e_apply(pskgw_domain_t *d, const pskgw_config_domain_t *n, pskgw_e2e_replay_t *rp)
{
    const pskgw_config_domain_t *o = d->cfg;
    pskgw_e2e_opts_t eo = {
        n->e2e_header_case == PSKGW_CONFIG_E2E_HEADER_UPPER ? PSKGW_E2E_HEADER_UPPER
                                                            : PSKGW_E2E_HEADER_LOWER,
        n->e2e_v2_layout == PSKGW_CONFIG_E2E_V2_PAD1 ? PSKGW_E2E_V2_PAD1 : PSKGW_E2E_V2_SEED,
    };

    if (rp)
        d->replay = rp;
    if (o->e2e == n->e2e && o->e2e_header_case == n->e2e_header_case &&
        o->e2e_v2_layout == n->e2e_v2_layout && o->e2e_replay == n->e2e_replay)
        return;
    d->mode = e2e_mode(n);
    (void)pskgw_e2e_set_opts(d->e2e, &eo); /* the config parser validated both */
    PSKGW_NOTICE("domain \"%s\": e2e settings changed: applied to the messages from now on",
                 n->name);
}

/* A changed deny_file reaches the gateways sharing the PSK cache's Redis: a new entry is
 * revoked (its sessions end everywhere, a refusal is stored for negative_ttl_s), a removed one
 * invalidated (that refusal goes at once). */
static void publish_deny_changes(pskgw_domain_t *d, const pskgw_config_domain_t *ocfg)
{
    size_t pa = 0, pr = 0;
    int closed = 0, none = 0;
    size_t added = deny_diff(d, d->cfg, ocfg, true, &pa, &closed);
    size_t removed = deny_diff(d, ocfg, d->cfg, false, &pr, &none);

    if (added > 0)
        PSKGW_NOTICE("domain \"%s\": %zu entr%s new in deny_file revoked (%zu published to the "
                     "gateways sharing the redis; %d session%s closed here)",
                     d->cfg->name, added, added == 1 ? "y" : "ies", pa, closed,
                     closed == 1 ? "" : "s");
    if (removed > 0)
        PSKGW_NOTICE("domain \"%s\": %zu entr%s removed from deny_file invalidated (%zu "
                     "published to the gateways sharing the redis)",
                     d->cfg->name, removed, removed == 1 ? "y" : "ies", pr);
}

/* Listeners, their DTLS contexts and the sinks of ncfg, made or changed; on error the
 * listeners started are retired again and nothing changed. */
static int build_all(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg, struct lctx **next,
                     pskgw_dtls_ctx_t **ctxs)
{
    int rc = pskgw_reload_build_listeners(d, ncfg, next);

    if (rc < 0)
        return rc;
    rc = pskgw_reload_prepare_dtls(d, ncfg, next, ctxs);
    if (rc == 0 && d->sinks) {
        rc = update_sinks(d, ncfg);
        for (size_t i = 0; rc < 0 && i < ncfg->nlisteners; i++) {
            pskgw_dtls_ctx_free(ctxs[i]);
            ctxs[i] = NULL;
        }
    }
    if (rc < 0)
        for (size_t i = 0; i < ncfg->nlisteners; i++)
            if (!pskgw_reload_find_listener(d, &ncfg->listeners[i]))
                pskgw_domain_listener_retire(d, next[i]);
    return rc;
}

int pskgw_domain_reload(pskgw_domain_t *d, const pskgw_config_domain_t *ncfg)
{
    const pskgw_config_domain_t *ocfg;
    pskgw_e2e_replay_t *rp = NULL;
    struct lookup_prep prep = { 0 };
    pskgw_ticket_keys_t *ok, *nk = NULL;
    pskgw_dtls_ctx_t **ctxs;
    struct lctx **next;
    int rc;

    if (d->closing || (!d->sinks && d->cfg->nsinks > 0))
        return PSKGW_ECLOSED;
    if (!d->sinks != (ncfg->nsinks == 0)) {
        PSKGW_ERR("domain \"%s\": not reloaded: a reload cannot %s sinks (a forward-only domain "
                  "gains or loses its sink set at a restart)",
                  ncfg->name, d->sinks ? "remove all the" : "add");
        return PSKGW_ECONFIG;
    }
    next = calloc(ncfg->nlisteners, sizeof(*next));
    ctxs = calloc(ncfg->nlisteners, sizeof(*ctxs));
    rc = next && ctxs ? e2e_prepare(d, ncfg, &rp) : PSKGW_ENOMEM;
    if (rc == 0)
        rc = lookup_prepare(d, ncfg, &prep);
    if (rc < 0) {
        pskgw_e2e_replay_free(rp);
        free(ctxs);
        free(next);
        return rc;
    }
    ok = d->tickets;
    rc = pskgw_resume_keys(ncfg, &nk);
    d->tickets = nk; /* listeners started by this reload take the new keys */
    if (rc == 0)
        rc = build_all(d, ncfg, next, ctxs);
    lookup_finish(d, &prep, rc == 0);
    if (rc < 0) {
        d->tickets = ok;
        pskgw_ticket_keys_free(nk);
        pskgw_e2e_replay_free(rp);
        free(ctxs);
        free(next);
        return rc;
    }
    if (ok != NULL && nk != NULL) /* the counters go on across a rotation */
        *pskgw_ticket_keys_stats(nk) = *pskgw_ticket_keys_stats(ok);
    pskgw_ticket_keys_free(ok);
    warn_unapplied(d->cfg, ncfg);
    e2e_apply(d, ncfg, rp);
    pskgw_reload_commit_listeners(d, ncfg, next, ctxs, nk);
    free(ctxs);
    /* the health check compares the sinks' drop sum with the last one seen: replaced sinks
     * start again from 0 */
    d->drops_seen = 0;
    for (size_t i = 0; d->sinks && i < pskgw_sinkset_count(d->sinks); i++) {
        pskgw_sink_stats_t st;

        if (pskgw_sinkset_stats(d->sinks, i, NULL, &st) == 0)
            d->drops_seen += st.dropped;
    }
    free(d->lis);
    d->lis = next;
    d->nlis = ncfg->nlisteners;
    ocfg = d->cfg;
    d->cfg = ncfg;
    if (d->sinks)
        pskgw_sinkset_reopen(d->sinks);
    publish_deny_changes(d, ocfg);
    return 0;
}
