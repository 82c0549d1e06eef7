#include "keycache/codec.h"

#include "common/err.h"
#include "common/wipe.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <string.h>

#define HDR_LEN 2
#define PT_HDR  19 /* kind, fresh_until, stale_until, value_len */
#define AAD_MAX                                                                  \
    (HDR_LEN + 1 + PSKGW_KEYCACHE_DOMAIN_MAX + 1 + PSKGW_KEYCACHE_NAME_MAX + 2 + \
     PSKGW_KEYCACHE_KEY_MAX)
#define PT_MAX    (PT_HDR + PSKGW_KEYCACHE_VALUE_MAX)
#define SEALED_IV HDR_LEN
#define SEALED_CT (HDR_LEN + PSKGW_KEYCACHE_IV_LEN)

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int build_aad(uint8_t format, uint8_t kek_id, const char *domain, const char *name,
                     const uint8_t *key, size_t key_len, uint8_t *out, size_t *out_len)
{
    size_t dl;
    size_t nl;
    size_t n = 0;

    if (!domain || !name || !key)
        return PSKGW_EINVAL;
    dl = strnlen(domain, PSKGW_KEYCACHE_DOMAIN_MAX + 1);
    nl = strnlen(name, PSKGW_KEYCACHE_NAME_MAX + 1);
    if (dl == 0 || dl > PSKGW_KEYCACHE_DOMAIN_MAX || nl == 0 || nl > PSKGW_KEYCACHE_NAME_MAX ||
        key_len == 0 || key_len > PSKGW_KEYCACHE_KEY_MAX)
        return PSKGW_EINVAL;
    out[n++] = format;
    out[n++] = kek_id;
    out[n++] = (uint8_t)dl;
    memcpy(out + n, domain, dl);
    n += dl;
    out[n++] = (uint8_t)nl;
    memcpy(out + n, name, nl);
    n += nl;
    out[n++] = (uint8_t)(key_len >> 8);
    out[n++] = (uint8_t)key_len;
    memcpy(out + n, key, key_len);
    n += key_len;
    *out_len = n;
    return 0;
}

static int kind_valid(uint8_t kind)
{
    return kind == PSKGW_KEYCACHE_KIND_VALUE || kind == PSKGW_KEYCACHE_KIND_DENIED ||
           kind == PSKGW_KEYCACHE_KIND_NOTFOUND;
}

int pskgw_keycache_codec_encode(const uint8_t *kek, uint8_t kek_id, const uint8_t *iv,
                                const char *domain, const char *name, const uint8_t *key,
                                size_t key_len, const pskgw_keycache_record_t *rec, uint8_t *out,
                                size_t cap, size_t *out_len)
{
    uint8_t aad[AAD_MAX];
    uint8_t pt[PT_MAX];
    size_t aad_len = 0;
    size_t pt_len;
    size_t total;
    Aes aes;
    int rc;

    if (!kek || !iv || !rec || !out || !out_len || !kind_valid(rec->kind) ||
        rec->value_len > PSKGW_KEYCACHE_VALUE_MAX || (rec->value_len && !rec->value) ||
        (rec->kind != PSKGW_KEYCACHE_KIND_VALUE && rec->value_len != 0) ||
        rec->fresh_until_ms > rec->stale_until_ms)
        return PSKGW_EINVAL;
    rc = build_aad(PSKGW_KEYCACHE_CODEC_FORMAT, kek_id, domain, name, key, key_len, aad, &aad_len);
    if (rc < 0)
        return rc;
    total = pskgw_keycache_codec_sealed_len(rec->value_len);
    if (cap < total)
        return PSKGW_ETOOBIG;

    pt[0] = rec->kind;
    put_be64(pt + 1, rec->fresh_until_ms);
    put_be64(pt + 9, rec->stale_until_ms);
    pt[17] = (uint8_t)(rec->value_len >> 8);
    pt[18] = (uint8_t)rec->value_len;
    if (rec->value_len)
        memcpy(pt + PT_HDR, rec->value, rec->value_len);
    pt_len = PT_HDR + rec->value_len;

    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
        return PSKGW_ECRYPTO;
    rc = wc_AesGcmSetKey(&aes, kek, PSKGW_KEYCACHE_KEK_LEN);
    if (rc == 0)
        rc = wc_AesGcmEncrypt(&aes, out + SEALED_CT, pt, (word32)pt_len, iv, PSKGW_KEYCACHE_IV_LEN,
                              out + SEALED_CT + pt_len, PSKGW_KEYCACHE_TAG_LEN, aad,
                              (word32)aad_len);
    wc_AesFree(&aes);
    pskgw_wipe(&aes, sizeof(aes));
    pskgw_wipe(pt, pt_len);
    if (rc != 0)
        return PSKGW_ECRYPTO;
    out[0] = PSKGW_KEYCACHE_CODEC_FORMAT;
    out[1] = kek_id;
    memcpy(out + SEALED_IV, iv, PSKGW_KEYCACHE_IV_LEN);
    *out_len = total;
    return 0;
}

int pskgw_keycache_codec_decode(const pskgw_keycache_keyring_t *kr, const char *domain,
                                const char *name, const uint8_t *key, size_t key_len,
                                const uint8_t *in, size_t in_len, uint8_t *value_buf,
                                size_t value_cap, pskgw_keycache_record_t *out)
{
    uint8_t aad[AAD_MAX];
    uint8_t pt[PT_MAX];
    const uint8_t *kek;
    size_t aad_len = 0;
    size_t ct_len;
    size_t value_len;
    pskgw_keycache_record_t rec;
    Aes aes;
    int rc;

    if (!kr || !kr->kek || (!in && in_len) || !out || (!value_buf && value_cap))
        return PSKGW_EINVAL;
    if (in_len < PSKGW_KEYCACHE_CODEC_OVERHEAD ||
        in_len > pskgw_keycache_codec_sealed_len(PSKGW_KEYCACHE_VALUE_MAX))
        return PSKGW_EPARSE;
    if (in[0] != PSKGW_KEYCACHE_CODEC_FORMAT)
        return PSKGW_EPARSE;
    if (in[1] == kr->kek_id)
        kek = kr->kek;
    else if (kr->prev_kek && in[1] == kr->prev_kek_id)
        kek = kr->prev_kek;
    else
        return PSKGW_EPARSE;
    rc = build_aad(in[0], in[1], domain, name, key, key_len, aad, &aad_len);
    if (rc < 0)
        return rc;

    ct_len = in_len - SEALED_CT - PSKGW_KEYCACHE_TAG_LEN;
    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
        return PSKGW_ECRYPTO;
    rc = wc_AesGcmSetKey(&aes, kek, PSKGW_KEYCACHE_KEK_LEN);
    if (rc == 0) {
        rc = wc_AesGcmDecrypt(&aes, pt, in + SEALED_CT, (word32)ct_len, in + SEALED_IV,
                              PSKGW_KEYCACHE_IV_LEN, in + SEALED_CT + ct_len,
                              PSKGW_KEYCACHE_TAG_LEN, aad, (word32)aad_len);
        rc = rc == 0 ? 0 : (rc == AES_GCM_AUTH_E ? PSKGW_EBADMAC : PSKGW_ECRYPTO);
    } else {
        rc = PSKGW_ECRYPTO;
    }
    wc_AesFree(&aes);
    pskgw_wipe(&aes, sizeof(aes));
    if (rc < 0)
        goto out;

    rc = PSKGW_EPARSE;
    value_len = ((size_t)pt[17] << 8) | pt[18];
    rec.kind = pt[0];
    rec.fresh_until_ms = get_be64(pt + 1);
    rec.stale_until_ms = get_be64(pt + 9);
    if (!kind_valid(rec.kind) || value_len != ct_len - PT_HDR ||
        (rec.kind != PSKGW_KEYCACHE_KIND_VALUE && value_len != 0) ||
        rec.fresh_until_ms > rec.stale_until_ms)
        goto out;
    if (value_len > value_cap) {
        rc = PSKGW_ETOOBIG;
        goto out;
    }
    if (value_len)
        memcpy(value_buf, pt + PT_HDR, value_len);
    rec.value = value_len ? value_buf : NULL;
    rec.value_len = value_len;
    *out = rec;
    rc = 0;
out:
    pskgw_wipe(pt, sizeof(pt));
    return rc;
}
