/* pskgw_dtls_session: see session.h. */
#include "dtls/session.h"

#include "dtls/internal.h"
#include "dtls/parse.h"
#include "dtls/slab.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"

#include <wolfssl/error-ssl.h>
#include <wolfssl/pskgw.h>

#include <stdlib.h>
#include <string.h>

static void do_free(pskgw_dtls_session_t *s);

void pskgw_dtls_session_enter(pskgw_dtls_session_t *s, uint64_t now)
{
    s->depth++;
    if (now > s->now)
        s->now = now;
}

static uint64_t next_deadline(const pskgw_dtls_session_t *s)
{
    uint64_t d = UINT64_MAX;

    if (s->closed)
        return UINT64_MAX;
    if (!s->established) {
        d = s->hs_deadline;
        if (s->key == KEY_NONE && s->ho_deadline < d)
            d = s->ho_deadline;
        if (s->dtls && s->key != KEY_PENDING && s->rtx_deadline < d)
            d = s->rtx_deadline;
    } else if (s->ctx->opt.idle_timeout_s > 0) {
        d = s->last_rx + (uint64_t)s->ctx->opt.idle_timeout_s * 1000;
    }
    return d;
}

void pskgw_dtls_session_leave(pskgw_dtls_session_t *s)
{
    if (--s->depth > 0)
        return;
    if (s->free_deferred) {
        do_free(s);
        return;
    }
    if (!s->closed && s->cbs->timer != NULL) {
        uint64_t d = next_deadline(s);

        if (d != s->announced) {
            s->announced = d;
            s->cbs->timer(s->arg, d);
        }
    }
}

int pskgw_dtls_session_event(pskgw_dtls_session_t *s, pskgw_dtls_event_t ev)
{
    if (s->cbs->event == NULL)
        return 0;
    return s->cbs->event(s->arg, ev, s->identity);
}

static void free_hs(pskgw_dtls_session_t *s)
{
    if (s->hs == NULL)
        return;
    free(s->hs->park);
    pskgw_wipe(s->hs, sizeof(*s->hs));
    pskgw_slab_release(s->hs);
    s->hs = NULL;
}

void pskgw_dtls_end_session(pskgw_dtls_session_t *s, int reason)
{
    if (s->closed)
        return;
    s->closed = true;
    if (s->key == KEY_PENDING) {
        pskgw_dtls_session_cancel_lookup(s);
        (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_UNPARK);
    }
    free_hs(s); /* and the key with it */
    if (s->cbs->closed != NULL)
        s->cbs->closed(s->arg, reason);
}

void pskgw_dtls_session_arm_rtx(pskgw_dtls_session_t *s)
{
    if (s->dtls && !s->established && !s->closed && s->sent) {
        int t = wolfSSL_dtls_get_current_timeout(s->ssl);

        s->rtx_deadline = s->now + (uint64_t)(t > 0 ? t : 1) * 1000;
    }
}

/* ---- input -------------------------------------------------------------------------------- */

static int map_wolf_error(int err)
{
    switch (err) {
    case VERIFY_MAC_ERROR:
    case DECRYPT_ERROR:
    case VERIFY_FINISHED_ERROR:
    case PSK_KEY_ERROR:
        return PSKGW_EAUTH;
    case SOCKET_ERROR_E:
        return PSKGW_EIO;
    case FATAL_ERROR:
        return PSKGW_ETLS;
    default:
        return PSKGW_ETLS;
    }
}

static void on_established(pskgw_dtls_session_t *s)
{
    s->established = true;
    s->last_rx = s->now;
    s->cid_on = s->cid_len > 0 && wolfSSL_dtls_cid_is_enabled(s->ssl) == 1;
    pskgw_ticket_note_established(s); /* resumed: identity and uid came from the ticket */
    s->resolver = NULL;               /* the owner may free it from the event on (session.h) */
    wolfSSL_FreeArrays(s->ssl);
    /* RFC 5746's renegotiation_info state (432 bytes of a client that sent it, e.g. OpenSSL):
     * wolfSSL keeps every extension in a build with CID (docs/WOLFSSL.md, "After the
     * handshake"). */
    (void)pskgw_wolfSSL_FreeRenegotiationInfo(s->ssl);
    if (s->dtls)
        (void)wolfSSL_dtls_set_peer(s->ssl, NULL, 0);
    /* The key goes with the handshake state. Stream bytes held after the client's Finished
     * stay in wolfSSL's own input buffer. */
    free_hs(s);
    (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_ESTABLISHED);
}

static void read_all(pskgw_dtls_session_t *s)
{
    uint8_t *buf = s->ctx->readbuf;

    while (!s->closed) {
        int n = wolfSSL_read(s->ssl, buf, (int)PSKGW_READ_BUF);
        int err;

        if (n > 0) {
            /* Only authenticated records keep the session alive (anyone can spoof junk). */
            s->last_rx = s->now;
            s->authed++;
            if (s->rx_new_peer && s->rx_key > s->rx_top) {
                /* RFC 9146 section 6: authenticated, and newer than anything before: the owner
                 * moves the peer address now, so that what it sends in answer goes there. */
                s->rx_new_peer = false;
                s->rx_moved = true;
                s->rx_top = s->rx_key;
                (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_PEER_MOVED);
                if (s->closed)
                    break;
            }
            if (s->dtls) {
                if ((size_t)n > s->ctx->opt.max_message)
                    (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_MESSAGE_DROPPED);
                else
                    pskgw_dtls_deliver(s, buf, (size_t)n);
            } else {
                pskgw_dtls_frame_input(s, buf, (size_t)n);
            }
            continue;
        }
        err = wolfSSL_get_error(s->ssl, n);
        if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
            /* The client was heard in epoch 1 after the handshake: our last flight arrived.
             * Free the retransmission pool, handshake hashes and the grown input buffer. */
            if (s->seq > 0 && !s->hs_freed) {
                s->hs_freed = true;
                (void)wolfSSL_FreeHandshakeResources(s->ssl);
            }
            break;
        }
        if (err == WOLFSSL_ERROR_ZERO_RETURN) {
            pskgw_dtls_end_session(s, 0);
            break;
        }
        if (s->dtls && (err == VERIFY_MAC_ERROR || err == DECRYPT_ERROR))
            continue; /* DTLS drops a bad record and carries on */
        pskgw_dtls_end_session(s, s->send_failed ? PSKGW_EIO : map_wolf_error(err));
        break;
    }
}

static void drive(pskgw_dtls_session_t *s)
{
    if (!s->established) {
        int ret = wolfSSL_accept(s->ssl);

        if (ret == WOLFSSL_SUCCESS) {
            on_established(s);
        } else {
            int err = wolfSSL_get_error(s->ssl, ret);

            if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE) {
                int reason = s->send_failed ? PSKGW_EIO : map_wolf_error(err);

                if (reason == PSKGW_EAUTH)
                    (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_AUTH_FAILED);
                pskgw_dtls_end_session(s, reason);
                return;
            }
        }
    }
    if (s->established && !s->closed)
        read_all(s);
}

/* Walks a datagram's records: returns the length of its well-formed prefix (whole records
 * only), whether it holds an encrypted handshake record (epoch > 0; with a CID every epoch-1
 * record before the handshake ends is the client's Finished), whether a ChangeCipherSpec, and
 * the highest epoch << 48 | sequence number among them. wolfSSL keeps a truncated record's bytes
 * and misreads the next datagram after them, so only whole records reach it. */
static size_t scan_datagram(const uint8_t *d, size_t len, size_t cid_len, bool *epoch1, bool *ccs,
                            uint64_t *top)
{
    size_t off = 0;

    *epoch1 = false;
    *ccs = false;
    *top = 0;
    while (off < len) {
        pskgw_dtls_record_t rec;
        pskgw_dtls_cid_record_t crec;
        size_t used = 0;
        uint64_t key;

        if (cid_len > 0 && d[off] == PSKGW_CT_TLS12_CID) {
            if (pskgw_dtls_cid_record_parse(d + off, len - off, cid_len, &crec, &used) < 0)
                break;
            if (crec.epoch > 0)
                *epoch1 = true;
            key = (uint64_t)crec.epoch << 48 | crec.seq;
        } else {
            if (pskgw_dtls_record_parse(d + off, len - off, &rec, &used) < 0)
                break;
            if (rec.epoch > 0 && rec.type == PSKGW_CT_HANDSHAKE)
                *epoch1 = true; /* the client's Finished */
            if (rec.type == PSKGW_CT_CHANGE_CIPHER_SPEC)
                *ccs = true;
            key = (uint64_t)rec.epoch << 48 | rec.seq;
        }
        if (key > *top)
            *top = key;
        off += used;
    }
    return off;
}

/* DTLS: a half-open handshake holds no handshake state of ours while it waits for its key
 * exchange (docs/SECURITY.md, "Session-table fill"): the state is made again for the next
 * datagram, and kept once a ClientKeyExchange fragment arrived or the key is being resolved. */
static bool hs_ensure(pskgw_dtls_session_t *s)
{
    if (s->hs != NULL)
        return true;
    s->hs = pskgw_slab_calloc(PSKGW_SLAB_AWAKE, sizeof(*s->hs));
    if (s->hs == NULL) {
        pskgw_dtls_end_session(s, PSKGW_ENOMEM);
        return false;
    }
    return true;
}

static void hs_release_idle(pskgw_dtls_session_t *s)
{
    if (!s->closed && !s->established && s->hs != NULL && s->key == KEY_NONE &&
        !s->hs->cke.active && s->hs->park_len == 0)
        free_hs(s);
}

static void process_dtls(pskgw_dtls_session_t *s, const uint8_t *data, size_t len)
{
    bool has_cke = false;
    bool cke_start = false;
    bool epoch1 = false;
    bool ccs = false;
    bool cke_before = s->cke_fed;
    uint64_t top = 0;
    uint64_t authed = s->authed;

    if (!s->established && !hs_ensure(s))
        return;
    if (!s->established && s->hs != NULL) {
        const uint8_t *id = NULL;
        size_t id_len = 0;
        int rc = pskgw_cke_asm_feed(&s->hs->cke, data, len, s->ctx->opt.max_identity_len, &id,
                                    &id_len, &has_cke, &cke_start);

        if (s->key == KEY_NONE) {
            if (rc == 1)
                pskgw_dtls_session_start_lookup(s, id, id_len);
            else if (rc == PSKGW_ETOOBIG)
                s->key = KEY_RANDOM; /* oversize identity: fails like a wrong key */
            if (s->closed)
                return;
        }
        if (s->key == KEY_PENDING) {
            pskgw_dtls_session_park(s, data, len, has_cke && cke_start);
            return;
        }
    }
    len = scan_datagram(data, len, s->cid_len, &epoch1, &ccs, &top);
    if (len == 0) {
        hs_release_idle(s);
        return; /* nothing but garbage */
    }
    if (ccs)
        s->ccs_fed = true;
    s->in = data;
    s->in_len = len;
    wolfSSL_SSLEnableRead(s->ssl); /* until the read callback has taken the datagram */
    drive(s);
    s->in = NULL;
    s->in_len = 0;
    if (s->authed > authed && top > s->rx_top)
        s->rx_top = top;
    /* DTLS drops records it cannot decrypt: a client Finished under the wrong key is silently
     * ignored. Once the CKE and the ChangeCipherSpec were processed, an epoch-1 flight that
     * does not finish the handshake is that failure: end the session now instead of at the
     * deadline. (A Finished that overtook the ChangeCipherSpec is not: it could not be
     * decrypted yet.) */
    if (!s->closed && !s->established && epoch1 && s->ccs_fed && (cke_before || s->cke_fed) &&
        (s->key == KEY_READY || s->key == KEY_RANDOM)) {
        (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_AUTH_FAILED);
        pskgw_dtls_end_session(s, PSKGW_EAUTH);
    }
    hs_release_idle(s);
}

static void process_tls(pskgw_dtls_session_t *s, const uint8_t *data, size_t len)
{
    if (!s->established && s->hs != NULL && s->server_flight_sent &&
        (s->key == KEY_NONE || s->key == KEY_PENDING)) {
        pskgw_dtls_session_park(s, data, len, false);
        if (s->closed)
            return;
        if (s->key == KEY_NONE) {
            const uint8_t *id = NULL;
            size_t id_len = 0;
            int rc = pskgw_tls_find_cke_identity(s->hs->park, s->hs->park_len,
                                                 s->ctx->opt.max_identity_len, s->ctx->scratch,
                                                 sizeof(s->ctx->scratch), &id, &id_len);

            if (rc == 1)
                pskgw_dtls_session_start_lookup(s, id, id_len);
            else if (rc < 0)
                s->key = KEY_RANDOM;
            if (s->closed)
                return;
        }
        if (s->key == KEY_READY || s->key == KEY_RANDOM)
            pskgw_dtls_session_feed_parked(s);
        return;
    }
    s->in = data;
    s->in_len = len;
    drive(s);
    /* wolfSSL reads what it needs per call; give it the rest of the bytes. */
    while (!s->closed && s->in_len > 0) {
        size_t before = s->in_len;

        if (!s->established && s->server_flight_sent &&
            (s->key == KEY_NONE || s->key == KEY_PENDING)) {
            const uint8_t *rest = s->in;
            size_t rest_len = s->in_len;

            s->in = NULL;
            s->in_len = 0;
            process_tls(s, rest, rest_len);
            return;
        }
        drive(s);
        if (s->in_len == before)
            break;
    }
    s->in = NULL;
    s->in_len = 0;
}

void pskgw_dtls_session_process(pskgw_dtls_session_t *s, const uint8_t *data, size_t len)
{
    if (s->closed)
        return;
    if (s->dtls)
        process_dtls(s, data, len);
    else
        process_tls(s, data, len);
}

bool pskgw_dtls_session_wake(pskgw_dtls_session_t *s)
{
    if (!s->hibernated)
        return true;
    if (pskgw_dtls_session_thaw(s) == 0) {
        (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_THAWED);
        return !s->closed;
    }
    (void)pskgw_dtls_session_event(s, PSKGW_DTLS_EV_THAW_FAILED);
    pskgw_dtls_end_session(s, PSKGW_ETLS);
    return false;
}

/* ---- public ------------------------------------------------------------------------------- */

int pskgw_dtls_session_new(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                           const pskgw_dtls_session_cbs_t *cbs, void *arg, const uint8_t *peer,
                           size_t peer_len, uint64_t now, pskgw_dtls_session_t **out)
{
    pskgw_dtls_session_t *s;
    int rc;

    if (ctx == NULL || resolver == NULL || resolver->resolve == NULL || resolver->cancel == NULL ||
        cbs == NULL || cbs->send == NULL || cbs->message == NULL || out == NULL ||
        (ctx->opt.dtls && (peer == NULL || peer_len == 0)))
        return PSKGW_EINVAL;
    if ((rc = pskgw_dtls_session_blank(ctx, resolver, cbs, arg, now, &s)) < 0)
        return rc;
    rc = PSKGW_ENOMEM;
    s->hs_deadline = now + ctx->opt.handshake_timeout_ms;
    s->ho_deadline = now + ctx->opt.half_open_timeout_ms;
    s->hs = pskgw_slab_calloc(PSKGW_SLAB_AWAKE, sizeof(*s->hs));
    if (s->hs == NULL)
        goto fail;
    rc = PSKGW_ETLS;
    s->ssl = wolfSSL_new(ctx->wctx);
    if (s->ssl == NULL)
        goto fail;
    wolfSSL_SetIOReadCtx(s->ssl, s);
    wolfSSL_SetIOWriteCtx(s->ssl, s);
    if (s->dtls) {
        wolfSSL_dtls_set_using_nonblock(s->ssl, 1);
        if (wolfSSL_dtls_set_peer(s->ssl, (void *)peer, (unsigned int)peer_len) != WOLFSSL_SUCCESS)
            goto fail;
        if (peer_len > sizeof(s->hs->peer))
            goto fail;
        memcpy(s->hs->peer, peer, peer_len);
        s->hs->peer_len = peer_len;
        if (ctx->opt.cid_len > 0 && (rc = pskgw_dtls_session_offer_cid(s)) < 0)
            goto fail;
    }
    *out = s;
    return 0;

fail:
    if (s->ssl != NULL)
        wolfSSL_free(s->ssl);
    pskgw_slab_release(s->hs);
    pskgw_slab_release(s);
    return rc;
}

static void do_free(pskgw_dtls_session_t *s)
{
    if (s->key == KEY_PENDING)
        pskgw_dtls_session_cancel_lookup(s);
    if (s->ssl != NULL)
        wolfSSL_free(s->ssl);
    pskgw_dtls_session_drop_blob(s);
    free_hs(s);
    free(s->identity);
    free(s->uid);
    free(s->fbuf);
    pskgw_slab_release(s);
}

void pskgw_dtls_session_free(pskgw_dtls_session_t *s)
{
    if (s == NULL)
        return;
    if (s->depth > 0) {
        /* Inside one of our callbacks: stop every loop now, free on the way out. */
        s->free_deferred = true;
        s->closed = true;
        return;
    }
    do_free(s);
}

/* The first datagram of a DTLS session: a ClientHello whose cookie the listener checked
 * (pskgw_dtls_ctx_check_hello). Which secret made it (current or previous, so a rotation between
 * HelloVerifyRequest and ClientHello does not fail it) comes from the context's memory of that
 * check; wolfSSL is told the cookie is good (scripts/wolfssl: no second cookie HMAC, issue 13) or,
 * should that be refused, given the secret to check it again itself. Any other first datagram
 * leaves wolfSSL stateless: it answers a HelloVerifyRequest under its own random secret. */
static void cookie_checked(pskgw_dtls_session_t *s, const uint8_t *data, size_t len)
{
    pskgw_dtls_client_hello_t ch;
    uint64_t rseq = 0;
    uint16_t mseq = 0;
    int idx = pskgw_dtls_ctx_cookie_index(s->ctx, s->hs->peer, s->hs->peer_len, data, len);

    if (idx < 0)
        return;
    if (pskgw_dtls_find_client_hello(data, len, &rseq, &mseq, &ch) == 0 &&
        pskgw_wolfSSL_dtls12_cookie_checked(s->ssl, rseq, mseq) == WOLFSSL_SUCCESS)
        return;
    (void)wolfSSL_DTLS_SetCookieSecret(s->ssl, s->ctx->secret[idx], PSKGW_COOKIE_SECRET_LEN);
}

int pskgw_dtls_session_feed(pskgw_dtls_session_t *s, const uint8_t *data, size_t len, uint64_t now)
{
    if (s == NULL || (data == NULL && len > 0))
        return PSKGW_EINVAL;
    if (s->closed || s->free_deferred)
        return PSKGW_ECLOSED;
    pskgw_dtls_session_enter(s, now);
    s->sent = false;
    if (s->dtls && !s->fed_once && s->hs != NULL)
        cookie_checked(s, data, len);
    s->fed_once = true;
    if (pskgw_dtls_session_wake(s)) {
        pskgw_dtls_session_process(s, data, len);
        pskgw_dtls_session_arm_rtx(s);
    }
    pskgw_dtls_session_leave(s);
    return 0;
}

/* The random folded to 64 bits; never 0 (0 is "none"). */
static uint64_t fold_hello(const uint8_t random[32])
{
    uint64_t f = 0;

    for (size_t i = 0; i < 32; i += 8) {
        uint64_t w;

        memcpy(&w, random + i, sizeof(w));
        f ^= w;
    }
    return f != 0 ? f : 1;
}

void pskgw_dtls_session_note_hello(pskgw_dtls_session_t *s, const uint8_t random[32])
{
    if (s != NULL && random != NULL)
        s->hello = fold_hello(random);
}

bool pskgw_dtls_session_hello_is(const pskgw_dtls_session_t *s, const uint8_t random[32])
{
    return s != NULL && random != NULL && s->hello != 0 && s->hello == fold_hello(random);
}

void pskgw_dtls_session_touch(pskgw_dtls_session_t *s, uint64_t now)
{
    if (s == NULL || s->closed || s->free_deferred || !s->established)
        return;
    pskgw_dtls_session_enter(s, now);
    s->last_rx = s->now;
    pskgw_dtls_session_leave(s); /* announces the moved idle deadline */
}

void pskgw_dtls_session_timeout(pskgw_dtls_session_t *s, uint64_t now)
{
    if (s == NULL || s->closed || s->free_deferred)
        return;
    pskgw_dtls_session_enter(s, now);
    if (!s->established) {
        if (s->now >= s->hs_deadline || (s->key == KEY_NONE && s->now >= s->ho_deadline)) {
            pskgw_dtls_end_session(s, PSKGW_ETIMEOUT);
        } else if (s->dtls && s->key != KEY_PENDING && s->now >= s->rtx_deadline) {
            if (wolfSSL_dtls_got_timeout(s->ssl) != WOLFSSL_SUCCESS) {
                pskgw_dtls_end_session(s, PSKGW_ETIMEOUT);
            } else {
                int t = wolfSSL_dtls_get_current_timeout(s->ssl);

                s->rtx_deadline = s->now + (uint64_t)(t > 0 ? t : 1) * 1000;
            }
        }
    } else if (s->ctx->opt.idle_timeout_s > 0 &&
               s->now >= s->last_rx + (uint64_t)s->ctx->opt.idle_timeout_s * 1000) {
        if (s->ssl != NULL)
            (void)wolfSSL_shutdown(s->ssl); /* a hibernated session ends without a word */
        pskgw_dtls_end_session(s, PSKGW_EAGAIN);
    }
    pskgw_dtls_session_leave(s);
}

int pskgw_dtls_session_write(pskgw_dtls_session_t *s, const uint8_t *data, size_t len)
{
    uint8_t stackframe[PSKGW_TLS_SCRATCH + 2]; /* a framed message up to the default max_message */
    uint8_t *frame = NULL;
    const uint8_t *p = data;
    size_t n = len;
    int rc = 0;
    int ret;

    if (s == NULL || (data == NULL && len > 0))
        return PSKGW_EINVAL;
    if (s->closed || s->free_deferred)
        return PSKGW_ECLOSED;
    if (!s->established)
        return PSKGW_EAGAIN;
    if (len > s->ctx->opt.max_message || len == 0)
        return len == 0 ? PSKGW_EINVAL : PSKGW_ETOOBIG;
    if (!s->dtls && s->ctx->opt.framing != PSKGW_FRAMING_RECORD) {
        /* No allocation per message (tests/unit/dtls/test_alloc_path.c) up to 4096 bytes. */
        frame = len + 2 <= sizeof(stackframe) ? stackframe : malloc(len + 2);
        if (frame == NULL)
            return PSKGW_ENOMEM;
        if (s->ctx->opt.framing == PSKGW_FRAMING_LEN16) {
            frame[0] = (uint8_t)(len >> 8);
            frame[1] = (uint8_t)len;
            memcpy(frame + 2, data, len);
        } else {
            memcpy(frame, data, len);
            frame[len] = '\n';
        }
        p = frame;
        n = len + (s->ctx->opt.framing == PSKGW_FRAMING_LEN16 ? 2 : 1);
    }
    pskgw_dtls_session_enter(s, s->now);
    s->dgram_dropped = false;
    if (!pskgw_dtls_session_wake(s)) {
        rc = PSKGW_ECLOSED;
        if (frame != stackframe)
            free(frame);
        pskgw_dtls_session_leave(s);
        return rc;
    }
    ret = wolfSSL_write(s->ssl, p, (int)n);
    if (ret != (int)n) {
        rc = s->send_failed ? PSKGW_EIO : PSKGW_ETLS;
        if (!s->dtls)
            pskgw_dtls_end_session(s, rc);
    } else if (s->dgram_dropped) {
        rc = PSKGW_EIO; /* DTLS: the record was lost at the socket; the session goes on */
    }
    if (frame != stackframe)
        free(frame);
    pskgw_dtls_session_leave(s);
    return rc;
}

void pskgw_dtls_session_close_notify(pskgw_dtls_session_t *s)
{
    if (s == NULL || s->closed || s->free_deferred)
        return;
    pskgw_dtls_session_enter(s, s->now);
    if (s->established && pskgw_dtls_session_wake(s))
        (void)wolfSSL_shutdown(s->ssl);
    pskgw_dtls_end_session(s, 0);
    pskgw_dtls_session_leave(s);
}

bool pskgw_dtls_session_established(const pskgw_dtls_session_t *s)
{
    return s->established;
}

bool pskgw_dtls_session_is_closed(const pskgw_dtls_session_t *s)
{
    return s->closed;
}

bool pskgw_dtls_session_lookup_pending(const pskgw_dtls_session_t *s)
{
    return s->key == KEY_PENDING;
}

const char *pskgw_dtls_session_identity(const pskgw_dtls_session_t *s)
{
    return s->identity;
}

const char *pskgw_dtls_session_uid(const pskgw_dtls_session_t *s)
{
    return s->uid;
}

const char *pskgw_dtls_session_cipher(const pskgw_dtls_session_t *s)
{
    if (!s->established)
        return NULL;
    if (s->hibernated)
        return s->cipher_name;
    return wolfSSL_get_cipher_name(s->ssl);
}
