/* pskgw_ticket_keys: RFC 5077 session tickets whose keys every gateway of a domain derives from
 * the same shared secrets, so a device resumes on whichever gateway it reaches, without GetPSK.
 *
 * Keys: for each secret S (current first, then previous ones), HKDF-SHA256 (RFC 5869, salt
 * "pskgw-ticket-v1") gives a 16-byte key name (info "name") and a 32-byte AES-256-GCM key (info
 * "aes-256-gcm"). Tickets are sealed under the first secret; a ticket is opened under whichever
 * secret its key name selects (and a new ticket under the current secret is issued with it).
 *
 * The ticket carries, after wolfSSL's own state, an extension sealed with it: issue time (wall
 * clock seconds), the session's identity (its hex as bytes) and ROTPublicUID (its bytes when it
 * is hex, else its characters). It fits in the WOLFSSL_TICKET_EXTRA_PADDING_SZ bytes wolfSSL
 * leaves for it (70 in pskgw's profile, scripts/wolfssl-profile; wolfSSL's default is 32):
 * identity bytes + uid bytes <= 63, so the longest identity the modules send (32 bytes) fits with
 * any hex uid pskgw accepts (up to 31 bytes). A session whose identity and uid do not fit gets a
 * ticket marked as not resumable: opening it is refused (a full handshake, counted unsealed).
 *
 * Opening a ticket (wolfSSL's decrypt callback) sets the session's identity and uid, so the
 * envelope of a resumed session is complete. The identity then meets the checks of a full
 * handshake's: the owner's PSKGW_DTLS_EV_IDENTITY (refusal: blocked) and the resolver's
 * lookup() (PSKGW_EDENIED: deny_file, a denied ROTPublicUID); refused, counted `refused`.
 * Refused: unknown key name, a failed GCM check or a non-zero byte in the IV's last 4 or the
 * MAC's last 16 (GCM uses 12 and 16 of wolfSSL's 16 and 32; the rest are sealed as zeros),
 * expired (older than lifetime_s or issued in the future by more than 300 s), unsealed; each
 * refusal is counted and leads to a full handshake.
 *
 * Session-ID resumption (RFC 5246 7.3, for clients that send no ticket extension): with
 * pskgw_ticket_keys_set_session_cache(k, n > 0), every context made with k keeps a cache of n
 * sessions (dtls/sidcache.h; one per context, i.e. per listener, so a session ID of another
 * listener or domain is never found) filled at the end of each full handshake that issued no
 * ticket, for the ticket lifetime. A ClientHello with a cached session ID resumes with an
 * abbreviated handshake and no lookup; its identity and uid come from the cache and meet the
 * same checks as a ticket's. Does no I/O; one thread; no locks.
 */
#ifndef PSKGW_DTLS_TICKET_H
#define PSKGW_DTLS_TICKET_H

#include <stddef.h>
#include <stdint.h>

#define PSKGW_TICKET_MAX_SECRETS 4
#define PSKGW_TICKET_SECRET_MIN  16 /* bytes */
#define PSKGW_TICKET_SECRET_MAX  256

typedef struct pskgw_ticket_keys pskgw_ticket_keys_t;

typedef struct {
    uint64_t sealed;         /* tickets issued */
    uint64_t opened;         /* tickets accepted (resumption follows) */
    uint64_t unknown_key;    /* key name matches no secret (rotated out, another domain) */
    uint64_t expired;        /* older than the lifetime */
    uint64_t bad;            /* GCM check failed or malformed */
    uint64_t unsealed;       /* identity/uid did not fit: not resumable */
    uint64_t refused;        /* opened, but the identity is blocked or denied now */
    uint64_t resumed_ticket; /* handshakes that ended resumed from a ticket (session.c) */
    uint64_t resumed_id;     /* handshakes that ended resumed from a session id */
    uint64_t full;           /* handshakes that ended full */
    /* The session-ID caches of the contexts using these keys. */
    uint64_t sid_stored;  /* full handshakes' sessions stored */
    uint64_t sid_found;   /* session IDs found (an abbreviated handshake follows) */
    uint64_t sid_unknown; /* session IDs offered and not found: unknown, expired, evicted */
    uint64_t sid_expired; /* entries dropped once past the lifetime */
    uint64_t sid_evicted; /* live entries dropped to make room (session_cache too small, or made
                             smaller by a reload) */
    uint64_t sid_refused; /* found, but the identity is blocked or denied now */
} pskgw_ticket_stats_t;

/* Derives the keys. secrets[0] is the current one. lifetime_s: ticket lifetime (1..604800).
 * Errors: PSKGW_EINVAL (n 0 or above PSKGW_TICKET_MAX_SECRETS, a secret shorter than
 * PSKGW_TICKET_SECRET_MIN or longer than PSKGW_TICKET_SECRET_MAX, bad lifetime), PSKGW_ENOMEM,
 * PSKGW_ECRYPTO. The secrets are not kept (the caller wipes them). */
int pskgw_ticket_keys_new(const uint8_t *const *secrets, const size_t *lens, size_t n,
                          uint32_t lifetime_s, pskgw_ticket_keys_t **out);
/* Reference counted: _new gives one reference, a context using the keys holds one (so keys
 * replaced by a reload live until the last context made with them is freed). _free drops one;
 * the last wipes and frees. NULL accepted. */
pskgw_ticket_keys_t *pskgw_ticket_keys_ref(pskgw_ticket_keys_t *k);
void pskgw_ticket_keys_free(pskgw_ticket_keys_t *k);

uint32_t pskgw_ticket_keys_lifetime(const pskgw_ticket_keys_t *k);
/* Entries of the session-ID cache of each context made with k from now on (0, the default: no
 * session-ID resumption; at most PSKGW_SIDCACHE_MAX, dtls/sidcache.h). Errors: PSKGW_EINVAL. */
int pskgw_ticket_keys_set_session_cache(pskgw_ticket_keys_t *k, uint32_t entries);
uint32_t pskgw_ticket_keys_session_cache(const pskgw_ticket_keys_t *k);
/* Counters (borrowed; live as long as k). */
pskgw_ticket_stats_t *pskgw_ticket_keys_stats(pskgw_ticket_keys_t *k);

struct pskgw_dtls_ctx;
/* A reload's session_cache on a running context whose keys were just replaced
 * (pskgw_dtls_ctx_set_tickets()): its session-ID cache takes the size of its keys now. 0: every
 * entry goes and no session ID is stored or resumed from then on; below the entries held: the
 * least recently used go; above: room for more. Entries that go are wiped and counted as
 * sid_evicted; *evicted (may be NULL) says how many. 0, PSKGW_EUNSUPPORTED (the context was made
 * without a cache, so wolfSSL issues it no session IDs: a size above 0 takes a new context),
 * PSKGW_EINVAL, PSKGW_ENOMEM (the cache unchanged). */
int pskgw_ticket_ctx_apply_session_cache(struct pskgw_dtls_ctx *ctx, size_t *evicted);
/* Wall clock in seconds used for issue times and expiry; NULL: time(). Tests. */
void pskgw_ticket_keys_set_clock(pskgw_ticket_keys_t *k, uint64_t (*wall_s)(void));

#endif
