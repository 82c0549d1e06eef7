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

#include <stdlib.h>
#include <string.h>

#define EXPORT_CAP 2048
#define SEQ_BYTES  6

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

int pskgw_dtls_session_hibernate(pskgw_dtls_session_t *s)
{
    uint8_t *a = NULL, *b = NULL;
    unsigned len = 0;
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
    if (s->cid_on)
        return PSKGW_EUNSUPPORTED;
    a = malloc(EXPORT_CAP);
    b = malloc(EXPORT_CAP);
    rc = PSKGW_ENOMEM;
    if (a == NULL || b == NULL)
        goto fail;
    if ((rc = export_pair(s, a, b, &len)) < 0)
        goto fail;
    rc = PSKGW_ETLS;
    if ((off = locate_seq(a, b, len)) < 0)
        goto fail;
    rc = PSKGW_ENOMEM;
    s->blob = malloc(len);
    if (s->blob == NULL)
        goto fail;
    memcpy(s->blob, b, len);
    s->blob_len = len;
    s->seq_off = (uint32_t)off;
    s->cipher_name = wolfSSL_get_cipher_name(s->ssl);
    wolfSSL_free(s->ssl);
    s->ssl = NULL;
    s->hibernated = true;
    rc = 0;
fail:
    if (a != NULL)
        pskgw_wipe(a, EXPORT_CAP);
    if (b != NULL)
        pskgw_wipe(b, EXPORT_CAP);
    free(a);
    free(b);
    return rc;
}

void pskgw_dtls_session_drop_blob(pskgw_dtls_session_t *s)
{
    if (s->blob != NULL) {
        pskgw_wipe(s->blob, s->blob_len);
        free(s->blob);
    }
    s->blob = NULL;
    s->blob_len = 0;
}

int pskgw_dtls_session_thaw(pskgw_dtls_session_t *s)
{
    WOLFSSL *ssl;
    uint64_t seq;
    int rc = PSKGW_ETLS;

    if (!s->hibernated)
        return 0;
    s->hibernated = false;
    if (s->blob == NULL || s->seq_off + SEQ_BYTES > s->blob_len)
        goto out;
    seq = get48(s->blob + s->seq_off);
    if (seq + PSKGW_DTLS_SEQ_JUMP >= ((uint64_t)1 << 48))
        goto out; /* the sequence space is used up: a new handshake is due */
    put48(s->blob + s->seq_off, seq + PSKGW_DTLS_SEQ_JUMP);
    ssl = wolfSSL_new(s->ctx->wctx);
    if (ssl == NULL) {
        rc = PSKGW_ENOMEM;
        goto out;
    }
    wolfSSL_SetIOReadCtx(ssl, s);
    wolfSSL_SetIOWriteCtx(ssl, s);
    wolfSSL_dtls_set_using_nonblock(ssl, 1);
    if (wolfSSL_dtls_import(ssl, s->blob, s->blob_len) <= 0) {
        wolfSSL_free(ssl);
        goto out;
    }
    (void)wolfSSL_dtls_set_peer(ssl, NULL, 0);
    s->ssl = ssl;
    rc = 0;
out:
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

/* ---- export / import (restart without a handshake) ---------------------------------------- *
 * Record: "PSX1", u64 idle ms, u64 messages delivered, u32 seq_off, u16 identity length,
 * identity, u16 uid length, uid, u32 blob length, blob (big-endian integers). */
#define REC_MAGIC "PSX1"
#define REC_FIXED (4 + 8 + 8 + 4 + 2 + 2 + 4)

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

int pskgw_dtls_session_export(pskgw_dtls_session_t *s, uint64_t now, uint8_t **out, size_t *len)
{
    size_t id_len, uid_len, n;
    uint8_t *rec, *p;
    int rc;

    if (s == NULL || out == NULL || len == NULL)
        return PSKGW_EINVAL;
    if (!s->hibernated && (rc = pskgw_dtls_session_hibernate(s)) < 0)
        return rc;
    id_len = s->identity != NULL ? strlen(s->identity) : 0;
    uid_len = s->uid != NULL ? strlen(s->uid) : 0;
    if (id_len > UINT16_MAX || uid_len > UINT16_MAX)
        return PSKGW_EINVAL;
    n = REC_FIXED + id_len + uid_len + s->blob_len;
    rec = malloc(n);
    if (rec == NULL)
        return PSKGW_ENOMEM;
    memcpy(rec, REC_MAGIC, 4);
    p = put(rec + 4, now > s->last_rx ? now - s->last_rx : 0, 8);
    p = put(p, s->seq, 8);
    p = put(p, s->seq_off, 4);
    p = put(p, id_len, 2);
    memcpy(p, s->identity, id_len);
    p = put(p + id_len, uid_len, 2);
    memcpy(p, s->uid, uid_len);
    p = put(p + uid_len, s->blob_len, 4);
    memcpy(p, s->blob, s->blob_len);
    *out = rec;
    *len = n;
    return 0;
}

uint64_t pskgw_dtls_session_record_idle_ms(const uint8_t *rec, size_t len)
{
    const uint8_t *p = rec + 4;

    if (rec == NULL || len < REC_FIXED || memcmp(rec, REC_MAGIC, 4) != 0)
        return 0;
    return get(&p, 8);
}

static char *dup_field(const uint8_t **p, const uint8_t *end, bool *bad)
{
    size_t n;
    char *str;

    if (end - *p < 2) {
        *bad = true;
        return NULL;
    }
    n = (size_t)get(p, 2);
    if ((size_t)(end - *p) < n) {
        *bad = true;
        return NULL;
    }
    if (n == 0)
        return NULL;
    str = malloc(n + 1);
    if (str != NULL) {
        memcpy(str, *p, n);
        str[n] = '\0';
    }
    *p += n;
    return str;
}

/* Fills a new session's fields from rec; PSKGW_EPARSE or PSKGW_ENOMEM. */
static int load_record(pskgw_dtls_session_t *s, const uint8_t *rec, size_t len, uint64_t now)
{
    const uint8_t *p = rec + 4, *end = rec + len;
    uint64_t idle;
    bool bad = false;
    size_t blob_len;

    if (len < REC_FIXED || memcmp(rec, REC_MAGIC, 4) != 0)
        return PSKGW_EPARSE;
    idle = get(&p, 8);
    s->seq = get(&p, 8);
    s->seq_off = (uint32_t)get(&p, 4);
    s->identity = dup_field(&p, end, &bad);
    if (!bad)
        s->uid = dup_field(&p, end, &bad);
    if (bad || end - p < 4)
        return PSKGW_EPARSE;
    blob_len = (size_t)get(&p, 4);
    if (blob_len != (size_t)(end - p) || blob_len == 0 || s->seq_off + SEQ_BYTES > blob_len ||
        s->identity == NULL)
        return s->identity == NULL && !bad ? PSKGW_ENOMEM : PSKGW_EPARSE;
    s->blob = malloc(blob_len);
    if (s->blob == NULL)
        return PSKGW_ENOMEM;
    memcpy(s->blob, p, blob_len);
    s->blob_len = (uint32_t)blob_len;
    s->last_rx = idle < now ? now - idle : 0;
    return 0;
}

int pskgw_dtls_session_import(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                              const pskgw_dtls_session_cbs_t *cbs, void *arg, const uint8_t *rec,
                              size_t len, uint64_t now, pskgw_dtls_session_t **out)
{
    pskgw_dtls_session_t *s;
    int rc;

    if (ctx == NULL || resolver == NULL || cbs == NULL || cbs->send == NULL ||
        cbs->message == NULL || rec == NULL || out == NULL || !ctx->opt.dtls)
        return PSKGW_EINVAL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PSKGW_ENOMEM;
    s->ctx = ctx;
    s->resolver = resolver;
    s->cbs = *cbs;
    s->arg = arg;
    s->dtls = true;
    s->now = now;
    s->rtx_deadline = UINT64_MAX;
    s->announced = UINT64_MAX;
    s->key = KEY_READY;
    s->established = true;
    s->fed_once = true;
    s->hs_freed = true;
    rc = load_record(s, rec, len, now);
    if (rc < 0) {
        pskgw_dtls_session_drop_blob(s);
        free(s->identity);
        free(s->uid);
        free(s);
        return rc;
    }
    s->hibernated = true;
    *out = s;
    return 0;
}
