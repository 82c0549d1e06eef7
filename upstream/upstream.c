#include "upstream/upstream.h"
#include "upstream/internal.h"

#include "common/backoff.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"
#include "common/wipe.h"
#include "upstream/http.h"
#include "upstream/parse.h"
#include "upstream/policy.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint32_t pskgw_upstream_latency_bounds_ms[PSKGW_UPSTREAM_LAT_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
};

/* ---- small helpers --------------------------------------------------------------------- */

static uint64_t now_ms(pskgw_upstream_t *c)
{
    return uv_now(c->loop);
}

static const char *op_word(pskgw_upstream_op_t op)
{
    return pskgw_upstream_op_name(op);
}

/* A bounded excerpt of an error body with everything unprintable replaced. */
void pskgw_upstream_excerpt(const char *body, size_t len, char *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < cap; i++) {
        unsigned char ch = (unsigned char)body[i];
        out[n++] = (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? (char)ch : '.';
    }
    out[n] = '\0';
}

int64_t pskgw_upstream_retry_after_of(const char *header)
{
    return header ? pskgw_upstream_retry_after_at_ms(header, strlen(header), pskgw_clock_wall_ms())
                  : -1;
}

uint64_t pskgw_upstream_rate_limited(pskgw_upstream_t *c, uint64_t now, int64_t ra)
{
    /* The part of a Retry-After that holds every request is capped (see the option). */
    c->ratelimit_until =
        now +
        ((uint64_t)ra < c->ratelimit_window_max_ms ? (uint64_t)ra : c->ratelimit_window_max_ms);
    return (uint64_t)ra > c->backoff_base_ms ? (uint64_t)ra : c->backoff_base_ms;
}

void pskgw_upstream_lat_record(pskgw_upstream_t *c, pskgw_upstream_op_t op, uint64_t ms)
{
    for (size_t i = 0; i < PSKGW_UPSTREAM_LAT_BUCKETS; i++)
        if (ms <= pskgw_upstream_latency_bounds_ms[i])
            c->stats.latency_le[op][i]++;
    c->stats.latency_le[op][PSKGW_UPSTREAM_LAT_BUCKETS]++;
    c->stats.latency_sum_ms[op] += ms;
    c->stats.latency_count[op]++;
}

/* ---- request completion and delivery --------------------------------------------------- */

static void admit_next(pskgw_upstream_t *c);
static void req_start(pskgw_upstream_req_t *r);
static void teardown(pskgw_upstream_t *c);
static void handle_released(pskgw_upstream_t *c);
static void on_dispatch(uv_timer_t *t);

static void arm_dispatch(pskgw_upstream_t *c)
{
    if (!c->dispatching && !c->torn_down)
        uv_timer_start(&c->dispatch, on_dispatch, 0, 0);
}

/* Record the outcome and queue the callback; the request leaves whatever it was doing. */
void pskgw_upstream_finish(pskgw_upstream_req_t *r, int status)
{
    pskgw_upstream_t *c = r->c;
    int admitted = r->state == R_WAIT_AUTH || r->state == R_HTTP || r->state == R_BACKOFF;

    if (r->state == R_DONE || r->state == R_DELIVERING)
        return;
    pskgw_upstream_rl_unlink(r);
    if (r->http) {
        pskgw_http_cancel(r->http);
        r->http = NULL;
    }
    uv_timer_stop(&r->timer);
    if (status != 0)
        pskgw_wipe(&r->res, sizeof(r->res));
    r->status = status;
    r->state = R_DONE;
    pskgw_upstream_rl_push(&c->deliver, r);
    if (admitted) {
        c->in_flight--;
        admit_next(c);
    }
    arm_dispatch(c);
}

static void req_timer_closed(uv_handle_t *h)
{
    pskgw_upstream_req_t *r = h->data;
    pskgw_upstream_t *c = r->c;

    pskgw_free_secret(r, sizeof(*r));
    handle_released(c);
}

static void deliver_one(pskgw_upstream_t *c, pskgw_upstream_req_t *r)
{
    uint64_t now = now_ms(c);

    pskgw_upstream_rl_unlink(r);
    r->state = R_DELIVERING;
    c->stats.outcomes[r->op][pskgw_upstream_outcome_of(r->status)]++;
    pskgw_upstream_lat_record(c, r->op, now > r->t_start ? now - r->t_start : 0);
    if (r->op == PSKGW_UPSTREAM_OP_PSK)
        r->psk_cb(r->arg, r->status, r->status == 0 ? &r->res.psk : NULL);
    else
        r->e2e_cb(r->arg, r->status, r->status == 0 ? &r->res.e2e : NULL);
    pskgw_wipe(&r->res, sizeof(r->res));
    free(r->body);
    r->body = NULL;
    c->pending_closes++;
    uv_close((uv_handle_t *)&r->timer, req_timer_closed);
}

static void on_dispatch(uv_timer_t *t)
{
    pskgw_upstream_t *c = t->data;
    pskgw_upstream_req_t *r;

    c->dispatching++;
    while ((r = pskgw_upstream_rl_first(&c->deliver)) != NULL)
        deliver_one(c, r);
    c->dispatching--;
    if (c->closing && !c->torn_down && !c->deliver.n)
        teardown(c);
}

/* ---- retries --------------------------------------------------------------------------- */

static void on_req_timer(uv_timer_t *t);

static void backoff(pskgw_upstream_req_t *r, uint64_t delay)
{
    r->state = R_BACKOFF;
    pskgw_upstream_rl_push(&r->c->running, r);
    uv_timer_start(&r->timer, on_req_timer, delay, 0);
}

/* A 429 or a transient failure: retry if it fits the deadline, else end the request. */
static void retry_or_finish(pskgw_upstream_req_t *r, pskgw_upstream_class_t cls, int err,
                            const char *retry_after, int transport_err)
{
    pskgw_upstream_t *c = r->c;
    uint64_t now = now_ms(c);
    int64_t ra =
        cls == PSKGW_UPSTREAM_CLASS_RATELIMIT ? pskgw_upstream_retry_after_of(retry_after) : -1;
    uint64_t delay;

    r->attempt++;
    delay = ra >= 0 ? pskgw_upstream_rate_limited(c, now, ra)
                    : pskgw_backoff_at(&c->backoff, r->attempt);
    if (pskgw_upstream_retry_fits(now, delay, r->deadline, PSKGW_UPSTREAM_MIN_ATTEMPT_MS)) {
        backoff(r, delay);
        return;
    }
    if (cls == PSKGW_UPSTREAM_CLASS_RATELIMIT)
        pskgw_upstream_finish(r, PSKGW_ERATELIMIT);
    else if (now >= r->deadline || (transport_err == PSKGW_ETIMEOUT && r->cut_by_deadline))
        pskgw_upstream_finish(r, PSKGW_ETIMEOUT);
    else
        pskgw_upstream_finish(r, err);
}

/* ---- one attempt ----------------------------------------------------------------------- */

static void on_req_http(void *arg, const pskgw_http_result_t *res);

void pskgw_upstream_req_send(pskgw_upstream_req_t *r)
{
    pskgw_upstream_t *c = r->c;
    uint64_t now = now_ms(c);
    uint64_t left = r->deadline > now ? r->deadline - now : 0;
    uint32_t attempt_ms;
    char *auth = NULL;
    int rc;

    if (left == 0) {
        pskgw_upstream_finish(r, PSKGW_ETIMEOUT);
        return;
    }
    if (c->ratelimit_until > now) {
        /* The service asked for quiet (Retry-After): wait for the end of the window rather than
         * send into it, or end now when the window outlasts the deadline. */
        uint64_t wait = c->ratelimit_until - now;

        if (pskgw_upstream_retry_fits(now, wait, r->deadline, PSKGW_UPSTREAM_MIN_ATTEMPT_MS))
            backoff(r, wait);
        else
            pskgw_upstream_finish(r, PSKGW_ERATELIMIT);
        return;
    }
    attempt_ms = left < c->timeout_ms ? (uint32_t)left : c->timeout_ms;
    r->cut_by_deadline = left <= c->timeout_ms;
    rc = pskgw_upstream_auth_header(c, &auth);
    if (rc == 0)
        rc = pskgw_http_post(c->http, r->op == PSKGW_UPSTREAM_OP_PSK ? c->url_psk : c->url_e2e,
                             auth, r->body, attempt_ms, on_req_http, r, &r->http);
    pskgw_free_secret_str(auth);
    if (rc < 0) {
        PSKGW_WARN("upstream \"%s\": %s \"%s\": cannot start a request: %s", c->name,
                   op_word(r->op), r->ident, pskgw_strerror(rc));
        pskgw_upstream_finish(r, rc);
        return;
    }
    if (r->sends++)
        c->stats.retries++;
    c->stats.http_attempts[r->op]++;
    r->token_gen = c->auth.gen;
    r->state = R_HTTP;
    pskgw_upstream_rl_push(&c->running, r);
    uv_timer_start(&r->timer, on_req_timer, left, 0);
}

static void req_start(pskgw_upstream_req_t *r)
{
    pskgw_upstream_t *c = r->c;

    if (pskgw_upstream_auth_usable(c)) {
        pskgw_upstream_req_send(r);
        return;
    }
    pskgw_upstream_auth_wait(r);
}

static void on_req_timer(uv_timer_t *t)
{
    pskgw_upstream_req_t *r = t->data;

    if (r->state == R_BACKOFF) {
        pskgw_upstream_t *c = r->c;
        uint64_t now = now_ms(c);

        pskgw_upstream_rl_unlink(r);
        /* The backoff used the request's timer: give it back the deadline, which must hold
         * while the request waits for a token (req_send re-arms it for an attempt). */
        if (now >= r->deadline) {
            pskgw_upstream_finish(r, PSKGW_ETIMEOUT);
            return;
        }
        uv_timer_start(&r->timer, on_req_timer, r->deadline - now, 0);
        req_start(r); /* the token may have gone meanwhile */
        return;
    }
    pskgw_upstream_finish(r, PSKGW_ETIMEOUT);
}

/* A parser's success note (unknown fields ignored): logged once per client and call. */
void pskgw_upstream_note_once(pskgw_upstream_t *c, pskgw_upstream_op_t op, const char *note)
{
    if (!note[0] || (c->noted_unknown & (1u << op)))
        return;
    c->noted_unknown |= 1u << op;
    PSKGW_DEBUG("upstream \"%s\": %s (noted once)", c->name, note);
}

static void on_req_http(void *arg, const pskgw_http_result_t *res)
{
    pskgw_upstream_req_t *r = arg;
    pskgw_upstream_t *c = r->c;
    char why[256];
    char ex[121];
    int err = 0;
    int rc;
    pskgw_upstream_class_t cls;

    r->http = NULL;
    pskgw_upstream_rl_unlink(r);
    cls = pskgw_upstream_classify(res->status, res->transport_err, &err);
    switch (cls) {
    case PSKGW_UPSTREAM_CLASS_OK:
        why[0] = '\0';
        if (r->op == PSKGW_UPSTREAM_OP_PSK)
            rc = pskgw_upstream_parse_psk(res->body, res->body_len, r->key_bits, &r->res.psk, why,
                                          sizeof(why));
        else
            rc = pskgw_upstream_parse_e2e(res->body, res->body_len, &r->res.e2e, why, sizeof(why));
        if (rc < 0)
            PSKGW_LOG_RL(PSKGW_LOG_WARNING, "upstream-parse",
                         "upstream \"%s\": %s \"%s\": bad response: %s", c->name, op_word(r->op),
                         r->ident, why);
        else
            pskgw_upstream_note_once(c, r->op, why);
        pskgw_upstream_finish(r, rc);
        return;
    case PSKGW_UPSTREAM_CLASS_REAUTH:
        c->stats.reauth_on_401++;
        if (r->reauthed) {
            PSKGW_LOG_RL(PSKGW_LOG_WARNING, "upstream-401",
                         "upstream \"%s\": %s \"%s\": 401 after re-authenticating", c->name,
                         op_word(r->op), r->ident);
            pskgw_upstream_finish(r, PSKGW_EAUTH);
            return;
        }
        r->reauthed = 1;
        pskgw_upstream_auth_refused(c, r->token_gen);
        req_start(r);
        return;
    case PSKGW_UPSTREAM_CLASS_PERMANENT:
        if (res->transport_err)
            PSKGW_LOG_RL(PSKGW_LOG_WARNING, "upstream-transport",
                         "upstream \"%s\": %s \"%s\": %s (%s)", c->name, op_word(r->op), r->ident,
                         pskgw_strerror(res->transport_err), res->detail);
        else if (res->status == 403 || res->status == 404)
            PSKGW_DEBUG("upstream \"%s\": %s \"%s\": http %ld", c->name, op_word(r->op), r->ident,
                        res->status);
        else {
            pskgw_upstream_excerpt(res->body, res->body_len, ex, sizeof(ex));
            PSKGW_LOG_RL(PSKGW_LOG_WARNING, "upstream-status",
                         "upstream \"%s\": %s \"%s\": http %ld \"%s\"", c->name, op_word(r->op),
                         r->ident, res->status, ex);
        }
        pskgw_upstream_finish(r, err);
        return;
    case PSKGW_UPSTREAM_CLASS_RATELIMIT:
    case PSKGW_UPSTREAM_CLASS_TRANSIENT:
        if (res->transport_err)
            PSKGW_LOG_RL(PSKGW_LOG_INFO, "upstream-transient",
                         "upstream \"%s\": %s \"%s\": %s (%s)", c->name, op_word(r->op), r->ident,
                         pskgw_strerror(res->transport_err), res->detail);
        else
            PSKGW_LOG_RL(PSKGW_LOG_INFO, "upstream-transient",
                         "upstream \"%s\": %s \"%s\": http %ld", c->name, op_word(r->op), r->ident,
                         res->status);
        retry_or_finish(r, cls, err, res->retry_after, res->transport_err);
        return;
    }
}

/* ---- admission ------------------------------------------------------------------------- */

static void admit_next(pskgw_upstream_t *c)
{
    pskgw_upstream_req_t *r;

    if (c->admitting || c->closing)
        return;
    c->admitting = 1;
    while (c->in_flight < c->max_in_flight && (r = pskgw_upstream_rl_first(&c->queue)) != NULL) {
        pskgw_upstream_rl_unlink(r);
        c->in_flight++;
        r->state = R_WAIT_AUTH; /* counts as admitted from here */
        req_start(r);
    }
    c->admitting = 0;
}

/* ---- lifetime -------------------------------------------------------------------------- */

static void handle_released(pskgw_upstream_t *c)
{
    pskgw_upstream_close_cb cb;
    void *arg;

    c->pending_closes--;
    if (!c->torn_down || c->pending_closes)
        return;
    cb = c->close_cb;
    arg = c->close_arg;
    pskgw_upstream_auth_free(c);
    pskgw_secmem_free(c->secret);
    free(c->key_id);
    free(c->name);
    free(c->url_auth);
    free(c->url_psk);
    free(c->url_e2e);
    pskgw_free_secret(c, sizeof(*c));
    curl_global_cleanup();
    if (cb)
        cb(arg);
}

static void handle_closed(uv_handle_t *h)
{
    handle_released(h->data);
}

static void http_closed(void *arg)
{
    handle_released(arg);
}

static void teardown(pskgw_upstream_t *c)
{
    c->torn_down = 1;
    c->pending_closes += 3;
    pskgw_http_close(c->http, http_closed, c);
    c->http = NULL;
    pskgw_upstream_auth_close(c, handle_closed);
    uv_close((uv_handle_t *)&c->dispatch, handle_closed);
}

void pskgw_upstream_close(pskgw_upstream_t *c, pskgw_upstream_close_cb cb, void *arg)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->close_cb = cb;
    c->close_arg = arg;
    pskgw_upstream_auth_stop(c);
    while (pskgw_upstream_rl_first(&c->queue))
        pskgw_upstream_finish(pskgw_upstream_rl_first(&c->queue), PSKGW_ECANCELED);
    while (pskgw_upstream_rl_first(&c->auth.waiters))
        pskgw_upstream_finish(pskgw_upstream_rl_first(&c->auth.waiters), PSKGW_ECANCELED);
    while (pskgw_upstream_rl_first(&c->running))
        pskgw_upstream_finish(pskgw_upstream_rl_first(&c->running), PSKGW_ECANCELED);
    /* The dispatch delivers what is pending, then tears down (never from inside this call). */
    arm_dispatch(c);
}

void pskgw_upstream_opts_init(pskgw_upstream_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->name = "upstream";
    o->auth_mode = PSKGW_UPSTREAM_AUTH_RAW;
    o->psk_key_bits = 128;
    o->timeout_ms = 3000;
    o->deadline_ms = 10000;
    o->max_in_flight = 64;
    o->queue_size = 1024;
    o->path_authenticate = "/v1/authenticate";
    o->path_get_psk = "/v1/GetPSK";
    o->path_e2e_params = "/v1/GetE2EDecryptionParameters";
    o->backoff_base_ms = 100;
    o->backoff_max_ms = 2000;
    o->ratelimit_window_max_ms = 60000;
}

static char *join_url(const char *base, const char *path)
{
    size_t bl = strlen(base);
    size_t pl = strlen(path);
    int slash = path[0] != '/';
    char *u;

    while (bl && base[bl - 1] == '/')
        bl--;
    u = malloc(bl + (size_t)slash + pl + 1);
    if (!u)
        return NULL;
    memcpy(u, base, bl);
    if (slash)
        u[bl] = '/';
    memcpy(u + bl + (size_t)slash, path, pl + 1);
    return u;
}

/* Request retries: base doubling up to max, jittered over the upper half of the step; the
 * client's jitter source (or the injected one, shared with authentication). */
static void retry_backoff_init(pskgw_upstream_t *c, const pskgw_upstream_opts_t *o)
{
    const pskgw_backoff_policy_t p = { c->backoff_base_ms, c->backoff_max_ms, 2, 50, 0 };

    pskgw_backoff_init(&c->backoff, &p, pskgw_backoff_seed(c));
    pskgw_backoff_set_random(&c->backoff, o->random, o->random_arg);
}

static char *dup_or(const char *s, const char *def)
{
    return strdup(s && *s ? s : def);
}

int pskgw_upstream_new(uv_loop_t *loop, const pskgw_upstream_opts_t *o, pskgw_upstream_t **out)
{
    pskgw_upstream_opts_t d;
    pskgw_upstream_t *c = NULL;
    pskgw_http_opts_t ho;
    int global = 0;
    int rc = PSKGW_ENOMEM;

    if (!loop || !o || !out || !o->base_url || !*o->base_url || !o->key_id || !*o->key_id ||
        !o->secret || !*o->secret)
        return PSKGW_EINVAL;
    pskgw_upstream_opts_init(&d);
    if (o->psk_key_bits && o->psk_key_bits != 128 && o->psk_key_bits != 256)
        return PSKGW_EINVAL;
    if (o->auth_mode != PSKGW_UPSTREAM_AUTH_RAW && o->auth_mode != PSKGW_UPSTREAM_AUTH_BEARER)
        return PSKGW_EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return PSKGW_ENOMEM;
    pskgw_list_init(&c->queue.head);
    pskgw_list_init(&c->running.head);
    pskgw_list_init(&c->deliver.head);
    pskgw_list_init(&c->auth.waiters.head);
    c->loop = loop;
    c->auth_mode = o->auth_mode;
    c->psk_key_bits = o->psk_key_bits ? o->psk_key_bits : d.psk_key_bits;
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : d.timeout_ms;
    c->deadline_ms = o->deadline_ms ? o->deadline_ms : d.deadline_ms;
    c->max_in_flight = o->max_in_flight ? o->max_in_flight : d.max_in_flight;
    c->queue_size = o->queue_size;
    c->backoff_base_ms = o->backoff_base_ms ? o->backoff_base_ms : d.backoff_base_ms;
    c->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : d.backoff_max_ms;
    c->ratelimit_window_max_ms =
        o->ratelimit_window_max_ms ? o->ratelimit_window_max_ms : d.ratelimit_window_max_ms;
    if (c->backoff_base_ms > c->backoff_max_ms) {
        rc = PSKGW_EINVAL;
        goto fail;
    }
    retry_backoff_init(c, o);
    c->name = dup_or(o->name, d.name);
    c->key_id = strdup(o->key_id);
    c->secret = pskgw_secmem_strdup(o->secret);
    c->url_auth =
        join_url(o->base_url, o->path_authenticate && *o->path_authenticate ? o->path_authenticate
                                                                            : d.path_authenticate);
    c->url_psk = join_url(o->base_url,
                          o->path_get_psk && *o->path_get_psk ? o->path_get_psk : d.path_get_psk);
    c->url_e2e =
        join_url(o->base_url, o->path_e2e_params && *o->path_e2e_params ? o->path_e2e_params
                                                                        : d.path_e2e_params);
    if (!c->name || !c->key_id || !c->secret || !c->url_auth || !c->url_psk || !c->url_e2e)
        goto fail;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = PSKGW_EIO;
        goto fail;
    }
    global = 1;
    memset(&ho, 0, sizeof(ho));
    ho.ca_file = o->ca_file;
    ho.max_connections = o->max_connections ? o->max_connections : c->max_in_flight;
    ho.max_body = PSKGW_UPSTREAM_MAX_BODY;
    rc = pskgw_http_new(loop, &ho, &c->http);
    if (rc < 0)
        goto fail;
    pskgw_upstream_auth_init(c, loop, pskgw_backoff_seed(&c->auth));
    uv_timer_init(loop, &c->dispatch);
    c->dispatch.data = c;
    *out = c;
    return 0;

fail:
    if (global)
        curl_global_cleanup();
    pskgw_secmem_free(c->secret);
    free(c->key_id);
    free(c->name);
    free(c->url_auth);
    free(c->url_psk);
    free(c->url_e2e);
    free(c);
    return rc;
}

int pskgw_upstream_warmup(pskgw_upstream_t *c)
{
    if (!c || c->closing)
        return PSKGW_ECLOSED;
    if (!pskgw_upstream_auth_usable(c))
        pskgw_upstream_auth_start(c);
    return 0;
}

static int submit(pskgw_upstream_t *c, pskgw_upstream_op_t op, char *body, const char *ident,
                  unsigned key_bits, uint32_t deadline_ms, pskgw_upstream_psk_cb psk_cb,
                  pskgw_upstream_e2e_cb e2e_cb, void *arg, pskgw_upstream_req_t **req_out)
{
    pskgw_upstream_req_t *r;
    size_t n;

    if (c->in_flight >= c->max_in_flight && c->queue.n >= c->queue_size) {
        c->stats.outcomes[op][PSKGW_UPSTREAM_OUT_BUSY]++;
        free(body);
        return PSKGW_EBUSY;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        free(body);
        return PSKGW_ENOMEM;
    }
    r->c = c;
    r->op = op;
    r->body = body;
    n = strnlen(ident, sizeof(r->ident) - 1);
    memcpy(r->ident, ident, n);
    r->ident[n] = '\0';
    r->key_bits = key_bits;
    r->psk_cb = psk_cb;
    r->e2e_cb = e2e_cb;
    r->arg = arg;
    uv_update_time(c->loop); /* the deadline counts from this call, not the loop's last tick */
    r->t_start = now_ms(c);
    if (!deadline_ms)
        deadline_ms = c->deadline_ms;
    r->deadline = r->t_start + deadline_ms;
    uv_timer_init(c->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_req_timer, deadline_ms, 0);
    if (req_out)
        *req_out = r;
    if (c->in_flight < c->max_in_flight && c->queue.n == 0) {
        c->in_flight++;
        r->state = R_WAIT_AUTH;
        req_start(r);
    } else {
        r->state = R_QUEUED;
        pskgw_upstream_rl_push(&c->queue, r);
    }
    return 0;
}

int pskgw_upstream_get_psk(pskgw_upstream_t *c, const char *key_id_hex, unsigned key_bits,
                           uint32_t deadline_ms, pskgw_upstream_psk_cb cb, void *arg,
                           pskgw_upstream_req_t **req_out)
{
    char *body = NULL;
    int rc;

    if (!c || !cb)
        return PSKGW_EINVAL;
    if (c->closing)
        return PSKGW_ECLOSED;
    if (!key_bits)
        key_bits = c->psk_key_bits;
    rc = pskgw_upstream_build_psk(key_id_hex, key_bits, &body);
    if (rc < 0)
        return rc;
    return submit(c, PSKGW_UPSTREAM_OP_PSK, body, key_id_hex, key_bits, deadline_ms, cb, NULL, arg,
                  req_out);
}

int pskgw_upstream_get_e2e(pskgw_upstream_t *c, const char *encrypted_header_hex,
                           uint32_t deadline_ms, pskgw_upstream_e2e_cb cb, void *arg,
                           pskgw_upstream_req_t **req_out)
{
    char *body = NULL;
    int rc;

    if (!c || !cb)
        return PSKGW_EINVAL;
    if (c->closing)
        return PSKGW_ECLOSED;
    rc = pskgw_upstream_build_e2e(encrypted_header_hex, &body);
    if (rc < 0)
        return rc;
    return submit(c, PSKGW_UPSTREAM_OP_E2E, body, encrypted_header_hex, 0, deadline_ms, NULL, cb,
                  arg, req_out);
}

void pskgw_upstream_cancel(pskgw_upstream_req_t *r)
{
    if (!r)
        return;
    switch (r->state) {
    case R_DELIVERING:
        return;
    case R_DONE:
        r->status = PSKGW_ECANCELED;
        pskgw_wipe(&r->res, sizeof(r->res));
        return;
    default:
        pskgw_upstream_finish(r, PSKGW_ECANCELED);
        return;
    }
}

/* ---- observability --------------------------------------------------------------------- */

void pskgw_upstream_stats(const pskgw_upstream_t *c, pskgw_upstream_stats_t *out)
{
    *out = c->stats;
    out->in_flight = c->in_flight;
    out->queued = (uint32_t)c->queue.n;
    out->token_valid = pskgw_upstream_auth_valid(c);
}

void pskgw_upstream_auth_status(const pskgw_upstream_t *c, pskgw_upstream_auth_status_t *out)
{
    out->token_valid = pskgw_upstream_auth_valid(c);
    out->authenticating = c->auth.http != NULL;
    out->last_error = c->auth.last_err;
}

const char *pskgw_upstream_op_name(pskgw_upstream_op_t op)
{
    static const char *const names[] = { "authenticate", "get_psk", "e2e_params" };

    return (unsigned)op < PSKGW_UPSTREAM_OP_COUNT_ ? names[op] : "unknown";
}

const char *pskgw_upstream_outcome_name(pskgw_upstream_outcome_t o)
{
    static const char *const names[] = { "ok",          "denied",      "notfound", "badreq",
                                         "ratelimited", "unavailable", "timeout",  "busy",
                                         "canceled",    "auth",        "error" };

    return (unsigned)o < PSKGW_UPSTREAM_OUT_COUNT_ ? names[o] : "unknown";
}

pskgw_upstream_outcome_t pskgw_upstream_outcome_of(int status)
{
    switch (status) {
    case 0:
        return PSKGW_UPSTREAM_OUT_OK;
    case PSKGW_EDENIED:
        return PSKGW_UPSTREAM_OUT_DENIED;
    case PSKGW_ENOTFOUND:
        return PSKGW_UPSTREAM_OUT_NOTFOUND;
    case PSKGW_EBADREQ:
        return PSKGW_UPSTREAM_OUT_BADREQ;
    case PSKGW_ERATELIMIT:
        return PSKGW_UPSTREAM_OUT_RATELIMITED;
    case PSKGW_EUNAVAIL:
        return PSKGW_UPSTREAM_OUT_UNAVAILABLE;
    case PSKGW_ETIMEOUT:
        return PSKGW_UPSTREAM_OUT_TIMEOUT;
    case PSKGW_EBUSY:
        return PSKGW_UPSTREAM_OUT_BUSY;
    case PSKGW_ECANCELED:
        return PSKGW_UPSTREAM_OUT_CANCELED;
    case PSKGW_EAUTH:
        return PSKGW_UPSTREAM_OUT_AUTH;
    default:
        return PSKGW_UPSTREAM_OUT_ERROR;
    }
}

uint64_t pskgw_upstream_retry_after_ms_left(const pskgw_upstream_t *c)
{
    uint64_t now = uv_now(c->loop);

    return c->ratelimit_until > now ? c->ratelimit_until - now : 0;
}
