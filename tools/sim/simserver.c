/* pskgw-sim HTTP(S) server (see simserver.h). */
#include "tools/sim/simserver.h"

#include <ctype.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/wipe.h"
#include "tools/sim/simapi.h"
#include "tools/sim/simstats.h"

struct pskgw_sim_server {
    const pskgw_sim_cfg_t *cfg;
    const char *key_pem;
    const char *cert_pem;
    struct MHD_Daemon *mhd;
    pskgw_sim_stats_t *stats;
    pskgw_sim_api_t *api;

    pthread_mutex_t lock; /* everything below */
    pthread_cond_t wake;  /* broadcast when stopping */
    bool stopping;
    pskgw_sim_faults_t faults;
    uint64_t rng;
};

/* Per-request state, from the first access-handler call to MHD's completion callback. */
typedef struct {
    char *body;
    size_t len;
    size_t cap;
    bool too_big;
} req_t;

/* ---- small helpers ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void vlog(const pskgw_sim_server_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void vlog(const pskgw_sim_server_t *s, const char *fmt, ...)
{
    if (!s->cfg->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_lock);
    fputs("pskgw-sim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_lock);
    va_end(ap);
}

/* libmicrohttpd's own messages (client handshake failures, resets): only with --verbose. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    const pskgw_sim_server_t *s = cls;
    if (!s->cfg->verbose)
        return;
    pthread_mutex_lock(&log_lock);
    fputs("pskgw-sim: mhd: ", stderr);
    vfprintf(stderr, fmt, ap);
    pthread_mutex_unlock(&log_lock);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* xorshift64*: a uniform double in [0, 1). Called with s->lock held. */
static double rnd(pskgw_sim_server_t *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* Free callback of a response body: NUL-terminated JSON that may hold a key or a token. */
static void wipe_free(void *text)
{
    pskgw_free_secret_str(text);
}

/* Queue an answer; *reply is consumed (its text is wiped when MHD releases it). */
static enum MHD_Result send_reply(pskgw_sim_server_t *s, struct MHD_Connection *c,
                                  pskgw_sim_reply_t *reply, unsigned retry_after, bool api)
{
    static const char oom[] = "{\"error\":\"out of memory\"}";
    unsigned status = reply->body ? reply->status : 500;
    struct MHD_Response *r;
    if (reply->body) {
        /* MHD owns the text from here and hands it to wipe_free when it is done with it. */
        r = MHD_create_response_from_buffer_with_free_callback(reply->len, reply->body, wipe_free);
        if (r)
            memset(reply, 0, sizeof(*reply));
        else
            pskgw_sim_reply_clear(reply);
    } else {
        r = MHD_create_response_from_buffer(strlen(oom), (void *)(uintptr_t)oom,
                                            MHD_RESPMEM_PERSISTENT);
    }
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == 429) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == 405)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, api ? "POST" : "GET, POST");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (api)
        pskgw_sim_stats_status(s->stats, status);
    return ok;
}

static enum MHD_Result respond(pskgw_sim_server_t *s, struct MHD_Connection *c, unsigned status,
                               json_t *body, bool api)
{
    pskgw_sim_reply_t reply;
    (void)pskgw_sim_reply_json(&reply, status, body);
    return send_reply(s, c, &reply, 0, api);
}

static enum MHD_Result respond_error(pskgw_sim_server_t *s, struct MHD_Connection *c,
                                     unsigned status, const char *msg, bool api)
{
    pskgw_sim_reply_t reply;
    (void)pskgw_sim_reply_error(&reply, status, msg);
    return send_reply(s, c, &reply, 0, api);
}

/* ---- faults ---- */

static json_t *faults_json(const pskgw_sim_faults_t *f)
{
    json_t *o = json_pack("{s:i, s:i, s:f, s:i, s:f, s:i, s:f, s:i, s:i, s:i}", "latency_ms",
                          (int)f->latency_ms, "jitter_ms", (int)f->jitter_ms, "error_rate",
                          f->error_rate, "error_status", (int)f->error_status, "ratelimit_rate",
                          f->ratelimit_rate, "retry_after_s", (int)f->retry_after_s, "drop_rate",
                          f->drop_rate, "error_next", (int)f->error_next, "ratelimit_next",
                          (int)f->ratelimit_next, "drop_next", (int)f->drop_next);
    json_t *more = json_pack(
        "{s:f, s:i, s:f, s:i, s:f, s:i, s:i, s:i}", "extra_fields_rate", f->extra_fields_rate,
        "extra_fields_next", (int)f->extra_fields_next, "error_body_rate", f->error_body_rate,
        "error_body_next", (int)f->error_body_next, "truncate_rate", f->truncate_rate,
        "truncate_next", (int)f->truncate_next, "tls_handshake_delay_ms",
        (int)f->tls_handshake_delay_ms, "token_early_expiry_ms", (int)f->token_early_expiry_ms);
    if (!o || !more || json_object_update(o, more) != 0) {
        json_decref(o);
        o = NULL;
    }
    json_decref(more);
    return o;
}

static int get_uint_field(json_t *o, const char *name, unsigned min, unsigned max, unsigned *out)
{
    json_t *v = json_object_get(o, name);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
        json_integer_value(v) > (json_int_t)max)
        return PSKGW_EINVAL;
    *out = (unsigned)json_integer_value(v);
    return 0;
}

static int get_rate_field(json_t *o, const char *name, double *out)
{
    json_t *v = json_object_get(o, name);
    if (!v)
        return 0;
    double d = json_number_value(v);
    if (!json_is_number(v) || !(d >= 0.0 && d <= 1.0))
        return PSKGW_EINVAL;
    *out = d;
    return 0;
}

/* Apply the optional fields of o onto *f; on error *f is unchanged. */
static int faults_update(json_t *o, pskgw_sim_faults_t *f)
{
    pskgw_sim_faults_t n = *f;
    const unsigned big = 600000;
    if (!json_is_object(o))
        return PSKGW_EINVAL;
    if (get_uint_field(o, "latency_ms", 0, big, &n.latency_ms) < 0 ||
        get_uint_field(o, "jitter_ms", 0, big, &n.jitter_ms) < 0 ||
        get_rate_field(o, "error_rate", &n.error_rate) < 0 ||
        get_uint_field(o, "error_status", 100, 599, &n.error_status) < 0 ||
        get_rate_field(o, "ratelimit_rate", &n.ratelimit_rate) < 0 ||
        get_uint_field(o, "retry_after_s", 0, 86400, &n.retry_after_s) < 0 ||
        get_rate_field(o, "drop_rate", &n.drop_rate) < 0 ||
        get_uint_field(o, "error_next", 0, 1000000, &n.error_next) < 0 ||
        get_uint_field(o, "ratelimit_next", 0, 1000000, &n.ratelimit_next) < 0 ||
        get_uint_field(o, "drop_next", 0, 1000000, &n.drop_next) < 0 ||
        get_rate_field(o, "extra_fields_rate", &n.extra_fields_rate) < 0 ||
        get_uint_field(o, "extra_fields_next", 0, 1000000, &n.extra_fields_next) < 0 ||
        get_rate_field(o, "error_body_rate", &n.error_body_rate) < 0 ||
        get_uint_field(o, "error_body_next", 0, 1000000, &n.error_body_next) < 0 ||
        get_rate_field(o, "truncate_rate", &n.truncate_rate) < 0 ||
        get_uint_field(o, "truncate_next", 0, 1000000, &n.truncate_next) < 0 ||
        get_uint_field(o, "tls_handshake_delay_ms", 0, big, &n.tls_handshake_delay_ms) < 0 ||
        get_uint_field(o, "token_early_expiry_ms", 0, big, &n.token_early_expiry_ms) < 0)
        return PSKGW_EINVAL;
    *f = n;
    return 0;
}

typedef enum { FAULT_NONE, FAULT_DROP, FAULT_RATELIMIT, FAULT_ERROR, FAULT_ERROR_BODY } fault_t;

typedef struct {
    fault_t kind;
    unsigned delay_ms;
    unsigned status;
    unsigned retry_after;
    unsigned token_life_ms;
} fault_plan_t;

/* A deterministic count first, then the random rate. Called with s->lock held. */
static bool draw_one(pskgw_sim_server_t *s, unsigned *next, double rate)
{
    if (*next) {
        (*next)--;
        return true;
    }
    return rate > 0 && rnd(s) < rate;
}

static fault_plan_t faults_draw(pskgw_sim_server_t *s)
{
    fault_plan_t p = { FAULT_NONE, 0, 0, 0, 0 };
    pthread_mutex_lock(&s->lock);
    pskgw_sim_faults_t *f = &s->faults;
    p.token_life_ms = f->token_early_expiry_ms;
    p.delay_ms = f->latency_ms;
    if (f->jitter_ms)
        p.delay_ms += (unsigned)(rnd(s) * (f->jitter_ms + 1.0));
    p.status = f->error_status;
    p.retry_after = f->retry_after_s;
    if (f->drop_next) {
        f->drop_next--;
        p.kind = FAULT_DROP;
    } else if (f->ratelimit_next) {
        f->ratelimit_next--;
        p.kind = FAULT_RATELIMIT;
    } else if (f->error_next) {
        f->error_next--;
        p.kind = FAULT_ERROR;
    } else if (f->drop_rate > 0 && rnd(s) < f->drop_rate) {
        p.kind = FAULT_DROP;
    } else if (f->ratelimit_rate > 0 && rnd(s) < f->ratelimit_rate) {
        p.kind = FAULT_RATELIMIT;
    } else if (f->error_rate > 0 && rnd(s) < f->error_rate) {
        p.kind = FAULT_ERROR;
    } else if (draw_one(s, &f->error_body_next, f->error_body_rate)) {
        p.kind = FAULT_ERROR_BODY;
    }
    pthread_mutex_unlock(&s->lock);
    return p;
}

/* The faults that change a 200 answer: extra fields, then truncation. */
static void faults_on_answer(pskgw_sim_server_t *s, pskgw_sim_reply_t *reply)
{
    bool extra, cut;

    if (!reply->body || reply->status != 200)
        return;
    pthread_mutex_lock(&s->lock);
    extra = draw_one(s, &s->faults.extra_fields_next, s->faults.extra_fields_rate);
    cut = draw_one(s, &s->faults.truncate_next, s->faults.truncate_rate);
    pthread_mutex_unlock(&s->lock);
    if (extra && pskgw_sim_reply_add_extra_fields(reply) == 0)
        pskgw_sim_stats_fault(s->stats, PSKGW_SIM_FAULT_EXTRA_FIELDS);
    if (cut) {
        pskgw_sim_reply_truncate(reply);
        pskgw_sim_stats_fault(s->stats, PSKGW_SIM_FAULT_TRUNCATED);
    }
}

/* Wait ms milliseconds, or less when the server stops. */
static void delay(pskgw_sim_server_t *s, unsigned ms)
{
    struct timespec until;
    if (ms == 0)
        return;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        if (pthread_cond_timedwait(&s->wake, &s->lock, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- slow TLS handshakes ----
 *
 * libmicrohttpd runs each connection's TLS handshake (GnuTLS) in that connection's thread. When
 * a connection starts, its GnuTLS session gets a post-ClientHello hook that waits out the
 * current tls_handshake_delay_ms before the server answers the ClientHello. GnuTLS hooks carry
 * no closure that MHD leaves free, so the hook finds the server through this pointer: one
 * server per process (pskgw-sim's main). */
static pskgw_sim_server_t *tls_hook_server;

static int slow_client_hello(gnutls_session_t session)
{
    pskgw_sim_server_t *s = tls_hook_server;
    unsigned ms;

    (void)session;
    if (!s)
        return 0;
    pthread_mutex_lock(&s->lock);
    ms = s->faults.tls_handshake_delay_ms;
    pthread_mutex_unlock(&s->lock);
    if (ms) {
        pskgw_sim_stats_fault(s->stats, PSKGW_SIM_FAULT_SLOW_HANDSHAKE);
        delay(s, ms);
    }
    return 0;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    pskgw_sim_server_t *s = cls;
    const union MHD_ConnectionInfo *info;

    (void)socket_context;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED || !s->key_pem)
        return;
    info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (info && info->tls_session)
        gnutls_handshake_set_post_client_hello_function(info->tls_session, slow_client_hello);
}

/* ---- API calls ---- */

static enum MHD_Result do_api(pskgw_sim_server_t *s, struct MHD_Connection *c, pskgw_sim_ep_t ep,
                              const char *method, req_t *r)
{
    pskgw_sim_reply_t reply;
    if (strcmp(method, "POST") != 0)
        return respond_error(s, c, 405, "method not allowed", true);
    if (r->too_big) {
        pskgw_sim_stats_call(s->stats, pskgw_sim_api_op(ep), NULL, 0);
        return respond_error(s, c, 413, "request body too large", true);
    }
    pskgw_sim_api_count(s->api, ep, r->body, r->len);
    const char *auth =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (ep != PSKGW_SIM_EP_AUTH)
        pskgw_sim_stats_auth_form(s->stats, pskgw_sim_api_auth_form(auth));

    fault_plan_t f = faults_draw(s);
    delay(s, f.delay_ms);
    if (f.kind == FAULT_DROP) {
        pskgw_sim_stats_dropped(s->stats);
        vlog(s, "dropped a call to %s",
             pskgw_sim_api_op(ep) == PSKGW_SIM_OP_AUTH  ? "authenticate"
             : pskgw_sim_api_op(ep) == PSKGW_SIM_OP_PSK ? "GetPSK"
                                                        : "E2E");
        return MHD_NO; /* MHD closes the connection without an answer */
    }
    if (f.kind == FAULT_RATELIMIT) {
        (void)pskgw_sim_reply_error(&reply, 429, "rate limited");
        return send_reply(s, c, &reply, f.retry_after, true);
    }
    if (f.kind == FAULT_ERROR)
        return respond_error(s, c, f.status, "simulated failure", true);
    if (f.kind == FAULT_ERROR_BODY) {
        pskgw_sim_stats_fault(s->stats, PSKGW_SIM_FAULT_ERROR_BODY);
        return respond(s, c, 200, json_pack("{s:s, s:i}", "error", "internal error", "code", 500),
                       true);
    }
    pskgw_sim_call_t call = {
        .auth = auth,
        .content_type =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .body = r->body,
        .len = r->len,
        .now_ms = wall_ms(),
        .token_life_ms = f.token_life_ms,
    };
    (void)pskgw_sim_api_handle(s->api, ep, &call, &reply);
    if (ep == PSKGW_SIM_EP_AUTH && reply.status == 401)
        vlog(s, "authenticate refused (bad APIKey/APISecret)");
    if (s->cfg->strict && reply.status >= 400 && reply.body) /* error texts hold no secrets */
        vlog(s, "strict: answered %u %s", reply.status, reply.body);
    faults_on_answer(s, &reply);
    return send_reply(s, c, &reply, 0, true);
}

/* ---- /_sim/ control ---- */

static enum MHD_Result do_sim(pskgw_sim_server_t *s, struct MHD_Connection *c, const char *url,
                              const char *method, req_t *r)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (strcmp(url, "/_sim/stats") == 0) {
        if (!get)
            return respond_error(s, c, 405, "use GET", false);
        json_t *j = pskgw_sim_stats_json(s->stats);
        return j ? respond(s, c, 200, j, false) : respond_error(s, c, 500, "no memory", false);
    }
    if (strcmp(url, "/_sim/reset") == 0) {
        if (!post)
            return respond_error(s, c, 405, "use POST", false);
        pskgw_sim_stats_reset(s->stats);
        return respond(s, c, 200, json_pack("{s:b}", "reset", 1), false);
    }
    if (strcmp(url, "/_sim/expire-tokens") == 0) {
        if (!post)
            return respond_error(s, c, 405, "use POST", false);
        int rc = pskgw_sim_api_expire_tokens(s->api);
        if (rc < 0)
            return respond_error(s, c, 500, "no randomness", false);
        vlog(s, "every token issued so far is now invalid");
        return respond(s, c, 200, json_pack("{s:b}", "expired", 1), false);
    }
    if (strcmp(url, "/_sim/faults") == 0) {
        if (!get && !post)
            return respond_error(s, c, 405, "use GET or POST", false);
        if (post) {
            if (r->too_big)
                return respond_error(s, c, 413, "request body too large", false);
            json_t *req = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
            pthread_mutex_lock(&s->lock);
            int rc = faults_update(req, &s->faults);
            pthread_mutex_unlock(&s->lock);
            json_decref(req);
            if (rc < 0)
                return respond_error(s, c, 400, "bad faults object", false);
        }
        pthread_mutex_lock(&s->lock);
        pskgw_sim_faults_t f = s->faults;
        pthread_mutex_unlock(&s->lock);
        return respond(s, c, 200, faults_json(&f), false);
    }
    return respond_error(s, c, 404, "not found", false);
}

/* ---- libmicrohttpd glue ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    pskgw_sim_server_t *s = cls;
    req_t *r = *con_cls;
    (void)version;
    bool sim = strncmp(url, "/_sim/", 6) == 0;
    pskgw_sim_ep_t ep = pskgw_sim_api_endpoint(url);

    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        *con_cls = r;
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        char *end = NULL;
        errno = 0;
        unsigned long long n = cl ? strtoull(cl, &end, 10) : 0;
        if (cl && errno == 0 && end != cl && n > PSKGW_SIM_MAX_BODY &&
            (sim || ep != PSKGW_SIM_EP_NONE)) {
            /* refuse before reading the body */
            r->too_big = true;
            if (!sim)
                pskgw_sim_stats_call(s->stats, pskgw_sim_api_op(ep), NULL, 0);
            return respond_error(s, c, 413, "request body too large", !sim);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_big || r->len + n > PSKGW_SIM_MAX_BODY) {
            r->too_big = true; /* keep reading, discard */
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 1024;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b)
                return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        return MHD_YES;
    }
    if (sim)
        return do_sim(s, c, url, method, r);
    if (ep == PSKGW_SIM_EP_NONE)
        return respond_error(s, c, 404, "not found", true);
    pskgw_sim_stats_enter(s->stats);
    enum MHD_Result ret = do_api(s, c, ep, method, r);
    pskgw_sim_stats_leave(s->stats);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req_t *r = *con_cls;
    if (!r)
        return;
    pskgw_free_secret(r->body, r->cap); /* may hold an APISecret */
    free(r);
    *con_cls = NULL;
}

int pskgw_sim_server_new(const pskgw_sim_cfg_t *cfg, const char *key_pem, const char *cert_pem,
                         pskgw_sim_server_t **out)
{
    pskgw_sim_server_t *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;
    int rc = PSKGW_ENOMEM;
    if (!s)
        return PSKGW_ENOMEM;
    s->cfg = cfg;
    s->key_pem = key_pem;
    s->cert_pem = cert_pem;
    s->faults = cfg->faults;
    if (getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng) || s->rng == 0)
        s->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)time(NULL);
    if ((rc = pskgw_sim_stats_new(&s->stats)) < 0)
        goto fail_stats;
    if ((rc = pskgw_sim_api_new(cfg, s->stats, &s->api)) < 0)
        goto fail_api;
    rc = PSKGW_ENOMEM;
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto fail_lock;
    if (pthread_condattr_init(&ca) != 0)
        goto fail_cond;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (crc != 0)
        goto fail_cond;
    *out = s;
    return 0;
fail_cond:
    pthread_mutex_destroy(&s->lock);
fail_lock:
    pskgw_sim_api_free(s->api);
fail_api:
    pskgw_sim_stats_free(s->stats);
fail_stats:
    free(s);
    return rc;
}

int pskgw_sim_server_start(pskgw_sim_server_t *s, char *url, size_t url_cap)
{
    char host[256];
    struct addrinfo hints, *ai = NULL;
    const pskgw_sim_cfg_t *cfg = s->cfg;
    if (cfg->host_len >= sizeof(host)) {
        fprintf(stderr, "pskgw-sim: listen host too long\n");
        return PSKGW_EINVAL;
    }
    memcpy(host, cfg->host, cfg->host_len);
    host[cfg->host_len] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host, NULL, &hints, &ai);
    if (gai != 0 || !ai) {
        fprintf(stderr, "pskgw-sim: cannot resolve listen host \"%s\": %s\n", host,
                gai_strerror(gai));
        return PSKGW_EINVAL;
    }
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof(sa));
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    int family = ai->ai_family;
    freeaddrinfo(ai);
    socklen_t sa_len;
    if (family == AF_INET6) {
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons(cfg->port);
        sa_len = sizeof(struct sockaddr_in6);
    } else {
        ((struct sockaddr_in *)&sa)->sin_port = htons(cfg->port);
        sa_len = sizeof(struct sockaddr_in);
    }

    /* Our own listening socket, so that a bind error is reported precisely; MHD owns it after
     * MHD_start_daemon succeeds. */
    int one = 1;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, (struct sockaddr *)&sa, sa_len) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        fprintf(stderr, "pskgw-sim: cannot listen on \"%s\" port %u: %s\n", host,
                (unsigned)cfg->port, strerror(e));
        if (fd >= 0)
            close(fd);
        return pskgw_err_from_errno(e);
    }

    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    if (s->key_pem)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_opts[] = {
        { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)(uintptr_t)s->key_pem },
        { MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)(uintptr_t)s->cert_pem },
        { MHD_OPTION_END, 0, NULL },
    };
    struct MHD_OptionItem no_opts[] = { { MHD_OPTION_END, 0, NULL } };
    tls_hook_server = s; /* before any connection thread exists */
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)(512 * 1024), MHD_OPTION_ARRAY, s->key_pem ? tls_opts : no_opts, MHD_OPTION_END);
    if (!s->mhd) {
        fprintf(stderr, "pskgw-sim: libmicrohttpd did not start%s\n",
                s->key_pem ? " (TLS key or certificate refused?)" : "");
        return PSKGW_EIO; /* fd: MHD may already have closed it; the process exits anyway */
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        fprintf(stderr, "pskgw-sim: libmicrohttpd reports no port\n");
        return PSKGW_EIO;
    }
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(url, url_cap, "%s://%s%s%s:%u", s->key_pem ? "https" : "http", v6 ? "[" : "",
                     host, v6 ? "]" : "", (unsigned)info->port);
    if (n < 0 || (size_t)n >= url_cap) {
        fprintf(stderr, "pskgw-sim: base URL too long\n");
        return PSKGW_ETOOBIG;
    }
    return 0;
}

void pskgw_sim_server_free(pskgw_sim_server_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    if (tls_hook_server == s)
        tls_hook_server = NULL;
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    pskgw_sim_api_free(s->api);
    pskgw_sim_stats_free(s->stats);
    free(s);
}
