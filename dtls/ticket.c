/* pskgw_ticket_keys: see ticket.h. */
#include "dtls/ticket.h"

#include "dtls/internal.h"

#include "common/err.h"
#include "common/wipe.h"

#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_LEN    WOLFSSL_TICKET_NAME_SZ
#define KEY_LEN     32
#define GCM_IV_LEN  12
#define GCM_TAG_LEN 16
/* Room wolfSSL leaves after its state: the profile sets it (scripts/wolfssl-profile). */
#ifdef WOLFSSL_TICKET_EXTRA_PADDING_SZ
#define EXT_MAX WOLFSSL_TICKET_EXTRA_PADDING_SZ
#else
#define EXT_MAX 32 /* wolfSSL's default */
#endif
#define EXT_FIXED    7 /* issued(4) id_len(1) uid_len(1) ext_len(1) */
#define UID_HEX      0x80
#define NOT_SEALED   0xFF
#define FUTURE_SLACK 300
/* wolfSSL_i2d_SSL_SESSION's layout (5.9.2, src/ssl_sess.c): side(1) bornOn(4) timeout(4)
 * sessionIDSz(1) sessionID ...: where the session ID sits. */
#define I2D_ID_OFF 9

_Static_assert(EXT_MAX <= 255, "the extension's length is one byte");

typedef struct {
    uint8_t name[NAME_LEN];
    uint8_t key[KEY_LEN];
} tkey_t;

struct pskgw_ticket_keys {
    tkey_t keys[PSKGW_TICKET_MAX_SECRETS];
    size_t n;
    unsigned refs;
    uint32_t lifetime_s;
    uint32_t sid_entries;
    uint64_t (*wall_s)(void);
    pskgw_ticket_stats_t st;
};

static const uint8_t SALT[] = "pskgw-ticket-v1";

/* RFC 5869 with SHA-256, out_len <= 32 (one block of expand). */
static int hkdf32(const uint8_t *ikm, size_t ikm_len, const char *info, uint8_t *out,
                  size_t out_len)
{
    uint8_t prk[WC_SHA256_DIGEST_SIZE], t[WC_SHA256_DIGEST_SIZE];
    uint8_t one = 1;
    Hmac h;
    int rc;

    if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
        return PSKGW_ECRYPTO;
    rc = wc_HmacSetKey(&h, WC_SHA256, SALT, sizeof(SALT) - 1);
    if (rc == 0)
        rc = wc_HmacUpdate(&h, ikm, (word32)ikm_len);
    if (rc == 0)
        rc = wc_HmacFinal(&h, prk);
    if (rc == 0)
        rc = wc_HmacSetKey(&h, WC_SHA256, prk, sizeof(prk));
    if (rc == 0)
        rc = wc_HmacUpdate(&h, (const uint8_t *)info, (word32)strlen(info));
    if (rc == 0)
        rc = wc_HmacUpdate(&h, &one, 1);
    if (rc == 0)
        rc = wc_HmacFinal(&h, t);
    wc_HmacFree(&h);
    if (rc == 0)
        memcpy(out, t, out_len);
    pskgw_wipe(prk, sizeof(prk));
    pskgw_wipe(t, sizeof(t));
    return rc == 0 ? 0 : PSKGW_ECRYPTO;
}

int pskgw_ticket_keys_new(const uint8_t *const *secrets, const size_t *lens, size_t n,
                          uint32_t lifetime_s, pskgw_ticket_keys_t **out)
{
    pskgw_ticket_keys_t *k;

    if (secrets == NULL || lens == NULL || out == NULL || n == 0 || n > PSKGW_TICKET_MAX_SECRETS ||
        lifetime_s == 0 || lifetime_s > 604800)
        return PSKGW_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (secrets[i] == NULL || lens[i] < PSKGW_TICKET_SECRET_MIN ||
            lens[i] > PSKGW_TICKET_SECRET_MAX)
            return PSKGW_EINVAL;
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return PSKGW_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (hkdf32(secrets[i], lens[i], "name", k->keys[i].name, NAME_LEN) < 0 ||
            hkdf32(secrets[i], lens[i], "aes-256-gcm", k->keys[i].key, KEY_LEN) < 0) {
            pskgw_ticket_keys_free(k);
            return PSKGW_ECRYPTO;
        }
    }
    k->n = n;
    k->refs = 1;
    k->lifetime_s = lifetime_s;
    *out = k;
    return 0;
}

pskgw_ticket_keys_t *pskgw_ticket_keys_ref(pskgw_ticket_keys_t *k)
{
    if (k != NULL)
        k->refs++;
    return k;
}

void pskgw_ticket_keys_free(pskgw_ticket_keys_t *k)
{
    if (k == NULL || --k->refs > 0)
        return;
    pskgw_wipe(k->keys, sizeof(k->keys));
    free(k);
}

uint32_t pskgw_ticket_keys_lifetime(const pskgw_ticket_keys_t *k)
{
    return k->lifetime_s;
}

int pskgw_ticket_keys_set_session_cache(pskgw_ticket_keys_t *k, uint32_t entries)
{
    if (k == NULL || entries > PSKGW_SIDCACHE_MAX)
        return PSKGW_EINVAL;
    k->sid_entries = entries;
    return 0;
}

uint32_t pskgw_ticket_keys_session_cache(const pskgw_ticket_keys_t *k)
{
    return k->sid_entries;
}

pskgw_ticket_stats_t *pskgw_ticket_keys_stats(pskgw_ticket_keys_t *k)
{
    return &k->st;
}

void pskgw_ticket_keys_set_clock(pskgw_ticket_keys_t *k, uint64_t (*wall_s)(void))
{
    k->wall_s = wall_s;
}

static uint64_t wall_now(const pskgw_ticket_keys_t *k)
{
    return k->wall_s != NULL ? k->wall_s() : (uint64_t)time(NULL);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Upper-case hex of even length to bytes; <0 when it is not. */
static int unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);

    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

static char *tohex(const uint8_t *b, size_t n)
{
    static const char H[] = "0123456789ABCDEF";
    char *s = malloc(2 * n + 1);

    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = H[b[i] >> 4];
        s[2 * i + 1] = H[b[i] & 15];
    }
    s[2 * n] = '\0';
    return s;
}

/* The extension for s at p (room `room`); its length. */
static size_t build_ext(const pskgw_dtls_session_t *s, uint64_t now, uint8_t *p, size_t room)
{
    uint8_t *q = p;
    size_t cap = room - EXT_FIXED;
    int id = -1, uid = 0;
    uint8_t uflag = 0;

    for (int i = 3; i >= 0; i--)
        *q++ = (uint8_t)(now >> (8 * i));
    if (s->identity != NULL)
        id = unhex(s->identity, q + 1, cap);
    if (id >= 0 && s->uid != NULL) {
        uid = unhex(s->uid, q + 2 + id, cap - (size_t)id);
        if (uid >= 0) {
            uflag = UID_HEX;
        } else if (strlen(s->uid) <= cap - (size_t)id) {
            uid = (int)strlen(s->uid);
            memcpy(q + 2 + id, s->uid, (size_t)uid);
        } else {
            id = -1;
        }
    }
    if (id < 0) {
        *q++ = NOT_SEALED;
        *q++ = 0;
    } else {
        *q = (uint8_t)id;
        q += 1 + id;
        *q = (uint8_t)(uid | uflag);
        q += 1 + uid;
    }
    *q = (uint8_t)(q - p + 1);
    return (size_t)(q - p + 1);
}

static int seal(pskgw_ticket_keys_t *k, pskgw_dtls_session_t *s, uint8_t name[NAME_LEN],
                uint8_t iv[WOLFSSL_TICKET_IV_SZ], uint8_t mac[WOLFSSL_TICKET_MAC_SZ], uint8_t *t,
                int in_len, int *out_len)
{
    Aes aes;
    size_t ext;
    int rc;

    if (*out_len < in_len + EXT_FIXED)
        return WOLFSSL_TICKET_RET_FATAL;
    ext = build_ext(s, wall_now(k), t + in_len,
                    (size_t)(*out_len - in_len) < EXT_MAX ? (size_t)(*out_len - in_len) : EXT_MAX);
    if (t[in_len + 4] == NOT_SEALED)
        k->st.unsealed++;
    memcpy(name, k->keys[0].name, NAME_LEN);
    if (pskgw_dtls_ctx_random(s->ctx, iv, GCM_IV_LEN) < 0)
        return WOLFSSL_TICKET_RET_FATAL;
    memset(iv + GCM_IV_LEN, 0, WOLFSSL_TICKET_IV_SZ - GCM_IV_LEN); /* checked when opened */
    memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
        return WOLFSSL_TICKET_RET_FATAL;
    rc = wc_AesGcmSetKey(&aes, k->keys[0].key, KEY_LEN);
    if (rc == 0)
        rc = wc_AesGcmEncrypt(&aes, t, t, (word32)(in_len + (int)ext), iv, GCM_IV_LEN, mac,
                              GCM_TAG_LEN, name, NAME_LEN);
    wc_AesFree(&aes);
    if (rc != 0)
        return WOLFSSL_TICKET_RET_FATAL;
    *out_len = in_len + (int)ext;
    k->st.sealed++;
    return WOLFSSL_TICKET_RET_OK;
}

/* Reads the decrypted extension at the end of t[0..len); sets s's identity and uid. */
static int open_ext(pskgw_ticket_keys_t *k, pskgw_dtls_session_t *s, const uint8_t *t, int len,
                    int *out_len)
{
    size_t ext = t[len - 1];
    const uint8_t *p;
    uint64_t issued = 0, now = wall_now(k);
    size_t id, uid;
    char *ids = NULL, *uids = NULL;

    if (ext < EXT_FIXED || ext > EXT_MAX || (int)ext > len)
        return (k->st.bad++, WOLFSSL_TICKET_RET_REJECT);
    p = t + len - ext;
    for (int i = 0; i < 4; i++)
        issued = issued << 8 | p[i];
    if (issued + k->lifetime_s < now || issued > now + FUTURE_SLACK)
        return (k->st.expired++, WOLFSSL_TICKET_RET_REJECT);
    id = p[4];
    if (id == NOT_SEALED)
        return (k->st.unsealed++, WOLFSSL_TICKET_RET_REJECT);
    if (EXT_FIXED + id > ext)
        return (k->st.bad++, WOLFSSL_TICKET_RET_REJECT);
    uid = p[5 + id] & ~UID_HEX;
    if (EXT_FIXED + id + uid != ext || id == 0)
        return (k->st.bad++, WOLFSSL_TICKET_RET_REJECT);
    ids = tohex(p + 5, id);
    if (uid > 0 && (p[5 + id] & UID_HEX) != 0) {
        uids = tohex(p + 6 + id, uid);
    } else if (uid > 0 && (uids = malloc(uid + 1)) != NULL) {
        memcpy(uids, p + 6 + id, uid);
        uids[uid] = '\0';
    }
    if (ids == NULL || (uid > 0 && uids == NULL)) {
        free(ids);
        free(uids);
        return WOLFSSL_TICKET_RET_FATAL;
    }
    free(s->identity);
    free(s->uid);
    s->identity = ids;
    s->uid = uids;
    *out_len = len - (int)ext;
    return WOLFSSL_TICKET_RET_OK;
}

/* The checks a full handshake's identity goes through before any key is used, for the identity
 * a ticket names: the owner's identity event (blocked identities) and the resolver's
 * synchronous answer (deny_file, a denied ROTPublicUID of a cached key). Refused: the ticket is
 * rejected and the full handshake that follows meets the same checks and the lookup. */
static bool admit_resumed(pskgw_dtls_session_t *s)
{
    uint8_t psk[PSKGW_PSK_MAX];
    size_t psk_len = sizeof(psk);
    char uid[PSKGW_UID_CAP];
    int rc = 0;

    if (s->cbs->event != NULL && s->cbs->event(s->arg, PSKGW_DTLS_EV_IDENTITY, s->identity) < 0)
        return false;
    if (s->resolver->lookup != NULL)
        rc = s->resolver->lookup(s->resolver->ctx, s->identity, psk, &psk_len, uid, sizeof(uid));
    pskgw_wipe(psk, sizeof(psk));
    return rc != PSKGW_EDENIED;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

static int open_ticket(pskgw_ticket_keys_t *k, pskgw_dtls_session_t *s,
                       const uint8_t name[NAME_LEN], const uint8_t iv[WOLFSSL_TICKET_IV_SZ],
                       const uint8_t mac[WOLFSSL_TICKET_MAC_SZ], uint8_t *t, int in_len,
                       int *out_len)
{
    size_t i;
    Aes aes;
    int rc;

    for (i = 0; i < k->n; i++)
        if (pskgw_memeq_ct(k->keys[i].name, name, NAME_LEN) == 0)
            break;
    if (i == k->n)
        return (k->st.unknown_key++, WOLFSSL_TICKET_RET_REJECT);
    /* wolfSSL carries 16 bytes of IV and 32 of MAC, GCM uses 12 and 16: the rest are sealed as
     * zeros, so that no byte of a ticket can be changed without the ticket being refused. */
    if (!all_zero(iv + GCM_IV_LEN, WOLFSSL_TICKET_IV_SZ - GCM_IV_LEN) ||
        !all_zero(mac + GCM_TAG_LEN, WOLFSSL_TICKET_MAC_SZ - GCM_TAG_LEN) || in_len < EXT_FIXED)
        return (k->st.bad++, WOLFSSL_TICKET_RET_REJECT);
    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
        return WOLFSSL_TICKET_RET_FATAL;
    rc = wc_AesGcmSetKey(&aes, k->keys[i].key, KEY_LEN);
    if (rc == 0)
        rc = wc_AesGcmDecrypt(&aes, t, t, (word32)in_len, iv, GCM_IV_LEN, mac, GCM_TAG_LEN, name,
                              NAME_LEN);
    wc_AesFree(&aes);
    if (rc != 0)
        return (k->st.bad++, WOLFSSL_TICKET_RET_REJECT);
    rc = open_ext(k, s, t, in_len, out_len);
    if (rc != WOLFSSL_TICKET_RET_OK)
        return rc;
    if (!admit_resumed(s))
        return (k->st.refused++, WOLFSSL_TICKET_RET_REJECT);
    k->st.opened++;
    /* Under a previous secret: resume, and hand the device a ticket under the current one. */
    return i == 0 ? WOLFSSL_TICKET_RET_OK : WOLFSSL_TICKET_RET_CREATE;
}

int pskgw_ticket_enc_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
                        unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                        unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc, unsigned char *t,
                        int in_len, int *out_len, void *user)
{
    pskgw_ticket_keys_t *k = user;
    pskgw_dtls_session_t *s = wolfSSL_GetIOReadCtx(ssl);

    if (k == NULL || s == NULL || t == NULL || out_len == NULL)
        return WOLFSSL_TICKET_RET_FATAL;
    if (enc)
        return seal(k, s, name, iv, mac, t, in_len, out_len);
    return open_ticket(k, s, name, iv, mac, t, in_len, out_len);
}

void pskgw_ticket_note_established(pskgw_dtls_session_t *s)
{
    pskgw_ticket_keys_t *k = s->ctx->tickets;

    if (k == NULL)
        return;
    if (wolfSSL_session_reused(s->ssl) && s->resumed_by_id)
        k->st.resumed_id++;
    else if (wolfSSL_session_reused(s->ssl))
        k->st.resumed_ticket++;
    else
        k->st.full++;
}

/* ---- session-ID resumption ------------------------------------------------------------- */

/* The context's cache in use: a reload may have set its keys' size to 0 (the cache is empty
 * then and stays so). */
static pskgw_sidcache_t *sids_of(const pskgw_dtls_ctx_t *ctx)
{
    return ctx->sids != NULL && ctx->tickets != NULL &&
                   pskgw_ticket_keys_session_cache(ctx->tickets) > 0
               ? ctx->sids
               : NULL;
}

int pskgw_ticket_ctx_apply_session_cache(pskgw_dtls_ctx_t *ctx, size_t *evicted)
{
    uint32_t n;
    uint64_t before;
    int rc = 0;

    if (ctx == NULL || ctx->tickets == NULL)
        return PSKGW_EINVAL;
    n = pskgw_ticket_keys_session_cache(ctx->tickets);
    if (evicted != NULL)
        *evicted = 0;
    if (ctx->sids == NULL)
        return n > 0 ? PSKGW_EUNSUPPORTED : 0;
    before = pskgw_sidcache_stats(ctx->sids)->evicted;
    if (n == 0)
        pskgw_sidcache_clear(ctx->sids);
    else
        rc = pskgw_sidcache_resize(ctx->sids, n);
    ctx->tickets->st.sid_evicted += pskgw_sidcache_stats(ctx->sids)->evicted - before;
    if (evicted != NULL)
        *evicted = (size_t)(pskgw_sidcache_stats(ctx->sids)->evicted - before);
    return rc;
}

/* The cache's own counts of expiries and evictions during one call, into the keys' counters. */
static void add_drops(pskgw_ticket_stats_t *st, const pskgw_sidcache_stats_t *before,
                      const pskgw_sidcache_stats_t *after)
{
    st->sid_expired += after->expired - before->expired;
    st->sid_evicted += after->evicted - before->evicted;
}

int pskgw_sid_new_cb(WOLFSSL *ssl, WOLFSSL_SESSION *sess)
{
    pskgw_dtls_session_t *s = wolfSSL_GetIOReadCtx(ssl);
    uint8_t buf[PSKGW_SID_STATE_MAX];
    pskgw_sidcache_stats_t before;
    pskgw_dtls_ctx_t *ctx;
    uint8_t *p = buf;
    int n;

    /* 0: wolfSSL keeps no reference to sess (it drops the one it took for this call). */
    if (s == NULL || sess == NULL || s->identity == NULL)
        return 0;
    ctx = s->ctx;
    /* A client that got a ticket resumes with it: its session need not take a slot. */
    if (sids_of(ctx) == NULL || wolfSSL_SESSION_has_ticket(sess) == WOLFSSL_SUCCESS)
        return 0;
    n = wolfSSL_i2d_SSL_SESSION(sess, NULL);
    if (n <= I2D_ID_OFF + 1 + PSKGW_SID_LEN || n > (int)sizeof(buf))
        return 0;
    if (wolfSSL_i2d_SSL_SESSION(sess, &p) == n && buf[I2D_ID_OFF] == PSKGW_SID_LEN) {
        uint64_t life_ms = (uint64_t)pskgw_ticket_keys_lifetime(ctx->tickets) * 1000;

        before = *pskgw_sidcache_stats(ctx->sids);
        if (pskgw_sidcache_put(ctx->sids, buf + I2D_ID_OFF + 1, s->now, s->now + life_ms, buf,
                               (size_t)n, s->identity, s->uid) == 0)
            ctx->tickets->st.sid_stored++;
        add_drops(&ctx->tickets->st, &before, pskgw_sidcache_stats(ctx->sids));
    }
    pskgw_wipe(buf, sizeof(buf)); /* the master secret */
    return 0;
}

/* The cached entry's identity and uid onto s (copies: the entry may go at the next call). */
static int take_strings(pskgw_dtls_session_t *s, const pskgw_sidcache_hit_t *hit)
{
    char *id = strdup(hit->identity), *uid = hit->uid != NULL ? strdup(hit->uid) : NULL;

    if (id == NULL || (hit->uid != NULL && uid == NULL)) {
        free(id);
        free(uid);
        return PSKGW_ENOMEM;
    }
    free(s->identity);
    free(s->uid);
    s->identity = id;
    s->uid = uid;
    return 0;
}

WOLFSSL_SESSION *pskgw_sid_get_cb(WOLFSSL *ssl, const unsigned char *id, int len, int *copy)
{
    pskgw_dtls_session_t *s = wolfSSL_GetIOReadCtx(ssl);
    pskgw_sidcache_stats_t before;
    pskgw_sidcache_hit_t hit;
    WOLFSSL_SESSION *sess;
    const unsigned char *p;
    pskgw_dtls_ctx_t *ctx;
    int rc;

    if (copy != NULL)
        *copy = 0; /* wolfSSL copies what it needs and frees the session returned */
    if (s == NULL || id == NULL || len != PSKGW_SID_LEN || sids_of(s->ctx) == NULL)
        return NULL;
    ctx = s->ctx;
    before = *pskgw_sidcache_stats(ctx->sids);
    rc = pskgw_sidcache_get(ctx->sids, id, s->now, &hit);
    add_drops(&ctx->tickets->st, &before, pskgw_sidcache_stats(ctx->sids));
    if (rc < 0) {
        ctx->tickets->st.sid_unknown++;
        return NULL;
    }
    p = hit.state;
    sess = wolfSSL_d2i_SSL_SESSION(NULL, &p, (long)hit.state_len);
    if (sess == NULL || take_strings(s, &hit) < 0) {
        wolfSSL_SESSION_free(sess);
        return NULL;
    }
    if (!admit_resumed(s)) {
        /* Never again from this entry: the full handshake that follows meets the lookup. */
        pskgw_sidcache_remove(ctx->sids, id);
        ctx->tickets->st.sid_refused++;
        wolfSSL_SESSION_free(sess);
        return NULL;
    }
    ctx->tickets->st.sid_found++;
    s->resumed_by_id = true;
    return sess;
}
