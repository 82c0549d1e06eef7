/* pskgw-devsim: the wolfSSL DTLS 1.2 client path for --cid (see client_wolf.h). */
#include "tools/devsim/client_wolf.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wipe.h"

/* RFC 9146 for DTLS 1.2 came with wolfSSL 5.7.4 (before it, CID meant DTLS 1.3 only). */
#if defined(WOLFSSL_DTLS_CID) && defined(LIBWOLFSSL_VERSION_HEX) && \
    LIBWOLFSSL_VERSION_HEX >= 0x05007004
#define DEVSIM_HAVE_CID12 1
#else
#define DEVSIM_HAVE_CID12 0
#endif

#define READ_CHUNK 16384

struct pskgw_devsim_wctx {
    WOLFSSL_CTX *ctx;
};

struct pskgw_devsim_wclient {
    WOLFSSL *ssl;
    bool established;
    bool alert;
    const uint8_t *in; /* the datagram being fed, handed to wolfSSL once */
    size_t in_len;
    uint8_t *out; /* queued datagrams: [2-byte length][bytes]... */
    size_t out_cap, out_len, out_pos;
    char identity[PSKGW_DEVSIM_MAX_IDENTITY + 1];
    uint8_t psk[PSKGW_DEVSIM_MAX_PSK];
    size_t psk_len;
};

bool pskgw_devsim_wclient_available(void)
{
    return DEVSIM_HAVE_CID12 != 0;
}

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    pskgw_devsim_wclient_t *c = arg;
    (void)ssl;
    if (c->in == NULL)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = c->in_len < (size_t)sz ? c->in_len : (size_t)sz; /* DTLS: one datagram per read */
    memcpy(buf, c->in, n);
    c->in = NULL;
    c->in_len = 0;
    return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    pskgw_devsim_wclient_t *c = arg;
    (void)ssl;
    if (sz <= 0 || sz > 65535)
        return WOLFSSL_CBIO_ERR_GENERAL;
    size_t need = c->out_len + 2 + (size_t)sz;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(c->out, cap);
        if (nb == NULL)
            return WOLFSSL_CBIO_ERR_GENERAL; /* a retransmission will follow */
        c->out = nb;
        c->out_cap = cap;
    }
    c->out[c->out_len] = (uint8_t)(sz >> 8);
    c->out[c->out_len + 1] = (uint8_t)sz;
    memcpy(c->out + c->out_len + 2, buf, (size_t)sz);
    c->out_len = need;
    return sz;
}

static unsigned int psk_cb(WOLFSSL *ssl, const char *hint, char *identity, unsigned int id_max,
                           unsigned char *key, unsigned int key_max)
{
    pskgw_devsim_wclient_t *c = wolfSSL_GetIOReadCtx(ssl);
    size_t il;
    (void)hint;
    if (c == NULL)
        return 0;
    il = strlen(c->identity);
    if (il + 1 > id_max || c->psk_len > key_max)
        return 0;
    memcpy(identity, c->identity, il + 1);
    memcpy(key, c->psk, c->psk_len);
    return (unsigned int)c->psk_len;
}

/* OpenSSL's "CCM8" suite names are "CCM-8" in wolfSSL; the rest are spelled alike. */
static char *wolf_cipher_list(const char *ciphers)
{
    size_t n = strlen(ciphers), o = 0;
    char *l = malloc(2 * n + 1);
    if (l == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(ciphers + i, "CCM8", 4) == 0) {
            memcpy(l + o, "CCM-8", 5);
            o += 5;
            i += 3;
            continue;
        }
        l[o++] = ciphers[i];
    }
    l[o] = '\0';
    return l;
}

int pskgw_devsim_wctx_new(const char *ciphers, pskgw_devsim_wctx_t **out)
{
    pskgw_devsim_wctx_t *w;
    char *list = NULL;
    int rc = PSKGW_ENOMEM;

    if (ciphers == NULL || out == NULL)
        return PSKGW_EINVAL;
    if (!DEVSIM_HAVE_CID12)
        return PSKGW_ECONFIG;
    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        return PSKGW_ETLS;
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        goto fail;
    w->ctx = wolfSSL_CTX_new(wolfDTLSv1_2_client_method());
    list = wolf_cipher_list(ciphers);
    if (w->ctx == NULL || list == NULL)
        goto fail;
    rc = PSKGW_ECONFIG;
    if (wolfSSL_CTX_set_cipher_list(w->ctx, list) != WOLFSSL_SUCCESS)
        goto fail;
    wolfSSL_CTX_set_verify(w->ctx, WOLFSSL_VERIFY_NONE, NULL);
    wolfSSL_CTX_set_psk_client_callback(w->ctx, psk_cb);
    wolfSSL_CTX_SetIORecv(w->ctx, io_recv);
    wolfSSL_CTX_SetIOSend(w->ctx, io_send);
    free(list);
    *out = w;
    return 0;
fail:
    free(list);
    pskgw_devsim_wctx_free(w);
    if (w == NULL)
        (void)wolfSSL_Cleanup();
    return rc;
}

void pskgw_devsim_wctx_free(pskgw_devsim_wctx_t *w)
{
    if (w == NULL)
        return;
    wolfSSL_CTX_free(w->ctx);
    free(w);
    (void)wolfSSL_Cleanup();
}

int pskgw_devsim_wclient_new(pskgw_devsim_wctx_t *ctx, const uint8_t *identity, size_t identity_len,
                             const uint8_t *psk, size_t psk_len, size_t mtu,
                             pskgw_devsim_wclient_t **out)
{
    pskgw_devsim_wclient_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PSKGW_ENOMEM;
    memcpy(c->identity, identity, identity_len);
    memcpy(c->psk, psk, psk_len);
    c->psk_len = psk_len;
    c->ssl = wolfSSL_new(ctx->ctx);
    if (c->ssl == NULL)
        goto fail;
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    wolfSSL_dtls_set_using_nonblock(c->ssl, 1);
    if (wolfSSL_dtls_set_mtu(c->ssl, (unsigned short)mtu) != WOLFSSL_SUCCESS)
        goto fail;
#if DEVSIM_HAVE_CID12
    /* Ask for a CID; the client's own is empty (it is the server that needs one to find us). */
    if (wolfSSL_dtls_cid_use(c->ssl) != WOLFSSL_SUCCESS)
        goto fail;
#endif
    *out = c;
    return 0;
fail:
    pskgw_devsim_wclient_free(c);
    return PSKGW_ETLS;
}

void pskgw_devsim_wclient_free(pskgw_devsim_wclient_t *c)
{
    if (c == NULL)
        return;
    wolfSSL_free(c->ssl);
    free(c->out);
    pskgw_wipe(c->psk, sizeof(c->psk));
    free(c);
}

static bool peer_alerted(pskgw_devsim_wclient_t *c)
{
    WOLFSSL_ALERT_HISTORY h;
    if (!c->alert && wolfSSL_get_alert_history(c->ssl, &h) == WOLFSSL_SUCCESS &&
        h.last_rx.level == alert_fatal)
        c->alert = true;
    return c->alert;
}

static int drive(pskgw_devsim_wclient_t *c, pskgw_devsim_hs_state_t *state)
{
    if (!c->established) {
        int ret = wolfSSL_connect(c->ssl);
        if (ret == WOLFSSL_SUCCESS) {
            c->established = true;
        } else {
            int e = wolfSSL_get_error(c->ssl, ret);
            if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE)
                return peer_alerted(c) ? PSKGW_EAUTH : PSKGW_ETLS;
        }
    }
    if (state != NULL)
        *state = c->established ? PSKGW_DEVSIM_HS_DONE : PSKGW_DEVSIM_HS_PENDING;
    return 0;
}

int pskgw_devsim_wclient_start(pskgw_devsim_wclient_t *c, pskgw_devsim_hs_state_t *state)
{
    return drive(c, state);
}

int pskgw_devsim_wclient_feed(pskgw_devsim_wclient_t *c, const uint8_t *data, size_t len,
                              pskgw_devsim_hs_state_t *state, unsigned *records)
{
    unsigned got = 0;
    int rc;

    c->in = len > 0 ? data : NULL;
    c->in_len = len;
    rc = drive(c, state);
    if (rc == 0 && c->established) {
        uint8_t buf[READ_CHUNK];
        for (;;) {
            int n = wolfSSL_read(c->ssl, buf, (int)sizeof(buf));
            if (n > 0) {
                got++;
                continue;
            }
            int e = wolfSSL_get_error(c->ssl, n);
            if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
                break;
            rc = e == WOLFSSL_ERROR_ZERO_RETURN || peer_alerted(c) ? PSKGW_ECLOSED : PSKGW_ETLS;
            break;
        }
    }
    c->in = NULL; /* never kept past the call */
    c->in_len = 0;
    if (records != NULL)
        *records = got;
    return rc;
}

int pskgw_devsim_wclient_write(pskgw_devsim_wclient_t *c, const uint8_t *msg, size_t len)
{
    if (!c->established || len == 0 || len > READ_CHUNK)
        return PSKGW_EINVAL;
    return wolfSSL_write(c->ssl, msg, (int)len) == (int)len ? 0 : PSKGW_ETLS;
}

void pskgw_devsim_wclient_close_notify(pskgw_devsim_wclient_t *c)
{
    if (c->established)
        (void)wolfSSL_shutdown(c->ssl);
}

bool pskgw_devsim_wclient_next_out(pskgw_devsim_wclient_t *c, const uint8_t **data, size_t *len)
{
    if (c->out_pos >= c->out_len) {
        c->out_pos = c->out_len = 0; /* everything handed out: start over */
        return false;
    }
    size_t n = ((size_t)c->out[c->out_pos] << 8) | c->out[c->out_pos + 1];
    *data = c->out + c->out_pos + 2;
    *len = n;
    c->out_pos += 2 + n;
    return true;
}

int64_t pskgw_devsim_wclient_timeout_ms(pskgw_devsim_wclient_t *c)
{
    /* wolfSSL keeps its retransmission timer in whole seconds and only while handshaking. */
    if (c->established)
        return -1;
    int s = wolfSSL_dtls_get_current_timeout(c->ssl);
    return s > 0 ? (int64_t)s * 1000 : -1;
}

int pskgw_devsim_wclient_on_timeout(pskgw_devsim_wclient_t *c)
{
    if (c->established)
        return 0;
    return wolfSSL_dtls_got_timeout(c->ssl) == WOLFSSL_SUCCESS ? 0 : PSKGW_ETIMEOUT;
}

const char *pskgw_devsim_wclient_peer_alert(const pskgw_devsim_wclient_t *c)
{
    return c->alert ? "fatal alert from the peer" : NULL;
}

const char *pskgw_devsim_wclient_cipher(const pskgw_devsim_wclient_t *c)
{
    return c->established ? wolfSSL_get_cipher_name(c->ssl) : NULL;
}

bool pskgw_devsim_wclient_cid_in_use(pskgw_devsim_wclient_t *c)
{
#if DEVSIM_HAVE_CID12
    unsigned int sz = 0;
    return c->established && wolfSSL_dtls_cid_is_enabled(c->ssl) &&
           wolfSSL_dtls_cid_get_tx_size(c->ssl, &sz) == WOLFSSL_SUCCESS && sz > 0;
#else
    (void)c;
    return false;
#endif
}
