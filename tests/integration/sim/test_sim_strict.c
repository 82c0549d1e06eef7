/* pskgw-sim --strict and the bad-day fault modes (issue 10 §5): the real binary on loopback,
 * spoken to with libcurl with every header under the test's control.
 *
 * Each test starts its own simulator (port 0, base URL from its first stdout line) and stops it
 * with SIGTERM, judging it inside the test: exit 0 and no sanitizer report in its captured stderr
 * (a pskgw-sim refusing its flags is judged with exit 2 the same way); the .fini hook kills it if
 * an assertion failed half-way.
 */
#include <criterion/criterion.h>

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "common/codec.h"
#include "proc.h"
#include "simproc.h"
#include "tools/rotkeys/rotkeys.h"

#define SEED    "strict-seed"
#define KEY     "raw-key"
#define SECRET  "raw-secret"
#define BKEY    "bearer-key"
#define BSECRET "bearer-secret"
#define CT_JSON "Content-Type: application/json"

static simproc_t sp = SIMPROC_INIT;
static char g_id[PSKGW_ROT_IDENTITY_HEX_LEN + 1];

#define GUARD_MS SIMPROC_GUARD_MS

/* ---- process ---- */

static void start_sim_v(const char *const *extra)
{
    const char *base[] = {
        "--listen",      "127.0.0.1:0", "--seed",    SEED, "--api-key",    KEY,
        "--api-secret",  SECRET,        "--api-key", BKEY, "--api-secret", BSECRET,
        "--auth-header", "bearer",      NULL
    };

    simproc_start(&sp, base, extra);
    cr_assert_eq(pskgw_rot_identity_hex(SEED, 7, g_id), 0);
}

static void fini(void)
{
    simproc_fini(&sp);
    unsetenv("PSKGW_SIM_STRICT");
}

static void init(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
    /* Each test says whether it wants strict mode: a PSKGW_SIM_STRICT=1 that the test runner
     * exports for pskgw's tests must not turn the lenient cases strict. */
    unsetenv("PSKGW_SIM_STRICT");
}

TestSuite(sim_strict, .init = init, .fini = fini, .timeout = 60);

/* ---- HTTP ---- */

typedef struct {
    long status;
    char body[8192];
    size_t len;
} resp_t;

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    resp_t *r = ud;

    return simproc_append(r->body, sizeof(r->body), &r->len, p, sz * nm);
}

/* One request on a fresh connection. ct: a whole "Content-Type: ..." line, "" for none (curl
 * would add application/x-www-form-urlencoded to a POST otherwise). auth: the header value. */
static void call(const char *path, const char *ct, const char *auth, const char *body, resp_t *r)
{
    char url[512], h[4096];
    struct curl_slist *hdrs = NULL;
    CURL *e = curl_easy_init();

    cr_assert_not_null(e);
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "%s%s", sp.url, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    if (sp.ca[0])
        curl_easy_setopt(e, CURLOPT_CAINFO, sp.ca);
    hdrs = curl_slist_append(hdrs, ct[0] ? ct : "Content-Type:");
    if (auth) {
        snprintf(h, sizeof(h), "Authorization: %s", auth);
        hdrs = curl_slist_append(hdrs, h);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(e);
    cr_assert_eq(rc, CURLE_OK, "%s: curl: %s", path, curl_easy_strerror(rc));
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(e);
    curl_slist_free_all(hdrs);
}

static void expect(const char *path, const char *ct, const char *auth, const char *body,
                   long status, const char *error_part)
{
    resp_t r;

    call(path, ct, auth, body, &r);
    cr_assert_eq(r.status, status, "%s %s: status %ld, want %ld: %s", path, body ? body : "",
                 r.status, status, r.body);
    if (error_part)
        cr_assert(strstr(r.body, error_part) != NULL, "%s: body %s lacks %s", path, r.body,
                  error_part);
}

static json_t *parse(const resp_t *r)
{
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    cr_assert_not_null(j, "not JSON: %s", r->body);
    return j;
}

/* A token of the domain key/secret (caller frees). */
static char *token(const char *key, const char *secret)
{
    char body[256];
    resp_t r;
    const char *tok = NULL;

    snprintf(body, sizeof(body), "{\"APIKey\":\"%s\",\"APISecret\":\"%s\"}", key, secret);
    call("/v1/authenticate", CT_JSON, NULL, body, &r);
    cr_assert_eq(r.status, 200, "authenticate: %ld %s", r.status, r.body);
    json_t *j = parse(&r);
    cr_assert_eq(json_unpack(j, "{s:s}", "AuthToken", &tok), 0);
    char *out = strdup(tok);
    json_decref(j);
    return out;
}

static char *bearer(const char *tok)
{
    char *h = malloc(strlen(tok) + 8);
    cr_assert_not_null(h);
    memcpy(h, "Bearer ", 7);
    memcpy(h + 7, tok, strlen(tok) + 1);
    return h;
}

static json_t *stats(void)
{
    resp_t r;
    call("/_sim/stats", CT_JSON, NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    return parse(&r);
}

static json_int_t stat(const char *section, const char *key)
{
    json_t *s = stats();
    json_t *v = json_object_get(section ? json_object_get(s, section) : s, key);
    cr_assert(json_is_integer(v), "stats %s.%s missing", section ? section : "", key);
    json_int_t x = json_integer_value(v);
    json_decref(s);
    return x;
}

static void faults(const char *json)
{
    expect("/_sim/faults", CT_JSON, NULL, json, 200, NULL);
}

static void psk_body(char *buf, size_t cap, const char *kl, const char *extra)
{
    snprintf(buf, cap, "{\"KeyID\":\"%s\"%s%s%s}", g_id, kl ? ",\"KeyLength\":" : "", kl ? kl : "",
             extra ? extra : "");
}

/* ---- strict ---- */

/* Every request a careful service refuses, once each; then the same requests, well formed,
 * answered; the refusals and the Authorization forms are counted in /_sim/stats. */
static void strict_refusals(void)
{
    char *raw = token(KEY, SECRET);
    char *braw = token(BKEY, BSECRET);
    char *b = bearer(raw);
    char *bb = bearer(braw);
    char body[512], spaced[4200];

    /* Content-Type */
    expect("/v1/authenticate", "", NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}",
           415, "Content-Type");
    expect("/v1/authenticate", "Content-Type: text/plain", NULL,
           "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}", 415, "Content-Type");
    psk_body(body, sizeof(body), "\"128\"", NULL);
    expect("/v1/GetPSK", "Content-Type: application/x-www-form-urlencoded", raw, body, 415,
           "Content-Type");
    /* unknown request fields */
    expect("/v1/authenticate", CT_JSON, NULL,
           "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\",\"Scope\":\"all\"}", 400,
           "unknown field \\\"Scope\\\"");
    psk_body(body, sizeof(body), "\"128\"", ",\"Extra\":1");
    expect("/v1/GetPSK", CT_JSON, raw, body, 400, "unknown field \\\"Extra\\\"");
    expect("/v1/GetE2EDecryptionParameters", CT_JSON, raw,
           "{\"EncryptedHeader\":\"11010000002FD82965AFDC1D5D740000\",\"V\":2}", 400,
           "unknown field");
    /* KeyLength in any form but the strings "128" and "256" */
    psk_body(body, sizeof(body), "128", NULL);
    expect("/v1/GetPSK", CT_JSON, raw, body, 400, "KeyLength");
    psk_body(body, sizeof(body), "\"512\"", NULL);
    expect("/v1/GetPSK", CT_JSON, raw, body, 400, "KeyLength");
    psk_body(body, sizeof(body), "null", NULL);
    expect("/v1/GetPSK", CT_JSON, raw, body, 400, "KeyLength");
    /* the Authorization form the domain is not configured for, or with stray spaces */
    psk_body(body, sizeof(body), "\"128\"", NULL);
    expect("/v1/GetPSK", CT_JSON, b, body, 401, "raw token");
    expect("/v1/GetPSK", CT_JSON, braw, body, 401, "Bearer");
    snprintf(spaced, sizeof(spaced), "Bearer  %s", braw);
    expect("/v1/GetPSK", CT_JSON, spaced, body, 401, "spaces");
    cr_assert_eq(stat(NULL, "strict_refused"), 12);

    /* well formed: answered */
    expect("/v1/GetPSK", CT_JSON, raw, body, 200, "\"Key\"");
    expect("/v1/GetPSK", "Content-Type: application/json; charset=utf-8", bb, body, 200, "\"Key\"");
    psk_body(body, sizeof(body), NULL, NULL); /* KeyLength is optional */
    expect("/v1/GetPSK", CT_JSON, raw, body, 200, "\"Key\"");
    cr_assert_eq(stat(NULL, "strict_refused"), 12);
    cr_assert_eq(stat("auth_header", "raw"), 9);
    cr_assert_eq(stat("auth_header", "bearer"), 3);
    cr_assert_eq(stat("auth_header", "none"), 0);
    free(raw);
    free(braw);
    free(b);
    free(bb);
}

Test(sim_strict, refuses_what_a_careful_service_refuses)
{
    start_sim("--strict");
    strict_refusals();
    simproc_stop_clean(&sp);
}

Test(sim_strict, environment_turns_strict_on)
{
    cr_assert_eq(setenv("PSKGW_SIM_STRICT", "1", 1), 0);
    start_sim("--verbose");
    unsetenv("PSKGW_SIM_STRICT");
    strict_refusals();
    simproc_stop_clean(&sp);
}

/* Without --strict the same requests are answered; the forms are still recorded. */
Test(sim_strict, lenient_without_strict)
{
    char body[512];

    start_sim("--verbose");
    char *raw = token(KEY, SECRET);
    char *b = bearer(raw);
    psk_body(body, sizeof(body), "128", ",\"Extra\":1");
    expect("/v1/GetPSK", "", raw, body, 200, "\"Key\"");
    expect("/v1/GetPSK", CT_JSON, b, body, 200, "\"Key\"");
    expect("/v1/GetPSK", CT_JSON, NULL, body, 401, NULL);
    cr_assert_eq(stat(NULL, "strict_refused"), 0);
    cr_assert_eq(stat("auth_header", "raw"), 1);
    cr_assert_eq(stat("auth_header", "bearer"), 1);
    cr_assert_eq(stat("auth_header", "none"), 1);
    free(raw);
    free(b);
    simproc_stop_clean(&sp);
}

/* A token carries its APIKey; only strict mode reads it back, and an APIKey of any length works
 * (a 300-character one was answered 401 by a lenient simulator). */
Test(sim_strict, long_api_key)
{
    static char key[301];
    char body[512], auth_body[512];
    resp_t r;
    const char *tok = NULL;

    memset(key, 'k', 300);
    key[300] = '\0';
    start_sim("--api-key", key, "--api-secret", "s");
    snprintf(auth_body, sizeof(auth_body), "{\"APIKey\":\"%s\",\"APISecret\":\"s\"}", key);
    call("/v1/authenticate", CT_JSON, NULL, auth_body, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = parse(&r);
    cr_assert_eq(json_unpack(j, "{s:s}", "AuthToken", &tok), 0);
    psk_body(body, sizeof(body), "\"128\"", NULL);
    expect("/v1/GetPSK", CT_JSON, tok, body, 200, "\"Key\"");
    json_decref(j);
    simproc_stop_clean(&sp);
}

Test(sim_strict, auth_header_flag_follows_a_pair)
{
    static const char *const bad[][8] = {
        { "--auth-header", "bearer", "--api-key", "k", "--api-secret", "s", NULL },
        { "--api-key", "k", "--auth-header", "bearer", "--api-secret", "s", NULL },
        { "--api-key", "k", "--api-secret", "s", "--auth-header", "Bearer", NULL },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[12];
        size_t n = 0;
        pskgw_test_proc_t p = { -1, -1 };
        argv[n++] = strdup(pskgw_test_bin("pskgw-sim"));
        for (size_t k = 0; bad[i][k]; k++)
            argv[n++] = strdup(bad[i][k]);
        argv[n] = NULL;
        char err[512], why[256];
        simproc_err_path(&sp, err, sizeof(err), "refused");
        cr_assert_eq(pskgw_test_spawn_logged(&p, argv, 1, err), 0);
        int st = pskgw_test_wait(&p, GUARD_MS);
        for (size_t k = 0; k < n; k++)
            free(argv[k]);
        cr_assert_eq(pskgw_test_judge_exit("pskgw-sim", st, 2, err, why, sizeof(why)), 0,
                     "case %zu: %s", i, why);
    }
}

/* ---- faults ---- */

static void check_extra_fields(const resp_t *r, const char *known)
{
    json_t *j = parse(r);
    cr_assert(json_is_string(json_object_get(j, known)), "%s lost: %s", known, r->body);
    cr_assert(json_is_integer(json_object_get(j, "Extra")), "%s", r->body);
    cr_assert(json_is_object(json_object_get(j, "Meta")), "%s", r->body);
    cr_assert(json_is_array(json_object_get(json_object_get(j, "Meta"), "Fields")), "%s", r->body);
    cr_assert(json_is_null(json_object_get(j, "Notice")), "%s", r->body);
    json_decref(j);
}

Test(sim_strict, extra_fields_by_flag_and_by_faults)
{
    char body[512];
    resp_t r;

    start_sim("--strict", "--extra-fields-rate", "1");
    call("/v1/authenticate", CT_JSON, NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}",
         &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    check_extra_fields(&r, "AuthToken");
    char *raw = token(KEY, SECRET);
    psk_body(body, sizeof(body), "\"128\"", NULL);
    call("/v1/GetPSK", CT_JSON, raw, body, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    check_extra_fields(&r, "Key");
    /* errors are left alone */
    expect("/v1/GetPSK", CT_JSON, "nonsense", body, 401, NULL);
    cr_assert_eq(stat("faults", "extra_fields"), 3);
    /* off, then one 200 answer by count (a 404 does not use it up) */
    faults("{\"extra_fields_rate\": 0, \"extra_fields_next\": 1}");
    expect("/v1/GetE2EDecryptionParameters", CT_JSON, raw,
           "{\"EncryptedHeader\":\"11010000002FD82965AFDC1D5D740000\"}", 404, NULL);
    call("/v1/GetPSK", CT_JSON, raw, body, &r);
    cr_assert_eq(r.status, 200);
    check_extra_fields(&r, "Key");
    call("/v1/GetPSK", CT_JSON, raw, body, &r);
    cr_assert_eq(r.status, 200);
    json_t *j = parse(&r);
    cr_assert_null(json_object_get(j, "Extra"), "the count was used up: %s", r.body);
    json_decref(j);
    cr_assert_eq(stat("faults", "extra_fields"), 4);
    free(raw);
    simproc_stop_clean(&sp);
}

Test(sim_strict, error_body_with_status_200)
{
    char body[512];
    resp_t r;

    start_sim("--strict");
    char *raw = token(KEY, SECRET);
    psk_body(body, sizeof(body), "\"128\"", NULL);
    faults("{\"error_body_next\": 2}");
    for (int i = 0; i < 2; i++) {
        call("/v1/GetPSK", CT_JSON, raw, body, &r);
        cr_assert_eq(r.status, 200);
        json_t *j = parse(&r);
        cr_assert(json_is_string(json_object_get(j, "error")), "%s", r.body);
        cr_assert_null(json_object_get(j, "Key"), "%s", r.body);
        json_decref(j);
    }
    expect("/v1/GetPSK", CT_JSON, raw, body, 200, "\"Key\"");
    cr_assert_eq(stat("faults", "error_body"), 2);
    cr_assert_eq(stat("calls", "get_psk"), 3);
    free(raw);
    simproc_stop_clean(&sp);

    start_sim("--error-body-rate", "1");
    expect("/v1/authenticate", CT_JSON, NULL,
           "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}", 200, "\"error\"");
    simproc_stop_clean(&sp);
}

Test(sim_strict, truncated_json)
{
    char body[512];
    resp_t whole, cut;

    start_sim("--strict");
    char *raw = token(KEY, SECRET);
    psk_body(body, sizeof(body), "\"256\"", NULL);
    call("/v1/GetPSK", CT_JSON, raw, body, &whole);
    cr_assert_eq(whole.status, 200);
    faults("{\"truncate_next\": 1}");
    call("/v1/GetPSK", CT_JSON, raw, body, &cut);
    cr_assert_eq(cut.status, 200);
    cr_assert_eq(cut.len, whole.len / 2, "%zu of %zu bytes", cut.len, whole.len);
    cr_assert(memcmp(cut.body, whole.body, cut.len) == 0);
    cr_assert_null(json_loadb(cut.body, cut.len, 0, NULL), "still JSON: %s", cut.body);
    cr_assert_eq(stat("faults", "truncated"), 1);
    free(raw);
    simproc_stop_clean(&sp);

    start_sim("--truncate-rate", "1");
    resp_t r;
    call("/v1/authenticate", CT_JSON, NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}",
         &r);
    cr_assert_eq(r.status, 200);
    cr_assert_null(json_loadb(r.body, r.len, 0, NULL), "still JSON: %s", r.body);
    simproc_stop_clean(&sp);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A token that dies before its exp claim: 401 once its (short) real life is over, although
 * exp - iat still says --token-ttl. Waits for the sim's clock to pass the real expiry by
 * retrying (the event), with a generous guard; never by sleeping. */
static void expect_early_death(const char *tok, const char *body)
{
    resp_t r;
    uint64_t give_up = wall_ms() + 30000;

    do {
        call("/v1/GetPSK", CT_JSON, tok, body, &r);
        cr_assert(r.status == 200 || r.status == 401, "%ld %s", r.status, r.body);
    } while (r.status != 401 && wall_ms() < give_up);
    cr_assert_eq(r.status, 401, "the token outlived its early expiry");
}

static json_int_t claim(const char *tok, const char *name)
{
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    uint8_t raw[1024];
    size_t n = 0;

    cr_assert(d1 && d2);
    cr_assert_eq(pskgw_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), raw, sizeof(raw), &n), 0);
    json_t *j = json_loadb((const char *)raw, n, 0, NULL);
    cr_assert_not_null(j);
    json_int_t v = json_integer_value(json_object_get(j, name));
    json_decref(j);
    return v;
}

Test(sim_strict, token_expires_early_by_flag_and_by_faults)
{
    char body[512];

    start_sim("--strict", "--token-ttl", "3600", "--token-early-expiry-ms", "300");
    psk_body(body, sizeof(body), "\"128\"", NULL);
    char *tok = token(KEY, SECRET);
    cr_assert_eq(claim(tok, "exp") - claim(tok, "iat"), 3600, "the claims promise an hour");
    expect_early_death(tok, body);
    free(tok);
    /* off: a new token lives */
    faults("{\"token_early_expiry_ms\": 0}");
    tok = token(KEY, SECRET);
    expect("/v1/GetPSK", CT_JSON, tok, body, 200, "\"Key\"");
    free(tok);
    /* on again through /_sim/faults */
    faults("{\"token_early_expiry_ms\": 200}");
    tok = token(KEY, SECRET);
    cr_assert_eq(claim(tok, "exp") - claim(tok, "iat"), 3600);
    expect_early_death(tok, body);
    free(tok);
    simproc_stop_clean(&sp);
}

Test(sim_strict, slow_tls_handshakes)
{
    char cert[512];
    char body[512];
    resp_t r;

    cr_assert_eq(pskgw_test_tmpdir(sp.tmp, sizeof(sp.tmp)), 0);
    snprintf(cert, sizeof(cert), "%s/ca.pem", sp.tmp);
    start_sim("--strict", "--tls", "--cert-out", cert, "--tls-handshake-delay-ms", "50");
    snprintf(sp.ca, sizeof(sp.ca), "%s", cert);
    char *raw = token(KEY, SECRET); /* one connection, one handshake */
    psk_body(body, sizeof(body), "\"128\"", NULL);
    call("/v1/GetPSK", CT_JSON, raw, body, &r); /* another */
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(stat("faults", "slow_handshakes"), 3); /* and the stats call */
    faults("{\"tls_handshake_delay_ms\": 0}");          /* the 4th handshake, slowed */
    call("/v1/GetPSK", CT_JSON, raw, body, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(stat("faults", "slow_handshakes"), 4);
    faults("{\"tls_handshake_delay_ms\": 20}");
    call("/v1/GetPSK", CT_JSON, raw, body, &r);
    cr_assert_eq(stat("faults", "slow_handshakes"), 6);
    free(raw);
    simproc_stop_clean(&sp);
}
