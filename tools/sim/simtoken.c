/* pskgw-sim AuthTokens (see simtoken.h). */
#include "tools/sim/simtoken.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/wipe.h"

#define SECRET_LEN 32
#define SIG_LEN    32
#define MAX_TOKEN  2048

struct pskgw_sim_token {
    uint8_t secret[SECRET_LEN];
};

static int fill_random(void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = getrandom(b, n, 0);
        if (r <= 0)
            return PSKGW_EIO;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

int pskgw_sim_random_hex(size_t n, char *out, size_t cap)
{
    uint8_t raw[32];
    if (n > sizeof(raw) || cap < 2 * n + 1)
        return PSKGW_EINVAL;
    if (fill_random(raw, n) < 0)
        return PSKGW_EIO;
    return pskgw_hex_encode(raw, n, out, cap, false);
}

int pskgw_sim_token_new(pskgw_sim_token_t **out)
{
    pskgw_sim_token_t *t = calloc(1, sizeof(*t));
    if (!t)
        return PSKGW_ENOMEM;
    if (fill_random(t->secret, sizeof(t->secret)) < 0) {
        free(t);
        return PSKGW_EIO;
    }
    *out = t;
    return 0;
}

void pskgw_sim_token_free(pskgw_sim_token_t *t)
{
    pskgw_free_secret(t, sizeof(*t));
}

int pskgw_sim_token_expire_all(pskgw_sim_token_t *t)
{
    return fill_random(t->secret, sizeof(t->secret));
}

/* base64url without padding; out must hold pskgw_b64_encoded_len(n) bytes. */
static int b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    int rc = pskgw_b64_encode(in, n, out, cap);
    if (rc < 0)
        return rc;
    char *p = out;
    for (; *p && *p != '='; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
    *p = '\0';
    return 0;
}

static int sign(const pskgw_sim_token_t *t, const char *msg, size_t len, uint8_t sig[SIG_LEN])
{
    Hmac h;
    int rc = PSKGW_ECRYPTO;
    if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
        return PSKGW_ECRYPTO;
    if (wc_HmacSetKey(&h, WC_SHA256, t->secret, sizeof(t->secret)) == 0 &&
        wc_HmacUpdate(&h, (const uint8_t *)msg, (word32)len) == 0 && wc_HmacFinal(&h, sig) == 0)
        rc = 0;
    wc_HmacFree(&h);
    pskgw_wipe(&h, sizeof(h));
    return rc;
}

int pskgw_sim_token_issue(pskgw_sim_token_t *t, const char *sub, uint64_t now_ms, unsigned ttl_s,
                          unsigned life_ms, char **out)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char jti[33];
    char *payload = NULL;
    char *tok = NULL;
    uint8_t sig[SIG_LEN];
    int rc = pskgw_sim_random_hex(8, jti, sizeof(jti));
    if (rc < 0)
        return rc;
    uint64_t now_s = now_ms / 1000;
    json_t *p = json_pack("{s:s, s:I, s:I, s:I, s:s}", "sub", sub, "iat", (json_int_t)now_s, "exp",
                          (json_int_t)(now_s + ttl_s), "exp_ms",
                          (json_int_t)(now_ms + (life_ms ? life_ms : 1000ULL * ttl_s)), "jti", jti);
    if (!p)
        return PSKGW_ENOMEM;
    /* json_dumpb, not json_dumps: pskgw-sim replaces jansson's allocators. */
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t pl = json_dumpb(p, NULL, 0, flags);
    payload = pl ? malloc(pl + 1) : NULL;
    if (payload && json_dumpb(p, payload, pl, flags) != pl) {
        free(payload);
        payload = NULL;
    }
    json_decref(p);
    if (!payload)
        return PSKGW_ENOMEM;
    payload[pl] = '\0';
    size_t hl = strlen(header);
    size_t cap =
        pskgw_b64_encoded_len(hl) + pskgw_b64_encoded_len(pl) + pskgw_b64_encoded_len(SIG_LEN) + 2;
    rc = PSKGW_ENOMEM;
    tok = malloc(cap);
    if (!tok)
        goto fail;
    rc = b64url_encode((const uint8_t *)header, hl, tok, cap);
    if (rc < 0)
        goto fail;
    size_t at = strlen(tok);
    tok[at++] = '.';
    rc = b64url_encode((const uint8_t *)payload, pl, tok + at, cap - at);
    if (rc < 0)
        goto fail;
    at += strlen(tok + at);
    rc = sign(t, tok, at, sig);
    if (rc < 0)
        goto fail;
    tok[at++] = '.';
    rc = b64url_encode(sig, sizeof(sig), tok + at, cap - at);
    if (rc < 0)
        goto fail;
    free(payload);
    *out = tok;
    return 0;
fail:
    free(payload);
    pskgw_free_secret(tok, tok ? cap : 0);
    return rc;
}

int pskgw_sim_token_verify(pskgw_sim_token_t *t, const char *tok, size_t len, uint64_t now_ms,
                           char *sub_out, size_t sub_cap)
{
    uint8_t sig[SIG_LEN], want[SIG_LEN];
    uint8_t payload[MAX_TOKEN];
    size_t n = 0;
    if (len == 0 || len > MAX_TOKEN)
        return PSKGW_EPARSE;
    const char *dot1 = memchr(tok, '.', len);
    if (!dot1)
        return PSKGW_EPARSE;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok));
    if (!dot2)
        return PSKGW_EPARSE;
    const char *sig_s = dot2 + 1;
    size_t sig_len = len - (size_t)(sig_s - tok);
    if (pskgw_b64url_decode(sig_s, sig_len, sig, sizeof(sig), &n) != 0 || n != SIG_LEN)
        return PSKGW_EPARSE;
    if (sign(t, tok, (size_t)(dot2 - tok), want) < 0)
        return PSKGW_ECRYPTO;
    if (pskgw_memeq_ct(sig, want, SIG_LEN) != 0)
        return PSKGW_EAUTH;
    /* Signed by us: the payload is ours, but parse it defensively anyway. */
    if (pskgw_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof(payload), &n) != 0)
        return PSKGW_EPARSE;
    json_t *j = json_loadb((const char *)payload, n, 0, NULL);
    json_int_t exp = 0;
    const char *sub = NULL;
    int ok = j && json_unpack(j, "{s:I, s:s}", "exp_ms", &exp, "sub", &sub) == 0;
    int rc = 0;
    if (!ok)
        rc = PSKGW_EPARSE;
    else if ((json_int_t)now_ms >= exp)
        rc = PSKGW_ETIMEOUT;
    else if (sub_out && sub_cap) {
        size_t sl = strlen(sub);
        if (sl >= sub_cap)
            rc = PSKGW_EPARSE;
        else
            memcpy(sub_out, sub, sl + 1);
    }
    json_decref(j);
    return rc;
}
