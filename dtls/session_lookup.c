/* pskgw_dtls_session: identity resolution and parking. The identity read from the
 * ClientKeyExchange goes to the resolver (lookup in memory, else resolve); while the answer is
 * pending the handshake input is parked, and fed to wolfSSL when it comes. See session.h; the
 * session's layout and entry-point helpers are in dtls/internal.h. */
#include "dtls/session.h"

#include "dtls/internal.h"
#include "dtls/parse.h"

#include "common/err.h"
#include "common/wipe.h"

#include <stdlib.h>
#include <string.h>

void pskgw_dtls_session_cancel_lookup(pskgw_dtls_session_t *s)
{
    resolve_req_t *req = s->req;

    if (req == NULL)
        return;
    s->req = NULL;
    req->s = NULL;
    /* The resolver calls back (now or later) with PSKGW_ECANCELED; on_resolved frees req. */
    s->resolver->cancel(s->resolver->ctx, req->handle);
}

static void on_resolved(void *arg, int status, const uint8_t *psk, size_t psk_len, const char *uid)
{
    resolve_req_t *req = arg;
    pskgw_dtls_session_t *s = req->s;
    hs_state_t *hs;

    free(req);
    if (s == NULL)
        return; /* cancelled: the session is gone or gave up */
    s->req = NULL;
    pskgw_dtls_session_enter(s, s->cbs->now != NULL ? s->cbs->now(s->arg) : s->now);
    (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_UNPARK);
    hs = s->hs; /* the handshake state, unless the owner closed the session just now */
    if (status == 0 && hs != NULL && psk != NULL && psk_len > 0 && psk_len <= sizeof(hs->psk)) {
        memcpy(hs->psk, psk, psk_len);
        hs->psk_len = psk_len;
        s->key = KEY_READY;
        if (uid != NULL && uid[0] != '\0')
            s->uid = strdup(uid);
    } else if (status == 0 || status == PSKGW_ENOTFOUND || status == PSKGW_EDENIED) {
        s->key = KEY_RANDOM;
    } else {
        s->key = KEY_NONE;
        (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_LOOKUP_FAILED);
        pskgw_dtls_end_session(s, PSKGW_EUNAVAIL);
        pskgw_dtls_session_leave(s);
        return;
    }
    s->sent = false;
    pskgw_dtls_session_feed_parked(s);
    pskgw_dtls_session_arm_rtx(s);
    pskgw_dtls_session_leave(s);
}

void pskgw_dtls_session_start_lookup(pskgw_dtls_session_t *s, const uint8_t *raw, size_t raw_len)
{
    char hex[PSKGW_IDENTITY_HEX_CAP];
    char uid[PSKGW_UID_CAP];
    hs_state_t *hs = s->hs;
    size_t psk_len = sizeof(hs->psk);
    resolve_req_t *req;

    if (pskgw_identity_normalize(raw, raw_len, hex, sizeof(hex)) < 0) {
        s->key = KEY_RANDOM;
        return;
    }
    memcpy(s->hs->raw_id, raw, raw_len);
    s->hs->raw_id_len = raw_len;
    free(s->identity);
    free(s->uid); /* a ticket refused after opening may have set one */
    s->uid = NULL;
    s->identity = strdup(hex);
    if (s->identity == NULL || pskgw_dtls_session_event(s, PSKGW_DTLS_EV_IDENTITY) < 0) {
        s->key = KEY_RANDOM;
        return;
    }
    uid[0] = '\0';
    if (s->resolver->lookup != NULL &&
        s->resolver->lookup(s->resolver->ctx, hex, hs->psk, &psk_len, uid, sizeof(uid)) == 0 &&
        psk_len > 0 && psk_len <= sizeof(hs->psk)) {
        hs->psk_len = psk_len;
        s->key = KEY_READY;
        uid[sizeof(uid) - 1] = '\0';
        if (uid[0] != '\0')
            s->uid = strdup(uid);
        return;
    }
    pskgw_wipe(hs->psk, sizeof(hs->psk));
    if (pskgw_dtls_session_event(s, PSKGW_DTLS_EV_PARK) < 0) {
        pskgw_dtls_end_session(s, PSKGW_EBUSY);
        return;
    }
    req = calloc(1, sizeof(*req));
    if (req == NULL ||
        s->resolver->resolve(s->resolver->ctx, hex, on_resolved, req, &req->handle) < 0) {
        free(req);
        (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_UNPARK);
        (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_LOOKUP_FAILED);
        pskgw_dtls_end_session(s, PSKGW_EUNAVAIL);
        return;
    }
    req->s = s;
    s->req = req;
    s->key = KEY_PENDING;
}

void pskgw_dtls_session_feed_parked(pskgw_dtls_session_t *s)
{
    uint8_t *park;
    size_t len;

    if (s->hs == NULL || s->hs->park_len == 0)
        return;
    park = s->hs->park;
    len = s->hs->park_len;
    s->hs->park = NULL;
    s->hs->park_len = 0;
    if (s->dtls) {
        size_t off = 0;

        while (off + 2 <= len && !s->closed) {
            size_t n = ((size_t)park[off] << 8) | park[off + 1];

            if (n > len - off - 2)
                break; /* never past the parked bytes */
            pskgw_dtls_session_process(s, park + off + 2, n);
            off += 2 + n;
        }
    } else {
        pskgw_dtls_session_process(s, park, len);
    }
    free(park);
}

void pskgw_dtls_session_park(pskgw_dtls_session_t *s, const uint8_t *data, size_t len, bool restart)
{
    hs_state_t *hs = s->hs;
    size_t need = s->dtls ? len + 2 : len;
    uint8_t *p;

    if (s->dtls && len > 0xFFFF)
        return; /* not a UDP datagram; its length would not fit the 16-bit prefix */
    if (s->dtls && restart)
        hs->park_len = 0; /* a retransmitted flight: keep the newest copy only */
    if (len == 0 || need > s->ctx->opt.max_parked_bytes - hs->park_len) {
        if (!s->dtls)
            pskgw_dtls_end_session(s, PSKGW_ETOOBIG); /* a stream cannot drop bytes */
        return;
    }
    p = realloc(hs->park, hs->park_len + need);
    if (p == NULL) {
        if (!s->dtls)
            pskgw_dtls_end_session(s, PSKGW_ENOMEM);
        return;
    }
    hs->park = p;
    if (s->dtls) {
        p[hs->park_len] = (uint8_t)(len >> 8);
        p[hs->park_len + 1] = (uint8_t)len;
        memcpy(p + hs->park_len + 2, data, len);
    } else {
        memcpy(p + hs->park_len, data, len);
    }
    hs->park_len += need;
}
