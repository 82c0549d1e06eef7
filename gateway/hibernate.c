/* A UDP listener's idle sweep: established sessions idle for hibernate_after_s hibernate
 * (dtls/session.h). One repeating timer per listener walks the session table; no timer is
 * touched per record. See listen_internal.h. */
#include "common/err.h"
#include "common/log.h"
#include "gateway/listen_internal.h"

/* The sweep runs four times per hibernate_after_s (at least every 250 ms, at most every 30 s),
 * so a session hibernates between hibernate_after_s and 1.25 times it after its last record. */
static uint64_t sweep_ms(const pskgw_listener_t *l)
{
    uint64_t ms = (uint64_t)l->opt.hibernate_after_s * 1000 / 4;

    return ms < 250 ? 250 : ms > 30000 ? 30000 : ms;
}

static void sweep(uv_timer_t *t)
{
    pskgw_listener_t *l = t->data;
    uint64_t now = uv_now(l->loop);
    uint64_t idle = (uint64_t)l->opt.hibernate_after_s * 1000;

    for (size_t i = 0; !l->closing && i < l->by_id.cap; i++) {
        for (pskgw_lsess_t *s = l->by_id.b[i]; s != NULL; s = s->next_id) {
            if (s->ended || s->ds == NULL || !s->established || s->hibernated)
                continue;
            if (now < pskgw_dtls_session_last_rx(s->ds) + idle || now < s->last_ms + idle)
                continue;
            if (pskgw_dtls_session_hibernate(s->ds) == 0) {
                s->hibernated = true;
                l->counters.hibernations++;
                l->counters.hibernated++;
            }
        }
    }
}

int pskgw_listen_hibernate_start(pskgw_listener_t *l)
{
    int rc;

    if (l->opt.hibernate_after_s == UINT32_MAX || l->opt.hibernate_after_s == 0)
        return 0;
    rc = uv_timer_init(l->loop, &l->hib_timer);
    if (rc < 0)
        return pskgw_err_from_errno(-rc);
    l->hib_timer.data = l;
    l->hib_open = true;
    l->refs++;
    (void)uv_timer_start(&l->hib_timer, sweep, sweep_ms(l), sweep_ms(l));
    return 0;
}

static void hib_closed(uv_handle_t *h)
{
    pskgw_listener_unref(h->data);
}

void pskgw_listen_hibernate_stop(pskgw_listener_t *l)
{
    if (!l->hib_open)
        return;
    l->hib_open = false;
    (void)uv_timer_stop(&l->hib_timer);
    uv_close((uv_handle_t *)&l->hib_timer, hib_closed);
}

void pskgw_listen_on_thaw(pskgw_lsess_t *s, bool ok)
{
    pskgw_listener_t *l = s->l;

    if (ok)
        l->counters.thaws++;
    else
        l->counters.thaw_failures++;
    if (s->hibernated) {
        s->hibernated = false;
        l->counters.hibernated--;
    }
}
