/* pskgw_dtls_session hibernation: see session.h ("hibernation").
 *
 * wolfSSL's export format is internal to wolfSSL, so the write sequence number's place in the
 * blob is found, not assumed: export, encrypt one record that never leaves the process (its
 * sequence number is skipped, a gap DTLS allows), export again. The only bytes that differ are
 * the low bytes of the 48-bit write sequence number, which must read one more in the second
 * blob; anything else refuses hibernation (the session stays awake), so a wolfSSL that changes
 * its format costs memory, never nonce safety. */
#include "dtls/internal.h"

#include "common/err.h"
#include "common/wipe.h"
#include "dtls/slab.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT_CAP 2048
#define SEQ_BYTES  6

/* ---- the hibernated session's one allocation ------------------------------------------------ *
 * s->blob holds, in one allocation: wolfSSL's export, packed (blob_len bytes), the peer's CID
 * (peer_cid_len bytes) and, NUL-terminated, the identity and the ROTPublicUID (s->identity and
 * s->uid point there while the session hibernates: strings_in_blob).
 *
 * Packing: wolfSSL's export is mostly zero bytes (for an AEAD suite the MAC secrets it does not
 * use, the unused ends of key and IV fields sized for the largest suite, small integers in wide
 * fields). After a u16 length of the export (its top bit: packed against the template, below),
 * each group of 8 bytes is a mask byte (bit i: byte i is not zero) followed by its non-zero
 * bytes; a zero mask is followed by the count (0..255) of further all-zero groups. The same
 * bytes, without the zeros: no compression of secrets. */
#define PACK_GROUP 8
#define PACK_TMPL  0x8000u /* in the u16 length: packed against the thread's template */
#define TMPL_LEARN 4
#define TMPL_OTHER 32 /* bytes that differ from the template: another session (keys, IVs) */

/* ---- the export template ----
 * Much of wolfSSL's export is the same in every session of a process (the format's header, the
 * options, the suite's sizes and flags): the bytes that were equal in the first TMPL_LEARN
 * exports of the same length made on this thread are XORed out before packing, so they pack to
 * nothing. A sample counts only when it differs from the template in TMPL_OTHER bytes or more:
 * another session's keys and IVs (40 bytes and more for every suite), not the same session
 * exported again (only its sequence numbers and window moved), so the session keys of one
 * session do not stay in the template. A byte that differed is 0 in the template (left as it
 * is): keys are packed as before (a key byte that matched in all the samples' sessions by
 * chance, 2^-8 a byte per other session, packs as zero, no loss). The template is learned once and never changes afterwards, so a blob
 * packed with it (PACK_TMPL) unpacks on the thread that made it, where its session lives;
 * records that leave the session (export, Redis) hold the unpacked export. Until it is learned it
 * holds the first export, keys included: it lives in the slab's frozen zone (don't-dump), like
 * the frozen sessions themselves. */
typedef struct {
    uint8_t b[EXPORT_CAP];
    uint16_t len;
    uint8_t seen;
} tmpl_t;
static _Thread_local tmpl_t *tmpl;

static void tmpl_learn(const uint8_t *raw, size_t len)
{
    size_t diff = 0;

    if (tmpl == NULL && (tmpl = pskgw_slab_alloc(PSKGW_SLAB_FROZEN, sizeof(*tmpl))) != NULL) {
        memcpy(tmpl->b, raw, len);
        tmpl->len = (uint16_t)len;
        tmpl->seen = 1;
        return;
    }
    if (tmpl == NULL || tmpl->seen >= TMPL_LEARN || len != tmpl->len)
        return;
    for (size_t i = 0; i < len; i++)
        diff += tmpl->b[i] != raw[i];
    if (diff < TMPL_OTHER)
        return; /* the same session again (its sequence numbers moved): not another sample */
    for (size_t i = 0; i < len; i++)
        if (tmpl->b[i] != raw[i])
            tmpl->b[i] = 0;
    tmpl->seen++;
}

/* The template for an export of len bytes, NULL when there is none (yet) for that length. */
static const uint8_t *tmpl_for(size_t len)
{
    return tmpl != NULL && tmpl->seen >= TMPL_LEARN && tmpl->len == len ? tmpl->b : NULL;
}

static size_t group_len(size_t len, size_t at)
{
    return len - at < PACK_GROUP ? len - at : PACK_GROUP;
}

static uint8_t byte_at(const uint8_t *in, const uint8_t *t, size_t i)
{
    return t != NULL ? (uint8_t)(in[i] ^ t[i]) : in[i];
}

static bool group_zero(const uint8_t *in, const uint8_t *t, size_t len, size_t at)
{
    for (size_t j = 0; j < group_len(len, at); j++)
        if (byte_at(in, t, at + j) != 0)
            return false;
    return true;
}

/* out: at least 2 + len + len / 8 + 2 bytes. Returns the packed length. t: the template XORed
 * out first (NULL: none). */
static size_t pack(const uint8_t *in, size_t len, const uint8_t *t, uint8_t *out)
{
    size_t o = 2;

    out[0] = (uint8_t)((len | (t != NULL ? PACK_TMPL : 0)) >> 8);
    out[1] = (uint8_t)len;
    for (size_t g = 0; g < len; g += PACK_GROUP) {
        size_t m = o++, run = 0;

        out[m] = 0;
        for (size_t j = 0; j < group_len(len, g); j++) {
            uint8_t v = byte_at(in, t, g + j);

            if (v != 0) {
                out[m] |= (uint8_t)(1u << j);
                out[o++] = v;
            }
        }
        if (out[m] != 0)
            continue;
        while (run < 255 && g + PACK_GROUP < len && group_zero(in, t, len, g + PACK_GROUP)) {
            run++;
            g += PACK_GROUP;
        }
        out[o++] = (uint8_t)run;
    }
    return o;
}

/* The unpacked length, or -1 for packed bytes that are malformed, unpack beyond cap or were
 * packed against a template this thread does not have. */
static long unpack(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t raw, i = 2, o = 0;
    const uint8_t *t = NULL;

    if (len < 2 || (raw = (size_t)(in[0] & 0x7f) << 8 | in[1]) > cap)
        return -1;
    if ((in[0] & (PACK_TMPL >> 8)) != 0 && (t = tmpl_for(raw)) == NULL)
        return -1;
    while (o < raw) {
        size_t n = group_len(raw, o);
        unsigned mask;

        if (i >= len || ((mask = in[i++]) >> n) != 0)
            return -1;
        for (size_t j = 0; j < n; j++) {
            out[o + j] = 0;
            if ((mask >> j & 1) != 0) {
                if (i >= len || in[i] == 0)
                    return -1;
                out[o + j] = in[i++];
            }
        }
        o += n;
        if (mask != 0)
            continue;
        if (i >= len)
            return -1;
        for (unsigned run = in [i++]; run > 0; run--) {
            if (o >= raw)
                return -1;
            n = group_len(raw, o);
            memset(out + o, 0, n);
            o += n;
        }
    }
    if (i != len)
        return -1;
    for (size_t k = 0; t != NULL && k < raw; k++)
        out[k] ^= t[k];
    return (long)raw;
}

/* s->blob from wolfSSL's export raw[len] (packed), the peer's CID and the strings; the strings
 * the session held apart are freed. 0 or PSKGW_ENOMEM (nothing changed). pk: scratch of
 * 2 * len + 4 bytes. */
static int keep_blob(pskgw_dtls_session_t *s, const uint8_t *raw, size_t len, uint8_t *pk,
                     const uint8_t *pcid, size_t pcid_len)
{
    size_t id = s->identity != NULL ? strlen(s->identity) + 1 : 0;
    size_t uid = s->uid != NULL ? strlen(s->uid) + 1 : 0;
    size_t n;
    uint8_t *b;

    tmpl_learn(raw, len);
    n = pack(raw, len, tmpl_for(len), pk);
    b = malloc(n + pcid_len + id + uid);
    if (b == NULL)
        return PSKGW_ENOMEM;
    memcpy(b, pk, n);
    if (pcid_len > 0)
        memcpy(b + n, pcid, pcid_len);
    if (id > 0)
        memcpy(b + n + pcid_len, s->identity, id);
    if (uid > 0)
        memcpy(b + n + pcid_len + id, s->uid, uid);
    free(s->identity);
    free(s->uid);
    s->identity = id > 0 ? (char *)b + n + pcid_len : NULL;
    s->uid = uid > 0 ? (char *)b + n + pcid_len + id : NULL;
    s->strings_in_blob = true;
    s->blob = b;
    s->blob_len = (uint16_t)n;
    s->peer_cid_len = (uint8_t)pcid_len;
    return 0;
}

/* The strings back in their own allocations (a thaw: the blob goes). 0 or PSKGW_ENOMEM (then
 * the session has none). */
static int unpin_strings(pskgw_dtls_session_t *s)
{
    char *id = NULL, *uid = NULL;

    if (!s->strings_in_blob)
        return 0;
    if ((s->identity != NULL && (id = strdup(s->identity)) == NULL) ||
        (s->uid != NULL && (uid = strdup(s->uid)) == NULL)) {
        free(id);
        return PSKGW_ENOMEM;
    }
    s->identity = id;
    s->uid = uid;
    s->strings_in_blob = false;
    return 0;
}

/* wolfSSL's parser of the connection_id extension (src/dtls.c, WOLFSSL_LOCAL in
 * wolfssl/internal.h, not installed; reachable because wolfSSL is linked statically). The public
 * API can set the CID we receive (wolfSSL_dtls_cid_set) but not the one the peer asked us to put
 * in our records, nor mark the CID negotiated: a thaw hands the stored peer CID to the parser
 * exactly as the handshake did (docs/WOLFSSL.md, "Connection ID across hibernation"). */
int TLSX_ConnectionID_Parse(WOLFSSL *ssl, const unsigned char *input, unsigned short length,
                            unsigned char isRequest);

static uint64_t get48(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < SEQ_BYTES; i++)
        v = v << 8 | p[i];
    return v;
}

static void put48(uint8_t *p, uint64_t v)
{
    for (int i = SEQ_BYTES - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

int pskgw_dtls_io_get_peer(WOLFSSL *ssl, char *ip, int *ip_sz, unsigned short *port, int *fam)
{
    (void)ssl;
    if (ip == NULL || ip_sz == NULL || *ip_sz < 1 || port == NULL || fam == NULL)
        return WOLFSSL_FAILURE;
    ip[0] = '\0';
    *ip_sz = 0;
    *port = 0;
    *fam = 0;
    return WOLFSSL_SUCCESS;
}

int pskgw_dtls_io_set_peer(WOLFSSL *ssl, char *ip, int ip_sz, unsigned short port, int fam)
{
    (void)ssl;
    (void)ip;
    (void)ip_sz;
    (void)port;
    (void)fam;
    return WOLFSSL_SUCCESS;
}

/* Swallows what wolfSSL sends while the write sequence number is located. */
static int swallow_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)buf;
    (void)ctx;
    return sz;
}

/* Where the write sequence number sits: a and b (same length) differ only in bytes that end at
 * the returned offset + SEQ_BYTES, and b's 48-bit value there is a's plus one. <0 otherwise. */
static long locate_seq(const uint8_t *a, const uint8_t *b, size_t len)
{
    size_t first = len, last = 0;

    for (size_t i = 0; i < len; i++) {
        if (a[i] != b[i]) {
            if (first == len)
                first = i;
            last = i;
        }
    }
    if (first == len || last - first >= SEQ_BYTES || last + 1 < SEQ_BYTES)
        return -1;
    if (get48(b + last + 1 - SEQ_BYTES) != get48(a + last + 1 - SEQ_BYTES) + 1)
        return -1;
    return (long)(last + 1 - SEQ_BYTES);
}

static int export_pair(pskgw_dtls_session_t *s, uint8_t *a, uint8_t *b, unsigned *len)
{
    unsigned la = EXPORT_CAP, lb = EXPORT_CAP;
    static const uint8_t probe = 0;

    if (wolfSSL_dtls_export(s->ssl, a, &la) <= 0)
        return PSKGW_ETLS;
    wolfSSL_SSLSetIOSend(s->ssl, swallow_send);
    if (wolfSSL_write(s->ssl, &probe, 1) != 1) {
        /* The probe record failed: put the real send callback back, the session goes on. */
        wolfSSL_SSLSetIOSend(s->ssl, pskgw_dtls_io_send);
        return PSKGW_ETLS;
    }
    wolfSSL_SSLSetIOSend(s->ssl, pskgw_dtls_io_send);
    if (wolfSSL_dtls_export(s->ssl, b, &lb) <= 0 || la != lb)
        return PSKGW_ETLS;
    *len = lb;
    return 0;
}

/* The CID the peer asked us to put in our records (RFC 9146: empty when it wants none), which
 * wolfSSL's export leaves out. */
static int get_peer_cid(pskgw_dtls_session_t *s, uint8_t *out, unsigned *len)
{
    unsigned n = 0;

    *len = 0;
    if (!s->cid_on)
        return 0;
    if (wolfSSL_dtls_cid_get_tx_size(s->ssl, &n) != WOLFSSL_SUCCESS || n > PSKGW_PEER_CID_MAX)
        return PSKGW_ETLS;
    if (n > 0 && wolfSSL_dtls_cid_get_tx(s->ssl, out, n) != WOLFSSL_SUCCESS)
        return PSKGW_ETLS;
    *len = n;
    return 0;
}

int pskgw_dtls_session_hibernate(pskgw_dtls_session_t *s)
{
    uint8_t *a = NULL, *b = NULL;
    uint8_t pcid[PSKGW_PEER_CID_MAX];
    unsigned len = 0, pcid_len = 0;
    long off;
    int rc;

    if (s == NULL || !s->dtls || s->depth > 0)
        return PSKGW_EINVAL;
    if (s->closed || s->free_deferred)
        return PSKGW_ECLOSED;
    if (s->hibernated)
        return PSKGW_EEXISTS;
    if (!s->established || !s->hs_freed)
        return PSKGW_EAGAIN;
    a = malloc(2 * EXPORT_CAP + 4); /* then the packed blob's scratch */
    b = malloc(EXPORT_CAP);
    rc = PSKGW_ENOMEM;
    if (a == NULL || b == NULL)
        goto fail;
    if ((rc = get_peer_cid(s, pcid, &pcid_len)) < 0 || (rc = export_pair(s, a, b, &len)) < 0)
        goto fail;
    rc = PSKGW_ETLS;
    if ((off = locate_seq(a, b, len)) < 0)
        goto fail;
    if ((rc = keep_blob(s, b, len, a, pcid, pcid_len)) < 0)
        goto fail;
    s->seq_off = (uint16_t)off;
    s->cipher_name = wolfSSL_get_cipher_name(s->ssl);
    wolfSSL_free(s->ssl);
    s->ssl = NULL;
    s->hibernated = true;
    rc = 0;
fail:
    if (a != NULL)
        pskgw_wipe(a, 2 * EXPORT_CAP + 4);
    if (b != NULL)
        pskgw_wipe(b, EXPORT_CAP);
    free(a);
    free(b);
    return rc;
}

void pskgw_dtls_session_drop_blob(pskgw_dtls_session_t *s)
{
    size_t n = (size_t)s->blob_len + s->peer_cid_len;

    if (s->strings_in_blob) {
        n += (s->identity != NULL ? strlen(s->identity) + 1 : 0) +
             (s->uid != NULL ? strlen(s->uid) + 1 : 0);
        s->identity = NULL;
        s->uid = NULL;
        s->strings_in_blob = false;
    }
    if (s->blob != NULL) {
        pskgw_wipe(s->blob, n);
        free(s->blob);
    }
    s->blob = NULL;
    s->blob_len = 0;
    s->peer_cid_len = 0;
}

/* A negotiated CID back on an imported WOLFSSL object: ours (what the peer's records carry)
 * through the public API, the peer's (what ours carry, possibly empty) through wolfSSL's own
 * extension parser, which also marks the CID negotiated, as the handshake left it. */
static int restore_cid(pskgw_dtls_session_t *s, WOLFSSL *ssl)
{
    uint8_t ext[1 + PSKGW_PEER_CID_MAX];
    unsigned n = 0;

    if (!s->cid_on)
        return 0;
    if (wolfSSL_dtls_cid_use(ssl) != WOLFSSL_SUCCESS ||
        wolfSSL_dtls_cid_set(ssl, s->cid, s->cid_len) != WOLFSSL_SUCCESS)
        return PSKGW_ETLS;
    ext[0] = s->peer_cid_len;
    if (s->peer_cid_len > 0)
        memcpy(ext + 1, s->blob + s->blob_len, s->peer_cid_len);
    if (TLSX_ConnectionID_Parse(ssl, ext, (unsigned short)(1 + s->peer_cid_len), 1) != 0 ||
        wolfSSL_dtls_cid_get_tx_size(ssl, &n) != WOLFSSL_SUCCESS || n != s->peer_cid_len ||
        wolfSSL_dtls_cid_get_rx_size(ssl, &n) != WOLFSSL_SUCCESS || n != s->cid_len)
        return PSKGW_ETLS;
    return 0;
}

int pskgw_dtls_session_thaw(pskgw_dtls_session_t *s)
{
    uint8_t raw[EXPORT_CAP];
    WOLFSSL *ssl;
    uint64_t seq;
    long len = -1;
    int rc = PSKGW_ETLS;

    if (!s->hibernated)
        return 0;
    s->hibernated = false;
    if (unpin_strings(s) < 0) {
        rc = PSKGW_ENOMEM;
        goto out;
    }
    if (s->blob == NULL || (len = unpack(s->blob, s->blob_len, raw, sizeof(raw))) < 0 ||
        (size_t)s->seq_off + SEQ_BYTES > (size_t)len)
        goto out;
    seq = get48(raw + s->seq_off);
    if (seq + PSKGW_DTLS_SEQ_JUMP >= ((uint64_t)1 << 48))
        goto out; /* the sequence space is used up: a new handshake is due */
    put48(raw + s->seq_off, seq + PSKGW_DTLS_SEQ_JUMP);
    ssl = wolfSSL_new(s->ctx->wctx);
    if (ssl == NULL) {
        rc = PSKGW_ENOMEM;
        goto out;
    }
    wolfSSL_SetIOReadCtx(ssl, s);
    wolfSSL_SetIOWriteCtx(ssl, s);
    wolfSSL_dtls_set_using_nonblock(ssl, 1);
    if (wolfSSL_dtls_import(ssl, raw, (unsigned)len) <= 0 || restore_cid(s, ssl) < 0) {
        wolfSSL_free(ssl);
        goto out;
    }
    (void)wolfSSL_dtls_set_peer(ssl, NULL, 0);
    s->ssl = ssl;
    rc = 0;
out:
    if (len > 0)
        pskgw_wipe(raw, (size_t)len);
    pskgw_dtls_session_drop_blob(s);
    return rc;
}

bool pskgw_dtls_session_hibernated(const pskgw_dtls_session_t *s)
{
    return s->hibernated;
}

size_t pskgw_dtls_session_blob_size(const pskgw_dtls_session_t *s)
{
    return s->hibernated ? s->blob_len : 0;
}

uint64_t pskgw_dtls_session_last_rx(const pskgw_dtls_session_t *s)
{
    return s->last_rx;
}

void pskgw_dtls_session_sizes(const pskgw_dtls_session_t *s, pskgw_dtls_session_sizes_t *out)
{
    size_t id = s->identity != NULL ? strlen(s->identity) + 1 : 0;
    size_t uid = s->uid != NULL ? strlen(s->uid) + 1 : 0;

    memset(out, 0, sizeof(*out));
    out->session = sizeof(*s);
    out->allocations = 1 + (s->blob != NULL);
    if (s->blob != NULL)
        out->blob = (size_t)s->blob_len + s->peer_cid_len;
    if (s->strings_in_blob) {
        out->blob += id + uid; /* in the same allocation */
        return;
    }
    out->strings = id + uid;
    out->allocations += (id > 0) + (uid > 0);
}

/* ---- export / import (restart without a handshake) ---------------------------------------- *
 * Record (big-endian integers): "PSX2", u64 idle ms, u64 messages delivered, u32 seq_off,
 * u64 rx_top, u16 identity length, identity, u16 uid length, uid, u8 our CID length (0: no CID
 * negotiated), our CID, u8 peer CID length, peer CID, u32 blob length, blob. "PSX1" records (an
 * older process's: no rx_top, no CID fields) are still read. */
#define REC_MAGIC    "PSX2"
#define REC_MAGIC_V1 "PSX1"
#define REC_FIXED_V1 (4 + 8 + 8 + 4 + 2 + 2 + 4)
#define REC_FIXED    (REC_FIXED_V1 + 8 + 1 + 1)

static uint8_t *put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint64_t get(const uint8_t **p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++)
        v = v << 8 | *(*p)++;
    return v;
}

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t n, int len_bytes)
{
    p = put(p, n, len_bytes);
    if (n > 0)
        memcpy(p, src, n);
    return p + n;
}

int pskgw_dtls_session_export(pskgw_dtls_session_t *s, uint64_t now, uint8_t **out, size_t *len)
{
    size_t id_len, uid_len, cid_len, n;
    uint8_t *rec, *p;
    uint8_t raw[EXPORT_CAP];
    long raw_len;
    int rc;

    if (s == NULL || out == NULL || len == NULL)
        return PSKGW_EINVAL;
    if (!s->hibernated && (rc = pskgw_dtls_session_hibernate(s)) < 0)
        return rc;
    id_len = s->identity != NULL ? strlen(s->identity) : 0;
    uid_len = s->uid != NULL ? strlen(s->uid) : 0;
    cid_len = s->cid_on ? s->cid_len : 0;
    if (id_len > UINT16_MAX || uid_len > UINT16_MAX)
        return PSKGW_EINVAL;
    if ((raw_len = unpack(s->blob, s->blob_len, raw, sizeof(raw))) < 0)
        return PSKGW_ETLS;
    n = REC_FIXED + id_len + uid_len + cid_len + s->peer_cid_len + (size_t)raw_len;
    rec = malloc(n);
    if (rec == NULL) {
        pskgw_wipe(raw, (size_t)raw_len);
        return PSKGW_ENOMEM;
    }
    memcpy(rec, REC_MAGIC, 4);
    p = put(rec + 4, now > s->last_rx ? now - s->last_rx : 0, 8);
    p = put(p, s->seq, 8);
    p = put(p, s->seq_off, 4);
    p = put(p, s->rx_top, 8);
    p = put_bytes(p, s->identity, id_len, 2);
    p = put_bytes(p, s->uid, uid_len, 2);
    p = put_bytes(p, s->cid, cid_len, 1);
    p = put_bytes(p, s->blob + s->blob_len, s->peer_cid_len, 1);
    (void)put_bytes(p, raw, (size_t)raw_len, 4);
    pskgw_wipe(raw, (size_t)raw_len);
    *out = rec;
    *len = n;
    return 0;
}

/* 2 for a PSX2 record, 1 for a PSX1 one, 0 for anything else. */
static int rec_version(const uint8_t *rec, size_t len)
{
    if (rec == NULL || len < REC_FIXED_V1)
        return 0;
    if (memcmp(rec, REC_MAGIC_V1, 4) == 0)
        return 1;
    return len >= REC_FIXED && memcmp(rec, REC_MAGIC, 4) == 0 ? 2 : 0;
}

uint64_t pskgw_dtls_session_record_idle_ms(const uint8_t *rec, size_t len)
{
    const uint8_t *p = rec + 4;

    if (rec_version(rec, len) == 0)
        return 0;
    return get(&p, 8);
}

/* A length-prefixed field of at most max bytes: *at points at it in the record, *n its length.
 * false when the record is too short for it. */
static bool take(const uint8_t **p, const uint8_t *end, int len_bytes, size_t max,
                 const uint8_t **at, size_t *n)
{
    if (end - *p < len_bytes)
        return false;
    *n = (size_t)get(p, len_bytes);
    if (*n > max || (size_t)(end - *p) < *n)
        return false;
    *at = *p;
    *p += *n;
    return true;
}

static char *dup_str(const uint8_t *at, size_t n, bool *nomem)
{
    char *str;

    if (n == 0)
        return NULL;
    str = malloc(n + 1);
    if (str == NULL) {
        *nomem = true;
        return NULL;
    }
    memcpy(str, at, n);
    str[n] = '\0';
    return str;
}

/* The fields of a record, borrowed from it. */
typedef struct {
    uint64_t idle, seq, rx_top;
    uint32_t seq_off;
    const uint8_t *id, *uid, *cid, *pcid, *blob;
    size_t id_len, uid_len, cid_len, pcid_len, blob_len;
} rec_fields_t;

static int parse_record(const uint8_t *rec, size_t len, rec_fields_t *f)
{
    const uint8_t *p = rec + 4, *end = rec + len;
    int v = rec_version(rec, len);

    memset(f, 0, sizeof(*f));
    if (v == 0)
        return PSKGW_EPARSE;
    f->idle = get(&p, 8);
    f->seq = get(&p, 8);
    f->seq_off = (uint32_t)get(&p, 4);
    if (v == 2)
        f->rx_top = get(&p, 8);
    if (!take(&p, end, 2, UINT16_MAX, &f->id, &f->id_len) ||
        !take(&p, end, 2, UINT16_MAX, &f->uid, &f->uid_len))
        return PSKGW_EPARSE;
    if (v == 2 && (!take(&p, end, 1, PSKGW_CID_MAX, &f->cid, &f->cid_len) ||
                   !take(&p, end, 1, PSKGW_PEER_CID_MAX, &f->pcid, &f->pcid_len)))
        return PSKGW_EPARSE;
    if (!take(&p, end, 4, EXPORT_CAP, &f->blob, &f->blob_len) || p != end)
        return PSKGW_EPARSE;
    if (f->blob_len == 0 || f->id_len == 0 || (size_t)f->seq_off + SEQ_BYTES > f->blob_len ||
        (f->cid_len > 0 && f->cid_len < PSKGW_CID_MIN) || (f->cid_len == 0 && f->pcid_len > 0))
        return PSKGW_EPARSE;
    return 0;
}

int pskgw_dtls_session_blank(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                             const pskgw_dtls_session_cbs_t *cbs, void *arg, uint64_t now,
                             pskgw_dtls_session_t **out)
{
    pskgw_dtls_session_t *s;

    if (ctx == NULL || resolver == NULL || cbs == NULL || cbs->send == NULL || cbs->message == NULL)
        return PSKGW_EINVAL;
    s = pskgw_slab_calloc(PSKGW_SLAB_AWAKE, sizeof(*s));
    if (s == NULL)
        return PSKGW_ENOMEM;
    s->ctx = ctx;
    s->resolver = resolver;
    s->cbs = cbs;
    s->arg = arg;
    s->dtls = ctx->opt.dtls;
    s->now = now;
    s->rtx_deadline = UINT64_MAX;
    s->announced = UINT64_MAX;
    *out = s;
    return 0;
}

int pskgw_dtls_session_shell(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                             const pskgw_dtls_session_cbs_t *cbs, void *arg, uint64_t now,
                             pskgw_dtls_session_t **out)
{
    pskgw_dtls_session_t *s;
    int rc;

    if (ctx == NULL || !ctx->opt.dtls)
        return PSKGW_EINVAL;
    if ((rc = pskgw_dtls_session_blank(ctx, resolver, cbs, arg, now, &s)) < 0)
        return rc;
    s->key = KEY_READY;
    s->established = true;
    s->fed_once = true;
    s->hs_freed = true;
    *out = s;
    return 0;
}

/* Fills a new session's fields from rec; PSKGW_EPARSE or PSKGW_ENOMEM. */
static int load_record(pskgw_dtls_session_t *s, const uint8_t *rec, size_t len, uint64_t now)
{
    uint8_t pk[2 * EXPORT_CAP + 4];
    rec_fields_t f;
    bool nomem = false;
    int rc = parse_record(rec, len, &f);

    if (rc < 0)
        return rc;
    s->seq = f.seq;
    s->seq_off = (uint16_t)f.seq_off;
    s->rx_top = f.rx_top;
    s->identity = dup_str(f.id, f.id_len, &nomem);
    s->uid = dup_str(f.uid, f.uid_len, &nomem);
    if (nomem)
        return PSKGW_ENOMEM;
    rc = keep_blob(s, f.blob, f.blob_len, pk, f.pcid, f.pcid_len); /* the strings move there */
    pskgw_wipe(pk, sizeof(pk));
    if (rc < 0)
        return rc;
    if (f.cid_len > 0)
        memcpy(s->cid, f.cid, f.cid_len);
    s->cid_len = (uint8_t)f.cid_len;
    s->cid_on = f.cid_len > 0;
    s->last_rx = f.idle < now ? now - f.idle : 0;
    return 0;
}

int pskgw_dtls_session_import(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                              const pskgw_dtls_session_cbs_t *cbs, void *arg, const uint8_t *rec,
                              size_t len, uint64_t now, pskgw_dtls_session_t **out)
{
    pskgw_dtls_session_t *s = NULL;
    int rc;

    if (rec == NULL || out == NULL)
        return PSKGW_EINVAL;
    if ((rc = pskgw_dtls_session_shell(ctx, resolver, cbs, arg, now, &s)) < 0)
        return rc;
    rc = load_record(s, rec, len, now);
    if (rc < 0) {
        pskgw_dtls_session_drop_blob(s);
        free(s->identity);
        free(s->uid);
        pskgw_slab_release(s);
        return rc;
    }
    s->hibernated = true;
    *out = s;
    return 0;
}
