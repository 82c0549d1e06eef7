#include "sinks/envelope.h"

#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef struct {
    char *p;
    size_t len;
    size_t cap;
    int err;
} jbuf_t;

static void jb_reserve(jbuf_t *b, size_t more)
{
    size_t ncap;
    char *np;

    if (b->err || b->len + more + 1 <= b->cap)
        return;
    ncap = b->cap ? b->cap : 256;
    while (ncap < b->len + more + 1)
        ncap *= 2;
    np = realloc(b->p, ncap);
    if (!np) {
        b->err = PSKGW_ENOMEM;
        return;
    }
    b->p = np;
    b->cap = ncap;
}

static void jb_put(jbuf_t *b, const char *s, size_t n)
{
    jb_reserve(b, n);
    if (b->err)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void jb_puts(jbuf_t *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

static void jb_u64(jbuf_t *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);

    jb_put(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not valid. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

static void jb_str(jbuf_t *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t left = strlen((const char *)s);

    jb_put(b, "\"", 1);
    while (left > 0) {
        unsigned c = *s;
        size_t n;

        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            jb_put(b, esc, 2);
            n = 1;
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            jb_put(b, esc, 6);
            n = 1;
        } else if ((n = utf8_seq(s, left)) == 0) {
            jb_put(b, "\xef\xbf\xbd", 3); /* U+FFFD for an invalid byte */
            n = 1;
        } else {
            jb_put(b, (const char *)s, n);
        }
        s += n;
        left -= n;
    }
    jb_put(b, "\"", 1);
}

static void jb_key(jbuf_t *b, const char *key, int first)
{
    if (!first)
        jb_put(b, ",", 1);
    jb_str(b, key);
    jb_put(b, ":", 1);
}

int pskgw_envelope_json(const pskgw_envelope_t *env, const char *message_id, char **out,
                        size_t *out_len)
{
    jbuf_t b = { 0 };
    char ts[32];
    char *b64 = NULL;
    size_t b64_cap;

    if (!env || !message_id || strlen(message_id) != PSKGW_MESSAGE_ID_LEN ||
        !pskgw_is_hex((const uint8_t *)message_id, PSKGW_MESSAGE_ID_LEN) ||
        (env->payload_len > 0 && !env->payload))
        return PSKGW_EINVAL;
    if (pskgw_clock_rfc3339(env->received_at_ms, ts, sizeof(ts)) < 0)
        return PSKGW_EINVAL;
    b64_cap = pskgw_b64_encoded_len(env->payload_len);
    b64 = malloc(b64_cap);
    if (!b64)
        return PSKGW_ENOMEM;
    if (pskgw_b64_encode(env->payload, env->payload_len, b64, b64_cap) < 0) {
        free(b64);
        return PSKGW_EINVAL;
    }
    jb_reserve(&b, b64_cap + 512);
    jb_put(&b, "{", 1);
    jb_key(&b, "message_id", 1);
    jb_str(&b, message_id);
    jb_key(&b, "domain", 0);
    jb_str(&b, env->domain);
    jb_key(&b, "listener", 0);
    jb_str(&b, env->listener);
    jb_key(&b, "transport", 0);
    jb_str(&b, env->transport);
    jb_key(&b, "peer", 0);
    jb_str(&b, env->peer);
    jb_key(&b, "psk_identity", 0);
    jb_str(&b, env->psk_identity);
    jb_key(&b, "rot_public_uid", 0);
    jb_str(&b, env->rot_public_uid);
    jb_key(&b, "session_id", 0);
    jb_u64(&b, env->session_id);
    jb_key(&b, "seq", 0);
    jb_u64(&b, env->seq);
    jb_key(&b, "received_at", 0);
    jb_str(&b, ts);
    jb_key(&b, "payload", 0);
    jb_str(&b, b64);
    jb_key(&b, "payload_len", 0);
    jb_u64(&b, env->payload_len);
    jb_key(&b, "e2e", 0);
    if (!env->e2e) {
        jb_puts(&b, "null");
    } else {
        jb_put(&b, "{", 1);
        jb_key(&b, "version", 1);
        jb_u64(&b, env->e2e->version);
        jb_key(&b, "key_identity", 0);
        jb_str(&b, env->e2e->key_identity);
        jb_key(&b, "cipher_suite", 0);
        jb_str(&b, env->e2e->cipher_suite);
        jb_key(&b, "rot_public_uid", 0);
        jb_str(&b, env->e2e->rot_public_uid);
        jb_key(&b, "replay", 0);
        jb_puts(&b, env->e2e->replay ? "true" : "false");
        jb_put(&b, "}", 1);
    }
    jb_put(&b, "}", 1);
    free(b64);
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

const char *pskgw_envelope_device(const pskgw_envelope_t *env)
{
    if (env->rot_public_uid && env->rot_public_uid[0])
        return env->rot_public_uid;
    return env->psk_identity ? env->psk_identity : "";
}

int pskgw_envelope_new_id(char out[PSKGW_MESSAGE_ID_LEN + 1])
{
    uint8_t rnd[PSKGW_MESSAGE_ID_LEN / 2];
    size_t got = 0;

    while (got < sizeof(rnd)) {
        ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return PSKGW_EIO;
        got += (size_t)n;
    }
    return pskgw_hex_encode(rnd, sizeof(rnd), out, PSKGW_MESSAGE_ID_LEN + 1, false);
}
