/* The envelope encoder against the one it replaced (kept here, verbatim, as the reference): the
 * same bytes over many random envelopes, strings with quotes, backslashes, control characters,
 * valid and invalid UTF-8, payloads of every length class, times across the years. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "sinks/envelope.h"

/* ---- the encoder before the change (sinks/envelope.c at 8343609) ------------------------- */

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

static int old_envelope_json(const pskgw_envelope_t *env, const char *message_id, char **out,
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

/* ---- random envelopes ---------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* A random NUL-free string of up to max bytes into buf (max + 1 bytes), NULL sometimes. */
static const char *rnd_str(char *buf, size_t max)
{
    static const char *const pieces[] = { "\"",
                                          "\\",
                                          "\x01",
                                          "\x1f",
                                          "\x7f",
                                          "\xc3\xa9",
                                          "\xe2\x82\xac",
                                          "\xf0\x9f\x98\x80",
                                          "\xc0\xaf",
                                          "\xed\xa0\x80",
                                          "\xf4\x90\x80\x80",
                                          "\xe2\x82",
                                          "\xff",
                                          "\x80",
                                          "a",
                                          "Z",
                                          "9",
                                          ":",
                                          "[::1]:5684" };
    size_t len = 0;
    size_t want = rnd() % (max + 1);

    if (rnd() % 16 == 0)
        return NULL;
    while (len < want) {
        const char *p;
        size_t n;

        if (rnd() % 3 == 0) {
            p = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
            n = strlen(p);
            if (len + n > want)
                break;
            memcpy(buf + len, p, n);
            len += n;
        } else {
            buf[len++] = (char)(1 + rnd() % 255); /* any byte but NUL */
        }
    }
    buf[len] = '\0';
    return buf;
}

Test(envelope_encoder, same_bytes_as_the_old_encoder_over_random_envelopes)
{
    static char s[9][200];
    static uint8_t payload[2048];
    char id[PSKGW_MESSAGE_ID_LEN + 1];
    unsigned checked = 0;

    for (int iter = 0; iter < 20000; iter++) {
        pskgw_envelope_t env;
        pskgw_envelope_e2e_t x;
        char *want = NULL;
        size_t want_len = 0;
        char *buf;
        size_t cap;
        size_t got_len = 0;
        int rc_old;

        for (size_t i = 0; i < sizeof(payload); i++)
            payload[i] = (uint8_t)rnd();
        for (int i = 0; i < PSKGW_MESSAGE_ID_LEN; i++)
            id[i] = "0123456789abcdefABCDEF"[rnd() % (iter % 2 ? 16 : 22)];
        id[PSKGW_MESSAGE_ID_LEN] = '\0';
        memset(&env, 0, sizeof(env));
        env.domain = rnd_str(s[0], 40);
        env.listener = rnd_str(s[1], 20);
        env.transport = rnd() % 2 ? "dtls" : rnd_str(s[2], 8);
        env.peer = rnd_str(s[3], 60);
        env.psk_identity = rnd_str(s[4], 150);
        env.rot_public_uid = rnd_str(s[5], 40);
        env.session_id = rnd() >> (rnd() % 64);
        env.seq = rnd() >> (rnd() % 64);
        /* mostly now-ish, sometimes anywhere up to year 9999, sometimes 0 */
        switch (rnd() % 4) {
        case 0:
            env.received_at_ms = 0;
            break;
        case 1:
            env.received_at_ms = rnd() % 253402300800000ull;
            break;
        default:
            env.received_at_ms = 1765000000000ull + rnd() % 100000000ull;
            break;
        }
        env.payload_len = rnd() % 4 == 0 ? rnd() % sizeof(payload) : rnd() % 100;
        env.payload = env.payload_len || rnd() % 2 ? payload : NULL;
        if (rnd() % 2) {
            x.version = (unsigned)(rnd() % 3);
            x.key_identity = rnd_str(s[6], 64);
            x.cipher_suite = rnd() % 2 ? "AES_128_CCM" : rnd_str(s[7], 20);
            x.rot_public_uid = rnd_str(s[8], 40);
            x.replay = (int)(rnd() % 2);
            env.e2e = &x;
        }

        rc_old = old_envelope_json(&env, id, &want, &want_len);
        cr_assert_eq(rc_old, 0, "old encoder failed at %d", iter);
        cap = pskgw_envelope_json_max(&env);
        cr_assert_geq(cap, want_len);
        buf = malloc(cap);
        cr_assert_not_null(buf);
        /* one byte short of the bound is refused, nothing written */
        cr_assert_eq(pskgw_envelope_json_into(&env, id, buf, cap - 1, &got_len), PSKGW_ETOOBIG);
        cr_assert_eq(pskgw_envelope_json_into(&env, id, buf, cap, &got_len), 0);
        cr_assert_eq(got_len, want_len, "length differs at %d: %zu != %zu", iter, got_len,
                     want_len);
        cr_assert(memcmp(buf, want, want_len) == 0, "bytes differ at %d:\n%s\n%.*s", iter, want,
                  (int)got_len, buf);
        /* with the lengths measured once (as a sink message keeps them): the same bytes */
        {
            pskgw_envelope_lens_t lens;

            pskgw_envelope_measure(&env, &lens);
            cr_assert_eq(pskgw_envelope_json_max_lens(&env, &lens), cap);
            memset(buf, 0, cap);
            cr_assert_eq(pskgw_envelope_json_into_lens(&env, &lens, id, buf, cap, &got_len), 0);
            cr_assert_eq(got_len, want_len, "lens: length differs at %d", iter);
            cr_assert(memcmp(buf, want, want_len) == 0, "lens: bytes differ at %d", iter);
        }
        free(buf);
        free(want);
        /* the malloc'ing wrapper gives the same, NUL-terminated */
        cr_assert_eq(pskgw_envelope_json(&env, id, &buf, &got_len), 0);
        cr_assert_eq(got_len, want_len);
        cr_assert_eq(strlen(buf), got_len);
        free(buf);
        checked++;
    }
    cr_assert_eq(checked, 20000);
}

/* Consecutive messages within one second and across seconds: the cached second text never
 * leaks into the next second (the cache is per second, the milliseconds per message). */
Test(envelope_encoder, timestamp_cache_follows_the_clock)
{
    pskgw_envelope_t env = { .domain = "d",
                             .listener = "l",
                             .transport = "dtls",
                             .peer = "p",
                             .psk_identity = "i",
                             .rot_public_uid = "" };
    static const uint64_t times[] = { 1765000000999ull,
                                      1765000001000ull,
                                      1765000000500ull,
                                      1765000001001ull,
                                      1765086400000ull,
                                      1765000001002ull,
                                      0ull,
                                      253402300799999ull };

    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        char want_ts[40];
        char needle[64];
        char buf[1024];
        size_t len;

        env.received_at_ms = times[i];
        cr_assert_eq(pskgw_clock_rfc3339(times[i], want_ts, sizeof(want_ts)), 0);
        cr_assert_eq(pskgw_envelope_json_into(&env, "00112233445566778899aabbccddeeff", buf,
                                              sizeof(buf), &len),
                     0);
        buf[len] = '\0';
        snprintf(needle, sizeof(needle), "\"received_at\":\"%s\"", want_ts);
        cr_assert(strstr(buf, needle), "%s not in %s", needle, buf);
    }
}

/* Message ids come from a pool of random bytes: a forked child must not hand out the ids its
 * parent still has in the pool (gateway workers are forked). */
Test(envelope_encoder, forked_child_draws_fresh_ids)
{
    char parent[2][PSKGW_MESSAGE_ID_LEN + 1];
    char child[PSKGW_MESSAGE_ID_LEN + 1];
    int fds[2];
    pid_t pid;
    int st;

    cr_assert_eq(pskgw_envelope_new_id(parent[0]), 0); /* the pool is filled now */
    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char id[PSKGW_MESSAGE_ID_LEN + 1];
        ssize_t w = -1;
        if (pskgw_envelope_new_id(id) == 0)
            w = write(fds[1], id, PSKGW_MESSAGE_ID_LEN);
        _exit(w == PSKGW_MESSAGE_ID_LEN ? 0 : 1);
    }
    close(fds[1]);
    cr_assert_eq(read(fds[0], child, PSKGW_MESSAGE_ID_LEN), PSKGW_MESSAGE_ID_LEN);
    child[PSKGW_MESSAGE_ID_LEN] = '\0';
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_eq(pskgw_envelope_new_id(parent[1]), 0);
    cr_assert_str_neq(child, parent[1], "the child took the parent's next id");
    cr_assert_str_neq(parent[0], parent[1]);
}
