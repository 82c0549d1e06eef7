/* pskgw-devsim: the fleet on one libuv loop (see fleet.h): error names, the start ramp, the
 * samples and progress lines, the stop and the end. One device is fleet_dev.c, its sockets
 * fleet_sock.c. */
#include "tools/devsim/fleet_internal.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/err.h"
#include "tools/devsim/creds.h"
#include "tools/devsim/payload.h"
#include "tools/rotkeys/rotkeys.h"

static const char *const err_keys[] = {
#define K_(name, key, text) key,
    PSKGW_DEVSIM_ERROR_MAP(K_)
#undef K_
};
static const char *const err_texts[] = {
#define T_(name, key, text) text,
    PSKGW_DEVSIM_ERROR_MAP(T_)
#undef T_
};

const char *pskgw_devsim_error_key(pskgw_devsim_error_t e)
{
    return (unsigned)e < PSKGW_DEVSIM_ERR_COUNT ? err_keys[e] : "unknown";
}

const char *pskgw_devsim_error_text(pskgw_devsim_error_t e)
{
    return (unsigned)e < PSKGW_DEVSIM_ERR_COUNT ? err_texts[e] : "unknown";
}

uint64_t pskgw_devsim_stats_errors(const pskgw_devsim_stats_t *s)
{
    uint64_t t = 0;
    for (int i = 0; i < PSKGW_DEVSIM_ERR_COUNT; i++)
        t += s->errors[i];
    return t;
}

uint64_t pskgw_devsim_stats_hs_failures(const pskgw_devsim_stats_t *s)
{
    return s->errors[PSKGW_DEVSIM_ERR_HS_ALERT] + s->errors[PSKGW_DEVSIM_ERR_HS_TIMEOUT] +
           s->errors[PSKGW_DEVSIM_ERR_HS_ERROR];
}

void pskgw_devsim_stats_deinit(pskgw_devsim_stats_t *s)
{
    if (s == NULL)
        return;
    free(s->samples);
    free(s->sent_by_device);
    s->samples = NULL;
    s->sent_by_device = NULL;
}

static void fleet_finish(fleet_t *f);

/* The run ends by itself when every device has ended and the attack (if any) is done. */
void fleet_maybe_finish(fleet_t *f)
{
    if (!f->finishing && f->s->ended == f->n && (f->hostile == NULL || f->s->attack.done))
        fleet_finish(f);
}

static void on_hostile_done(void *arg)
{
    fleet_maybe_finish(arg);
}

/* ---- the run ---- */

static void on_ramp(uv_timer_t *t)
{
    fleet_t *f = t->data;
    double elapsed = (double)(uv_hrtime() - f->t0_ns) / 1e9;
    uint64_t due = f->o->ramp <= 0 ? f->n : (uint64_t)floor(elapsed * f->o->ramp) + 1;
    if (due > f->n)
        due = f->n;
    uint32_t batch = 0;
    while (f->next_start < due && batch < START_BATCH && !f->finishing) {
        fleet_dev_start(&f->dev[f->next_start++]);
        batch++;
    }
    if (f->next_start >= f->n)
        uv_timer_stop(&f->ramp_timer);
}

static void progress_line(fleet_t *f, const pskgw_devsim_sample_t *smp, bool final)
{
    const pskgw_devsim_stats_t *s = f->s;
    char errs[256];
    size_t off = 0;
    errs[0] = '\0';
    for (int i = 0; i < PSKGW_DEVSIM_ERR_COUNT; i++) {
        if (s->errors[i] == 0)
            continue;
        int w = snprintf(errs + off, sizeof(errs) - off, " %s=%llu", pskgw_devsim_error_key(i),
                         (unsigned long long)s->errors[i]);
        if (w < 0 || (size_t)w >= sizeof(errs) - off)
            break;
        off += (size_t)w;
    }
    char lat[96] = "";
    if (f->o->expect_ack)
        snprintf(lat, sizeof(lat), " msg p50/p99 %.1f/%.1f ms", (double)smp->msg_p50_us / 1000.0,
                 (double)smp->msg_p99_us / 1000.0);
    fprintf(stderr,
            "%s[%5.0fs] up %u/%u  hs/s %llu  msg/s %llu  hs p50/p99 %.1f/%.1f ms%s  "
            "expected-fail %llu  errors%s%s%s",
            f->tty ? "\r\033[K" : "", smp->t, s->up, s->devices,
            (unsigned long long)smp->handshakes, (unsigned long long)smp->messages,
            (double)smp->hs_p50_us / 1000.0, (double)smp->hs_p99_us / 1000.0, lat,
            (unsigned long long)s->expected_failures, off == 0 ? " 0" : errs,
            f->tty && !final ? "" : "\n", "");
    fflush(stderr);
}

static void take_sample(fleet_t *f, bool final)
{
    pskgw_devsim_stats_t *s = f->s;
    if (s->n_samples == f->samples_cap) {
        size_t cap = f->samples_cap ? f->samples_cap * 2 : 64;
        pskgw_devsim_sample_t *ns = realloc(s->samples, cap * sizeof(*ns));
        if (ns == NULL)
            return;
        s->samples = ns;
        f->samples_cap = cap;
    }
    pskgw_devsim_sample_t *smp = &s->samples[s->n_samples++];
    uint64_t errs = pskgw_devsim_stats_errors(s);
    smp->t = (double)(uv_hrtime() - f->t0_ns) / 1e9;
    smp->devices_up = s->up;
    smp->handshakes = s->handshakes_ok - f->last_hs;
    smp->messages = s->messages_sent - f->last_msgs;
    smp->acks = s->acks - f->last_acks;
    smp->errors = errs - f->last_errs;
    smp->hs_p50_us = pskgw_devsim_hist_quantile(&f->hs_sec, 0.50);
    smp->hs_p99_us = pskgw_devsim_hist_quantile(&f->hs_sec, 0.99);
    smp->msg_p50_us = pskgw_devsim_hist_quantile(&f->msg_sec, 0.50);
    smp->msg_p99_us = pskgw_devsim_hist_quantile(&f->msg_sec, 0.99);
    f->last_hs = s->handshakes_ok;
    f->last_msgs = s->messages_sent;
    f->last_acks = s->acks;
    f->last_errs = errs;
    pskgw_devsim_hist_reset(&f->hs_sec);
    pskgw_devsim_hist_reset(&f->msg_sec);
    if (f->o->quiet)
        return;
    if (f->tty || final || smp->t + 0.05 >= f->next_plain_progress) {
        progress_line(f, smp, final);
        while (f->next_plain_progress <= smp->t + 0.05)
            f->next_plain_progress += f->o->progress_interval;
    }
}

static void on_tick(uv_timer_t *t)
{
    take_sample(t->data, false);
}

static void on_stop(uv_timer_t *t)
{
    fleet_t *f = t->data;
    if (!f->finishing)
        fleet_finish(f);
}

static void on_signal(uv_signal_t *h, int signum)
{
    fleet_t *f = h->data;
    (void)signum;
    f->s->interrupted = true;
    if (!f->finishing)
        fleet_finish(f);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        if (h->type == UV_UDP || h->type == UV_TCP)
            uv_close(h, fleet_on_sock_closed);
        else
            uv_close(h, NULL);
    }
}

/* The run ends: count what did not finish, end every device, close every handle. */
static void fleet_finish(fleet_t *f)
{
    if (f->finishing)
        return;
    f->finishing = true;
    pskgw_devsim_stats_t *s = f->s;
    for (uint32_t i = 0; i < f->n; i++) {
        device_t *d = &f->dev[i];
        if (d->state == D_ENDED)
            continue;
        if (d->kind != PSKGW_DEVSIM_GOOD) {
            if (d->state == D_IDLE || d->state == D_CONNECTING || d->state == D_HANDSHAKING) {
                /* never got in: as expected (a device never started is counted the same) */
                s->expected_failures++;
                if (d->kind == PSKGW_DEVSIM_UNKNOWN)
                    s->expected_unknown++;
                else
                    s->expected_wrong_psk++;
            }
        } else if (d->state == D_DRAINING && d->after_drain == AFTER_FINISH) {
            if (d->acks < d->sent)
                fleet_count_error(d, PSKGW_DEVSIM_ERR_ACK_MISSING, d->sent - d->acks);
            fleet_check_echo(d);
            s->completed++;
        } else if (d->state != D_HOLDING) {
            fleet_count_error(d, PSKGW_DEVSIM_ERR_UNFINISHED, 1);
        }
        if (d->state == D_IDLE) {
            d->state = D_ENDED;
            s->ended++;
        } else {
            fleet_dev_end(d);
        }
    }
    s->elapsed_s = (double)(uv_hrtime() - f->t0_ns) / 1e9;
    take_sample(f, true);
    /* The attack's handles first, with their own close callbacks (close_any's are the devices'). */
    pskgw_devsim_hostile_stop(f->hostile);
    uv_walk(&f->loop, close_any, NULL);
}

static void raise_fd_limit(uint32_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want + 64)
        fprintf(stderr,
                "pskgw-devsim: warning: %llu file descriptors allowed for %u devices; raise "
                "'ulimit -n' (hard limit) or some devices will fail with socket errors\n",
                (unsigned long long)rl.rlim_cur, want);
}

/* Every device's index, kind and idleness, counted. */
static void init_devices(fleet_t *f)
{
    const pskgw_devsim_opts_t *o = f->o;
    pskgw_devsim_stats_t *stats = f->s;
    stats->devices = o->devices;
    for (uint32_t i = 0; i < o->devices; i++) {
        device_t *d = &f->dev[i];
        d->f = f;
        d->index = i;
        d->kind = (uint8_t)pskgw_devsim_kind_of(i, o->unknown_share, o->wrong_psk_share);
        d->idle = o->idle_interval > 0 && fleet_share_hit(i, o->idle_share);
        stats->good += d->kind == PSKGW_DEVSIM_GOOD;
        stats->unknown += d->kind == PSKGW_DEVSIM_UNKNOWN;
        stats->wrong_psk += d->kind == PSKGW_DEVSIM_WRONG_PSK;
        stats->idle += d->idle;
    }
    stats->messages_planned = (uint64_t)stats->good * o->messages;
}

int pskgw_devsim_fleet_run(const pskgw_devsim_opts_t *o, uint32_t run_id,
                           pskgw_devsim_stats_t *stats)
{
    int rc = PSKGW_ENOMEM;
    fleet_t *f = calloc(1, sizeof(*f));
    memset(stats, 0, sizeof(*stats));
    stats->attack.victim_survived = -1;
    if (f == NULL)
        return PSKGW_ENOMEM;
    f->o = o;
    f->s = stats;
    f->n = o->devices;
    f->run_id = run_id;
    f->tty = isatty(STDERR_FILENO) == 1;
    f->next_plain_progress = o->progress_interval;
    f->dev = calloc((size_t)o->devices + 1, sizeof(*f->dev)); /* + 1: --devices 0 with --attack */
    stats->sent_by_device = calloc((size_t)o->devices + 1, sizeof(uint32_t));
    if (f->dev == NULL || stats->sent_by_device == NULL)
        goto fail;
    rc = o->cid ? pskgw_devsim_client_ctx_new_cid(o->cipher, &f->ctx)
                : pskgw_devsim_client_ctx_new(o->transport, o->cipher, &f->ctx);
    if (rc < 0)
        goto fail;
    rc = PSKGW_EINTERNAL;
    if (uv_loop_init(&f->loop) != 0)
        goto fail;
    if (o->attack.kind != PSKGW_DEVSIM_ATTACK_NONE) {
        rc = pskgw_devsim_hostile_new(&f->loop, o, f->ctx, &stats->attack, on_hostile_done, f,
                                      &f->hostile);
        if (rc < 0) {
            uv_loop_close(&f->loop);
            goto fail;
        }
    }
    if (o->preencrypt) {
        rc = fleet_replay_new(f);
        if (rc < 0) {
            pskgw_devsim_hostile_free(f->hostile);
            f->hostile = NULL;
            uv_loop_close(&f->loop);
            goto fail;
        }
    }
    raise_fd_limit(o->devices +
                   (o->attack.kind != PSKGW_DEVSIM_ATTACK_NONE
                        ? (o->attack.kind == PSKGW_DEVSIM_ATTACK_REPLAY ? 1 : o->attack.concurrency)
                        : 0));
    init_devices(f);
    uv_update_time(&f->loop);
    f->t0_ns = uv_hrtime();
    uv_timer_init(&f->loop, &f->ramp_timer);
    uv_timer_init(&f->loop, &f->tick_timer);
    uv_timer_init(&f->loop, &f->stop_timer);
    f->ramp_timer.data = f->tick_timer.data = f->stop_timer.data = f;
    uv_timer_start(&f->ramp_timer, on_ramp, 0, o->ramp <= 0 ? 1 : RAMP_TICK_MS);
    uv_timer_start(&f->tick_timer, on_tick, 1000, 1000);
    uv_timer_start(&f->stop_timer, on_stop, (uint64_t)ceil(o->duration * 1000.0), 0);
    /* Ctrl-C or SIGTERM ends the run early, with the summary (devices not done: unfinished). */
    uv_signal_init(&f->loop, &f->sigint);
    uv_signal_init(&f->loop, &f->sigterm);
    f->sigint.data = f->sigterm.data = f;
    uv_signal_start_oneshot(&f->sigint, on_signal, SIGINT);
    uv_signal_start_oneshot(&f->sigterm, on_signal, SIGTERM);
    if (f->hostile != NULL)
        pskgw_devsim_hostile_start(f->hostile);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    /* Every handle is closed by fleet_finish; run once more for close callbacks just in case. */
    uv_walk(&f->loop, close_any, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&f->loop) == 0 ? 0 : PSKGW_EINTERNAL;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        stats->cpu_user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
        stats->cpu_sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        stats->max_rss_kb = (uint64_t)ru.ru_maxrss;
    }
fail:
    if (f->dev != NULL) {
        for (uint32_t i = 0; i < f->n; i++) {
            pskgw_devsim_client_free(f->dev[i].c);
            pskgw_devsim_client_session_free(f->dev[i].sess);
        }
    }
    pskgw_devsim_hostile_free(f->hostile);
    fleet_replay_free(f);
    pskgw_devsim_client_ctx_free(f->ctx);
    free(f->dev);
    free(f);
    if (rc < 0) {
        free(stats->sent_by_device);
        stats->sent_by_device = NULL;
        free(stats->samples);
        stats->samples = NULL;
    }
    return rc;
}
