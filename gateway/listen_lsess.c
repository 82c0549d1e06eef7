/* The end of a listener session's struct: its handles closed, its timer given up and made
 * again, and the listener's reaper for ended sessions that have no handle left to close. See
 * listen_internal.h. */
#include "gateway/listen_internal.h"

#include "common/err.h"
#include "dtls/ctx.h"
#include "dtls/slab.h"

#include <stdlib.h>
#include <string.h>

/* The struct and what only it points at (the TCP connection's allocation, the handshake's
 * state, the peer's name). */
void pskgw_lsess_free_struct(pskgw_lsess_t *s)
{
    if (s->hs != NULL) {
        pskgw_halfopen_release(&s->l->half_open, &s->hs->half_open); /* lsess_new's error path */
        /* areq: given back by pskgw_lsess_end (pskgw_listen_on_unpark) */
        pskgw_slab_release(s->hs);
    }
    pskgw_slab_release(s->peer);
    if (s->l->opt.proto == PSKGW_LISTEN_TCP)
        free(s->u.tcp);
    pskgw_slab_release(s->timer); /* NULL but on lsess_new's error path: see timer_closed */
    pskgw_slab_release(s);
}

/* The struct of an ended session whose handles are all closed. */
static void lsess_free(pskgw_lsess_t *s)
{
    pskgw_listener_t *l = s->l;

    pskgw_dtls_ctx_free(s->dctx); /* ds was freed in pskgw_lsess_end */
    pskgw_lsess_free_struct(s);
    pskgw_listener_unref(l);
}

static void lsess_closed_one(pskgw_lsess_t *s)
{
    /* A live session's timer closes when it is dropped (lsess_timer_drop): not its end. */
    if (--s->pending_closes > 0 || !s->ended)
        return;
    lsess_free(s);
}

void pskgw_lsess_handle_closed(uv_handle_t *h)
{
    lsess_closed_one(h->data);
}

static void timer_closed(uv_handle_t *h)
{
    pskgw_lsess_t *s = h->data;

    pskgw_slab_release(h);
    lsess_closed_one(s);
}

/* The session's timer closed and freed (in its close callback); idempotent. */
void pskgw_lsess_timer_drop(pskgw_lsess_t *s)
{
    uv_timer_t *t = s->timer;

    if (t == NULL)
        return;
    s->timer = NULL;
    (void)uv_timer_stop(t);
    uv_close((uv_handle_t *)t, timer_closed);
}

/* The session's timer, made again when it had been dropped; NULL without memory. */
uv_timer_t *pskgw_lsess_timer(pskgw_lsess_t *s)
{
    if (s->timer != NULL)
        return s->timer;
    s->timer = pskgw_slab_calloc(PSKGW_SLAB_AWAKE, sizeof(*s->timer));
    if (s->timer == NULL)
        return NULL;
    (void)uv_timer_init(s->l->loop, s->timer);
    s->timer->data = s;
    s->pending_closes++;
    return s->timer;
}

/* Ended sessions with no handle left to close (an established UDP session under the sweep has
 * no timer) are freed by the listener's reaper: a uv_check handle, so never inside a callback
 * of the dtls session or of the loop's I/O that ended them. */
static void reap(uv_check_t *c)
{
    pskgw_listener_t *l = c->data;
    pskgw_lsess_t *s;

    while ((s = l->reap) != NULL) {
        l->reap = s->next_id;
        lsess_free(s);
    }
    (void)uv_check_stop(c);
}

static void reap_closed(uv_handle_t *h)
{
    pskgw_listener_t *l = h->data;

    reap(&l->reap_check);
    pskgw_listener_unref(l);
}

void pskgw_lsess_reap_later(pskgw_lsess_t *s)
{
    pskgw_listener_t *l = s->l;

    if (!l->reap_open) {
        (void)uv_check_init(l->loop, &l->reap_check);
        l->reap_check.data = l;
        l->reap_open = true;
        l->refs++; /* released when the handle is closed (pskgw_listener_close) */
    }
    s->next_id = l->reap; /* out of by_id since pskgw_lsess_end */
    l->reap = s;
    (void)uv_check_start(&l->reap_check, reap);
}

void pskgw_listen_reap_stop(pskgw_listener_t *l)
{
    if (!l->reap_open)
        return;
    /* Its close callback frees the ended sessions still on the list. */
    l->reap_open = false;
    (void)uv_check_stop(&l->reap_check);
    uv_close((uv_handle_t *)&l->reap_check, reap_closed);
}

void pskgw_lsess_hs_drop(pskgw_lsess_t *s)
{
    if (s->hs == NULL)
        return;
    pskgw_listen_on_unpark(s, uv_now(s->l->loop)); /* an admission resolve() never took */
    pskgw_halfopen_release(&s->l->half_open, &s->hs->half_open);
    pskgw_slab_release(s->hs);
    s->hs = NULL;
}

const char *pskgw_lsess_peer(const pskgw_lsess_t *s, char buf[PSKGW_PEER_STR_CAP])
{
    if (s->peer != NULL)
        return s->peer;
    buf[0] = '\0';
    if (s->l->opt.proto == PSKGW_LISTEN_UDP)
        (void)pskgw_listen_peer_name((const struct sockaddr *)&s->u.udp.addr, buf,
                                     PSKGW_PEER_STR_CAP, NULL, NULL);
    return buf;
}

int pskgw_lsess_set_peer(pskgw_lsess_t *s, const char *peer)
{
    char *p = pskgw_slab_strdup(PSKGW_SLAB_AWAKE, peer);

    if (p == NULL)
        return PSKGW_ENOMEM; /* the old name stays */
    pskgw_slab_release(s->peer);
    s->peer = p;
    return 0;
}
