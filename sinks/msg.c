#include "sinks/msg.h"

#include "common/codec.h"
#include "common/err.h"
#include "common/wipe.h"

#include <stdlib.h>
#include <string.h>

#define NSTR 6

/* Pool size classes: blobs of 512, 1024, 2048 and 4096 bytes; each class keeps up to
 * POOL_KEEP_BYTES of returned messages (about 5,000 of the smallest, 1,000 of the largest), so
 * that a steady state with that many messages in the queues still allocates nothing. */
#define POOL_CLASSES    4
#define POOL_MIN_CAP    512u
#define POOL_KEEP_BYTES (4u * 1024u * 1024u)

/* JSON renderings (pskgw_msg_json) of pooled messages: buffers of 1, 2, 4 and 8 KiB, kept on
 * the pool's freelists like the messages (up to POOL_KEEP_BYTES each); a larger one is malloc'ed
 * and freed. */
#define JSON_CLASSES 4
#define JSON_MIN_CAP 1024u

struct pskgw_msg_json_buf {
    struct pskgw_msg_json_buf *next_free;
    size_t cap;
    bool pooled;
    char data[];
};

struct pskgw_msg_pool {
    unsigned refs; /* 1 for the owner until pskgw_msg_pool_free(), + 1 per pooled message out */
    bool closed;
    pskgw_msg_t *free[POOL_CLASSES];
    unsigned nfree[POOL_CLASSES];
    pskgw_msg_json_buf_t *jfree[JSON_CLASSES];
    unsigned njfree[JSON_CLASSES];
};

static int pool_class(size_t blob)
{
    size_t cap = POOL_MIN_CAP;

    for (int c = 0; c < POOL_CLASSES; c++, cap *= 2)
        if (blob <= cap)
            return c;
    return -1;
}

int pskgw_msg_pool_new(pskgw_msg_pool_t **out)
{
    pskgw_msg_pool_t *pool = calloc(1, sizeof(*pool));

    if (!pool)
        return PSKGW_ENOMEM;
    pool->refs = 1;
    *out = pool;
    return 0;
}

void pskgw_msg_pool_free(pskgw_msg_pool_t *pool)
{
    if (!pool)
        return;
    pool->closed = true;
    for (int c = 0; c < POOL_CLASSES; c++) {
        while (pool->free[c]) {
            pskgw_msg_t *m = pool->free[c];
            pool->free[c] = m->next_free;
            free(m); /* wiped when it was returned */
        }
        pool->nfree[c] = 0;
    }
    for (int c = 0; c < JSON_CLASSES; c++) {
        while (pool->jfree[c]) {
            pskgw_msg_json_buf_t *j = pool->jfree[c];
            pool->jfree[c] = j->next_free;
            free(j); /* wiped when it was returned */
        }
        pool->njfree[c] = 0;
    }
    if (--pool->refs == 0)
        free(pool);
}

/* A message with room for a blob of `blob` bytes, header zeroed; from pool when it can. */
static pskgw_msg_t *msg_alloc(pskgw_msg_pool_t *pool, size_t blob)
{
    int c = pool && !pool->closed ? pool_class(blob) : -1;
    size_t cap = c >= 0 ? (size_t)POOL_MIN_CAP << c : blob;
    pskgw_msg_t *m;

    if (c >= 0 && pool->free[c]) {
        m = pool->free[c];
        pool->free[c] = m->next_free;
        pool->nfree[c]--;
    } else {
        m = malloc(sizeof(*m) + cap);
        if (!m)
            return NULL;
    }
    memset(m, 0, sizeof(*m));
    m->blob_cap = cap;
    if (c >= 0) {
        m->pool = pool;
        pool->refs++;
    }
    return m;
}

static const char *const *env_strs(const pskgw_envelope_t *e, const char *out[NSTR])
{
    out[0] = e->domain;
    out[1] = e->listener;
    out[2] = e->transport;
    out[3] = e->peer;
    out[4] = e->psk_identity;
    out[5] = e->rot_public_uid;
    return out;
}

/* known: the caller's length of s (env->lens), else NULL: s is measured here. */
static int str_ok(const char *s, const size_t *known, size_t *len)
{
    *len = known ? *known : s ? strlen(s) : 0;
    return *len <= 0xffff;
}

/* The e2e object's strings (key_identity, cipher_suite, rot_public_uid), not NUL-terminated
 * when they come from a spool record. */
#define NE2E 3
typedef struct {
    const char *s[NE2E];
    size_t len[NE2E];
} e2e_strs_t;

_Static_assert(NSTR + NE2E == PSKGW_ENVELOPE_NSTR, "envelope.h's order of the lengths");

/* The device key's hash for the sinks' device tables (chained, the low bits pick the bucket):
 * 8 bytes at a time, multiplied and folded, then MurmurHash3's 64-bit finaliser so that every
 * byte moves the low bits. FNV-1a before it cost about 4 instructions a byte, every message (a
 * 32- to 64-character identity or ROTPublicUID). Not keyed, as FNV-1a was not: the keys are
 * identities the gateway authenticated. */
static uint32_t dev_hash_of(const char *k, size_t len)
{
    const uint64_t mul = 0x9e3779b97f4a7c15ull;
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)len;
    uint64_t w = 0;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, k + i, 8);
        h = (h ^ w) * mul;
        h ^= h >> 32;
    }
    w = 0;
    for (size_t j = 0; i + j < len; j++)
        w |= (uint64_t)(uint8_t)k[i + j] << (8 * j);
    h = (h ^ w) * mul;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* The lengths measured while copying the strings, kept for the renderers and the sinks' device
 * tables (the device: rot_public_uid when non-empty, else psk_identity). */
static void keep_lens(pskgw_msg_t *m, const size_t lens[NSTR], const size_t *e2e_lens)
{
    for (int i = 0; i < NSTR; i++)
        m->lens.len[i] = lens[i];
    for (int i = 0; e2e_lens && i < NE2E; i++)
        m->lens.len[NSTR + i] = e2e_lens[i];
    m->dev_len = lens[5] ? lens[5] : lens[4];
    m->dev_hash = dev_hash_of(pskgw_msg_device(m), m->dev_len);
}

/* Build a message from validated parts; strings are copied NUL-terminated into the blob. */
static int msg_build(pskgw_msg_pool_t *pool, const char *id, const char *strs[NSTR],
                     const size_t lens[NSTR], const pskgw_envelope_t *env, const e2e_strs_t *x,
                     pskgw_msg_t **out)
{
    size_t total = env->payload_len;
    pskgw_msg_t *m;
    uint8_t *p;
    char **dst[NSTR];

    for (int i = 0; i < NSTR; i++)
        total += lens[i] + 1;
    if (env->e2e)
        for (int i = 0; i < NE2E; i++)
            total += x->len[i] + 1;
    m = msg_alloc(pool, total);
    if (!m)
        return PSKGW_ENOMEM;
    m->refs = 1;
    memcpy(m->id, id, PSKGW_MESSAGE_ID_LEN);
    m->blob_len = total;
    m->env.session_id = env->session_id;
    m->env.seq = env->seq;
    m->env.received_at_ms = env->received_at_ms;
    m->env.decrypted_ns = env->decrypted_ns;
    dst[0] = (char **)&m->env.domain;
    dst[1] = (char **)&m->env.listener;
    dst[2] = (char **)&m->env.transport;
    dst[3] = (char **)&m->env.peer;
    dst[4] = (char **)&m->env.psk_identity;
    dst[5] = (char **)&m->env.rot_public_uid;
    p = m->blob;
    for (int i = 0; i < NSTR; i++) {
        *dst[i] = (char *)p;
        if (lens[i])
            memcpy(p, strs[i], lens[i]);
        p[lens[i]] = '\0';
        p += lens[i] + 1;
    }
    if (env->e2e) {
        const char **e2e_dst[NE2E] = { &m->e2e.key_identity, &m->e2e.cipher_suite,
                                       &m->e2e.rot_public_uid };
        m->e2e.version = env->e2e->version;
        m->e2e.replay = env->e2e->replay ? 1 : 0;
        for (int i = 0; i < NE2E; i++) {
            *e2e_dst[i] = (const char *)p;
            if (x->len[i])
                memcpy(p, x->s[i], x->len[i]);
            p[x->len[i]] = '\0';
            p += x->len[i] + 1;
        }
        m->env.e2e = &m->e2e;
    }
    m->env.payload = p;
    m->env.payload_len = env->payload_len;
    if (env->payload_len)
        memcpy(p, env->payload, env->payload_len);
    keep_lens(m, lens, env->e2e ? x->len : NULL);
    *out = m;
    return 0;
}

int pskgw_msg_new(const pskgw_envelope_t *env, const char *id, pskgw_msg_t **out)
{
    return pskgw_msg_new_from(NULL, env, id, out);
}

/* env's strings and their lengths (env->lens, else measured), checked. 0 or PSKGW_EINVAL. */
static int env_parts(const pskgw_envelope_t *env, const char *strs[NSTR], size_t lens[NSTR],
                     e2e_strs_t *x)
{
    if (!env || (env->payload_len && !env->payload) || env->payload_len > 0xffffffffu)
        return PSKGW_EINVAL;
    env_strs(env, strs);
    for (int i = 0; i < NSTR; i++)
        if (!str_ok(strs[i], env->lens ? &env->lens->len[i] : NULL, &lens[i]))
            return PSKGW_EINVAL;
    if (env->e2e) {
        x->s[0] = env->e2e->key_identity;
        x->s[1] = env->e2e->cipher_suite;
        x->s[2] = env->e2e->rot_public_uid;
        for (int i = 0; i < NE2E; i++)
            if (!str_ok(x->s[i], env->lens ? &env->lens->len[NSTR + i] : NULL, &x->len[i]))
                return PSKGW_EINVAL;
    }
    return 0;
}

int pskgw_msg_new_from(pskgw_msg_pool_t *pool, const pskgw_envelope_t *env, const char *id,
                       pskgw_msg_t **out)
{
    const char *strs[NSTR];
    size_t lens[NSTR];
    e2e_strs_t x = { { NULL, NULL, NULL }, { 0, 0, 0 } };
    int rc;

    if (!id || !pskgw_envelope_id_valid(id))
        return PSKGW_EINVAL;
    if ((rc = env_parts(env, strs, lens, &x)) < 0)
        return rc;
    return msg_build(pool, id, strs, lens, env, &x, out);
}

int pskgw_msg_new_fresh(pskgw_msg_pool_t *pool, const pskgw_envelope_t *env, pskgw_msg_t **out)
{
    char id[PSKGW_MESSAGE_ID_LEN + 1];
    const char *strs[NSTR];
    size_t lens[NSTR];
    e2e_strs_t x = { { NULL, NULL, NULL }, { 0, 0, 0 } };
    int rc;

    if ((rc = env_parts(env, strs, lens, &x)) < 0)
        return rc;
    if ((rc = pskgw_envelope_new_id(id)) < 0)
        return rc;
    return msg_build(pool, id, strs, lens, env, &x, out);
}

static int json_class(size_t need)
{
    size_t cap = JSON_MIN_CAP;

    for (int c = 0; c < JSON_CLASSES; c++, cap *= 2)
        if (need <= cap)
            return c;
    return -1;
}

/* A buffer of at least need bytes: from pool's freelist when it can, else malloc'ed. */
static pskgw_msg_json_buf_t *json_get(pskgw_msg_pool_t *pool, size_t need)
{
    int c = pool && !pool->closed ? json_class(need) : -1;
    size_t cap = c >= 0 ? (size_t)JSON_MIN_CAP << c : need;
    pskgw_msg_json_buf_t *j;

    if (c >= 0 && pool->jfree[c]) {
        j = pool->jfree[c];
        pool->jfree[c] = j->next_free;
        pool->njfree[c]--;
        return j;
    }
    j = malloc(sizeof(*j) + cap);
    if (!j)
        return NULL;
    j->next_free = NULL;
    j->cap = cap;
    j->pooled = c >= 0;
    return j;
}

/* m's rendering goes back to its pool (wiped: it holds the payload), or is freed. */
static void json_put(pskgw_msg_t *m)
{
    pskgw_msg_json_buf_t *j = m->jbuf;
    pskgw_msg_pool_t *pool = m->pool;
    int c;

    m->jbuf = NULL;
    m->json = NULL;
    if (!j)
        return;
    pskgw_wipe(j->data, m->json_len + 1);
    c = j->pooled ? json_class(j->cap) : -1;
    if (c >= 0 && pool && !pool->closed &&
        (pool->njfree[c] + 1) * (sizeof(*j) + j->cap) <= POOL_KEEP_BYTES) {
        j->next_free = pool->jfree[c];
        pool->jfree[c] = j;
        pool->njfree[c]++;
        return;
    }
    free(j);
}

pskgw_msg_t *pskgw_msg_ref(pskgw_msg_t *m)
{
    m->refs++;
    return m;
}

void pskgw_msg_unref(pskgw_msg_t *m)
{
    pskgw_msg_pool_t *pool;
    int c;

    if (!m || --m->refs > 0)
        return;
    json_put(m);
    pool = m->pool;
    c = pool ? pool_class(m->blob_cap) : -1;
    if (pool && !pool->closed &&
        (pool->nfree[c] + 1) * (sizeof(*m) + m->blob_cap) <= POOL_KEEP_BYTES) {
        pskgw_wipe(m->blob, m->blob_len);
        m->next_free = pool->free[c];
        pool->free[c] = m;
        pool->nfree[c]++;
        pool->refs--; /* the owner's reference is still there */
        return;
    }
    pskgw_free_secret(m, sizeof(*m) + m->blob_cap);
    if (pool && --pool->refs == 0)
        free(pool);
}

int pskgw_msg_json(pskgw_msg_t *m, const char **json, size_t *len)
{
    if (!m->json) {
        size_t max = pskgw_envelope_json_max_lens(&m->env, &m->lens);
        pskgw_msg_json_buf_t *j = json_get(m->pool, max + 1); /* + the NUL */
        int rc;

        if (!j)
            return PSKGW_ENOMEM;
        rc = pskgw_envelope_json_into_lens(&m->env, &m->lens, m->id, j->data, j->cap - 1,
                                           &m->json_len);
        if (rc < 0) {
            m->jbuf = j;
            m->json_len = 0;
            json_put(m);
            return rc;
        }
        j->data[m->json_len] = '\0';
        m->jbuf = j;
        m->json = j->data;
    }
    *json = m->json;
    *len = m->json_len;
    return 0;
}

const char *pskgw_msg_device(const pskgw_msg_t *m)
{
    return pskgw_envelope_device(&m->env);
}

size_t pskgw_msg_encoded_len(const pskgw_msg_t *m)
{
    const char *strs[NSTR];
    size_t n = 1 + PSKGW_MESSAGE_ID_LEN + 24 + 1 + 4 + m->env.payload_len;

    env_strs(&m->env, strs);
    for (int i = 0; i < NSTR; i++)
        n += 2 + strlen(strs[i]);
    if (m->env.e2e)
        n += 4 + 2 + strlen(m->e2e.key_identity) + 2 + strlen(m->e2e.cipher_suite) + 2 +
             strlen(m->e2e.rot_public_uid) + 1;
    return n;
}

static uint8_t *put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);

    p = put_le(p, n, 2);
    memcpy(p, s, n);
    return p + n;
}

void pskgw_msg_encode(const pskgw_msg_t *m, uint8_t *out)
{
    const char *strs[NSTR];
    uint8_t *p = out;

    *p++ = 2;
    memcpy(p, m->id, PSKGW_MESSAGE_ID_LEN);
    p += PSKGW_MESSAGE_ID_LEN;
    p = put_le(p, m->env.session_id, 8);
    p = put_le(p, m->env.seq, 8);
    p = put_le(p, m->env.received_at_ms, 8);
    env_strs(&m->env, strs);
    for (int i = 0; i < NSTR; i++)
        p = put_str(p, strs[i]);
    *p++ = m->env.e2e ? 1 : 0;
    if (m->env.e2e) {
        p = put_le(p, m->e2e.version, 4);
        p = put_str(p, m->e2e.key_identity);
        p = put_str(p, m->e2e.cipher_suite);
        p = put_str(p, m->e2e.rot_public_uid);
        *p++ = m->e2e.replay ? 1 : 0;
    }
    p = put_le(p, m->env.payload_len, 4);
    if (m->env.payload_len)
        memcpy(p, m->env.payload, m->env.payload_len);
}

typedef struct {
    const uint8_t *p;
    size_t left;
} rd_t;

static int get_le(rd_t *r, int n, uint64_t *v)
{
    if (r->left < (size_t)n)
        return PSKGW_EPARSE;
    *v = 0;
    for (int i = 0; i < n; i++)
        *v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    r->left -= (size_t)n;
    return 0;
}

static int get_str(rd_t *r, const char **s, size_t *len)
{
    uint64_t n;

    if (get_le(r, 2, &n) < 0 || r->left < n || memchr(r->p, 0, n))
        return PSKGW_EPARSE;
    *s = (const char *)r->p;
    *len = n;
    r->p += n;
    r->left -= n;
    return 0;
}

int pskgw_msg_decode(const uint8_t *body, size_t len, pskgw_msg_t **out)
{
    rd_t r = { body, len };
    char id[PSKGW_MESSAGE_ID_LEN + 1];
    const char *strs[NSTR];
    size_t lens[NSTR];
    pskgw_envelope_t env = { 0 };
    pskgw_envelope_e2e_t e2e = { 0 };
    e2e_strs_t x = { { NULL, NULL, NULL }, { 0, 0, 0 } };
    uint64_t v;
    int fmt;

    if (r.left < 1 + PSKGW_MESSAGE_ID_LEN || (r.p[0] != 1 && r.p[0] != 2))
        return PSKGW_EPARSE;
    fmt = r.p[0];
    memcpy(id, r.p + 1, PSKGW_MESSAGE_ID_LEN);
    id[PSKGW_MESSAGE_ID_LEN] = '\0';
    if (!pskgw_is_hex((const uint8_t *)id, PSKGW_MESSAGE_ID_LEN))
        return PSKGW_EPARSE;
    r.p += 1 + PSKGW_MESSAGE_ID_LEN;
    r.left -= 1 + PSKGW_MESSAGE_ID_LEN;
    if (get_le(&r, 8, &env.session_id) < 0 || get_le(&r, 8, &env.seq) < 0 ||
        get_le(&r, 8, &env.received_at_ms) < 0)
        return PSKGW_EPARSE;
    for (int i = 0; i < NSTR; i++)
        if (get_str(&r, &strs[i], &lens[i]) < 0)
            return PSKGW_EPARSE;
    if (get_le(&r, 1, &v) < 0 || v > 1)
        return PSKGW_EPARSE;
    if (v == 1) {
        uint64_t ver;
        if (get_le(&r, 4, &ver) < 0 || get_str(&r, &x.s[0], &x.len[0]) < 0 ||
            get_str(&r, &x.s[1], &x.len[1]) < 0)
            return PSKGW_EPARSE;
        /* version 2 adds the parameters' ROTPublicUID and the replay flag */
        if (fmt == 2 && (get_str(&r, &x.s[2], &x.len[2]) < 0 || get_le(&r, 1, &v) < 0 || v > 1))
            return PSKGW_EPARSE;
        e2e.version = (unsigned)ver;
        e2e.replay = fmt == 2 && v == 1;
        env.e2e = &e2e;
    }
    if (get_le(&r, 4, &v) < 0 || r.left != v)
        return PSKGW_EPARSE;
    env.payload = r.p;
    env.payload_len = (size_t)v;
    return msg_build(NULL, id, strs, lens, &env, &x, out);
}
