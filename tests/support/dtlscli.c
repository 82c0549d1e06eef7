/* A DTLS client of the listener tests: see dtlscli.h. */
#include "dtlscli.h"

#include "common/codec.h"
#include "dtls/parse.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static int cli_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    dcli_t *c = ctx;
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
    dcli_t *c = ctx;
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
    dcli_t *c = wolfSSL_GetIOReadCtx(ssl);

    (void)hint;
    if (strlen(c->identity) >= id_max || c->psk_len > key_max)
        return 0;
    memcpy(identity, c->identity, strlen(c->identity) + 1);
    memcpy(key, c->psk, c->psk_len);
    return (unsigned int)c->psk_len;
}

static void cli_drive(dcli_t *c);

static void on_rtx(uv_timer_t *t)
{
    dcli_t *c = t->data;

    if (c->done || c->error != 0)
        return;
    c->retransmits++;
    if (wolfSSL_dtls_got_timeout(c->ssl) != WOLFSSL_SUCCESS) {
        c->error = -1;
        return;
    }
    cli_drive(c);
}

static void cli_drive(dcli_t *c)
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
    dcli_t *c = h->data;
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

static size_t addr_len(const struct sockaddr *a)
{
    return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void cli_start(dcli_t *c, uv_loop_t *loop, const struct sockaddr *local,
                      const struct sockaddr *srv, const char *cipher, const char *identity,
                      const char *psk_hex, const char *send_on_done, bool cid)
{
    size_t n = 0;

    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->cid = cid;
    c->out = &c->sock;
    c->send_on_done = send_on_done;
    (void)snprintf(c->identity, sizeof(c->identity), "%s", identity);
    cr_assert_eq(pskgw_hex_decode(psk_hex, strlen(psk_hex), c->psk, sizeof(c->psk), &n), 0);
    c->psk_len = n;
    memcpy(&c->srv, srv, addr_len(srv));
    cr_assert_eq(uv_udp_init(loop, &c->sock), 0);
    c->sock.data = c;
    cr_assert_eq(uv_udp_bind(&c->sock, local, 0), 0, "bind the client's local address");
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

void dcli_start(dcli_t *c, uv_loop_t *loop, const struct sockaddr *local,
                const struct sockaddr *srv, const char *cipher, const char *identity,
                const char *psk_hex, const char *send_on_done)
{
    cli_start(c, loop, local, srv, cipher, identity, psk_hex, send_on_done, false);
}

void dcli_start_cid(dcli_t *c, uv_loop_t *loop, const struct sockaddr *local,
                    const struct sockaddr *srv, const char *cipher, const char *identity,
                    const char *psk_hex, const char *send_on_done)
{
    cli_start(c, loop, local, srv, cipher, identity, psk_hex, send_on_done, true);
}

void dcli_rebind(dcli_t *c)
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

uint16_t dcli_local_port(dcli_t *c)
{
    struct sockaddr_storage a;
    int len = sizeof(a);

    cr_assert_eq(uv_udp_getsockname(c->out, (struct sockaddr *)&a, &len), 0);
    return a.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&a)->sin6_port)
                                   : ntohs(((struct sockaddr_in *)&a)->sin_port);
}

void dcli_send_raw(dcli_t *c, const uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);

    cr_assert_eq(uv_udp_try_send(c->out, &b, 1, (const struct sockaddr *)&c->srv), (int)len);
}

int dcli_write(dcli_t *c, const char *msg)
{
    return wolfSSL_write(c->ssl, msg, (int)strlen(msg));
}

void dcli_close(dcli_t *c)
{
    if (c->ssl == NULL)
        return;
    (void)uv_udp_recv_stop(&c->sock);
    uv_close((uv_handle_t *)&c->sock, NULL);
    if (c->alt_open) {
        (void)uv_udp_recv_stop(&c->alt);
        uv_close((uv_handle_t *)&c->alt, NULL);
        c->alt_open = false;
    }
    uv_close((uv_handle_t *)&c->rtx, NULL);
    wolfSSL_free(c->ssl);
    wolfSSL_CTX_free(c->ctx);
    c->ssl = NULL;
    c->ctx = NULL;
}
