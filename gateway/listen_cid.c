/* The listener's Connection ID side (RFC 9146): sessions indexed by the CID they negotiated,
 * tls12_cid datagrams routed by it, and the peer address moved only for a record that
 * authenticated with a higher sequence number. See listen_internal.h and docs/SECURITY.md. */
#include "gateway/listen_internal.h"
#include "gateway/sessredis.h"

#include "common/err.h"
#include "common/log.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static pskgw_lsess_t *lsess_of(pskgw_cid_entry_t *e)
{
    return (pskgw_lsess_t *)(void *)((char *)e - offsetof(pskgw_lsess_t, cid));
}

void pskgw_listen_cid_established(pskgw_lsess_t *s)
{
    pskgw_listener_t *l = s->l;
    size_t len = 0;
    const uint8_t *cid = pskgw_lsess_cid(s, &len);
    int rc;

    if (cid == NULL || s->cid.linked)
        return;
    memcpy(s->cid.cid, cid, len);
    s->cid.len = (uint8_t)len;
    rc = pskgw_cid_table_insert(&l->by_cid, &s->cid);
    if (rc < 0) {
        /* A collision of random CIDs (or no memory): the session works by address only. */
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "listen-cid-insert",
                     "listener \"%s\": session %llu's connection id not indexed: %s", l->name,
                     (unsigned long long)s->id, pskgw_strerror(rc));
        return;
    }
    l->counters.cid_sessions = l->by_cid.n;
}

void pskgw_listen_cid_forget(pskgw_lsess_t *s)
{
    if (!s->cid.linked)
        return;
    pskgw_cid_table_remove(&s->l->by_cid, &s->cid);
    s->l->counters.cid_sessions = s->l->by_cid.n;
}

/* The session's peer moves to l->rx.from: address, name, peer-table key. A session already at
 * that address (the NAT gave the port to this device; the old mapping's session is stale) ends. */
void pskgw_listen_cid_moved(pskgw_lsess_t *s)
{
    pskgw_listener_t *l = s->l;
    const struct sockaddr *from = l->rx.from;
    const uint8_t *key = l->rx.key;
    uint8_t key_len = l->rx.key_len;
    const char *peer = l->rx.peer;
    pskgw_lsess_t *other;

    if (l->rx.s != s || from == NULL || peer == NULL || s->ended || l->closing)
        return;
    other = pskgw_ltable_find_peer(&l->by_peer, key, key_len);

    if (other != NULL && other != s) {
        PSKGW_LOG_RL(PSKGW_LOG_INFO, "listen-cid-move",
                     "listener \"%s\": session %llu at \"%s\" ends: session %llu moved there",
                     l->name, (unsigned long long)other->id, peer, (unsigned long long)s->id);
        pskgw_lsess_end(other);
    }
    if (s->in_peer_table) {
        pskgw_ltable_remove_peer(&l->by_peer, s);
        s->in_peer_table = false;
    }
    PSKGW_LOG_RL(PSKGW_LOG_INFO, "listen-cid-move",
                 "listener \"%s\": session %llu moved from \"%s\" to \"%s\" (connection id)",
                 l->name, (unsigned long long)s->id, s->peer, peer);
    if (pskgw_lsess_set_peer(s, peer) == 0)
        l->rx.peer = s->peer; /* the same name, now the session's own */
    memset(&s->u.udp.addr, 0, sizeof(s->u.udp.addr));
    memcpy(&s->u.udp.addr, from,
           from->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    if (pskgw_ltable_insert_peer(&l->by_peer, s) == 0)
        s->in_peer_table = true;
    l->counters.cid_address_changes++;
}

void pskgw_listen_cid_recv(pskgw_listener_t *l, const struct sockaddr *from, const uint8_t *key,
                           uint8_t key_len, const char *peer, const uint8_t *data, size_t len)
{
    pskgw_dtls_cid_record_t rec;
    size_t used = 0;
    pskgw_cid_entry_t *e = NULL;
    pskgw_lsess_t *s;
    pskgw_listen_rx_t saved;
    bool move = false, parsed;
    char name[PSKGW_SESSREDIS_NAME_MAX + 1];
    uint8_t k[PSKGW_PEER_KEY_MAX];

    parsed = pskgw_dtls_cid_record_parse(data, len, l->opt.cid_len, &rec, &used) == 0;
    if (parsed)
        e = pskgw_cid_table_find(&l->by_cid, rec.cid, l->opt.cid_len);
    if (e == NULL) {
        /* Before the handshake ends the CID is not indexed yet: the client's Finished comes
         * from the handshake's address. A session whose CID could not be indexed (no memory)
         * still gets its records from its own address. */
        s = pskgw_ltable_find_peer(&l->by_peer, key, key_len);
        if (s != NULL && (s->ds != NULL || s->frozen != NULL) &&
            (!s->established || (!s->cid.linked && pskgw_lsess_cid(s, NULL) != NULL))) {
            if (s->in_redis &&
                pskgw_listen_sessredis_claim(s, from, key, key_len, peer, true, data, len))
                return; /* stored in Redis: thawed only once claimed there */
            if (pskgw_lsess_ds(s) != NULL)
                (void)pskgw_dtls_session_feed(s->ds, data, len, uv_now(l->loop));
            return;
        }
        /* Maybe a session another node held (sessions shared through Redis). */
        if (parsed && l->opt.sessions != NULL &&
            pskgw_sessredis_cid_name(rec.cid, l->opt.cid_len, name, sizeof(name)) > 0 &&
            pskgw_listen_sessredis_park(l, from, key, key_len, peer, name, data, len))
            return;
        l->counters.cid_unknown_records++; /* no answer: nothing to learn for a prober */
        return;
    }
    s = lsess_of(e);
    if (s->in_redis && pskgw_listen_sessredis_claim(s, from, key, key_len, peer, true, data, len))
        return; /* stored in Redis: thawed only once claimed there (listen_sessredis.c) */
    if (pskgw_lsess_ds(s) == NULL) /* a frozen session gets its dtls session back */
        return;
    if (pskgw_lsess_key(s, k) == key_len && memcmp(k, key, key_len) == 0) {
        (void)pskgw_dtls_session_feed(s->ds, data, len, uv_now(l->loop));
        return;
    }
    /* From another address: fed, answered only at the current address, and the address moves
     * only if a record authenticated with a higher sequence number (RFC 9146 section 6). */
    saved = l->rx;
    l->rx =
        (pskgw_listen_rx_t){ .s = s, .peer = peer, .from = from, .key = key, .key_len = key_len };
    (void)pskgw_dtls_session_feed_cid(s->ds, data, len, uv_now(l->loop), &move);
    l->rx = saved;
}
