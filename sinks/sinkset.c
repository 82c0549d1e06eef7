#include "sinks/sinkset.h"

#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "sinks/internal.h"

#include <stdlib.h>
#include <string.h>

#define SUBS_KEEP 4096u /* finished subs kept per set */

struct pskgw_sub {
    pskgw_sinkset_t *set;
    pskgw_list_t link;           /* set->done: completed, callback not yet fired */
    struct pskgw_sub *next_free; /* set->free_subs: a stack, singly linked on purpose */
    unsigned remaining;
    int status;
    pskgw_sinkset_done_cb cb;
    void *arg;
};

struct pskgw_sinkset {
    uv_loop_t *loop;
    pskgw_sink_t **sinks;
    size_t n;
    uv_idle_t idle;    /* fires completions outside of submit and of backend callbacks */
    pskgw_list_t done; /* completed subs, in completion order */
    unsigned live_subs;
    pskgw_sub_t *free_subs; /* finished subs kept for the next submits (no malloc per message) */
    unsigned nfree_subs;
    pskgw_msg_pool_t *msgs; /* the messages' freelist */
    bool closing;
    unsigned pending;  /* sinks + idle handle still closing */
    unsigned retiring; /* sinks an update removed, still flushing (they still complete subs) */
    void (*close_cb)(void *);
    void *close_arg;
};

static void flush_done(pskgw_sinkset_t *set)
{
    pskgw_list_t *first;

    while ((first = pskgw_list_first(&set->done)) != NULL) {
        pskgw_sub_t *sub = pskgw_container_of(first, pskgw_sub_t, link);

        pskgw_list_remove(first);
        set->live_subs--;
        if (sub->cb)
            sub->cb(sub->arg, sub->status);
        if (set->nfree_subs < SUBS_KEEP) {
            sub->next_free = set->free_subs;
            set->free_subs = sub;
            set->nfree_subs++;
        } else {
            free(sub);
        }
    }
}

static void free_subs(pskgw_sinkset_t *set)
{
    while (set->free_subs) {
        pskgw_sub_t *sub = set->free_subs;
        set->free_subs = sub->next_free;
        free(sub);
    }
    set->nfree_subs = 0;
}

static void idle_cb(uv_idle_t *h)
{
    pskgw_sinkset_t *set = h->data;

    uv_idle_stop(h);
    flush_done(set);
}

void pskgw_sub_done(pskgw_sub_t *sub, int status)
{
    pskgw_sinkset_t *set = sub->set;

    if (status < 0 && sub->status == 0)
        sub->status = status;
    if (--sub->remaining > 0)
        return;
    pskgw_list_insert_tail(&set->done, &sub->link);
    if (!uv_is_closing((uv_handle_t *)&set->idle))
        uv_idle_start(&set->idle, idle_cb);
}

int pskgw_sinkset_new(uv_loop_t *loop, const pskgw_sink_options_t *opts, size_t n,
                      pskgw_sinkset_t **out)
{
    pskgw_sinkset_t *set;
    int rc;

    if (!loop || !opts || n == 0 || !out)
        return PSKGW_EINVAL;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (opts[i].name && opts[j].name && strcmp(opts[i].name, opts[j].name) == 0) {
                PSKGW_ERR("sinks: two sinks named \"%s\"", opts[i].name);
                return PSKGW_ECONFIG;
            }
    set = calloc(1, sizeof(*set));
    if (!set)
        return PSKGW_ENOMEM;
    set->sinks = calloc(n, sizeof(*set->sinks));
    if (!set->sinks || pskgw_msg_pool_new(&set->msgs) < 0) {
        free(set->sinks);
        free(set);
        return PSKGW_ENOMEM;
    }
    set->loop = loop;
    pskgw_list_init(&set->done);
    for (size_t i = 0; i < n; i++) {
        rc = pskgw_sink_new(loop, &opts[i], &set->sinks[i]);
        if (rc < 0) {
            PSKGW_ERR("sink \"%s\": cannot create: %s", opts[i].name ? opts[i].name : "",
                      pskgw_strerror(rc));
            goto fail;
        }
        set->n++;
    }
    uv_idle_init(loop, &set->idle);
    set->idle.data = set;
    *out = set;
    return 0;
fail:
    /* sinks already made must be closed asynchronously: they free themselves */
    for (size_t i = 0; i < set->n; i++)
        pskgw_sink_close(set->sinks[i], free, NULL);
    pskgw_msg_pool_free(set->msgs);
    free(set->sinks);
    free(set);
    return rc;
}

int pskgw_sinkset_submit(pskgw_sinkset_t *set, const pskgw_envelope_t *env,
                         pskgw_sinkset_done_cb done_cb, void *arg, char *out_id)
{
    pskgw_msg_t *m;
    pskgw_sub_t *sub;
    int rc;

    if (set->closing)
        return PSKGW_ECLOSED;
    if ((rc = pskgw_msg_new_fresh(set->msgs, env, &m)) < 0)
        return rc;
    if (set->free_subs) {
        sub = set->free_subs;
        set->free_subs = sub->next_free;
        set->nfree_subs--;
    } else if (!(sub = malloc(sizeof(*sub)))) {
        pskgw_msg_unref(m);
        return PSKGW_ENOMEM;
    }
    memset(sub, 0, sizeof(*sub));
    sub->set = set;
    sub->cb = done_cb;
    sub->arg = arg;
    sub->remaining = (unsigned)set->n + 1; /* +1: held until every sink has it */
    set->live_subs++;
    for (size_t i = 0; i < set->n; i++)
        pskgw_sink_submit(set->sinks[i], m, sub);
    if (out_id)
        memcpy(out_id, m->id, PSKGW_MESSAGE_ID_LEN + 1);
    pskgw_sub_done(sub, 0);
    pskgw_msg_unref(m);
    return 0;
}

static void sink_closed(void *arg);

static void retired_closed(void *arg)
{
    pskgw_sinkset_t *set = arg;

    set->retiring--;
    if (set->closing)
        sink_closed(set);
}

static pskgw_sink_t *find_sink(const pskgw_sinkset_t *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (name && strcmp(pskgw_sink_name(set->sinks[i]), name) == 0)
            return set->sinks[i];
    return NULL;
}

/* 1 when s is one of next[0..n-1] */
static int sink_kept(pskgw_sink_t *s, pskgw_sink_t *const *next, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (next[i] == s)
            return 1;
    return 0;
}

int pskgw_sinkset_update(pskgw_sinkset_t *set, const pskgw_sink_options_t *opts, const bool *keep,
                         size_t n)
{
    pskgw_sink_t **next;
    pskgw_sink_t *prev;
    size_t made = 0;
    int rc = 0;

    if (set->closing)
        return PSKGW_ECLOSED;
    if (!opts || !keep || n == 0)
        return PSKGW_EINVAL;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (opts[i].name && opts[j].name && strcmp(opts[i].name, opts[j].name) == 0) {
                PSKGW_ERR("sinks: two sinks named \"%s\"", opts[i].name);
                return PSKGW_ECONFIG;
            }
    next = calloc(n, sizeof(*next));
    if (!next)
        return PSKGW_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (keep[i]) {
            next[i] = find_sink(set, opts[i].name);
            rc = next[i] ? 0 : PSKGW_EINVAL;
            continue;
        }
        prev = find_sink(set, opts[i].name);
        /* the same name with a spool: prev holds the files; the new sink takes them over once
         * prev has closed (pskgw_sink_new_after()) */
        if (prev && opts[i].spool.path && pskgw_sink_has_spool(prev))
            rc = pskgw_sink_new_after(set->loop, &opts[i], prev, &next[i]);
        else
            rc = pskgw_sink_new(set->loop, &opts[i], &next[i]);
        if (rc < 0)
            PSKGW_ERR("sink \"%s\": cannot create: %s", opts[i].name ? opts[i].name : "",
                      pskgw_strerror(rc));
        else
            made++;
    }
    if (rc < 0) {
        /* nothing changes: the sinks made for the update close (they free themselves) */
        for (size_t i = 0; i < n && made > 0; i++)
            if (!keep[i] && next[i]) {
                pskgw_sink_unlink_spool(next[i]);
                pskgw_sink_close(next[i], free, NULL); /* free(NULL) */
                made--;
            }
        free(next);
        return rc;
    }
    /* Sinks not kept deliver what they hold (or spool it) and close; the submits they hold
     * complete as they finish, as at close. */
    for (size_t i = 0; i < set->n; i++)
        if (!sink_kept(set->sinks[i], next, n)) {
            set->retiring++;
            pskgw_sink_close(set->sinks[i], retired_closed, set);
        }
    free(set->sinks);
    set->sinks = next;
    set->n = n;
    return 0;
}

void pskgw_sinkset_reopen(pskgw_sinkset_t *set)
{
    for (size_t i = 0; i < set->n; i++)
        pskgw_sink_reopen(set->sinks[i]);
}

size_t pskgw_sinkset_count(const pskgw_sinkset_t *set)
{
    return set->n;
}

int pskgw_sinkset_stats(const pskgw_sinkset_t *set, size_t i, const char **name,
                        pskgw_sink_stats_t *out)
{
    if (i >= set->n)
        return PSKGW_ERANGE;
    if (name)
        *name = pskgw_sink_name(set->sinks[i]);
    pskgw_sink_stats(set->sinks[i], out);
    return 0;
}

int pskgw_sinkset_health(const pskgw_sinkset_t *set, size_t i, pskgw_sink_health_t *out)
{
    if (i >= set->n)
        return PSKGW_ERANGE;
    pskgw_sink_health(set->sinks[i], out);
    return 0;
}

static void set_release(pskgw_sinkset_t *set)
{
    void (*cb)(void *);
    void *arg;

    if (--set->pending > 0)
        return;
    flush_done(set); /* anything the last closes completed */
    cb = set->close_cb;
    arg = set->close_arg;
    free_subs(set);
    pskgw_msg_pool_free(set->msgs);
    free(set->sinks);
    free(set);
    if (cb)
        cb(arg);
}

static void idle_closed(uv_handle_t *h)
{
    set_release(h->data);
}

static void sink_closed(void *arg)
{
    pskgw_sinkset_t *set = arg;

    if (set->pending == 2) {
        /* last sink: every sub is complete now; close the idle handle */
        flush_done(set);
        uv_close((uv_handle_t *)&set->idle, idle_closed);
    }
    set_release(set);
}

void pskgw_sinkset_close(pskgw_sinkset_t *set, void (*cb)(void *arg), void *arg)
{
    set->closing = true;
    set->close_cb = cb;
    set->close_arg = arg;
    set->pending = (unsigned)set->n + set->retiring + 1;
    for (size_t i = 0; i < set->n; i++)
        pskgw_sink_close(set->sinks[i], sink_closed, set);
}
