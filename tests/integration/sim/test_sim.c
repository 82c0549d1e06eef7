/* Integration tests for pskgw-sim: the real binary on loopback, spoken to with libcurl.
 *
 * Each test starts its own simulator (port 0, base URL read from its first stdout line) and
 * stops it with SIGTERM, judging it inside the test: exit 0 and no sanitizer report in its
 * captured stderr (every other pskgw-sim a test starts is judged the same way, with the exit
 * status it must give); the .fini hook kills it if an assertion failed half-way.
 */
#include <criterion/criterion.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>

#include "common/codec.h"
#include "proc.h"
#include "simproc.h"
#include "tools/rotkeys/rotkeys.h"

#define SEED   "integration-seed"
#define KEY    "api-key-1"
#define SECRET "api-secret-1"

static simproc_t sp = SIMPROC_INIT;

#define GUARD_MS SIMPROC_GUARD_MS

/* ---- process ---- */

/* Judge a pskgw-sim that ended with status st (as pskgw_test_wait gives it): it must have exited
 * with want and left no sanitizer report in err. */
static void judge(const char *what, int st, int want, const char *err)
{
    char why[256];

    cr_assert_eq(pskgw_test_judge_exit(what, st, want, err, why, sizeof(why)), 0, "%s", why);
}

static void start_sim_v(const char *const *extra)
{
    const char *base[] = { "--listen", "127.0.0.1:0", "--api-key", KEY, "--api-secret",
                           SECRET,     "--seed",      SEED,        NULL };

    simproc_start(&sp, base, extra);
}

static void fini(void)
{
    simproc_fini(&sp);
}

static void init(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
    /* These tests check the simulator's documented lenient forms: a PSKGW_SIM_STRICT=1 that
     * the test runner exports for pskgw's own tests must not apply here (test_sim_strict.c
     * covers strict mode). */
    unsetenv("PSKGW_SIM_STRICT");
}

TestSuite(sim, .init = init, .fini = fini, .timeout = 50);

/* ---- HTTP ---- */

typedef struct {
    CURLcode rc;
    long status;
    char body[16384];
    size_t len;
    char retry_after[32];
    char content_type[64];
} resp_t;

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    resp_t *r = ud;

    return simproc_append(r->body, sizeof(r->body), &r->len, p, sz * nm);
}

static void copy_header_value(char *dst, size_t cap, const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    resp_t *r = ud;
    size_t n = sz * nm;
    if (n > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        copy_header_value(r->retry_after, sizeof(r->retry_after), p + 12, n - 12);
    if (n > 13 && strncasecmp(p, "Content-Type:", 13) == 0)
        copy_header_value(r->content_type, sizeof(r->content_type), p + 13, n - 13);
    return n;
}

static CURL *make_easy(const char *method, const char *path, const char *auth, const char *body,
                       struct curl_slist **hdrs, resp_t *r)
{
    char url[512], h[4096];
    CURL *e = curl_easy_init();
    cr_assert_not_null(e);
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "%s%s", sp.url, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    if (sp.ca[0])
        curl_easy_setopt(e, CURLOPT_CAINFO, sp.ca);
    *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth) {
        snprintf(h, sizeof(h), "Authorization: %s", auth);
        *hdrs = curl_slist_append(*hdrs, h);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hdrs);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
    }
    return e;
}

static void request(const char *method, const char *path, const char *auth, const char *body,
                    resp_t *r)
{
    struct curl_slist *hdrs = NULL;
    CURL *e = make_easy(method, path, auth, body, &hdrs, r);
    r->rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(e);
    curl_slist_free_all(hdrs);
}

static void post(const char *path, const char *auth, const char *body, resp_t *r)
{
    request("POST", path, auth, body, r);
}

static json_t *parse(const resp_t *r)
{
    json_error_t err;
    json_t *j = json_loadb(r->body, r->len, 0, &err);
    cr_assert_not_null(j, "not JSON (%s): %s", err.text, r->body);
    return j;
}

/* The body is exactly {"error": "<text>"}. */
static void assert_error(const resp_t *r, long status)
{
    cr_assert_eq(r->rc, CURLE_OK, "curl: %s", curl_easy_strerror(r->rc));
    cr_assert_eq(r->status, status, "status %ld, want %ld, body %s", r->status, status, r->body);
    json_t *j = parse(r);
    cr_assert(json_is_object(j) && json_object_size(j) == 1 &&
                  json_is_string(json_object_get(j, "error")),
              "error body: %s", r->body);
    json_decref(j);
}

/* Authenticate; the token (caller frees) or NULL on failure. */
static char *auth_token(void)
{
    resp_t r;
    post("/v1/authenticate", NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}", &r);
    cr_assert_eq(r.status, 200, "authenticate: %ld %s", r.status, r.body);
    json_t *j = parse(&r);
    const char *tok = NULL;
    cr_assert_eq(json_unpack(j, "{s:s}", "AuthToken", &tok), 0);
    char *out = strdup(tok);
    json_decref(j);
    return out;
}

static void identity_hex(uint32_t dev, char out[PSKGW_ROT_IDENTITY_HEX_LEN + 1])
{
    cr_assert_eq(pskgw_rot_identity_hex(SEED, dev, out), 0);
}

static void psk_body(char *buf, size_t cap, const char *keyid, const char *extra)
{
    snprintf(buf, cap, "{\"KeyID\":\"%s\"%s}", keyid, extra ? extra : "");
}

/* The wall clock's second as the simulator reads it (clock_gettime(CLOCK_REALTIME)): time(NULL)
 * reads the kernel's coarse clock, which lags it by up to a tick after a second begins, so a
 * token issued in the first milliseconds of a second could carry an iat above a time(NULL) read
 * after the answer. */
static long long wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The exp_ms claim of a token (ms since the epoch: when the simulator starts refusing it). */
static long long token_exp_ms(const char *tok)
{
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    uint8_t payload[512];
    size_t n = 0;
    json_int_t exp_ms = 0;

    cr_assert(d1 && d2, "not a JWT: %s", tok);
    cr_assert_eq(pskgw_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), payload, sizeof(payload), &n),
                 0);
    json_t *p = json_loadb((const char *)payload, n, 0, NULL);
    cr_assert_eq(json_unpack(p, "{s:I}", "exp_ms", &exp_ms), 0);
    json_decref(p);
    return (long long)exp_ms;
}

static json_int_t stat_int(json_t *stats, const char *section, const char *key)
{
    json_t *v = json_object_get(json_object_get(stats, section), key);
    return v ? json_integer_value(v) : 0;
}

static json_t *get_stats(void)
{
    resp_t r;
    request("GET", "/_sim/stats", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    return parse(&r);
}

/* ---- authenticate ---- */

Test(sim, authenticate_ok_and_wrong_secret)
{
    resp_t r;
    start_sim("--token-ttl", "120");
    long long before = wall_s();
    post("/v1/authenticate", NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.content_type, "application/json");
    json_t *j = parse(&r);
    const char *tok = NULL, *refresh = NULL;
    cr_assert_eq(json_unpack(j, "{s:s, s:s !}", "AuthToken", &tok, "RefreshToken", &refresh), 0,
                 "exact shape: %s", r.body);
    cr_assert(strlen(refresh) > 0);
    /* a JWT: three base64url segments; the payload has iat and exp = iat + ttl */
    const char *d1 = strchr(tok, '.');
    cr_assert_not_null(d1);
    const char *d2 = strchr(d1 + 1, '.');
    cr_assert_not_null(d2);
    cr_assert_null(strchr(d2 + 1, '.'));
    uint8_t payload[512];
    size_t n = 0;
    cr_assert_eq(pskgw_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), payload, sizeof(payload), &n),
                 0);
    json_t *p = json_loadb((const char *)payload, n, 0, NULL);
    json_int_t iat = 0, exp = 0, exp_ms = 0;
    cr_assert_eq(json_unpack(p, "{s:I, s:I, s:I}", "iat", &iat, "exp", &exp, "exp_ms", &exp_ms), 0);
    cr_assert_eq(exp - iat, 120);
    /* enforced: exactly ttl after issue, which lies within the second iat */
    cr_assert(exp_ms >= exp * 1000 && exp_ms < exp * 1000 + 1000, "exp_ms %lld exp %lld",
              (long long)exp_ms, (long long)exp);
    /* issued during the request */
    cr_assert(iat >= (json_int_t)before && iat <= (json_int_t)wall_s(), "iat %lld, asked at %lld",
              (long long)iat, before);
    json_decref(p);
    json_decref(j);

    post("/v1/authenticate", NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"nope\"}", &r);
    assert_error(&r, 401);
    post("/v1/authenticate", NULL, "{\"APIKey\":\"other\",\"APISecret\":\"" SECRET "\"}", &r);
    assert_error(&r, 401);
    post("/v1/authenticate", NULL, "{\"APIKey\":\"" KEY "\"}", &r);
    assert_error(&r, 400);
    post("/v1/authenticate", NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":7}", &r);
    assert_error(&r, 400);
    simproc_stop_clean(&sp);
}

Test(sim, several_domains)
{
    resp_t r;
    start_sim("--api-key", "second", "--api-secret", "s2");
    post("/v1/authenticate", NULL, "{\"APIKey\":\"second\",\"APISecret\":\"s2\"}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    post("/v1/authenticate", NULL, "{\"APIKey\":\"second\",\"APISecret\":\"" SECRET "\"}", &r);
    assert_error(&r, 401);
    char *tok = auth_token();
    free(tok);
    simproc_stop_clean(&sp);
}

/* ---- GetPSK ---- */

static void expect_psk(const char *tok, uint32_t dev, const char *keyid, const char *extra,
                       unsigned bits)
{
    char body[256];
    resp_t r;
    uint8_t want[32], got[32];
    size_t wn = 0, gn = 0;
    char uid[PSKGW_ROT_UID_LEN + 1];
    psk_body(body, sizeof(body), keyid, extra);
    post("/v1/GetPSK", tok, body, &r);
    cr_assert_eq(r.status, 200, "%s -> %ld %s", body, r.status, r.body);
    json_t *j = parse(&r);
    const char *key = NULL, *ruid = NULL;
    cr_assert_eq(json_unpack(j, "{s:s, s:s !}", "Key", &key, "ROTPublicUID", &ruid), 0,
                 "exact shape: %s", r.body);
    cr_assert_eq(pskgw_b64_decode(key, strlen(key), got, sizeof(got), &gn), 0);
    cr_assert_eq(pskgw_rot_psk(SEED, dev, bits, want, sizeof(want), &wn), 0);
    cr_assert_eq(gn, wn);
    cr_assert_eq(memcmp(got, want, wn), 0, "PSK differs from the library's");
    cr_assert_eq(pskgw_rot_uid(SEED, dev, uid), 0);
    cr_assert_str_eq(ruid, uid);
    json_decref(j);
}

Test(sim, getpsk_returns_derived_key)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], lower[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    start_sim("--devices", "1000");
    char *tok = auth_token();
    identity_hex(47, id);
    expect_psk(tok, 47, id, ",\"KeyLength\":\"128\"", 128);
    expect_psk(tok, 47, id, NULL, 128); /* KeyLength missing -> 128 */
    expect_psk(tok, 47, id, ",\"KeyLength\":\"256\"", 256);
    expect_psk(tok, 47, id, ",\"KeyLength\":256", 256);
    /* raw and Bearer header forms; KeyID in lower case */
    char bearer[2048];
    snprintf(bearer, sizeof(bearer), "Bearer %s", tok);
    for (size_t i = 0; i <= strlen(id); i++)
        lower[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] + 32 : id[i]);
    expect_psk(bearer, 47, lower, NULL, 128);
    identity_hex(999, id);
    expect_psk(tok, 999, id, NULL, 128);
    free(tok);
    simproc_stop_clean(&sp);
}

Test(sim, getpsk_unknown_is_404)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], body[256];
    resp_t r;
    start_sim("--devices", "100");
    char *tok = auth_token();
    /* the spec's sample identity is not from this seed */
    post("/v1/GetPSK", tok, "{\"KeyID\":\"11010008002F33244B115B0AEEB9\",\"KeyLength\":\"128\"}",
         &r);
    assert_error(&r, 404);
    /* a real identity with one tag digit changed */
    identity_hex(5, id);
    id[27] = id[27] == '0' ? '1' : '0';
    psk_body(body, sizeof(body), id, NULL);
    post("/v1/GetPSK", tok, body, &r);
    assert_error(&r, 404);
    /* a valid tag, but index >= --devices */
    identity_hex(100, id);
    psk_body(body, sizeof(body), id, NULL);
    post("/v1/GetPSK", tok, body, &r);
    assert_error(&r, 404);
    identity_hex(99, id);
    expect_psk(tok, 99, id, NULL, 128);
    /* hex of another length: a well-formed identity the service does not know */
    post("/v1/GetPSK", tok, "{\"KeyID\":\"010203040\"}", &r);
    assert_error(&r, 400); /* odd number of digits */
    post("/v1/GetPSK", tok, "{\"KeyID\":\"01020304\"}", &r);
    assert_error(&r, 404);
    free(tok);
    simproc_stop_clean(&sp);
}

Test(sim, getpsk_disabled_is_403)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], id2[PSKGW_ROT_IDENTITY_HEX_LEN + 1], body[256];
    char lower[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    resp_t r;
    identity_hex(20, id2);
    for (size_t i = 0; i <= strlen(id2); i++)
        lower[i] = (char)(id2[i] >= 'A' && id2[i] <= 'F' ? id2[i] + 32 : id2[i]);
    start_sim("--disabled-every", "10", "--disable-identity", lower);
    char *tok = auth_token();
    identity_hex(9, id); /* 9 % 10 == 9: disabled */
    psk_body(body, sizeof(body), id, NULL);
    post("/v1/GetPSK", tok, body, &r);
    assert_error(&r, 403);
    psk_body(body, sizeof(body), id2, NULL); /* --disable-identity, given in lower case */
    post("/v1/GetPSK", tok, body, &r);
    assert_error(&r, 403);
    identity_hex(10, id);
    expect_psk(tok, 10, id, NULL, 128);
    free(tok);
    simproc_stop_clean(&sp);
}

Test(sim, getpsk_without_or_with_bad_token_is_401)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], body[256];
    resp_t r;
    start_sim("--token-ttl", "1");
    char *tok = auth_token();
    identity_hex(3, id);
    psk_body(body, sizeof(body), id, NULL);
    post("/v1/GetPSK", NULL, body, &r);
    assert_error(&r, 401);
    post("/v1/GetPSK", "Bearer", body, &r);
    assert_error(&r, 401);
    post("/v1/GetPSK", "not.a.token", body, &r);
    assert_error(&r, 401);
    /* a token with one signature character changed */
    char *bad = strdup(tok);
    size_t n = strlen(bad);
    bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
    post("/v1/GetPSK", bad, body, &r);
    assert_error(&r, 401);
    free(bad);
    /* the 1 s token is refused once the instant it names (exp_ms, wall clock) has passed */
    long long exp_ms = token_exp_ms(tok);
    struct timespec until = { (time_t)((exp_ms + 1) / 1000),
                              (long)((exp_ms + 1) % 1000) * 1000000 };
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, NULL) == EINTR)
        ;
    post("/v1/GetPSK", tok, body, &r);
    assert_error(&r, 401);
    free(tok);
    simproc_stop_clean(&sp);
}

Test(sim, expire_tokens_forces_reauthentication)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], body[256];
    resp_t r;
    start_sim("--token-ttl", "3600");
    char *tok = auth_token();
    identity_hex(3, id);
    psk_body(body, sizeof(body), id, NULL);
    post("/v1/GetPSK", tok, body, &r);
    cr_assert_eq(r.status, 200);
    post("/_sim/expire-tokens", NULL, "", &r);
    cr_assert_eq(r.status, 200);
    post("/v1/GetPSK", tok, body, &r);
    assert_error(&r, 401);
    free(tok);
    tok = auth_token();
    post("/v1/GetPSK", tok, body, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    free(tok);
    simproc_stop_clean(&sp);
}

Test(sim, malformed_bodies_are_400)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], body[256];
    resp_t r;
    start_sim("--devices", "10");
    char *tok = auth_token();
    identity_hex(1, id);
    const char *bad[] = {
        "",
        "{",
        "[]",
        "\"KeyID\"",
        "{\"KeyLength\":\"128\"}",
        "{\"KeyID\":null}",
        "{\"KeyID\":1234}",
        "{\"KeyID\":\"\"}",
        "{\"KeyID\":\"11zz\"}",
        /* 66 hex digits: longer than any identity */
        "{\"KeyID\":\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        post("/v1/GetPSK", tok, bad[i], &r);
        cr_assert_eq(r.status, 400, "body [%s] -> %ld", bad[i], r.status);
        assert_error(&r, 400);
    }
    const char *bad_len[] = { ",\"KeyLength\":\"512\"", ",\"KeyLength\":true",
                              ",\"KeyLength\":128.0", ",\"KeyLength\":null",
                              ",\"KeyLength\":\"16\"" };
    for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
        psk_body(body, sizeof(body), id, bad_len[i]);
        post("/v1/GetPSK", tok, body, &r);
        cr_assert_eq(r.status, 400, "body [%s] -> %ld", body, r.status);
    }
    /* duplicate keys are malformed */
    snprintf(body, sizeof(body), "{\"KeyID\":\"%s\",\"KeyID\":\"%s\"}", id, id);
    post("/v1/GetPSK", tok, body, &r);
    assert_error(&r, 400);
    const char *bad_e2e[] = { "{}", "{\"EncryptedHeader\":5}", "{\"EncryptedHeader\":\"1101\"}",
                              "{\"EncryptedHeader\":\"zz01000089291e26ec1aeb0074450000\"}" };
    for (size_t i = 0; i < sizeof(bad_e2e) / sizeof(bad_e2e[0]); i++) {
        post("/v1/GetE2EDecryptionParameters", tok, bad_e2e[i], &r);
        cr_assert_eq(r.status, 400, "body [%s] -> %ld", bad_e2e[i], r.status);
    }
    free(tok);
    simproc_stop_clean(&sp);
}

Test(sim, oversized_body_and_wrong_method)
{
    resp_t r;
    start_sim("--devices", "10");
    char *tok = auth_token();
    size_t n = 20 * 1024;
    char *big = malloc(n + 32);
    cr_assert_not_null(big);
    memcpy(big, "{\"KeyID\":\"", 10);
    memset(big + 10, 'A', n);
    memcpy(big + 10 + n, "\"}", 3);
    post("/v1/GetPSK", tok, big, &r);
    free(big);
    cr_assert_eq(r.rc, CURLE_OK, "curl: %s", curl_easy_strerror(r.rc));
    cr_assert(r.status == 413, "oversized body -> %ld", r.status);
    request("GET", "/v1/GetPSK", tok, NULL, &r);
    assert_error(&r, 405);
    post("/v1/NoSuchCall", tok, "{}", &r);
    assert_error(&r, 404);
    free(tok);
    simproc_stop_clean(&sp);
}

/* ---- E2E ---- */

static void e2e_round_trip(const char *tok, const char *path, uint32_t dev, int version)
{
    const char *msg = "The quick brown fox jumps over the lazy dog.";
    size_t mlen = strlen(msg);
    uint8_t enc[128], pt[128], key[16], nonce[16];
    size_t n = 0, kn = 0, nn = 0;
    char kihex[40], body[128];
    resp_t r;
    cr_assert_eq(
        pskgw_rot_e2e_encrypt(SEED, dev, version, (const uint8_t *)msg, mlen, enc, sizeof(enc), &n),
        0);
    size_t ki_len = (enc[0] >> 4) == 1 ? 16 : 11;
    cr_assert_eq(pskgw_hex_encode(enc, ki_len, kihex, sizeof(kihex), false), 0);
    snprintf(body, sizeof(body), "{\"EncryptedHeader\":\"%s\"}", kihex);
    post(path, tok, body, &r);
    cr_assert_eq(r.status, 200, "%s -> %ld %s", body, r.status, r.body);
    json_t *j = parse(&r);
    const char *k = NULL, *no = NULL, *suite = NULL, *uid = NULL;
    json_int_t mac = 0;
    cr_assert_eq(json_unpack(j, "{s:s, s:s, s:I, s:s, s:s !}", "Key", &k, "Nonce", &no, "MACLength",
                             &mac, "CipherSuite", &suite, "ROTPublicUID", &uid),
                 0, "exact shape: %s", r.body);
    cr_assert_eq(pskgw_b64_decode(k, strlen(k), key, sizeof(key), &kn), 0);
    cr_assert_eq(pskgw_b64_decode(no, strlen(no), nonce, sizeof(nonce), &nn), 0);
    cr_assert_eq(kn, 16);
    char want_uid[PSKGW_ROT_UID_LEN + 1];
    cr_assert_eq(pskgw_rot_uid(SEED, dev, want_uid), 0);
    cr_assert_str_eq(uid, want_uid);
    if (version == PSKGW_ROT_E2E_V1) {
        cr_assert_eq(mac, 128);
        cr_assert_str_eq(suite, "AES_128_CCM");
        cr_assert_eq(nn, 13);
    } else {
        cr_assert_eq(mac, 64);
        cr_assert_str_eq(suite, "AES_128_CCM_8");
        cr_assert_eq(nn, 12);
    }
    /* decrypt what the device sent with what the service answered */
    size_t tag = (size_t)mac / 8;
    cr_assert_eq(n, ki_len + mlen + tag);
    Aes aes;
    cr_assert_eq(wc_AesInit(&aes, NULL, INVALID_DEVID), 0);
    cr_assert_eq(wc_AesCcmSetKey(&aes, key, 16), 0);
    int rc = wc_AesCcmDecrypt(&aes, pt, enc + ki_len, (word32)mlen, nonce, (word32)nn,
                              enc + n - tag, (word32)tag, NULL, 0);
    wc_AesFree(&aes);
    cr_assert_eq(rc, 0, "AES-CCM decrypt with the service's parameters failed");
    cr_assert_eq(memcmp(pt, msg, mlen), 0);
    json_decref(j);
}

Test(sim, e2e_both_paths_both_versions)
{
    resp_t r;
    start_sim("--devices", "1000", "--no-e2e-every", "100");
    char *tok = auth_token();
    e2e_round_trip(tok, "/v1/GetE2EDecryptionParameters", 12, PSKGW_ROT_E2E_V1);
    e2e_round_trip(tok, "/v1/GetE2EDecryptionParameters", 12, PSKGW_ROT_E2E_V2);
    e2e_round_trip(tok, "/v1/e2e/uplink/protectionparameters/get", 500, PSKGW_ROT_E2E_V1);
    e2e_round_trip(tok, "/v1/e2e/uplink/protectionparameters/get", 501, PSKGW_ROT_E2E_V2);
    /* the public sample KI is not ours: 404 */
    post("/v1/GetE2EDecryptionParameters", tok,
         "{\"EncryptedHeader\":\"1101000089291e26ec1aeb0074450000\"}", &r);
    assert_error(&r, 404);
    /* device 99 has E2E disabled: 403 (its PSK is still served) */
    uint8_t ki[16];
    size_t kn = 0;
    char hex[40], body[128];
    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 99, PSKGW_ROT_E2E_V1, 0, ki, sizeof(ki), &kn), 0);
    cr_assert_eq(pskgw_hex_encode(ki, kn, hex, sizeof(hex), true), 0);
    snprintf(body, sizeof(body), "{\"EncryptedHeader\":\"%s\"}", hex);
    post("/v1/GetE2EDecryptionParameters", tok, body, &r);
    assert_error(&r, 403);
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    identity_hex(99, id);
    expect_psk(tok, 99, id, NULL, 128);
    /* a KI of a device >= --devices: 404 */
    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 1000, PSKGW_ROT_E2E_V2, 0, ki, sizeof(ki), &kn), 0);
    cr_assert_eq(pskgw_hex_encode(ki, kn, hex, sizeof(hex), true), 0);
    snprintf(body, sizeof(body), "{\"EncryptedHeader\":\"%s\"}", hex);
    post("/v1/e2e/uplink/protectionparameters/get", tok, body, &r);
    assert_error(&r, 404);
    post("/v1/GetE2EDecryptionParameters", NULL, body, &r);
    assert_error(&r, 401);
    free(tok);
    simproc_stop_clean(&sp);
}

/* ---- faults ---- */

Test(sim, latency_does_not_serialise_requests)
{
    enum { N = 50 };
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], body[256];
    start_sim("--latency-ms", "1000");
    char *tok = auth_token(); /* itself delayed */
    identity_hex(7, id);
    psk_body(body, sizeof(body), id, NULL);

    CURLM *m = curl_multi_init();
    cr_assert_not_null(m);
    CURL *easy[N];
    struct curl_slist *hdrs[N];
    static resp_t resp[N];
    for (int i = 0; i < N; i++) {
        easy[i] = make_easy("POST", "/v1/GetPSK", tok, body, &hdrs[i], &resp[i]);
        cr_assert_eq(curl_multi_add_handle(m, easy[i]), CURLM_OK);
    }
    long long t0 = now_ms();
    int running = 1;
    while (running) {
        cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);
        if (running)
            cr_assert_eq(curl_multi_poll(m, NULL, 0, 1000, NULL), CURLM_OK);
    }
    long long elapsed = now_ms() - t0; /* a lower bound only: load makes it longer */
    int ok = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
        long st = 0;
        if (msg->msg == CURLMSG_DONE && msg->data.result == CURLE_OK) {
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
            ok += st == 200;
        }
    }
    for (int i = 0; i < N; i++) {
        curl_multi_remove_handle(m, easy[i]);
        curl_easy_cleanup(easy[i]);
        curl_slist_free_all(hdrs[i]);
    }
    curl_multi_cleanup(m);
    cr_assert_eq(ok, N, "%d of %d answered 200", ok, N);
    cr_assert(elapsed >= 990, "latency not applied: %lld ms", elapsed);
    /* not serialised: many requests were held in the latency fault at the same time */
    json_t *s = get_stats();
    cr_assert_eq(stat_int(s, "by_identity", id), N);
    cr_assert(json_integer_value(json_object_get(s, "max_in_flight")) > 10, "max_in_flight %lld",
              (long long)json_integer_value(json_object_get(s, "max_in_flight")));
    json_decref(s);
    free(tok);
    simproc_stop_clean(&sp);
}

Test(sim, error_rate_answers_chosen_status)
{
    resp_t r;
    start_sim("--error-rate", "1", "--error-status", "503");
    for (int i = 0; i < 5; i++) {
        post("/v1/authenticate", NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}", &r);
        assert_error(&r, 503);
    }
    /* turned off at run time */
    post("/_sim/faults", NULL, "{\"error_rate\":0}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char *tok = auth_token();
    free(tok);
    json_t *s = get_stats();
    cr_assert_eq(stat_int(s, "status", "503"), 5);
    cr_assert_eq(stat_int(s, "status", "200"), 1);
    cr_assert_eq(stat_int(s, "calls", "authenticate"), 6);
    json_decref(s);
    simproc_stop_clean(&sp);
}

Test(sim, ratelimit_429_with_retry_after)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], body[256];
    resp_t r;
    start_sim_v(NULL);
    char *tok = auth_token();
    identity_hex(4, id);
    psk_body(body, sizeof(body), id, NULL);
    post("/_sim/faults", NULL, "{\"ratelimit_rate\":1.0,\"retry_after_s\":7}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    post("/v1/GetPSK", tok, body, &r);
    assert_error(&r, 429);
    cr_assert_str_eq(r.retry_after, "7");
    post("/_sim/faults", NULL, "{\"ratelimit_rate\":0,\"ratelimit_next\":2,\"retry_after_s\":3}",
         &r);
    cr_assert_eq(r.status, 200);
    post("/v1/GetPSK", tok, body, &r);
    assert_error(&r, 429);
    cr_assert_str_eq(r.retry_after, "3");
    post("/v1/GetPSK", tok, body, &r);
    assert_error(&r, 429);
    post("/v1/GetPSK", tok, body, &r);
    cr_assert_eq(r.status, 200, "after the two scheduled 429s: %ld", r.status);
    free(tok);
    simproc_stop_clean(&sp);
}

Test(sim, flags_set_ratelimit_and_drop)
{
    resp_t r;
    start_sim("--ratelimit-rate", "1", "--retry-after", "9");
    post("/v1/authenticate", NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}", &r);
    assert_error(&r, 429);
    cr_assert_str_eq(r.retry_after, "9");
    simproc_stop_clean(&sp);

    start_sim("--drop-rate", "1");
    post("/v1/authenticate", NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}", &r);
    cr_assert_eq(r.rc, CURLE_GOT_NOTHING, "dropped connection: %s", curl_easy_strerror(r.rc));
    json_t *s = get_stats(); /* control endpoints are never faulted */
    cr_assert_eq(json_integer_value(json_object_get(s, "dropped")), 1);
    json_decref(s);
    simproc_stop_clean(&sp);
}

Test(sim, faults_endpoint_validates_and_reports)
{
    resp_t r;
    start_sim("--latency-ms", "5", "--jitter-ms", "3");
    request("GET", "/_sim/faults", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    json_t *j = parse(&r);
    json_int_t lat = 0, jit = 0, es = 0, ra = 0;
    double er = -1, rr = -1, dr = -1;
    cr_assert_eq(json_unpack(j, "{s:I, s:I, s:F, s:I, s:F, s:I, s:F}", "latency_ms", &lat,
                             "jitter_ms", &jit, "error_rate", &er, "error_status", &es,
                             "ratelimit_rate", &rr, "retry_after_s", &ra, "drop_rate", &dr),
                 0, "%s", r.body);
    cr_assert_eq(lat, 5);
    cr_assert_eq(jit, 3);
    cr_assert_eq(es, 503);
    json_decref(j);
    const char *bad[] = { "{\"error_rate\":1.5}",
                          "{\"error_status\":42}",
                          "{\"latency_ms\":-1}",
                          "{\"drop_rate\":\"0.5\"}",
                          "[]",
                          "nope" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        post("/_sim/faults", NULL, bad[i], &r);
        cr_assert_eq(r.status, 400, "%s -> %ld", bad[i], r.status);
    }
    /* nothing changed by the rejected updates; a valid one applies */
    post("/_sim/faults", NULL, "{\"error_status\":502,\"error_next\":1}", &r);
    cr_assert_eq(r.status, 200);
    j = parse(&r);
    cr_assert_eq(json_integer_value(json_object_get(j, "latency_ms")), 5);
    cr_assert_eq(json_integer_value(json_object_get(j, "error_status")), 502);
    json_decref(j);
    post("/v1/authenticate", NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}", &r);
    assert_error(&r, 502);
    char *tok = auth_token();
    free(tok);
    simproc_stop_clean(&sp);
}

/* ---- stats ---- */

Test(sim, stats_count_per_identity_and_reset)
{
    char a[PSKGW_ROT_IDENTITY_HEX_LEN + 1], b[PSKGW_ROT_IDENTITY_HEX_LEN + 1], body[256];
    char lower[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    resp_t r;
    start_sim_v(NULL);
    char *tok = auth_token();
    identity_hex(1, a);
    identity_hex(2, b);
    psk_body(body, sizeof(body), a, NULL);
    for (int i = 0; i < 3; i++) {
        post("/v1/GetPSK", tok, body, &r);
        cr_assert_eq(r.status, 200);
    }
    for (size_t i = 0; i <= strlen(b); i++)
        lower[i] = (char)(b[i] >= 'A' && b[i] <= 'F' ? b[i] + 32 : b[i]);
    psk_body(body, sizeof(body), lower, NULL); /* counted under the upper-case form */
    post("/v1/GetPSK", tok, body, &r);
    cr_assert_eq(r.status, 200);
    post("/v1/GetPSK", NULL, body, &r); /* 401, still counted */
    uint8_t ki[16];
    size_t kn = 0;
    char hex[40];
    cr_assert_eq(pskgw_rot_e2e_ki(SEED, 8, PSKGW_ROT_E2E_V2, 1, ki, sizeof(ki), &kn), 0);
    cr_assert_eq(pskgw_hex_encode(ki, kn, hex, sizeof(hex), false), 0);
    snprintf(body, sizeof(body), "{\"EncryptedHeader\":\"%s\"}", hex);
    post("/v1/e2e/uplink/protectionparameters/get", tok, body, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);

    json_t *s = get_stats();
    cr_assert_eq(stat_int(s, "calls", "authenticate"), 1);
    cr_assert_eq(stat_int(s, "calls", "get_psk"), 5);
    cr_assert_eq(stat_int(s, "calls", "e2e_params"), 1);
    cr_assert_eq(stat_int(s, "status", "200"), 6);
    cr_assert_eq(stat_int(s, "status", "401"), 1);
    cr_assert_eq(stat_int(s, "by_identity", a), 3);
    cr_assert_eq(stat_int(s, "by_identity", b), 2);
    cr_assert_eq(json_object_size(json_object_get(s, "by_identity")), 2);
    cr_assert_eq(pskgw_hex_encode(ki, kn, hex, sizeof(hex), true), 0);
    cr_assert_eq(stat_int(s, "by_key_identity", hex), 1);
    json_decref(s);

    post("/_sim/reset", NULL, "", &r);
    cr_assert_eq(r.status, 200);
    s = get_stats();
    cr_assert_eq(stat_int(s, "calls", "get_psk"), 0);
    cr_assert_eq(json_object_size(json_object_get(s, "by_identity")), 0);
    cr_assert_eq(json_object_size(json_object_get(s, "status")), 0);
    json_decref(s);
    free(tok);
    simproc_stop_clean(&sp);
}

/* ---- HTTPS ---- */

Test(sim, https_with_generated_certificate)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    resp_t r;
    cr_assert_eq(pskgw_test_tmpdir(sp.tmp, sizeof(sp.tmp)), 0);
    char cert[600];
    snprintf(cert, sizeof(cert), "%s/sim.pem", sp.tmp);
    start_sim("--tls", "--cert-out", cert);
    cr_assert_eq(strncmp(sp.url, "https://127.0.0.1:", 18), 0, "url %s", sp.url);
    /* without the CA file the certificate is not trusted */
    post("/v1/authenticate", NULL, "{\"APIKey\":\"" KEY "\",\"APISecret\":\"" SECRET "\"}", &r);
    cr_assert_eq(r.rc, CURLE_PEER_FAILED_VERIFICATION, "%s", curl_easy_strerror(r.rc));
    snprintf(sp.ca, sizeof(sp.ca), "%s", cert);
    char *tok = auth_token();
    identity_hex(11, id);
    expect_psk(tok, 11, id, NULL, 128);
    e2e_round_trip(tok, "/v1/GetE2EDecryptionParameters", 11, PSKGW_ROT_E2E_V1);
    free(tok);
    simproc_stop_clean(&sp);
}

/* ---- process ---- */

Test(sim, help_and_bad_flags)
{
    pskgw_test_proc_t p;
    char line[512];
    char *argv[] = { strdup(pskgw_test_bin("pskgw-sim")), strdup("--help"), NULL };
    char help_err[512], bad_err[512];
    simproc_err_path(&sp, help_err, sizeof(help_err), "help");
    simproc_err_path(&sp, bad_err, sizeof(bad_err), "bad");
    cr_assert_eq(pskgw_test_spawn_logged(&p, argv, 1, help_err), 0);
    const char *flags[] = {
        "--listen",       "--api-key",        "--api-secret",     "--seed",
        "--token-ttl",    "--devices",        "--disabled-every", "--disable-identity",
        "--no-e2e-every", "--latency-ms",     "--jitter-ms",      "--error-rate",
        "--error-status", "--ratelimit-rate", "--retry-after",    "--drop-rate",
        "--tls",          "--cert-out",       "--verbose",        "--show-device",
        "--help"
    };
    int seen[sizeof(flags) / sizeof(flags[0])] = { 0 };
    while (pskgw_test_read_line(&p, line, sizeof(line), GUARD_MS) == 0) {
        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
            const char *at = strstr(line, flags[i]);
            if (at && (at[strlen(flags[i])] == ' ' || at[strlen(flags[i])] == '\0'))
                seen[i] = 1;
        }
    }
    int st = pskgw_test_wait(&p, GUARD_MS);
    judge("pskgw-sim --help", st, 0, help_err);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        cr_assert(seen[i], "--help does not document %s", flags[i]);
    free(argv[0]);
    free(argv[1]);

    char *bad[] = { strdup(pskgw_test_bin("pskgw-sim")),
                    strdup("--error-rate"),
                    strdup("2"),
                    strdup("--api-key"),
                    strdup("k"),
                    strdup("--api-secret"),
                    strdup("s"),
                    NULL };
    cr_assert_eq(pskgw_test_spawn_logged(&p, bad, 1, bad_err), 0);
    st = pskgw_test_wait(&p, GUARD_MS);
    judge("pskgw-sim with a bad flag", st, 2, bad_err);
    for (int i = 0; bad[i]; i++)
        free(bad[i]);
}

Test(sim, sigterm_and_sigint_exit_zero_with_requests_waiting)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], body[256];
    start_sim_v(NULL);
    simproc_stop_clean(&sp);
    /* SIGINT too, and while a request sits in a long latency fault */
    start_sim("--latency-ms", "100000");
    identity_hex(1, id);
    psk_body(body, sizeof(body), id, NULL);
    CURLM *m = curl_multi_init();
    struct curl_slist *h = NULL;
    static resp_t r;
    CURL *e = make_easy("POST", "/v1/GetPSK", "x", body, &h, &r);
    curl_multi_add_handle(m, e);
    /* wait until the simulator holds the request (the deadline guards against hanging) */
    long long deadline = now_ms() + 60000;
    int running = 1;
    json_int_t in_flight = 0;
    while (now_ms() < deadline && in_flight == 0) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 50, NULL);
        json_t *s = get_stats();
        in_flight = json_integer_value(json_object_get(s, "in_flight"));
        json_decref(s);
    }
    cr_assert_eq(in_flight, 1);
    /* the fault holds the request for 100 s: a stop that waited for it would be killed */
    int st = pskgw_test_stop(&sp.proc, SIGINT, GUARD_MS);
    cr_assert(st != -1, "shutdown waited for the latency fault");
    judge("pskgw-sim (SIGINT)", st, 0, sp.err);
    curl_multi_remove_handle(m, e);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    curl_multi_cleanup(m);
}

Test(sim, show_device_prints_what_the_device_holds)
{
    pskgw_test_proc_t p;
    char line[512], all[4096] = "";
    size_t used = 0;
    char *argv[] = { strdup(pskgw_test_bin("pskgw-sim")),
                     strdup("--seed"),
                     strdup(SEED),
                     strdup("--show-device"),
                     strdup("47"),
                     NULL };
    char show_err[512];
    simproc_err_path(&sp, show_err, sizeof(show_err), "show");
    cr_assert_eq(pskgw_test_spawn_logged(&p, argv, 1, show_err), 0);
    while (pskgw_test_read_line(&p, line, sizeof(line), GUARD_MS) == 0) {
        size_t n = strlen(line);
        cr_assert_lt(used + n, sizeof(all));
        memcpy(all + used, line, n + 1);
        used += n;
    }
    int st = pskgw_test_wait(&p, GUARD_MS);
    judge("pskgw-sim --show-device", st, 0, show_err);
    for (int i = 0; argv[i]; i++)
        free(argv[i]);
    json_t *j = json_loads(all, 0, NULL);
    cr_assert_not_null(j, "%s", all);
    const char *id = NULL, *uid = NULL, *psk = NULL, *hello = NULL;
    cr_assert_eq(json_unpack(j, "{s:s, s:s, s:s, s:s}", "identity", &id, "ROTPublicUID", &uid,
                             "psk_128", &psk, "hello_v1", &hello),
                 0);
    char want_id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], want_uid[PSKGW_ROT_UID_LEN + 1], hex[128];
    uint8_t k[32], msg[64];
    size_t n = 0;
    identity_hex(47, want_id);
    cr_assert_str_eq(id, want_id);
    cr_assert_eq(pskgw_rot_uid(SEED, 47, want_uid), 0);
    cr_assert_str_eq(uid, want_uid);
    cr_assert_eq(pskgw_rot_psk(SEED, 47, 128, k, sizeof(k), &n), 0);
    cr_assert_eq(pskgw_hex_encode(k, n, hex, sizeof(hex), true), 0);
    cr_assert_str_eq(psk, hex);
    cr_assert_eq(pskgw_rot_e2e_encrypt(SEED, 47, PSKGW_ROT_E2E_V1, (const uint8_t *)"HELLO", 5, msg,
                                       sizeof(msg), &n),
                 0);
    cr_assert_eq(n, 37);
    cr_assert_eq(pskgw_hex_encode(msg, n, hex, sizeof(hex), true), 0);
    cr_assert_str_eq(hello, hex);
    json_decref(j);
}

Test(sim, port_in_use_exits_1)
{
    start_sim_v(NULL);
    const char *port = strrchr(sp.url, ':');
    cr_assert_not_null(port);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1%s", port);
    pskgw_test_proc_t p;
    char *argv[] = { strdup(pskgw_test_bin("pskgw-sim")),
                     strdup("--listen"),
                     strdup(listen),
                     strdup("--api-key"),
                     strdup("k"),
                     strdup("--api-secret"),
                     strdup("s"),
                     NULL };
    char second_err[512];
    simproc_err_path(&sp, second_err, sizeof(second_err), "second");
    cr_assert_eq(pskgw_test_spawn_logged(&p, argv, 1, second_err), 0);
    int st = pskgw_test_wait(&p, GUARD_MS);
    for (int i = 0; argv[i]; i++)
        free(argv[i]);
    judge("the second pskgw-sim", st, 1, second_err);
    /* the first one still serves */
    resp_t r;
    request("GET", "/_sim/stats", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    simproc_stop_clean(&sp);
}
