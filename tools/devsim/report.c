/* pskgw-devsim: summary table and JSON (see report.h). */
#include "tools/devsim/report.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

bool pskgw_devsim_attack_gained(const pskgw_devsim_stats_t *s)
{
    return s->attack.accepted > 0 || (s->attack.replays_sent > 0 && s->attack.victim_survived == 0);
}

bool pskgw_devsim_run_ok(const pskgw_devsim_stats_t *s, const pskgw_devsim_verify_result_t *vr)
{
    if (s->completed != s->good || pskgw_devsim_stats_errors(s) != 0 ||
        pskgw_devsim_attack_gained(s))
        return false;
    return vr == NULL || pskgw_devsim_verify_ok(vr);
}

static const char *transport_name(const pskgw_devsim_opts_t *o)
{
    return o->transport == PSKGW_DEVSIM_DTLS ? "dtls" : "tls";
}

static const char *framing_name(pskgw_devsim_framing_t f)
{
    switch (f) {
    case PSKGW_DEVSIM_FRAMING_LEN16:
        return "len16";
    case PSKGW_DEVSIM_FRAMING_NEWLINE:
        return "newline";
    case PSKGW_DEVSIM_FRAMING_RECORD:
        return "record";
    default:
        return "none";
    }
}

/* Highest per-second rate over the samples (field selects handshakes or messages). */
static double peak(const pskgw_devsim_stats_t *s, bool handshakes)
{
    double best = 0, prev = 0;
    for (size_t i = 0; i < s->n_samples; i++) {
        const pskgw_devsim_sample_t *p = &s->samples[i];
        double dt = p->t - prev;
        prev = p->t;
        if (dt < 0.5) /* the short last sample would exaggerate */
            continue;
        double r = (double)(handshakes ? p->handshakes : p->messages) / dt;
        if (r > best)
            best = r;
    }
    return best;
}

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

static double per_s(uint64_t n, double secs)
{
    return secs > 0 ? (double)n / secs : 0.0;
}

static const char *verdict(int v)
{
    return v == 1   ? "yes"
           : v == 0 ? "no (lost)"
                    : "unknown (no ack before the replay, or the run ended first; ack = "
                      "\"accepted\"?)";
}

/* The attack's lines of the summary table. */
static void attack_table(FILE *out, const pskgw_devsim_opts_t *o, const pskgw_devsim_stats_t *s)
{
    const pskgw_devsim_attack_opts_t *a = &o->attack;
    const pskgw_devsim_attack_stats_t *t = &s->attack;
    fprintf(out, "  %-20s %s: %llu / %u attempts (%.1f/s asked) from %llu source(s)%s\n", "attack",
            pskgw_devsim_attack_name(a->kind), (unsigned long long)t->attempts, a->count, a->rate,
            (unsigned long long)t->sources_used,
            t->done ? "" : ", cut short by the end of the run");
    if (a->kind == PSKGW_DEVSIM_ATTACK_REPLAY) {
        fprintf(out,
                "  %-20s victim handshakes %llu, replays sent %llu, answered: hello-verify "
                "%llu, server-hello %llu, alert %llu\n",
                "attack outcome", (unsigned long long)t->victim_handshakes,
                (unsigned long long)t->replays_sent, (unsigned long long)t->replay_answer_hvr,
                (unsigned long long)t->replay_answer_sh,
                (unsigned long long)t->replay_answer_alert);
        fprintf(out, "  %-20s acks %llu, session survived the replay: %s\n", "attack victim",
                (unsigned long long)t->victim_acks, verdict(t->victim_survived));
        return;
    }
    if (a->kind == PSKGW_DEVSIM_ATTACK_WRONG_KEY) {
        fprintf(out,
                "  %-20s refused %llu (alert), unanswered %llu, accepted %llu, socket errors "
                "%llu\n",
                "attack outcome", (unsigned long long)t->refused, (unsigned long long)t->timeouts,
                (unsigned long long)t->accepted, (unsigned long long)t->socket_errors);
        return;
    }
    fprintf(out,
            "  %-20s cookie exchanges %llu, server flights %llu, ckes sent %llu, refused %llu, "
            "accepted %llu, timeouts %llu, socket errors %llu\n",
            "attack outcome", (unsigned long long)t->cookie_exchanges,
            (unsigned long long)t->server_flights, (unsigned long long)t->ckes_sent,
            (unsigned long long)t->refused, (unsigned long long)t->accepted,
            (unsigned long long)t->timeouts, (unsigned long long)t->socket_errors);
    if (a->kind == PSKGW_DEVSIM_ATTACK_FILL)
        fprintf(out,
                "  %-20s held at most %llu at once, ended by the gateway %llu, sources "
                "answered %llu\n",
                "attack half-open", (unsigned long long)t->half_open_max,
                (unsigned long long)t->ended_by_gateway, (unsigned long long)t->sources_answered);
    if (t->answer.count > 0)
        fprintf(out, "  %-20s p50 %.2f ms, p99 %.2f ms (first ClientHello to ServerHelloDone)\n",
                "attack answered in", ms(pskgw_devsim_hist_quantile(&t->answer, 0.5)),
                ms(pskgw_devsim_hist_quantile(&t->answer, 0.99)));
}

void pskgw_devsim_report_table(FILE *out, const pskgw_devsim_opts_t *o, uint32_t run_id,
                               const pskgw_devsim_stats_t *s,
                               const pskgw_devsim_verify_result_t *vr)
{
    fprintf(out, "pskgw-devsim summary: run %08x, %.2f s, %s to %s, cipher %s\n", (unsigned)run_id,
            s->elapsed_s, o->transport == PSKGW_DEVSIM_DTLS ? "DTLS" : "TLS", o->target_text,
            s->cipher != NULL ? s->cipher : "(none negotiated)");
    fprintf(out, "  %-20s %u (good %u, unknown %u, wrong psk %u, idle %u)\n", "devices", s->devices,
            s->good, s->unknown, s->wrong_psk, s->idle);
    fprintf(out, "  %-20s %u / %u good devices (sessions up at most: %u)\n", "completed",
            s->completed, s->good, s->up_max);
    fprintf(out, "  %-20s %llu ok / %llu started, %llu failed (%.1f/s, peak %.0f/s)\n",
            "handshakes", (unsigned long long)s->handshakes_ok,
            (unsigned long long)s->handshakes_started,
            (unsigned long long)pskgw_devsim_stats_hs_failures(s),
            per_s(s->handshakes_ok, s->elapsed_s), peak(s, true));
    fprintf(out, "  %-20s p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", "handshake latency",
            ms(pskgw_devsim_hist_quantile(&s->hs, 0.5)),
            ms(pskgw_devsim_hist_quantile(&s->hs, 0.99)), ms(s->hs.max_us));
    fprintf(out, "  %-20s %llu / %llu planned (%.1f/s, peak %.0f/s, %llu bytes)\n", "messages",
            (unsigned long long)s->messages_sent, (unsigned long long)s->messages_planned,
            per_s(s->messages_sent, s->elapsed_s), peak(s, false),
            (unsigned long long)s->bytes_sent);
    if (o->expect_ack)
        fprintf(out, "  %-20s %llu, latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                o->expect_echo ? "echoes" : "acks", (unsigned long long)s->acks,
                ms(pskgw_devsim_hist_quantile(&s->msg, 0.5)),
                ms(pskgw_devsim_hist_quantile(&s->msg, 0.99)), ms(s->msg.max_us));
    else
        fprintf(out, "  %-20s %llu (not expected)\n", "acks", (unsigned long long)s->acks);
    fprintf(out, "  %-20s %llu (unknown %llu, wrong psk %llu)\n", "expected failures",
            (unsigned long long)s->expected_failures, (unsigned long long)s->expected_unknown,
            (unsigned long long)s->expected_wrong_psk);
    fprintf(out,
            "  %-20s retransmissions %llu, reconnects %llu, rebinds %llu, peer closes %llu, "
            "send drops %llu\n",
            "events", (unsigned long long)s->retransmissions, (unsigned long long)s->reconnects,
            (unsigned long long)s->rebinds, (unsigned long long)s->peer_closes,
            (unsigned long long)s->send_drops);
    if (o->resume)
        fprintf(out,
                "  %-20s %llu of %llu handshakes abbreviated (mean %.0f us resumed, %.0f us "
                "full)\n",
                "resumption", (unsigned long long)s->resumed, (unsigned long long)s->handshakes_ok,
                s->resumed ? (double)s->resumed_us / (double)s->resumed : 0.0,
                s->handshakes_ok > s->resumed
                    ? (double)s->full_us / (double)(s->handshakes_ok - s->resumed)
                    : 0.0);
    if (o->cid)
        fprintf(out, "  %-20s %llu of %llu handshakes\n", "connection id",
                (unsigned long long)s->cid_sessions, (unsigned long long)s->handshakes_ok);
    if (o->rebind_every_s > 0)
        fprintf(out,
                "  %-20s %llu (session followed %llu, lost %llu, handshakes again %llu, messages "
                "sent again %llu)\n",
                "socket rebinds", (unsigned long long)s->socket_rebinds,
                (unsigned long long)s->rebinds_followed, (unsigned long long)s->sessions_lost,
                (unsigned long long)s->rehandshakes, (unsigned long long)s->lost_messages);
    if (o->failover_after != 0)
        fprintf(out,
                "  %-20s %llu to %s (session taken over %llu, lost %llu, handshakes again %llu)\n",
                "failovers", (unsigned long long)s->failovers, o->failover_text,
                (unsigned long long)s->failovers_followed, (unsigned long long)s->sessions_lost,
                (unsigned long long)s->rehandshakes);
    if (s->replay.on)
        fprintf(out,
                "  %-20s %llu records made (%.2f s cpu), %llu sent in %.2f s (%.0f/s), cpu %.2f s "
                "= %.2f us per message (%llu sendmmsg, %llu refused for now)\n",
                "replay", (unsigned long long)s->replay.records, s->replay.prepare_cpu_s,
                (unsigned long long)s->replay.sent, s->replay.send_s,
                s->replay.send_s > 0 ? (double)s->replay.sent / s->replay.send_s : 0.0,
                s->replay.send_cpu_s,
                s->replay.sent ? s->replay.send_cpu_s * 1e6 / (double)s->replay.sent : 0.0,
                (unsigned long long)s->replay.syscalls, (unsigned long long)s->replay.eagain);
    fprintf(out, "  %-20s cpu %.2f s user + %.2f s sys, peak rss %.1f MB\n", "simulator",
            s->cpu_user_s, s->cpu_sys_s, (double)s->max_rss_kb / 1024.0);
    fprintf(out, "  %-20s %llu\n", "errors", (unsigned long long)pskgw_devsim_stats_errors(s));
    for (int i = 0; i < PSKGW_DEVSIM_ERR_COUNT; i++)
        if (s->errors[i] != 0)
            fprintf(out, "    %-18s %llu  (%s)\n", pskgw_devsim_error_key(i),
                    (unsigned long long)s->errors[i], pskgw_devsim_error_text(i));
    if (o->attack.kind != PSKGW_DEVSIM_ATTACK_NONE)
        attack_table(out, o, s);
    if (vr != NULL)
        fprintf(out,
                "  %-20s delivered %llu / %llu, missing %llu, duplicated %llu, corrupted %llu, "
                "misattributed %llu, e2e mismatch %llu, unexpected %llu, bad lines %llu "
                "(ignored: other runs %llu, unrecognised %llu)\n",
                "verify", (unsigned long long)vr->delivered, (unsigned long long)vr->expected,
                (unsigned long long)vr->missing, (unsigned long long)vr->duplicated,
                (unsigned long long)vr->corrupted, (unsigned long long)vr->misattributed,
                (unsigned long long)vr->e2e_mismatch, (unsigned long long)vr->unexpected,
                (unsigned long long)vr->bad_lines, (unsigned long long)vr->foreign,
                (unsigned long long)vr->unrecognised);
    fprintf(out, "  %-20s %s%s\n", "result", pskgw_devsim_run_ok(s, vr) ? "PASS" : "FAIL",
            s->interrupted ? " (interrupted)" : "");
    fflush(out);
}

static json_t *lat_json(const pskgw_devsim_hist_t *h)
{
    if (h->count == 0)
        return json_null();
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "count", (json_int_t)h->count, "p50",
                     (json_int_t)pskgw_devsim_hist_quantile(h, 0.5), "p90",
                     (json_int_t)pskgw_devsim_hist_quantile(h, 0.9), "p99",
                     (json_int_t)pskgw_devsim_hist_quantile(h, 0.99), "max", (json_int_t)h->max_us,
                     "mean", (json_int_t)(h->sum_us / h->count));
}

static int set(json_t *o, const char *k, json_t *v)
{
    return v == NULL ? -1 : json_object_set_new(o, k, v);
}

/* "attack": the options and the counts (null without --attack). */
/* --preencrypt: what making and sending the records cost (null without it). */
static json_t *replay_json(const pskgw_devsim_stats_t *s)
{
    const pskgw_devsim_replay_stats_t *r = &s->replay;
    if (!r->on)
        return json_null();
    double sent = (double)r->sent, made = (double)r->records;
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:f, s:o, s:f, s:f, s:f, s:I, s:o, s:o, s:I, s:I}", "devices_ready",
        (json_int_t)r->devices_ready, "records", (json_int_t)r->records, "record_bytes",
        (json_int_t)r->record_bytes, "damaged", (json_int_t)r->damaged, "prepare_cpu_s",
        r->prepare_cpu_s, "prepare_cpu_us_per_message",
        made > 0 ? json_real(r->prepare_cpu_s * 1e6 / made) : json_null(), "wait_s", r->wait_s,
        "send_s", r->send_s, "send_cpu_s", r->send_cpu_s, "sent", (json_int_t)r->sent, "per_s",
        r->send_s > 0 ? json_real(sent / r->send_s) : json_null(), "cpu_us_per_message",
        sent > 0 ? json_real(r->send_cpu_s * 1e6 / sent) : json_null(), "syscalls",
        (json_int_t)r->syscalls, "eagain", (json_int_t)r->eagain);
}

static json_t *attack_json(const pskgw_devsim_opts_t *o, const pskgw_devsim_stats_t *s)
{
    const pskgw_devsim_attack_opts_t *a = &o->attack;
    const pskgw_devsim_attack_stats_t *t = &s->attack;
    if (a->kind == PSKGW_DEVSIM_ATTACK_NONE)
        return json_null();
    char src[INET_ADDRSTRLEN];
    struct in_addr ia = { .s_addr = htonl(a->source_base) };
    if (inet_ntop(AF_INET, &ia, src, sizeof(src)) == NULL || o->target.ss_family == AF_INET6)
        snprintf(src, sizeof(src), "::1");
    json_t *j = json_pack(
        "{s:s, s:I, s:f, s:I, s:s, s:I, s:f, s:f, s:f, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:I}",
        "kind", pskgw_devsim_attack_name(a->kind), "count", (json_int_t)a->count, "rate", a->rate,
        "sources", (json_int_t)a->sources, "source_base", src, "concurrency",
        (json_int_t)a->concurrency, "timeout_s", a->timeout, "hold_s", a->hold, "delay_s", a->delay,
        "victim", (json_int_t)a->victim, "done", t->done, "attempts", (json_int_t)t->attempts,
        "sources_used", (json_int_t)t->sources_used, "socket_errors", (json_int_t)t->socket_errors,
        "cookie_exchanges", (json_int_t)t->cookie_exchanges, "server_flights",
        (json_int_t)t->server_flights, "ckes_sent", (json_int_t)t->ckes_sent, "refused",
        (json_int_t)t->refused, "accepted", (json_int_t)t->accepted, "timeouts",
        (json_int_t)t->timeouts, "half_open_max", (json_int_t)t->half_open_max);
    if (j == NULL)
        return NULL;
    int bad = set(j, "ended_by_gateway", json_integer((json_int_t)t->ended_by_gateway));
    bad |= set(j, "sources_answered", json_integer((json_int_t)t->sources_answered));
    bad |= set(j, "answer_latency_us", lat_json(&t->answer));
    bad |=
        set(j, "replay",
            a->kind != PSKGW_DEVSIM_ATTACK_REPLAY
                ? json_null()
                : json_pack(
                      "{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "victim_handshakes",
                      (json_int_t)t->victim_handshakes, "replays_sent", (json_int_t)t->replays_sent,
                      "answer_hello_verify", (json_int_t)t->replay_answer_hvr,
                      "answer_server_hello", (json_int_t)t->replay_answer_sh, "answer_alert",
                      (json_int_t)t->replay_answer_alert, "victim_acks", (json_int_t)t->victim_acks,
                      "victim_survived",
                      t->victim_survived < 0 ? json_null() : json_boolean(t->victim_survived)));
    bad |= set(j, "gained", json_boolean(pskgw_devsim_attack_gained(s)));
    if (bad != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* "config": the options of the run. NULL when out of memory. */
static json_t *config_json(const pskgw_devsim_opts_t *o)
{
    json_t *cfg;

    cfg = json_pack("{s:I, s:f, s:I, s:f, s:I, s:s, s:s, s:I, s:I, s:f, s:f, s:f, s:f, s:f, "
                    "s:f, s:b, s:b, s:I, s:I}",
                    "devices", (json_int_t)o->devices, "ramp", o->ramp, "messages",
                    (json_int_t)o->messages, "rate", o->rate, "size", (json_int_t)o->size, "e2e",
                    o->e2e == 0   ? "none"
                    : o->e2e == 1 ? "v1"
                                  : "v2",
                    "framing", framing_name(o->framing), "reconnect_every",
                    (json_int_t)o->reconnect_every, "nat_rebind_every",
                    (json_int_t)o->nat_rebind_every, "idle_interval", o->idle_interval,
                    "idle_share", o->idle_share, "unknown_share", o->unknown_share,
                    "wrong_psk_share", o->wrong_psk_share, "duration", o->duration, "hold", o->hold,
                    "expect_ack", o->expect_ack, "e2e_fresh_ki", !o->e2e_fixed_ki, "devices_per_ip",
                    (json_int_t)o->per_ip, "psk_bits", (json_int_t)o->psk_bits);
    if (cfg != NULL) {
        json_object_set_new(cfg, "identity_per_session", json_boolean(o->identity_per_session));
        json_object_set_new(cfg, "expect_echo", json_boolean(o->expect_echo));
        json_object_set_new(cfg, "first_device", json_integer((json_int_t)o->first_device));
        json_object_set_new(cfg, "rebind_every_s", json_real(o->rebind_every_s));
        json_object_set_new(cfg, "cid", json_boolean(o->cid));
        json_object_set_new(cfg, "e2e_v2_layout",
                            json_string(pskgw_rot_v2_layout_name(o->e2e_v2_layout)));
        json_object_set_new(cfg, "cipher_offer", json_string(o->cipher));
    }
    return cfg;
}

/* "verify": what --verify-file found. NULL when out of memory. */
static json_t *verify_json(const pskgw_devsim_verify_result_t *vr)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "expected",
                     (json_int_t)vr->expected, "delivered", (json_int_t)vr->delivered, "missing",
                     (json_int_t)vr->missing, "duplicated", (json_int_t)vr->duplicated, "corrupted",
                     (json_int_t)vr->corrupted, "misattributed", (json_int_t)vr->misattributed,
                     "e2e_mismatch", (json_int_t)vr->e2e_mismatch, "unexpected",
                     (json_int_t)vr->unexpected, "foreign", (json_int_t)vr->foreign, "unrecognised",
                     (json_int_t)vr->unrecognised, "bad_lines", (json_int_t)vr->bad_lines, "ok",
                     pskgw_devsim_verify_ok(vr));
}

/* "samples": one per progress interval, rates over the interval. NULL when out of memory. */
static json_t *samples_json(const pskgw_devsim_stats_t *s)
{
    json_t *samples = json_array();
    int bad = samples == NULL ? -1 : 0;
    double prev = 0;
    for (size_t i = 0; samples != NULL && i < s->n_samples; i++) {
        const pskgw_devsim_sample_t *p = &s->samples[i];
        double dt = p->t - prev;
        prev = p->t;
        bad |= json_array_append_new(
            samples, json_pack("{s:f, s:I, s:f, s:f, s:f, s:I, s:f, s:f, s:f, s:f}", "t", p->t,
                               "devices_up", (json_int_t)p->devices_up, "handshakes_per_s",
                               per_s(p->handshakes, dt), "messages_per_s", per_s(p->messages, dt),
                               "acks_per_s", per_s(p->acks, dt), "errors", (json_int_t)p->errors,
                               "hs_p50_ms", ms(p->hs_p50_us), "hs_p99_ms", ms(p->hs_p99_us),
                               "msg_p50_ms", ms(p->msg_p50_us), "msg_p99_ms", ms(p->msg_p99_us)));
    }
    if (bad != 0) {
        json_decref(samples);
        return NULL;
    }
    return samples;
}

/* Write root to path through path.tmp and a rename. 0, PSKGW_ENOMEM or PSKGW_EIO. */
static int write_json(const json_t *root, const char *path)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (tmp == NULL)
        return PSKGW_ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int rc = PSKGW_EIO;
    if (json_dump_file(root, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) == 0 &&
        rename(tmp, path) == 0)
        rc = 0;
    else
        remove(tmp);
    free(tmp);
    return rc;
}

int pskgw_devsim_report_json(const char *path, const pskgw_devsim_opts_t *o, uint32_t run_id,
                             const pskgw_devsim_stats_t *s, const pskgw_devsim_verify_result_t *vr)
{
    int rc = PSKGW_ENOMEM;
    char run[9];
    snprintf(run, sizeof(run), "%08x", (unsigned)run_id);
    json_t *root = json_object(), *errs = NULL;
    if (root == NULL)
        return PSKGW_ENOMEM;
    int bad = 0;
    bad |= set(root, "run_id", json_string(run));
    bad |= set(root, "transport", json_string(transport_name(o)));
    bad |= set(root, "target", json_string(o->target_text));
    bad |= set(root, "cipher", s->cipher != NULL ? json_string(s->cipher) : json_null());
    bad |= set(root, "elapsed_s", json_real(s->elapsed_s));
    bad |= set(root, "interrupted", json_boolean(s->interrupted));
    bad |= set(root, "simulator",
               json_pack("{s:f, s:f, s:I}", "cpu_user_s", s->cpu_user_s, "cpu_sys_s", s->cpu_sys_s,
                         "max_rss_kb", (json_int_t)s->max_rss_kb));
    bad |= set(root, "config", config_json(o));
    bad |= set(root, "devices",
               json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "total",
                         (json_int_t)s->devices, "good", (json_int_t)s->good, "unknown",
                         (json_int_t)s->unknown, "wrong_psk", (json_int_t)s->wrong_psk, "idle",
                         (json_int_t)s->idle, "started", (json_int_t)s->started, "completed",
                         (json_int_t)s->completed, "up_max", (json_int_t)s->up_max));
    bad |= set(root, "handshakes",
               json_pack("{s:I, s:I, s:I, s:f, s:o}", "started", (json_int_t)s->handshakes_started,
                         "ok", (json_int_t)s->handshakes_ok, "failed",
                         (json_int_t)pskgw_devsim_stats_hs_failures(s), "per_s",
                         per_s(s->handshakes_ok, s->elapsed_s), "latency_us", lat_json(&s->hs)));
    bad |= set(root, "attack", attack_json(o, s));
    bad |= set(root, "replay", replay_json(s));
    bad |=
        set(root, "messages",
            json_pack("{s:I, s:I, s:I, s:f, s:I, s:o}", "planned", (json_int_t)s->messages_planned,
                      "sent", (json_int_t)s->messages_sent, "bytes", (json_int_t)s->bytes_sent,
                      "per_s", per_s(s->messages_sent, s->elapsed_s), "acks", (json_int_t)s->acks,
                      "ack_latency_us", lat_json(&s->msg)));
    bad |= set(root, "expected_failures",
               json_pack("{s:I, s:I, s:I}", "total", (json_int_t)s->expected_failures, "unknown",
                         (json_int_t)s->expected_unknown, "wrong_psk",
                         (json_int_t)s->expected_wrong_psk));
    bad |= set(root, "counters",
               json_pack("{s:I, s:I, s:I, s:I, s:I}", "retransmissions",
                         (json_int_t)s->retransmissions, "reconnects", (json_int_t)s->reconnects,
                         "rebinds", (json_int_t)s->rebinds, "peer_closes",
                         (json_int_t)s->peer_closes, "send_drops", (json_int_t)s->send_drops));
    bad |= set(root, "rebind",
               json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "socket_rebinds",
                         (json_int_t)s->socket_rebinds, "cid_sessions", (json_int_t)s->cid_sessions,
                         "followed", (json_int_t)s->rebinds_followed, "sessions_lost",
                         (json_int_t)s->sessions_lost, "rehandshakes", (json_int_t)s->rehandshakes,
                         "lost_messages", (json_int_t)s->lost_messages));
    bad |=
        set(root, "failover",
            json_pack("{s:I, s:I, s:I, s:I}", "failovers", (json_int_t)s->failovers, "taken_over",
                      (json_int_t)s->failovers_followed, "sessions_lost",
                      (json_int_t)s->sessions_lost, "rehandshakes", (json_int_t)s->rehandshakes));
    bad |= set(root, "resumption",
               json_pack("{s:I, s:I, s:I}", "resumed", (json_int_t)s->resumed, "resumed_us",
                         (json_int_t)s->resumed_us, "full_us", (json_int_t)s->full_us));
    errs = json_object();
    bad |= errs == NULL ? -1 : 0;
    for (int i = 0; errs != NULL && i < PSKGW_DEVSIM_ERR_COUNT; i++)
        bad |= set(errs, pskgw_devsim_error_key(i), json_integer((json_int_t)s->errors[i]));
    bad |= set(root, "errors", errs);
    bad |= set(root, "errors_total", json_integer((json_int_t)pskgw_devsim_stats_errors(s)));
    bad |= set(root, "verify", vr != NULL ? verify_json(vr) : json_null());
    bool ok = pskgw_devsim_run_ok(s, vr);
    bad |= set(root, "ok", json_boolean(ok));
    bad |= set(root, "exit_status", json_integer(ok ? 0 : 1));
    bad |= set(root, "samples", samples_json(s));
    if (bad != 0)
        goto done;
    rc = write_json(root, path);
done:
    json_decref(root);
    return rc;
}
