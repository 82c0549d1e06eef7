/* The callbacks wolfSSL calls for a session: its I/O (the bytes offered by the session's entry
 * points in, the owner's send callback out) and the PSK lookup that hands wolfSSL the key the
 * session resolved. No sockets: the session's owner does the I/O. */
#include "dtls/internal.h"

#include <wolfssl/error-ssl.h>

#include <string.h>

int pskgw_dtls_io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    pskgw_dtls_session_t *s = ctx;
    size_t n;

    if (s->in_len == 0 || sz <= 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    n = s->in_len < (size_t)sz ? s->in_len : (size_t)sz;
    memcpy(buf, s->in, n);
    if (s->dtls) {
        s->in_len = 0; /* one datagram per read; a truncated rest is dropped */
        /* Nothing more until the next datagram (process_dtls enables reads again): wolfSSL
         * grows its 5-byte input buffer to MTU + 500 bytes before it calls this callback, and
         * a read that finds nothing would leave it grown (1.9 KB held by every session waiting
         * for its peer, half-open or established). Disabled, it answers WANT_READ first. */
        wolfSSL_SSLDisableRead(ssl);
    } else {
        s->in += n;
        s->in_len -= n;
    }
    return (int)n;
}

int pskgw_dtls_io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    pskgw_dtls_session_t *s = ctx;

    (void)ssl;
    if (s->closed && !s->dtls)
        return WOLFSSL_CBIO_ERR_CONN_CLOSE;
    if (!s->established)
        s->server_flight_sent = true;
    s->sent = true;
    if (s->cbs->send(s->arg, (const uint8_t *)buf, (size_t)sz) < 0) {
        if (s->dtls) {
            s->dgram_dropped = true;
            return sz; /* a lost datagram: wolfSSL retransmits handshake flights */
        }
        s->send_failed = true;
        return WOLFSSL_CBIO_ERR_CONN_CLOSE;
    }
    return sz;
}

/* Compares the identity wolfSSL read with the one pskgw pre-parsed (wolfSSL passes it as a C
 * string, so raw identities are compared up to their first NUL). */
static bool same_identity(const hs_state_t *hs, const char *identity)
{
    size_t n = 0;

    if (identity == NULL)
        return false;
    while (n < hs->raw_id_len && hs->raw_id[n] != 0)
        n++;
    return strlen(identity) == n && memcmp(identity, hs->raw_id, n) == 0;
}

unsigned int pskgw_dtls_session_psk_cb(WOLFSSL *ssl, const char *identity, unsigned char *key,
                                       unsigned int max_key_len);

unsigned int pskgw_dtls_session_psk_cb(WOLFSSL *ssl, const char *identity, unsigned char *key,
                                       unsigned int max_key_len)
{
    pskgw_dtls_session_t *s = wolfSSL_GetIOReadCtx(ssl);

    if (s == NULL)
        return 0;
    s->cke_fed = true;
    if (s->key == KEY_READY && s->hs != NULL && same_identity(s->hs, identity) &&
        s->hs->psk_len <= max_key_len) {
        memcpy(key, s->hs->psk, s->hs->psk_len);
        return (unsigned int)s->hs->psk_len;
    }
    /* Unknown, refused, blocked or mismatched: a random key fails exactly like a wrong one. */
    if (max_key_len < 16 || pskgw_dtls_ctx_random(s->ctx, key, 16) < 0)
        return 0;
    return 16;
}
