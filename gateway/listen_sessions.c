/* The admin API's view of a listener's sessions: listing and close by identity. */
#include "common/err.h"
#include "gateway/listen_internal.h"

#include <stdlib.h>
#include <strings.h>

static const char *identity_of(const pskgw_lsess_t *s)
{
    return pskgw_lsess_identity(s); /* a frozen session is not woken for it */
}

size_t pskgw_listener_sessions(pskgw_listener_t *l, const char *identity,
                               pskgw_listener_session_cb cb, void *arg)
{
    uint64_t now = uv_now(l->loop);
    size_t n = 0;

    for (size_t i = 0; !l->closing && i < l->by_id.cap; i++) {
        for (const pskgw_lsess_t *s = l->by_id.b[i]; s != NULL; s = s->next_id) {
            const char *id = identity_of(s);
            const char *uid;
            pskgw_listener_session_info_t info;
            char peer[PSKGW_PEER_STR_CAP];

            if (id == NULL || !s->established || (identity && strcasecmp(id, identity) != 0))
                continue;
            uid = pskgw_lsess_uid(s);
            info.peer = pskgw_lsess_peer(s, peer); /* a frozen session: from its address */
            info.identity = id;
            info.rot_public_uid = uid != NULL ? uid : "";
            info.session_id = s->id;
            info.age_ms = now - s->started_ms;
            info.idle_ms = now - s->last_ms;
            info.bytes_in = s->bytes_in;
            info.bytes_out = s->bytes_out;
            cb(arg, &info);
            n++;
        }
    }
    return n;
}

/* Ids first, then one lookup each: ending a session may end its successor as well (listen_api.c
 * pskgw_lsess_end), so the chains are not walked while sessions end. */
int pskgw_listener_close_identity(pskgw_listener_t *l, const char *identity)
{
    uint64_t *ids;
    size_t n = 0;
    int ended = 0;

    if (l->closing || l->by_id.n == 0)
        return 0;
    ids = calloc(l->by_id.n, sizeof(*ids));
    if (ids == NULL)
        return PSKGW_ENOMEM;
    for (size_t i = 0; i < l->by_id.cap && n < l->by_id.n; i++) {
        for (const pskgw_lsess_t *s = l->by_id.b[i]; s != NULL && n < l->by_id.n; s = s->next_id) {
            const char *id = identity_of(s);

            if (id != NULL && strcasecmp(id, identity) == 0)
                ids[n++] = s->id;
        }
    }
    for (size_t k = 0; k < n; k++) {
        pskgw_lsess_t *s = pskgw_ltable_find_id(&l->by_id, ids[k]);

        if (s == NULL || s->ended)
            continue;
        /* one in Redis ends unsent: it may be another node's now (listen_sessredis.c) */
        if (s->established && !s->in_redis && pskgw_lsess_ds(s) != NULL)
            pskgw_dtls_session_close_notify(s->ds); /* ends it via cb_closed */
        pskgw_lsess_end(s);
        ended++;
    }
    free(ids);
    return ended;
}
