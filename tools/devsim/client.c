/* pskgw-devsim: PSK (D)TLS client over memory BIOs (see client.h). */
#include "tools/devsim/client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/time.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wipe.h"
#include "tools/devsim/client_wolf.h"

#define DTLS_RECORD_HEADER 13
#define READ_CHUNK         16384

struct pskgw_devsim_client_ctx {
    SSL_CTX *ssl_ctx;
    pskgw_devsim_transport_t transport;
    pskgw_devsim_wctx_t *wolf; /* --cid: the wolfSSL path (client_wolf.h), ssl_ctx NULL */
};

struct pskgw_devsim_client {
    pskgw_devsim_client_ctx_t *ctx;
    pskgw_devsim_wclient_t *wolf; /* --cid: every call goes there */
    SSL *ssl;
    BIO *rbio; /* network -> OpenSSL; owned by ssl */
    BIO *wbio; /* OpenSSL -> network; owned by ssl */
    size_t mtu;
    bool established;
    const char *peer_alert;
    uint8_t identity[PSKGW_DEVSIM_MAX_IDENTITY + 1];
    size_t identity_len;
    uint8_t psk[PSKGW_DEVSIM_MAX_PSK];
    size_t psk_len;
    uint8_t *obuf; /* output pulled from wbio, handed out in datagrams */
    size_t ocap, olen, opos;
    pskgw_devsim_client_data_cb on_data; /* application data read, or NULL */
    void *data_arg;
};

void pskgw_devsim_client_on_data(pskgw_devsim_client_t *c, pskgw_devsim_client_data_cb cb,
                                 void *arg)
{
    c->on_data = cb;
    c->data_arg = arg;
}

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity,
                                  unsigned int max_identity_len, unsigned char *psk,
                                  unsigned int max_psk_len)
{
    (void)hint;
    pskgw_devsim_client_t *c = SSL_get_app_data(ssl);
    if (c == NULL || c->identity_len > max_identity_len || c->psk_len > max_psk_len)
        return 0;
    /* OpenSSL takes the identity as a C string: it was checked to hold no NUL byte. */
    memcpy(identity, c->identity, c->identity_len);
    identity[c->identity_len] = '\0';
    memcpy(psk, c->psk, c->psk_len);
    return (unsigned int)c->psk_len;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
    if (!(where & SSL_CB_READ_ALERT))
        return;
    pskgw_devsim_client_t *c = SSL_get_app_data(ssl);
    if (c != NULL && (ret >> 8) == SSL3_AL_FATAL)
        c->peer_alert = SSL_alert_desc_string_long(ret);
}

int pskgw_devsim_client_ctx_new(pskgw_devsim_transport_t transport, const char *ciphers,
                                pskgw_devsim_client_ctx_t **out)
{
    if (ciphers == NULL || out == NULL || ciphers[0] == '\0')
        return PSKGW_EINVAL;
    int rc = PSKGW_ENOMEM;
    char *list = NULL;
    pskgw_devsim_client_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        goto fail;
    ctx->transport = transport;
    ctx->ssl_ctx =
        SSL_CTX_new(transport == PSKGW_DEVSIM_DTLS ? DTLS_client_method() : TLS_client_method());
    if (ctx->ssl_ctx == NULL)
        goto fail;
    int v = transport == PSKGW_DEVSIM_DTLS ? DTLS1_2_VERSION : TLS1_2_VERSION;
    rc = PSKGW_ECONFIG;
    if (SSL_CTX_set_min_proto_version(ctx->ssl_ctx, v) != 1 ||
        SSL_CTX_set_max_proto_version(ctx->ssl_ctx, v) != 1)
        goto fail;
    /* PSK suites only; SECLEVEL 0 so that CCM8 (64-bit tags) and SHA-1 MAC suites stay usable on
     * builds whose default security level would filter them. */
    size_t n = strlen(ciphers) + sizeof(":@SECLEVEL=0");
    list = malloc(n);
    if (list == NULL) {
        rc = PSKGW_ENOMEM;
        goto fail;
    }
    memcpy(list, ciphers, strlen(ciphers));
    memcpy(list + strlen(ciphers), ":@SECLEVEL=0", sizeof(":@SECLEVEL=0"));
    if (SSL_CTX_set_cipher_list(ctx->ssl_ctx, list) != 1)
        goto fail;
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx->ssl_ctx);
    bool any_psk = false;
    for (int i = 0; sk != NULL && i < sk_SSL_CIPHER_num(sk); i++) {
        const SSL_CIPHER *ci = sk_SSL_CIPHER_value(sk, i);
        if (SSL_CIPHER_get_kx_nid(ci) == NID_kx_psk ||
            SSL_CIPHER_get_kx_nid(ci) == NID_kx_ecdhe_psk)
            any_psk = true;
    }
    if (!any_psk)
        goto fail;
    SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_TICKET);
    /* Idle sessions give their record buffers back: a fleet holds many of them. */
    SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    free(list);
    ERR_clear_error();
    *out = ctx;
    return 0;
fail:
    free(list);
    ERR_clear_error();
    pskgw_devsim_client_ctx_free(ctx);
    return rc;
}

int pskgw_devsim_client_ctx_new_cid(const char *ciphers, pskgw_devsim_client_ctx_t **out)
{
    if (ciphers == NULL || out == NULL || ciphers[0] == '\0')
        return PSKGW_EINVAL;
    pskgw_devsim_client_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return PSKGW_ENOMEM;
    ctx->transport = PSKGW_DEVSIM_DTLS;
    int rc = pskgw_devsim_wctx_new(ciphers, &ctx->wolf);
    if (rc < 0) {
        free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

bool pskgw_devsim_client_cid_available(void)
{
    return pskgw_devsim_wclient_available();
}

bool pskgw_devsim_client_cid_in_use(pskgw_devsim_client_t *c)
{
    return c != NULL && c->wolf != NULL && pskgw_devsim_wclient_cid_in_use(c->wolf);
}

void pskgw_devsim_client_ctx_free(pskgw_devsim_client_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    pskgw_devsim_wctx_free(ctx->wolf);
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

int pskgw_devsim_client_new(pskgw_devsim_client_ctx_t *ctx, const uint8_t *identity,
                            size_t identity_len, const uint8_t *psk, size_t psk_len, size_t mtu,
                            pskgw_devsim_client_t **out)
{
    if (ctx == NULL || identity == NULL || psk == NULL || out == NULL || identity_len == 0 ||
        identity_len > PSKGW_DEVSIM_MAX_IDENTITY || psk_len == 0 ||
        psk_len > PSKGW_DEVSIM_MAX_PSK || memchr(identity, 0, identity_len) != NULL || mtu < 256 ||
        mtu > 65507)
        return PSKGW_EINVAL;
    pskgw_devsim_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PSKGW_ENOMEM;
    int rc = PSKGW_ETLS;
    c->ctx = ctx;
    c->mtu = mtu;
    memcpy(c->identity, identity, identity_len);
    c->identity_len = identity_len;
    memcpy(c->psk, psk, psk_len);
    c->psk_len = psk_len;
    if (ctx->wolf != NULL) {
        rc = pskgw_devsim_wclient_new(ctx->wolf, identity, identity_len, psk, psk_len, mtu,
                                      &c->wolf);
        if (rc < 0)
            goto fail;
        *out = c;
        return 0;
    }
    c->ssl = SSL_new(ctx->ssl_ctx);
    if (c->ssl == NULL)
        goto fail;
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        c->rbio = c->wbio = NULL;
        goto fail;
    }
    /* An empty read BIO means "no datagram yet", not end of file. */
    BIO_set_mem_eof_return(c->rbio, -1);
    BIO_set_mem_eof_return(c->wbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio); /* ssl owns both from here */
    SSL_set_app_data(c->ssl, c);
    SSL_set_psk_client_callback(c->ssl, psk_client_cb);
    SSL_set_info_callback(c->ssl, info_cb);
    if (ctx->transport == PSKGW_DEVSIM_DTLS) {
        /* A memory BIO cannot be asked for the path MTU: give it. */
        SSL_set_options(c->ssl, SSL_OP_NO_QUERY_MTU);
        if (SSL_set_mtu(c->ssl, (long)mtu) <= 0)
            goto fail;
    }
    SSL_set_connect_state(c->ssl);
    ERR_clear_error();
    *out = c;
    return 0;
fail:
    ERR_clear_error();
    pskgw_devsim_client_free(c);
    return rc;
}

void pskgw_devsim_client_free(pskgw_devsim_client_t *c)
{
    if (c == NULL)
        return;
    pskgw_devsim_wclient_free(c->wolf);
    SSL_free(c->ssl);
    free(c->obuf);
    pskgw_wipe(c->psk, sizeof(c->psk));
    free(c);
    ERR_clear_error();
}

static int handshake_error(pskgw_devsim_client_t *c, int ret)
{
    int e = SSL_get_error(c->ssl, ret);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    return c->peer_alert != NULL ? PSKGW_EAUTH : PSKGW_ETLS;
}

static int drive(pskgw_devsim_client_t *c, pskgw_devsim_hs_state_t *state)
{
    if (!c->established) {
        ERR_clear_error();
        int ret = SSL_do_handshake(c->ssl);
        if (ret == 1) {
            c->established = true;
        } else {
            int rc = handshake_error(c, ret);
            if (rc < 0)
                return rc;
        }
    }
    if (state != NULL)
        *state = c->established ? PSKGW_DEVSIM_HS_DONE : PSKGW_DEVSIM_HS_PENDING;
    return 0;
}

int pskgw_devsim_client_start(pskgw_devsim_client_t *c, pskgw_devsim_hs_state_t *state)
{
    if (c == NULL)
        return PSKGW_EINVAL;
    if (c->wolf != NULL)
        return pskgw_devsim_wclient_start(c->wolf, state);
    return drive(c, state);
}

int pskgw_devsim_client_feed(pskgw_devsim_client_t *c, const uint8_t *data, size_t len,
                             pskgw_devsim_hs_state_t *state, unsigned *records)
{
    if (c == NULL || (data == NULL && len > 0) || len > INT32_MAX)
        return PSKGW_EINVAL;
    if (c->wolf != NULL)
        return pskgw_devsim_wclient_feed(c->wolf, data, len, state, records);
    unsigned got = 0;
    if (len > 0 && BIO_write(c->rbio, data, (int)len) != (int)len) {
        ERR_clear_error();
        return PSKGW_ENOMEM;
    }
    int rc = drive(c, state);
    if (rc < 0)
        return rc;
    if (c->established) {
        uint8_t buf[READ_CHUNK];
        for (;;) {
            ERR_clear_error();
            int n = SSL_read(c->ssl, buf, (int)sizeof(buf));
            if (n > 0) {
                got++;
                if (c->on_data != NULL)
                    c->on_data(c->data_arg, buf, (size_t)n);
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break;
            if (e == SSL_ERROR_ZERO_RETURN || c->peer_alert != NULL)
                rc = PSKGW_ECLOSED;
            else
                rc = PSKGW_ETLS;
            break;
        }
    }
    if (records != NULL)
        *records = got;
    return rc;
}

int pskgw_devsim_client_write(pskgw_devsim_client_t *c, const uint8_t *msg, size_t len)
{
    if (c != NULL && msg != NULL && c->wolf != NULL)
        return pskgw_devsim_wclient_write(c->wolf, msg, len);
    if (c == NULL || msg == NULL || !c->established || len == 0 || len > READ_CHUNK)
        return PSKGW_EINVAL;
    ERR_clear_error();
    int n = SSL_write(c->ssl, msg, (int)len);
    ERR_clear_error();
    return n == (int)len ? 0 : PSKGW_ETLS;
}

void pskgw_devsim_client_close_notify(pskgw_devsim_client_t *c)
{
    if (c != NULL && c->wolf != NULL) {
        pskgw_devsim_wclient_close_notify(c->wolf);
        return;
    }
    if (c == NULL || !c->established)
        return;
    ERR_clear_error();
    (void)SSL_shutdown(c->ssl);
    ERR_clear_error();
}

static bool pull_output(pskgw_devsim_client_t *c)
{
    size_t pending = BIO_ctrl_pending(c->wbio);
    if (pending == 0)
        return false;
    if (pending > c->ocap) {
        uint8_t *nb = realloc(c->obuf, pending);
        if (nb == NULL)
            return false; /* the bytes stay in the BIO; a retransmission will follow */
        c->obuf = nb;
        c->ocap = pending;
    }
    int n = BIO_read(c->wbio, c->obuf, (int)pending);
    ERR_clear_error();
    if (n <= 0)
        return false;
    c->olen = (size_t)n;
    c->opos = 0;
    return true;
}

bool pskgw_devsim_client_next_out(pskgw_devsim_client_t *c, const uint8_t **data, size_t *len)
{
    if (c == NULL || data == NULL || len == NULL)
        return false;
    if (c->wolf != NULL)
        return pskgw_devsim_wclient_next_out(c->wolf, data, len);
    if (c->opos >= c->olen && !pull_output(c))
        return false;
    size_t start = c->opos;
    if (c->ctx->transport == PSKGW_DEVSIM_TLS) {
        c->opos = c->olen;
    } else {
        /* Whole records, as many as fit in one datagram (at least one). */
        size_t end = start;
        while (end + DTLS_RECORD_HEADER <= c->olen) {
            size_t rlen =
                DTLS_RECORD_HEADER + (((size_t)c->obuf[end + 11] << 8) | (size_t)c->obuf[end + 12]);
            if (end + rlen > c->olen)
                rlen = c->olen - end; /* cannot happen with OpenSSL's output; keep the bytes */
            if (end > start && end + rlen - start > c->mtu)
                break;
            end += rlen;
        }
        if (end == start)
            end = c->olen;
        c->opos = end;
    }
    *data = c->obuf + start;
    *len = c->opos - start;
    return true;
}

int64_t pskgw_devsim_client_timeout_ms(pskgw_devsim_client_t *c)
{
    if (c == NULL || c->ctx->transport != PSKGW_DEVSIM_DTLS)
        return -1;
    if (c->wolf != NULL)
        return pskgw_devsim_wclient_timeout_ms(c->wolf);
    struct timeval tv;
    if (DTLSv1_get_timeout(c->ssl, &tv) != 1)
        return -1;
    return (int64_t)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
}

int pskgw_devsim_client_on_timeout(pskgw_devsim_client_t *c)
{
    if (c == NULL)
        return PSKGW_EINVAL;
    if (c->wolf != NULL)
        return pskgw_devsim_wclient_on_timeout(c->wolf);
    ERR_clear_error();
    int r = DTLSv1_handle_timeout(c->ssl);
    ERR_clear_error();
    return r < 0 ? PSKGW_ETIMEOUT : 0;
}

const char *pskgw_devsim_client_peer_alert(const pskgw_devsim_client_t *c)
{
    if (c != NULL && c->wolf != NULL)
        return pskgw_devsim_wclient_peer_alert(c->wolf);
    return c != NULL ? c->peer_alert : NULL;
}

const char *pskgw_devsim_client_cipher(const pskgw_devsim_client_t *c)
{
    if (c != NULL && c->wolf != NULL)
        return pskgw_devsim_wclient_cipher(c->wolf);
    if (c == NULL || !c->established)
        return NULL;
    return SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl));
}

void *pskgw_devsim_client_get1_session(pskgw_devsim_client_t *c)
{
    return c != NULL && c->ssl != NULL ? SSL_get1_session(c->ssl) : NULL;
}

int pskgw_devsim_client_set_session(pskgw_devsim_client_t *c, void *session, bool tickets)
{
    if (c == NULL || c->ssl == NULL)
        return 0;
    if (tickets)
        SSL_clear_options(c->ssl, SSL_OP_NO_TICKET); /* ask for one (the context refuses them) */
    if (session == NULL)
        return 0;
    return SSL_set_session(c->ssl, session) == 1 ? 0 : PSKGW_ETLS;
}

bool pskgw_devsim_client_reused(const pskgw_devsim_client_t *c)
{
    return c != NULL && c->ssl != NULL && SSL_session_reused(c->ssl) == 1;
}

void pskgw_devsim_client_session_free(void *session)
{
    SSL_SESSION_free(session);
}
