/* The gateway process: loop, signals, systemd notification, admin endpoint, and the domains. */
#include "gateway/app.h"

#include "common/err.h"
#include "common/log.h"
#include "gateway/admin.h"
#include "gateway/domain.h"
#include "gateway/health.h"
#include "gateway/metrics.h"

#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

#define TICK_MS           1000
#define SHUTDOWN_LIMIT_MS 30000

typedef struct {
    uv_loop_t loop;
    const pskgw_config_t *cfg;
    pskgw_domain_t **domains;
    size_t ndomains;
    size_t open_domains; /* domains not yet closed */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t tick;
    uv_timer_t limit; /* bounds the shutdown */
    pskgw_admin_t *admin;
    pskgw_health_t *health; /* with the admin endpoint */
    pskgw_metrics_t metrics;
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
    if (app->watchdog)
        sd_notify(0, "WATCHDOG=1");
}

static void close_handles(app_t *app)
{
    uv_close((uv_handle_t *)&app->sig_term, NULL);
    uv_close((uv_handle_t *)&app->sig_int, NULL);
    uv_close((uv_handle_t *)&app->sig_hup, NULL);
    uv_close((uv_handle_t *)&app->tick, NULL);
    uv_close((uv_handle_t *)&app->limit, NULL);
    /* Closing the uv_signal handles restored the default actions: a second SIGTERM or SIGINT
     * arriving during the last steps of a shutdown already under way must not kill the process
     * (exit 143 instead of 0). SIGHUP has nothing left to reopen. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
}

static void domain_closed(void *arg)
{
    app_t *app = arg;

    if (--app->open_domains == 0)
        close_handles(app);
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
    uv_timer_start(&app->limit, on_limit, SHUTDOWN_LIMIT_MS, 0);
    for (size_t i = 0; i < app->ndomains; i++)
        n += app->domains[i] != NULL;
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
    app->ndomains = 0;
}

static void on_signal(uv_signal_t *s, int signum)
{
    app_t *app = s->data;

    if (signum == SIGHUP) {
        PSKGW_NOTICE("SIGHUP: reopening output files");
        for (size_t i = 0; i < app->ndomains; i++)
            pskgw_domain_reopen(app->domains[i]);
        return;
    }
    stop(app, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int start_handles(app_t *app)
{
    uv_signal_t *sigs[3] = { &app->sig_term, &app->sig_int, &app->sig_hup };
    const int nums[3] = { SIGTERM, SIGINT, SIGHUP };

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

/* Workers share one configuration: worker N serves admin.port + N (port 0 stays "any"), so
 * every worker's metrics can be scraped. */
static int start_admin(app_t *app, int worker)
{
    const pskgw_config_admin_t *a = &app->cfg->admin;
    unsigned port = a->port;
    int rc;

    if (port && worker > 0)
        port += (unsigned)worker;
    if (port > UINT16_MAX) {
        PSKGW_ERR("admin endpoint: port %u + worker %d is above 65535", (unsigned)a->port, worker);
        return PSKGW_ECONFIG;
    }
    rc = pskgw_health_new(&app->health);
    if (rc == 0)
        rc = pskgw_admin_start(a->address, (uint16_t)port, &app->admin);
    if (rc < 0)
        PSKGW_ERR("admin endpoint on %s:%u not started: %s", a->address, port,
                  rc == PSKGW_EEXISTS ? "address in use (or not bindable)" : pskgw_strerror(rc));
    else
        PSKGW_NOTICE("admin endpoint on http://%s:%u/metrics", a->address,
                     (unsigned)pskgw_admin_port(app->admin));
    return rc;
}

int pskgw_app_run(const pskgw_config_t *cfg, const pskgw_app_opts_t *opts)
{
    app_t app;
    uint64_t usec = 0;
    int rc;

    memset(&app, 0, sizeof(app));
    app.cfg = cfg;
    pskgw_metrics_init(&app.metrics);
    if (uv_loop_init(&app.loop) < 0)
        return PSKGW_EIO;
    app.domains = calloc(cfg->ndomains ? cfg->ndomains : 1, sizeof(*app.domains));
    if (!app.domains) {
        uv_loop_close(&app.loop);
        return PSKGW_ENOMEM;
    }
    app.ndomains = cfg->ndomains;
    rc = start_handles(&app);
    for (size_t i = 0; rc == 0 && i < cfg->ndomains; i++) {
        rc = pskgw_domain_start(&app.loop, &cfg->domains[i], opts->worker, &app.domains[i]);
        if (rc < 0)
            PSKGW_ERR("domain \"%s\" could not start: %s", cfg->domains[i].name,
                      pskgw_strerror(rc));
    }
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
    free(app.domains);
    if (uv_loop_close(&app.loop) != 0) {
        PSKGW_ERR("handles still open at exit");
        app.failed = 1;
    }
    if (!app.failed)
        PSKGW_NOTICE("stopped");
    return app.failed ? (rc < 0 ? rc : PSKGW_EINTERNAL) : 0;
}
