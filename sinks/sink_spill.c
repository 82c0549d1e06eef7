/* The sink core's spool side (sink_spill.h): spilling messages to the spool in device order,
 * replaying its records into the queue, and taking the spool over from the sink a reload
 * replaced. */
#include "sinks/sink_spill.h"

#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "sinks/sink_close.h"
#include "sinks/spool.h"

#include <stdlib.h>
#include <string.h>

static void spool_append_cb(void *arg, int status)
{
    spool_ctx_t *c = arg;
    pskgw_sink_t *s = c->s;

    if (status < 0) {
        s->st.dropped++;
        if (c->dev->spooled > 0)
            c->dev->spooled--;
        pskgw_sink_dev_put(s, c->dev);
    }
    if (c->sub)
        pskgw_sub_done(c->sub, status);
    free(c);
}

/* Spool m (for sub, may be NULL). 0 or the error (counted as a drop). */
int pskgw_sink_spool_msg(pskgw_sink_t *s, pskgw_msg_t *m, pskgw_sub_t *sub, device_t *d)
{
    spool_ctx_t *c;
    int rc;

    if (!s->spool)
        return PSKGW_EFULL;
    c = malloc(sizeof(*c));
    if (!c)
        return PSKGW_ENOMEM;
    c->s = s;
    c->sub = sub;
    c->dev = d;
    rc = pskgw_spool_append(s->spool, m, spool_append_cb, c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    d->spooled++;
    s->st.spooled++;
    return 0;
}

/* d's messages must go to the spool from now on: first move its queued messages of this run
 * that are not in flight there, in order, so that d's spooled records stay an ordered suffix
 * of its messages (only its single in-flight message, if any, is older and in memory). Replayed
 * entries stay: their records sit earlier in the spool. 0, or the spool error of the first
 * message that could not be moved (it and the later ones stay queued). */
int pskgw_sink_spill_device(pskgw_sink_t *s, device_t *d)
{
    pskgw_list_t *pos, *tmp;

    pskgw_list_foreach_safe(pos, tmp, &s->queue)
    {
        entry_t *e = pskgw_container_of(pos, entry_t, link);
        int rc;

        if (d->refs == 0)
            break;
        if (e->dev != d || e->inflight || !e->sub)
            continue;
        rc = pskgw_sink_spool_msg(s, e->msg, e->sub, d);
        if (rc < 0)
            return rc;
        e->sub = NULL; /* its done callback now fires when its record is written */
        pskgw_sink_finish(s, e, 0);
    }
    return 0;
}

static int on_record(void *arg, const uint8_t *body, size_t len, uint64_t off, uint64_t end)
{
    pskgw_sink_t *s = arg;
    pskgw_msg_t *m = NULL;
    entry_t *e = NULL;
    mark_t *mk = NULL;
    device_t *d;
    int rc;

    (void)end;
    if (s->closing || s->qlen >= s->queue_size)
        return 1;
    mk = calloc(1, sizeof(*mk));
    if (!mk)
        return 1;
    mk->off = off;
    rc = pskgw_msg_decode(body, len, &m);
    if (rc == PSKGW_ENOMEM) {
        free(mk);
        return 1;
    }
    if (rc < 0) {
        PSKGW_ERR("sink \"%s\": undecodable spool record at offset %llu dropped", s->name,
                  (unsigned long long)off);
        s->st.dropped++;
        mk->done = true;
        goto link;
    }
    d = pskgw_sink_dev_get(s, pskgw_msg_device(m), m->dev_len, m->dev_hash);
    e = pskgw_sink_entry_new(s);
    if (!d || !e) {
        if (d)
            pskgw_sink_dev_put(s, d);
        if (e)
            pskgw_sink_entry_free(s, e);
        free(mk);
        pskgw_msg_unref(m);
        return 1;
    }
    /* records of earlier runs (before the backlog end) were never counted in d->spooled */
    if (d->spooled > 0 && !pskgw_spool_in_backlog(s->spool))
        d->spooled--;
    e->msg = m;
    e->dev = d;
    e->mark = mk;
    d->refs++;
    pskgw_sink_q_push(s, e);
    s->st.replayed++;
link:
    pskgw_list_insert_tail(&s->marks, &mk->link);
    return 0;
}

static void on_spool_ready(void *arg)
{
    pskgw_sink_t *s = arg;

    pskgw_sink_commit_marks(s);
    pskgw_sink_dispatch(s);
}

const pskgw_spool_cbs_t pskgw_sink_spool_cbs = { on_record, on_spool_ready };
/* The sink s replaced has closed: open the spool it held and append behind its records what s
 * held in memory meanwhile (in arrival order), then go on (or on with a close asked meanwhile). */
void pskgw_sink_spool_take(pskgw_sink_t *s)
{
    unsigned long long held = s->qlen;
    pskgw_list_t *nx;
    int rc;

    s->spool_from = NULL;
    rc = pskgw_spool_new(s->loop, s->spool_dir, s->name, s->spool_max_bytes, s->spool_fsync,
                         &pskgw_sink_spool_cbs, s, &s->spool);
    if (rc < 0) {
        s->spool = NULL;
        PSKGW_ERR("sink \"%s\": cannot open the spool of the sink it replaced: %s; it goes on "
                  "without one",
                  s->name, pskgw_strerror(rc));
    }
    for (pskgw_list_t *pos = pskgw_list_first(&s->queue); pos != NULL && s->spool; pos = nx) {
        entry_t *e = pskgw_container_of(pos, entry_t, link);

        nx = pos->next != &s->queue ? pos->next : NULL;
        if (pskgw_sink_spool_msg(s, e->msg, e->sub, e->dev) < 0)
            break;     /* it and the later ones are sent from memory */
        e->sub = NULL; /* its done callback now fires when its record is written */
        pskgw_sink_finish(s, e, 0);
    }
    if (s->spool)
        PSKGW_INFO("sink \"%s\": spool taken over from the sink it replaced (%llu message%s "
                   "held meanwhile, %llu spooled behind its records)",
                   s->name, held, held == 1 ? "" : "s", held - s->qlen);
    if (s->closing)
        pskgw_sink_close_start(s);
    else
        pskgw_sink_dispatch(s);
}
