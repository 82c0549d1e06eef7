/* pskgw-devsim: what each simulated device holds, taken from the shared derivation library
 * (tools/rotkeys, the same one pskgw-sim serves from), plus the deliberately bad devices.
 *
 * Kinds, assigned deterministically and spread evenly over the fleet by index:
 *   GOOD       identity and PSK as the simulated service knows them;
 *   UNKNOWN    an identity of the right shape whose tag is corrupted, or (unknown_base given) the
 *              valid identity of index unknown_base + index, beyond the service's --devices
 *              (pskgw-sim answers 404 either way);
 *   WRONG_PSK  a known identity with a PSK whose first byte has every bit flipped.
 * Pure functions; 0 or a negative PSKGW_E* code; out-parameters written only on success.
 */
#ifndef PSKGW_TOOLS_DEVSIM_CREDS_H
#define PSKGW_TOOLS_DEVSIM_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/rotkeys/rotkeys.h"

typedef enum {
    PSKGW_DEVSIM_GOOD = 0,
    PSKGW_DEVSIM_UNKNOWN = 1,
    PSKGW_DEVSIM_WRONG_PSK = 2,
} pskgw_devsim_kind_t;

/* Holds a PSK: wipe with pskgw_devsim_creds_wipe(). */
typedef struct {
    pskgw_devsim_kind_t kind;
    char identity[PSKGW_ROT_IDENTITY_HEX_LEN + 1]; /* ASCII upper-case hex, as the modules send */
    size_t identity_len;
    uint8_t psk[PSKGW_ROT_PSK_MAX_LEN];
    size_t psk_len;
} pskgw_devsim_creds_t;

/* The kind of device `index` among `count`, for shares unknown_share + wrong_share <= 1:
 * exactly floor(count * share) devices of each bad kind (up to rounding), spread evenly. */
pskgw_devsim_kind_t pskgw_devsim_kind_of(uint32_t index, double unknown_share, double wrong_share);

/* Credentials of device `index` of kind `kind`; psk_bits 128 or 256; unknown_base as above
 * (UINT64_MAX: corrupt the tag instead).
 * Errors from pskgw_rot_identity_hex / pskgw_rot_psk (PSKGW_EINVAL, PSKGW_ECRYPTO). */
int pskgw_devsim_creds_get(const char *seed, uint32_t index, pskgw_devsim_kind_t kind,
                           unsigned psk_bits, uint64_t unknown_base, pskgw_devsim_creds_t *out);

/* Same, with a fresh identity and PSK for handshake `session` when per_session is true (the
 * device's session identity from tools/rotkeys, as AT+USECPSK gives a new pair per call); the bad
 * kinds are made bad the same way. per_session false: exactly pskgw_devsim_creds_get(). */
int pskgw_devsim_creds_get_session(const char *seed, uint32_t index, pskgw_devsim_kind_t kind,
                                   unsigned psk_bits, uint64_t unknown_base, bool per_session,
                                   uint32_t session, pskgw_devsim_creds_t *out);

void pskgw_devsim_creds_wipe(pskgw_devsim_creds_t *c);

#endif
