/* One customer domain inside the gateway: its upstream client, PSK and E2E caches, E2E
 * processor, sink set and listeners, wired together. Only gateway/ knows all these modules.
 *
 *   listener --message--> e2e (params: e2e cache -> upstream GetE2EDecryptionParameters)
 *            --envelope--> sink set --all accepted--> optional ack record back to the device
 *   listener --identity--> resolver = PSK cache -> upstream GetPSK
 *
 * Ownership: the app owns each domain; the domain owns every module object it creates and
 * closes them in dependency order in pskgw_domain_close(). The domain config is borrowed and
 * must outlive the domain.
 */
#ifndef PSKGW_GATEWAY_DOMAIN_H
#define PSKGW_GATEWAY_DOMAIN_H

#include "config/config.h"
#include "gateway/metrics.h"
#include "keycache/psk_identity.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct pskgw_domain pskgw_domain_t;

/* Counters of the domain's message path (the modules count their own). */
typedef struct {
    uint64_t forwarded;           /* messages handed to the sink set */
    uint64_t rejected_e2e;        /* messages the E2E stage rejected (uid_mismatch and rejected
                                  replays included) */
    uint64_t e2e_uid_mismatch;    /* decrypted, but the parameters' ROTPublicUID is not the
                                  session's: rejected */
    uint64_t e2e_replays;         /* a key identity seen again from the same device (flagged or
                                  rejected) */
    uint64_t e2e_replay_rejected; /* replays rejected (e2e_replay = "reject") */
    /* PSK identities no module can produce, refused before any lookup, by reason */
    uint64_t identities_refused[PSKGW_PSK_ID_REASON_COUNT_];
    uint64_t identities_denied; /* in the domain's deny_file (identity, or the ROTPublicUID its
                                   key came with) */
    uint64_t submit_failed;     /* the sink set refused a message (counted and logged) */
    uint64_t sink_failed;       /* the sink set could not deliver or spool a message */
    uint64_t acks_sent;         /* acknowledgement records sent to devices */
    uint64_t acks_undelivered;  /* acknowledgements whose session had ended */
} pskgw_domain_counters_t;

/* Build and start the domain on loop. worker >= 0 makes the listeners share their ports
 * (SO_REUSEPORT) and names spools per worker. Errors are logged with the domain's name:
 * PSKGW_ECONFIG, PSKGW_EIO, PSKGW_ENOMEM, or a module's code. On error nothing is left running
 * (the partially built domain is closed; *out untouched), but the loop must still be run for
 * the close callbacks: the caller runs it to completion after a failed start. */
int pskgw_domain_start(uv_loop_t *loop, const pskgw_config_domain_t *cfg, int worker,
                       pskgw_domain_t **out);
/* The same, for a start that must know when a failed domain is gone (a reload keeps the
 * configuration alive for that close). On error *later says whether failed_cb(arg) fires: true
 * when a partially built domain is closing (cb once it is freed, from a libuv callback; cfg must
 * stay valid until then), false when nothing was made (out of memory at once). */
int pskgw_domain_start_cb(uv_loop_t *loop, const pskgw_config_domain_t *cfg, int worker,
                          pskgw_domain_t **out, void (*failed_cb)(void *arg), void *arg,
                          bool *later);
/* SIGHUP: reopen file sinks and dead-letter files. */
void pskgw_domain_reopen(pskgw_domain_t *d);
/* Render the metrics of n domains (all their modules) into m, one family at a time as the
 * Prometheus text format requires. */
void pskgw_domain_metrics(pskgw_domain_t *const *domains, size_t n, pskgw_metrics_t *m);
/* Healthy: every listener is running and no sink dropped a message (queue and spool full, or
 * spool unusable) in the last PSKGW_DOMAIN_DROP_HOLD_MS. Call it regularly (the app does, once a
 * second): it notices new drops by comparing the sinks' counters with the previous call. */
#define PSKGW_DOMAIN_DROP_HOLD_MS 10000
int pskgw_domain_healthy(pskgw_domain_t *d);
/* Close everything in order; cb(arg) once the domain is freed (from a libuv callback). */
void pskgw_domain_close(pskgw_domain_t *d, void (*cb)(void *arg), void *arg);

#endif
