/* pskgw_dtls_ctx: see ctx.h. */
#include "dtls/cid.h"
#include "dtls/internal.h"
#include "dtls/parse.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"

#include <wolfssl/wolfcrypt/sha256.h>

#include <stdlib.h>
#include <string.h>

/* HMAC-SHA256 (RFC 2104) keyed once: SHA-256 over the key padded with ipad and with opad. A
 * cookie then costs the blocks of its own input and one outer block, not two more for the
 * pads (a third of its SHA-256 work). */
static int key_pads(const uint8_t key[PSKGW_COOKIE_SECRET_LEN], wc_Sha256 pads[2])
{
    uint8_t block[WC_SHA256_BLOCK_SIZE];
    int rc = 0;

    for (int k = 0; k < 2 && rc == 0; k++) {
        memset(block, k == 0 ? 0x36 : 0x5c, sizeof(block));
        for (size_t i = 0; i < PSKGW_COOKIE_SECRET_LEN; i++)
            block[i] ^= key[i];
        rc = wc_InitSha256(&pads[k]);
        if (rc == 0)
            rc = wc_Sha256Update(&pads[k], block, sizeof(block));
    }
    pskgw_wipe(block, sizeof(block));
    return rc == 0 ? 0 : PSKGW_ECRYPTO;
}

/* The secrets changed: new keyed pads, and nothing remembered from the old ones. */
static int secrets_changed(pskgw_dtls_ctx_t *ctx)
{
    int rc = key_pads(ctx->secret[0], ctx->cookie_pad[0]);

    if (rc == 0 && ctx->have_prev)
        rc = key_pads(ctx->secret[1], ctx->cookie_pad[1]);
    else if (!ctx->have_prev)
        pskgw_wipe(ctx->cookie_pad[1], sizeof(ctx->cookie_pad[1]));
    ctx->memo_len = 0;
    return rc;
}

/* The secret of the current period, and the previous period's only if it was the last one. */
static int ensure_secret(pskgw_dtls_ctx_t *ctx, uint64_t now)
{
    uint64_t period = now / ctx->opt.cookie_rotate_ms;

    if (ctx->secret_set && period == ctx->period)
        return 0;
    if (ctx->secret_set && period == ctx->period + 1) {
        memcpy(ctx->secret[1], ctx->secret[0], PSKGW_COOKIE_SECRET_LEN);
        ctx->have_prev = true;
    } else {
        /* A gap of two periods or more: the old secret is past its lifetime as well. */
        pskgw_wipe(ctx->secret[1], PSKGW_COOKIE_SECRET_LEN);
        ctx->have_prev = false;
    }
    if (pskgw_dtls_ctx_random(ctx, ctx->secret[0], PSKGW_COOKIE_SECRET_LEN) < 0)
        return PSKGW_ECRYPTO;
    ctx->secret_set = true;
    ctx->period = period;
    return secrets_changed(ctx);
}

int pskgw_dtls_ctx_rotate_cookie_secret(pskgw_dtls_ctx_t *ctx, uint64_t now)
{
    if (ctx == NULL)
        return PSKGW_EINVAL;
    if (ctx->secret_set) {
        memcpy(ctx->secret[1], ctx->secret[0], PSKGW_COOKIE_SECRET_LEN);
        ctx->have_prev = true;
    }
    if (pskgw_dtls_ctx_random(ctx, ctx->secret[0], PSKGW_COOKIE_SECRET_LEN) < 0)
        return PSKGW_ECRYPTO;
    ctx->secret_set = true;
    ctx->period = now / ctx->opt.cookie_rotate_ms;
    return secrets_changed(ctx);
}

/* Hash_DRBG costs about as much per call as for 32 bytes more (issue 13: a CID's 7 bytes took
 * 8,250 instructions, a handshake's largest cost outside wolfSSL): small requests share calls.
 * The pool is key material like the DRBG state beside it, and wiped with it. */
int pskgw_dtls_ctx_random(pskgw_dtls_ctx_t *ctx, uint8_t *buf, size_t len)
{
    uint8_t *p;

    if (!ctx->rng_ok)
        return PSKGW_ECRYPTO;
    if (len > PSKGW_RNG_TAKE_MAX)
        return wc_RNG_GenerateBlock(&ctx->rng, buf, (word32)len) == 0 ? 0 : PSKGW_ECRYPTO;
    if (ctx->rng_left < len) {
        ctx->rng_left = 0;
        if (wc_RNG_GenerateBlock(&ctx->rng, ctx->rng_pool, sizeof(ctx->rng_pool)) != 0) {
            pskgw_wipe(ctx->rng_pool, sizeof(ctx->rng_pool));
            return PSKGW_ECRYPTO;
        }
        ctx->rng_left = sizeof(ctx->rng_pool);
    }
    p = ctx->rng_pool + sizeof(ctx->rng_pool) - ctx->rng_left;
    memcpy(buf, p, len);
    pskgw_wipe(p, len);
    ctx->rng_left -= len;
    return 0;
}

/* wolfSSL's DTLS 1.2 cookie (src/dtls.c: CreateDtls12Cookie in 5.9.2, CreateDtlsCookie in
 * 5.5.4), byte for byte: HMAC-SHA256 under secret i (its keyed pads) over the peer bytes,
 * version, random, session id, suites and compression. */
static int make_cookie(wc_Sha256 pads[2], const uint8_t *peer, size_t peer_len,
                       const pskgw_dtls_client_hello_t *ch, uint8_t out[WC_SHA256_DIGEST_SIZE])
{
    wc_Sha256 h;
    uint8_t inner[WC_SHA256_DIGEST_SIZE];
    int rc = wc_Sha256Copy(&pads[0], &h);

    if (rc == 0)
        rc = wc_Sha256Update(&h, peer, (word32)peer_len);
    if (rc == 0)
        rc = wc_Sha256Update(&h, ch->version, 2);
    if (rc == 0)
        rc = wc_Sha256Update(&h, ch->random, 32);
    if (rc == 0)
        rc = wc_Sha256Update(&h, ch->session_id, (word32)ch->session_id_len);
    if (rc == 0)
        rc = wc_Sha256Update(&h, ch->suites, (word32)ch->suites_len);
    if (rc == 0)
        rc = wc_Sha256Update(&h, ch->compression, (word32)ch->compression_len);
    if (rc == 0)
        rc = wc_Sha256Final(&h, inner);
    wc_Sha256Free(&h);
    if (rc == 0)
        rc = wc_Sha256Copy(&pads[1], &h);
    if (rc == 0)
        rc = wc_Sha256Update(&h, inner, sizeof(inner));
    if (rc == 0)
        rc = wc_Sha256Final(&h, out);
    wc_Sha256Free(&h);
    pskgw_wipe(&h, sizeof(h));
    pskgw_wipe(inner, sizeof(inner));
    return rc == 0 ? 0 : PSKGW_ECRYPTO;
}

static int cookie_index(pskgw_dtls_ctx_t *ctx, const uint8_t *peer, size_t peer_len,
                        const pskgw_dtls_client_hello_t *ch)
{
    uint8_t want[WC_SHA256_DIGEST_SIZE];
    int found = PSKGW_ENOTFOUND;

    if (ch->cookie_len != WC_SHA256_DIGEST_SIZE || !ctx->secret_set)
        return PSKGW_ENOTFOUND;
    for (int i = 0; i < (ctx->have_prev ? 2 : 1) && found < 0; i++) {
        if (make_cookie(ctx->cookie_pad[i], peer, peer_len, ch, want) < 0)
            return PSKGW_ECRYPTO;
        if (pskgw_memeq_ct(want, ch->cookie, sizeof(want)) == 0)
            found = i;
    }
    pskgw_wipe(want, sizeof(want));
    return found;
}

/* Remembers the ClientHello (exactly these bytes from exactly this peer) whose cookie secret
 * idx made: the session created for it asks again at once (pskgw_dtls_ctx_cookie_index). */
static void memo_set(pskgw_dtls_ctx_t *ctx, const uint8_t *peer, size_t peer_len,
                     const uint8_t *dgram, size_t len, int idx)
{
    ctx->memo_len = 0;
    if (peer_len > sizeof(ctx->memo_peer) || len > sizeof(ctx->memo_dgram) || len == 0)
        return;
    memcpy(ctx->memo_peer, peer, peer_len);
    memcpy(ctx->memo_dgram, dgram, len);
    ctx->memo_peer_len = peer_len;
    ctx->memo_len = len;
    ctx->memo_idx = idx;
}

static bool memo_hit(const pskgw_dtls_ctx_t *ctx, const uint8_t *peer, size_t peer_len,
                     const uint8_t *dgram, size_t len)
{
    return ctx->memo_len != 0 && ctx->memo_len == len && ctx->memo_peer_len == peer_len &&
           memcmp(ctx->memo_peer, peer, peer_len) == 0 && memcmp(ctx->memo_dgram, dgram, len) == 0;
}

int pskgw_dtls_ctx_cookie_index(pskgw_dtls_ctx_t *ctx, const uint8_t *peer, size_t peer_len,
                                const uint8_t *dgram, size_t len)
{
    pskgw_dtls_client_hello_t ch;
    uint64_t rseq = 0;
    uint16_t mseq = 0;

    if (memo_hit(ctx, peer, peer_len, dgram, len))
        return ctx->memo_idx;
    if (pskgw_dtls_find_client_hello(dgram, len, &rseq, &mseq, &ch) < 0)
        return PSKGW_EPARSE;
    return cookie_index(ctx, peer, peer_len, &ch);
}

int pskgw_dtls_ctx_check_hello(pskgw_dtls_ctx_t *ctx, uint64_t now, const uint8_t *peer,
                               size_t peer_len, const uint8_t *dgram, size_t len, uint8_t *out,
                               size_t cap, size_t *out_len)
{
    pskgw_dtls_client_hello_t ch;
    uint64_t rseq = 0;
    uint16_t mseq = 0;
    uint8_t *p = out;
    int rc;

    if (ctx == NULL || !ctx->opt.dtls || peer == NULL || out == NULL || out_len == NULL)
        return PSKGW_EINVAL;
    if (pskgw_dtls_find_client_hello(dgram, len, &rseq, &mseq, &ch) < 0)
        return PSKGW_EPARSE;
    if (ensure_secret(ctx, now) < 0)
        return PSKGW_ECRYPTO;
    rc = cookie_index(ctx, peer, peer_len, &ch);
    if (rc >= 0) {
        memo_set(ctx, peer, peer_len, dgram, len, rc);
        return 1;
    }
    if (rc != PSKGW_ENOTFOUND)
        return rc;
    if (cap < PSKGW_DTLS_RECORD_HEADER_LEN + PSKGW_DTLS_HS_HEADER_LEN + 3 + 32)
        return PSKGW_ETOOBIG;
    /* Record header: handshake, DTLS 1.0 (RFC 6347 4.2.1), epoch 0, the ClientHello's seq. */
    *p++ = PSKGW_CT_HANDSHAKE;
    *p++ = 0xFE;
    *p++ = 0xFF;
    *p++ = 0;
    *p++ = 0;
    for (int i = 5; i >= 0; i--)
        *p++ = (uint8_t)(rseq >> (8 * i));
    *p++ = 0;
    *p++ = PSKGW_DTLS_HS_HEADER_LEN + 35;
    /* Handshake header: hello_verify_request, length 35, the ClientHello's message_seq. */
    *p++ = PSKGW_HS_HELLO_VERIFY_REQUEST;
    *p++ = 0;
    *p++ = 0;
    *p++ = 35;
    *p++ = (uint8_t)(mseq >> 8);
    *p++ = (uint8_t)mseq;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    *p++ = 35;
    *p++ = 0xFE;
    *p++ = 0xFF;
    *p++ = 32;
    if (make_cookie(ctx->cookie_pad[0], peer, peer_len, &ch, p) < 0)
        return PSKGW_ECRYPTO;
    p += 32;
    *out_len = (size_t)(p - out);
    return 0;
}

static const char *check_ciphers(WOLFSSL_CTX *wctx, const char *list)
{
    const char *p = list;
    char tok[64];

    if (*list == '\0')
        return "empty cipher list";
    while (*p != '\0') {
        const char *end = strchr(p, ':');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

        if (n == 0 || n >= sizeof(tok))
            return "bad cipher name";
        memcpy(tok, p, n);
        tok[n] = '\0';
        if (strstr(tok, "NULL") != NULL)
            return "NULL ciphers are refused";
        if (strncmp(tok, "PSK-", 4) != 0 && strncmp(tok, "ECDHE-PSK-", 10) != 0)
            return "only PSK and ECDHE-PSK suites are allowed";
        if (wolfSSL_CTX_set_cipher_list(wctx, tok) != WOLFSSL_SUCCESS)
            return "unknown cipher suite";
        p += n;
        if (*p == ':')
            p++;
    }
    return NULL;
}

static unsigned int psk_server_cb(WOLFSSL *ssl, const char *identity, unsigned char *key,
                                  unsigned int max_key_len);

/* wolfSSL's timeout is how long it resumes a session (ticket or ID) after its handshake; its
 * default, 500 s, would cut the ticket lifetime short. */
static int set_lifetime(WOLFSSL_CTX *wctx, const pskgw_ticket_keys_t *k)
{
    return wolfSSL_CTX_set_timeout(wctx, pskgw_ticket_keys_lifetime(k)) == WOLFSSL_SUCCESS
               ? 0
               : PSKGW_ETLS;
}

/* Session-ID resumption (ticket.c, dtls/sidcache.h) when the keys ask for a cache: wolfSSL's
 * session cache on (so that it issues a session ID) with its internal store and lookup off
 * (its static table stays unused: the profile's SMALL_SESSION_CACHE), and the external cache
 * callbacks on this context's cache. Otherwise the cache is off and no session ID is issued. */
static int enable_session_ids(pskgw_dtls_ctx_t *ctx, const char **reason)
{
    uint32_t n = ctx->opt.tickets != NULL ? pskgw_ticket_keys_session_cache(ctx->opt.tickets) : 0;
    int rc;

    if (ctx->opt.tickets != NULL && set_lifetime(ctx->wctx, ctx->opt.tickets) < 0) {
        *reason = "session timeout refused";
        return PSKGW_ETLS;
    }
    if (n == 0) {
        (void)wolfSSL_CTX_set_session_cache_mode(ctx->wctx, WOLFSSL_SESS_CACHE_OFF);
        return 0;
    }
    rc = pskgw_sidcache_new(n, &ctx->sids);
    if (rc < 0)
        return rc;
    (void)wolfSSL_CTX_set_session_cache_mode(ctx->wctx, WOLFSSL_SESS_CACHE_NO_INTERNAL);
    wolfSSL_CTX_sess_set_new_cb(ctx->wctx, pskgw_sid_new_cb);
    wolfSSL_CTX_sess_set_get_cb(ctx->wctx, pskgw_sid_get_cb);
    return 0;
}

/* The options' defaults filled in and their bounds checked; *reason says what is wrong. */
static int ctx_options(pskgw_dtls_options_t *o, const char **reason)
{
    if (o->max_identity_len == 0)
        o->max_identity_len = PSKGW_IDENTITY_MAX_RAW;
    if (o->max_parked_bytes == 0)
        o->max_parked_bytes = 4096;
    if (o->max_message == 0)
        o->max_message = 4096;
    if (o->handshake_timeout_ms == 0)
        o->handshake_timeout_ms = 10000;
    if (o->cookie_rotate_ms == 0)
        o->cookie_rotate_ms = 30000;
    if (o->half_open_timeout_ms == 0 || o->half_open_timeout_ms > o->handshake_timeout_ms)
        o->half_open_timeout_ms = o->handshake_timeout_ms;
    if (o->mtu == 0)
        o->mtu = 1400;
    if (o->max_identity_len > PSKGW_IDENTITY_MAX_RAW) {
        *reason = "max identity length above 128";
        return PSKGW_ECONFIG;
    }
    if (o->max_message > 16384) {
        *reason = "max message size above 16384";
        return PSKGW_ECONFIG;
    }
    if (o->framing > PSKGW_FRAMING_NEWLINE) {
        *reason = "unknown framing";
        return PSKGW_ECONFIG;
    }
    if (o->mtu < 256) {
        *reason = "mtu below 256";
        return PSKGW_ECONFIG;
    }
    if (!o->dtls)
        o->cid_len = 0; /* a TLS stream has no records to carry a CID */
    if (o->cid_len != 0 && (o->cid_len < PSKGW_CID_MIN || o->cid_len > PSKGW_CID_MAX)) {
        *reason = "cid length outside 4..16";
        return PSKGW_ECONFIG;
    }
    return 0;
}

int pskgw_dtls_ctx_new(const pskgw_dtls_options_t *opt, pskgw_dtls_ctx_t **out, const char **why)
{
    pskgw_dtls_ctx_t *ctx = NULL;
    const char *reason = NULL;
    int rc = PSKGW_ENOMEM;

    if (opt == NULL || out == NULL)
        return PSKGW_EINVAL;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        goto fail;
    ctx->opt = *opt;
    ctx->refs = 1;
    rc = ctx_options(&ctx->opt, &reason);
    if (rc < 0)
        goto fail;
    ctx->ciphers = strdup(opt->ciphers != NULL ? opt->ciphers : PSKGW_DTLS_DEFAULT_CIPHERS);
    ctx->opt.ciphers = ctx->ciphers;
    rc = PSKGW_ENOMEM;
    if (ctx->ciphers == NULL)
        goto fail;
    rc = PSKGW_ETLS;
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
        reason = "wolfSSL_Init failed";
        goto fail;
    }
    ctx->inited = true;
    ctx->wctx =
        wolfSSL_CTX_new(ctx->opt.dtls ? wolfDTLSv1_2_server_method() : wolfTLSv1_2_server_method());
    if (ctx->wctx == NULL) {
        reason = "wolfSSL_CTX_new failed";
        goto fail;
    }
    if (wc_InitRng(&ctx->rng) != 0) {
        reason = "no random generator";
        goto fail;
    }
    ctx->rng_ok = true;
    /* One DRBG for every session of this context: wc_InitRng is a fifth of a handshake. */
    if (wolfSSL_CTX_new_rng(ctx->wctx) != WOLFSSL_SUCCESS) {
        reason = "wolfSSL_CTX_new_rng failed";
        goto fail;
    }
    /* CTX level: wolfSSL 5.5.4 sizes its datagram read buffer from the CTX's MTU only. */
    if (ctx->opt.dtls && wolfSSL_CTX_dtls_set_mtu(ctx->wctx, ctx->opt.mtu) != WOLFSSL_SUCCESS) {
        reason = "mtu rejected";
        goto fail;
    }
    /* One datagram per flight (RFC 6347 4.1.1: several records may share a datagram):
     * wolfSSL keeps the records of a flight in its output buffer and hands them to
     * pskgw_dtls_io_send in one call. ServerHello and ServerHelloDone went out as two
     * datagrams before (ChangeCipherSpec and Finished already shared one): a full handshake
     * costs the gateway 3 datagrams out, HelloVerifyRequest included, not 4. A PSK flight is
     * under 150 bytes, far below the MTU. TLS gets the same grouping (one write). */
    if (wolfSSL_CTX_set_group_messages(ctx->wctx) != WOLFSSL_SUCCESS) {
        reason = "wolfSSL_CTX_set_group_messages failed";
        goto fail;
    }
    rc = PSKGW_ECONFIG;
    reason = check_ciphers(ctx->wctx, ctx->ciphers);
    if (reason != NULL)
        goto fail;
    if (wolfSSL_CTX_set_cipher_list(ctx->wctx, ctx->ciphers) != WOLFSSL_SUCCESS) {
        reason = "cipher list rejected";
        goto fail;
    }
    rc = PSKGW_ETLS;
    wolfSSL_CTX_set_psk_server_callback(ctx->wctx, psk_server_cb);
    wolfSSL_CTX_SetIORecv(ctx->wctx, pskgw_dtls_io_recv);
    wolfSSL_CTX_SetIOSend(ctx->wctx, pskgw_dtls_io_send);
    /* Hibernation (hibernate.c): the peer address is the owner's, not in the exported blob. */
    wolfSSL_CTX_SetIOGetPeer(ctx->wctx, pskgw_dtls_io_get_peer);
    wolfSSL_CTX_SetIOSetPeer(ctx->wctx, pskgw_dtls_io_set_peer);
    rc = enable_session_ids(ctx, &reason);
    if (rc < 0)
        goto fail;
    rc = PSKGW_ETLS;
    if (ctx->opt.tickets == NULL) {
        /* No resumption: every device proves its key with a full handshake. */
        (void)wolfSSL_CTX_NoTicketTLSv12(ctx->wctx);
    } else if (wolfSSL_CTX_set_TicketEncCb(ctx->wctx, pskgw_ticket_enc_cb) != WOLFSSL_SUCCESS ||
               wolfSSL_CTX_set_TicketEncCtx(ctx->wctx, ctx->opt.tickets) != WOLFSSL_SUCCESS ||
               wolfSSL_CTX_set_TicketHint(ctx->wctx, (int)pskgw_ticket_keys_lifetime(
                                                         ctx->opt.tickets)) != WOLFSSL_SUCCESS) {
        reason = "session tickets refused";
        goto fail;
    }
    ctx->tickets = pskgw_ticket_keys_ref(ctx->opt.tickets);
    *out = ctx;
    return 0;

fail:
    if (why != NULL)
        *why = reason != NULL ? reason : pskgw_strerror(rc);
    pskgw_dtls_ctx_free(ctx);
    return rc;
}

pskgw_dtls_ctx_t *pskgw_dtls_ctx_ref(pskgw_dtls_ctx_t *ctx)
{
    if (ctx != NULL)
        ctx->refs++;
    return ctx;
}

void pskgw_dtls_ctx_set_idle_timeout(pskgw_dtls_ctx_t *ctx, uint32_t idle_timeout_s)
{
    if (ctx != NULL)
        ctx->opt.idle_timeout_s = idle_timeout_s;
}

void pskgw_dtls_ctx_free(pskgw_dtls_ctx_t *ctx)
{
    if (ctx == NULL || --ctx->refs > 0)
        return;
    if (ctx->wctx != NULL)
        wolfSSL_CTX_free(ctx->wctx);
    pskgw_ticket_keys_free(ctx->tickets);
    pskgw_sidcache_free(ctx->sids);
    if (ctx->rng_ok)
        wc_FreeRng(&ctx->rng);
    pskgw_wipe(ctx->rng_pool, sizeof(ctx->rng_pool));
    if (ctx->inited)
        wolfSSL_Cleanup();
    pskgw_wipe(ctx->secret, sizeof(ctx->secret));
    for (int i = 0; i < 2; i++) {
        wc_Sha256Free(&ctx->cookie_pad[i][0]);
        wc_Sha256Free(&ctx->cookie_pad[i][1]);
    }
    pskgw_wipe(ctx->cookie_pad, sizeof(ctx->cookie_pad));
    pskgw_wipe(ctx->memo_dgram, sizeof(ctx->memo_dgram));
    free(ctx->ciphers);
    free(ctx);
}

int pskgw_dtls_ctx_set_tickets(pskgw_dtls_ctx_t *ctx, pskgw_ticket_keys_t *keys)
{
    if (ctx == NULL || keys == NULL || ctx->tickets == NULL)
        return PSKGW_EINVAL;
    if (wolfSSL_CTX_set_TicketEncCtx(ctx->wctx, keys) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_TicketHint(ctx->wctx, (int)pskgw_ticket_keys_lifetime(keys)) !=
            WOLFSSL_SUCCESS ||
        set_lifetime(ctx->wctx, keys) < 0)
        return PSKGW_EINVAL;
    (void)pskgw_ticket_keys_ref(keys); /* first: keys may be the ones held */
    pskgw_ticket_keys_free(ctx->tickets);
    ctx->tickets = keys;
    ctx->opt.tickets = keys;
    return 0;
}

const pskgw_dtls_options_t *pskgw_dtls_ctx_options(const pskgw_dtls_ctx_t *ctx)
{
    return &ctx->opt;
}

/* Implemented in session.c: copies the session's already-resolved key. */
unsigned int pskgw_dtls_session_psk_cb(WOLFSSL *ssl, const char *identity, unsigned char *key,
                                       unsigned int max_key_len);

static unsigned int psk_server_cb(WOLFSSL *ssl, const char *identity, unsigned char *key,
                                  unsigned int max_key_len)
{
    return pskgw_dtls_session_psk_cb(ssl, identity, key, max_key_len);
}
