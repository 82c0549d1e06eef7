/* pskgw-sim HTTP(S) server (see simserver.h). */
#include "tools/sim/simserver.h"

#include <ctype.h>
#include <errno.h>
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

#include "common/codec.h"
#include "common/err.h"
#include "common/wipe.h"
#include "tools/rotkeys/rotkeys.h"
#include "tools/sim/simstats.h"
#include "tools/sim/simtoken.h"

#define MAX_KEYID_HEX 64 /* identities are at most 32 bytes */

struct pskgw_sim_server {
    const pskgw_sim_cfg_t *cfg;
    const char *key_pem;
    const char *cert_pem;
    struct MHD_Daemon *mhd;
    pskgw_sim_stats_t *stats;

    pthread_mutex_t lock; /* everything below, and every wolfCrypt call */
    pthread_cond_t wake;  /* broadcast when stopping */
    bool stopping;
    pskgw_sim_faults_t faults;
    uint64_t rng;
    pskgw_sim_token_t *tokens;
};

/* Per-request state, from the first access-handler call to MHD's completion callback. */
typedef struct {
    char *body;
    size_t len;
    size_t cap;
    bool too_big;
} req_t;

typedef enum {
    EP_NONE = 0,
    EP_AUTH,
    EP_PSK,
    EP_E2E,
    EP_SIM,
} endpoint_t;

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

static uint64_t wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec;
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

static endpoint_t classify(const char *url)
{
    if (strcmp(url, "/v1/authenticate") == 0)
        return EP_AUTH;
    if (strcmp(url, "/v1/GetPSK") == 0)
        return EP_PSK;
    if (strcmp(url, "/v1/GetE2EDecryptionParameters") == 0 ||
        strcmp(url, "/v1/e2e/uplink/protectionparameters/get") == 0)
        return EP_E2E;
    if (strncmp(url, "/_sim/", 6) == 0)
        return EP_SIM;
    return EP_NONE;
}

static pskgw_sim_op_t op_of(endpoint_t ep)
{
    return ep == EP_AUTH ? PSKGW_SIM_OP_AUTH : ep == EP_PSK ? PSKGW_SIM_OP_PSK : PSKGW_SIM_OP_E2E;
}

/* Queue a JSON answer; `body` is consumed (NULL sends {}). The serialized text is wiped: it may
 * hold a key or a token. */
static enum MHD_Result respond(pskgw_sim_server_t *s, struct MHD_Connection *c, unsigned status,
                               json_t *body, unsigned retry_after, bool api)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    const char *out = text ? text : "{}";
    size_t len = strlen(out);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)out, MHD_RESPMEM_MUST_COPY);
    pskgw_free_secret(text, text ? len : 0);
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
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (api)
        pskgw_sim_stats_status(s->stats, status);
    return ok;
}

static enum MHD_Result respond_error(pskgw_sim_server_t *s, struct MHD_Connection *c,
                                     unsigned status, const char *msg, bool api)
{
    return respond(s, c, status, json_pack("{s:s}", "error", msg), 0, api);
}

/* ---- faults ---- */

static json_t *faults_json(const pskgw_sim_faults_t *f)
{
    return json_pack("{s:i, s:i, s:f, s:i, s:f, s:i, s:f, s:i, s:i, s:i}", "latency_ms",
                     (int)f->latency_ms, "jitter_ms", (int)f->jitter_ms, "error_rate",
                     f->error_rate, "error_status", (int)f->error_status, "ratelimit_rate",
                     f->ratelimit_rate, "retry_after_s", (int)f->retry_after_s, "drop_rate",
                     f->drop_rate, "error_next", (int)f->error_next, "ratelimit_next",
                     (int)f->ratelimit_next, "drop_next", (int)f->drop_next);
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
        get_uint_field(o, "drop_next", 0, 1000000, &n.drop_next) < 0)
        return PSKGW_EINVAL;
    *f = n;
    return 0;
}

typedef enum { FAULT_NONE, FAULT_DROP, FAULT_RATELIMIT, FAULT_ERROR } fault_t;

typedef struct {
    fault_t kind;
    unsigned delay_ms;
    unsigned status;
    unsigned retry_after;
} fault_plan_t;

static fault_plan_t faults_draw(pskgw_sim_server_t *s)
{
    fault_plan_t p = { FAULT_NONE, 0, 0, 0 };
    pthread_mutex_lock(&s->lock);
    pskgw_sim_faults_t *f = &s->faults;
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
    }
    pthread_mutex_unlock(&s->lock);
    return p;
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

/* ---- API calls ---- */

/* A string member: *v and *len, or false when missing or not a string. */
static bool get_str(json_t *o, const char *name, const char **v, size_t *len)
{
    json_t *j = json_is_object(o) ? json_object_get(o, name) : NULL;
    if (!json_is_string(j))
        return false;
    *v = json_string_value(j);
    *len = json_string_length(j);
    return true;
}

static bool is_hex(const char *s, size_t n)
{
    return n > 0 && n % 2 == 0 && pskgw_is_hex((const uint8_t *)s, n);
}

static bool every(uint32_t n, uint32_t device)
{
    return n > 0 && device % n == n - 1;
}

static int check_token(pskgw_sim_server_t *s, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h)
        return PSKGW_EAUTH;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        h += 7;
        while (*h == ' ')
            h++;
    }
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == ' ')
        n--;
    pthread_mutex_lock(&s->lock);
    int rc = pskgw_sim_token_verify(s->tokens, h, n, wall_s());
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static enum MHD_Result do_auth(pskgw_sim_server_t *s, struct MHD_Connection *c, json_t *req)
{
    const char *key, *secret;
    size_t key_len, secret_len;
    char refresh[65];
    char *tok = NULL;
    if (!get_str(req, "APIKey", &key, &key_len) || !get_str(req, "APISecret", &secret, &secret_len))
        return respond_error(s, c, 400, "APIKey and APISecret must be strings", true);
    const pskgw_sim_domain_t *d = NULL;
    for (size_t i = 0; i < s->cfg->ndomains; i++) {
        const pskgw_sim_domain_t *cand = &s->cfg->domains[i];
        size_t sl = strlen(cand->secret);
        if (strlen(cand->key) == key_len && memcmp(cand->key, key, key_len) == 0 &&
            sl == secret_len && pskgw_memeq_ct(cand->secret, secret, sl) == 0)
            d = cand;
    }
    if (!d) {
        vlog(s, "authenticate refused for api key \"%.*s\"", (int)(key_len > 64 ? 64 : key_len),
             key);
        return respond_error(s, c, 401, "invalid APIKey or APISecret", true);
    }
    pthread_mutex_lock(&s->lock);
    int rc = pskgw_sim_token_issue(s->tokens, d->key, wall_s(), s->cfg->token_ttl_s, &tok);
    pthread_mutex_unlock(&s->lock);
    if (rc == 0)
        rc = pskgw_sim_random_hex(32, refresh, sizeof(refresh));
    if (rc < 0) {
        pskgw_free_secret_str(tok);
        return respond_error(s, c, 500, "token generation failed", true);
    }
    pskgw_sim_stats_token(s->stats);
    json_t *body = json_pack("{s:s, s:s}", "AuthToken", tok, "RefreshToken", refresh);
    pskgw_free_secret_str(tok);
    pskgw_wipe(refresh, sizeof(refresh));
    /* jansson copied the strings; they are wiped again in respond() after serialising. */
    return respond(s, c, 200, body, 0, true);
}

/* KeyLength: missing -> 128; "128"/"256" (the seed's string form) or the integers 128/256. */
static int key_bits(json_t *req, unsigned *bits)
{
    json_t *v = json_object_get(req, "KeyLength");
    if (!v) {
        *bits = 128;
        return 0;
    }
    if (json_is_string(v)) {
        const char *t = json_string_value(v);
        if (strcmp(t, "128") == 0 || strcmp(t, "256") == 0) {
            *bits = t[0] == '1' ? 128 : 256;
            return 0;
        }
    } else if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n == 128 || n == 256) {
            *bits = (unsigned)n;
            return 0;
        }
    }
    return PSKGW_EINVAL;
}

static bool identity_disabled(const pskgw_sim_cfg_t *cfg, const char *hex, size_t len)
{
    for (size_t i = 0; i < cfg->ndisabled; i++) {
        if (strlen(cfg->disabled[i]) == len && strncasecmp(cfg->disabled[i], hex, len) == 0)
            return true;
    }
    return false;
}

static enum MHD_Result do_psk(pskgw_sim_server_t *s, struct MHD_Connection *c, json_t *req)
{
    const char *id;
    size_t id_len;
    unsigned bits = 0;
    uint32_t dev = 0;
    uint8_t psk[PSKGW_ROT_PSK_MAX_LEN];
    size_t psk_len = 0;
    char b64[64];
    char uid[PSKGW_ROT_UID_LEN + 1];

    if (!json_is_object(req))
        return respond_error(s, c, 400, "body must be a JSON object", true);
    if (!get_str(req, "KeyID", &id, &id_len))
        return respond_error(s, c, 400, "KeyID must be a string", true);
    if (!is_hex(id, id_len) || id_len > MAX_KEYID_HEX)
        return respond_error(s, c, 400, "KeyID must be hex (2 to 64 characters)", true);
    if (key_bits(req, &bits) < 0)
        return respond_error(s, c, 400, "KeyLength must be \"128\" or \"256\"", true);
    pthread_mutex_lock(&s->lock);
    int rc = pskgw_rot_identity_check_hex(s->cfg->seed, id, id_len, &dev);
    pthread_mutex_unlock(&s->lock);
    if (rc == PSKGW_EPARSE || rc == PSKGW_ENOTFOUND || (rc == 0 && dev >= s->cfg->devices))
        return respond_error(s, c, 404, "unknown KeyID", true);
    if (rc < 0)
        return respond_error(s, c, 500, "derivation failed", true);
    if (every(s->cfg->disabled_every, dev) || identity_disabled(s->cfg, id, id_len))
        return respond_error(s, c, 403, "PSK provisioning is not enabled for this device", true);
    pthread_mutex_lock(&s->lock);
    rc = pskgw_rot_psk(s->cfg->seed, dev, bits, psk, sizeof(psk), &psk_len);
    if (rc == 0)
        rc = pskgw_rot_uid(s->cfg->seed, dev, uid);
    pthread_mutex_unlock(&s->lock);
    if (rc == 0)
        rc = pskgw_b64_encode(psk, psk_len, b64, sizeof(b64));
    pskgw_wipe(psk, sizeof(psk));
    if (rc < 0) {
        pskgw_wipe(b64, sizeof(b64));
        return respond_error(s, c, 500, "derivation failed", true);
    }
    json_t *body = json_pack("{s:s, s:s}", "Key", b64, "ROTPublicUID", uid);
    pskgw_wipe(b64, sizeof(b64));
    return respond(s, c, 200, body, 0, true);
}

static enum MHD_Result do_e2e(pskgw_sim_server_t *s, struct MHD_Connection *c, json_t *req)
{
    const char *hex;
    size_t len;
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    size_t ki_len = 0;
    pskgw_rot_e2e_params_t p;
    char key_b64[32], nonce_b64[32];
    char uid[PSKGW_ROT_UID_LEN + 1];

    if (!json_is_object(req))
        return respond_error(s, c, 400, "body must be a JSON object", true);
    if (!get_str(req, "EncryptedHeader", &hex, &len))
        return respond_error(s, c, 400, "EncryptedHeader must be a string", true);
    if ((len != 2 * PSKGW_ROT_KI_V1_LEN && len != 2 * PSKGW_ROT_KI_V2_LEN) ||
        pskgw_hex_decode(hex, len, ki, sizeof(ki), &ki_len) != 0)
        return respond_error(s, c, 400, "EncryptedHeader must be 32 or 22 hex characters", true);
    memset(&p, 0, sizeof(p));
    pthread_mutex_lock(&s->lock);
    int rc = pskgw_rot_e2e_params(s->cfg->seed, ki, ki_len, &p);
    if (rc == 0)
        rc = pskgw_rot_uid(s->cfg->seed, p.info.device, uid);
    pthread_mutex_unlock(&s->lock);
    if (rc == PSKGW_ENOTFOUND || (rc == 0 && p.info.device >= s->cfg->devices)) {
        pskgw_rot_e2e_params_wipe(&p);
        return respond_error(s, c, 404, "unknown key identity", true);
    }
    if (rc < 0) {
        pskgw_rot_e2e_params_wipe(&p);
        return respond_error(s, c, 500, "derivation failed", true);
    }
    if (every(s->cfg->no_e2e_every, p.info.device)) {
        pskgw_rot_e2e_params_wipe(&p);
        return respond_error(s, c, 403, "E2E protection is not enabled for this device", true);
    }
    rc = pskgw_b64_encode(p.key, sizeof(p.key), key_b64, sizeof(key_b64));
    if (rc == 0)
        rc = pskgw_b64_encode(p.nonce, p.nonce_len, nonce_b64, sizeof(nonce_b64));
    json_t *body = rc < 0 ? NULL
                          : json_pack("{s:s, s:s, s:i, s:s, s:s}", "Key", key_b64, "Nonce",
                                      nonce_b64, "MACLength", (int)p.mac_bits, "CipherSuite",
                                      p.cipher_suite, "ROTPublicUID", uid);
    pskgw_rot_e2e_params_wipe(&p);
    pskgw_wipe(key_b64, sizeof(key_b64));
    pskgw_wipe(nonce_b64, sizeof(nonce_b64));
    if (!body)
        return respond_error(s, c, 500, "encoding failed", true);
    return respond(s, c, 200, body, 0, true);
}

static enum MHD_Result do_api(pskgw_sim_server_t *s, struct MHD_Connection *c, endpoint_t ep,
                              const char *method, req_t *r)
{
    if (strcmp(method, "POST") != 0)
        return respond_error(s, c, 405, "method not allowed", true);
    pskgw_sim_op_t op = op_of(ep);
    if (r->too_big) {
        pskgw_sim_stats_call(s->stats, op, NULL, 0);
        return respond_error(s, c, 413, "request body too large", true);
    }
    json_error_t jerr;
    json_t *req = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &jerr);
    const char *key = NULL;
    size_t key_len = 0;
    if (ep == EP_PSK)
        (void)get_str(req, "KeyID", &key, &key_len);
    else if (ep == EP_E2E)
        (void)get_str(req, "EncryptedHeader", &key, &key_len);
    pskgw_sim_stats_call(s->stats, op, key, key_len);

    enum MHD_Result ret;
    fault_plan_t f = faults_draw(s);
    if (f.kind == FAULT_DROP) {
        delay(s, f.delay_ms);
        pskgw_sim_stats_dropped(s->stats);
        vlog(s, "%s dropped", op == PSKGW_SIM_OP_AUTH ? "authenticate" : "call");
        json_decref(req);
        return MHD_NO; /* MHD closes the connection without an answer */
    }
    delay(s, f.delay_ms);
    if (f.kind == FAULT_RATELIMIT) {
        ret = respond(s, c, 429, json_pack("{s:s}", "error", "rate limited"), f.retry_after, true);
    } else if (f.kind == FAULT_ERROR) {
        ret = respond_error(s, c, f.status, "simulated failure", true);
    } else if (!req) {
        ret = respond_error(s, c, 400, "malformed JSON", true);
    } else if (ep == EP_AUTH) {
        ret = do_auth(s, c, req);
    } else if (check_token(s, c) < 0) {
        ret = respond_error(s, c, 401, "missing, invalid or expired AuthToken", true);
    } else if (ep == EP_PSK) {
        ret = do_psk(s, c, req);
    } else {
        ret = do_e2e(s, c, req);
    }
    json_decref(req);
    return ret;
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
        return j ? respond(s, c, 200, j, 0, false) : respond_error(s, c, 500, "no memory", false);
    }
    if (strcmp(url, "/_sim/reset") == 0) {
        if (!post)
            return respond_error(s, c, 405, "use POST", false);
        pskgw_sim_stats_reset(s->stats);
        return respond(s, c, 200, json_pack("{s:b}", "reset", 1), 0, false);
    }
    if (strcmp(url, "/_sim/expire-tokens") == 0) {
        if (!post)
            return respond_error(s, c, 405, "use POST", false);
        pthread_mutex_lock(&s->lock);
        int rc = pskgw_sim_token_expire_all(s->tokens);
        pthread_mutex_unlock(&s->lock);
        if (rc < 0)
            return respond_error(s, c, 500, "no randomness", false);
        vlog(s, "every token issued so far is now invalid");
        return respond(s, c, 200, json_pack("{s:b}", "expired", 1), 0, false);
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
        return respond(s, c, 200, faults_json(&f), 0, false);
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
    endpoint_t ep = classify(url);

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
        if (cl && errno == 0 && end != cl && n > PSKGW_SIM_MAX_BODY && ep != EP_NONE) {
            /* refuse before reading the body */
            r->too_big = true;
            bool api = ep != EP_SIM;
            if (api)
                pskgw_sim_stats_call(s->stats, op_of(ep), NULL, 0);
            return respond_error(s, c, 413, "request body too large", api);
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
    if (ep == EP_SIM)
        return do_sim(s, c, url, method, r);
    if (ep == EP_NONE)
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
    if ((rc = pskgw_sim_token_new(&s->tokens)) < 0)
        goto fail_tokens;
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
    pskgw_sim_token_free(s->tokens);
fail_tokens:
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
    if (cfg->host_len >= sizeof(host))
        return PSKGW_EINVAL;
    memcpy(host, cfg->host, cfg->host_len);
    host[cfg->host_len] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai)
        return PSKGW_EINVAL;
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof(sa));
    memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    int family = ai->ai_family;
    freeaddrinfo(ai);
    if (family == AF_INET6)
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons(cfg->port);
    else
        ((struct sockaddr_in *)&sa)->sin_port = htons(cfg->port);

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
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)(512 * 1024), MHD_OPTION_ARRAY, s->key_pem ? tls_opts : no_opts, MHD_OPTION_END);
    if (!s->mhd)
        return PSKGW_EIO;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0)
        return PSKGW_EIO;
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(url, url_cap, "%s://%s%s%s:%u", s->key_pem ? "https" : "http", v6 ? "[" : "",
                     host, v6 ? "]" : "", (unsigned)info->port);
    if (n < 0 || (size_t)n >= url_cap)
        return PSKGW_ETOOBIG;
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
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    pskgw_sim_token_free(s->tokens);
    pskgw_sim_stats_free(s->stats);
    free(s);
}
