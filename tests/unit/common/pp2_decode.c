#include "pp2_decode.h"

#include "common/proxyv2.h"

#include <string.h>

static int tlvs(const uint8_t *p, size_t n, pp2_decoded_t *d)
{
    while (n > 0) {
        size_t vlen;
        char *dst;

        if (n < 3)
            return -1;
        vlen = (size_t)p[1] << 8 | p[2];
        if (vlen > n - 3)
            return -1;
        dst = p[0] == PSKGW_PP2_TYPE_IDENTITY  ? d->identity
              : p[0] == PSKGW_PP2_TYPE_ROT_UID ? d->rot_uid
                                               : NULL;
        if (dst != NULL) {
            if (vlen >= sizeof(d->identity))
                return -1;
            memcpy(dst, p + 3, vlen);
            dst[vlen] = '\0';
        }
        d->ntlv++;
        p += 3 + vlen;
        n -= 3 + vlen;
    }
    return 0;
}

int pp2_decode(const uint8_t *p, size_t n, pp2_decoded_t *d)
{
    size_t len, a;

    memset(d, 0, sizeof(*d));
    if (n < PSKGW_PP2_HDR_LEN || memcmp(p, pskgw_pp2_signature, PSKGW_PP2_SIG_LEN) != 0)
        return -1;
    d->ver_cmd = p[12];
    d->fam = p[13];
    len = (size_t)p[14] << 8 | p[15];
    if ((d->ver_cmd & 0xF0) != 0x20 || n < PSKGW_PP2_HDR_LEN + len)
        return -1;
    d->header_len = PSKGW_PP2_HDR_LEN + len;
    p += PSKGW_PP2_HDR_LEN;
    if (d->ver_cmd == 0x20)
        return tlvs(p, len, d);
    a = (d->fam >> 4) == 1 ? 4 : (d->fam >> 4) == 2 ? 16 : 0;
    if (a == 0 || len < 2 * a + 4)
        return -1;
    d->addr_len = a;
    memcpy(d->src, p, a);
    memcpy(d->dst, p + a, a);
    d->src_port = (uint16_t)(p[2 * a] << 8 | p[2 * a + 1]);
    d->dst_port = (uint16_t)(p[2 * a + 2] << 8 | p[2 * a + 3]);
    return tlvs(p + 2 * a + 4, len - 2 * a - 4, d);
}
