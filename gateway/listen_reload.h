/* A reload's limits for a running listener (gateway/reload.c): the per-source admission limits,
 * applied to the handshakes that start from now on; the sessions already there are not
 * touched.
 *
 * What is NOT applied to a running listener (it keeps them until it is replaced or the process
 * restarts): the handshake, half-open and idle timeouts, max_identity_len, max_parked_bytes,
 * max_message_bytes and the ciphers live in the listener's DTLS context (dtls/ctx.h), which
 * every live session borrows until the listener closes (replacing it would need a context
 * reference per session); and the lookup admission's bounds (lookups_in_flight and the per-source
 * lookup limits), whose queues hold waiting lookups sized by them. A listener started by a
 * reload (new, or changed address/port/framing) takes everything.
 */
#ifndef PSKGW_GATEWAY_LISTEN_RELOAD_H
#define PSKGW_GATEWAY_LISTEN_RELOAD_H

#include "gateway/listen_api.h"

#include <stdint.h>

/* The configuration's meaning: 0 is "unlimited" / "off" where the config says so. */
typedef struct {
    uint32_t max_sessions;           /* 0: the listener's default */
    uint32_t max_pending_handshakes; /* 0: the listener's default */
    uint32_t handshakes_per_s;       /* per source; 0: unlimited */
    uint32_t handshake_burst;        /* 0: handshakes_per_s */
    uint32_t identity_fail_max;      /* 0: off */
    uint32_t source_fail_max;        /* 0: off */
    uint32_t fail_period_s;          /* 0: the listener's default (300) */
    uint32_t half_open_per_source;   /* 0: unlimited */
    uint32_t ipv6_source_prefix;     /* 1..128; 0: 64 */
} pskgw_listener_limits_t;

/* Replace the limits above on l (synchronous; counters and per-source state kept: a source's
 * bucket refills toward the new burst, failure levels leak at the new rate). */
void pskgw_listener_set_limits(pskgw_listener_t *l, const pskgw_listener_limits_t *lim);

#endif
