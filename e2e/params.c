#include "e2e/params.h"

#include "common/err.h"
#include "common/wipe.h"

#include <string.h>

#define PARAMS_FORMAT_V1 0x01

int pskgw_e2e_suite_parse(const char *s, size_t len, pskgw_e2e_suite_t *out)
{
    static const char ccm[] = "AES_128_CCM";
    static const char ccm8[] = "AES_128_CCM_8";

    if (!s || !out)
        return PSKGW_EINVAL;
    if (len == sizeof(ccm) - 1 && memcmp(s, ccm, len) == 0) {
        *out = PSKGW_E2E_SUITE_AES_128_CCM;
        return 0;
    }
    if (len == sizeof(ccm8) - 1 && memcmp(s, ccm8, len) == 0) {
        *out = PSKGW_E2E_SUITE_AES_128_CCM_8;
        return 0;
    }
    return PSKGW_EUNSUPPORTED;
}

const char *pskgw_e2e_suite_name(pskgw_e2e_suite_t suite)
{
    switch (suite) {
    case PSKGW_E2E_SUITE_AES_128_CCM:
        return "AES_128_CCM";
    case PSKGW_E2E_SUITE_AES_128_CCM_8:
        return "AES_128_CCM_8";
    }
    return "unknown";
}

static int uid_ok(const char *uid, size_t cap)
{
    size_t n = 0;

    while (n < cap && uid[n] != '\0') {
        unsigned char c = (unsigned char)uid[n];
        if (c < 0x21 || c > 0x7e)
            return 0;
        n++;
    }
    return n < cap; /* NUL-terminated within the array */
}

int pskgw_e2e_params_check(const pskgw_e2e_params_t *p)
{
    if (!p)
        return PSKGW_EINVAL;
    if (p->nonce_len < PSKGW_E2E_NONCE_MIN_LEN || p->nonce_len > PSKGW_E2E_NONCE_MAX_LEN)
        return PSKGW_EINVAL;
    switch (p->suite) {
    case PSKGW_E2E_SUITE_AES_128_CCM:
        if (p->mac_bits != 128)
            return PSKGW_EINVAL;
        break;
    case PSKGW_E2E_SUITE_AES_128_CCM_8:
        if (p->mac_bits != 64)
            return PSKGW_EINVAL;
        break;
    default:
        return PSKGW_EINVAL;
    }
    if (!uid_ok(p->rot_uid, sizeof(p->rot_uid)))
        return PSKGW_EINVAL;
    return 0;
}

void pskgw_e2e_params_wipe(pskgw_e2e_params_t *p)
{
    if (p)
        pskgw_wipe(p, sizeof(*p));
}

int pskgw_e2e_params_encode(const pskgw_e2e_params_t *p, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t uid_len;
    size_t need;
    size_t o = 0;

    if (!p || !out || !out_len || pskgw_e2e_params_check(p) != 0)
        return PSKGW_EINVAL;
    uid_len = strlen(p->rot_uid);
    need = 5 + PSKGW_E2E_KEY_LEN + p->nonce_len + 1 + uid_len;
    if (cap < need)
        return PSKGW_ETOOBIG;
    out[o++] = PARAMS_FORMAT_V1;
    out[o++] = (uint8_t)p->suite;
    out[o++] = (uint8_t)(p->mac_bits >> 8);
    out[o++] = (uint8_t)(p->mac_bits & 0xff);
    out[o++] = (uint8_t)p->nonce_len;
    memcpy(out + o, p->key, PSKGW_E2E_KEY_LEN);
    o += PSKGW_E2E_KEY_LEN;
    memcpy(out + o, p->nonce, p->nonce_len);
    o += p->nonce_len;
    out[o++] = (uint8_t)uid_len;
    memcpy(out + o, p->rot_uid, uid_len);
    o += uid_len;
    *out_len = o;
    return 0;
}

int pskgw_e2e_params_decode(const uint8_t *in, size_t len, pskgw_e2e_params_t *out)
{
    pskgw_e2e_params_t p;
    size_t o = 0;
    size_t uid_len;
    int rc = PSKGW_EPARSE;

    if (!in || !out)
        return PSKGW_EINVAL;
    memset(&p, 0, sizeof(p));
    if (len < 5 + PSKGW_E2E_KEY_LEN + 1 || in[0] != PARAMS_FORMAT_V1)
        goto fail;
    p.suite = (pskgw_e2e_suite_t)in[1];
    p.mac_bits = ((unsigned)in[2] << 8) | in[3];
    p.nonce_len = in[4];
    o = 5;
    if (p.nonce_len < PSKGW_E2E_NONCE_MIN_LEN || p.nonce_len > PSKGW_E2E_NONCE_MAX_LEN)
        goto fail;
    if (len - o < PSKGW_E2E_KEY_LEN + p.nonce_len + 1)
        goto fail;
    memcpy(p.key, in + o, PSKGW_E2E_KEY_LEN);
    o += PSKGW_E2E_KEY_LEN;
    memcpy(p.nonce, in + o, p.nonce_len);
    o += p.nonce_len;
    uid_len = in[o++];
    if (uid_len > PSKGW_E2E_UID_MAX_LEN || len - o != uid_len)
        goto fail;
    for (size_t i = 0; i < uid_len; i++) {
        if (in[o + i] < 0x21 || in[o + i] > 0x7e) /* no NUL inside: encode(decode(x)) == x */
            goto fail;
    }
    memcpy(p.rot_uid, in + o, uid_len);
    p.rot_uid[uid_len] = '\0';
    if (pskgw_e2e_params_check(&p) != 0)
        goto fail;
    *out = p;
    rc = 0;
fail:
    pskgw_e2e_params_wipe(&p);
    return rc;
}

int pskgw_e2e_params_decode_hook(void *arg, const uint8_t *in, size_t len, void *out)
{
    (void)arg;
    return pskgw_e2e_params_decode(in, len, out);
}
