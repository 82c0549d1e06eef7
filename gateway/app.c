/* The gateway process: loop, signals, systemd notification, admin endpoint, and the domains. */
#include "gateway/app.h"

#include "common/err.h"
#include "common/log.h"
#include "dtls/slab.h"
#include "gateway/admin.h"
#include "gateway/admin_routes.h"
#include "gateway/domain.h"
#include "gateway/handover.h"
#include "gateway/health.h"
#include "gateway/metrics.h"
#include "gateway/reload.h"

#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

#define TICK_MS           1000
#define SHUTDOWN_LIMIT_MS 30000

/* One loaded configuration, freed when no domain borrows from it and it is not the current
 * one any more. */
struct gen {
    pskgw_config_t *cfg;
    size_t refs;
};

typedef struct {
    uv_loop_t loop;
    const pskgw_config_t *cfg; /* the current configuration (cur->cfg) */
    struct gen *cur;
    const pskgw_app_opts_t *opts;
    pskgw_domain_t **domains; /* running domains, cap entries */
    struct gen **dgen;        /* the configuration each borrows from */
    const pskgw_config_domain_t **dcfg;
    size_t ndomains;
    size_t cap;
    size_t nstopped;     /* dgen[] entries still referenced after stop() */
    size_t draining;     /* domains a reload removed that have not closed yet */
    size_t open_domains; /* domains not yet closed */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t tick;
    uv_timer_t limit;      /* bounds the shutdown */
    uv_async_t admin_wake; /* MHD's thread -> the loop: /admin/ requests wait */
    pskgw_admin_t *admin;
    pskgw_health_t *health; /* with the admin endpoint */
    pskgw_metrics_t metrics;
    uint64_t reloads_ok;      /* reloads applied (some domains may have kept their config) */
    uint64_t reloads_refused; /* reloads that changed nothing */
    double last_reload_ok_s;  /* wall time of the last applied reload (or of the start) */
    int last_reload_ok;       /* 1 unless the last reload was refused */
    int watchdog;
    int stopping;
    int failed;
} app_t;

/* Metrics and readiness (gateway/health.h) for the admin endpoint; publishing is also the
 * beat that keeps /health at 200. */
static void publish(app_t *app)
{
    char *json = NULL;
    int ready;

    if (!app->admin)
        return;
    pskgw_metrics_reset(&app->metrics);
    pskgw_metrics_family(&app->metrics, "pskgw_up", "gauge", "1 while the gateway runs");
    pskgw_metrics_sample(&app->metrics, "pskgw_up", NULL, 1);
    pskgw_metrics_process(&app->metrics, PSKGW_VERSION);
    pskgw_metrics_family(&app->metrics, "pskgw_config_reloads_total", "counter",
                         "SIGHUP reloads: applied, or refused (the running configuration kept)");
    pskgw_metrics_sample(&app->metrics, "pskgw_config_reloads_total", "result=\"applied\"",
                         app->reloads_ok);
    pskgw_metrics_sample(&app->metrics, "pskgw_config_reloads_total", "result=\"refused\"",
                         app->reloads_refused);
    pskgw_metrics_family(&app->metrics, "pskgw_config_last_reload_successful", "gauge",
                         "0 when the last reload was refused");
    pskgw_metrics_sample(&app->metrics, "pskgw_config_last_reload_successful", NULL,
                         (uint64_t)app->last_reload_ok);
    pskgw_metrics_family(&app->metrics, "pskgw_config_last_reload_success_timestamp_seconds",
                         "gauge", "when the configuration was last loaded (start or reload)");
    pskgw_metrics_sample_f(&app->metrics, "pskgw_config_last_reload_success_timestamp_seconds",
                           NULL, app->last_reload_ok_s);
    pskgw_domain_metrics(app->domains, app->ndomains, &app->metrics);
    ready = pskgw_health_judge(app->health, app->domains, app->ndomains, app->stopping,
                               uv_now(&app->loop), &app->metrics, &json);
    if (ready < 0 || app->metrics.failed ||
        pskgw_admin_publish(app->admin, app->metrics.text, app->metrics.len, ready == 1, json) < 0)
        pskgw_admin_beat(app->admin); /* alive, though nothing new could be published */
    free(json);
}

static void on_tick(uv_timer_t *t)
{
    app_t *app = t->data;

    publish(app);
    pskgw_admin_reap(app->admin);
    if (app->watchdog)
        sd_notify(0, "WATCHDOG=1");
}

static void close_handles(app_t *app)
{
    pskgw_handover_save(); /* every domain has closed: the sessions they exported, if any */
    if (app->admin)
        pskgw_admin_stop_routes(app->admin);
    uv_close((uv_handle_t *)&app->admin_wake, NULL);
    uv_close((uv_handle_t *)&app->tick, NULL);
    uv_close((uv_handle_t *)&app->limit, NULL);
    /* Closing a uv_signal handle restores the signal's default action: a second SIGTERM or
     * SIGINT arriving during the last steps of a shutdown already under way must not kill the
     * process (exit 143 instead of 0), so each is ignored right after its handle closes, nothing
     * in between (SIGHUP has nothing left to reopen). */
    uv_close((uv_handle_t *)&app->sig_term, NULL);
    signal(SIGTERM, SIG_IGN);
    uv_close((uv_handle_t *)&app->sig_int, NULL);
    signal(SIGINT, SIG_IGN);
    uv_close((uv_handle_t *)&app->sig_hup, NULL);
    signal(SIGHUP, SIG_IGN);
}

static void domain_closed(void *arg)
{
    app_t *app = arg;

    if (--app->open_domains == 0)
        close_handles(app);
}

static struct gen *gen_ref(struct gen *g)
{
    g->refs++;
    return g;
}

static void gen_unref(struct gen *g)
{
    if (g && --g->refs == 0) {
        pskgw_config_free(g->cfg);
        free(g);
    }
}

struct drain {
    app_t *app;
    struct gen *g;
};

static void domain_drained(void *arg)
{
    struct drain *dr = arg;
    app_t *app = dr->app;

    gen_unref(dr->g);
    free(dr);
    app->draining--;
    if (app->stopping)
        domain_closed(app);
}

static void on_limit(uv_timer_t *t)
{
    app_t *app = t->data;

    PSKGW_ERR("shutdown did not finish within %d ms; stopping the loop", SHUTDOWN_LIMIT_MS);
    app->failed = 1;
    uv_stop(&app->loop);
}

static void stop(app_t *app, const char *why)
{
    size_t n = 0;

    if (app->stopping)
        return;
    app->stopping = 1;
    publish(app); /* /ready answers 503 "stopping" from now on: load balancers drain the node */
    PSKGW_NOTICE("stopping (%s)", why);
    sd_notify(0, "STOPPING=1");
    if (!app->failed)
        pskgw_handover_arm(); /* listeners export their sessions instead of closing them */
    uv_timer_start(&app->limit, on_limit, SHUTDOWN_LIMIT_MS, 0);
    for (size_t i = 0; i < app->ndomains; i++)
        n += app->domains[i] != NULL;
    n += app->draining; /* their close callbacks come through domain_closed too */
    app->open_domains = n;
    if (n == 0) {
        close_handles(app);
        return;
    }
    for (size_t i = 0; i < app->ndomains; i++) {
        pskgw_domain_t *d = app->domains[i];

        if (d)
            pskgw_domain_close(d, domain_closed, app);
    }
    /* The domains free themselves; the metrics must not look at them any more. */
    app->nstopped = app->ndomains;
    app->ndomains = 0;
}

/* Slot i of the running domains is taken by d (borrowing from g). */
static int add_domain(app_t *app, pskgw_domain_t *d, struct gen *g, const pskgw_config_domain_t *c)
{
    if (app->ndomains == app->cap) {
        size_t cap = app->cap ? 2 * app->cap : 4;
        pskgw_domain_t **a = realloc(app->domains, cap * sizeof(*a));
        struct gen **b = a ? realloc(app->dgen, cap * sizeof(*b)) : NULL;
        const pskgw_config_domain_t **cs = b ? realloc(app->dcfg, cap * sizeof(*cs)) : NULL;

        if (a)
            app->domains = a;
        if (b)
            app->dgen = b;
        if (!cs)
            return PSKGW_ENOMEM;
        app->dcfg = cs;
        app->cap = cap;
    }
    app->domains[app->ndomains] = d;
    app->dgen[app->ndomains] = gen_ref(g);
    app->dcfg[app->ndomains] = c;
    app->ndomains++;
    return 0;
}

/* The files a reload read, and which of them are invalid. */
struct files {
    char **v;
    size_t n;
    bool *broken;
};

static int file_broken(const struct files *f, const char *source)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->broken[i] && strcmp(f->v[i], source) == 0)
            return 1;
    return 0;
}

/* Running domain i against the new configuration g: reloaded, kept (its file is invalid, or
 * the reload failed), or drained. 1 when slot i was removed. */
static int reload_domain(app_t *app, size_t i, struct gen *g, const struct files *f)
{
    const pskgw_config_domain_t *nd = pskgw_config_find_domain(g->cfg, app->dcfg[i]->name);
    struct drain *dr;

    if (nd) {
        if (pskgw_domain_reload(app->domains[i], nd) == 0) {
            gen_unref(app->dgen[i]);
            app->dgen[i] = gen_ref(g);
            app->dcfg[i] = nd;
        } else {
            PSKGW_ERR("domain \"%s\": reload failed: it keeps its previous configuration",
                      nd->name);
            pskgw_domain_reopen(app->domains[i]);
        }
        return 0;
    }
    if (file_broken(f, app->dcfg[i]->source) || !(dr = malloc(sizeof(*dr)))) {
        PSKGW_ERR("domain \"%s\": not reloaded (%s is invalid): it keeps its previous "
                  "configuration",
                  app->dcfg[i]->name, app->dcfg[i]->source);
        pskgw_domain_reopen(app->domains[i]);
        return 0;
    }
    PSKGW_NOTICE("domain \"%s\": removed from the configuration: draining", app->dcfg[i]->name);
    dr->app = app;
    dr->g = app->dgen[i];
    app->draining++;
    pskgw_domain_close(app->domains[i], domain_drained, dr);
    app->ndomains--;
    app->domains[i] = app->domains[app->ndomains];
    app->dgen[i] = app->dgen[app->ndomains];
    app->dcfg[i] = app->dcfg[app->ndomains];
    return 1;
}

/* A domain started by a reload: if it fails, its partial close borrows from g until it ends
 * (counted with the draining domains). */
static int start_domain(app_t *app, const pskgw_config_domain_t *nd, struct gen *g,
                        pskgw_domain_t **out)
{
    struct drain *dr = malloc(sizeof(*dr));
    bool later = false;
    int rc;

    if (!dr)
        return PSKGW_ENOMEM;
    dr->app = app;
    dr->g = gen_ref(g);
    app->draining++;
    rc = pskgw_domain_start_cb(&app->loop, nd, app->opts->worker, out, domain_drained, dr, &later);
    if (rc == 0 || !later) { /* started, or nothing was made: dr is not needed */
        app->draining--;
        gen_unref(dr->g);
        free(dr);
    }
    return rc;
}

static void start_new_domains(app_t *app, struct gen *g)
{
    for (size_t j = 0; j < g->cfg->ndomains; j++) {
        const pskgw_config_domain_t *nd = &g->cfg->domains[j];
        pskgw_domain_t *d = NULL;
        size_t i = 0;
        int rc;

        while (i < app->ndomains && strcmp(app->dcfg[i]->name, nd->name) != 0)
            i++;
        if (i < app->ndomains)
            continue;
        rc = start_domain(app, nd, g, &d);
        if (rc == 0 && (rc = add_domain(app, d, g, nd)) < 0)
            pskgw_domain_close(d, NULL, NULL);
        if (rc < 0)
            PSKGW_ERR("domain \"%s\": added by the reload but not started: %s", nd->name,
                      pskgw_strerror(rc));
        else
            PSKGW_NOTICE("domain \"%s\": added by the reload and started", nd->name);
    }
}

static double wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads the files again: 0 and *out, or an error (logged). */
static int reload_load(app_t *app, struct files *f, pskgw_config_t **out)
{
    const pskgw_app_opts_t *o = app->opts;
    int rc;

    if (o->nfiles + o->ndirs == 0)
        return PSKGW_EUNSUPPORTED; /* run without files (tests): reopen only */
    rc = pskgw_reload_files(o->files, o->nfiles, o->dirs, o->ndirs, &f->v, &f->n);
    if (rc < 0)
        return rc;
    f->broken = calloc(f->n, sizeof(*f->broken));
    if (!f->broken)
        return PSKGW_ENOMEM;
    return pskgw_reload_load((const char *const *)f->v, f->n, out, f->broken);
}

/* The admin port of this process: admin.port + worker N (port 0 stays "any"); 0 above 65535. */
static unsigned admin_port(const pskgw_config_admin_t *a, int worker)
{
    unsigned port = a->port;

    if (port && worker > 0)
        port += (unsigned)worker;
    return port > UINT16_MAX ? 0 : port;
}

/* A changed admin address or port: the endpoint moves there (pskgw_admin_rebind), or stays
 * where it is when the new address cannot be bound. */
static void reload_admin_address(app_t *app, const pskgw_config_t *n)
{
    const pskgw_config_admin_t *o = &app->cfg->admin, *a = &n->admin;
    unsigned port = admin_port(a, app->opts->worker), old = pskgw_admin_port(app->admin);
    int rc;

    if (strcmp(o->address, a->address) == 0 && o->port == a->port)
        return;
    rc = port || !a->port ? pskgw_admin_rebind(app->admin, a->address, (uint16_t)port)
                          : PSKGW_ECONFIG;
    if (rc < 0) {
        PSKGW_ERR("admin endpoint: not moved to %s:%u: %s; it stays on http://%s:%u/metrics",
                  a->address, port ? port : (unsigned)a->port,
                  rc == PSKGW_EEXISTS   ? "address in use (or not bindable)"
                  : rc == PSKGW_ECONFIG ? "port + worker above 65535"
                                        : pskgw_strerror(rc),
                  o->address, old);
        return;
    }
    PSKGW_NOTICE("admin endpoint on http://%s:%u/metrics (moved from %s:%u by the reload)",
                 a->address, (unsigned)pskgw_admin_port(app->admin), o->address, old);
    publish(app); /* the new address answers with the current state at once */
}

/* The admin endpoint's token is replaced at once. */
static void reload_admin_token(app_t *app, const pskgw_config_t *n)
{
    const pskgw_config_secret_t *o = &app->cfg->admin.token;
    const pskgw_config_secret_t *t = &n->admin.token;

    if (!app->admin || (o->data == NULL && t->data == NULL) ||
        (o->data && t->data && o->len == t->len && memcmp(o->data, t->data, o->len) == 0))
        return;
    if (pskgw_admin_set_token(app->admin, t->data, t->len) < 0)
        PSKGW_ERR("admin endpoint: the new token could not be set (out of memory): the old one "
                  "stays");
    else if (t->data)
        PSKGW_NOTICE("admin endpoint: token replaced");
    else
        PSKGW_WARN("admin endpoint: token removed: any local process can call the /admin/ routes");
}

static void reload(app_t *app)
{
    struct timespec ts;
    struct files f = { NULL, 0, NULL };
    pskgw_config_t *ncfg = NULL;
    struct gen *g = NULL;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
    PSKGW_NOTICE("SIGHUP: reloading the configuration");
    rc = reload_load(app, &f, &ncfg);
    if (rc == 0 && !(g = calloc(1, sizeof(*g)))) {
        pskgw_config_free(ncfg);
        rc = PSKGW_ENOMEM;
    }
    app->last_reload_ok = rc == 0;
    if (rc < 0) {
        app->reloads_refused++;
        PSKGW_ERR("reload refused (%s): the running configuration is kept", pskgw_strerror(rc));
        for (size_t i = 0; i < app->ndomains; i++)
            pskgw_domain_reopen(app->domains[i]);
    } else {
        pskgw_reload_warn_global(app->cfg, ncfg);
        pskgw_reload_log(app->cfg, ncfg, app->opts->cli_log_level, app->opts->cli_log_format);
        if (app->admin && ncfg->has_admin)
            reload_admin_address(app, ncfg);
        reload_admin_token(app, ncfg);
        app->reloads_ok++;
        app->last_reload_ok_s = wall_s();
        g->cfg = ncfg;
        g->refs = 1; /* the current configuration */
        for (size_t i = 0; i < app->ndomains;)
            i += !reload_domain(app, i, g, &f);
        start_new_domains(app, g);
        gen_unref(app->cur);
        app->cur = g;
        app->cfg = ncfg;
        PSKGW_NOTICE("reload done: %zu domain%s running", app->ndomains,
                     app->ndomains == 1 ? "" : "s");
    }
    pskgw_reload_files_free(f.v, f.n);
    free(f.broken);
    sd_notify(0, "READY=1");
}

static void on_signal(uv_signal_t *s, int signum)
{
    app_t *app = s->data;

    if (signum == SIGHUP) {
        if (!app->stopping)
            reload(app);
        return;
    }
    stop(app, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void admin_handle(void *arg, pskgw_admin_req_t *req)
{
    app_t *app = arg;

    if (app->stopping) {
        pskgw_admin_reply(req, 503, "{\"error\":\"stopping\"}\n");
        return;
    }
    pskgw_admin_routes_handle(app->domains, app->ndomains, req);
}

static void on_admin_wake(uv_async_t *h)
{
    app_t *app = h->data;

    if (app->admin)
        pskgw_admin_serve(app->admin, admin_handle, app);
}

static int start_handles(app_t *app)
{
    uv_signal_t *sigs[3] = { &app->sig_term, &app->sig_int, &app->sig_hup };
    const int nums[3] = { SIGTERM, SIGINT, SIGHUP };

    if (uv_async_init(&app->loop, &app->admin_wake, on_admin_wake) < 0)
        return PSKGW_EIO;
    app->admin_wake.data = app;

    for (int i = 0; i < 3; i++) {
        uv_signal_init(&app->loop, sigs[i]);
        sigs[i]->data = app;
        if (uv_signal_start(sigs[i], on_signal, nums[i]) < 0)
            return PSKGW_EIO;
    }
    uv_timer_init(&app->loop, &app->tick);
    uv_timer_init(&app->loop, &app->limit);
    app->tick.data = app;
    app->limit.data = app;
    return 0;
}

static void wake_loop(void *arg)
{
    uv_async_send(arg); /* thread-safe: the only call MHD's thread makes into the loop */
}

/* Workers share one configuration: worker N serves admin.port + N (port 0 stays "any"), so
 * every worker's metrics can be scraped. */
static int start_admin(app_t *app, int worker)
{
    const pskgw_config_admin_t *a = &app->cfg->admin;
    pskgw_admin_opts_t aopts = { a->token.data, a->token.len, wake_loop, &app->admin_wake };
    unsigned port = admin_port(a, worker);
    int rc;

    if (a->port && !port) {
        PSKGW_ERR("admin endpoint: port %u + worker %d is above 65535", (unsigned)a->port, worker);
        return PSKGW_ECONFIG;
    }
    rc = pskgw_health_new(&app->health);
    if (rc == 0)
        rc = pskgw_admin_start_opts(a->address, (uint16_t)port, &aopts, &app->admin);
    if (rc < 0)
        PSKGW_ERR("admin endpoint on %s:%u not started: %s", a->address, port,
                  rc == PSKGW_EEXISTS ? "address in use (or not bindable)" : pskgw_strerror(rc));
    else
        PSKGW_NOTICE("admin endpoint on http://%s:%u/metrics", a->address,
                     (unsigned)pskgw_admin_port(app->admin));
    if (rc == 0 && !a->token.data)
        PSKGW_WARN("admin endpoint: no admin.token_file: any local process can call the /admin/ "
                   "routes (invalidate, reload)");
    return rc;
}

/* Which memory the slab hands out, said once at start (dtls/ does no I/O; the metric
 * pskgw_slab_active says it on every scrape): where the range cannot be reserved, the memory
 * figures of docs/OPERATIONS.md do not hold. */
static void log_slab_mode(void)
{
    pskgw_slab_mode_t m;

    pskgw_slab_mode(&m);
    if (m.active)
        PSKGW_INFO("slab: active, sessions' memory from a reserved range (%zu GiB of address "
                   "space, MAP_NORESERVE)",
                   PSKGW_SLAB_REGION >> 30);
    else
        PSKGW_INFO("slab: not active, sessions' memory from malloc: %s%s%s%s", m.why,
                   m.err ? " (\"" : "", m.err ? strerror(m.err) : "", m.err ? "\")" : "");
}

int pskgw_app_run(pskgw_config_t *cfg, const pskgw_app_opts_t *opts)
{
    app_t app;
    uint64_t usec = 0;
    int rc;

    memset(&app, 0, sizeof(app));
    app.opts = opts;
    app.cur = calloc(1, sizeof(*app.cur));
    if (!app.cur) {
        pskgw_config_free(cfg);
        return PSKGW_ENOMEM;
    }
    app.cur->cfg = cfg;
    app.cur->refs = 1;
    app.cfg = cfg;
    app.last_reload_ok = 1;
    app.last_reload_ok_s = wall_s();
    pskgw_metrics_init(&app.metrics);
    if (uv_loop_init(&app.loop) < 0) {
        gen_unref(app.cur);
        return PSKGW_EIO;
    }
    log_slab_mode();
    rc = start_handles(&app);
    if (rc == 0 && cfg->ndomains > 0)
        (void)pskgw_handover_init(cfg->domains[0].state_dir,
                                  cfg->domains[0].cache.has_kek ? cfg->domains[0].cache.kek : NULL,
                                  opts->worker);
    for (size_t i = 0; rc == 0 && i < cfg->ndomains; i++) {
        pskgw_domain_t *d = NULL;

        rc = pskgw_domain_start(&app.loop, &cfg->domains[i], opts->worker, &d);
        if (rc < 0)
            PSKGW_ERR("domain \"%s\" could not start: %s", cfg->domains[i].name,
                      pskgw_strerror(rc));
        else if ((rc = add_domain(&app, d, app.cur, &cfg->domains[i])) < 0)
            pskgw_domain_close(d, NULL, NULL);
    }
    pskgw_handover_done(); /* what no listener took */
    if (rc == 0 && cfg->has_admin)
        rc = start_admin(&app, opts->worker);
    if (rc < 0) {
        app.failed = 1;
        stop(&app, "start-up failed");
    } else {
        uint64_t tick_ms = TICK_MS;

        /* systemd wants WATCHDOG=1 within WatchdogSec: ping at least twice per period. */
        app.watchdog = sd_watchdog_enabled(0, &usec) > 0;
        if (app.watchdog && usec / 2000 < tick_ms)
            tick_ms = usec / 2000 ? usec / 2000 : 1;
        uv_timer_start(&app.tick, on_tick, 0, tick_ms);
        PSKGW_NOTICE("pskgw %s running: %zu domain%s%s", PSKGW_VERSION, cfg->ndomains,
                     cfg->ndomains == 1 ? "" : "s",
                     opts->worker >= 0 ? " (worker with SO_REUSEPORT)" : "");
        sd_notify(0, "READY=1");
    }
    uv_run(&app.loop, UV_RUN_DEFAULT);
    pskgw_admin_free(app.admin);
    pskgw_health_free(app.health);
    pskgw_metrics_deinit(&app.metrics);
    /* stop() forgot the domains (they freed themselves); their configurations go now */
    for (size_t i = 0; i < app.nstopped; i++)
        gen_unref(app.dgen[i]);
    gen_unref(app.cur);
    free(app.domains);
    free(app.dgen);
    free(app.dcfg);
    if (uv_loop_close(&app.loop) != 0) {
        PSKGW_ERR("handles still open at exit");
        app.failed = 1;
    }
    if (!app.failed)
        PSKGW_NOTICE("stopped");
    return app.failed ? (rc < 0 ? rc : PSKGW_EINTERNAL) : 0;
}
