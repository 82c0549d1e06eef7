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

/* ---- tolerant field reading ----
 *
 * The service may add fields (verified: "Extra": 1 in a GetPSK answer) and may send numbers as
 * strings: known fields are read by name with strict types and ranges; unknown fields are
 * counted and named in a note, never refused; null counts as absent (fine for optional fields,
 * "missing" for required ones). */

typedef enum { F_STR, F_NUM } ftype_t;

typedef struct {
    const char *name;
    ftype_t type;
    int required;
    const char **str; /* F_STR: the value, NULL when absent */
    json_int_t *num;  /* F_NUM: the value, -1 when absent */
} field_t;

typedef struct {
    size_t count;   /* unknown fields */
    char first[40]; /* the first one's name, printable and bounded */
} unknown_t;

static const char *type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* A whole number given as an integer or as a string of 1..9 decimal digits without sign,
 * spaces or leading zeros ("128"). */
static int read_num(const json_t *v, json_int_t *out)
{
    const char *s;
    size_t n;
    json_int_t x = 0;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return PSKGW_EPARSE;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n == 0 || n > 9 || (s[0] == '0' && n > 1))
        return PSKGW_EPARSE;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return PSKGW_EPARSE;
        x = x * 10 + (s[i] - '0');
    }
    *out = x;
    return 0;
}

static int known(const field_t *f, size_t nf, const char *name)
{
    for (size_t i = 0; i < nf; i++)
        if (strcmp(f[i].name, name) == 0)
            return 1;
    return 0;
}

static void note_unknown(unknown_t *u, const char *name)
{
    size_t n = 0;

    if (u->count++ > 0)
        return;
    for (const char *p = name; *p && n < 32; p++)
        u->first[n++] = (*p >= 0x20 && *p < 0x7f && *p != '"') ? *p : '?';
    if (name[n] != '\0') {
        memcpy(u->first + n, "...", 3);
        n += 3;
    }
    u->first[n] = '\0';
}

static int read_fields(const char *what, json_t *root, field_t *f, size_t nf, unknown_t *u,
                       char *why, size_t why_cap)
{
    const char *name;
    json_t *v;

    for (size_t i = 0; i < nf; i++) {
        v = json_object_get(root, f[i].name);
        if (f[i].str)
            *f[i].str = NULL;
        if (f[i].num)
            *f[i].num = -1;
        if (!v || json_is_null(v)) {
            if (!f[i].required)
                continue;
            why_set(why, why_cap, "%s: %s: missing%s", what, f[i].name, v ? " (null)" : "");
            return PSKGW_EPARSE;
        }
        if (f[i].type == F_STR && json_is_string(v)) {
            *f[i].str = json_string_value(v);
            continue;
        }
        if (f[i].type == F_NUM && read_num(v, f[i].num) == 0)
            continue;
        why_set(why, why_cap, "%s: %s: expected %s, got %s", what, f[i].name,
                f[i].type == F_STR ? "a string" : "a whole number (or its decimal string)",
                type_word(v));
        return PSKGW_EPARSE;
    }
    memset(u, 0, sizeof(*u));
    json_object_foreach(root, name, v)
    {
        if (!known(f, nf, name))
            note_unknown(u, name);
    }
    return 0;
}

/* On success: the note about ignored fields, or an empty string. */
static void why_note(char *why, size_t why_cap, const char *what, const unknown_t *u)
{
    if (u->count == 0)
        why_set(why, why_cap, "%s", "");
    else
        why_set(why, why_cap, "%s: ignored %zu unknown field%s (first \"%s\")", what, u->count,
                u->count == 1 ? "" : "s", u->first);
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
    const char *token = NULL;
    const char *refresh = NULL;
    field_t f[] = { { "AuthToken", F_STR, 1, &token, NULL },
                    { "RefreshToken", F_STR, 0, &refresh, NULL } };
    unknown_t u;
    size_t n;
    char *copy;
    int rc;

    if (!token_out)
        return PSKGW_EINVAL;
    rc = load(what, body, len, &root, why, why_cap);
    if (rc < 0)
        return rc;
    rc = read_fields(what, root, f, sizeof(f) / sizeof(f[0]), &u, why, why_cap);
    if (rc < 0)
        goto fail;
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
    why_note(why, why_cap, what, &u);
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

/* The start every keyed answer shares: the body parsed (*root, NULL on failure), its fields read
 * into f (*key is where f stores "Key"), and the base64 "Key" decoded into buf (*n bytes). */
static int load_keyed(const char *what, const char *body, size_t len, json_t **root, field_t *f,
                      size_t nf, unknown_t *u, const char *const *key, uint8_t *buf, size_t cap,
                      size_t *n, char *why, size_t why_cap)
{
    int rc = load(what, body, len, root, why, why_cap);

    if (rc < 0)
        return rc;
    rc = read_fields(what, *root, f, nf, u, why, why_cap);
    if (rc < 0)
        return rc;
    return decode_b64(what, "Key", *key, buf, cap, n, why, why_cap);
}

/* The key's length against the domain's: a 16-byte key where 32 were asked for (or the reverse)
 * almost always means the device made its PSK with the other length (AT+USECPSK=16|32). */
static void why_key_length(char *why, size_t why_cap, const char *what, size_t n,
                           unsigned want_bits)
{
    if ((n == 16 || n == 32) && n * 8 != want_bits)
        why_set(why, why_cap,
                "%s: Key: %zu bytes (%zu bits) where psk_key_bits asks for %u: the device likely "
                "uses the other PSK length (set psk_key_bits = %zu for it)",
                what, n, n * 8, want_bits, n * 8);
    else
        why_set(why, why_cap, "%s: Key: wrong length %zu bytes (asked for %u)", what, n,
                want_bits / 8);
}

int pskgw_upstream_parse_psk(const char *body, size_t len, unsigned want_bits,
                             pskgw_upstream_psk_t *out, char *why, size_t why_cap)
{
    static const char *const secret_keys[] = { "Key", NULL };
    const char *what = "psk response";
    json_t *root = NULL;
    const char *key = NULL;
    const char *uid = NULL;
    json_int_t bits = -1;
    field_t f[] = { { "Key", F_STR, 1, &key, NULL },
                    { "ROTPublicUID", F_STR, 1, &uid, NULL },
                    { "KeyLength", F_NUM, 0, NULL, &bits } };
    unknown_t u;
    pskgw_upstream_psk_t res;
    uint8_t buf[64];
    size_t n = 0;
    int rc;

    if (!out || (want_bits != 128 && want_bits != 256))
        return PSKGW_EINVAL;
    memset(&res, 0, sizeof(res));
    rc = load_keyed(what, body, len, &root, f, sizeof(f) / sizeof(f[0]), &u, &key, buf, sizeof(buf),
                    &n, why, why_cap);
    if (rc < 0)
        goto fail;
    rc = PSKGW_EPARSE;
    if ((n != 16 && n != 32) || n != want_bits / 8) {
        why_key_length(why, why_cap, what, n, want_bits);
        goto fail;
    }
    if (bits != -1 && (size_t)bits != n * 8) {
        why_set(why, why_cap, "%s: KeyLength: %lld does not match the %zu-bit key", what,
                (long long)bits, n * 8);
        goto fail;
    }
    rc = copy_uid(what, uid, res.rot_uid, why, why_cap);
    if (rc < 0)
        goto fail;
    memcpy(res.key, buf, n);
    res.key_len = n;
    *out = res;
    why_note(why, why_cap, what, &u);
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
    const char *key = NULL;
    const char *nonce = NULL;
    const char *suite = NULL;
    const char *uid = NULL;
    json_int_t mac = 0;
    field_t f[] = { { "Key", F_STR, 1, &key, NULL },
                    { "Nonce", F_STR, 1, &nonce, NULL },
                    { "MACLength", F_NUM, 1, NULL, &mac },
                    { "CipherSuite", F_STR, 1, &suite, NULL },
                    { "ROTPublicUID", F_STR, 1, &uid, NULL } };
    unknown_t u;
    pskgw_upstream_e2e_t res;
    uint8_t buf[64];
    size_t n = 0;
    int rc;

    if (!out)
        return PSKGW_EINVAL;
    memset(&res, 0, sizeof(res));
    rc = load_keyed(what, body, len, &root, f, sizeof(f) / sizeof(f[0]), &u, &key, buf, sizeof(buf),
                    &n, why, why_cap);
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
    why_note(why, why_cap, what, &u);
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
    size_t n;

    if (!out || !key_id_hex || (key_bits != 128 && key_bits != 256))
        return PSKGW_EINVAL;
    n = strnlen(key_id_hex, MAX_ID_HEX + 1);
    if (n < 2 || n > MAX_ID_HEX || !pskgw_is_hex((const uint8_t *)key_id_hex, n))
        return PSKGW_EINVAL;
    /* KeyID exactly as given (case kept): see pskgw_identity_normalize(). */
    return dump(
        json_pack("{s:s, s:s}", "KeyID", key_id_hex, "KeyLength", key_bits == 128 ? "128" : "256"),
        out);
}

int pskgw_upstream_build_e2e(const char *header_hex, char **out)
{
    char hdr[MAX_ID_HEX + 1];

    if (!out || upper_hex(header_hex, hdr) < 0) /* validates; the case is e2e/'s choice */
        return PSKGW_EINVAL;
    return dump(json_pack("{s:s}", "EncryptedHeader", header_hex), out);
}
