/* Module-internal contracts of sinks/: the sink core (queue, window, retries, spool, dead
 * letters; sink.c) and the backends it drives (sink_file.c, sink_http.c, ...).
 *
 * A backend is a client of one target system. The core calls it through pskgw_sink_backend_t:
 *  - create(): parse options, start connecting (asynchronously); 0 or a PSKGW_E* code.
 *  - send(impl, msg, token): start delivering msg (the backend holds a reference with
 *    pskgw_msg_ref if it needs msg after returning). Returns 0 and later calls
 *    pskgw_sink_result(core, token, status) exactly once, never from inside send(); or fails now
 *    (no result later): PSKGW_EAGAIN/PSKGW_EUNAVAIL (not connected: retried) or a permanent
 *    code (below).
 *  - reopen(): SIGHUP; may be NULL.
 *  - close(): stop, forget every token (no pskgw_sink_result() after this), free everything,
 *    then call pskgw_sink_backend_closed(core) once, later.
 * Result statuses: 0 delivered; PSKGW_EBADREQ / PSKGW_ETOOBIG: permanent (dead letter); any other
 * negative code: transient (retried with backoff).
 */
#ifndef PSKGW_SINKS_INTERNAL_H
#define PSKGW_SINKS_INTERNAL_H

#include "sinks/msg.h"
#include "sinks/sinkset.h"

#include <stdbool.h>
#include <uv.h>

typedef struct pskgw_sink pskgw_sink_t;
typedef struct pskgw_sub pskgw_sub_t;

typedef struct {
    const char *type;
    bool raw_ok; /* accepts payload = raw */
    int (*create)(pskgw_sink_t *core, uv_loop_t *loop, const pskgw_sink_options_t *o, void **impl);
    int (*send)(void *impl, pskgw_msg_t *msg, void *token);
    void (*reopen)(void *impl);
    void (*close)(void *impl);
} pskgw_sink_backend_t;

extern const pskgw_sink_backend_t pskgw_sink_backend_file;
extern const pskgw_sink_backend_t pskgw_sink_backend_http;
extern const pskgw_sink_backend_t pskgw_sink_backend_redis;
extern const pskgw_sink_backend_t pskgw_sink_backend_mqtt;
extern const pskgw_sink_backend_t pskgw_sink_backend_kafka;

/* Backend -> core. */
void pskgw_sink_result(pskgw_sink_t *core, void *token, int status);
/* Connection state for the counters; a change to connected retries at once what waited in
 * backoff. Never call from inside create(). */
void pskgw_sink_set_connected(pskgw_sink_t *core, bool connected);
void pskgw_sink_backend_closed(pskgw_sink_t *core);
const char *pskgw_sink_name(const pskgw_sink_t *core);

/* Set <-> core (sink.c). The core calls pskgw_sub_done(sub, status) exactly once per
 * pskgw_sink_submit() that returned 0. */
int pskgw_sink_new(uv_loop_t *loop, const pskgw_sink_options_t *o, pskgw_sink_t **out);
/* Like pskgw_sink_new() for a sink that replaces prev (same name) at a reload while prev still
 * holds the spool files (both have a spool): the new sink opens the spool only once prev has
 * closed (prev spooled what it could not deliver, and its files are unlocked). Until then it
 * sends nothing and holds what it is given in memory, up to queue_size (beyond: dropped,
 * PSKGW_EFULL); when the spool opens, what it held is appended behind prev's records, so each
 * device's messages stay in order. Its own close waits for the spool too. Errors as
 * pskgw_sink_new(). */
int pskgw_sink_new_after(uv_loop_t *loop, const pskgw_sink_options_t *o, pskgw_sink_t *prev,
                         pskgw_sink_t **out);
/* Undo pskgw_sink_new_after()'s link (the update that made s failed and prev stays): s will
 * never open the spool; call before closing s, while it has been given nothing. */
void pskgw_sink_unlink_spool(pskgw_sink_t *s);
/* 1 when s has (or will open) a spool. */
int pskgw_sink_has_spool(const pskgw_sink_t *s);
void pskgw_sink_submit(pskgw_sink_t *s, pskgw_msg_t *msg, pskgw_sub_t *sub);
void pskgw_sink_reopen(pskgw_sink_t *s);
void pskgw_sink_stats(const pskgw_sink_t *s, pskgw_sink_stats_t *out);
void pskgw_sink_health(const pskgw_sink_t *s, pskgw_sink_health_t *out);
/* Flush within close_timeout_ms, spool what is left, close; cb(arg) once, later. */
void pskgw_sink_close(pskgw_sink_t *s, void (*cb)(void *arg), void *arg);
void pskgw_sub_done(pskgw_sub_t *sub, int status);

/* A buffer a backend keeps and reuses (grown, never shrunk): renderings per message without an
 * allocation in steady state. Zero-initialised is empty. */
typedef struct {
    char *p;
    size_t cap;
} pskgw_sink_buf_t;
/* Grow b to at least need bytes (contents not kept). 0, PSKGW_ENOMEM. */
int pskgw_sink_buf_reserve(pskgw_sink_buf_t *b, size_t need);
void pskgw_sink_buf_free(pskgw_sink_buf_t *b);

/* A freelist of a backend's per-message records of one size (its queue entries): in steady
 * state they are taken from it and given back, not allocated. Loop thread only; zero-initialised
 * is empty; it keeps at most 4096 items (beyond, pskgw_sink_fl_put frees). */
typedef struct {
    void *head;
    unsigned n;
} pskgw_sink_freelist_t;
/* A zeroed item of size bytes (the same size on every call for one list), or NULL. */
void *pskgw_sink_fl_get(pskgw_sink_freelist_t *fl, size_t size);
/* Give p back (NULL accepted). */
void pskgw_sink_fl_put(pskgw_sink_freelist_t *fl, void *p);
void pskgw_sink_fl_free(pskgw_sink_freelist_t *fl);

/* Expand {domain} {rot_public_uid} {psk_identity} {listener} in tmpl into buf (grown when it is
 * too small); *out = buf->p, NUL-terminated, valid until buf's next use. 0, PSKGW_ENOMEM. */
int pskgw_sink_template(const char *tmpl, const pskgw_envelope_t *env, pskgw_sink_buf_t *buf,
                        const char **out);

/* Metadata of a message as (name, value) pairs for raw mode (MQTT user properties, Kafka
 * headers, stream fields): message_id domain listener transport peer psk_identity
 * rot_public_uid session_id seq received_at payload_len [e2e_version e2e_key_identity
 * e2e_cipher_suite]. Values point into m or into meta's own buffers. */
typedef struct {
    const char *name[14];
    const char *value[14];
    size_t n;
    char num[4][24];
    char ts[32];
} pskgw_sink_meta_t;
void pskgw_sink_meta(const pskgw_msg_t *m, pskgw_sink_meta_t *meta);

/* Resolve a host name on the thread pool (uv_getaddrinfo), never on the loop thread: for
 * clients (hiredis, libmosquitto) that would otherwise call getaddrinfo() on the loop when they
 * (re)connect. cb(arg, 0, ip) with a numeric address (the first IPv4 one, else the first one;
 * ip borrowed during the call) or cb(arg, PSKGW_EUNAVAIL | PSKGW_ECANCELED, NULL) fires exactly
 * once, later, never inside pskgw_sink_resolve(). cancel() asks libuv to cancel: cb still fires
 * once (with PSKGW_ECANCELED, or the result when the lookup was already running).
 * 0 or PSKGW_ENOMEM / PSKGW_EINVAL (no callback then). */
typedef struct pskgw_sink_resolve pskgw_sink_resolve_t;
int pskgw_sink_resolve(uv_loop_t *loop, const char *host,
                       void (*cb)(void *arg, int status, const char *ip), void *arg,
                       pskgw_sink_resolve_t **out);
void pskgw_sink_resolve_cancel(pskgw_sink_resolve_t *r);

/* For tests only (sink_kafka.c; loop thread): the current librdkafka producer (rd_kafka_t *)
 * of the live kafka sink named `name`, or NULL (no such sink, or its producer is being replaced
 * after a fatal error); *resets (may be NULL) = producers it replaced after fatal errors. */
void *pskgw_sink_kafka_test_producer(const char *name, uint64_t *resets);

/* Options with defaults applied and strings copied (sink.c); backends read their part. */
char *pskgw_sink_strdup0(const char *s);

#endif
