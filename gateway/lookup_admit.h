/* pskgw_lookup_admit: admission of cold key lookups per source (pure; time injected; no I/O).
 *
 * A cold lookup is one the resolver cannot answer from memory (dtls/resolver.h: lookup() missed):
 * it costs a Redis read or a call to the security service, and the attacker nothing but a
 * plaintext ClientKeyExchange. Cached identities never come here: their handshakes go on
 * synchronously, so they never wait behind cold ones.
 *
 * Each cold lookup is taken with pskgw_lookup_admit_take() and ends with _release():
 *   - per source (pskgw_source_of: IPv4 address, IPv6 prefix) a token bucket bounds new cold
 *     lookups per second (refused beyond it: PSKGW_ERATELIMIT), at most `per_source` are at the
 *     resolver at once and at most `queue_per_source` more wait (refused beyond: PSKGW_EFULL);
 *   - all sources together have at most `in_flight` at the resolver. When that budget is the
 *     bottleneck, lookups wait in per-source queues served round-robin, one lookup per source
 *     per turn (deficit round robin with equal costs), so a source's share does not grow with
 *     the lookups it sends: a new device from another source waits for one turn of each busy
 *     source, not for a flood's whole queue;
 *   - `reserve` of the in_flight budget is kept for sources with a good record (a completed
 *     handshake within the window, pskgw_good_sources_t): sources without one use at most
 *     in_flight - reserve; waiting lookups of good sources are served first.
 * Lookups are given out in the order the budget allows: _take() says whether a lookup may go now;
 * after every _release() the caller asks _next() for the waiting lookups that may go now.
 *
 * Memory: one small record per source with lookups at the resolver or waiting (freed when it has
 * none), the good-record and rate tables fixed (listen_limits.h). Items are the caller's.
 * Threading: one loop; not thread-safe.
 */
#ifndef PSKGW_GATEWAY_LOOKUP_ADMIT_H
#define PSKGW_GATEWAY_LOOKUP_ADMIT_H

#include "gateway/listen_limits.h"

#include "common/list.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pskgw_lookup_admit pskgw_lookup_admit_t;
typedef struct pskgw_admit_src pskgw_admit_src_t;

typedef enum {
    PSKGW_ADMIT_IDLE = 0, /* not taken, or released */
    PSKGW_ADMIT_WAITING,  /* in its source's queue */
    PSKGW_ADMIT_GO        /* counted at the resolver: call it */
} pskgw_admit_state_t;

/* One lookup, embedded in the caller's request (owned by the caller; the admission links it
 * while WAITING or GO: it must stay in place until released). Zero it before the first take. */
typedef struct pskgw_admit_item {
    pskgw_list_t link; /* in its source's queue while WAITING */
    pskgw_admit_src_t *src;
    pskgw_admit_state_t state;
    bool good; /* given out from the good class */
} pskgw_admit_item_t;

typedef struct {
    uint32_t per_source;       /* at the resolver at once, per source (>= 1) */
    uint32_t queue_per_source; /* waiting per source (0: none wait, refused instead) */
    uint32_t per_source_per_s; /* new cold lookups per second per source; 0: unlimited */
    uint32_t burst;            /* bucket size of that rate (0: per_source_per_s) */
    uint32_t in_flight;        /* at the resolver at once, all sources (>= 1) */
    uint32_t reserve;          /* of in_flight, kept for good sources (< in_flight) */
    uint64_t good_window_ms;   /* a completed handshake makes its source good this long */
} pskgw_lookup_admit_opts_t;

typedef struct {
    uint64_t admitted;      /* lookups that went to the resolver at once */
    uint64_t queued;        /* lookups that waited in their source's queue */
    uint64_t dequeued;      /* waiting lookups given out later */
    uint64_t good;          /* lookups given out in the good class (at once or later) */
    uint64_t refused_rate;  /* refused: the source's per-second bound */
    uint64_t refused_queue; /* refused: the source's queue was full */
    uint64_t withdrawn;     /* waiting lookups released before their turn (handshake ended) */
    uint64_t in_flight;     /* gauge: at the resolver now */
    uint64_t waiting;       /* gauge: in the queues now */
    uint64_t sources;       /* gauge: sources with lookups at the resolver or waiting */
} pskgw_lookup_admit_counters_t;

/* seed: 2 * PSKGW_LIMIT_SEED_LEN random bytes (NULL: zeros, tests only). Errors: PSKGW_EINVAL
 * (per_source or in_flight 0, reserve >= in_flight), PSKGW_ENOMEM. */
int pskgw_lookup_admit_new(const pskgw_lookup_admit_opts_t *o, const uint8_t *seed,
                           pskgw_lookup_admit_t **out);
/* Frees the admission; items still taken are forgotten (their state is left as it was). */
void pskgw_lookup_admit_free(pskgw_lookup_admit_t *a);

/* A cold lookup from source src (len <= PSKGW_SOURCE_MAX) at now. Returns PSKGW_ADMIT_GO (call
 * the resolver now), PSKGW_ADMIT_WAITING (it waits: _next() gives it out later), or, with the
 * item left IDLE: PSKGW_ERATELIMIT (the source's per-second bound), PSKGW_EFULL (its queue is
 * full), PSKGW_ENOMEM, PSKGW_EINVAL (item not idle, bad source). */
int pskgw_lookup_admit_take(pskgw_lookup_admit_t *a, pskgw_admit_item_t *item, const uint8_t *src,
                            size_t len, uint64_t now);
/* The lookup ended (GO: the resolver answered or it was cancelled; WAITING: withdrawn before its
 * turn). The item becomes IDLE; a no-op for an IDLE item. Then call _next() until NULL. */
void pskgw_lookup_admit_release(pskgw_lookup_admit_t *a, pskgw_admit_item_t *item, uint64_t now);
/* A waiting lookup that may go now (its state becomes GO), or NULL. */
pskgw_admit_item_t *pskgw_lookup_admit_next(pskgw_lookup_admit_t *a, uint64_t now);

/* A handshake from src completed at now: the source has a good record for good_window_ms. */
void pskgw_lookup_admit_good(pskgw_lookup_admit_t *a, const uint8_t *src, size_t len, uint64_t now);

const pskgw_lookup_admit_counters_t *pskgw_lookup_admit_counters(const pskgw_lookup_admit_t *a);

#endif
