/* The hiredis-on-libuv adapter of redisconn: the contract is in uvadapter.h.
 *
 * Our own libuv adapter instead of hiredis' adapters/libuv.h (0.14): that one ignores a poll
 * error status, so a refused connect is never noticed (no connect callback, ever), and it frees
 * its poll handle behind its owner's back, so a close could not know when the loop is clean.
 * Ours hands a poll error to hiredis in the direction it waits on (write while connecting or
 * with output pending, else read), so hiredis reads the socket error itself, and it is counted
 * in `handles` until its close callback.
 */
#include "redisconn/uvadapter.h"

#include "common/err.h"

#include <hiredis/async.h>
#include <stdlib.h>

typedef struct {
    pskgw_redisconn_t *c;
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;
} adapter_t;

/* ---- adapter ---- */

static void ad_poll_cb(uv_poll_t *h, int status, int events)
{
    adapter_t *a = h->data;
    pskgw_redisconn_t *c = a->c;

    if (status < 0) /* let hiredis find the socket error (refused connect, reset) */
        events = a->events & UV_WRITABLE ? UV_WRITABLE : UV_READABLE;
    c->depth++;
    if (a->ac && (events & UV_READABLE))
        redisAsyncHandleRead(a->ac);
    if (a->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(a->ac);
    c->depth--;
}

static void ad_update(adapter_t *a, int add, int del)
{
    a->events = (a->events | add) & ~del;
    if (uv_is_closing((uv_handle_t *)&a->poll))
        return;
    if (a->events)
        uv_poll_start(&a->poll, a->events, ad_poll_cb);
    else
        uv_poll_stop(&a->poll);
}

static void ad_add_read(void *p)
{
    ad_update(p, UV_READABLE, 0);
}

static void ad_del_read(void *p)
{
    ad_update(p, 0, UV_READABLE);
}

static void ad_add_write(void *p)
{
    ad_update(p, UV_WRITABLE, 0);
}

static void ad_del_write(void *p)
{
    ad_update(p, 0, UV_WRITABLE);
}

static void ad_closed(uv_handle_t *h)
{
    adapter_t *a = h->data;
    pskgw_redisconn_t *c = a->c;

    free(a);
    c->handles--;
    pskgw_rc_maybe_closed(c);
}

static void ad_cleanup(void *p)
{
    adapter_t *a = p;

    a->ac = NULL; /* hiredis is freeing the context */
    uv_close((uv_handle_t *)&a->poll, ad_closed);
}

int pskgw_rc_attach(pskgw_redisconn_t *c, redisAsyncContext *ac)
{
    adapter_t *a = calloc(1, sizeof(*a));

    if (!a)
        return PSKGW_ENOMEM;
    if (uv_poll_init(c->loop, &a->poll, ac->c.fd) != 0) {
        free(a);
        return PSKGW_EIO;
    }
    a->c = c;
    a->ac = ac;
    a->poll.data = a;
    c->handles++;
    ac->ev.data = a;
    ac->ev.addRead = ad_add_read;
    ac->ev.delRead = ad_del_read;
    ac->ev.addWrite = ad_add_write;
    ac->ev.delWrite = ad_del_write;
    ac->ev.cleanup = ad_cleanup;
    return 0;
}

/* ---- safe freeing ---- */

void pskgw_rc_free_context(pskgw_redisconn_t *c, redisAsyncContext *ac)
{
    c->depth++;
    redisAsyncFree(ac); /* pending callbacks get NULL replies; ac != c->ac: nothing reconnects */
    c->depth--;
}

/* Free a context we gave up: at once, or from the reap timer when inside hiredis' dispatch. */
void pskgw_rc_discard(pskgw_redisconn_t *c, redisAsyncContext *ac)
{
    if (c->depth == 0) {
        pskgw_rc_free_context(c, ac);
        return;
    }
    /* An older doomed context is never the one in dispatch (attempt() reaps before a new
     * context exists): it can go now. */
    if (c->doomed)
        pskgw_rc_free_context(c, c->doomed);
    c->doomed = ac;
    uv_timer_start(&c->reap_timer, pskgw_rc_reap_cb, 0, 0);
}

void pskgw_rc_reap_cb(uv_timer_t *t)
{
    pskgw_redisconn_t *c = t->data;
    redisAsyncContext *ac = c->doomed;

    c->doomed = NULL;
    if (ac)
        pskgw_rc_free_context(c, ac);
    if (c->closing)
        pskgw_rc_close_handles(c);
}
