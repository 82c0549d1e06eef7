/* The sink core: one per configured sink. Owns the in-memory queue, the in-flight window, the
 * retry timer, the spool and the dead-letter file, and drives one backend (internal.h). This file
 * holds the queue, the attempts and dead letters, the set-facing calls and the making of a sink;
 * the spool's side (spilling, replay, the hand-over at a reload) is sink_spill.c, the close
 * sink_close.c, the device table sink_dev.c.
 *
 * Queue: a list in arrival order, and beside it the waiting list: each device's oldest entry not
 * in flight, when the device has none in flight; the device's other entries wait behind it on
 * the device (dev->held, in order). pskgw_sink_dispatch() walks the waiting list from the head and
 * starts an attempt for each entry, so each device's messages are attempted strictly in order,
 * one at a time, while other devices go on. Walking one entry per ready device keeps a dispatch
 * from visiting the in-flight window or the messages queued behind a busy device for every
 * message (a dispatch per message that walked every waiting entry made the cost per message grow
 * with the queue: 29,000 instructions a message with 32 devices and a slow file sink). A device's
 * next entry joins the waiting list at the tail when its entry in flight is done; an entry whose
 * attempt failed goes back to the head: it is its device's oldest (a device has one message in
 * flight at a time), so the device's order holds, whatever the order across devices. Replayed spool records are appended at the tail; a device with records in the
 * spool has its new messages spooled behind them (dev->spooled). When a device's first message
 * goes to the spool, its queued messages of this run that are not in flight go there first, in
 * order (pskgw_sink_spill_device()): so while dev->spooled > 0 the only message of this run of the device
 * in memory is the one in flight, and close, which appends what is left in memory to the spool,
 * never puts an older queued message behind the device's spooled ones.
 */
#include "sinks/internal.h"
#include "sinks/sink_close.h"
#include "sinks/sink_core.h"
#include "sinks/sink_spill.h"

#include "common/backoff.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "common/wipe.h"
#include "sinks/appender.h"
#include "sinks/spool.h"

#include <stdlib.h>
#include <string.h>

#define BACKOFF_BASE_MS 100

uint64_t pskgw_sink_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint32_t rnd)
{
    const pskgw_backoff_policy_t p = { base_ms, max_ms, 2, 50, 0 };
    uint64_t lo;
    uint64_t hi;

    /* common/backoff.h's band, drawn from the top (rnd 0 gives the step itself) */
    pskgw_backoff_bounds_ms(&p, attempt, &lo, &hi);
    return hi - rnd % (hi - lo + 1);
}

char *pskgw_sink_strdup0(const char *s)
{
    return s ? strdup(s) : NULL;
}

const char *pskgw_sink_name(const pskgw_sink_t *s)
{
    return s->name;
}

/* ---- queue ------------------------------------------------------------------------------ */

/* A zeroed entry, from the freelist when it has one. */
entry_t *pskgw_sink_entry_new(pskgw_sink_t *s)
{
    entry_t *e = s->free_entries;

    if (e) {
        s->free_entries = e->next_free;
        s->nfree_entries--;
    } else if (!(e = malloc(sizeof(*e)))) {
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    return e;
}

void pskgw_sink_entry_free(pskgw_sink_t *s, entry_t *e)
{
    if (s->nfree_entries < FREE_KEEP) {
        e->next_free = s->free_entries;
        s->free_entries = e;
        s->nfree_entries++;
    } else {
        free(e);
    }
}

/* d's oldest entry not in flight, if d is not busy and has none in s->waiting, joins it (at
 * the tail: the order across devices is not kept, each device's is). */
static void dev_promote(pskgw_sink_t *s, device_t *d)
{
    pskgw_list_t *first;

    if (d->busy || d->first || !(first = pskgw_list_first(&d->held)))
        return;
    pskgw_list_remove(first);
    pskgw_list_insert_tail(&s->waiting, first);
    d->first = pskgw_container_of(first, entry_t, wlink);
}

void pskgw_sink_q_push(pskgw_sink_t *s, entry_t *e)
{
    pskgw_list_insert_tail(&s->queue, &e->link);
    pskgw_list_insert_tail(&e->dev->held, &e->wlink);
    dev_promote(s, e->dev);
    s->qlen++;
}

/* e leaves the waiting list or its device's held list. */
static void w_unlink(entry_t *e)
{
    if (pskgw_list_linked(&e->wlink))
        pskgw_list_remove(&e->wlink);
    if (e->dev->first == e)
        e->dev->first = NULL;
}

static void q_unlink(pskgw_sink_t *s, entry_t *e)
{
    pskgw_list_remove(&e->link);
    w_unlink(e);
    dev_promote(s, e->dev);
    s->qlen--;
}

/* e starts an attempt (or its dead-letter write): out of the waiting list. */
static void set_inflight(entry_t *e)
{
    e->inflight = true;
    w_unlink(e);
}

/* e's attempt (or dead-letter write) ended and e stays: back first in the waiting list (it is
 * its device's oldest: a device has one entry in flight at a time). */
void pskgw_sink_set_waiting(pskgw_sink_t *s, entry_t *e)
{
    device_t *d = e->dev;

    e->inflight = false;
    if (pskgw_list_linked(&e->wlink))
        return;
    if (d->first) {
        /* promoted meanwhile: newer than e, back first behind it */
        pskgw_list_remove(&d->first->wlink);
        pskgw_list_insert_head(&d->held, &d->first->wlink);
    }
    pskgw_list_insert_head(&s->waiting, &e->wlink);
    d->first = e;
}

/* The spool may forget everything before the first replayed record not yet delivered (or
 * everything read, when all were). */
void pskgw_sink_commit_marks(pskgw_sink_t *s)
{
    mark_t *m;

    if (!s->spool)
        return;
    while ((m = pskgw_list_entry(pskgw_list_first(&s->marks), mark_t, link)) && m->done) {
        pskgw_list_remove(&m->link);
        free(m);
    }
    pskgw_spool_commit(s->spool, m ? m->off : pskgw_spool_read_offset(s->spool));
}

/* Remove e from the queue for good. */
void pskgw_sink_finish(pskgw_sink_t *s, entry_t *e, int status)
{
    q_unlink(s, e);
    if (e->sub)
        pskgw_sub_done(e->sub, status);
    if (e->mark)
        e->mark->done = true;
    e->dev->refs--;
    pskgw_sink_dev_put(s, e->dev);
    pskgw_msg_unref(e->msg);
    pskgw_sink_entry_free(s, e);
}

/* ---- attempts --------------------------------------------------------------------------- */

static void dead_letter_failed(pskgw_sink_t *s, entry_t *e, int status)
{
    e->dl_tries++;
    e->not_before = uv_now(s->loop) + pskgw_backoff_at(&s->backoff, e->dl_tries);
    PSKGW_LOG_RL(PSKGW_LOG_ERR, s->name,
                 "sink \"%s\": message \"%s\" not dead-lettered yet (%s): kept, retried", s->name,
                 e->msg->id, pskgw_strerror(status));
}

static void dead_letter_written(void *arg, int status)
{
    dlq_ctx_t *c = arg;
    pskgw_sink_t *s = c->s;
    entry_t *e = c->e;

    free(c);
    if (!e)
        return; /* close took the entry back (spooled or reported) */
    e->dlq = NULL;
    e->dev->busy = false;
    if (status == 0) {
        e->inflight = false;
        s->st.dead_lettered++;
        pskgw_sink_finish(s, e, 0);
    } else {
        pskgw_sink_set_waiting(s, e);
        dead_letter_failed(s, e, status);
    }
    pskgw_sink_commit_marks(s);
    if (s->closing && s->qlen == 0)
        pskgw_sink_close_phase2(s);
    else
        pskgw_sink_dispatch(s);
}

/* A permanent failure: the message is acknowledged (and its spool record released) only once
 * its dead-letter line is written; a write that fails is retried with backoff and the message
 * keeps its place (its device waits behind it), so a dead-letter file that cannot be written
 * never turns a message into a silent loss. Without a dead-letter file it is counted and logged
 * only. */
static void dead_letter(pskgw_sink_t *s, entry_t *e, int status)
{
    const char *json;
    size_t len;
    dlq_ctx_t *c;
    int rc;

    if (!e->dead) {
        e->dead = true;
        e->dead_status = status;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, s->name,
                     "sink \"%s\": message \"%s\" of device \"%s\" dead-lettered: %s", s->name,
                     e->msg->id, e->dev->key, pskgw_strerror(status));
    }
    if (!s->dlq) {
        s->st.dead_lettered++;
        pskgw_sink_finish(s, e, 0);
        return;
    }
    if ((rc = pskgw_msg_json(e->msg, &json, &len)) < 0 || !(c = malloc(sizeof(*c)))) {
        dead_letter_failed(s, e, rc < 0 ? rc : PSKGW_ENOMEM);
        return;
    }
    c->s = s;
    c->e = e;
    e->dlq = c;
    set_inflight(e); /* not in the backend's window, but nothing else may start it */
    e->dev->busy = true;
    rc = pskgw_appender_write(s->dlq, json, len, true, dead_letter_written, c);
    if (rc < 0) {
        e->dlq = NULL;
        pskgw_sink_set_waiting(s, e);
        e->dev->busy = false;
        free(c);
        dead_letter_failed(s, e, rc);
    }
}

static bool permanent(int status)
{
    return status == PSKGW_EBADREQ || status == PSKGW_ETOOBIG;
}

static void attempt_failed(pskgw_sink_t *s, entry_t *e, int status)
{
    e->attempts++;
    if (permanent(status) || (s->max_attempts && e->attempts >= s->max_attempts)) {
        dead_letter(s, e, status);
        return;
    }
    s->st.retried++;
    s->st.connected = false;
    s->failing = true;
    e->not_before = uv_now(s->loop) + pskgw_backoff_at(&s->backoff, e->attempts);
    PSKGW_LOG_RL(PSKGW_LOG_INFO, s->name, "sink \"%s\": attempt %u of message \"%s\" failed: %s",
                 s->name, e->attempts, e->msg->id, pskgw_strerror(status));
}

const uint32_t pskgw_sink_latency_bounds_us[PSKGW_SINK_LAT_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
};

/* Decrypted -> delivered, into the cumulative histogram (one clock read per delivery). */
static void latency_observe(pskgw_sink_stats_t *st, uint64_t decrypted_ns)
{
    uint64_t now = uv_hrtime();
    uint64_t us = now > decrypted_ns ? (now - decrypted_ns) / 1000u : 0;

    for (int b = PSKGW_SINK_LAT_BUCKETS - 1; b >= 0 && us <= pskgw_sink_latency_bounds_us[b]; b--)
        st->latency_le[b]++;
    st->latency_le[PSKGW_SINK_LAT_BUCKETS]++;
    st->latency_sum_us += us;
    st->latency_count++;
}

void pskgw_sink_result(pskgw_sink_t *s, void *token, int status)
{
    entry_t *e = token;

    e->dev->busy = false;
    s->inflight--;
    if (status == 0) {
        e->inflight = false;
        s->st.delivered++;
        if (e->msg->env.decrypted_ns)
            latency_observe(&s->st, e->msg->env.decrypted_ns);
        s->st.connected = true;
        s->failing = false;
        pskgw_sink_finish(s, e, 0);
    } else {
        pskgw_sink_set_waiting(s, e);
        attempt_failed(s, e, status);
    }
    pskgw_sink_commit_marks(s);
    if (s->closing && s->qlen == 0)
        pskgw_sink_close_phase2(s);
    else
        pskgw_sink_dispatch(s);
}

void pskgw_sink_set_connected(pskgw_sink_t *s, bool connected)
{
    bool up = connected && !s->st.connected;

    s->st.connected = connected;
    s->failing = !connected;
    if (up && !s->phase2) {
        /* retry now what waited for the connection */
        pskgw_list_t *pos;

        pskgw_list_foreach(pos, &s->queue)
        {
            pskgw_container_of(pos, entry_t, link)->not_before = 0;
        }
        pskgw_sink_dispatch(s);
    }
}

/* How much spool to read for the room in the queue: about 512 bytes a record, 4..256 KiB. */
static size_t read_hint(const pskgw_sink_t *s)
{
    size_t room = s->queue_size - s->qlen;
    size_t n = room < (256u * 1024u) / 512u ? room * 512u : 256u * 1024u;

    return n < 4096 ? 4096 : n;
}

static void retry_timer_cb(uv_timer_t *t)
{
    pskgw_sink_dispatch(t->data);
}

void pskgw_sink_dispatch(pskgw_sink_t *s)
{
    if (s->phase2 || s->spool_from)
        return; /* closed, or the spool of the sink it replaces comes first */
    if (s->dispatching) {
        s->redispatch = true;
        return;
    }
    s->dispatching = true;
    do {
        uint64_t now = uv_now(s->loop);
        uint64_t earliest = UINT64_MAX;
        unsigned gen = ++s->gen;
        pskgw_list_t *pos, *tmp;

        s->redispatch = false;
        pskgw_list_foreach_safe(pos, tmp, &s->waiting)
        {
            entry_t *e = pskgw_container_of(pos, entry_t, wlink);
            int rc;

            s->st.dispatch_visits++;
            if (s->inflight >= s->window)
                break;
            if (e->dev->gen == gen)
                continue; /* an earlier message of this device waits */
            e->dev->gen = gen;
            if (e->inflight || e->dev->busy)
                continue;
            if (e->not_before > now) {
                if (e->not_before < earliest)
                    earliest = e->not_before;
                continue;
            }
            if (e->dead) {
                dead_letter(s, e, e->dead_status);
                continue;
            }
            set_inflight(e);
            e->dev->busy = true;
            s->inflight++;
            rc = s->be->send(s->impl, e->msg, e);
            if (rc < 0) {
                pskgw_sink_set_waiting(s, e);
                e->dev->busy = false;
                s->inflight--;
                attempt_failed(s, e, rc);
            }
        }
        if (earliest != UINT64_MAX)
            uv_timer_start(&s->retry_timer, retry_timer_cb, earliest - now, 0);
        if (s->spool && !s->closing && s->qlen + s->queue_size / 4 < s->queue_size &&
            pskgw_spool_has_unread(s->spool) && !pskgw_spool_opening(s->spool))
            pskgw_spool_read(s->spool, read_hint(s));
    } while (s->redispatch);
    s->dispatching = false;
    pskgw_sink_commit_marks(s);
}

/* ---- set-facing API --------------------------------------------------------------------- */

void pskgw_sink_submit(pskgw_sink_t *s, pskgw_msg_t *m, pskgw_sub_t *sub)
{
    device_t *d;
    entry_t *e;
    int rc;

    if (s->closing) {
        pskgw_sub_done(sub, PSKGW_ECLOSED);
        return;
    }
    d = pskgw_sink_dev_get(s, pskgw_msg_device(m), m->dev_len, m->dev_hash);
    if (!d) {
        s->st.dropped++;
        pskgw_sub_done(sub, PSKGW_ENOMEM);
        return;
    }
    if (s->spool &&
        (pskgw_spool_in_backlog(s->spool) || d->spooled > 0 || s->qlen >= s->queue_size)) {
        rc = pskgw_sink_spill_device(s, d);
        if (rc == 0)
            rc = pskgw_sink_spool_msg(s, m, sub, d);
        if (rc < 0) {
            s->st.dropped++;
            PSKGW_LOG_RL(PSKGW_LOG_WARNING, s->name,
                         "sink \"%s\": message \"%s\" dropped: spool: %s", s->name, m->id,
                         pskgw_strerror(rc));
            pskgw_sink_dev_put(s, d);
            pskgw_sub_done(sub, rc);
        }
        return;
    }
    if (s->qlen >= s->queue_size || !(e = pskgw_sink_entry_new(s))) {
        s->st.dropped++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, s->name, "sink \"%s\": queue full, message \"%s\" dropped",
                     s->name, m->id);
        pskgw_sink_dev_put(s, d);
        pskgw_sub_done(sub, PSKGW_EFULL);
        return;
    }
    e->msg = pskgw_msg_ref(m);
    e->sub = sub;
    e->dev = d;
    d->refs++;
    pskgw_sink_q_push(s, e);
    s->st.queued++;
    pskgw_sink_dispatch(s);
}

void pskgw_sink_reopen(pskgw_sink_t *s)
{
    if (s->closing)
        return;
    if (s->be->reopen)
        s->be->reopen(s->impl);
    if (s->dlq)
        pskgw_appender_reopen(s->dlq);
}

void pskgw_sink_stats(const pskgw_sink_t *s, pskgw_sink_stats_t *out)
{
    *out = s->st;
    out->queue_depth = s->qlen;
    out->spool_bytes = s->spool ? pskgw_spool_bytes(s->spool) : 0;
}

void pskgw_sink_health(const pskgw_sink_t *s, pskgw_sink_health_t *out)
{
    out->failing = s->failing;
    out->spool = s->spool != NULL || s->spool_from != NULL;
    out->spool_max_bytes = s->spool_max_bytes;
    out->queue_size = s->queue_size;
}

static int sink_make(uv_loop_t *loop, const pskgw_sink_options_t *o, pskgw_sink_t *prev,
                     pskgw_sink_t **out)
{
    static const pskgw_sink_backend_t *const backends[] = {
        [PSKGW_SINK_FILE] = &pskgw_sink_backend_file,
        [PSKGW_SINK_HTTP] = &pskgw_sink_backend_http,
        [PSKGW_SINK_REDIS_STREAM] = &pskgw_sink_backend_redis,
        [PSKGW_SINK_MQTT] = &pskgw_sink_backend_mqtt,
        [PSKGW_SINK_KAFKA] = &pskgw_sink_backend_kafka,
    };
    pskgw_sink_t *s;
    int rc = PSKGW_ENOMEM;

    if (!o->name || !o->name[0] || (unsigned)o->type >= sizeof(backends) / sizeof(backends[0]) ||
        !backends[o->type]) {
        PSKGW_ERR("sink \"%s\": unsupported type", o->name ? o->name : "");
        return PSKGW_EUNSUPPORTED;
    }
    if (o->payload == PSKGW_SINK_PAYLOAD_RAW && !backends[o->type]->raw_ok) {
        PSKGW_ERR("sink \"%s\": payload \"raw\" is not supported by %s sinks", o->name,
                  backends[o->type]->type);
        return PSKGW_ECONFIG;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return PSKGW_ENOMEM;
    pskgw_list_init(&s->queue);
    pskgw_list_init(&s->waiting);
    pskgw_list_init(&s->marks);
    s->loop = loop;
    s->be = backends[o->type];
    s->name = strdup(o->name);
    s->nbuckets = DEV_BUCKETS_MIN;
    s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
    if (!s->name || !s->buckets)
        goto fail;
    s->queue_size = o->queue_size ? o->queue_size : 1024;
    s->window = o->in_flight ? o->in_flight : 64;
    s->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : 30000;
    pskgw_backoff_init(&s->backoff,
                       &(pskgw_backoff_policy_t){ BACKOFF_BASE_MS, s->retry_max_ms, 2, 50, 0 },
                       pskgw_backoff_seed(s));
    s->max_attempts = o->max_attempts;
    s->close_timeout_ms = o->close_timeout_ms ? o->close_timeout_ms : 2000;
    if (o->dead_letter_path && (rc = pskgw_appender_new(loop, o->dead_letter_path, &s->dlq)) < 0)
        goto fail;
    if (o->spool.path) {
        s->spool_max_bytes = o->spool.max_bytes ? o->spool.max_bytes : 64u * 1024 * 1024;
        s->spool_fsync = o->spool.fsync;
        if (prev && prev->spool_max_bytes) {
            /* prev holds the files: opened once it has closed (pskgw_sink_spool_take()) */
            if (!(s->spool_dir = strdup(o->spool.path)))
                goto fail;
        } else if ((rc = pskgw_spool_new(loop, o->spool.path, o->name, s->spool_max_bytes,
                                         o->spool.fsync, &pskgw_sink_spool_cbs, s, &s->spool)) <
                   0) {
            goto fail;
        }
    }
    rc = s->be->create(s, loop, o, &s->impl);
    if (rc < 0)
        goto fail;
    /* A file or HTTP target has no connection to wait for: it counts as healthy until an
     * attempt fails (the connected gauge of an idle healthy sink reads 1 from the start);
     * redis-stream, MQTT and Kafka sinks report their connection when it is made. */
    s->st.connected = s->be == &pskgw_sink_backend_file || s->be == &pskgw_sink_backend_http;
    uv_timer_init(loop, &s->retry_timer);
    uv_timer_init(loop, &s->close_timer);
    s->retry_timer.data = s;
    s->close_timer.data = s;
    if (s->spool_dir) {
        s->spool_from = prev;
        prev->spool_heir = s;
    }
    *out = s;
    return 0;
fail:
    /* nothing asynchronous started yet except the spool's open job and the appender (idle) */
    if (s->spool || s->dlq) {
        /* closing them is asynchronous: hand them a no-op callback; they free themselves */
        if (s->spool)
            pskgw_spool_close(s->spool, NULL, NULL);
        if (s->dlq)
            pskgw_appender_close(s->dlq, NULL, NULL);
    }
    free(s->spool_dir);
    free(s->buckets);
    free(s->name);
    free(s);
    return rc;
}

int pskgw_sink_new(uv_loop_t *loop, const pskgw_sink_options_t *o, pskgw_sink_t **out)
{
    return sink_make(loop, o, NULL, out);
}

int pskgw_sink_new_after(uv_loop_t *loop, const pskgw_sink_options_t *o, pskgw_sink_t *prev,
                         pskgw_sink_t **out)
{
    return sink_make(loop, o, prev, out);
}

void pskgw_sink_unlink_spool(pskgw_sink_t *s)
{
    if (!s->spool_from)
        return;
    s->spool_from->spool_heir = NULL;
    s->spool_from = NULL;
}

int pskgw_sink_has_spool(const pskgw_sink_t *s)
{
    return s->spool_max_bytes != 0;
}
