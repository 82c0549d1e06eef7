#include "upstream/parse.h"

#include "common/codec.h"
#include "common/err.h"
#include "common/wipe.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_UID    64u
#define MAX_ID_HEX 64u
#define MAX_TTL_MS (7ull * 24 * 3600 * 1000)
#define MIN_TTL_MS 200ull

static void why_set(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (!why || !cap)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* jansson's own buffers are released without wiping: wipe the string values that hold key
 * material or tokens before the tree is freed. */
static void wipe_json_string(json_t *v)
{
    if (v && json_is_string(v))
        pskgw_wipe((char *)json_string_value(v), json_string_length(v));
}

static void wipe_and_decref(json_t *root, const char *const *keys)
{
    if (!root)
        return;
    if (json_is_object(root))
        for (size_t i = 0; keys[i]; i++)
            wipe_json_string(json_object_get(root, keys[i]));
    json_decref(root);
}

static int load(const char *what, const char *body, size_t len, json_t **root, char *why,
                size_t why_cap)
{
    json_error_t jerr;

    if (!body && len)
        return PSKGW_EINVAL;
    if (len > PSKGW_UPSTREAM_MAX_BODY) {
        why_set(why, why_cap, "%s: body of %zu bytes over the %u-byte bound", what, len,
                PSKGW_UPSTREAM_MAX_BODY);
        return PSKGW_ETOOBIG;
    }
    *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root) {
        /* jerr.text may quote a token of the input: report only the position. */
        why_set(why, why_cap, "%s: not valid json (line %d, column %d)", what, jerr.line,
                jerr.column);
        return PSKGW_EPARSE;
    }
    if (!json_is_object(*root)) {
        why_set(why, why_cap, "%s: not a json object", what);
        json_decref(*root);
        *root = NULL;
        return PSKGW_EPARSE;
    }
    return 0;
}

/* jansson's unpack messages name keys and types ("Object item not found: Key", "Expected
 * string, got integer", "1 object item(s) left unpacked: X"), never values. Extra keys come
 * from the peer: keep them printable and short. */
static void why_unpack(char *why, size_t cap, const char *what, const json_error_t *jerr)
{
    char clean[96];
    size_t n = 0;

    for (const char *p = jerr->text; *p && n + 1 < sizeof(clean); p++)
        clean[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    clean[n] = '\0';
    why_set(why, cap, "%s: %s", what, clean);
}

static int printable(const char *s, size_t len, int allow_space)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || (!allow_space && c == ' '))
            return 0;
    }
    return 1;
}

static int copy_uid(const char *what, const char *uid, char out[MAX_UID + 1], char *why,
                    size_t why_cap)
{
    size_t n = strlen(uid);

    if (n == 0 || n > MAX_UID || !printable(uid, n, 0)) {
        why_set(why, why_cap, "%s: ROTPublicUID: must be 1..%u printable characters", what,
                MAX_UID);
        return PSKGW_EPARSE;
    }
    memcpy(out, uid, n + 1);
    return 0;
}

int pskgw_upstream_parse_auth(const char *body, size_t len, char **token_out, char *why,
                              size_t why_cap)
{
    static const char *const secret_keys[] = { "AuthToken", "RefreshToken", NULL };
    const char *what = "authenticate response";
    json_t *root = NULL;
    json_error_t jerr;
    const char *token = NULL;
    const char *refresh = NULL;
    size_t n;
    char *copy;
    int rc;

    if (!token_out)
        return PSKGW_EINVAL;
    rc = load(what, body, len, &root, why, why_cap);
    if (rc < 0)
        return rc;
    if (json_unpack_ex(root, &jerr, JSON_STRICT, "{s:s, s?:s}", "AuthToken", &token, "RefreshToken",
                       &refresh) != 0) {
        why_unpack(why, why_cap, what, &jerr);
        rc = PSKGW_EPARSE;
        goto fail;
    }
    n = strlen(token);
    if (n == 0 || n > PSKGW_UPSTREAM_MAX_TOKEN || !printable(token, n, 0)) {
        why_set(why, why_cap, "%s: AuthToken: must be 1..%u printable characters", what,
                PSKGW_UPSTREAM_MAX_TOKEN);
        rc = PSKGW_EPARSE;
        goto fail;
    }
    copy = malloc(n + 1);
    if (!copy) {
        rc = PSKGW_ENOMEM;
        goto fail;
    }
    memcpy(copy, token, n + 1);
    *token_out = copy;
    wipe_and_decref(root, secret_keys);
    return 0;

fail:
    wipe_and_decref(root, secret_keys);
    return rc;
}

static int decode_b64(const char *what, const char *field, const char *s, uint8_t *out, size_t cap,
                      size_t *out_len, char *why, size_t why_cap)
{
    int rc = pskgw_b64_decode(s, strlen(s), out, cap, out_len);

    if (rc == PSKGW_ETOOBIG) {
        why_set(why, why_cap, "%s: %s: too long", what, field);
        return PSKGW_EPARSE;
    }
    if (rc < 0) {
        why_set(why, why_cap, "%s: %s: not valid base64", what, field);
        return PSKGW_EPARSE;
    }
    return 0;
}

int pskgw_upstream_parse_psk(const char *body, size_t len, unsigned want_bits,
                             pskgw_upstream_psk_t *out, char *why, size_t why_cap)
{
    static const char *const secret_keys[] = { "Key", NULL };
    const char *what = "psk response";
    json_t *root = NULL;
    json_error_t jerr;
    const char *key = NULL;
    const char *uid = NULL;
    pskgw_upstream_psk_t res;
    uint8_t buf[64];
    size_t n = 0;
    int rc;

    if (!out || (want_bits != 128 && want_bits != 256))
        return PSKGW_EINVAL;
    memset(&res, 0, sizeof(res));
    rc = load(what, body, len, &root, why, why_cap);
    if (rc < 0)
        return rc;
    if (json_unpack_ex(root, &jerr, JSON_STRICT, "{s:s, s:s}", "Key", &key, "ROTPublicUID", &uid) !=
        0) {
        why_unpack(why, why_cap, what, &jerr);
        rc = PSKGW_EPARSE;
        goto fail;
    }
    rc = decode_b64(what, "Key", key, buf, sizeof(buf), &n, why, why_cap);
    if (rc < 0)
        goto fail;
    if ((n != 16 && n != 32) || n != want_bits / 8) {
        why_set(why, why_cap, "%s: Key: wrong length %zu bytes (asked for %u)", what, n,
                want_bits / 8);
        rc = PSKGW_EPARSE;
        goto fail;
    }
    rc = copy_uid(what, uid, res.rot_uid, why, why_cap);
    if (rc < 0)
        goto fail;
    memcpy(res.key, buf, n);
    res.key_len = n;
    *out = res;
    rc = 0;

fail:
    pskgw_wipe(buf, sizeof(buf));
    pskgw_wipe(&res, sizeof(res));
    wipe_and_decref(root, secret_keys);
    return rc;
}

int pskgw_upstream_parse_e2e(const char *body, size_t len, pskgw_upstream_e2e_t *out, char *why,
                             size_t why_cap)
{
    static const char *const secret_keys[] = { "Key", "Nonce", NULL };
    const char *what = "e2e parameters response";
    json_t *root = NULL;
    json_error_t jerr;
    const char *key = NULL;
    const char *nonce = NULL;
    const char *suite = NULL;
    const char *uid = NULL;
    json_int_t mac = 0;
    pskgw_upstream_e2e_t res;
    uint8_t buf[64];
    size_t n = 0;
    int rc;

    if (!out)
        return PSKGW_EINVAL;
    memset(&res, 0, sizeof(res));
    rc = load(what, body, len, &root, why, why_cap);
    if (rc < 0)
        return rc;
    if (json_unpack_ex(root, &jerr, JSON_STRICT, "{s:s, s:s, s:I, s:s, s:s}", "Key", &key, "Nonce",
                       &nonce, "MACLength", &mac, "CipherSuite", &suite, "ROTPublicUID",
                       &uid) != 0) {
        why_unpack(why, why_cap, what, &jerr);
        rc = PSKGW_EPARSE;
        goto fail;
    }
    rc = decode_b64(what, "Key", key, buf, sizeof(buf), &n, why, why_cap);
    if (rc < 0)
        goto fail;
    if (n != sizeof(res.key)) {
        why_set(why, why_cap, "%s: Key: wrong length %zu bytes (want 16)", what, n);
        rc = PSKGW_EPARSE;
        goto fail;
    }
    memcpy(res.key, buf, n);
    rc = decode_b64(what, "Nonce", nonce, buf, sizeof(buf), &n, why, why_cap);
    if (rc < 0)
        goto fail;
    if (n < 7 || n > 13) {
        why_set(why, why_cap, "%s: Nonce: wrong length %zu bytes (want 7..13)", what, n);
        rc = PSKGW_EPARSE;
        goto fail;
    }
    memcpy(res.nonce, buf, n);
    res.nonce_len = n;
    if (mac != 64 && mac != 128) {
        why_set(why, why_cap, "%s: MACLength: %lld is not 64 or 128", what, (long long)mac);
        rc = PSKGW_EPARSE;
        goto fail;
    }
    res.mac_bits = (unsigned)mac;
    if (!((mac == 128 && strcmp(suite, "AES_128_CCM") == 0) ||
          (mac == 64 && strcmp(suite, "AES_128_CCM_8") == 0))) {
        why_set(why, why_cap,
                "%s: CipherSuite: not AES_128_CCM (MACLength 128) or "
                "AES_128_CCM_8 (MACLength 64)",
                what);
        rc = PSKGW_EPARSE;
        goto fail;
    }
    memcpy(res.cipher_suite, suite, strlen(suite) + 1);
    rc = copy_uid(what, uid, res.rot_uid, why, why_cap);
    if (rc < 0)
        goto fail;
    *out = res;
    rc = 0;

fail:
    pskgw_wipe(buf, sizeof(buf));
    pskgw_wipe(&res, sizeof(res));
    wipe_and_decref(root, secret_keys);
    return rc;
}

int pskgw_upstream_jwt_claims(const char *jwt, size_t len, int64_t *exp, int64_t *iat)
{
    const char *dot1;
    const char *dot2;
    const char *payload;
    size_t plen;
    uint8_t *buf = NULL;
    size_t n = 0;
    json_t *root = NULL;
    json_t *v;
    int64_t e;
    int64_t i = -1;
    int rc = PSKGW_EPARSE;

    if (!jwt || !exp || !iat)
        return PSKGW_EINVAL;
    if (len > PSKGW_UPSTREAM_MAX_TOKEN)
        return PSKGW_EPARSE;
    dot1 = memchr(jwt, '.', len);
    if (!dot1)
        return PSKGW_EPARSE;
    payload = dot1 + 1;
    dot2 = memchr(payload, '.', len - (size_t)(payload - jwt));
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - jwt)))
        return PSKGW_EPARSE;
    plen = (size_t)(dot2 - payload);
    if (plen == 0)
        return PSKGW_EPARSE;
    buf = malloc(plen);
    if (!buf)
        return PSKGW_ENOMEM;
    if (pskgw_b64url_decode(payload, plen, buf, plen, &n) < 0)
        goto fail;
    root = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (!root || !json_is_object(root))
        goto fail;
    v = json_object_get(root, "exp");
    if (!v || !json_is_integer(v) || json_integer_value(v) <= 0)
        goto fail;
    e = (int64_t)json_integer_value(v);
    v = json_object_get(root, "iat");
    if (v && json_is_integer(v) && json_integer_value(v) > 0)
        i = (int64_t)json_integer_value(v);
    *exp = e;
    *iat = i;
    rc = 0;

fail:
    json_decref(root);
    pskgw_free_secret(buf, plen);
    return rc;
}

uint64_t pskgw_upstream_token_lifetime_ms(int rc, int64_t exp, int64_t iat, uint64_t now_wall_ms)
{
    int64_t ms = -1;
    int64_t wall_left = -1;

    if (rc < 0 || exp <= 0)
        return PSKGW_UPSTREAM_DEFAULT_TOKEN_TTL_MS;
    if (exp > INT64_MAX / 1000)
        return MAX_TTL_MS;
    if (now_wall_ms <= (uint64_t)INT64_MAX)
        wall_left = exp * 1000 - (int64_t)now_wall_ms;
    if (iat >= exp)
        return PSKGW_UPSTREAM_DEFAULT_TOKEN_TTL_MS; /* inconsistent claims */
    if (iat > 0) {
        /* exp - iat does not depend on clock skew, but both claims are whole seconds: a token
         * issued at x.999 s may have only exp - iat - 1 s left. When the clocks agree well
         * enough to give a shorter positive answer, that one is right. */
        ms = (exp - iat) * 1000;
        if (wall_left > 0 && wall_left < ms)
            ms = wall_left;
    } else {
        ms = wall_left;
    }
    if (ms <= 0)
        return PSKGW_UPSTREAM_DEFAULT_TOKEN_TTL_MS;
    if ((uint64_t)ms < MIN_TTL_MS)
        return MIN_TTL_MS;
    if ((uint64_t)ms > MAX_TTL_MS)
        return MAX_TTL_MS;
    return (uint64_t)ms;
}

/* json_dumpb() writes straight into our buffer (json_dumps() goes through an internal buffer
 * that is freed without wiping, and the authenticate body holds the API secret). Consumes obj. */
static int dump(json_t *obj, char **out)
{
    size_t n;
    char *s;

    if (!obj)
        return PSKGW_ENOMEM;
    n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    s = n ? malloc(n + 1) : NULL;
    if (!s || json_dumpb(obj, s, n, JSON_COMPACT) != n) {
        free(s);
        json_decref(obj);
        return PSKGW_ENOMEM;
    }
    s[n] = '\0';
    json_decref(obj);
    *out = s;
    return 0;
}

int pskgw_upstream_build_auth(const char *key_id, const char *secret, char **out)
{
    json_t *obj = NULL;
    json_t *sec;
    int rc = PSKGW_EINVAL;

    if (!key_id || !secret || !out || !*key_id || !*secret)
        return PSKGW_EINVAL;
    sec = json_string(secret); /* NULL when not UTF-8 */
    if (!sec)
        return PSKGW_EINVAL;
    obj = json_object();
    if (obj && json_object_set_new(obj, "APIKey", json_string(key_id)) == 0 &&
        json_object_set(obj, "APISecret", sec) == 0)
        rc = dump(json_incref(obj), out);
    wipe_json_string(sec);
    json_decref(sec);
    json_decref(obj);
    return rc;
}

static int upper_hex(const char *in, char out[MAX_ID_HEX + 1])
{
    size_t n;

    if (!in)
        return PSKGW_EINVAL;
    n = strnlen(in, MAX_ID_HEX + 1);
    if (n < 2 || n > MAX_ID_HEX || !pskgw_is_hex((const uint8_t *)in, n))
        return PSKGW_EINVAL;
    for (size_t i = 0; i < n; i++)
        out[i] = (in[i] >= 'a' && in[i] <= 'f') ? (char)(in[i] - 'a' + 'A') : in[i];
    out[n] = '\0';
    return 0;
}

int pskgw_upstream_build_psk(const char *key_id_hex, unsigned key_bits, char **out)
{
    char id[MAX_ID_HEX + 1];

    if (!out || (key_bits != 128 && key_bits != 256) || upper_hex(key_id_hex, id) < 0)
        return PSKGW_EINVAL;
    return dump(json_pack("{s:s, s:s}", "KeyID", id, "KeyLength", key_bits == 128 ? "128" : "256"),
                out);
}

int pskgw_upstream_build_e2e(const char *header_hex, char **out)
{
    char hdr[MAX_ID_HEX + 1];

    if (!out || upper_hex(header_hex, hdr) < 0) /* validates; the case is e2e/'s choice */
        return PSKGW_EINVAL;
    return dump(json_pack("{s:s}", "EncryptedHeader", header_hex), out);
}
