/* A DTLS client from a chosen source address: see srcpeer.h. */
#include "srcpeer.h"

#include "common/codec.h"
#include "dtls/parse.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static int sp_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    speer_t *c = ctx;
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

static int sp_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    speer_t *c = ctx;
    uv_buf_t b = uv_buf_init(buf, (unsigned)sz);
    pskgw_dtls_client_hello_t ch;
    uint64_t rseq = 0;
    uint16_t mseq = 0;

    (void)ssl;
    c->sends++;
    if ((size_t)sz <= sizeof(c->hello) &&
        pskgw_dtls_find_client_hello((const uint8_t *)buf, (size_t)sz, &rseq, &mseq, &ch) == 0 &&
        ch.cookie_len > 0) {
        memcpy(c->hello, buf, (size_t)sz);
        c->hello_len = (size_t)sz;
    }
    if (c->max_sends > 0 && c->sends > c->max_sends)
        return sz; /* vanished */
    (void)uv_udp_try_send(&c->sock, &b, 1, (const struct sockaddr *)&c->srv);
    return sz;
}

static unsigned int sp_psk(WOLFSSL *ssl, const char *hint, char *identity, unsigned int id_max,
                           unsigned char *key, unsigned int key_max)
{
    speer_t *c = wolfSSL_GetIOReadCtx(ssl);

    (void)hint;
    if (strlen(c->identity) >= id_max || c->psk_len > key_max)
        return 0;
    memcpy(identity, c->identity, strlen(c->identity) + 1);
    memcpy(key, c->psk, c->psk_len);
    return (unsigned int)c->psk_len;
}

static void sp_drive(speer_t *c);

static void sp_on_rtx(uv_timer_t *t)
{
    speer_t *c = t->data;

    if (c->done || c->error != 0)
        return;
    if (wolfSSL_dtls_got_timeout(c->ssl) != WOLFSSL_SUCCESS) {
        c->error = -1;
        return;
    }
    sp_drive(c);
}

static void sp_drive(speer_t *c)
{
    char buf[256];
    int ret;

    if (c->done) {
        while (wolfSSL_read(c->ssl, buf, sizeof(buf)) > 0) {
        }
        return;
    }
    if (c->error != 0)
        return;
    ret = wolfSSL_connect(c->ssl);
    if (ret == WOLFSSL_SUCCESS) {
        c->done = true;
        (void)uv_timer_stop(&c->rtx);
        if (c->send_on_done != NULL)
            (void)speer_write(c, c->send_on_done);
        return;
    }
    if (wolfSSL_get_error(c->ssl, ret) == WOLFSSL_ERROR_WANT_READ) {
        int to = wolfSSL_dtls_get_current_timeout(c->ssl);

        (void)uv_timer_start(&c->rtx, sp_on_rtx, (uint64_t)(to > 0 ? to : 1) * 1000, 0);
    } else {
        c->error = wolfSSL_get_error(c->ssl, ret);
    }
}

static void sp_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    static char buf[4096];

    (void)h;
    (void)s;
    *b = uv_buf_init(buf, sizeof(buf));
}

static void sp_on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *a,
                       unsigned flags)
{
    speer_t *c = h->data;
    unsigned i;

    (void)a;
    (void)flags;
    if (n <= 0 || c->rx_count == 8 || (size_t)n > sizeof(c->rx[0]))
        return;
    i = (c->rx_head + c->rx_count) % 8;
    memcpy(c->rx[i], buf->base, (size_t)n);
    c->rx_len[i] = (size_t)n;
    c->rx_count++;
    sp_drive(c);
}

void speer_start(speer_t *c, uv_loop_t *loop, const char *src_ip, uint16_t src_port, uint16_t port,
                 const char *identity, const char *psk_hex, const char *send_on_done)
{
    struct sockaddr_in src;
    size_t n = 0;

    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->send_on_done = send_on_done;
    (void)snprintf(c->identity, sizeof(c->identity), "%s", identity);
    cr_assert_eq(pskgw_hex_decode(psk_hex, strlen(psk_hex), c->psk, sizeof(c->psk), &n), 0);
    c->psk_len = n;
    cr_assert_eq(uv_ip4_addr("127.0.0.1", port, &c->srv), 0);
    cr_assert_eq(uv_ip4_addr(src_ip, src_port, &src), 0);
    cr_assert_eq(uv_udp_init(loop, &c->sock), 0);
    c->sock.data = c;
    cr_assert_eq(uv_udp_bind(&c->sock, (const struct sockaddr *)&src, 0), 0, "bind %s", src_ip);
    cr_assert_eq(uv_udp_recv_start(&c->sock, sp_alloc, sp_on_recv), 0);
    cr_assert_eq(uv_timer_init(loop, &c->rtx), 0);
    c->rtx.data = c;
    c->open = true;
    c->ctx = wolfSSL_CTX_new(wolfDTLSv1_2_client_method());
    cr_assert_not_null(c->ctx);
    cr_assert_eq(wolfSSL_CTX_set_cipher_list(c->ctx, "PSK-AES128-CCM8"), WOLFSSL_SUCCESS);
    wolfSSL_CTX_set_psk_client_callback(c->ctx, sp_psk);
    wolfSSL_CTX_SetIORecv(c->ctx, sp_recv);
    wolfSSL_CTX_SetIOSend(c->ctx, sp_send);
    c->ssl = wolfSSL_new(c->ctx);
    cr_assert_not_null(c->ssl);
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    wolfSSL_dtls_set_using_nonblock(c->ssl, 1);
    sp_drive(c);
}

uint16_t speer_local_port(speer_t *c)
{
    struct sockaddr_in a;
    int len = sizeof(a);

    cr_assert_eq(uv_udp_getsockname(&c->sock, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

void speer_send_raw(speer_t *c, const uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);

    cr_assert_eq(uv_udp_try_send(&c->sock, &b, 1, (const struct sockaddr *)&c->srv), (int)len);
}

int speer_write(speer_t *c, const char *msg)
{
    return wolfSSL_write(c->ssl, msg, (int)strlen(msg));
}

void speer_close(speer_t *c)
{
    if (!c->open)
        return;
    c->open = false;
    (void)uv_udp_recv_stop(&c->sock);
    uv_close((uv_handle_t *)&c->sock, NULL);
    uv_close((uv_handle_t *)&c->rtx, NULL);
    wolfSSL_free(c->ssl);
    wolfSSL_CTX_free(c->ctx);
    c->ssl = NULL;
    c->ctx = NULL;
}
