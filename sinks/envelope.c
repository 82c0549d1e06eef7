#include "sinks/envelope.h"

#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* The encoder writes straight into the caller's buffer: no intermediate strings, no printf, no
 * allocation. pskgw_envelope_json_max() bounds what it writes, so the one check is up front. */

/* Worst case of one string: every byte a control character ("\u00XX"), plus the quotes. */
#define STR_MAX(n)     (6 * (n) + 2)
#define U64_MAX_DIGITS 20
#define TS_MAX         40 /* "YYYY-MM-DDTHH:MM:SS.mmmZ" for any year gmtime_r accepts */

static const char hexdig[] = "0123456789abcdef";

/* 1 for the bytes a JSON string may hold as they are (printable ASCII but '"' and '\\'). */
static const uint8_t plain_byte[256] = {
    [0x20] = 1,
    [0x21] = 1,
    [0x23 ... 0x5b] = 1,
    [0x5d ... 0x7e] = 1,
};

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

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
    char tmp[U64_MAX_DIGITS];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* 1 when none of the 8 bytes of w needs escaping: every byte in 0x20..0x7e and none '"' or '\\'
 * (plain_byte[] for 8 bytes at once; each test below is exact for "some byte is ...": Bit
 * Twiddling Hacks' hasless, hasmore and haszero). */
static int plain8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"');
    uint64_t b = w ^ (ones * '\\');
    uint64_t below = (w - ones * 0x20) & ~w & highs;          /* a byte < 0x20 */
    uint64_t above = ((w + ones * (127 - 0x7e)) | w) & highs; /* a byte > 0x7e */
    uint64_t quote = (q - ones) & ~q & highs;
    uint64_t bslash = (b - ones) & ~b & highs;

    return (below | above | quote | bslash) == 0;
}

/* s[0..len) as a JSON string: RFC 8259 escapes, U+FFFD for each byte of invalid UTF-8. Runs
 * of plain bytes (hex, base64, identities: all of a real envelope) are checked 8 bytes at a time
 * and each word stored as it passes (the run's copy was a memcpy call per string, about 25
 * instructions, for runs of a few dozen bytes). */
static char *put_str(char *p, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    *p++ = '"';
    while (i < len) {
        unsigned c;
        size_t n;

        while (i + 8 <= len) {
            uint64_t w;

            memcpy(&w, s + i, 8);
            if (!plain8(w))
                break;
            memcpy(p, &w, 8);
            p += 8;
            i += 8;
        }
        while (i < len && plain_byte[s[i]])
            *p++ = (char)s[i++];
        if (i == len)
            break;
        c = s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
            n = 1;
        } else if (c < 0x20) {
            p = PUT_LIT(p, "\\u00");
            *p++ = hexdig[c >> 4];
            *p++ = hexdig[c & 15];
            n = 1;
        } else if ((n = utf8_seq(s + i, len - i)) == 0) {
            p = PUT_LIT(p, "\xef\xbf\xbd"); /* U+FFFD for an invalid byte */
            n = 1;
        } else {
            p = put(p, (const char *)s + i, n);
        }
        i += n;
    }
    *p++ = '"';
    return p;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

/* The envelope's strings and their lengths, measured once per rendering (or handed over). */
enum { S_DOMAIN, S_LISTENER, S_TRANSPORT, S_PEER, S_IDENTITY, S_UID, S_KI, S_SUITE, S_E2E_UID, NS };
_Static_assert(NS == PSKGW_ENVELOPE_NSTR, "the lengths' order is envelope.h's");

typedef struct {
    const char *s[NS];
    size_t len[NS];
    size_t n; /* NS with an e2e object, else S_KI */
} strs_t;

/* The strings of env into t; their lengths from lens, or measured when lens is NULL. */
static void strs_of(const pskgw_envelope_t *env, const pskgw_envelope_lens_t *lens, strs_t *t)
{
    t->s[S_DOMAIN] = env->domain;
    t->s[S_LISTENER] = env->listener;
    t->s[S_TRANSPORT] = env->transport;
    t->s[S_PEER] = env->peer;
    t->s[S_IDENTITY] = env->psk_identity;
    t->s[S_UID] = env->rot_public_uid;
    t->n = S_KI;
    if (env->e2e) {
        t->s[S_KI] = env->e2e->key_identity;
        t->s[S_SUITE] = env->e2e->cipher_suite;
        t->s[S_E2E_UID] = env->e2e->rot_public_uid;
        t->n = NS;
    }
    for (size_t i = 0; i < t->n; i++) {
        t->len[i] = lens ? lens->len[i] : slen(t->s[i]);
        if (!t->s[i])
            t->s[i] = "";
    }
}

void pskgw_envelope_measure(const pskgw_envelope_t *env, pskgw_envelope_lens_t *out)
{
    strs_t t;

    memset(out, 0, sizeof(*out));
    strs_of(env, NULL, &t);
    for (size_t i = 0; i < t.n; i++)
        out->len[i] = t.len[i];
}

/* 1 for an ASCII hex digit (either case). */
static const uint8_t hex_byte[256] = {
    ['0' ... '9'] = 1,
    ['a' ... 'f'] = 1,
    ['A' ... 'F'] = 1,
};

int pskgw_envelope_id_valid(const char *id)
{
    for (int i = 0; i < PSKGW_MESSAGE_ID_LEN; i++)
        if (!hex_byte[(uint8_t)id[i]])
            return 0; /* also a NUL before the end */
    return id[PSKGW_MESSAGE_ID_LEN] == '\0';
}

/* received_at: the text of a whole second is cached (per thread), only the milliseconds are
 * written per message. */
static _Thread_local struct {
    uint64_t sec; /* UINT64_MAX: nothing cached yet */
    size_t len;   /* of the text before the '.' */
    char text[TS_MAX];
} ts_cache = { UINT64_MAX, 0, { 0 } };

static char *put_timestamp(char *p, uint64_t ms)
{
    uint64_t sec = ms / 1000u;
    unsigned frac = (unsigned)(ms % 1000u);

    if (ts_cache.sec != sec) {
        char tmp[TS_MAX];
        size_t n;

        if (pskgw_clock_rfc3339(sec * 1000u, tmp, sizeof(tmp)) < 0)
            return NULL;
        n = strlen(tmp);
        if (n < 5)
            return NULL;
        memcpy(ts_cache.text, tmp, n - 5); /* without ".000Z" */
        ts_cache.len = n - 5;
        ts_cache.sec = sec;
    }
    *p++ = '"';
    p = put(p, ts_cache.text, ts_cache.len);
    *p++ = '.';
    *p++ = (char)('0' + frac / 100);
    *p++ = (char)('0' + frac / 10 % 10);
    *p++ = (char)('0' + frac % 10);
    *p++ = 'Z';
    *p++ = '"';
    return p;
}

static size_t max_of(const pskgw_envelope_t *env, const strs_t *t)
{
    /* the keys and punctuation of both forms, rounded up generously */
    size_t n = 320 + STR_MAX(PSKGW_MESSAGE_ID_LEN) + 4 * U64_MAX_DIGITS + TS_MAX + 2;

    for (size_t i = 0; i < t->n; i++)
        n += STR_MAX(t->len[i]);
    return n + pskgw_b64_encoded_len(env->payload_len) + 2;
}

size_t pskgw_envelope_json_max(const pskgw_envelope_t *env)
{
    return pskgw_envelope_json_max_lens(env, NULL);
}

size_t pskgw_envelope_json_max_lens(const pskgw_envelope_t *env, const pskgw_envelope_lens_t *lens)
{
    strs_t t;

    strs_of(env, lens, &t);
    return max_of(env, &t);
}

static char *put_e2e(char *p, const pskgw_envelope_e2e_t *x, const strs_t *t)
{
    if (!x)
        return PUT_LIT(p, "null");
    p = PUT_LIT(p, "{\"version\":");
    p = put_u64(p, x->version);
    p = PUT_LIT(p, ",\"key_identity\":");
    p = put_str(p, t->s[S_KI], t->len[S_KI]);
    p = PUT_LIT(p, ",\"cipher_suite\":");
    p = put_str(p, t->s[S_SUITE], t->len[S_SUITE]);
    p = PUT_LIT(p, ",\"rot_public_uid\":");
    p = put_str(p, t->s[S_E2E_UID], t->len[S_E2E_UID]);
    p = x->replay ? PUT_LIT(p, ",\"replay\":true}") : PUT_LIT(p, ",\"replay\":false}");
    return p;
}

static int render(const pskgw_envelope_t *env, const pskgw_envelope_lens_t *lens,
                  const char *message_id, char *out, size_t cap, size_t *out_len);

int pskgw_envelope_json_into(const pskgw_envelope_t *env, const char *message_id, char *out,
                             size_t cap, size_t *out_len)
{
    if (!message_id || !pskgw_envelope_id_valid(message_id))
        return PSKGW_EINVAL;
    return render(env, NULL, message_id, out, cap, out_len);
}

/* message_id is a sink message's: checked once, when the message was built (pskgw_msg_new*). */
int pskgw_envelope_json_into_lens(const pskgw_envelope_t *env, const pskgw_envelope_lens_t *lens,
                                  const char *message_id, char *out, size_t cap, size_t *out_len)
{
    return render(env, lens, message_id, out, cap, out_len);
}

/* The id is not checked here: the callers above did or rely on pskgw_msg_new* having done. */
static int render(const pskgw_envelope_t *env, const pskgw_envelope_lens_t *lens,
                  const char *message_id, char *out, size_t cap, size_t *out_len)
{
    static const struct {
        const char *key;
        size_t len;
    } keys[S_KI] = {
#define K(s) { s, sizeof(s) - 1 }
        K("\",\"domain\":"), K(",\"listener\":"),     K(",\"transport\":"),
        K(",\"peer\":"),     K(",\"psk_identity\":"), K(",\"rot_public_uid\":"),
#undef K
    };
    char *p = out;
    strs_t t;

    if (!env || !message_id || !out || (env->payload_len > 0 && !env->payload))
        return PSKGW_EINVAL;
    strs_of(env, lens, &t);
    if (cap < max_of(env, &t))
        return PSKGW_ETOOBIG;
    p = PUT_LIT(p, "{\"message_id\":\"");
    p = put(p, message_id, PSKGW_MESSAGE_ID_LEN); /* hex: nothing to escape */
    for (size_t i = 0; i < S_KI; i++) {
        p = put(p, keys[i].key, keys[i].len);
        p = put_str(p, t.s[i], t.len[i]);
    }
    p = PUT_LIT(p, ",\"session_id\":");
    p = put_u64(p, env->session_id);
    p = PUT_LIT(p, ",\"seq\":");
    p = put_u64(p, env->seq);
    p = PUT_LIT(p, ",\"received_at\":");
    if (!(p = put_timestamp(p, env->received_at_ms)))
        return PSKGW_EINVAL;
    p = PUT_LIT(p, ",\"payload\":\"");
    /* base64 needs no escaping; the encoder's NUL lands on the closing quote's place */
    if (pskgw_b64_encode(env->payload, env->payload_len, p, (size_t)(out + cap - p)) < 0)
        return PSKGW_EINVAL;
    p += pskgw_b64_encoded_len(env->payload_len) - 1;
    p = PUT_LIT(p, "\",\"payload_len\":");
    p = put_u64(p, env->payload_len);
    p = PUT_LIT(p, ",\"e2e\":");
    p = put_e2e(p, env->e2e, &t);
    *p++ = '}';
    *out_len = (size_t)(p - out);
    return 0;
}

int pskgw_envelope_json(const pskgw_envelope_t *env, const char *message_id, char **out,
                        size_t *out_len)
{
    size_t cap;
    size_t len;
    char *buf;
    int rc;

    if (!env)
        return PSKGW_EINVAL;
    cap = pskgw_envelope_json_max(env) + 1;
    buf = malloc(cap);
    if (!buf)
        return PSKGW_ENOMEM;
    rc = pskgw_envelope_json_into(env, message_id, buf, cap, &len);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

const char *pskgw_envelope_device(const pskgw_envelope_t *env)
{
    if (env->rot_public_uid && env->rot_public_uid[0])
        return env->rot_public_uid;
    return env->psk_identity ? env->psk_identity : "";
}

/* Random bytes for message ids, drawn from getrandom 1 KiB at a time (per thread) rather than
 * one system call per message; bytes are cleared as they are used. A forked child (the worker
 * processes) drops what it inherited, so no two processes ever hand out the same ids. */
#define ID_POOL 1024

static _Thread_local struct {
    uint8_t b[ID_POOL];
    size_t left; /* unused bytes at the end of b */
} id_rnd;

static void id_rnd_forget(void)
{
    memset(id_rnd.b, 0, sizeof(id_rnd.b));
    id_rnd.left = 0;
}

__attribute__((constructor)) static void id_rnd_init(void)
{
    (void)pthread_atfork(NULL, NULL, id_rnd_forget);
}

int pskgw_envelope_new_id(char out[PSKGW_MESSAGE_ID_LEN + 1])
{
    enum { NB = PSKGW_MESSAGE_ID_LEN / 2 };
    uint8_t *rnd;
    int rc;

    if (id_rnd.left < NB) {
        size_t got = 0;

        while (got < ID_POOL) {
            ssize_t n = getrandom(id_rnd.b + got, ID_POOL - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return PSKGW_EIO;
            got += (size_t)n;
        }
        id_rnd.left = ID_POOL;
    }
    rnd = id_rnd.b + ID_POOL - id_rnd.left;
    rc = pskgw_hex_encode(rnd, NB, out, PSKGW_MESSAGE_ID_LEN + 1, false);
    memset(rnd, 0, NB);
    id_rnd.left -= NB;
    return rc;
}
