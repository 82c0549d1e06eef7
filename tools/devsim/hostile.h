/* pskgw-devsim: hostile scenarios, run on the fleet's libuv loop next to the legitimate devices.
 *
 * An attacker with no key at all, as issue 16 describes it, on loopback only (the options refuse
 * any other address): each scenario is bounded by --attack-count attempts, started at
 * --attack-rate per second, at most --attack-concurrency in flight (one UDP socket each, bound to
 * its own port on one of --attack-sources 127.x.y.z addresses), each attempt ended after
 * --attack-timeout (fill: --attack-hold) at the latest.
 *   cke-flood  hand-made datagrams (rawdtls.h): ClientHello, ClientHello with the server's cookie,
 *              then, after ServerHelloDone, a ClientKeyExchange with a fresh random module-shaped
 *              identity; the attempt ends there (never a Finished): one key lookup each;
 *   wrong-key  full OpenSSL handshakes with the identity of device --attack-victim and a PSK
 *              whose first byte is inverted: the gateway must refuse every one;
 *   replay     device --attack-victim handshakes (OpenSSL) and sends a message; the ClientHello
 *              with cookie it sent is captured; --attack-delay later that datagram is sent again,
 *              --attack-count times, from the same address and port; then the device sends a
 *              second message: with the gateway's `ack = "accepted"` the answer tells whether its
 *              session survived (without acks the verdict is unknown);
 *   fill       the cookie exchange up to ServerHelloDone, then nothing: a half-open handshake held
 *              --attack-hold seconds, from many source addresses.
 *
 * Ownership: the hostile object is owned by its creator; its handles live on the caller's loop.
 * pskgw_devsim_hostile_stop() closes every handle (idempotent); free the object only after the
 * loop has run their close callbacks (uv_run returned). Counts go to the caller's stats object,
 * which must outlive the hostile object. on_done fires once, later (never inside start), when
 * every attempt has ended; not after stop.
 */
#ifndef PSKGW_TOOLS_DEVSIM_HOSTILE_H
#define PSKGW_TOOLS_DEVSIM_HOSTILE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "tools/devsim/client.h"
#include "tools/devsim/hist.h"
#include "tools/devsim/opts.h"

typedef struct {
    uint64_t attempts;          /* attempts started */
    uint64_t sources_used;      /* distinct source addresses attempts were sent from */
    uint64_t socket_errors;     /* a socket could not be opened, bound or connected */
    uint64_t cookie_exchanges;  /* HelloVerifyRequests answered with the cookie */
    uint64_t server_flights;    /* ServerHelloDone reached: the gateway holds a half-open session */
    uint64_t sources_answered;  /* distinct source addresses that got a server flight */
    uint64_t ckes_sent;         /* cke-flood: ClientKeyExchanges sent (one identity each) */
    uint64_t refused;           /* attempts the gateway ended with a fatal alert */
    uint64_t accepted;          /* wrong-key: handshakes the gateway completed (must stay 0) */
    uint64_t timeouts;          /* attempts that heard nothing more within --attack-timeout */
    uint64_t half_open_now;     /* fill: held right now */
    uint64_t half_open_max;     /* fill: held at once, at most */
    uint64_t ended_by_gateway;  /* fill: half-open handshakes the gateway ended while held */
    uint64_t replays_sent;      /* replay: captured ClientHellos sent again */
    uint64_t replay_answer_hvr; /* replay: answered with a HelloVerifyRequest (cookie refused) */
    uint64_t replay_answer_sh;  /* replay: answered with a ServerHello (cookie accepted) */
    uint64_t replay_answer_alert; /* replay: answered with a plaintext alert */
    uint64_t victim_handshakes;   /* replay: the victim's handshakes completed */
    uint64_t victim_acks;         /* replay: acks the victim received */
    int victim_survived; /* replay: 1 its message after the replay was acked, 0 it was not (or
                            the session ended), -1 unknown (no ack before the replay either) */
    pskgw_devsim_hist_t answer; /* cke-flood/fill: first ClientHello to ServerHelloDone, us */
    bool done;                  /* every attempt ended */
} pskgw_devsim_attack_stats_t;

typedef struct pskgw_devsim_hostile pskgw_devsim_hostile_t;

/* A hostile scenario o->attack on loop, sending nothing yet. ctx: the fleet's client context
 * (wrong-key, replay), borrowed. Errors: PSKGW_EINVAL (no attack, not DTLS), PSKGW_ENOMEM,
 * PSKGW_EIO (--attack-identities cannot be opened). */
int pskgw_devsim_hostile_new(uv_loop_t *loop, const pskgw_devsim_opts_t *o,
                             pskgw_devsim_client_ctx_t *ctx, pskgw_devsim_attack_stats_t *stats,
                             void (*on_done)(void *arg), void *arg, pskgw_devsim_hostile_t **out);

/* Start after --attack-delay (the replay's victim starts at once). */
void pskgw_devsim_hostile_start(pskgw_devsim_hostile_t *h);

/* End every attempt now and close every handle (idempotent). Attempts not ended count nothing. */
void pskgw_devsim_hostile_stop(pskgw_devsim_hostile_t *h);

/* NULL accepted. Only once the loop has run the close callbacks of pskgw_devsim_hostile_stop(). */
void pskgw_devsim_hostile_free(pskgw_devsim_hostile_t *h);

#endif
