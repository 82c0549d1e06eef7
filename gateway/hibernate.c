/* A UDP listener's idle sweep and its part of a hand-over (handover.h): established sessions idle for hibernate_after_s hibernate
 * (dtls/session.h). One repeating timer per listener walks the session table; no timer is
 * touched per record. See listen_internal.h. */
#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "dtls/slab.h"
#include "gateway/handover.h"
#include "gateway/listen_internal.h"
#include "gateway/listen_limits.h"

#include <stdlib.h>
#include <string.h>

/* The sweep runs four times per hibernate_after_s or idle_timeout_s, whichever is shorter (at
 * least every 250 ms, at most every 30 s), so a session hibernates between hibernate_after_s and
 * 1.25 times it after its last record, and ends idle as late. */
static uint64_t sweep_ms(const pskgw_listener_t *l)
{
    uint32_t p = l->opt.hibernate_after_s < l->opt.idle_timeout_s ? l->opt.hibernate_after_s
                                                                  : l->opt.idle_timeout_s;
    uint64_t ms = (uint64_t)p * 1000 / 4;

    return ms < 250 ? 250 : ms > 30000 ? 30000 : ms;
}

/* Ends the established sessions idle past idle_timeout_s (their per-session timer is not used
 * once established: listen_api.c cb_timer). Ids first, then one lookup each: ending a session
 * may end another one (pskgw_lsess_end), so the chains are not walked while sessions end. A
 * frozen session ends as the dtls layer ends a hibernated one: without close_notify. */
static void end_idle(pskgw_listener_t *l, uint64_t *ids, size_t n, uint64_t now)
{
    for (size_t k = 0; k < n; k++) {
        pskgw_lsess_t *s = pskgw_ltable_find_id(&l->by_id, ids[k]);

        if (s == NULL || s->ended)
            continue;
        if (s->ds != NULL) {
            pskgw_dtls_session_timeout(s->ds, now); /* ends it via cb_closed */
        } else if (s->frozen != NULL) {
            l->counters.idle_closes++;
            pskgw_lsess_end(s);
        }
    }
}

/* ---- frozen sessions --------------------------------------------------------------------
 * A hibernated session of a UDP listener that does not forward (forward*.c use the dtls session
 * of every established session) gives its dtls session struct up for the frozen form; an entry
 * point makes it again (pskgw_lsess_ds). */
static void freeze(pskgw_lsess_t *s)
{
    pskgw_dtls_frozen_t *f = NULL;

    if (s->l->opt.forward.enabled || s->ds == NULL || !s->hibernated)
        return;
    if (pskgw_dtls_session_freeze(s->ds, &f) == 0) {
        s->ds = NULL;
        s->frozen = f;
        /* What a frozen session does without: the handshake's state (ds, which borrowed
         * s->hs->res, is gone) and the peer's name (pskgw_lsess_ds formats it again). */
        pskgw_lsess_hs_drop(s);
        pskgw_slab_release(s->peer);
        s->peer = NULL;
    }
}

pskgw_dtls_session_t *pskgw_lsess_ds(pskgw_lsess_t *s)
{
    pskgw_dtls_session_t *ds = NULL;

    if (s->ended)
        return NULL;
    if (s->frozen == NULL)
        return s->ds;
    /* The thawed session has no handshake state: its dtls session gets the listener's resolver
     * (no handshake runs on an established session; the admission wraps new handshakes only). */
    if (s->peer == NULL) {
        char peer[PSKGW_PEER_STR_CAP];

        /* once per thaw, not per message */
        s->peer = pskgw_slab_strdup(PSKGW_SLAB_AWAKE, pskgw_lsess_peer(s, peer));
    }
    if (s->peer == NULL ||
        pskgw_dtls_session_unfreeze(s->dctx, &s->l->resolver, &pskgw_listen_session_cbs, s,
                                    s->frozen, uv_now(s->l->loop), &ds) < 0) {
        pskgw_listen_on_thaw(s, false);
        pskgw_lsess_end(s); /* frees the frozen form */
        return NULL;
    }
    s->frozen = NULL;
    s->ds = ds;
    return ds;
}

const char *pskgw_lsess_identity(const pskgw_lsess_t *s)
{
    if (s->ended)
        return NULL;
    if (s->frozen != NULL)
        return pskgw_dtls_frozen_identity(s->frozen);
    return s->ds != NULL ? pskgw_dtls_session_identity(s->ds) : NULL;
}

const char *pskgw_lsess_uid(const pskgw_lsess_t *s)
{
    if (s->ended)
        return NULL;
    if (s->frozen != NULL)
        return pskgw_dtls_frozen_uid(s->frozen);
    return s->ds != NULL ? pskgw_dtls_session_uid(s->ds) : NULL;
}

const uint8_t *pskgw_lsess_cid(const pskgw_lsess_t *s, size_t *len)
{
    if (s->ended)
        return NULL;
    if (s->frozen != NULL)
        return pskgw_dtls_frozen_cid(s->frozen, len);
    return s->ds != NULL ? pskgw_dtls_session_cid(s->ds, len) : NULL;
}

uint64_t pskgw_lsess_last_rx(const pskgw_lsess_t *s)
{
    if (s->frozen != NULL)
        return pskgw_dtls_frozen_last_rx(s->frozen);
    return s->ds != NULL ? pskgw_dtls_session_last_rx(s->ds) : 0;
}

static void sweep(uv_timer_t *t)
{
    pskgw_listener_t *l = t->data;
    uint64_t now = uv_now(l->loop);
    uint64_t hib = (uint64_t)l->opt.hibernate_after_s * 1000;
    uint64_t idle = (uint64_t)l->opt.idle_timeout_s * 1000;
    uint64_t ids[256];
    size_t n = 0;

    for (size_t i = 0; !l->closing && i < l->by_id.cap; i++) {
        for (pskgw_lsess_t *s = l->by_id.b[i]; s != NULL; s = s->next_id) {
            uint64_t rx;

            if (s->ended || (s->ds == NULL && s->frozen == NULL) || !s->established)
                continue;
            rx = pskgw_lsess_last_rx(s);
            if (idle > 0 && now >= rx + idle) {
                if (n < sizeof(ids) / sizeof(ids[0]))
                    ids[n++] = s->id; /* the rest at the next sweep */
                continue;
            }
            if (s->hibernated) {
                freeze(s); /* imported, or woken by an entry point that did not thaw it */
                continue;
            }
            if (now < rx + hib || now < s->last_ms + hib)
                continue;
            if (pskgw_dtls_session_hibernate(s->ds) == 0) {
                s->hibernated = true;
                l->counters.hibernations++;
                l->counters.hibernated++;
                if (l->opt.sessions != NULL)
                    pskgw_listen_sessredis_store(s, now); /* a lost node costs one round trip */
                freeze(s);
            }
        }
    }
    end_idle(l, ids, n, now);
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

void pskgw_listen_hibernate_retime(pskgw_listener_t *l)
{
    if (l->hib_open)
        (void)uv_timer_start(&l->hib_timer, sweep, sweep_ms(l), sweep_ms(l));
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
    if (ok && s->in_redis)
        pskgw_listen_sessredis_thawed(s);
}

/* ---- restart without a handshake ----------------------------------------------------------
 * The listener's record: u8 sockaddr length, the peer's sockaddr, the dtls session's record. */

static bool handover_ok(const pskgw_listener_t *l)
{
    return l->opt.proto == PSKGW_LISTEN_UDP && !l->opt.forward.enabled;
}

int pskgw_listen_export_record(pskgw_listener_t *l, pskgw_lsess_t *s, uint64_t now, uint8_t **out,
                               size_t *len)
{
    uint8_t *rec = NULL, *wrap;
    size_t rlen = 0, alen, slen;
    int rc;

    (void)l;
    alen = s->u.udp.addr.sin6_family == AF_INET ? sizeof(struct sockaddr_in)
                                                : sizeof(struct sockaddr_in6);
    if (pskgw_lsess_ds(s) == NULL)
        return PSKGW_ECLOSED; /* ended (or could not be unfrozen: ended now) */
    rc = pskgw_dtls_session_export(s->ds, now, &rec, &rlen);
    if (rc < 0)
        return rc;
    slen = s->in_redis ? sizeof(s->u.udp.redis_stamp) : 0;
    wrap = malloc(1 + alen + slen + rlen);
    if (wrap == NULL) {
        rc = PSKGW_ENOMEM;
    } else {
        /* Whether it is in Redis goes with it: a session stored there is claimed before it
         * thaws in the next process too. */
        wrap[0] = (uint8_t)(alen | PSKGW_LREC_FLAGGED | (slen > 0 ? PSKGW_LREC_IN_REDIS : 0));
        memcpy(wrap + 1, &s->u.udp.addr, alen);
        memcpy(wrap + 1 + alen, s->u.udp.redis_stamp, slen);
        memcpy(wrap + 1 + alen + slen, rec, rlen);
        *out = wrap;
        *len = 1 + alen + slen + rlen;
    }
    pskgw_wipe(rec, rlen);
    free(rec);
    return rc;
}

static int export_one(pskgw_listener_t *l, pskgw_lsess_t *s, uint64_t now)
{
    uint8_t *wrap = NULL;
    size_t len = 0;
    char peer[PSKGW_PEER_STR_CAP];
    int rc = pskgw_listen_export_record(l, s, now, &wrap, &len);

    if (rc < 0)
        return rc;
    rc = pskgw_handover_put(l->domain, l->name, pskgw_lsess_peer(s, peer), wrap, len);
    pskgw_wipe(wrap, len);
    free(wrap);
    return rc;
}

void pskgw_listen_handover_export(pskgw_listener_t *l)
{
    uint64_t now = uv_now(l->loop);
    size_t n = 0, kept = 0;

    if (!handover_ok(l) || !pskgw_handover_armed())
        return;
    for (size_t i = 0; i < l->by_id.cap && l->by_id.n > 0; i++) {
        pskgw_lsess_t *s = l->by_id.b[i];

        while (s != NULL) {
            pskgw_lsess_t *next = s->next_id;

            if (!s->ended && (s->ds != NULL || s->frozen != NULL) && s->established &&
                s->successor == NULL) {
                if (export_one(l, s, now) == 0) {
                    pskgw_lsess_end(s); /* no close_notify: the next process goes on with it */
                    n++;
                } else {
                    kept++; /* handshaking peers: closed as before */
                }
            }
            s = next;
        }
    }
    PSKGW_NOTICE("listener \"%s\": %zu session%s exported for the next process (%zu not)", l->name,
                 n, n == 1 ? "" : "s", kept);
}

struct import_ctx {
    pskgw_listener_t *l;
    size_t taken, expired, bad;
};

/* A session with a Connection ID is usable only when this listener reads CIDs of its length:
 * the device keeps sending the CID it negotiated. */
static bool cid_fits(const pskgw_listener_t *l, const pskgw_lsess_t *s)
{
    size_t n = 0;

    return pskgw_dtls_session_cid(s->ds, &n) == NULL || n == l->opt.cid_len;
}

int pskgw_listen_import_record(pskgw_listener_t *l, const uint8_t *rec, size_t len, uint64_t now,
                               pskgw_lsess_t **out)
{
    struct sockaddr_in6 addr;
    uint8_t key[PSKGW_PEER_KEY_MAX];
    uint8_t key_len = 0;
    char peer[PSKGW_PEER_STR_CAP];
    pskgw_lsess_t *s = NULL;
    uint8_t stamp[sizeof(s->u.udp.redis_stamp)];
    size_t alen, slen, off;
    bool flagged, in_redis;
    int rc;

    memset(&addr, 0, sizeof(addr));
    if (len < 1)
        return PSKGW_EPARSE;
    /* An earlier version's record says nothing of Redis: in_redis as before, any value. */
    flagged = (rec[0] & PSKGW_LREC_FLAGGED) != 0;
    in_redis = flagged ? (rec[0] & PSKGW_LREC_IN_REDIS) != 0 : l->opt.sessions != NULL;
    alen = rec[0] & ~(PSKGW_LREC_FLAGGED | PSKGW_LREC_IN_REDIS) & 0xff;
    slen = flagged && in_redis ? sizeof(stamp) : 0;
    if (alen > sizeof(addr) || len < 1 + alen + slen || alen < sizeof(struct sockaddr_in))
        return PSKGW_EPARSE;
    memcpy(&addr, rec + 1, alen);
    memset(stamp, 0, sizeof(stamp));
    memcpy(stamp, rec + 1 + alen, slen);
    off = 1 + alen + slen; /* the dtls record */
    if (pskgw_dtls_session_record_idle_ms(rec + off, len - off) >=
        (uint64_t)l->opt.idle_timeout_s * 1000)
        return PSKGW_ETIMEOUT;
    if (pskgw_listen_peer_name((const struct sockaddr *)&addr, peer, sizeof(peer), key, &key_len) <
        0)
        return PSKGW_EPARSE;
    if (pskgw_ltable_find_peer(&l->by_peer, key, key_len) != NULL)
        return PSKGW_EEXISTS;
    if ((rc = pskgw_lsess_new(l, key, key_len, peer, &s)) < 0)
        return rc;
    /* It runs no handshake: no handshake state (lsess_new's goes), and the listener's resolver
     * for its dtls session, as a thawed session has (pskgw_lsess_ds). */
    pskgw_lsess_hs_drop(s);
    memcpy(&s->u.udp.addr, &addr, alen);
    rc = pskgw_dtls_session_import(l->dctx, &l->resolver, &pskgw_listen_session_cbs, s, rec + off,
                                   len - off, now, &s->ds);
    if (rc == 0 && !cid_fits(l, s))
        rc = PSKGW_EPARSE; /* unusable here */
    if (rc < 0) {
        pskgw_lsess_end(s);
        return rc;
    }
    s->established = true;
    pskgw_listen_cid_established(s); /* its records find it by CID from any address */
    s->hibernated = true;
    /* Stored there: claimed before it thaws (its caller clears it when it took it from there). */
    s->in_redis = in_redis && l->opt.sessions != NULL;
    memcpy(s->u.udp.redis_stamp, stamp, sizeof(stamp));
    l->counters.hibernated++;
    pskgw_dtls_session_timeout(s->ds, now); /* announces its idle deadline */
    *out = s;
    return 0;
}

static void import_one(void *arg, const char *peer_str, const uint8_t *rec, size_t len)
{
    struct import_ctx *ic = arg;
    pskgw_lsess_t *s = NULL;
    int rc = pskgw_listen_import_record(ic->l, rec, len, uv_now(ic->l->loop), &s);

    (void)peer_str;
    if (rc == 0)
        ic->taken++;
    else if (rc == PSKGW_ETIMEOUT)
        ic->expired++;
    else
        ic->bad++;
}

void pskgw_listen_handover_import(pskgw_listener_t *l)
{
    struct import_ctx ic = { .l = l };

    if (!handover_ok(l))
        return;
    if (pskgw_handover_take(l->domain, l->name, import_one, &ic) == 0)
        return;
    PSKGW_NOTICE("listener \"%s\": %zu session%s taken over without a handshake (%zu expired, %zu "
                 "unusable)",
                 l->name, ic.taken, ic.taken == 1 ? "" : "s", ic.expired, ic.bad);
}
