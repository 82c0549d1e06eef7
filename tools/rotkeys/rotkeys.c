/* pskgw_rotkeys: deterministic root-of-trust derivation (see rotkeys.h for the scheme). */
#include "tools/rotkeys/rotkeys.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include <string.h>

#include "common/codec.h"
#include "common/err.h"
#include "common/wipe.h"

#define ROT_LABEL       "pskgw-rotkeys-v1"
#define SEED_KEY_LEN    32
#define ID_TAG_LEN      8
#define KI_V1_TAG_LEN   8
#define KI_V2_TAG_LEN   4
#define UID_TAG_LEN     2
#define SESSION_TAG_LEN 4
#define HMAC_OUT_LEN    32
#define MAX_PARTS       4

typedef struct {
    const void *p;
    size_t n;
} part_t;

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* HMAC-SHA256(key, parts[0] | ... | parts[n-1]) into out (32 bytes). */
static int hmac_parts(const uint8_t *key, size_t key_len, const part_t *parts, size_t nparts,
                      uint8_t out[HMAC_OUT_LEN])
{
    Hmac h;
    int rc = PSKGW_ECRYPTO;

    if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
        return PSKGW_ECRYPTO;
    /* wolfCrypt rejects a NULL key even with length 0. */
    static const uint8_t empty = 0;
    if (wc_HmacSetKey(&h, WC_SHA256, key_len ? key : &empty, (word32)key_len) != 0)
        goto done;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].n && wc_HmacUpdate(&h, parts[i].p, (word32)parts[i].n) != 0)
            goto done;
    }
    if (wc_HmacFinal(&h, out) != 0)
        goto done;
    rc = 0;
done:
    wc_HmacFree(&h);
    pskgw_wipe(&h, sizeof(h));
    return rc;
}

static int seed_key(const char *seed, uint8_t k[SEED_KEY_LEN])
{
    part_t p = { seed, strlen(seed) };
    return hmac_parts((const uint8_t *)ROT_LABEL, strlen(ROT_LABEL), &p, 1, k);
}

/* HMAC(K(seed), parts) truncated to out_len bytes. */
static int derive(const char *seed, const part_t *parts, size_t nparts, uint8_t *out,
                  size_t out_len)
{
    uint8_t k[SEED_KEY_LEN];
    uint8_t mac[HMAC_OUT_LEN];
    int rc = seed_key(seed, k);
    if (rc == 0)
        rc = hmac_parts(k, sizeof(k), parts, nparts, mac);
    if (rc == 0)
        memcpy(out, mac, out_len);
    pskgw_wipe(k, sizeof(k));
    pskgw_wipe(mac, sizeof(mac));
    return rc;
}

/* ---- identity ---- */

static int id_tag(const char *seed, uint32_t device, uint8_t tag[ID_TAG_LEN])
{
    uint8_t msg[2 + 4] = { 0x11, 0x01 };
    put_be32(msg + 2, device);
    part_t parts[] = { { "id", 2 }, { msg, sizeof(msg) } };
    return derive(seed, parts, 2, tag, ID_TAG_LEN);
}

int pskgw_rot_identity(const char *seed, uint32_t device, uint8_t out[PSKGW_ROT_IDENTITY_LEN])
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN] = { 0x11, 0x01 };
    if (!seed || !out)
        return PSKGW_EINVAL;
    put_be32(id + 2, device);
    int rc = id_tag(seed, device, id + 6);
    if (rc < 0)
        return rc;
    memcpy(out, id, sizeof(id));
    return 0;
}

int pskgw_rot_identity_hex(const char *seed, uint32_t device,
                           char out[PSKGW_ROT_IDENTITY_HEX_LEN + 1])
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN];
    if (!out)
        return PSKGW_EINVAL;
    int rc = pskgw_rot_identity(seed, device, id);
    if (rc < 0)
        return rc;
    return pskgw_hex_encode(id, sizeof(id), out, PSKGW_ROT_IDENTITY_HEX_LEN + 1, true);
}

int pskgw_rot_identity_check(const char *seed, const uint8_t *id, size_t len, uint32_t *device)
{
    uint8_t tag[ID_TAG_LEN];
    if (!seed || (!id && len) || !device)
        return PSKGW_EINVAL;
    if (len != PSKGW_ROT_IDENTITY_LEN || id[0] != 0x11 || id[1] != 0x01)
        return PSKGW_ENOTFOUND;
    uint32_t dev = get_be32(id + 2);
    int rc = id_tag(seed, dev, tag);
    if (rc < 0)
        return rc;
    if (pskgw_memeq_ct(tag, id + 6, ID_TAG_LEN) != 0)
        return PSKGW_ENOTFOUND;
    *device = dev;
    return 0;
}

int pskgw_rot_identity_check_hex(const char *seed, const char *hex, size_t len, uint32_t *device)
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN];
    size_t n = 0;
    if (!seed || !hex || !device)
        return PSKGW_EINVAL;
    if (len != PSKGW_ROT_IDENTITY_HEX_LEN || pskgw_hex_decode(hex, len, id, sizeof(id), &n) != 0 ||
        n != sizeof(id))
        return PSKGW_EPARSE;
    return pskgw_rot_identity_check(seed, id, n, device);
}

static int psk_of(const char *seed, const uint8_t id[PSKGW_ROT_IDENTITY_LEN], unsigned key_bits,
                  uint8_t *out, size_t cap, size_t *out_len);

int pskgw_rot_psk(const char *seed, uint32_t device, unsigned key_bits, uint8_t *out, size_t cap,
                  size_t *out_len)
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN];
    if (!seed || !out || !out_len || (key_bits != 128 && key_bits != 256))
        return PSKGW_EINVAL;
    if (cap < key_bits / 8)
        return PSKGW_ETOOBIG;
    int rc = pskgw_rot_identity(seed, device, id);
    if (rc < 0)
        return rc;
    return psk_of(seed, id, key_bits, out, cap, out_len);
}

/* ---- per-session identities ---- */

static int ids_tag(const char *seed, uint32_t device, uint32_t session,
                   uint8_t tag[SESSION_TAG_LEN])
{
    uint8_t msg[2 + 4 + 4] = { 0x11, 0x01 };
    put_be32(msg + 2, device);
    put_be32(msg + 6, session);
    part_t parts[] = { { "ids", 3 }, { msg, sizeof(msg) } };
    return derive(seed, parts, 2, tag, SESSION_TAG_LEN);
}

int pskgw_rot_identity_session(const char *seed, uint32_t device, uint32_t session,
                               uint8_t out[PSKGW_ROT_IDENTITY_LEN])
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN] = { 0x11, 0x01 };
    if (!seed || !out)
        return PSKGW_EINVAL;
    put_be32(id + 2, device);
    put_be32(id + 6, session);
    int rc = ids_tag(seed, device, session, id + 10);
    if (rc < 0)
        return rc;
    memcpy(out, id, sizeof(id));
    return 0;
}

int pskgw_rot_identity_session_hex(const char *seed, uint32_t device, uint32_t session,
                                   char out[PSKGW_ROT_IDENTITY_HEX_LEN + 1])
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN];
    if (!out)
        return PSKGW_EINVAL;
    int rc = pskgw_rot_identity_session(seed, device, session, id);
    if (rc < 0)
        return rc;
    return pskgw_hex_encode(id, sizeof(id), out, PSKGW_ROT_IDENTITY_HEX_LEN + 1, true);
}

int pskgw_rot_identity_resolve(const char *seed, const uint8_t *id, size_t len,
                               pskgw_rot_id_info_t *info)
{
    uint8_t tag[SESSION_TAG_LEN];
    pskgw_rot_id_info_t r = { 0, 0, false };
    if (!seed || (!id && len) || !info)
        return PSKGW_EINVAL;
    int rc = pskgw_rot_identity_check(seed, id, len, &r.device);
    if (rc != PSKGW_ENOTFOUND) {
        if (rc == 0)
            *info = r;
        return rc;
    }
    if (len != PSKGW_ROT_IDENTITY_LEN || id[0] != 0x11 || id[1] != 0x01)
        return PSKGW_ENOTFOUND;
    r.device = get_be32(id + 2);
    r.session = get_be32(id + 6);
    r.per_session = true;
    rc = ids_tag(seed, r.device, r.session, tag);
    if (rc < 0)
        return rc;
    if (pskgw_memeq_ct(tag, id + 10, SESSION_TAG_LEN) != 0)
        return PSKGW_ENOTFOUND;
    *info = r;
    return 0;
}

/* Hex (28 characters, any case) -> identity bytes; PSKGW_EPARSE otherwise. */
static int identity_unhex(const char *hex, size_t len, uint8_t id[PSKGW_ROT_IDENTITY_LEN])
{
    size_t n = 0;
    if (len != PSKGW_ROT_IDENTITY_HEX_LEN ||
        pskgw_hex_decode(hex, len, id, PSKGW_ROT_IDENTITY_LEN, &n) != 0 ||
        n != PSKGW_ROT_IDENTITY_LEN)
        return PSKGW_EPARSE;
    return 0;
}

int pskgw_rot_identity_resolve_hex(const char *seed, const char *hex, size_t len,
                                   pskgw_rot_id_info_t *info)
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN];
    if (!seed || !hex || !info)
        return PSKGW_EINVAL;
    if (identity_unhex(hex, len, id) < 0)
        return PSKGW_EPARSE;
    return pskgw_rot_identity_resolve(seed, id, sizeof(id), info);
}

/* PSK = HMAC(K, "psk" | identity (14) | key_bits (2)): the same rule for both kinds. */
static int psk_of(const char *seed, const uint8_t id[PSKGW_ROT_IDENTITY_LEN], unsigned key_bits,
                  uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t psk[PSKGW_ROT_PSK_MAX_LEN];
    if (!seed || !out || !out_len || (key_bits != 128 && key_bits != 256))
        return PSKGW_EINVAL;
    size_t n = key_bits / 8;
    if (cap < n)
        return PSKGW_ETOOBIG;
    uint8_t bits[2] = { (uint8_t)(key_bits >> 8), (uint8_t)key_bits };
    part_t parts[] = { { "psk", 3 }, { id, PSKGW_ROT_IDENTITY_LEN }, { bits, 2 } };
    int rc = derive(seed, parts, 3, psk, n);
    if (rc == 0) {
        memcpy(out, psk, n);
        *out_len = n;
    }
    pskgw_wipe(psk, sizeof(psk));
    return rc;
}

int pskgw_rot_identity_psk(const char *seed, const uint8_t *id, size_t len, unsigned key_bits,
                           uint8_t *out, size_t cap, size_t *out_len)
{
    pskgw_rot_id_info_t info;
    if (!out || !out_len || (key_bits != 128 && key_bits != 256))
        return PSKGW_EINVAL;
    int rc = pskgw_rot_identity_resolve(seed, id, len, &info);
    if (rc < 0)
        return rc;
    return psk_of(seed, id, key_bits, out, cap, out_len);
}

int pskgw_rot_identity_psk_hex(const char *seed, const char *hex, size_t len, unsigned key_bits,
                               uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t id[PSKGW_ROT_IDENTITY_LEN];
    if (!seed || !hex)
        return PSKGW_EINVAL;
    if (identity_unhex(hex, len, id) < 0)
        return PSKGW_EPARSE;
    return pskgw_rot_identity_psk(seed, id, sizeof(id), key_bits, out, cap, out_len);
}

int pskgw_rot_uid(const char *seed, uint32_t device, char out[PSKGW_ROT_UID_LEN + 1])
{
    uint8_t raw[2 + 4 + UID_TAG_LEN] = { 0x00, 0x02 };
    if (!seed || !out)
        return PSKGW_EINVAL;
    put_be32(raw + 2, device);
    part_t parts[] = { { "uid", 3 }, { raw + 2, 4 } };
    int rc = derive(seed, parts, 2, raw + 6, UID_TAG_LEN);
    if (rc < 0)
        return rc;
    return pskgw_hex_encode(raw, sizeof(raw), out, PSKGW_ROT_UID_LEN + 1, true);
}

/* ---- E2E ---- */

size_t pskgw_rot_e2e_ki_len(int version)
{
    return version == PSKGW_ROT_E2E_V1   ? PSKGW_ROT_KI_V1_LEN
           : version == PSKGW_ROT_E2E_V2 ? PSKGW_ROT_KI_V2_LEN
                                         : 0;
}

size_t pskgw_rot_e2e_tag_len(int version)
{
    return version == PSKGW_ROT_E2E_V1   ? PSKGW_ROT_TAG_V1_LEN
           : version == PSKGW_ROT_E2E_V2 ? PSKGW_ROT_TAG_V2_LEN
                                         : 0;
}

size_t pskgw_rot_e2e_overhead(int version)
{
    return pskgw_rot_e2e_ki_len(version) + pskgw_rot_e2e_tag_len(version);
}

static int ki_tag(const char *seed, int version, uint32_t device, uint16_t counter, uint8_t *tag,
                  size_t tag_len)
{
    uint8_t msg[1 + 4 + 2];
    msg[0] = (uint8_t)version;
    put_be32(msg + 1, device);
    msg[5] = (uint8_t)(counter >> 8);
    msg[6] = (uint8_t)counter;
    part_t parts[] = { { "ki", 2 }, { msg, sizeof(msg) } };
    return derive(seed, parts, 2, tag, tag_len);
}

int pskgw_rot_e2e_ki(const char *seed, uint32_t device, int version, uint16_t counter, uint8_t *out,
                     size_t cap, size_t *out_len)
{
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    size_t n = pskgw_rot_e2e_ki_len(version);
    int rc;
    if (!seed || !out || !out_len || n == 0)
        return PSKGW_EINVAL;
    if (cap < n)
        return PSKGW_ETOOBIG;
    if (version == PSKGW_ROT_E2E_V1) {
        /* 11 01 | device (4) | tag (8) | counter (2) */
        ki[0] = 0x11;
        ki[1] = 0x01;
        put_be32(ki + 2, device);
        rc = ki_tag(seed, version, device, counter, ki + 6, KI_V1_TAG_LEN);
        ki[14] = (uint8_t)(counter >> 8);
        ki[15] = (uint8_t)counter;
    } else {
        /* 21 | device (4) | counter (2) | tag (4) */
        ki[0] = 0x21;
        put_be32(ki + 1, device);
        ki[5] = (uint8_t)(counter >> 8);
        ki[6] = (uint8_t)counter;
        rc = ki_tag(seed, version, device, counter, ki + 7, KI_V2_TAG_LEN);
    }
    if (rc < 0)
        return rc;
    memcpy(out, ki, n);
    *out_len = n;
    return 0;
}

int pskgw_rot_e2e_ki_check(const char *seed, const uint8_t *ki, size_t len,
                           pskgw_rot_ki_info_t *info)
{
    uint8_t tag[KI_V1_TAG_LEN];
    pskgw_rot_ki_info_t r;
    const uint8_t *have;
    size_t tag_len;
    if (!seed || (!ki && len) || !info)
        return PSKGW_EINVAL;
    if (len == 0)
        return PSKGW_ENOTFOUND;
    int version = ki[0] >> 4;
    if (pskgw_rot_e2e_ki_len(version) == 0 || len != pskgw_rot_e2e_ki_len(version))
        return PSKGW_ENOTFOUND;
    r.version = version;
    if (version == PSKGW_ROT_E2E_V1) {
        if (ki[0] != 0x11 || ki[1] != 0x01)
            return PSKGW_ENOTFOUND;
        r.device = get_be32(ki + 2);
        r.counter = (uint16_t)((ki[14] << 8) | ki[15]);
        have = ki + 6;
        tag_len = KI_V1_TAG_LEN;
    } else {
        if (ki[0] != 0x21)
            return PSKGW_ENOTFOUND;
        r.device = get_be32(ki + 1);
        r.counter = (uint16_t)((ki[5] << 8) | ki[6]);
        have = ki + 7;
        tag_len = KI_V2_TAG_LEN;
    }
    int rc = ki_tag(seed, version, r.device, r.counter, tag, tag_len);
    if (rc < 0)
        return rc;
    if (pskgw_memeq_ct(tag, have, tag_len) != 0)
        return PSKGW_ENOTFOUND;
    *info = r;
    return 0;
}

int pskgw_rot_e2e_ki_check_hex(const char *seed, const char *hex, size_t len,
                               pskgw_rot_ki_info_t *info)
{
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    size_t n = 0;
    if (!seed || !hex || !info)
        return PSKGW_EINVAL;
    if ((len != 2 * PSKGW_ROT_KI_V1_LEN && len != 2 * PSKGW_ROT_KI_V2_LEN) ||
        pskgw_hex_decode(hex, len, ki, sizeof(ki), &n) != 0)
        return PSKGW_EPARSE;
    return pskgw_rot_e2e_ki_check(seed, ki, n, info);
}

/* How a simulated module lays out and protects a V2 payload, per candidate (the gateway's table
 * is e2e/header.c; both must agree on the names and the extra bytes). */
typedef struct {
    const char *name;
    size_t extra_len; /* bytes between the KI and the ciphertext (value 0x00) */
    unsigned mac_bits;
    const char *suite;
} v2_layout_t;

static const v2_layout_t v2_layouts[PSKGW_ROT_V2_COUNT_] = {
    [PSKGW_ROT_V2_SEED] = { "seed", 0, 64, "AES_128_CCM_8" }, /* 11 + 8 = 19 bytes */
    [PSKGW_ROT_V2_PAD1] = { "pad1", 1, 128, "AES_128_CCM" },  /* 11 + 1 + 16 = 28 bytes */
};

static const v2_layout_t *v2_layout(pskgw_rot_v2_layout_t v2)
{
    return ((int)v2 >= 0 && v2 < PSKGW_ROT_V2_COUNT_) ? &v2_layouts[v2] : NULL;
}

int pskgw_rot_v2_layout_parse(const char *name, pskgw_rot_v2_layout_t *out)
{
    if (!name || !out)
        return PSKGW_EINVAL;
    for (int i = 0; i < PSKGW_ROT_V2_COUNT_; i++) {
        if (strcmp(v2_layouts[i].name, name) == 0) {
            *out = (pskgw_rot_v2_layout_t)i;
            return 0;
        }
    }
    return PSKGW_EINVAL;
}

const char *pskgw_rot_v2_layout_name(pskgw_rot_v2_layout_t v2)
{
    const v2_layout_t *l = v2_layout(v2);
    return l ? l->name : "unknown";
}

size_t pskgw_rot_e2e_extra_len_as(int version, pskgw_rot_v2_layout_t v2)
{
    const v2_layout_t *l = v2_layout(v2);
    return (version == PSKGW_ROT_E2E_V2 && l) ? l->extra_len : 0;
}

size_t pskgw_rot_e2e_overhead_as(int version, pskgw_rot_v2_layout_t v2)
{
    const v2_layout_t *l = v2_layout(v2);
    if (version == PSKGW_ROT_E2E_V1)
        return pskgw_rot_e2e_overhead(version);
    if (version != PSKGW_ROT_E2E_V2 || !l)
        return 0;
    return PSKGW_ROT_KI_V2_LEN + l->extra_len + l->mac_bits / 8;
}

int pskgw_rot_e2e_params_as(const char *seed, const uint8_t *ki, size_t len,
                            pskgw_rot_v2_layout_t v2, pskgw_rot_e2e_params_t *out)
{
    pskgw_rot_e2e_params_t p;
    const v2_layout_t *l = v2_layout(v2);
    if (!out || !l)
        return PSKGW_EINVAL;
    memset(&p, 0, sizeof(p));
    int rc = pskgw_rot_e2e_ki_check(seed, ki, len, &p.info);
    if (rc < 0)
        return rc;
    if (p.info.version == PSKGW_ROT_E2E_V1) {
        p.nonce_len = PSKGW_ROT_NONCE_V1_LEN;
        p.mac_bits = 128;
        p.cipher_suite = "AES_128_CCM";
    } else {
        p.nonce_len = PSKGW_ROT_NONCE_V2_LEN;
        p.mac_bits = l->mac_bits;
        p.cipher_suite = l->suite;
    }
    part_t kparts[] = { { "e2e-key", 7 }, { ki, len } };
    part_t nparts[] = { { "e2e-nonce", 9 }, { ki, len } };
    rc = derive(seed, kparts, 2, p.key, sizeof(p.key));
    if (rc == 0)
        rc = derive(seed, nparts, 2, p.nonce, p.nonce_len);
    if (rc == 0)
        *out = p;
    pskgw_rot_e2e_params_wipe(&p);
    return rc;
}

int pskgw_rot_e2e_params(const char *seed, const uint8_t *ki, size_t len,
                         pskgw_rot_e2e_params_t *out)
{
    return pskgw_rot_e2e_params_as(seed, ki, len, PSKGW_ROT_V2_SEED, out);
}

void pskgw_rot_e2e_params_wipe(pskgw_rot_e2e_params_t *p)
{
    if (!p)
        return;
    pskgw_wipe(p->key, sizeof(p->key));
    pskgw_wipe(p->nonce, sizeof(p->nonce));
}

int pskgw_rot_e2e_encrypt_as(const char *seed, uint32_t device, int version, uint16_t counter,
                             pskgw_rot_v2_layout_t v2, const uint8_t *pt, size_t len, uint8_t *out,
                             size_t cap, size_t *out_len)
{
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    size_t ki_len = 0, extra = pskgw_rot_e2e_extra_len_as(version, v2), body;
    pskgw_rot_e2e_params_t p;
    Aes aes;
    int aes_init = 0;
    int rc;

    if (!seed || !out || !out_len || (!pt && len) || pskgw_rot_e2e_overhead_as(version, v2) == 0)
        return PSKGW_EINVAL;
    if (len > PSKGW_ROT_E2E_MAX_PLAINTEXT || cap < len + pskgw_rot_e2e_overhead_as(version, v2))
        return PSKGW_ETOOBIG;
    memset(&p, 0, sizeof(p));
    rc = pskgw_rot_e2e_ki(seed, device, version, counter, ki, sizeof(ki), &ki_len);
    if (rc < 0)
        goto fail;
    rc = pskgw_rot_e2e_params_as(seed, ki, ki_len, v2, &p);
    if (rc < 0)
        goto fail;
    rc = PSKGW_ECRYPTO;
    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
        goto fail;
    aes_init = 1;
    if (wc_AesCcmSetKey(&aes, p.key, sizeof(p.key)) != 0)
        goto fail;
    size_t tag_len = p.mac_bits / 8;
    uint8_t scratch = 0; /* wolfCrypt wants non-NULL buffers even for an empty message */
    body = ki_len + extra;
    if (wc_AesCcmEncrypt(&aes, len ? out + body : &scratch, len ? pt : &scratch, (word32)len,
                         p.nonce, (word32)p.nonce_len, out + body + len, (word32)tag_len, NULL,
                         0) != 0)
        goto fail;
    memcpy(out, ki, ki_len);
    memset(out + ki_len, 0, extra);
    *out_len = body + len + tag_len;
    rc = 0;
fail:
    if (aes_init)
        wc_AesFree(&aes);
    pskgw_wipe(&aes, sizeof(aes));
    pskgw_rot_e2e_params_wipe(&p);
    return rc;
}

int pskgw_rot_e2e_encrypt_ctr(const char *seed, uint32_t device, int version, uint16_t counter,
                              const uint8_t *pt, size_t len, uint8_t *out, size_t cap,
                              size_t *out_len)
{
    return pskgw_rot_e2e_encrypt_as(seed, device, version, counter, PSKGW_ROT_V2_SEED, pt, len, out,
                                    cap, out_len);
}

int pskgw_rot_e2e_encrypt(const char *seed, uint32_t device, int version, const uint8_t *pt,
                          size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    return pskgw_rot_e2e_encrypt_ctr(seed, device, version, 0, pt, len, out, cap, out_len);
}
