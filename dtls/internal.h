/* dtls/ module-internal: the context's layout, shared with session.c. */
#ifndef PSKGW_DTLS_INTERNAL_H
#define PSKGW_DTLS_INTERNAL_H

#include "dtls/ctx.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/random.h>

#define PSKGW_COOKIE_SECRET_LEN 32
#define PSKGW_TLS_SCRATCH       4096
#define PSKGW_READ_BUF          16384

struct pskgw_dtls_ctx {
    pskgw_dtls_options_t opt;
    char *ciphers;
    WOLFSSL_CTX *wctx;
    WC_RNG rng;
    bool rng_ok;
    bool inited;                                /* wolfSSL_Init done */
    uint8_t secret[2][PSKGW_COOKIE_SECRET_LEN]; /* [0] current, [1] previous */
    bool have_prev;
    bool secret_set;
    uint64_t period; /* of secret[0]: now / cookie_rotate_ms */
    /* Shared scratch (one thread): TLS CKE pre-parse, plaintext reads. */
    uint8_t scratch[PSKGW_TLS_SCRATCH];
    uint8_t readbuf[PSKGW_READ_BUF];
};

/* Which secret validates this ClientHello from peer: 0 current, 1 previous, <0 none. */
int pskgw_dtls_ctx_cookie_index(pskgw_dtls_ctx_t *ctx, const uint8_t *peer, size_t peer_len,
                                const uint8_t *dgram, size_t len);
/* wolfSSL I/O callbacks (session.c); the I/O context is the session. */
int pskgw_dtls_io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx);
int pskgw_dtls_io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx);

/* Fill buf with random bytes from the context's DRBG. */
int pskgw_dtls_ctx_random(pskgw_dtls_ctx_t *ctx, uint8_t *buf, size_t len);

#endif
