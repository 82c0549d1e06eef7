/* pskgw_sinkset_t: the sinks of one domain (fan-out), on one libuv loop.
 *
 * The gateway builds one set per domain from its config (pskgw_sink_options_t per sink) and
 * submits every device message with pskgw_sinkset_submit(). Each sink delivers at-least-once:
 *  - a bounded in-memory queue (queue_size) and an in-flight window (in_flight); at most one
 *    message per device (rot_public_uid, else psk_identity) is in flight per sink, so each
 *    device's messages reach each sink in order;
 *  - failed attempts are retried with capped exponential backoff (100 ms doubling up to
 *    retry_max_ms, with jitter), per message; a failure never blocks other devices;
 *  - when the queue is full the message is appended to the sink's disk spool (sinks/spool.h);
 *    once a device has messages in the spool its newer messages go behind them (and while the
 *    spool is still opening, or holds records of an earlier run, every message goes there, to
 *    keep order across restarts); spooled
 *    messages are read back in order when the queue has room; past spool.max_bytes messages
 *    are dropped and counted; the spool survives kill -9 and is replayed at the next start;
 *  - permanent failures (HTTP 4xx, a message a broker rejects, a message too large) and
 *    messages that failed max_attempts times (when set) go to the dead-letter file (the JSON
 *    envelope, one line) and are counted; they never block the queue.
 * One thread: every function here must be called on the loop's thread.
 */
#ifndef PSKGW_SINKS_SINKSET_H
#define PSKGW_SINKS_SINKSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sinks/envelope.h"

typedef enum {
    PSKGW_SINK_FILE = 0,
    PSKGW_SINK_HTTP,
    PSKGW_SINK_MQTT,
    PSKGW_SINK_REDIS_STREAM,
    PSKGW_SINK_KAFKA,
} pskgw_sink_type_t;

/* When a spooled message counts as "spooled" (acknowledged with status 0):
 *  ALWAYS: after fdatasync(): it survives a power loss or kernel crash;
 *  BATCH:  after write(2); fdatasync every 200 ms: it survives a crash or kill -9 of pskgw, but
 *          a power loss or kernel crash can lose up to the last ~200 ms of acknowledged messages;
 *  NEVER:  after write(2), never synced: kill -9 safe only; a power loss can lose whatever the
 *          kernel had not written back.
 * Use ALWAYS where device acknowledgements must mean "survives a power loss". */
typedef enum {
    PSKGW_SINK_FSYNC_BATCH = 0, /* default */
    PSKGW_SINK_FSYNC_ALWAYS,
    PSKGW_SINK_FSYNC_NEVER,
} pskgw_sink_fsync_t;

typedef enum {
    PSKGW_SINK_PAYLOAD_JSON = 0, /* default: the JSON envelope (sinks/envelope.h) */
    PSKGW_SINK_PAYLOAD_RAW,      /* mqtt, redis-stream, kafka: raw payload + metadata */
} pskgw_sink_payload_t;

typedef struct {
    const char *key;
    const char *value;
} pskgw_sink_kv_t;

/* All strings borrowed during pskgw_sinkset_new() only (copied; secrets wiped on free).
 * A zero value means the default given in brackets. */
typedef struct {
    const char *name; /* required, unique per spool directory: names the spool files and logs */
    pskgw_sink_type_t type;
    pskgw_sink_payload_t payload; /* raw is accepted only by mqtt, redis-stream, kafka */
    size_t queue_size;            /* [1024] messages in memory */
    unsigned in_flight;           /* [64] attempts outstanding at once */
    uint64_t retry_max_ms;        /* [30000] backoff cap */
    unsigned max_attempts;        /* [0 = unlimited] attempts before dead-lettering */
    uint64_t close_timeout_ms;    /* [2000] how long close waits for in-flight deliveries */
    const char *dead_letter_path; /* [NULL: counted and logged only] JSON lines, appended */
    struct {
        const char *path;   /* directory; NULL: no spool (a full queue drops) */
        uint64_t max_bytes; /* [64 MiB] */
        pskgw_sink_fsync_t fsync;
    } spool;
    struct {
        const char *path; /* file (created 0640, appended) or "-" for stdout */
    } file;
    struct {
        const char *url;
        const pskgw_sink_kv_t *headers; /* e.g. {"Authorization", "Bearer ..."}: values secret */
        size_t n_headers;
        uint64_t timeout_ms; /* [10000] whole request */
        /* HEAD url every probe_interval_ms while no POST is under way: the answer sets the
         * sink's connected (and ready) state; 0: no probe */
        uint64_t probe_interval_ms;
    } http;
    struct {
        const char *host;
        int port;              /* [1883] */
        const char *topic;     /* template: {domain} {rot_public_uid} {psk_identity} */
        int qos;               /* 0, 1 or 2, as given (0 is QoS 0, not a default) */
        const char *client_id; /* [pskgw-<pid>-<name>] */
        const char *username;
        const char *password; /* secret */
        int keepalive;        /* [30] seconds */
        uint64_t timeout_ms;  /* [10000] CONNACK/PUBACK later than this drops the connection */
    } mqtt;
    struct {
        const char *url;      /* redis://[host][:port][/db] ([::1] for IPv6), or
                                 redis+sentinel://h[:p],h[:p]/master[/db] (Redis Sentinel);
                                 not used when host is set */
        const char *host;     /* [NULL: from url] */
        int port;             /* [6379] */
        unsigned db;          /* [0] SELECT db after connecting */
        const char *password; /* [NULL: no AUTH] secret */
        const char *stream;   /* key; template like mqtt.topic */
        uint64_t maxlen;      /* [0 = no trimming] XADD MAXLEN ~ maxlen */
        uint64_t timeout_ms;  /* [10000] a reply later than this drops the connection */
    } redis;
    struct {
        const char *brokers;
        const char *topic;
        const pskgw_sink_kv_t *props; /* extra librdkafka properties (values may be secret) */
        size_t n_props;
    } kafka;
} pskgw_sink_options_t;

/* The sinks' latency histogram: from the record decrypted (pskgw_envelope_t.decrypted_ns) to
 * the sink's delivery (the file sink: write(2) returned), upper bounds in microseconds. */
#define PSKGW_SINK_LAT_BUCKETS 13
extern const uint32_t pskgw_sink_latency_bounds_us[PSKGW_SINK_LAT_BUCKETS];

typedef struct {
    uint64_t queued;        /* messages that entered the in-memory queue from a submit */
    uint64_t delivered;     /* acknowledged by the target system */
    uint64_t retried;       /* failed attempts that were retried */
    uint64_t spooled;       /* appended to the spool */
    uint64_t replayed;      /* read back from the spool */
    uint64_t dropped;       /* lost: queue and spool full (or spool unusable) */
    uint64_t dead_lettered; /* permanent failures */
    uint64_t queue_depth;   /* now: messages in memory (queued + in flight) */
    uint64_t spool_bytes;   /* now: spool file size + pending appends */
    /* queued entries the dispatches looked at: their cost (one per ready device per dispatch,
     * not one per queued message) */
    uint64_t dispatch_visits;
    bool connected; /* now: the client is connected, or (file, http) no attempt failed since the
                     * last success or the start */
    /* delivered messages with a decrypted_ns (not spool replays): latency_le[b] counts those
     * at or under pskgw_sink_latency_bounds_us[b] (cumulative, Prometheus' le), [BUCKETS] all */
    uint64_t latency_le[PSKGW_SINK_LAT_BUCKETS + 1];
    uint64_t latency_sum_us;
    uint64_t latency_count;
} pskgw_sink_stats_t;

typedef struct pskgw_sinkset pskgw_sinkset_t;

/* status: 0 when every sink of the set delivered the message, spooled it (durable against
 * power loss only with spool.fsync = ALWAYS; see pskgw_sink_fsync_t), or
 * dead-lettered it (a message waiting in a memory queue is not acknowledged until it is
 * delivered or, at close, spooled); else the first error of a sink: PSKGW_EFULL (queue and
 * spool full: counted drop), PSKGW_EIO (spool write failed), PSKGW_ECANCELED (the set closed
 * first and could not spool it). Fires exactly once per accepted submit, never inside
 * pskgw_sinkset_submit(). */
typedef void (*pskgw_sinkset_done_cb)(void *arg, int status);

/* Build a set of n sinks (n >= 1) on loop; the set is owned by the caller, freed by
 * pskgw_sinkset_close(). Opens spool files synchronously (start-up/reload only), starts
 * connecting. Returns 0, PSKGW_EINVAL/PSKGW_ECONFIG (bad options: named in the log),
 * PSKGW_EUNSUPPORTED, PSKGW_EBUSY (spool locked by another process), PSKGW_EIO, PSKGW_ENOMEM. */
int pskgw_sinkset_new(uv_loop_t *loop, const pskgw_sink_options_t *sinks, size_t n,
                      pskgw_sinkset_t **out);

/* Copy env (a fresh message_id is drawn) and hand it to every sink. 0: done_cb(arg, status)
 * fires exactly once, later (done_cb may be NULL). Fails now, without a callback:
 * PSKGW_EINVAL (bad envelope), PSKGW_ENOMEM, PSKGW_ECLOSED (close started). If out_id is not
 * NULL, the message id is copied there (PSKGW_MESSAGE_ID_LEN + 1 bytes) on success. */
int pskgw_sinkset_submit(pskgw_sinkset_t *set, const pskgw_envelope_t *env,
                         pskgw_sinkset_done_cb done_cb, void *arg, char *out_id);

/* Reload: the set becomes the n sinks of opts (n >= 1), in that order, while submits keep
 * flowing. keep[i] true: the set's sink named opts[i].name goes on as it is (its queue, spool,
 * in-flight deliveries and connection kept; the rest of opts[i] is not read); false: a new sink
 * is made from opts[i] (as pskgw_sinkset_new() does). Every sink of the set not kept stops
 * taking messages and closes as at pskgw_sinkset_close(): in-flight deliveries get up to
 * close_timeout_ms, what it still holds is spooled (no spool: dropped, counted); the submits it
 * holds complete when it is done with them, so each message goes to the sinks in force when it
 * was submitted. A sink with a spool replaced under the same name takes the old one's spool
 * over once the old one has closed (it spooled what it still held): meanwhile the new sink sends
 * nothing and holds up to queue_size messages in memory (beyond: dropped), then appends them
 * behind the old records, so every message is delivered once and in order. All or nothing: on error the set is unchanged (sinks
 * made for the update are closed). Errors: PSKGW_EINVAL (keep[i] names no sink of the set,
 * bad arguments), PSKGW_ECONFIG (two sinks with one name), PSKGW_ECLOSED (close started),
 * pskgw_sinkset_new()'s errors. */
int pskgw_sinkset_update(pskgw_sinkset_t *set, const pskgw_sink_options_t *opts, const bool *keep,
                         size_t n);

/* Reopen output files (file sinks, dead-letter files): call on SIGHUP after log rotation. */
void pskgw_sinkset_reopen(pskgw_sinkset_t *set);

size_t pskgw_sinkset_count(const pskgw_sinkset_t *set);
/* Counters of sink i (< count): 0 or PSKGW_ERANGE. *name borrowed from the set. */
int pskgw_sinkset_stats(const pskgw_sinkset_t *set, size_t i, const char **name,
                        pskgw_sink_stats_t *out);

/* What readiness needs to know of a sink besides its counters (gateway/health.h). */
typedef struct {
    bool failing; /* the last delivery attempt failed (transiently) or the backend reported its
                     connection lost, and nothing was delivered since; false from the start
                     until the first failure (an idle sink is not known to fail) */
    bool spool;   /* a spool is configured (and opened) */
    uint64_t spool_max_bytes; /* its limit; 0 without a spool */
    size_t queue_size;        /* the in-memory queue's limit */
} pskgw_sink_health_t;
/* Health of sink i (< count): 0 or PSKGW_ERANGE. */
int pskgw_sinkset_health(const pskgw_sinkset_t *set, size_t i, pskgw_sink_health_t *out);

/* Stop accepting, give in-flight deliveries up to close_timeout_ms, append everything not
 * delivered to the spool (no spool: counted as dropped), close clients and files, free the set,
 * then cb(arg) (later, exactly once; cb may be NULL). All pending done callbacks fire before
 * cb. The loop must keep running until then (handles are closed, uv_loop_close() == 0 after). */
void pskgw_sinkset_close(pskgw_sinkset_t *set, void (*cb)(void *arg), void *arg);

/* The backoff used between attempts: attempt >= 1; base_ms doubled per attempt, capped at
 * max_ms, then jittered into [d/2, d] with rnd (any 32-bit value). Pure (unit-tested). */
uint64_t pskgw_sink_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint32_t rnd);

#endif
