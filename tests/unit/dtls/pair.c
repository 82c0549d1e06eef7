/* Test harness: see pair.h. */
#include "pair.h"

#include "common/codec.h"
#include "common/err.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

void tq_push(tq_t *q, const uint8_t *d, size_t n)
{
    unsigned i;

    cr_assert(q->count < TQ_CAP, "queue full");
    i = (q->head + q->count) % TQ_CAP;
    q->data[i] = malloc(n ? n : 1);
    cr_assert_not_null(q->data[i]);
    memcpy(q->data[i], d, n);
    q->len[i] = n;
    q->count++;
}

size_t tq_pop(tq_t *q, uint8_t *out, size_t cap)
{
    size_t n;

    if (q->count == 0)
        return 0;
    n = q->len[q->head] < cap ? q->len[q->head] : cap;
    memcpy(out, q->data[q->head], n);
    free(q->data[q->head]);
    q->head = (q->head + 1) % TQ_CAP;
    q->count--;
    return n;
}

void tq_clear(tq_t *q)
{
    uint8_t tmp[TQ_MAX];

    while (q->count > 0)
        (void)tq_pop(q, tmp, sizeof(tmp));
}

/* ---- resolver ------------------------------------------------------------------------- */

static int tres_lookup(void *ctx, const char *id, uint8_t *psk, size_t *psk_len, char *uid,
                       size_t uid_cap)
{
    tres_t *r = ctx;

    if (!r->sync)
        return PSKGW_ENOTFOUND;
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->entries[i].identity, id) == 0 && *psk_len >= r->entries[i].psk_len) {
            memcpy(psk, r->entries[i].psk, r->entries[i].psk_len);
            *psk_len = r->entries[i].psk_len;
            (void)snprintf(uid, uid_cap, "%s", r->entries[i].uid);
            return 0;
        }
    }
    return PSKGW_ENOTFOUND;
}

static int tres_resolve(void *ctx, const char *id, pskgw_psk_done_cb cb, void *arg, void **handle)
{
    tres_t *r = ctx;
    tres_pending_t *p;

    if (r->fail_now)
        return PSKGW_EUNAVAIL;
    p = calloc(1, sizeof(*p));
    cr_assert_not_null(p);
    (void)snprintf(p->identity, sizeof(p->identity), "%s", id);
    p->cb = cb;
    p->arg = arg;
    p->next = r->pending;
    r->pending = p;
    *handle = p;
    r->resolves++;
    return 0;
}

static void tres_cancel(void *ctx, void *handle)
{
    tres_t *r = ctx;

    for (tres_pending_t **pp = &r->pending; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == handle) {
            tres_pending_t *p = *pp;

            *pp = p->next;
            r->cancels++;
            p->cb(p->arg, PSKGW_ECANCELED, NULL, 0, NULL);
            free(p);
            return;
        }
    }
    cr_assert_fail("cancel of an unknown handle");
}

void tres_init(tres_t *r)
{
    memset(r, 0, sizeof(*r));
    r->sync = true;
    r->iface.resolve = tres_resolve;
    r->iface.cancel = tres_cancel;
    r->iface.lookup = tres_lookup;
    r->iface.ctx = r;
}

void tres_add(tres_t *r, const char *identity, const char *psk_hex, const char *uid)
{
    tres_entry_t *e = &r->entries[r->n++];
    size_t n = 0;

    e->identity = identity;
    cr_assert_eq(pskgw_hex_decode(psk_hex, strlen(psk_hex), e->psk, sizeof(e->psk), &n), 0);
    e->psk_len = n;
    e->uid = uid;
}

int tres_complete(tres_t *r, int force)
{
    int done = 0;

    while (r->pending != NULL) {
        tres_pending_t *p = r->pending;
        const tres_entry_t *hit = NULL;

        r->pending = p->next;
        for (int i = 0; i < r->n; i++) {
            if (strcmp(r->entries[i].identity, p->identity) == 0)
                hit = &r->entries[i];
        }
        if (force != 0)
            p->cb(p->arg, force, NULL, 0, NULL);
        else if (hit != NULL)
            p->cb(p->arg, 0, hit->psk, hit->psk_len, hit->uid);
        else
            p->cb(p->arg, PSKGW_ENOTFOUND, NULL, 0, NULL);
        free(p);
        done++;
    }
    return done;
}

/* ---- client ----------------------------------------------------------------------------- */

static int cli_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    tpair_t *p = ctx;
    tq_t *q = &p->to_client;
    size_t n;

    (void)ssl;
    if (q->count == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if (p->dtls)
        return (int)tq_pop(q, (uint8_t *)buf, (size_t)sz);
    /* stream: partial reads of the head chunk */
    n = q->len[q->head] < (size_t)sz ? q->len[q->head] : (size_t)sz;
    memcpy(buf, q->data[q->head], n);
    if (n == q->len[q->head]) {
        free(q->data[q->head]);
        q->head = (q->head + 1) % TQ_CAP;
        q->count--;
    } else {
        memmove(q->data[q->head], q->data[q->head] + n, q->len[q->head] - n);
        q->len[q->head] -= n;
    }
    return (int)n;
}

static int cli_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    tpair_t *p = ctx;

    (void)ssl;
    tq_push(&p->to_server, (const uint8_t *)buf, (size_t)sz);
    return sz;
}

static unsigned int cli_psk(WOLFSSL *ssl, const char *hint, char *identity, unsigned int id_max,
                            unsigned char *key, unsigned int key_max)
{
    tpair_t *p = wolfSSL_GetIOReadCtx(ssl);

    (void)hint;
    if (strlen(p->cli_identity) >= id_max || p->cli_psk_len > key_max)
        return 0;
    memcpy(identity, p->cli_identity, strlen(p->cli_identity) + 1);
    memcpy(key, p->cli_psk, p->cli_psk_len);
    return (unsigned int)p->cli_psk_len;
}

/* ---- server callbacks ------------------------------------------------------------------- */

static int srv_send(void *arg, const uint8_t *d, size_t n)
{
    tpair_t *p = arg;

    p->server_sends++;
    if (p->fail_sends)
        return PSKGW_EAGAIN;
    if (!p->drop_to_client)
        tq_push(&p->to_client, d, n);
    return 0;
}

static void srv_message(void *arg, uint64_t seq, const uint8_t *d, size_t n)
{
    tpair_t *p = arg;

    cr_assert_eq(seq, p->last_seq + 1, "seq %llu after %llu", (unsigned long long)seq,
                 (unsigned long long)p->last_seq);
    p->last_seq = seq;
    if (p->nmsgs < 8 && n < 256) {
        memcpy(p->msgs[p->nmsgs], d, n);
        p->msgs[p->nmsgs][n] = '\0';
        p->msg_len[p->nmsgs] = n;
        p->nmsgs++;
    }
    if (p->free_in_message) {
        pskgw_dtls_session_free(p->srv);
        p->srv = NULL;
    }
}

static int srv_event(void *arg, pskgw_dtls_event_t ev, const char *identity)
{
    tpair_t *p = arg;

    switch (ev) {
    case PSKGW_DTLS_EV_IDENTITY:
        cr_assert_not_null(identity);
        return p->refuse_identity ? PSKGW_EDENIED : 0;
    case PSKGW_DTLS_EV_PARK:
        p->parks++;
        return p->refuse_park ? PSKGW_EFULL : 0;
    case PSKGW_DTLS_EV_UNPARK:
        p->unparks++;
        break;
    case PSKGW_DTLS_EV_LOOKUP_FAILED:
        p->lookup_failed++;
        break;
    case PSKGW_DTLS_EV_ESTABLISHED:
        p->established++;
        break;
    case PSKGW_DTLS_EV_AUTH_FAILED:
        p->auth_failed++;
        break;
    case PSKGW_DTLS_EV_PEER_MOVED:
        p->moved++;
        break;
    case PSKGW_DTLS_EV_THAWED:
        p->thawed++;
        break;
    case PSKGW_DTLS_EV_THAW_FAILED:
        p->thaw_failed++;
        break;
    default:
        break;
    }
    return 0;
}

static void srv_timer(void *arg, uint64_t deadline)
{
    tpair_t *p = arg;

    p->deadline = deadline;
}

static void srv_closed(void *arg, int reason)
{
    tpair_t *p = arg;

    p->closed_calls++;
    p->closed_reason = reason;
}

static uint64_t srv_now(void *arg)
{
    tpair_t *p = arg;

    return p->now;
}

static const pskgw_dtls_session_cbs_t srv_cbs = {
    .send = srv_send,
    .message = srv_message,
    .event = srv_event,
    .timer = srv_timer,
    .closed = srv_closed,
    .now = srv_now,
};

const pskgw_dtls_session_cbs_t *tpair_server_cbs(void)
{
    return &srv_cbs;
}

void tpair_init(tpair_t *p, pskgw_dtls_ctx_t *sctx, tres_t *res, bool dtls, const char *cipher,
                const char *identity, const char *psk_hex)
{
    size_t n = 0;

    memset(p, 0, sizeof(*p));
    p->dtls = dtls;
    p->sctx = sctx;
    p->res = res;
    p->now = 1000;
    p->deadline = UINT64_MAX;
    memcpy(p->peer, "\x04\x12\x34\x7f\x00\x00\x01", 7);
    (void)snprintf(p->cli_identity, sizeof(p->cli_identity), "%s", identity);
    cr_assert_eq(pskgw_hex_decode(psk_hex, strlen(psk_hex), p->cli_psk, sizeof(p->cli_psk), &n), 0);
    p->cli_psk_len = n;
    cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
    p->cctx = wolfSSL_CTX_new(dtls ? wolfDTLSv1_2_client_method() : wolfTLSv1_2_client_method());
    cr_assert_not_null(p->cctx);
    cr_assert_eq(wolfSSL_CTX_set_cipher_list(p->cctx, cipher), WOLFSSL_SUCCESS, "cipher %s",
                 cipher);
    wolfSSL_CTX_set_psk_client_callback(p->cctx, cli_psk);
    wolfSSL_CTX_SetIORecv(p->cctx, cli_recv);
    wolfSSL_CTX_SetIOSend(p->cctx, cli_send);
    p->cli = wolfSSL_new(p->cctx);
    cr_assert_not_null(p->cli);
    wolfSSL_SetIOReadCtx(p->cli, p);
    wolfSSL_SetIOWriteCtx(p->cli, p);
    if (dtls)
        wolfSSL_dtls_set_using_nonblock(p->cli, 1);
    if (!dtls) {
        cr_assert_eq(
            pskgw_dtls_session_new(sctx, &res->iface, &srv_cbs, p, NULL, 0, p->now, &p->srv), 0);
    }
}

void tpair_deinit(tpair_t *p)
{
    pskgw_dtls_session_free(p->srv);
    wolfSSL_free(p->cli);
    wolfSSL_CTX_free(p->cctx);
    tq_clear(&p->to_server);
    tq_clear(&p->to_client);
    tq_clear(&p->held);
    wolfSSL_Cleanup();
}

void tpair_pump(tpair_t *p)
{
    static uint8_t buf[TQ_MAX];

    for (int round = 0; round < 50; round++) {
        bool moved = false;

        if (!p->cli_done && p->cli_error == 0) {
            int ret = wolfSSL_connect(p->cli);

            if (ret == WOLFSSL_SUCCESS) {
                p->cli_done = true;
            } else {
                int err = wolfSSL_get_error(p->cli, ret);

                if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE)
                    p->cli_error = err;
            }
        }
        while (p->to_server.count > 0) {
            size_t n = tq_pop(&p->to_server, buf, sizeof(buf));

            moved = true;
            if (p->hold_cke && p->dtls &&
                (p->held.count > 0 ||
                 (n > 25 && buf[0] == 22 && buf[3] == 0 && buf[4] == 0 && buf[13] == 16))) {
                tq_push(&p->held, buf, n);
                continue;
            }
            if (p->srv == NULL && p->dtls) {
                uint8_t hvr[PSKGW_DTLS_HVR_MAX];
                size_t hn = 0;
                int rc = pskgw_dtls_ctx_check_hello(p->sctx, p->now, p->peer, sizeof(p->peer), buf,
                                                    n, hvr, sizeof(hvr), &hn);

                if (rc == 0) {
                    p->hvr_sent++;
                    tq_push(&p->to_client, hvr, hn);
                } else if (rc == 1) {
                    cr_assert_eq(pskgw_dtls_session_new(p->sctx, &p->res->iface, &srv_cbs, p,
                                                        p->peer, sizeof(p->peer), p->now, &p->srv),
                                 0);
                    (void)pskgw_dtls_session_feed(p->srv, buf, n, p->now);
                }
            } else if (p->srv != NULL) {
                (void)pskgw_dtls_session_feed(p->srv, buf, n, p->now);
            }
        }
        if (p->to_client.count > 0)
            moved = true;
        if (!moved && (p->cli_done || p->cli_error != 0))
            break;
        if (!moved && round > 3)
            break;
    }
}

void tpair_client_timeout(tpair_t *p)
{
    (void)wolfSSL_dtls_got_timeout(p->cli);
}

pskgw_dtls_ctx_t *tpair_dtls_ctx_framed(bool dtls, pskgw_framing_t framing)
{
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *c = NULL;
    const char *why = NULL;

    o.dtls = dtls;
    o.framing = framing;
    o.idle_timeout_s = 30;
    cr_assert_eq(pskgw_dtls_ctx_new(&o, &c, &why), 0, "%s", why ? why : "");
    return c;
}

pskgw_dtls_ctx_t *tpair_dtls_ctx(void)
{
    return tpair_dtls_ctx_framed(true, PSKGW_FRAMING_RECORD);
}
