/* pskgw_listener: options, session tables, the dtls session callbacks, send and close.
 * The UDP and TCP specifics live in udp_listener.c and tcp_listener.c, Connection IDs in
 * listen_cid.c, peer names and the SO_REUSEPORT socket in listen_names.c. */
#define _DEFAULT_SOURCE /* SO_REUSEPORT, SOCK_NONBLOCK (Linux) */

#include "gateway/listen_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "dtls/slab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint64_t next_session_id; /* one loop per process: unique per run */

/* ---- tables ------------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Peer keys come from the network: the placement depends on the table's secret seed. */
static uint64_t hash_bytes(uint64_t seed, const uint8_t *p, size_t n)
{
    uint64_t h = mix64(seed ^ n);

    while (n > 0) {
        uint64_t w = 0;
        size_t k = n < 8 ? n : 8;

        memcpy(&w, p, k);
        h = mix64(h ^ w ^ seed) + 0x9e3779b97f4a7c15ULL;
        p += k;
        n -= k;
    }
    return mix64(h ^ seed);
}

static uint64_t hash_id(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return id;
}

static pskgw_lsess_t **chain_next(pskgw_lsess_t *s, bool peer)
{
    return peer ? &s->next_peer : &s->next_id;
}

static uint64_t sess_hash(const pskgw_ltable_t *t, const pskgw_lsess_t *s, bool peer)
{
    uint8_t key[PSKGW_PEER_KEY_MAX];

    if (!peer)
        return hash_id(s->id);
    return hash_bytes(t->seed, key, pskgw_lsess_key(s, key));
}

static int table_grow(pskgw_ltable_t *t, bool peer)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    pskgw_lsess_t **nb = calloc(ncap, sizeof(*nb));

    if (nb == NULL)
        return PSKGW_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        pskgw_lsess_t *s = t->b[i];

        while (s != NULL) {
            pskgw_lsess_t *next = *chain_next(s, peer);
            size_t j = sess_hash(t, s, peer) & (ncap - 1);

            *chain_next(s, peer) = nb[j];
            nb[j] = s;
            s = next;
        }
    }
    free(t->b);
    t->b = nb;
    t->cap = ncap;
    return 0;
}

static int table_insert(pskgw_ltable_t *t, pskgw_lsess_t *s, bool peer)
{
    size_t j;

    if (t->n + 1 > t->cap && table_grow(t, peer) < 0)
        return PSKGW_ENOMEM;
    j = sess_hash(t, s, peer) & (t->cap - 1);
    *chain_next(s, peer) = t->b[j];
    t->b[j] = s;
    t->n++;
    return 0;
}

static void table_remove(pskgw_ltable_t *t, pskgw_lsess_t *s, bool peer)
{
    pskgw_lsess_t **pp;

    if (t->cap == 0)
        return;
    for (pp = &t->b[sess_hash(t, s, peer) & (t->cap - 1)]; *pp != NULL;
         pp = chain_next(*pp, peer)) {
        if (*pp == s) {
            *pp = *chain_next(s, peer);
            *chain_next(s, peer) = NULL;
            t->n--;
            return;
        }
    }
}

pskgw_lsess_t *pskgw_ltable_find_id(pskgw_ltable_t *t, uint64_t id)
{
    if (t->cap == 0)
        return NULL;
    for (pskgw_lsess_t *s = t->b[hash_id(id) & (t->cap - 1)]; s != NULL; s = s->next_id) {
        if (s->id == id)
            return s;
    }
    return NULL;
}

pskgw_lsess_t *pskgw_ltable_find_peer(pskgw_ltable_t *t, const uint8_t *key, size_t len)
{
    if (t->cap == 0)
        return NULL;
    for (pskgw_lsess_t *s = t->b[hash_bytes(t->seed, key, len) & (t->cap - 1)]; s != NULL;
         s = s->next_peer) {
        uint8_t k[PSKGW_PEER_KEY_MAX];

        if (pskgw_lsess_key(s, k) == len && memcmp(k, key, len) == 0)
            return s;
    }
    return NULL;
}

int pskgw_ltable_insert_peer(pskgw_ltable_t *t, pskgw_lsess_t *s)
{
    return table_insert(t, s, true);
}

void pskgw_ltable_remove_peer(pskgw_ltable_t *t, pskgw_lsess_t *s)
{
    table_remove(t, s, true);
}

/* ---- sessions ----------------------------------------------------------------------------- */

static int lsess_new(pskgw_listener_t *l, const uint8_t *key, size_t key_len, const char *peer,
                     bool in_peer_table, pskgw_lsess_t **out)
{
    pskgw_lsess_t *s;
    struct sockaddr_in6 addr;

    /* UDP: the address the key stands for (the key is derived from it, not stored); the caller
     * then copies the peer's sockaddr over it (the same key). */
    if (key_len > 0 && pskgw_listen_peer_addr(key, key_len, &addr) < 0)
        return PSKGW_EINVAL;
    s = pskgw_slab_calloc(PSKGW_SLAB_LSESS, sizeof(*s));
    if (s == NULL)
        return PSKGW_ENOMEM;
    s->l = l;
    s->timer = pskgw_slab_calloc(PSKGW_SLAB_AWAKE, sizeof(*s->timer));
    s->hs = pskgw_slab_calloc(PSKGW_SLAB_AWAKE, sizeof(*s->hs));
    s->peer = pskgw_slab_strdup(PSKGW_SLAB_AWAKE, peer);
    if (s->timer == NULL || s->hs == NULL || s->peer == NULL ||
        (l->opt.proto == PSKGW_LISTEN_TCP && (s->u.tcp = calloc(1, sizeof(*s->u.tcp))) == NULL))
        goto fail;
    s->id = ++next_session_id;
    s->started_ms = s->last_ms = uv_now(l->loop);
    if (key_len > 0)
        s->u.udp.addr = addr;
    if (table_insert(&l->by_id, s, false) < 0)
        goto fail;
    if (key_len > 0 && in_peer_table) {
        if (table_insert(&l->by_peer, s, true) < 0) {
            table_remove(&l->by_id, s, false);
            goto fail;
        }
        s->in_peer_table = true;
    }
    (void)uv_timer_init(l->loop, s->timer);
    s->timer->data = s;
    s->hs->res = pskgw_listen_admit_resolver(s);
    s->dctx = pskgw_dtls_ctx_ref(l->dctx);
    s->pending_closes = 1; /* the timer */
    l->refs++;
    l->counters.sessions_active++;
    *out = s;
    return 0;

fail:
    pskgw_lsess_free_struct(s);
    return PSKGW_ENOMEM;
}

int pskgw_lsess_new(pskgw_listener_t *l, const uint8_t *key, size_t key_len, const char *peer,
                    pskgw_lsess_t **out)
{
    return lsess_new(l, key, key_len, peer, true, out);
}

int pskgw_lsess_new_beside(pskgw_listener_t *l, const uint8_t *key, size_t key_len,
                           const char *peer, pskgw_lsess_t **out)
{
    return lsess_new(l, key, key_len, peer, false, out);
}

/* How long an ended TCP session waits for its queued bytes (an alert, close_notify) to leave
 * before the connection is closed anyway: a peer that stops reading holds nothing longer. */
#define TCP_LINGER_MS 1000

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, pskgw_lsess_handle_closed);
}

/* Either the queued bytes left (shutdown done) or the linger time is over: close both handles.
 * Closing the stream with the shutdown pending calls on_shutdown with UV_ECANCELED before the
 * stream's close callback, so the session struct is still alive there. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    pskgw_lsess_t *s = req->handle->data;

    (void)status;
    free(req);
    close_if_open((uv_handle_t *)&s->u.tcp->handle);
    pskgw_lsess_timer_drop(s);
}

static void on_linger(uv_timer_t *t)
{
    pskgw_lsess_t *s = t->data;

    close_if_open((uv_handle_t *)&s->u.tcp->handle);
    pskgw_lsess_timer_drop(s);
}

void pskgw_lsess_end(pskgw_lsess_t *s)
{
    pskgw_listener_t *l = s->l;

    if (s->ended)
        return;
    s->ended = true;
    table_remove(&l->by_id, s, false);
    pskgw_listen_cid_forget(s);
    if (s->in_peer_table) {
        table_remove(&l->by_peer, s, true);
        s->in_peer_table = false;
    }
    if (s->hs != NULL) {
        pskgw_halfopen_release(&l->half_open, &s->hs->half_open);
        if (s->hs->predecessor != NULL) {
            s->hs->predecessor->successor = NULL;
            s->hs->predecessor = NULL;
        }
    }
    if (s->successor != NULL) {
        /* The old session is over: its peer's new handshake takes its place at once. */
        pskgw_lsess_t *n = s->successor;

        s->successor = NULL;
        if (n->hs != NULL)
            n->hs->predecessor = NULL;
        if (table_insert(&l->by_peer, n, true) == 0)
            n->in_peer_table = true;
    }
    l->counters.sessions_active--;
    if (s->hibernated) {
        s->hibernated = false;
        l->counters.hibernated--;
    }
    pskgw_listen_on_unpark(s, uv_now(l->loop)); /* an admission resolve() never took */
    if (s->parked) {
        s->parked = false;
        l->counters.pending_lookups--;
    }
    /* Deferred by the dtls layer when we are inside one of its callbacks. */
    pskgw_dtls_session_free(s->ds);
    s->ds = NULL;
    pskgw_dtls_frozen_free(s->frozen); /* wiped: it holds the session keys */
    s->frozen = NULL;
    pskgw_fwd_detach(s); /* a forwarding listener's backend flow */
    if (s->timer != NULL)
        (void)uv_timer_stop(s->timer);
    if (l->opt.proto == PSKGW_LISTEN_TCP) {
        uv_shutdown_t *req = NULL;

        s->pending_closes++;
        /* Nothing is read any more (the session is gone). */
        (void)uv_read_stop((uv_stream_t *)&s->u.tcp->handle);
        /* Let queued bytes (an alert, close_notify) leave before the close, for a while. */
        if (s->u.tcp->queued > 0 && (req = malloc(sizeof(*req))) != NULL &&
            uv_shutdown(req, (uv_stream_t *)&s->u.tcp->handle, on_shutdown) == 0) {
            (void)uv_timer_start(s->timer, on_linger, TCP_LINGER_MS, 0); /* TCP: always one */
            return;
        }
        free(req);
        uv_close((uv_handle_t *)&s->u.tcp->handle, pskgw_lsess_handle_closed);
    }
    if (s->timer != NULL)
        pskgw_lsess_timer_drop(s);
    else if (s->pending_closes == 0)
        pskgw_lsess_reap_later(s); /* nothing left to close: freed from the loop, not from here */
}

/* ---- dtls session callbacks --------------------------------------------------------------- */

static int cb_send(void *arg, const uint8_t *data, size_t len)
{
    pskgw_lsess_t *s = arg;

    if (s->l->opt.proto == PSKGW_LISTEN_TCP)
        return pskgw_tcp_send(s, data, len);
    return pskgw_udp_send(s, data, len);
}

static void cb_message(void *arg, uint64_t seq, const uint8_t *data, size_t len)
{
    pskgw_lsess_t *s = arg;
    pskgw_listener_t *l = s->l;
    pskgw_msg_meta_t m;
    const char *uid;

    if (l->closing)
        return;
    uid = pskgw_dtls_session_uid(s->ds);
    m.domain = l->domain;
    m.listener = l->name;
    m.transport = l->opt.proto == PSKGW_LISTEN_TCP ? "tls" : "dtls";
    /* where this message came from: a CID record from a new address is fed with l->rx set */
    m.peer = l->rx.s == s && l->rx.peer != NULL ? l->rx.peer : s->peer;
    m.identity = pskgw_dtls_session_identity(s->ds);
    m.rot_public_uid = uid != NULL ? uid : "";
    m.session_id = s->id;
    m.seq = seq;
    l->counters.messages++;
    l->counters.bytes += len;
    s->bytes_in += len;
    s->last_ms = uv_now(l->loop);
    if (l->opt.forward.enabled)
        pskgw_fwd_from_device(s, data, len);
    else if (l->on_message != NULL)
        l->on_message(l->arg, &m, data, len);
}

/* The new handshake of a peer completed: it replaces the peer's old session. */
static void promote(pskgw_lsess_t *s)
{
    pskgw_listener_t *l = s->l;
    pskgw_lsess_t *old = s->hs != NULL ? s->hs->predecessor : NULL;

    if (old == NULL)
        return;
    PSKGW_LOG_RL(PSKGW_LOG_INFO, "listen-rehello",
                 "listener \"%s\": new session %llu with \"%s\" replaces session %llu", l->name,
                 (unsigned long long)s->id, s->peer, (unsigned long long)old->id);
    l->counters.rehandshakes++;
    /* Ending the old one hands its peer-table place to this one (pskgw_lsess_end). */
    pskgw_lsess_end(old);
}

static int cb_event(void *arg, pskgw_dtls_event_t ev, const char *identity)
{
    pskgw_lsess_t *s = arg;
    pskgw_listener_t *l = s->l;
    uint64_t now = uv_now(l->loop);

    switch (ev) {
    case PSKGW_DTLS_EV_IDENTITY:
        return pskgw_listen_on_identity(s, identity, now);
    case PSKGW_DTLS_EV_PARK:
        if (l->counters.pending_lookups >= l->opt.max_pending_handshakes) {
            l->counters.refused_pending++;
            return PSKGW_EFULL;
        }
        if (pskgw_listen_on_park(s, identity, now) < 0)
            return PSKGW_EBUSY; /* the source's lookup bounds: counted there */
        s->parked = true;
        l->counters.pending_lookups++;
        l->counters.lookups_parked++;
        return 0;
    case PSKGW_DTLS_EV_UNPARK:
        pskgw_listen_on_unpark(s, now);
        if (s->parked) {
            s->parked = false;
            l->counters.pending_lookups--;
        }
        return 0;
    case PSKGW_DTLS_EV_LOOKUP_FAILED:
        l->counters.lookups_failed++;
        return 0;
    case PSKGW_DTLS_EV_ESTABLISHED:
        s->established = true;
        l->counters.handshakes_completed++;
        if (s->hs != NULL)
            pskgw_halfopen_release(&l->half_open, &s->hs->half_open);
        pskgw_listen_on_established(s, now);
        pskgw_listen_cid_established(s);
        PSKGW_DEBUG("listener \"%s\": session %llu established with \"%s\" identity \"%s\"",
                    l->name, (unsigned long long)s->id, s->peer, identity ? identity : "");
        promote(s);
        pskgw_lsess_hs_drop(s); /* the dtls session let go of s->hs->res (dtls/session.h) */
        if (pskgw_fwd_start(s) < 0)
            pskgw_lsess_end(s); /* counted by reason (forward.h) */
        return 0;
    case PSKGW_DTLS_EV_AUTH_FAILED:
        pskgw_listen_on_auth_failed(s, identity, now);
        return 0;
    case PSKGW_DTLS_EV_MESSAGE_DROPPED:
        l->counters.messages_dropped++;
        return 0;
    case PSKGW_DTLS_EV_PEER_MOVED:
        pskgw_listen_cid_moved(s);
        return 0;
    case PSKGW_DTLS_EV_THAWED:
    case PSKGW_DTLS_EV_THAW_FAILED:
        pskgw_listen_on_thaw(s, ev == PSKGW_DTLS_EV_THAWED);
        return 0;
    }
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    pskgw_lsess_t *s = t->data;
    pskgw_dtls_session_t *ds = pskgw_lsess_ds(s); /* frozen: without the sweep (a reload) */

    if (ds != NULL)
        pskgw_dtls_session_timeout(ds, uv_now(s->l->loop));
}

static void cb_timer(void *arg, uint64_t deadline)
{
    pskgw_lsess_t *s = arg;
    uint64_t now = uv_now(s->l->loop);
    uv_timer_t *t;

    if (s->ended)
        return;
    /* Established sessions of a listener with the sweep: their idle deadline moves with every
     * record, and the sweep checks it (hibernate.c), so no timer is restarted per record. */
    if (s->established && s->l->hib_open) {
        pskgw_lsess_timer_drop(s); /* the sweep's from now on: no uv_timer_t per idle session */
        return;
    }
    if (deadline == UINT64_MAX) {
        if (s->timer != NULL)
            (void)uv_timer_stop(s->timer);
        return;
    }
    if ((t = pskgw_lsess_timer(s)) == NULL) {
        pskgw_lsess_end(s); /* no memory for its deadline: not a session without one */
        return;
    }
    (void)uv_timer_start(t, on_timer, deadline > now ? deadline - now : 0, 0);
}

/* One rate-limit key per failure reason: a flood of one kind (wrong keys, timeouts) cannot
 * hide another (the resolver being unavailable). */
static const char *hsfail_key(int reason, bool half_open)
{
    if (half_open)
        return "listen-hsfail-half-open";
    switch (reason) {
    case PSKGW_EAUTH:
        return "listen-hsfail-auth";
    case PSKGW_EUNAVAIL:
        return "listen-hsfail-unavail";
    case PSKGW_ETIMEOUT:
        return "listen-hsfail-timeout";
    case PSKGW_EBUSY:
        return "listen-hsfail-busy";
    case PSKGW_ETLS:
        return "listen-hsfail-tls";
    default:
        return "listen-hsfail-other";
    }
}

static void cb_closed(void *arg, int reason)
{
    pskgw_lsess_t *s = arg;
    pskgw_listener_t *l = s->l;

    if (!s->established) {
        const char *id = s->ds != NULL ? pskgw_dtls_session_identity(s->ds) : NULL;
        bool half_open = reason == PSKGW_ETIMEOUT && id == NULL;
        char esc[PSKGW_LOG_ID_CAP];

        l->counters.handshakes_failed++;
        if (half_open)
            l->counters.half_open_timeouts++;
        pskgw_listen_log_identity(id, esc, sizeof(esc));
        PSKGW_LOG_RL_F(PSKGW_LOG_INFO, hsfail_key(reason, half_open),
                       (&(pskgw_log_fields_t){ .domain = l->domain,
                                               .listener = l->name,
                                               .peer = s->peer,
                                               .identity = id != NULL ? esc : NULL,
                                               .reason = pskgw_strerror(reason) }),
                       "listener \"%s\": handshake with \"%s\" identity \"%s\" failed: %s%s "
                       "(session %llu)",
                       l->name, s->peer, esc, pskgw_strerror(reason),
                       half_open ? " (no key exchange in time)" : "", (unsigned long long)s->id);
    } else if (reason == PSKGW_EAGAIN) {
        l->counters.idle_closes++;
    }
    pskgw_lsess_end(s);
}

static uint64_t cb_now(void *arg)
{
    pskgw_lsess_t *s = arg;

    return uv_now(s->l->loop);
}

const pskgw_dtls_session_cbs_t pskgw_listen_session_cbs = {
    .send = cb_send,
    .message = cb_message,
    .event = cb_event,
    .timer = cb_timer,
    .closed = cb_closed,
    .now = cb_now,
};

/* ---- listener ----------------------------------------------------------------------------- */

static void listener_free(pskgw_listener_t *l)
{
    pskgw_dtls_ctx_free(l->dctx);
    pskgw_lookup_admit_free(l->admit);
    free(l->by_id.b);
    free(l->by_peer.b);
    pskgw_cid_table_deinit(&l->by_cid);
    free(l->rbuf);
    free(l->udp_tx);
    free(l->fwd_rbuf);
    free(l->domain);
    free(l->name);
    free(l->address);
    free(l);
}

void pskgw_listener_unref(pskgw_listener_t *l)
{
    if (--l->refs > 0)
        return;
    if (l->close_cb != NULL)
        l->close_cb(l, l->close_arg);
    listener_free(l);
}

static void listener_handle_closed(uv_handle_t *h)
{
    pskgw_listener_t *l = h->data;

    pskgw_listener_unref(l);
}

#define OFF(v) ((v) == UINT32_MAX ? 0 : (v))

/* Options left 0 take their defaults (listen_api.h). */
static void apply_defaults(pskgw_listener_opts_t *o)
{
#define DEF(f, v)  \
    if (o->f == 0) \
    o->f = (v)
    DEF(max_sessions, 100000);
    DEF(max_pending_handshakes, 10000);
    DEF(handshake_timeout_ms, 10000);
    DEF(idle_timeout_s, 300);
    DEF(handshakes_per_ip, 100);
    DEF(identity_failure_max, 5);
    DEF(source_failure_max, 50);
    DEF(identity_block_s, 300);
    DEF(half_open_per_source, 1000);
    DEF(ipv6_source_prefix, 64);
    DEF(cookie_rotate_s, 30);
    DEF(hibernate_after_s, 30);
    DEF(lookups_in_flight, 32);
    DEF(lookups_per_source, 8);
    DEF(lookup_queue_per_source, 256);
    DEF(lookups_per_source_per_s, 100);
    DEF(good_source_reserve, o->lookups_in_flight / 4);
    DEF(good_source_window_s, 3600);
    if (o->lookup_burst == 0 && o->lookups_per_source_per_s < UINT32_MAX / 2)
        o->lookup_burst = 2 * o->lookups_per_source_per_s;
#undef DEF
    if (o->half_open_timeout_ms == 0 || o->half_open_timeout_ms > o->handshake_timeout_ms)
        o->half_open_timeout_ms = o->handshake_timeout_ms;
}

/* The per-source limits and the lookup admission, under the listener's random seed. */
static int init_limits(pskgw_listener_t *l, const uint8_t *seed, const char **reason)
{
    int rc;

    pskgw_rate_limit_init(&l->rate, l->opt.handshakes_per_ip, l->opt.handshakes_per_ip_burst,
                          seed + 3 * PSKGW_LIMIT_SEED_LEN);
    /* UINT32_MAX: "off" (the config's 0). */
    pskgw_fail_throttle_init(&l->src_fail, OFF(l->opt.source_failure_max),
                             (uint64_t)l->opt.identity_block_s * 1000, seed);
    pskgw_fail_throttle_init(&l->pair_fail, OFF(l->opt.identity_failure_max),
                             (uint64_t)l->opt.identity_block_s * 1000, seed + PSKGW_LIMIT_SEED_LEN);
    pskgw_halfopen_init(&l->half_open, OFF(l->opt.half_open_per_source),
                        seed + 2 * PSKGW_LIMIT_SEED_LEN);
    rc = pskgw_listen_admit_new(l, seed + 3 * PSKGW_LIMIT_SEED_LEN + 16);
    if (rc == PSKGW_EINVAL) {
        *reason = "good_source_reserve must be below lookups_in_flight";
        return PSKGW_ECONFIG;
    }
    return rc;
}

int pskgw_listener_new(uv_loop_t *loop, const pskgw_listener_opts_t *opts,
                       const pskgw_psk_resolver_t *resolver, pskgw_listener_msg_cb on_message,
                       void *arg, pskgw_listener_t **out, const char **why)
{
    pskgw_listener_t *l = NULL;
    pskgw_dtls_options_t d = { 0 };
    uint8_t seed[5 * PSKGW_LIMIT_SEED_LEN + 16];
    const char *reason = NULL;
    int rc = PSKGW_EINVAL;

    if (loop == NULL || opts == NULL || resolver == NULL || resolver->resolve == NULL ||
        resolver->cancel == NULL || out == NULL)
        goto fail_early;
    rc = PSKGW_ECONFIG;
    if (opts->domain == NULL || opts->name == NULL || opts->address == NULL) {
        reason = "domain, name and address are required";
        goto fail_early;
    }
    if (opts->proto != PSKGW_LISTEN_UDP && opts->proto != PSKGW_LISTEN_TCP) {
        reason = "proto must be udp or tcp";
        goto fail_early;
    }
    rc = PSKGW_ENOMEM;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        goto fail_early;
    l->loop = loop;
    l->opt = *opts;
    pskgw_list_init(&l->sr_parked);
    l->resolver = *resolver;
    l->on_message = on_message;
    l->arg = arg;
    l->domain = strdup(opts->domain);
    l->name = strdup(opts->name);
    l->address = strdup(opts->address);
    if (l->domain == NULL || l->name == NULL || l->address == NULL)
        goto fail;
    if (uv_random(NULL, NULL, &l->by_peer.seed, sizeof(l->by_peer.seed), 0, NULL) != 0 ||
        uv_random(NULL, NULL, &l->by_cid.seed, sizeof(l->by_cid.seed), 0, NULL) != 0 ||
        uv_random(NULL, NULL, seed, sizeof(seed), 0, NULL) != 0) {
        rc = PSKGW_ECRYPTO;
        reason = "no random seed for the peer table";
        goto fail;
    }
    l->opt.domain = l->domain;
    l->opt.name = l->name;
    l->opt.address = l->address;
    l->opt.ciphers = NULL;
    apply_defaults(&l->opt);
    rc = PSKGW_ECONFIG;
    if (l->opt.ipv6_source_prefix > 128) {
        reason = "ipv6_source_prefix above 128";
        goto fail;
    }
    d.dtls = opts->proto == PSKGW_LISTEN_UDP;
    d.ciphers = opts->ciphers;
    d.max_identity_len = opts->max_identity_len;
    d.max_parked_bytes = opts->max_parked_bytes;
    d.max_message = opts->max_message;
    d.framing = opts->framing;
    d.handshake_timeout_ms = l->opt.handshake_timeout_ms;
    d.half_open_timeout_ms = l->opt.half_open_timeout_ms;
    d.idle_timeout_s = l->opt.idle_timeout_s;
    d.cookie_rotate_ms = l->opt.cookie_rotate_s * 1000;
    d.cid_len = opts->proto == PSKGW_LISTEN_UDP ? opts->cid_len : 0;
    d.cid_worker = opts->worker;
    d.tickets = opts->tickets;
    rc = pskgw_dtls_ctx_new(&d, &l->dctx, &reason);
    if (rc < 0)
        goto fail;
    l->opt.max_message = pskgw_dtls_ctx_options(l->dctx)->max_message;
    rc = init_limits(l, seed, &reason);
    if (rc < 0)
        goto fail;
    pskgw_wipe(seed, sizeof(seed));
    l->refs = 1;
    if (opts->proto == PSKGW_LISTEN_UDP)
        rc = pskgw_udp_listener_start(l, &reason);
    else
        rc = pskgw_tcp_listener_start(l, &reason);
    if (rc == 0 && opts->proto == PSKGW_LISTEN_UDP && (rc = pskgw_listen_hibernate_start(l)) < 0)
        reason = "hibernation sweep timer";
    if (rc == 0)
        pskgw_listen_handover_import(l);
    if (rc < 0) {
        if (l->handle_open) {
            /* The handle is closed through the loop; the listener is freed in its callback. */
            l->handle_open = false;
            l->closing = true;
            l->h.udp.data = l;
            uv_close((uv_handle_t *)&l->h, listener_handle_closed);
            if (why != NULL)
                *why = reason != NULL ? reason : pskgw_strerror(rc);
            return rc;
        }
        goto fail;
    }
    /* no line here: the domain logs one per listener once it is bound (address and port) */
    *out = l;
    return 0;

fail:
    pskgw_wipe(seed, sizeof(seed));
    listener_free(l);
fail_early:
    if (why != NULL)
        *why = reason != NULL ? reason : pskgw_strerror(rc);
    return rc;
}

int pskgw_listener_set_tickets(pskgw_listener_t *l, pskgw_ticket_keys_t *keys)
{
    return pskgw_dtls_ctx_set_tickets(l->dctx, keys);
}

void pskgw_listener_set_session_limits(pskgw_listener_t *l, uint32_t max_sessions,
                                       uint32_t max_pending_handshakes)
{
    pskgw_listener_opts_t o = l->opt;

    o.max_sessions = max_sessions;
    o.max_pending_handshakes = max_pending_handshakes;
    apply_defaults(&o);
    l->opt.max_sessions = o.max_sessions;
    l->opt.max_pending_handshakes = o.max_pending_handshakes;
}

uint16_t pskgw_listener_port(const pskgw_listener_t *l)
{
    return l->port;
}

const pskgw_listener_counters_t *pskgw_listener_counters(const pskgw_listener_t *l)
{
    return &l->counters;
}

int pskgw_listener_send(pskgw_listener_t *l, uint64_t session_id, const uint8_t *data, size_t len)
{
    pskgw_lsess_t *s;
    int rc;

    if (l == NULL)
        return PSKGW_EINVAL;
    if (l->closing)
        return PSKGW_ECLOSED;
    s = pskgw_ltable_find_id(&l->by_id, session_id);
    if (s != NULL && s->in_redis)
        return PSKGW_EBUSY; /* not to be thawed before a record claims it (listen_sessredis.c) */
    if (s == NULL || pskgw_lsess_ds(s) == NULL)
        return PSKGW_ENOTFOUND;
    rc = pskgw_dtls_session_write(s->ds, data, len);
    if (rc == 0) {
        s->bytes_out += len;
        s->last_ms = uv_now(l->loop);
    }
    return rc;
}

void pskgw_listener_close(pskgw_listener_t *l, pskgw_listener_close_cb cb, void *arg)
{
    if (l == NULL || l->closing)
        return;
    l->closing = true;
    l->close_cb = cb;
    l->close_arg = arg;
    pskgw_listen_handover_export(l); /* when a hand-over is under way */
    pskgw_listen_sessredis_stop(l);  /* datagrams held for a Redis lookup: dropped */
    /* End every session first, while the socket can still carry close_notify. One pass over
     * the buckets: ending a session only unlinks that session (the table never shrinks). */
    for (size_t i = 0; i < l->by_id.cap && l->by_id.n > 0; i++) {
        pskgw_lsess_t *s;

        while ((s = l->by_id.b[i]) != NULL) {
            /* one in Redis ends unsent: it may be another node's now (listen_sessredis.c) */
            if (s->established && !s->in_redis && pskgw_lsess_ds(s) != NULL)
                pskgw_dtls_session_close_notify(s->ds); /* ends it via cb_closed */
            pskgw_lsess_end(s);
        }
    }
    pskgw_listen_hibernate_stop(l);
    pskgw_listen_reap_stop(l);
    if (l->opt.proto == PSKGW_LISTEN_UDP)
        pskgw_udp_flush(l); /* the close_notify alerts above, queued inside a receive batch */
    if (l->handle_open) {
        l->handle_open = false;
        l->h.udp.data = l;
        l->refs++;
        if (l->opt.proto == PSKGW_LISTEN_UDP)
            (void)uv_udp_recv_stop(&l->h.udp);
        uv_close((uv_handle_t *)&l->h, listener_handle_closed);
    }
    pskgw_listener_unref(l);
}
