/* pskgw-sim: the three API calls (see simapi.h). */
#include "tools/sim/simapi.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/wipe.h"
#include "tools/rotkeys/rotkeys.h"
#include "tools/sim/simtoken.h"

#define MAX_KEYID_HEX 64 /* identities are at most 32 bytes */
#define MAX_AUTH      4096

struct pskgw_sim_api {
    const pskgw_sim_cfg_t *cfg;
    pskgw_sim_stats_t *stats;
    pthread_mutex_t lock; /* tokens and every wolfCrypt call */
    pskgw_sim_token_t *tokens;
};

/* ---- replies ---- */

int pskgw_sim_reply_json(pskgw_sim_reply_t *reply, unsigned status, json_t *json)
{
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    memset(reply, 0, sizeof(*reply));
    /* json_dumpb into our own buffer: pskgw-sim gives jansson wiping allocators, and a
     * json_dumps() result would have to go back through them. */
    size_t n = json ? json_dumpb(json, NULL, 0, flags) : 0;
    char *text = n ? malloc(n + 1) : NULL;
    if (text && json_dumpb(json, text, n, flags) != n) {
        pskgw_free_secret(text, n + 1);
        text = NULL;
    }
    json_decref(json);
    if (!text)
        return PSKGW_ENOMEM;
    text[n] = '\0';
    reply->status = status;
    reply->body = text;
    reply->len = n;
    return 0;
}

int pskgw_sim_reply_error(pskgw_sim_reply_t *reply, unsigned status, const char *msg)
{
    return pskgw_sim_reply_json(reply, status, json_pack("{s:s}", "error", msg));
}

void pskgw_sim_reply_clear(pskgw_sim_reply_t *reply)
{
    if (!reply)
        return;
    pskgw_free_secret(reply->body, reply->body ? reply->len : 0);
    memset(reply, 0, sizeof(*reply));
}

/* ---- object ---- */

pskgw_sim_ep_t pskgw_sim_api_endpoint(const char *path)
{
    if (strcmp(path, "/v1/authenticate") == 0)
        return PSKGW_SIM_EP_AUTH;
    if (strcmp(path, "/v1/GetPSK") == 0)
        return PSKGW_SIM_EP_PSK;
    if (strcmp(path, "/v1/GetE2EDecryptionParameters") == 0 ||
        strcmp(path, "/v1/e2e/uplink/protectionparameters/get") == 0)
        return PSKGW_SIM_EP_E2E;
    return PSKGW_SIM_EP_NONE;
}

pskgw_sim_op_t pskgw_sim_api_op(pskgw_sim_ep_t ep)
{
    return ep == PSKGW_SIM_EP_AUTH  ? PSKGW_SIM_OP_AUTH
           : ep == PSKGW_SIM_EP_PSK ? PSKGW_SIM_OP_PSK
                                    : PSKGW_SIM_OP_E2E;
}

int pskgw_sim_api_new(const pskgw_sim_cfg_t *cfg, pskgw_sim_stats_t *stats, pskgw_sim_api_t **out)
{
    pskgw_sim_api_t *a = calloc(1, sizeof(*a));
    if (!a)
        return PSKGW_ENOMEM;
    a->cfg = cfg;
    a->stats = stats;
    int rc = pskgw_sim_token_new(&a->tokens);
    if (rc < 0) {
        free(a);
        return rc;
    }
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        pskgw_sim_token_free(a->tokens);
        free(a);
        return PSKGW_ENOMEM;
    }
    *out = a;
    return 0;
}

void pskgw_sim_api_free(pskgw_sim_api_t *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->lock);
    pskgw_sim_token_free(a->tokens);
    free(a);
}

int pskgw_sim_api_expire_tokens(pskgw_sim_api_t *a)
{
    pthread_mutex_lock(&a->lock);
    int rc = pskgw_sim_token_expire_all(a->tokens);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* ---- helpers ---- */

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

static json_t *load(const char *body, size_t len)
{
    return json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, NULL);
}

static bool is_hex(const char *s, size_t n)
{
    return n > 0 && n % 2 == 0 && pskgw_is_hex((const uint8_t *)s, n);
}

static bool every(uint32_t n, uint32_t device)
{
    return n > 0 && device % n == n - 1;
}

void pskgw_sim_api_count(pskgw_sim_api_t *a, pskgw_sim_ep_t ep, const char *body, size_t len)
{
    const char *key = NULL;
    size_t key_len = 0;
    json_t *req = ep == PSKGW_SIM_EP_AUTH ? NULL : load(body, len);
    if (ep == PSKGW_SIM_EP_PSK)
        (void)get_str(req, "KeyID", &key, &key_len);
    else if (ep == PSKGW_SIM_EP_E2E)
        (void)get_str(req, "EncryptedHeader", &key, &key_len);
    pskgw_sim_stats_call(a->stats, pskgw_sim_api_op(ep), key, key_len);
    json_decref(req);
}

pskgw_sim_auth_form_t pskgw_sim_api_auth_form(const char *auth)
{
    if (!auth || !*auth)
        return PSKGW_SIM_AUTH_NONE;
    while (*auth == ' ')
        auth++;
    return strncasecmp(auth, "Bearer ", 7) == 0 ? PSKGW_SIM_AUTH_BEARER : PSKGW_SIM_AUTH_RAW;
}

static const pskgw_sim_domain_t *find_domain(const pskgw_sim_cfg_t *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->ndomains; i++)
        if (strcmp(cfg->domains[i].key, key) == 0)
            return &cfg->domains[i];
    return NULL;
}

/* 0 when the header carries a valid token (and, in strict mode, in exactly the form its domain
 * is configured for: "Bearer <token>" or "<token>", no other spaces). *why: the refusal. */
static int check_token(pskgw_sim_api_t *a, const char *h, uint64_t now_ms, const char **why)
{
    const char *tok = h;
    char sub[1024]; /* the token's APIKey: strict mode finds its domain by it */
    bool bearer;

    *why = "missing, invalid or expired AuthToken";
    if (!h)
        return PSKGW_EAUTH;
    while (*tok == ' ')
        tok++;
    bearer = strncasecmp(tok, "Bearer ", 7) == 0;
    if (bearer) {
        tok += 7;
        while (*tok == ' ')
            tok++;
    }
    size_t n = strnlen(tok, MAX_AUTH + 1);
    while (n > 0 && tok[n - 1] == ' ')
        n--;
    pthread_mutex_lock(&a->lock);
    int rc = pskgw_sim_token_verify(a->tokens, tok, n, now_ms, a->cfg->strict ? sub : NULL,
                                    a->cfg->strict ? sizeof(sub) : 0);
    pthread_mutex_unlock(&a->lock);
    if (rc < 0 || !a->cfg->strict)
        return rc;
    const pskgw_sim_domain_t *d = find_domain(a->cfg, sub);
    if (!d)
        return PSKGW_EAUTH;
    if (d->bearer != bearer) {
        *why = d->bearer ? "Authorization: this domain sends \"Bearer <token>\""
                         : "Authorization: this domain sends the raw token, without \"Bearer\"";
        return PSKGW_EAUTH;
    }
    if (tok[n] != '\0' || tok != h + (bearer ? 7 : 0)) {
        *why = "Authorization: malformed (spaces around the token)";
        return PSKGW_EAUTH;
    }
    return 0;
}

/* ---- strict mode ---- */

static bool json_content_type(const char *ct)
{
    static const char want[] = "application/json";
    size_t n = strlen(want);

    if (!ct || strncasecmp(ct, want, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* The first member of req that is not in names (NULL-terminated), or NULL. */
static const char *unknown_field(json_t *req, const char *const *names)
{
    const char *k;
    json_t *v;

    json_object_foreach(req, k, v)
    {
        bool known = false;
        for (size_t i = 0; names[i] && !known; i++)
            known = strcmp(k, names[i]) == 0;
        if (!known)
            return k;
    }
    return NULL;
}

/* A careful service's refusals of the request itself (fields and forms), or 0. */
static int strict_fields(pskgw_sim_api_t *a, pskgw_sim_ep_t ep, json_t *req,
                         pskgw_sim_reply_t *reply, bool *refused)
{
    static const char *const auth[] = { "APIKey", "APISecret", NULL };
    static const char *const psk[] = { "KeyID", "KeyLength", NULL };
    static const char *const e2e[] = { "EncryptedHeader", NULL };
    char msg[96];

    *refused = false;
    if (!a->cfg->strict || !json_is_object(req))
        return 0;
    const char *k = unknown_field(req, ep == PSKGW_SIM_EP_AUTH  ? auth
                                       : ep == PSKGW_SIM_EP_PSK ? psk
                                                                : e2e);
    if (k) {
        *refused = true;
        snprintf(msg, sizeof(msg), "unknown field \"%.40s\"", k);
        return pskgw_sim_reply_error(reply, 400, msg);
    }
    json_t *kl = ep == PSKGW_SIM_EP_PSK ? json_object_get(req, "KeyLength") : NULL;
    if (kl && !(json_is_string(kl) && (strcmp(json_string_value(kl), "128") == 0 ||
                                       strcmp(json_string_value(kl), "256") == 0))) {
        *refused = true;
        return pskgw_sim_reply_error(reply, 400, "KeyLength must be the string \"128\" or \"256\"");
    }
    return 0;
}

/* ---- calls ---- */

static int do_auth(pskgw_sim_api_t *a, json_t *req, uint64_t now_ms, unsigned life_ms,
                   pskgw_sim_reply_t *reply)
{
    const char *key, *secret;
    size_t key_len, secret_len;
    char refresh[65];
    char *tok = NULL;
    if (!get_str(req, "APIKey", &key, &key_len) || !get_str(req, "APISecret", &secret, &secret_len))
        return pskgw_sim_reply_error(reply, 400, "APIKey and APISecret must be strings");
    const pskgw_sim_domain_t *d = NULL;
    for (size_t i = 0; i < a->cfg->ndomains; i++) {
        const pskgw_sim_domain_t *cand = &a->cfg->domains[i];
        size_t sl = strlen(cand->secret);
        if (strlen(cand->key) == key_len && memcmp(cand->key, key, key_len) == 0 &&
            sl == secret_len && pskgw_memeq_ct(cand->secret, secret, sl) == 0)
            d = cand;
    }
    if (!d)
        return pskgw_sim_reply_error(reply, 401, "invalid APIKey or APISecret");
    pthread_mutex_lock(&a->lock);
    int rc = pskgw_sim_token_issue(a->tokens, d->key, now_ms, a->cfg->token_ttl_s, life_ms, &tok);
    pthread_mutex_unlock(&a->lock);
    if (rc == 0)
        rc = pskgw_sim_random_hex(32, refresh, sizeof(refresh));
    if (rc < 0) {
        pskgw_free_secret_str(tok);
        return pskgw_sim_reply_error(reply, 500, "token generation failed");
    }
    pskgw_sim_stats_token(a->stats);
    json_t *body = json_pack("{s:s, s:s}", "AuthToken", tok, "RefreshToken", refresh);
    pskgw_free_secret_str(tok);
    pskgw_wipe(refresh, sizeof(refresh));
    /* jansson's copies die with the json_t; the serialised text is wiped by reply_clear. */
    return pskgw_sim_reply_json(reply, 200, body);
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

static int do_psk(pskgw_sim_api_t *a, json_t *req, pskgw_sim_reply_t *reply)
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
        return pskgw_sim_reply_error(reply, 400, "body must be a JSON object");
    if (!get_str(req, "KeyID", &id, &id_len))
        return pskgw_sim_reply_error(reply, 400, "KeyID must be a string");
    if (!is_hex(id, id_len) || id_len > MAX_KEYID_HEX)
        return pskgw_sim_reply_error(reply, 400, "KeyID must be hex (2 to 64 characters)");
    if (key_bits(req, &bits) < 0)
        return pskgw_sim_reply_error(reply, 400, "KeyLength must be \"128\" or \"256\"");
    pthread_mutex_lock(&a->lock);
    pskgw_rot_id_info_t idi = { 0, 0, false }; /* fixed or per-session (devsim) identity */
    int rc = pskgw_rot_identity_resolve_hex(a->cfg->seed, id, id_len, &idi);
    dev = idi.device;
    pthread_mutex_unlock(&a->lock);
    if (rc == PSKGW_EPARSE || rc == PSKGW_ENOTFOUND || (rc == 0 && dev >= a->cfg->devices))
        return pskgw_sim_reply_error(reply, 404, "unknown KeyID");
    if (rc < 0)
        return pskgw_sim_reply_error(reply, 500, "derivation failed");
    if (every(a->cfg->disabled_every, dev) || identity_disabled(a->cfg, id, id_len))
        return pskgw_sim_reply_error(reply, 403, "PSK provisioning is not enabled for this device");
    pthread_mutex_lock(&a->lock);
    rc = pskgw_rot_identity_psk_hex(a->cfg->seed, id, id_len, bits, psk, sizeof(psk), &psk_len);
    if (rc == 0)
        rc = pskgw_rot_uid(a->cfg->seed, dev, uid);
    pthread_mutex_unlock(&a->lock);
    if (rc == 0)
        rc = pskgw_b64_encode(psk, psk_len, b64, sizeof(b64));
    pskgw_wipe(psk, sizeof(psk));
    if (rc < 0) {
        pskgw_wipe(b64, sizeof(b64));
        return pskgw_sim_reply_error(reply, 500, "derivation failed");
    }
    json_t *body = json_pack("{s:s, s:s}", "Key", b64, "ROTPublicUID", uid);
    pskgw_wipe(b64, sizeof(b64));
    return pskgw_sim_reply_json(reply, 200, body);
}

static int do_e2e(pskgw_sim_api_t *a, json_t *req, pskgw_sim_reply_t *reply)
{
    const char *hex;
    size_t len;
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    size_t ki_len = 0;
    pskgw_rot_e2e_params_t p;
    char key_b64[32], nonce_b64[32];
    char uid[PSKGW_ROT_UID_LEN + 1];

    if (!json_is_object(req))
        return pskgw_sim_reply_error(reply, 400, "body must be a JSON object");
    if (!get_str(req, "EncryptedHeader", &hex, &len))
        return pskgw_sim_reply_error(reply, 400, "EncryptedHeader must be a string");
    if ((len != 2 * PSKGW_ROT_KI_V1_LEN && len != 2 * PSKGW_ROT_KI_V2_LEN) ||
        pskgw_hex_decode(hex, len, ki, sizeof(ki), &ki_len) != 0)
        return pskgw_sim_reply_error(reply, 400, "EncryptedHeader must be 32 or 22 hex characters");
    memset(&p, 0, sizeof(p));
    pthread_mutex_lock(&a->lock);
    int rc = pskgw_rot_e2e_params_as(a->cfg->seed, ki, ki_len, a->cfg->e2e_v2_layout, &p);
    if (rc == 0)
        rc = pskgw_rot_uid(a->cfg->seed, p.info.device, uid);
    pthread_mutex_unlock(&a->lock);
    if (rc == PSKGW_ENOTFOUND || (rc == 0 && p.info.device >= a->cfg->devices))
        rc = pskgw_sim_reply_error(reply, 404, "unknown key identity");
    else if (rc < 0)
        rc = pskgw_sim_reply_error(reply, 500, "derivation failed");
    else if (every(a->cfg->no_e2e_every, p.info.device))
        rc = pskgw_sim_reply_error(reply, 403, "E2E protection is not enabled for this device");
    else {
        json_t *body = NULL;
        if (pskgw_b64_encode(p.key, sizeof(p.key), key_b64, sizeof(key_b64)) == 0 &&
            pskgw_b64_encode(p.nonce, p.nonce_len, nonce_b64, sizeof(nonce_b64)) == 0)
            body = json_pack("{s:s, s:s, s:i, s:s, s:s}", "Key", key_b64, "Nonce", nonce_b64,
                             "MACLength", (int)p.mac_bits, "CipherSuite", p.cipher_suite,
                             "ROTPublicUID", uid);
        pskgw_wipe(key_b64, sizeof(key_b64));
        pskgw_wipe(nonce_b64, sizeof(nonce_b64));
        rc = body ? pskgw_sim_reply_json(reply, 200, body)
                  : pskgw_sim_reply_error(reply, 500, "encoding failed");
    }
    pskgw_rot_e2e_params_wipe(&p);
    return rc;
}

int pskgw_sim_api_handle(pskgw_sim_api_t *a, pskgw_sim_ep_t ep, const pskgw_sim_call_t *call,
                         pskgw_sim_reply_t *reply)
{
    const char *why = NULL;
    bool refused = false;
    int rc;

    memset(reply, 0, sizeof(*reply));
    if (ep == PSKGW_SIM_EP_NONE)
        return pskgw_sim_reply_error(reply, 404, "not found");
    if (a->cfg->strict && !json_content_type(call->content_type)) {
        pskgw_sim_stats_strict_refused(a->stats);
        return pskgw_sim_reply_error(reply, 415, "Content-Type must be application/json");
    }
    json_t *req = load(call->body, call->len);
    if (!req)
        rc = pskgw_sim_reply_error(reply, 400, "malformed JSON");
    else if (ep != PSKGW_SIM_EP_AUTH && check_token(a, call->auth, call->now_ms, &why) < 0) {
        refused = a->cfg->strict && strncmp(why, "Authorization:", 14) == 0;
        rc = pskgw_sim_reply_error(reply, 401, why);
    } else {
        rc = strict_fields(a, ep, req, reply, &refused);
        if (rc == 0 && !refused)
            rc = ep == PSKGW_SIM_EP_AUTH ? do_auth(a, req, call->now_ms, call->token_life_ms, reply)
                 : ep == PSKGW_SIM_EP_PSK ? do_psk(a, req, reply)
                                          : do_e2e(a, req, reply);
    }
    if (refused)
        pskgw_sim_stats_strict_refused(a->stats);
    json_decref(req);
    return rc;
}

int pskgw_sim_api_call(pskgw_sim_api_t *a, pskgw_sim_ep_t ep, const char *auth, const char *body,
                       size_t len, uint64_t now_ms, pskgw_sim_reply_t *reply)
{
    pskgw_sim_call_t call = { auth, "application/json", body, len, now_ms, 0 };
    return pskgw_sim_api_handle(a, ep, &call, reply);
}

/* ---- faults on answers ---- */

int pskgw_sim_reply_add_extra_fields(pskgw_sim_reply_t *reply)
{
    if (!reply->body || reply->status != 200)
        return PSKGW_EINVAL;
    json_t *o = json_loadb(reply->body, reply->len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return PSKGW_EINVAL;
    }
    /* Names a service might add; nested levels repeat the known names with other types, so
     * that a parser which looks into them would be caught. */
    json_t *meta =
        json_pack("{s:s, s:i, s:[i, n, {s:i, s:s}], s:{s:b}}", "Service", "pskgw-sim", "Version", 2,
                  "Fields", 1, "Key", 5, "ROTPublicUID", "nested", "Flags", "Beta", 1);
    if (!meta || json_object_set_new(o, "Extra", json_integer(1)) != 0 ||
        json_object_set_new(o, "Meta", meta) != 0 ||
        json_object_set_new(o, "Notice", json_null()) != 0) {
        json_decref(o);
        return PSKGW_ENOMEM;
    }
    pskgw_sim_reply_t grown;
    int rc = pskgw_sim_reply_json(&grown, 200, o); /* consumes o */
    if (rc < 0)
        return rc;
    pskgw_sim_reply_clear(reply);
    *reply = grown;
    return 0;
}

void pskgw_sim_reply_truncate(pskgw_sim_reply_t *reply)
{
    if (!reply->body || reply->len == 0)
        return;
    size_t keep = reply->len / 2;
    pskgw_wipe(reply->body + keep, reply->len - keep);
    reply->len = keep;
}
