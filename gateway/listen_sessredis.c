/* A UDP listener's side of the sessions shared through Redis (gateway/sessredis.h, issue 12
 * section 4): a session that hibernates is stored there too; a record for a session this
 * listener does not hold is held (bounded per source and in all) while the session is looked up
 * there, and fed to it once it is imported; a stored session that wakes here is deleted there.
 * See listen_internal.h. */
#include "gateway/listen_internal.h"
#include "gateway/sessredis.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "dtls/parse.h"

#include <stdlib.h>
#include <string.h>

#define PARK_PER_SOURCE 4
#define PARK_TOTAL      1024

_Static_assert(sizeof(((pskgw_lsess_t *)0)->u.udp.redis_stamp) == PSKGW_SESSREDIS_STAMP_LEN,
               "the session keeps its value's stamp whole");

/* One datagram held while its session is looked up, or claimed (sid: the session's id). */
typedef struct {
    pskgw_list_t link;
    pskgw_listener_t *l;
    pskgw_sessredis_req_t *req;
    uint64_t sid;
    struct sockaddr_in6 from;
    uint8_t key[PSKGW_PEER_KEY_MAX];
    uint8_t key_len;
    uint8_t src[PSKGW_SOURCE_MAX];
    uint8_t src_len;
    bool by_cid;
    char peer[PSKGW_PEER_STR_CAP];
    char name[PSKGW_SESSREDIS_NAME_MAX + 1]; /* what is looked up: the peer or "cid:<hex>" */
    size_t len;
    uint8_t data[];
} park_t;

void pskgw_listen_sessredis_store(pskgw_lsess_t *s, uint64_t now)
{
    pskgw_listener_t *l = s->l;
    uint64_t idle = now - pskgw_dtls_session_last_rx(s->ds);
    uint64_t life = (uint64_t)l->opt.idle_timeout_s * 1000;
    const uint8_t *cid;
    uint8_t *rec = NULL;
    size_t len = 0, cid_len = 0;

    if (idle >= life || pskgw_listen_export_record(l, s, now, &rec, &len) < 0)
        return;
    /* A session with a Connection ID is stored under it too (found from any address). */
    cid = pskgw_dtls_session_cid(s->ds, &cid_len);
    if (pskgw_sessredis_store(l->opt.sessions, l->name, s->peer, cid, cid != NULL ? cid_len : 0,
                              rec, len, life - idle, s->u.udp.redis_stamp) == 0) {
        s->in_redis = true;
        l->counters.redis_stored++;
    }
    pskgw_wipe(rec, len);
    free(rec);
}

void pskgw_listen_sessredis_thawed(pskgw_lsess_t *s)
{
    pskgw_listener_t *l = s->l;
    size_t cid_len = 0;
    const uint8_t *cid = pskgw_lsess_cid(s, &cid_len);
    char peer[PSKGW_PEER_STR_CAP];

    s->in_redis = false;
    if (l->opt.sessions != NULL &&
        pskgw_sessredis_forget(l->opt.sessions, l->name, pskgw_lsess_peer(s, peer), cid,
                               cid != NULL ? cid_len : 0) == 0)
        l->counters.redis_forgotten++;
}

/* A record a live session of another node could have sent: a DTLS 1.2 record past epoch 0
 * (a ClientHello and anything else of a new handshake are epoch 0), or a tls12_cid record. */
static bool session_record(const uint8_t *d, size_t len, bool by_cid)
{
    if (len < PSKGW_DTLS_RECORD_HEADER_LEN || d[1] != 0xFE || d[2] != 0xFD)
        return false;
    if (by_cid)
        return true;
    return (d[0] == PSKGW_CT_APPLICATION_DATA || d[0] == PSKGW_CT_ALERT ||
            d[0] == PSKGW_CT_HANDSHAKE) &&
           (d[3] != 0 || d[4] != 0);
}

static void park_free(park_t *p)
{
    pskgw_listener_t *l = p->l;

    pskgw_list_remove(&p->link);
    l->sr_parked_n--;
    pskgw_wipe(p->data, p->len);
    free(p);
}

/* The session came: in the tables, hibernated; the held datagram goes to it as if it had just
 * arrived (its record thaws it: the write sequence jumps). */
static void feed_imported(park_t *p, pskgw_lsess_t *s)
{
    pskgw_listener_t *l = p->l;

    l->counters.redis_imported++;
    PSKGW_LOG_RL(PSKGW_LOG_INFO, "listen-sessredis",
                 "listener \"%s\": session %llu with \"%s\" taken over from redis (no handshake)",
                 l->name, (unsigned long long)s->id, s->peer);
    if (p->by_cid) {
        pskgw_listen_cid_established(s);
        pskgw_listen_cid_recv(l, (const struct sockaddr *)&p->from, p->key, p->key_len, p->peer,
                              p->data, p->len);
    } else if (pskgw_lsess_ds(s) != NULL) {
        (void)pskgw_dtls_session_feed(s->ds, p->data, p->len, uv_now(l->loop));
    }
}

static void on_found(void *arg, int status, const uint8_t *rec, size_t len)
{
    park_t *p = arg;
    pskgw_listener_t *l = p->l;
    pskgw_lsess_t *s = NULL;
    int rc = status;

    p->req = NULL;
    if (status == 0 && l->counters.sessions_active >= l->opt.max_sessions) {
        rc = PSKGW_EFULL; /* as a new handshake would be refused */
    } else if (status == 0 && !l->closing) {
        rc = pskgw_listen_import_record(l, rec, len, uv_now(l->loop), &s);
        if (rc == 0) {
            s->in_redis = false; /* taken: its keys went with the claim; this node holds it */
            feed_imported(p, s);
        }
    }
    if (rc < 0 && rc != PSKGW_ENOTFOUND && rc != PSKGW_ECANCELED)
        PSKGW_LOG_RL(PSKGW_LOG_INFO, "listen-sessredis-miss",
                     "listener \"%s\": session of \"%s\" not taken from redis: %s", l->name,
                     p->peer, pskgw_strerror(rc));
    park_free(p);
}

static bool park_allowed(pskgw_listener_t *l, const uint8_t *src, size_t src_len, const char *name)
{
    uint32_t total = l->opt.sessions_park_total ? l->opt.sessions_park_total : PARK_TOTAL;
    uint32_t per =
        l->opt.sessions_park_per_source ? l->opt.sessions_park_per_source : PARK_PER_SOURCE;
    uint32_t of_src = 0;
    pskgw_list_t *it;

    if (l->sr_parked_n >= total)
        return false;
    /* At most total entries: a walk, no table. */
    for (it = l->sr_parked.next; it != &l->sr_parked; it = it->next) {
        const park_t *p = pskgw_container_of(it, park_t, link);

        if (strcmp(p->name, name) == 0)
            return false; /* one lookup per session: its other datagrams are dropped */
        if (p->src_len == src_len && memcmp(p->src, src, src_len) == 0 && ++of_src >= per)
            return false;
    }
    return true;
}

/* A held datagram, counted in the listener's bounds; NULL when it is refused (counted) or no
 * memory (*refused false). */
static park_t *park_new(pskgw_listener_t *l, const struct sockaddr *from, const uint8_t *key,
                        uint8_t key_len, const char *peer, const char *name, bool by_cid,
                        const uint8_t *data, size_t len, bool *refused)
{
    uint8_t src[PSKGW_SOURCE_MAX];
    size_t src_len = pskgw_source_of(key, key_len, l->opt.ipv6_source_prefix, src);
    park_t *p;

    *refused = src_len == 0 || strlen(name) > PSKGW_SESSREDIS_NAME_MAX ||
               !park_allowed(l, src, src_len, name);
    if (*refused) {
        l->counters.redis_park_refused++;
        return NULL;
    }
    p = calloc(1, sizeof(*p) + len);
    if (p == NULL)
        return NULL;
    p->l = l;
    memset(&p->from, 0, sizeof(p->from));
    memcpy(&p->from, from,
           from->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    memcpy(p->key, key, key_len);
    p->key_len = key_len;
    memcpy(p->src, src, src_len);
    p->src_len = (uint8_t)src_len;
    p->by_cid = by_cid;
    memcpy(p->peer, peer, strnlen(peer, sizeof(p->peer) - 1));
    memcpy(p->name, name, strlen(name) + 1);
    p->len = len;
    memcpy(p->data, data, len);
    return p;
}

static void park_hold(park_t *p)
{
    pskgw_listener_t *l = p->l;

    pskgw_list_insert_tail(&l->sr_parked, &p->link);
    l->sr_parked_n++;
    l->counters.redis_parked++;
}

static void park_discard(park_t *p)
{
    pskgw_wipe(p->data, p->len);
    free(p);
}

bool pskgw_listen_sessredis_park(pskgw_listener_t *l, const struct sockaddr *from,
                                 const uint8_t *key, uint8_t key_len, const char *peer,
                                 const char *cid_name, const uint8_t *data, size_t len)
{
    const char *name = cid_name != NULL ? cid_name : peer;
    bool refused;
    park_t *p;

    if (l->opt.sessions == NULL || l->closing || !session_record(data, len, cid_name != NULL))
        return false;
    p = park_new(l, from, key, key_len, peer, name, cid_name != NULL, data, len, &refused);
    if (p == NULL)
        return refused; /* refused: dropped, counted: the device's next record tries again */
    if (pskgw_sessredis_lookup(l->opt.sessions, l->name, name, on_found, p, &p->req) < 0) {
        park_discard(p);
        return false; /* Redis down: as without it */
    }
    park_hold(p);
    return true;
}

/* ---- claims: a stored session that wakes here ----------------------------------------------
 * Its record may be taken by another node at any moment (a record of the device that reached
 * it), so it thaws here only once this node holds it in Redis (sessredis.h, "Claims"). */

/* A ClientHello (epoch 0, handshake, client_hello) thaws nothing: it goes on as today. */
static bool is_hello(const uint8_t *d, size_t len)
{
    return len > PSKGW_DTLS_RECORD_HEADER_LEN && d[0] == PSKGW_CT_HANDSHAKE && d[3] == 0 &&
           d[4] == 0 && d[PSKGW_DTLS_RECORD_HEADER_LEN] == 1;
}

/* A record of the new handshake that runs beside s (its successor): it goes there and thaws
 * nothing of s. */
static bool for_new_handshake(const pskgw_lsess_t *s, const uint8_t *d, size_t len)
{
    return s->successor != NULL && s->successor->ds != NULL && pskgw_listen_for_successor(d, len);
}

static bool stamp_known(const pskgw_lsess_t *s)
{
    for (size_t i = 0; i < sizeof(s->u.udp.redis_stamp); i++)
        if (s->u.udp.redis_stamp[i] != 0)
            return true;
    return false;
}

/* Won: the session is this node's; the held datagram goes to it as if it had just arrived. */
static void feed_claimed(park_t *p, pskgw_lsess_t *s)
{
    pskgw_listener_t *l = p->l;

    s->in_redis = false;
    memset(s->u.udp.redis_stamp, 0, sizeof(s->u.udp.redis_stamp));
    l->counters.redis_forgotten++; /* its stored record is gone (the claim deleted it) */
    if (p->by_cid)
        pskgw_listen_cid_recv(l, (const struct sockaddr *)&p->from, p->key, p->key_len, p->peer,
                              p->data, p->len);
    else if (pskgw_lsess_ds(s) != NULL)
        (void)pskgw_dtls_session_feed(s->ds, p->data, p->len, uv_now(l->loop));
}

static void on_claimed(void *arg, int status, const uint8_t *rec, size_t len)
{
    park_t *p = arg;
    pskgw_listener_t *l = p->l;
    pskgw_lsess_t *s = pskgw_ltable_find_id(&l->by_id, p->sid);

    (void)rec;
    (void)len;
    p->req = NULL;
    if (s == NULL || s->ended || !s->in_redis || l->closing || status == PSKGW_ECANCELED) {
        /* ended meanwhile (idle, revoked, replaced): the datagram goes with it */
    } else if (status == 0) {
        feed_claimed(p, s);
    } else if (status == PSKGW_EBUSY || status == PSKGW_ENOTFOUND) {
        /* Another node holds it (or did, and may have sent under it): this copy must never
         * send. It ends without a datagram (no alert, no close_notify); the device goes on
         * with the other node, or handshakes. */
        PSKGW_LOG_RL(PSKGW_LOG_INFO, "listen-sessredis-claim",
                     "listener \"%s\": session %llu with \"%s\" ended unsent: %s in redis", l->name,
                     (unsigned long long)s->id, p->peer,
                     status == PSKGW_EBUSY ? "leased by another node" : "taken by another node");
        pskgw_lsess_end(s);
    }
    /* else no answer: kept hibernated and unclaimed, the datagram dropped; the next record
     * claims again (sessredis.h, "Claims") */
    park_free(p);
}

bool pskgw_listen_sessredis_claim(pskgw_lsess_t *s, const struct sockaddr *from, const uint8_t *key,
                                  uint8_t key_len, const char *peer, bool by_cid,
                                  const uint8_t *data, size_t len)
{
    pskgw_listener_t *l = s->l;
    char own[PSKGW_PEER_STR_CAP];
    const char *name;
    const uint8_t *cid;
    size_t cid_len = 0;
    bool refused;
    park_t *p;

    if (!s->in_redis || is_hello(data, len) || for_new_handshake(s, data, len))
        return false;
    if (l->closing)
        return true;
    name = pskgw_lsess_peer(s, own); /* where it was stored: a frozen session has not moved */
    p = park_new(l, from, key, key_len, peer != NULL ? peer : name, name, by_cid, data, len,
                 &refused);
    if (p == NULL)
        return true; /* dropped: one claim per session (its other datagrams), or the bounds */
    p->sid = s->id;
    cid = pskgw_lsess_cid(s, &cid_len);
    if (pskgw_sessredis_claim(l->opt.sessions, l->name, name, cid, cid != NULL ? cid_len : 0,
                              stamp_known(s) ? s->u.udp.redis_stamp : NULL, on_claimed, p,
                              &p->req) < 0) {
        park_discard(p); /* Redis down: never thawed without a claim; kept hibernated */
        return true;
    }
    park_hold(p);
    return true;
}

void pskgw_listen_sessredis_stop(pskgw_listener_t *l)
{
    /* Each cancel calls on_found or on_claimed at once (PSKGW_ECANCELED), which frees its entry. */
    while (!pskgw_list_empty(&l->sr_parked))
        pskgw_sessredis_cancel(pskgw_container_of(l->sr_parked.next, park_t, link)->req);
}
