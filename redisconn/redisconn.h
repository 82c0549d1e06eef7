/* One Redis connection on the libuv loop: hiredis 0.14 async through our own adapter, host names
 * resolved on the thread pool, the AUTH/SELECT/PING gate, capped jittered reconnect backoff, a
 * reply watchdog and freeing that never happens inside hiredis' own callbacks. Its users keep only
 * their commands: the key cache (GET/SET/DEL, keycache/redis.c) and the redis-stream sink (XADD,
 * sinks/sink_redis.c).
 *
 * States (pskgw_redisconn_state()):
 *   IDLE        no connection; the backoff timer runs (the first attempt: on the next loop turn,
 *               never inside pskgw_redisconn_new()).
 *   RESOLVING   the host name is being resolved by uv_getaddrinfo on the thread pool (an IPv4 or
 *               IPv6 literal skips this); hiredis gets the numeric address (the first IPv4 one,
 *               else the first), so no getaddrinfo() ever runs on the loop thread. A failed lookup
 *               counts an error and backs off. A lookup has no deadline of its own (it cannot be
 *               interrupted; it holds one thread-pool thread, not the loop).
 *   CONNECTING  TCP connect in progress.
 *   GATE        TCP connected (counted in connects, gauge connected = 1); AUTH (when a password
 *               is set), SELECT (when db > 0) and PING are in flight. Commands are accepted and
 *               held here, not sent: none may run before AUTH and SELECT succeeded (they would
 *               land in another database, or fail with NOAUTH).
 *   READY       PING answered after AUTH and SELECT succeeded: held commands go out in order,
 *               new ones at once; the backoff returns to backoff_min_ms.
 *   CLOSING     after pskgw_redisconn_close().
 * A connection that is not READY within timeout_ms of the connect (TCP connect + gate) is dropped;
 * so is one where AUTH or SELECT is refused (logged with the server's error, never the password).
 * Each failure counts one error and waits the backoff: backoff_min_ms doubling up to
 * backoff_max_ms, each delay jittered to 80..120 % (common/backoff.h: a jitter source per
 * connection, seeded from getrandom and its address: workers started together do not reconnect
 * in step) and capped at backoff_max_ms.
 *
 * Watchdog: hiredis has no command timeout. When the oldest outstanding command (held ones
 * included) is older than timeout_ms, the connection is dropped (a hung server, e.g. SIGSTOP or
 * DEBUG SLEEP): every outstanding command completes with PSKGW_EIO and a reconnect is scheduled.
 *
 * Freeing: a hiredis context is freed only from our own timer callbacks or from a public call
 * made outside hiredis' callbacks; a drop or close requested from inside one (a reply callback,
 * the state callback) is deferred to a 0 ms timer. libuv handles (three timers, one poll handle
 * per context) are freed in their close callbacks; the connection counts them and frees itself
 * in the last one.
 *
 * Sentinel mode (opts.sentinels): one more pskgw_redisconn to each sentinel (redisconn/sentinel.h)
 * is kept open. Each attempt (RESOLVING) first asks the READY sentinels, in list order, for
 * SENTINEL get-master-addr-by-name; the answer is resolved and connected to as above, and the
 * gate adds ROLE: an address that is not the master (any more) is dropped. A lost connection,
 * a failed attempt or a READONLY error reply (the reply is still handed to its command, then the
 * connection is dropped) makes the next attempt ask again, so a failover is followed without a
 * restart: the connection comes back on the promoted replica. No sentinel READY: the attempt
 * waits for the first one that is (or the backoff). Sentinels get no AUTH and no SELECT.
 *
 * Subscriber mode (opts.subscribe): the connection carries no commands (pskgw_redisconn_command()
 * refuses them: PSKGW_EINVAL) but one subscription. After the gate (PING answered) it sends
 * SUBSCRIBE <channel> and stays in GATE until the server confirms it, within the same timeout_ms
 * deadline; only then is it READY (on_state(true)). Each message published on the channel goes
 * to on_message, in order. Every reconnect subscribes again: messages published while it was
 * down are lost, which on_state(false) / on_state(true) tell the owner. A subscribed connection
 * has no outstanding command for the watchdog to time, so TCP keepalive (hiredis: idle 15 s,
 * then 3 probes 5 s apart) is turned on: a peer gone silent is noticed in about 30 s; a server
 * that restarts closes the connection and is noticed at once.
 *
 * Bounds (opts.max_in_flight, opts.max_held; 0: none, the default): at most max_in_flight
 * commands are sent and not answered yet; the next ones are held, formatted, and go out in order
 * as replies come in (a command's watchdog deadline counts from when it is sent). At most
 * max_held commands are held (in GATE too); one more is refused at once (PSKGW_EBUSY, counted in
 * stats.dropped), so that a burst (a hibernation sweep's 100k stores) cannot grow hiredis'
 * output buffer and the held list without limit, nor trip the watchdog with a queue the server
 * cannot answer in time.
 *
 * Owner: the caller of pskgw_redisconn_new(), until the close callback. One loop, not
 * thread-safe.
 */
#ifndef PSKGW_REDISCONN_REDISCONN_H
#define PSKGW_REDISCONN_REDISCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct redisReply;

typedef struct pskgw_redisconn pskgw_redisconn_t;
typedef struct pskgw_redisconn_cmd pskgw_redisconn_cmd_t;

typedef enum {
    PSKGW_REDISCONN_IDLE,
    PSKGW_REDISCONN_RESOLVING,
    PSKGW_REDISCONN_CONNECTING,
    PSKGW_REDISCONN_GATE,
    PSKGW_REDISCONN_READY,
    PSKGW_REDISCONN_CLOSING,
} pskgw_redisconn_state_t;

/* Fires on the READY edge (ready = true; from inside the PING reply: commands may be issued)
 * and when a READY connection is lost or dropped (ready = false). It may call anything of this
 * API, pskgw_redisconn_close() included. */
typedef void (*pskgw_redisconn_state_cb)(void *arg, bool ready);

/* Subscriber mode: one message published on the channel (data/len valid during the callback
 * only; binary-safe). From inside hiredis' dispatch: it may call anything of this API,
 * pskgw_redisconn_close() included. */
typedef void (*pskgw_redisconn_message_cb)(void *arg, const char *data, size_t len);

typedef struct {
    const char *host; /* name or IPv4/IPv6 literal (copied); unused with sentinels */
    uint16_t port;    /* TCP port, not 0; unused with sentinels */
    /* Sentinel mode when set: "host:port,host:port" (port optional: 26379; [v6]:port; at most
     * 16; copied) and the master's name (copied). See "Sentinel mode" above. */
    const char *sentinels;
    const char *master_name;
    const char *password;    /* AUTH after connecting; NULL for none (copied, wiped on free) */
    int db;                  /* SELECT when > 0 */
    uint32_t timeout_ms;     /* connect + gate deadline and reply watchdog (>= 1) */
    uint32_t backoff_min_ms; /* >= 1 */
    uint32_t backoff_max_ms; /* >= backoff_min_ms */
    const char *log_name;    /* log prefix, e.g. "keycache" or "sink \"s1\"" (copied) */
    pskgw_redisconn_state_cb on_state; /* optional */
    /* Subscriber mode when set: the channel (copied, not empty) and on_message (required). */
    const char *subscribe;
    pskgw_redisconn_message_cb on_message;
    void *arg;
    uint32_t max_in_flight; /* commands sent and not answered at most; 0: no limit (Bounds) */
    uint32_t max_held;      /* commands held at most (PSKGW_EBUSY beyond); 0: no limit */
} pskgw_redisconn_opts_t;

typedef struct {
    uint64_t errors;      /* failed attempts (lookup, connect, deadline, gate refused, no
                             sentinel reachable or none naming the master), commands failed by a
                             lost or dropped connection, watchdog and READONLY drops */
    uint64_t connects;    /* TCP connections made (the first one included) */
    uint64_t disconnects; /* connections lost or dropped after TCP connect */
    uint64_t connected;   /* gauge: 1 in GATE and READY */
    uint64_t messages;    /* subscriber mode: messages received on the channel */
    uint64_t dropped;     /* commands refused with PSKGW_EBUSY: max_held were held (Bounds) */
} pskgw_redisconn_stats_t;

/* Command completion: status 0 with reply (any type, error replies included; valid during the
 * callback only), or reply NULL with PSKGW_EIO (connection lost, dropped by the watchdog or the
 * deadline, gate refused) or PSKGW_ECANCELED (pskgw_redisconn_close()). Never called inside
 * pskgw_redisconn_command(); called exactly once unless the command was detached. */
typedef void (*pskgw_redisconn_reply_cb)(void *arg, int status, const struct redisReply *reply);

/* Copies opts, schedules the first attempt. 0, PSKGW_EINVAL (bad opts), PSKGW_ENOMEM (nothing
 * to free then; in Sentinel mode, sentinel connections already made close themselves on the
 * loop's next turns). */
int pskgw_redisconn_new(uv_loop_t *loop, const pskgw_redisconn_opts_t *opts,
                        pskgw_redisconn_t **out);

pskgw_redisconn_state_t pskgw_redisconn_state(const pskgw_redisconn_t *c);
/* READY: commands go out at once. */
bool pskgw_redisconn_ready(const pskgw_redisconn_t *c);
/* GATE or READY: commands are accepted (held until READY in GATE). */
bool pskgw_redisconn_connected(const pskgw_redisconn_t *c);

/* Issue argv (formatted now: argv may go when this returns). 0: cb fires exactly once, later
 * (unless detached); *out (optional) is valid until then. Fails now without calling cb:
 * PSKGW_EUNAVAIL (not GATE/READY, or closing), PSKGW_EBUSY (max_held commands held: counted in
 * stats.dropped), PSKGW_ENOMEM, PSKGW_EINVAL (also: a subscriber). */
int pskgw_redisconn_command(pskgw_redisconn_t *c, int argc, const char **argv,
                            const size_t *argvlen, pskgw_redisconn_reply_cb cb, void *arg,
                            pskgw_redisconn_cmd_t **out);
/* How many more commands pskgw_redisconn_command() accepts now before PSKGW_EBUSY: max_held
 * minus the commands held; UINT32_MAX without max_held. A user that issues commands in groups
 * (all or none) asks first. */
uint32_t pskgw_redisconn_room(const pskgw_redisconn_t *c);
/* The command's callback will not fire; it is released when its reply comes or its connection
 * goes. */
void pskgw_redisconn_cmd_detach(pskgw_redisconn_cmd_t *cmd);

void pskgw_redisconn_stats(const pskgw_redisconn_t *c, pskgw_redisconn_stats_t *out);

/* Stop: a lookup in progress is canceled (or its result ignored), the context is freed (at once,
 * or from a 0 ms timer when called from inside a hiredis callback), outstanding commands complete
 * with PSKGW_ECANCELED, the handles are closed; cb(arg) (optional) fires from a libuv close
 * callback once everything is released, after c has been freed. Call once; no other call on c
 * after it (a second one is ignored). */
void pskgw_redisconn_close(pskgw_redisconn_t *c, void (*cb)(void *arg), void *arg);

#endif
