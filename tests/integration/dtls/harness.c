/* Listener test harness: see harness.h. */
#include "harness.h"

#include "common/codec.h"
#include "common/err.h"
#include "dtls/parse.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- resolver ------------------------------------------------------------------------- */

typedef struct hreq hreq_t;
struct hreq {
    uv_timer_t t;
    hres_t *r;
    hreq_t *next_held; /* while r->hold: not started yet */
    char id[300];
    pskgw_psk_done_cb cb;
    void *arg;
};

static void hreq_closed(uv_handle_t *h)
{
    hreq_t *q = h->data;

    q->r->outstanding--;
    free(q);
}

static int find(hres_t *r, const char *id)
{
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->ids[i], id) == 0)
            return i;
    }
    return -1;
}

static void hreq_fire(uv_timer_t *t)
{
    hreq_t *q = t->data;
    hres_t *r = q->r;
    int i = find(r, q->id);
    pskgw_psk_done_cb cb = q->cb;

    q->cb = NULL;
    uv_close((uv_handle_t *)&q->t, hreq_closed);
    if (r->fail_with != 0)
        cb(q->arg, r->fail_with, NULL, 0, NULL);
    else if (i >= 0)
        cb(q->arg, 0, r->psk[i], r->psk_len[i], H_UID);
    else
        cb(q->arg, PSKGW_ENOTFOUND, NULL, 0, NULL);
}

static int hres_resolve(void *ctx, const char *id, pskgw_psk_done_cb cb, void *arg, void **handle)
{
    hres_t *r = ctx;
    hreq_t *q = calloc(1, sizeof(*q));

    cr_assert_not_null(q);
    q->r = r;
    (void)snprintf(q->id, sizeof(q->id), "%s", id);
    q->cb = cb;
    q->arg = arg;
    cr_assert_eq(uv_timer_init(r->loop, &q->t), 0);
    q->t.data = q;
    if (r->hold) {
        q->next_held = r->held;
        r->held = q;
        r->nheld++;
    } else {
        cr_assert_eq(uv_timer_start(&q->t, hreq_fire, r->delay_ms, 0), 0);
    }
    r->resolves++;
    r->outstanding++;
    *handle = q;
    return 0;
}

static void hres_cancel(void *ctx, void *handle)
{
    hres_t *r = ctx;
    hreq_t *q = handle;
    pskgw_psk_done_cb cb = q->cb;

    cr_assert_not_null(cb, "cancel after completion");
    for (hreq_t **pp = &r->held; *pp != NULL; pp = &(*pp)->next_held) {
        if (*pp == q) {
            *pp = q->next_held;
            r->nheld--;
            break;
        }
    }
    r->cancels++;
    q->cb = NULL;
    (void)uv_timer_stop(&q->t);
    uv_close((uv_handle_t *)&q->t, hreq_closed);
    cb(q->arg, PSKGW_ECANCELED, NULL, 0, NULL);
}

static int hres_lookup(void *ctx, const char *id, uint8_t *psk, size_t *psk_len, char *uid,
                       size_t cap)
{
    hres_t *r = ctx;
    int i;

    if (!r->sync_hits || (i = find(r, id)) < 0)
        return PSKGW_ENOTFOUND;
    memcpy(psk, r->psk[i], r->psk_len[i]);
    *psk_len = r->psk_len[i];
    (void)snprintf(uid, cap, "%s", H_UID);
    return 0;
}

void hres_init(hres_t *r, uv_loop_t *loop, uint32_t delay_ms)
{
    memset(r, 0, sizeof(*r));
    r->loop = loop;
    r->delay_ms = delay_ms;
    r->iface.resolve = hres_resolve;
    r->iface.cancel = hres_cancel;
    r->iface.lookup = hres_lookup;
    r->iface.ctx = r;
}

void hres_release(hres_t *r)
{
    hreq_t *q;

    r->hold = false;
    while ((q = r->held) != NULL) {
        r->held = q->next_held;
        r->nheld--;
        cr_assert_eq(uv_timer_start(&q->t, hreq_fire, 0, 0), 0);
    }
}

void hres_add(hres_t *r, const char *id, const char *psk_hex)
{
    size_t n = 0;

    cr_assert_lt(r->n, 256);
    (void)snprintf(r->ids[r->n], sizeof(r->ids[0]), "%s", id);
    cr_assert_eq(pskgw_hex_decode(psk_hex, strlen(psk_hex), r->psk[r->n], 32, &n), 0);
    r->psk_len[r->n] = n;
    r->n++;
}

/* ---- DTLS client ---------------------------------------------------------------------- */

static int cli_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    hcli_t *c = ctx;
    size_t n;

    (void)ssl;
    if (c->rx_count == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    n = c->rx_len[c->rx_head] < (size_t)sz ? c->rx_len[c->rx_head] : (size_t)sz;
    memcpy(buf, c->rx[c->rx_head], n);
    c->rx_head = (c->rx_head + 1) % 8;
    c->rx_count--;
    return (int)n;
}

static int cli_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    hcli_t *c = ctx;
    uv_buf_t b = uv_buf_init(buf, (unsigned)sz);

    (void)ssl;
    c->sends++;
    if ((size_t)sz <= sizeof(c->hello)) {
        pskgw_dtls_client_hello_t ch;
        uint64_t rseq = 0;
        uint16_t mseq = 0;

        if (pskgw_dtls_find_client_hello((const uint8_t *)buf, (size_t)sz, &rseq, &mseq, &ch) ==
                0 &&
            ch.cookie_len > 0) {
            memcpy(c->hello, buf, (size_t)sz);
            c->hello_len = (size_t)sz;
        }
    }
    if (c->max_sends > 0 && c->sends > c->max_sends)
        return sz; /* vanished */
    if ((size_t)sz <= sizeof(c->last)) {
        memcpy(c->last, buf, (size_t)sz);
        c->last_len = (size_t)sz;
    }
    (void)uv_udp_try_send(c->out, &b, 1, (const struct sockaddr *)&c->srv);
    return sz;
}

static unsigned int cli_psk(WOLFSSL *ssl, const char *hint, char *identity, unsigned int id_max,
                            unsigned char *key, unsigned int key_max)
{
    hcli_t *c = wolfSSL_GetIOReadCtx(ssl);

    (void)hint;
    if (strlen(c->identity) >= id_max || c->psk_len > key_max)
        return 0;
    memcpy(identity, c->identity, strlen(c->identity) + 1);
    memcpy(key, c->psk, c->psk_len);
    return (unsigned int)c->psk_len;
}

static void cli_drive(hcli_t *c);

static void on_rtx(uv_timer_t *t)
{
    hcli_t *c = t->data;

    if (c->done || c->error != 0)
        return;
    c->retransmits++;
    if (wolfSSL_dtls_got_timeout(c->ssl) != WOLFSSL_SUCCESS) {
        c->error = -1;
        return;
    }
    cli_drive(c);
}

static void cli_drive(hcli_t *c)
{
    char buf[512];

    if (!c->done && c->error == 0) {
        int ret = wolfSSL_connect(c->ssl);

        if (ret == WOLFSSL_SUCCESS) {
            c->done = true;
            c->done_at = uv_now(c->loop);
            (void)uv_timer_stop(&c->rtx);
            if (c->send_on_done != NULL)
                (void)wolfSSL_write(c->ssl, c->send_on_done, (int)strlen(c->send_on_done));
        } else {
            int err = wolfSSL_get_error(c->ssl, ret);

            if (err == WOLFSSL_ERROR_WANT_READ) {
                int to = wolfSSL_dtls_get_current_timeout(c->ssl);

                (void)uv_timer_start(&c->rtx, on_rtx, (uint64_t)(to > 0 ? to : 1) * 1000, 0);
            } else {
                c->error = err;
            }
            return;
        }
    }
    while (c->done && !c->got_close_notify) {
        int n = wolfSSL_read(c->ssl, buf, sizeof(buf));

        if (n > 0) {
            size_t room = sizeof(c->got) - 1 - c->got_len;
            size_t k = (size_t)n < room ? (size_t)n : room;

            memcpy(c->got + c->got_len, buf, k);
            c->got_len += k;
            c->got[c->got_len] = '\0';
            continue;
        }
        if (wolfSSL_get_error(c->ssl, n) == WOLFSSL_ERROR_ZERO_RETURN)
            c->got_close_notify = true;
        break;
    }
}

static void cli_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    static char buf[4096];

    (void)h;
    (void)s;
    *b = uv_buf_init(buf, sizeof(buf));
}

static void cli_on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *a,
                        unsigned flags)
{
    hcli_t *c = h->data;
    unsigned i;

    (void)a;
    (void)flags;
    if (n <= 0 || c->rx_count == 8 || (size_t)n > sizeof(c->rx[0]))
        return;
    i = (c->rx_head + c->rx_count) % 8;
    memcpy(c->rx[i], buf->base, (size_t)n);
    c->rx_len[i] = (size_t)n;
    c->rx_count++;
    cli_drive(c);
}

static void cli_start(hcli_t *c, uv_loop_t *loop, uint16_t port, uint16_t local_port, bool ipv6,
                      const char *cipher, const char *identity, const char *psk_hex,
                      const char *send_on_done, bool cid)
{
    size_t n = 0;
    struct sockaddr_in6 any;

    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->cid = cid;
    c->out = &c->sock;
    c->send_on_done = send_on_done;
    (void)snprintf(c->identity, sizeof(c->identity), "%s", identity);
    cr_assert_eq(pskgw_hex_decode(psk_hex, strlen(psk_hex), c->psk, sizeof(c->psk), &n), 0);
    c->psk_len = n;
    if (ipv6) {
        cr_assert_eq(uv_ip6_addr("::1", port, &c->srv), 0);
        cr_assert_eq(uv_ip6_addr("::1", 0, &any), 0);
    } else {
        cr_assert_eq(uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)&c->srv), 0);
        cr_assert_eq(uv_ip4_addr("127.0.0.1", local_port, (struct sockaddr_in *)&any), 0);
    }
    cr_assert_eq(uv_udp_init(loop, &c->sock), 0);
    c->sock.data = c;
    cr_assert_eq(uv_udp_bind(&c->sock, (const struct sockaddr *)&any, 0), 0);
    cr_assert_eq(uv_udp_recv_start(&c->sock, cli_alloc, cli_on_recv), 0);
    cr_assert_eq(uv_timer_init(loop, &c->rtx), 0);
    c->rtx.data = c;
    c->ctx = wolfSSL_CTX_new(wolfDTLSv1_2_client_method());
    cr_assert_not_null(c->ctx);
    cr_assert_eq(wolfSSL_CTX_set_cipher_list(c->ctx, cipher), WOLFSSL_SUCCESS);
    wolfSSL_CTX_set_psk_client_callback(c->ctx, cli_psk);
    wolfSSL_CTX_SetIORecv(c->ctx, cli_recv);
    wolfSSL_CTX_SetIOSend(c->ctx, cli_send);
    c->ssl = wolfSSL_new(c->ctx);
    cr_assert_not_null(c->ssl);
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    wolfSSL_dtls_set_using_nonblock(c->ssl, 1);
    if (cid)
        cr_assert_eq(wolfSSL_dtls_cid_use(c->ssl), WOLFSSL_SUCCESS);
    cli_drive(c);
}

void hcli_start(hcli_t *c, uv_loop_t *loop, uint16_t port, bool ipv6, const char *cipher,
                const char *identity, const char *psk_hex, const char *send_on_done)
{
    cli_start(c, loop, port, 0, ipv6, cipher, identity, psk_hex, send_on_done, false);
}

void hcli_start_cid(hcli_t *c, uv_loop_t *loop, uint16_t port, const char *cipher,
                    const char *identity, const char *psk_hex, const char *send_on_done)
{
    cli_start(c, loop, port, 0, false, cipher, identity, psk_hex, send_on_done, true);
}

void hcli_rebind(hcli_t *c)
{
    struct sockaddr_in any;

    cr_assert(!c->alt_open, "one rebind per client");
    cr_assert_eq(uv_ip4_addr("127.0.0.1", 0, &any), 0);
    cr_assert_eq(uv_udp_init(c->loop, &c->alt), 0);
    c->alt.data = c;
    c->alt_open = true;
    cr_assert_eq(uv_udp_bind(&c->alt, (const struct sockaddr *)&any, 0), 0);
    cr_assert_eq(uv_udp_recv_start(&c->alt, cli_alloc, cli_on_recv), 0);
    (void)uv_udp_recv_stop(&c->sock); /* the old NAT mapping is gone */
    c->out = &c->alt;
}

void hcli_start_from(hcli_t *c, uv_loop_t *loop, uint16_t port, uint16_t local_port,
                     const char *cipher, const char *identity, const char *psk_hex,
                     const char *send_on_done)
{
    cli_start(c, loop, port, local_port, false, cipher, identity, psk_hex, send_on_done, false);
}

uint16_t hcli_local_port(hcli_t *c)
{
    struct sockaddr_in6 a;
    int len = sizeof(a);

    cr_assert_eq(uv_udp_getsockname(c->out, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin6_port);
}

static void cli_handle_closed(uv_handle_t *h)
{
    (void)h;
}

void hcli_close(hcli_t *c)
{
    if (c->ssl == NULL)
        return;
    (void)uv_udp_recv_stop(&c->sock);
    uv_close((uv_handle_t *)&c->sock, cli_handle_closed);
    if (c->alt_open) {
        (void)uv_udp_recv_stop(&c->alt);
        uv_close((uv_handle_t *)&c->alt, cli_handle_closed);
        c->alt_open = false;
    }
    uv_close((uv_handle_t *)&c->rtx, cli_handle_closed);
    wolfSSL_free(c->ssl);
    wolfSSL_CTX_free(c->ctx);
    c->ssl = NULL;
    c->ctx = NULL;
}

/* ---- loop helpers --------------------------------------------------------------------- */

static void on_guard(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

bool hrun_until(uv_loop_t *loop, hpred_t pred, void *arg, uint32_t timeout_ms)
{
    uv_timer_t guard;
    bool expired = false;
    bool ok;

    if (timeout_ms < H_GUARD_MS)
        timeout_ms = H_GUARD_MS;
    cr_assert_eq(uv_timer_init(loop, &guard), 0);
    guard.data = &expired;
    cr_assert_eq(uv_timer_start(&guard, on_guard, timeout_ms, 0), 0);
    while (!(ok = pred(arg)) && !expired)
        (void)uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    (void)uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

typedef struct {
    int n;
    char types[512];
} hleft_t;

/* Names each handle still open (not closing) and closes it, so that the loop can be closed and
 * the next test starts clean; the caller then fails the test with the list. */
static void leftover_walk(uv_handle_t *h, void *arg)
{
    hleft_t *left = arg;
    size_t used = strlen(left->types);

    if (uv_is_closing(h))
        return;
    (void)snprintf(left->types + used, sizeof(left->types) - used, "%s%s", left->n > 0 ? ", " : "",
                   uv_handle_type_name(uv_handle_get_type(h)));
    left->n++;
    uv_close(h, NULL);
}

int hloop_finish(uv_loop_t *loop)
{
    hleft_t left = { 0 };

    (void)uv_run(loop, UV_RUN_DEFAULT);
    uv_walk(loop, leftover_walk, &left);
    (void)uv_run(loop, UV_RUN_DEFAULT);
    cr_expect_eq(left.n, 0, "%d handle(s) left open by the test or the code under test: %s", left.n,
                 left.types);
    return uv_loop_close(loop);
}

/* ---- messages ------------------------------------------------------------------------- */

void hmsgs_cb(void *arg, const pskgw_msg_meta_t *meta, const uint8_t *data, size_t len)
{
    hmsgs_t *m = arg;
    int i = m->n;

    if (i >= 300)
        return;
    memcpy(m->data[i], data, len < 127 ? len : 127);
    m->data[i][len < 127 ? len : 127] = '\0';
    m->len[i] = len;
    m->meta[i] = *meta;
    (void)snprintf(m->peer[i], sizeof(m->peer[i]), "%s", meta->peer);
    (void)snprintf(m->identity[i], sizeof(m->identity[i]), "%s", meta->identity);
    (void)snprintf(m->uid[i], sizeof(m->uid[i]), "%s", meta->rot_public_uid);
    m->meta[i].peer = m->peer[i];
    m->meta[i].identity = m->identity[i];
    m->meta[i].rot_public_uid = m->uid[i];
    m->n++;
    if (m->reply)
        m->reply_rc = pskgw_listener_send(m->l, meta->session_id, (const uint8_t *)"ack", 3);
    if (m->close_on_message != NULL) {
        pskgw_listener_close(m->l, m->close_on_message, m->close_arg);
        m->close_on_message = NULL;
        m->send_after_close_rc =
            pskgw_listener_send(m->l, meta->session_id, (const uint8_t *)"late", 4);
    }
}

/* ---- OpenSSL -------------------------------------------------------------------------- */

static void ossl_closed(uv_handle_t *h)
{
    hossl_t *o = h->data;

    o->handles_open--;
}

static void ossl_exit(uv_process_t *p, int64_t status, int sig)
{
    hossl_t *o = p->data;

    (void)status;
    (void)sig;
    o->exited = true;
}

static void ossl_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    hossl_t *o = h->data;

    (void)s;
    *b = uv_buf_init(o->out_buf + o->out_len, (unsigned)(sizeof(o->out_buf) - 1 - o->out_len));
}

static void ossl_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    hossl_t *o = st->data;

    (void)b;
    if (n > 0) {
        o->out_len += (size_t)n;
        o->out_buf[o->out_len] = '\0';
    } else if (n < 0) {
        (void)uv_read_stop(st);
    }
}

static void ossl_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

void hossl_start(hossl_t *o, uv_loop_t *loop, bool dtls, uint16_t port, const char *cipher,
                 const char *identity, const char *psk_hex, const uint8_t *input, size_t len)
{
    char connect[64];
    char *argv[16];
    int a = 0;
    uv_process_options_t po;
    uv_stdio_container_t io[3];
    uv_write_t *w;
    uv_buf_t b;

    memset(o, 0, sizeof(*o));
    (void)snprintf(connect, sizeof(connect), "127.0.0.1:%u", (unsigned)port);
    argv[a++] = "openssl";
    argv[a++] = "s_client";
    argv[a++] = dtls ? "-dtls1_2" : "-tls1_2";
    argv[a++] = "-connect";
    argv[a++] = connect;
    argv[a++] = "-psk_identity";
    argv[a++] = (char *)identity;
    argv[a++] = "-psk";
    argv[a++] = (char *)psk_hex;
    argv[a++] = "-cipher";
    argv[a++] = (char *)cipher;
    argv[a++] = "-quiet";
    argv[a++] = "-nocommands";
    argv[a] = NULL;
    cr_assert_eq(uv_pipe_init(loop, &o->in, 0), 0);
    cr_assert_eq(uv_pipe_init(loop, &o->out, 0), 0);
    o->in.data = o;
    o->out.data = o;
    o->handles_open = 3;
    memset(&po, 0, sizeof(po));
    io[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    io[0].data.stream = (uv_stream_t *)&o->in;
    io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[1].data.stream = (uv_stream_t *)&o->out;
    io[2].flags = UV_IGNORE;
    po.file = "openssl";
    po.args = argv;
    po.stdio = io;
    po.stdio_count = 3;
    po.exit_cb = ossl_exit;
    o->proc.data = o;
    cr_assert_eq(uv_spawn(loop, &o->proc, &po), 0, "openssl s_client spawned");
    cr_assert_eq(uv_read_start((uv_stream_t *)&o->out, ossl_alloc, ossl_read), 0);
    w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    b = uv_buf_init((char *)input, (unsigned)len);
    cr_assert_eq(uv_write(w, (uv_stream_t *)&o->in, &b, 1, ossl_written), 0);
}

static bool ossl_gone(void *arg)
{
    return ((hossl_t *)arg)->exited;
}

void hossl_stop(hossl_t *o)
{
    if (!o->exited)
        (void)uv_process_kill(&o->proc, SIGTERM);
    (void)hrun_until(o->proc.loop, ossl_gone, o, 5000);
    uv_close((uv_handle_t *)&o->in, ossl_closed);
    uv_close((uv_handle_t *)&o->out, ossl_closed);
    uv_close((uv_handle_t *)&o->proc, ossl_closed);
}
