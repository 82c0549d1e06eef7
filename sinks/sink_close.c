/* The sink core's close (sink_close.h): flush within close_timeout_ms, spool what is left,
 * close the backend, the spool, the dead-letter file and the timers, then free the sink. */
#include "sinks/sink_close.h"

#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "sinks/appender.h"
#include "sinks/sink_spill.h"
#include "sinks/spool.h"

#include <stdlib.h>

static void release(pskgw_sink_t *s)
{
    void (*cb)(void *);
    void *arg;
    pskgw_sink_t *heir;

    if (--s->pending > 0)
        return;
    cb = s->close_cb;
    arg = s->close_arg;
    heir = s->spool_heir;
    for (pskgw_list_t *first; (first = pskgw_list_first(&s->marks)) != NULL;) {
        pskgw_list_remove(first);
        free(pskgw_container_of(first, mark_t, link));
    }
    for (size_t i = 0; i < s->nbuckets; i++) {
        while (s->buckets[i]) {
            device_t *d = s->buckets[i];
            s->buckets[i] = d->hnext;
            free(d);
        }
    }
    while (s->free_devs) {
        device_t *d = s->free_devs;
        s->free_devs = d->hnext;
        free(d);
    }
    while (s->free_entries) {
        entry_t *e = s->free_entries;
        s->free_entries = e->next_free;
        free(e);
    }
    free(s->spool_dir);
    free(s->buckets);
    free(s->name);
    free(s);
    if (heir)
        pskgw_sink_spool_take(heir); /* the spool files are closed and unlocked now */
    cb(arg);
}

static void handle_closed(uv_handle_t *h)
{
    release(h->data);
}

static void part_closed(void *arg)
{
    release(arg);
}

void pskgw_sink_backend_closed(pskgw_sink_t *s)
{
    release(s);
}

static void close_timer_cb(uv_timer_t *t)
{
    pskgw_sink_close_phase2(t->data);
}

void pskgw_sink_close_phase2(pskgw_sink_t *s)
{
    unsigned long long spooled = 0;
    unsigned long long lost = 0;

    if (s->phase2)
        return;
    s->phase2 = true;
    uv_timer_stop(&s->retry_timer);
    uv_timer_stop(&s->close_timer);
    /* the backend forgets every token: what is still queued or in flight is not delivered */
    s->pending = 3; /* backend, two timers */
    s->be->close(s->impl);
    for (pskgw_list_t *first; (first = pskgw_list_first(&s->queue)) != NULL;) {
        entry_t *e = pskgw_container_of(first, entry_t, link);
        pskgw_sub_t *sub = e->sub;

        e->sub = NULL;
        e->inflight = false;
        e->dev->busy = false;
        if (e->dlq) {
            e->dlq->e = NULL; /* its write completes before the appender closes */
            e->dlq = NULL;
        }
        if (sub) {
            /* in queue order; a message in flight at close of a device that has spooled records
             * is older than them yet lands behind them (the one reorder, see README.md) */
            int rc = pskgw_sink_spool_msg(s, e->msg, sub, e->dev);
            if (rc == 0)
                spooled++;
            if (rc < 0) {
                lost++;
                s->st.dropped++;
                PSKGW_WARN("sink \"%s\": message \"%s\" lost at close: %s", s->name, e->msg->id,
                           pskgw_strerror(rc));
                pskgw_sub_done(sub, PSKGW_ECANCELED);
            }
        }
        /* replayed records stay in the spool: their mark is never done */
        e->mark = NULL;
        pskgw_sink_finish(s, e, 0);
    }
    s->inflight = 0;
    /* What a shutdown gave up on, for the operator: undelivered messages go to the spool (sent
     * at the next start) or, without one, are lost. */
    if (spooled || lost)
        PSKGW_NOTICE("sink \"%s\": closed with %llu undelivered message%s: %llu spooled, %llu "
                     "lost",
                     s->name, spooled + lost, spooled + lost == 1 ? "" : "s", spooled, lost);
    if (s->spool) {
        pskgw_sink_commit_marks(s);
        s->pending++;
        pskgw_spool_close(s->spool, part_closed, s);
    }
    if (s->dlq) {
        s->pending++;
        pskgw_appender_close(s->dlq, part_closed, s);
    }
    uv_close((uv_handle_t *)&s->retry_timer, handle_closed);
    uv_close((uv_handle_t *)&s->close_timer, handle_closed);
}

void pskgw_sink_close_start(pskgw_sink_t *s)
{
    if (s->qlen == 0) {
        pskgw_sink_close_phase2(s);
        return;
    }
    uv_timer_start(&s->close_timer, close_timer_cb, s->close_timeout_ms, 0);
    pskgw_sink_dispatch(s);
}

void pskgw_sink_close(pskgw_sink_t *s, void (*cb)(void *arg), void *arg)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    if (s->spool_from)
        return; /* pskgw_sink_spool_take() goes on with it */
    pskgw_sink_close_start(s);
}
