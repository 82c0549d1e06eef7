/* A reload's settings for a running listener (gateway/reload.c).
 *
 * The per-source admission limits (pskgw_listener_set_limits): applied to the handshakes that
 * start from now on; the sessions already there are not touched.
 *
 * The DTLS/TLS settings (pskgw_listener_dtls_t: timeouts, sizes, ciphers, cookie period, CID,
 * hibernation): they live in the listener's DTLS context (dtls/ctx.h). A reload makes a new
 * context (pskgw_listener_dtls_make, before anything changes: a reload is all or nothing) and
 * hands it to the listener (pskgw_listener_dtls_swap): new handshakes use it at once; every
 * session keeps the context it was made with (a reference per session, listen_internal.h), so
 * an established session keeps its cipher and sizes and goes on without a handshake; the old
 * context is freed with its last session. The idle timeout and hibernate_after_s apply to the
 * running sessions too (their next deadline, the sweep). Not applied to a running listener,
 * each logged by the swap: a cid_length other than the one its CIDs are routed by (sessions
 * with CIDs of the old length would lose their records: restart to change it; cid on/off
 * applies to new handshakes). A handshake whose HelloVerifyRequest came from the old context
 * gets a new one (one more round trip: the cookie secret is the context's).
 *
 * What is NOT applied to a running listener: the lookup admission's bounds (lookups_in_flight
 * and the per-source lookup limits), whose queues hold waiting lookups sized by them. A
 * listener started by a reload (new, or changed address/port/framing/forwarding) takes
 * everything.
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

/* The DTLS/TLS settings of a listener (the configuration's meaning: UINT32_MAX hibernation
 * off; 0 takes the listener's default, as in pskgw_listener_opts_t). */
typedef struct {
    const char *ciphers; /* NULL: the default list */
    size_t max_message;
    size_t max_identity_len;
    size_t max_parked_bytes;
    uint32_t handshake_timeout_ms;
    uint32_t half_open_timeout_ms;
    uint32_t idle_timeout_s;
    uint32_t cookie_rotate_s;
    uint32_t hibernate_after_s; /* UDP; UINT32_MAX: off */
    uint8_t cid_len;            /* UDP; 0: off */
} pskgw_listener_dtls_t;

/* Makes the context l would use with o (l unchanged): its other settings (protocol, framing,
 * worker, ticket keys) are l's. *out: a new context (one reference) for
 * pskgw_listener_dtls_swap, or pskgw_dtls_ctx_free. Errors: those of pskgw_dtls_ctx_new (*why
 * says which, static string). */
int pskgw_listener_dtls_make(const pskgw_listener_t *l, const pskgw_listener_dtls_t *o,
                             pskgw_dtls_ctx_t **out, const char **why);

/* Gives l the context ctx (made by pskgw_listener_dtls_make with o; l takes its reference) and
 * applies o's idle timeout and hibernation to the running sessions: those idle past the new
 * idle timeout end (close_notify), the others get their deadline from it. Logs, under the
 * domain's and the listener's names, what changed and anything not applied (see above).
 * Synchronous. */
void pskgw_listener_dtls_swap(pskgw_listener_t *l, const pskgw_listener_dtls_t *o,
                              pskgw_dtls_ctx_t *ctx);

/* After pskgw_listener_set_tickets() with a reload's keys: the listener's session-ID cache takes
 * their session_cache size (pskgw_ticket_ctx_apply_session_cache(): 0 empties it, a smaller size
 * drops the least recently used, all wiped; *evicted says how many went). 0,
 * PSKGW_EUNSUPPORTED (the listener's context was made without a cache: a size above 0 applies to
 * a listener started from then on or after a restart), PSKGW_ENOMEM (unchanged). */
int pskgw_listener_apply_session_cache(pskgw_listener_t *l, size_t *evicted);

/* Replace the admission limits (pskgw_listener_limits_t) on l (synchronous; counters and per-source state kept: a source's
 * bucket refills toward the new burst, failure levels leak at the new rate). */
void pskgw_listener_set_limits(pskgw_listener_t *l, const pskgw_listener_limits_t *lim);

#endif
