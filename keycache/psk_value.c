#include "keycache/psk_value.h"

#include "common/err.h"

#include <string.h>

static int uid_ok(const uint8_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (u[i] < 0x21 || u[i] > 0x7e)
            return 0;
    return 1;
}

int pskgw_keycache_psk_value_encode(const uint8_t *psk, size_t psk_len, const char *uid,
                                    uint8_t *out, size_t cap, size_t *out_len)
{
    size_t ul;
    size_t n;

    if (!psk || !uid || !out || !out_len || psk_len == 0 || psk_len > PSKGW_KEYCACHE_PSK_MAX)
        return PSKGW_EINVAL;
    ul = strnlen(uid, PSKGW_KEYCACHE_UID_MAX + 1);
    if (ul > PSKGW_KEYCACHE_UID_MAX || !uid_ok((const uint8_t *)uid, ul))
        return PSKGW_EINVAL;
    n = 3 + psk_len + ul;
    if (cap < n)
        return PSKGW_ETOOBIG;
    out[0] = 0x01;
    out[1] = (uint8_t)psk_len;
    memcpy(out + 2, psk, psk_len);
    out[2 + psk_len] = (uint8_t)ul;
    memcpy(out + 3 + psk_len, uid, ul);
    *out_len = n;
    return 0;
}

int pskgw_keycache_psk_value_decode(const uint8_t *in, size_t len, uint8_t *psk, size_t psk_cap,
                                    size_t *psk_len, char *uid, size_t uid_cap)
{
    size_t pl;
    size_t ul;

    if ((!in && len) || !psk || !psk_len || !uid)
        return PSKGW_EINVAL;
    if (len < 3 || in[0] != 0x01)
        return PSKGW_EPARSE;
    pl = in[1];
    if (pl == 0 || pl > PSKGW_KEYCACHE_PSK_MAX || len < 3 + pl)
        return PSKGW_EPARSE;
    ul = in[2 + pl];
    if (ul > PSKGW_KEYCACHE_UID_MAX || len != 3 + pl + ul || !uid_ok(in + 3 + pl, ul))
        return PSKGW_EPARSE;
    if (pl > psk_cap || ul + 1 > uid_cap)
        return PSKGW_ETOOBIG;
    memcpy(psk, in + 2, pl);
    *psk_len = pl;
    memcpy(uid, in + 3 + pl, ul);
    uid[ul] = '\0';
    return 0;
}
