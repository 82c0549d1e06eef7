/* pskgw_dtls_session: the DTLS 1.2 Connection ID side of a session (RFC 9146): the server's CID
 * offered at creation, records fed by CID from any address, the negotiated CID. See session.h;
 * the session's layout and entry-point helpers are in dtls/internal.h. */
#include "dtls/session.h"

#include "dtls/cid.h"
#include "dtls/internal.h"

#include "common/err.h"
#include "common/wipe.h"

#include <string.h>

int pskgw_dtls_session_offer_cid(pskgw_dtls_session_t *s)
{
    uint8_t rnd[PSKGW_CID_MAX];
    size_t len = s->ctx->opt.cid_len;
    int rc = PSKGW_ECRYPTO;

    if (pskgw_dtls_ctx_random(s->ctx, rnd, len - 1) < 0 ||
        pskgw_dtls_cid_make(s->ctx->opt.cid_worker, rnd, len, s->cid) < 0)
        goto out;
    rc = PSKGW_ETLS;
    if (wolfSSL_dtls_cid_use(s->ssl) != WOLFSSL_SUCCESS ||
        wolfSSL_dtls_cid_set(s->ssl, s->cid, (unsigned int)len) != WOLFSSL_SUCCESS)
        goto out;
    s->cid_len = (uint8_t)len;
    rc = 0;
out:
    pskgw_wipe(rnd, sizeof(rnd));
    return rc;
}

int pskgw_dtls_session_feed_cid(pskgw_dtls_session_t *s, const uint8_t *data, size_t len,
                                uint64_t now, bool *move)
{
    size_t off = 0;

    if (s == NULL || move == NULL || (data == NULL && len > 0))
        return PSKGW_EINVAL;
    *move = false;
    if (s->closed || s->free_deferred)
        return PSKGW_ECLOSED;
    if (!s->established || !s->cid_on)
        return PSKGW_ENOTFOUND;
    pskgw_dtls_session_enter(s, now);
    if (!pskgw_dtls_session_wake(s)) {
        pskgw_dtls_session_leave(s);
        return 0;
    }
    /* Record by record: which one authenticated, and its sequence number, is known exactly. */
    while (off < len && !s->closed) {
        pskgw_dtls_cid_record_t r;
        size_t used = 0;

        if (pskgw_dtls_cid_record_parse(data + off, len - off, s->cid_len, &r, &used) < 0)
            break;
        if (memcmp(r.cid, s->cid, s->cid_len) == 0) {
            s->rx_new_peer = !s->rx_moved;
            s->rx_key = (uint64_t)r.epoch << 48 | r.seq;
            pskgw_dtls_session_process(s, data + off, used);
            s->rx_new_peer = false;
        }
        off += used;
    }
    *move = s->rx_moved;
    s->rx_moved = false;
    pskgw_dtls_session_leave(s);
    return 0;
}

const uint8_t *pskgw_dtls_session_cid(const pskgw_dtls_session_t *s, size_t *len)
{
    if (s == NULL || !s->cid_on)
        return NULL;
    if (len != NULL)
        *len = s->cid_len;
    return s->cid;
}
