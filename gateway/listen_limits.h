/* Listener limits with bounded memory and injected time (pure; unit-tested):
 *  - a per-source-IP token bucket for new handshakes (refilled at per_s tokens per second, holding
 *    at most burst tokens; a new source starts with a full bucket);
 *  - a per-identity failure counter that blocks an identity for a while.
 * Both are direct-mapped tables of fixed size: a colliding newcomer replaces the old entry,
 * which can only make a limit more lenient for that entry, never grow memory; an identity
 * block in force is never replaced (the newcomer then goes uncounted until it ends). */
#ifndef PSKGW_GATEWAY_LISTEN_LIMITS_H
#define PSKGW_GATEWAY_LISTEN_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSKGW_LIMIT_SLOTS 1024

typedef struct {
    uint8_t addr[17]; /* family byte + up to 16 address bytes */
    bool used;
    uint64_t tokens_milli; /* tokens * 1000 (per_s * 1000 does not fit 32 bits) */
    uint64_t last_ms;
} pskgw_rate_slot_t;

typedef struct {
    uint32_t per_s; /* 0: unlimited */
    uint32_t burst; /* bucket size */
    pskgw_rate_slot_t slots[PSKGW_LIMIT_SLOTS];
} pskgw_rate_limit_t;

/* per_s: tokens per second per source (0: unlimited); burst: the bucket size, i.e. handshakes
 * a source may start at once (0: the same as per_s). */
void pskgw_rate_limit_init(pskgw_rate_limit_t *r, uint32_t per_s, uint32_t burst);
/* addr: family byte then the address (4 or 16 bytes), len <= 17. true when allowed (a token is
 * taken), false when over the rate. */
bool pskgw_rate_limit_take(pskgw_rate_limit_t *r, const uint8_t *addr, size_t len, uint64_t now);

typedef struct {
    uint64_t hash;
    uint32_t failures;
    uint64_t window_start;
    uint64_t blocked_until;
} pskgw_ident_slot_t;

typedef struct {
    uint32_t max_failures; /* 0: never block */
    uint64_t period_ms;    /* failures counted within; also the block duration */
    pskgw_ident_slot_t slots[PSKGW_LIMIT_SLOTS];
} pskgw_ident_block_t;

void pskgw_ident_block_init(pskgw_ident_block_t *b, uint32_t max_failures, uint64_t period_ms);
/* true if the identity is blocked now. */
bool pskgw_ident_block_check(pskgw_ident_block_t *b, const char *identity, uint64_t now);
/* Records a failed handshake; returns true when this failure starts a block. */
bool pskgw_ident_block_fail(pskgw_ident_block_t *b, const char *identity, uint64_t now);

#endif
