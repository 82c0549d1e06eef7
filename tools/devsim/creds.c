/* pskgw-devsim: device credentials from pskgw_rotkeys (see creds.h). */
#include "tools/devsim/creds.h"

#include <math.h>
#include <string.h>

#include "common/err.h"
#include "common/wipe.h"

/* 1 when the step from i to i+1 crosses an integer multiple of 1/share. */
static int hit(uint64_t i, double share)
{
    return floor((double)(i + 1) * share) > floor((double)i * share);
}

pskgw_devsim_kind_t pskgw_devsim_kind_of(uint32_t index, double unknown_share, double wrong_share)
{
    double bad = unknown_share + wrong_share;
    if (bad <= 0.0 || !hit(index, bad))
        return PSKGW_DEVSIM_GOOD;
    /* The k-th bad device: unknown or wrong PSK, interleaved in proportion. */
    uint64_t k = (uint64_t)floor((double)index * bad);
    return hit(k, unknown_share / bad) ? PSKGW_DEVSIM_UNKNOWN : PSKGW_DEVSIM_WRONG_PSK;
}

int pskgw_devsim_creds_get(const char *seed, uint32_t index, pskgw_devsim_kind_t kind,
                           unsigned psk_bits, uint64_t unknown_base, pskgw_devsim_creds_t *out)
{
    return pskgw_devsim_creds_get_session(seed, index, kind, psk_bits, unknown_base, false, 0, out);
}

int pskgw_devsim_creds_get_session(const char *seed, uint32_t index, pskgw_devsim_kind_t kind,
                                   unsigned psk_bits, uint64_t unknown_base, bool per_session,
                                   uint32_t session, pskgw_devsim_creds_t *out)
{
    if (seed == NULL || out == NULL)
        return PSKGW_EINVAL;
    pskgw_devsim_creds_t c;
    memset(&c, 0, sizeof(c));
    c.kind = kind;
    if (kind == PSKGW_DEVSIM_UNKNOWN && unknown_base != UINT64_MAX) {
        if (unknown_base + index > UINT32_MAX)
            return PSKGW_EINVAL;
        index = (uint32_t)(unknown_base + index);
    }
    int rc = per_session ? pskgw_rot_identity_session_hex(seed, index, session, c.identity)
                         : pskgw_rot_identity_hex(seed, index, c.identity);
    if (rc < 0)
        goto fail;
    c.identity_len = strlen(c.identity);
    rc = pskgw_rot_identity_psk_hex(seed, c.identity, c.identity_len, psk_bits, c.psk,
                                    sizeof(c.psk), &c.psk_len);
    if (rc < 0)
        goto fail;
    if (kind == PSKGW_DEVSIM_UNKNOWN && unknown_base == UINT64_MAX) {
        /* Flip the low bit of the last hex digit: same shape, tag no longer matches. */
        char *d = &c.identity[c.identity_len - 1];
        static const char hexd[] = "0123456789ABCDEF";
        unsigned v = (unsigned)(strchr(hexd, *d) - hexd);
        *d = hexd[(v ^ 1u) & 15u];
    } else if (kind == PSKGW_DEVSIM_WRONG_PSK) {
        c.psk[0] ^= 0xFF;
    }
    *out = c;
    pskgw_wipe(&c, sizeof(c));
    return 0;
fail:
    pskgw_wipe(&c, sizeof(c));
    return rc;
}

void pskgw_devsim_creds_wipe(pskgw_devsim_creds_t *c)
{
    if (c != NULL)
        pskgw_wipe(c, sizeof(*c));
}
