/* pskgw-devsim's hostile scenarios, the pure parts: the hand-made DTLS datagrams (checked against
 * OpenSSL's DTLS server, an independent implementation: it answers our ClientHello with a
 * HelloVerifyRequest, accepts the cookie, sends its flight up to ServerHelloDone and reads the PSK
 * identity out of our ClientKeyExchange), the answer reader, and the --attack options: defaults,
 * bounds, loopback-only sources and targets. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <string.h>

#include "common/err.h"
#include "tools/devsim/opts.h"
#include "tools/devsim/rawdtls.h"

/* ---- OpenSSL's DTLS server as the judge of our datagrams ---- */

static char seen_identity[256];

static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
                                  unsigned int max_psk_len)
{
    (void)ssl;
    snprintf(seen_identity, sizeof(seen_identity), "%s", identity);
    if (max_psk_len < 16)
        return 0;
    memset(psk, 0x42, 16);
    return 16;
}

static int cookie_gen(SSL *ssl, unsigned char *cookie, unsigned int *len)
{
    (void)ssl;
    memcpy(cookie, "judge-cookie-0123456789", 23);
    *len = 23;
    return 1;
}

static int cookie_verify(SSL *ssl, const unsigned char *cookie, unsigned int len)
{
    (void)ssl;
    return len == 23 && memcmp(cookie, "judge-cookie-0123456789", 23) == 0;
}

typedef struct {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
} judge_t;

static void judge_init(judge_t *j)
{
    j->ctx = SSL_CTX_new(DTLS_server_method());
    cr_assert_not_null(j->ctx);
    cr_assert_eq(
        SSL_CTX_set_cipher_list(j->ctx, "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:@SECLEVEL=0"), 1);
    SSL_CTX_set_psk_server_callback(j->ctx, psk_server_cb);
    SSL_CTX_set_cookie_generate_cb(j->ctx, cookie_gen);
    SSL_CTX_set_cookie_verify_cb(j->ctx, cookie_verify);
    j->ssl = SSL_new(j->ctx);
    cr_assert_not_null(j->ssl);
    j->rbio = BIO_new(BIO_s_mem());
    j->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(j->rbio, -1);
    BIO_set_mem_eof_return(j->wbio, -1);
    SSL_set_bio(j->ssl, j->rbio, j->wbio);
    SSL_set_options(j->ssl, SSL_OP_COOKIE_EXCHANGE | SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(j->ssl, 1400);
    SSL_set_accept_state(j->ssl);
}

static void judge_free(judge_t *j)
{
    SSL_free(j->ssl);
    SSL_CTX_free(j->ctx);
    ERR_clear_error();
}

/* Feed one datagram; what the server sends back goes to out (all of it, as one buffer). */
static size_t judge_feed(judge_t *j, const uint8_t *d, size_t len, uint8_t *out, size_t cap)
{
    cr_assert_eq(BIO_write(j->rbio, d, (int)len), (int)len);
    int r = SSL_do_handshake(j->ssl);
    int e = SSL_get_error(j->ssl, r);
    cr_assert(e == SSL_ERROR_WANT_READ, "server refused our datagram (ssl error %d)", e);
    ERR_clear_error();
    int n = BIO_read(j->wbio, out, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

Test(devsim_rawdtls, openssl_server_takes_hello_cookie_and_identity)
{
    judge_t j;
    judge_init(&j);
    uint8_t random[32], d[1024], ans_buf[4096];
    size_t len;
    memset(random, 0x5a, sizeof(random));
    cr_assert_eq(pskgw_devsim_raw_client_hello(random, NULL, 0, 0, 0, d, sizeof(d), &len), 0);
    cr_assert_not(pskgw_devsim_raw_is_hello_with_cookie(d, len));
    size_t n = judge_feed(&j, d, len, ans_buf, sizeof(ans_buf));
    pskgw_devsim_raw_answer_t a;
    pskgw_devsim_raw_read_answer(ans_buf, n, &a);
    cr_assert(a.hello_verify, "no HelloVerifyRequest");
    cr_assert_eq(a.cookie_len, 23);
    cr_assert_eq(memcmp(a.cookie, "judge-cookie-0123456789", 23), 0);
    cr_assert_not(a.server_hello_done);

    cr_assert_eq(
        pskgw_devsim_raw_client_hello(random, a.cookie, a.cookie_len, 1, 1, d, sizeof(d), &len), 0);
    cr_assert(pskgw_devsim_raw_is_hello_with_cookie(d, len));
    n = judge_feed(&j, d, len, ans_buf, sizeof(ans_buf));
    pskgw_devsim_raw_read_answer(ans_buf, n, &a);
    cr_assert(a.server_hello && a.server_hello_done, "no server flight to ServerHelloDone");
    cr_assert_not(a.hello_verify);
    cr_assert_not(a.encrypted);

    char id[29];
    const uint8_t entropy[12] = { 0, 1, 2, 3, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10 };
    pskgw_devsim_raw_module_identity(entropy, id);
    cr_assert_str_eq(id, "110100010203FEDCBA9876543210");
    cr_assert_eq(
        pskgw_devsim_raw_client_key_exchange((const uint8_t *)id, 28, 2, 2, d, sizeof(d), &len), 0);
    seen_identity[0] = '\0';
    (void)judge_feed(&j, d, len, ans_buf, sizeof(ans_buf)); /* waits for our Finished: never */
    cr_assert_str_eq(seen_identity, id, "the server read another identity");
    judge_free(&j);
}

Test(devsim_rawdtls, builders_refuse_bad_arguments)
{
    uint8_t random[32] = { 0 }, d[1024], cookie[256] = { 0 };
    size_t len;
    cr_assert_eq(pskgw_devsim_raw_client_hello(random, cookie, 256, 0, 0, d, sizeof(d), &len),
                 PSKGW_EINVAL);
    cr_assert_eq(pskgw_devsim_raw_client_hello(random, NULL, 3, 0, 0, d, sizeof(d), &len),
                 PSKGW_EINVAL);
    cr_assert_eq(pskgw_devsim_raw_client_hello(random, NULL, 0, 0, 0, d, 40, &len), PSKGW_ETOOBIG);
    cr_assert_eq(pskgw_devsim_raw_client_key_exchange(d, 0, 2, 2, d, sizeof(d), &len),
                 PSKGW_EINVAL);
    cr_assert_eq(pskgw_devsim_raw_client_key_exchange(d, 129, 2, 2, d, sizeof(d), &len),
                 PSKGW_EINVAL);
    cr_assert_eq(pskgw_devsim_raw_client_key_exchange(d, 28, 2, 2, d, 40, &len), PSKGW_ETOOBIG);
}

/* Answers made by hand: alerts, later epochs, truncated records, fragments. */
Test(devsim_rawdtls, answer_reader_edges)
{
    /* a fatal alert (handshake_failure, 40) then a record of epoch 1 */
    uint8_t d[64] = { 21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 5, 0, 2, 2,   40,
                      23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0xaa };
    pskgw_devsim_raw_answer_t a;
    pskgw_devsim_raw_read_answer(d, 29, &a);
    cr_assert(a.alert);
    cr_assert_eq(a.alert_desc, 40);
    cr_assert(a.encrypted);
    /* a warning alert is no refusal; a record longer than the datagram ends the walk */
    d[13] = 1;
    pskgw_devsim_raw_read_answer(d, 28, &a);
    cr_assert_not(a.alert);
    cr_assert_not(a.encrypted);
    /* a HelloVerifyRequest fragment (offset != 0) gives no cookie */
    uint8_t h[] = { 22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0,    15,   3,
                    0,  0,    3,    0, 0, 0, 0, 1, 0, 0, 3, 0xfe, 0xfd, 0 };
    pskgw_devsim_raw_read_answer(h, sizeof(h), &a);
    cr_assert_not(a.hello_verify);
    h[21] = 0; /* offset 0: a whole HelloVerifyRequest with an empty cookie */
    pskgw_devsim_raw_read_answer(h, sizeof(h), &a);
    cr_assert(a.hello_verify);
    cr_assert_eq(a.cookie_len, 0);
    pskgw_devsim_raw_read_answer(NULL, 0, &a);
    cr_assert_not(a.hello_verify || a.alert || a.encrypted);
}

/* ---- options ---- */

static int parse(pskgw_devsim_opts_t *o, char *err, int argc, ...)
{
    char *argv[40];
    va_list ap;
    va_start(ap, argc);
    argv[0] = "pskgw-devsim";
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return pskgw_devsim_opts_parse(argc, argv, o, err, 256);
}

Test(devsim_attack_opts, defaults_per_scenario)
{
    pskgw_devsim_opts_t o;
    char err[256];
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--attack", "cke-flood"), 0, "%s",
                 err);
    cr_assert_eq(o.attack.kind, PSKGW_DEVSIM_ATTACK_CKE_FLOOD);
    cr_assert_eq(o.devices, 0, "an attack alone unless --devices is given");
    cr_assert_eq(o.attack.count, 100);
    cr_assert_eq(o.attack.sources, 1);
    cr_assert_eq(o.attack.source_base, (127u << 24) | (2u << 16) | 1u);
    cr_assert_eq(o.attack.delay, 0);
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "fill", "--devices", "5"),
                 0, "%s", err);
    cr_assert_eq(o.attack.sources, 64);
    cr_assert_eq(o.devices, 5);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--attack", "replay"), 0, "%s", err);
    cr_assert_eq(o.attack.count, 1);
    cr_assert_eq(o.attack.delay, 1);
    cr_assert_eq(parse(&o, err, 3, "--target", "127.0.0.1:1"), 0, "%s", err);
    cr_assert_eq(o.attack.kind, PSKGW_DEVSIM_ATTACK_NONE);
    cr_assert_str_eq(pskgw_devsim_attack_name(PSKGW_DEVSIM_ATTACK_WRONG_KEY), "wrong-key");
}

Test(devsim_attack_opts, refuses_non_loopback_and_unbounded)
{
    pskgw_devsim_opts_t o;
    char err[256];
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "fill", "--attack-source",
                       "10.0.0.1"),
                 PSKGW_EINVAL);
    cr_assert(strstr(err, "refusing a non-loopback source address") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "fill", "--attack-source",
                       "2001:db8::1"),
                 PSKGW_EINVAL);
    cr_assert(strstr(err, "non-loopback") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 5, "--target", "192.0.2.1:5684", "--attack", "cke-flood"),
                 PSKGW_EINVAL);
    cr_assert(strstr(err, "refusing a non-loopback target") != NULL, "%s", err);
    /* sources that would leave 127.0.0.0/8 */
    cr_assert_eq(parse(&o, err, 9, "--target", "127.0.0.1:1", "--attack", "fill", "--attack-source",
                       "127.255.255.200", "--attack-sources", "100"),
                 PSKGW_EINVAL);
    cr_assert(strstr(err, "leave 127.0.0.0/8") != NULL, "%s", err);
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "fill", "--attack-source",
                       "127.0.0.255"),
                 PSKGW_EINVAL);
    /* bounded: count, rate, concurrency, sources */
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "cke-flood",
                       "--attack-count", "1000001"),
                 PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "cke-flood",
                       "--attack-count", "0"),
                 PSKGW_EINVAL);
    cr_assert_eq(
        parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "cke-flood", "--attack-rate", "0"),
        PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "cke-flood",
                       "--attack-concurrency", "60001"),
                 PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "fill",
                       "--attack-sources", "65001"),
                 PSKGW_EINVAL);
    /* combinations */
    cr_assert_eq(parse(&o, err, 5, "--tcp", "127.0.0.1:1", "--attack", "cke-flood"), PSKGW_EINVAL);
    cr_assert_eq(
        parse(&o, err, 7, "--target", "[::1]:1", "--attack", "fill", "--attack-sources", "2"),
        PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "[::1]:1", "--attack", "cke-flood"), 0, "%s", err);
    cr_assert_eq(
        parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "replay", "--attack-sources", "2"),
        PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 7, "--target", "127.0.0.1:1", "--attack", "fill",
                       "--attack-identities", "/tmp/x"),
                 PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--attack-count", "5"), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--devices", "0"), PSKGW_EINVAL);
    cr_assert_eq(parse(&o, err, 5, "--target", "127.0.0.1:1", "--attack", "smurf"), PSKGW_EINVAL);
}

/* Sources step over 127.x.y.1 .. 127.x.y.254: never .0 or .255. */
Test(devsim_attack_opts, sources_skip_network_and_broadcast_octets)
{
    pskgw_devsim_opts_t o;
    char err[256];
    cr_assert_eq(parse(&o, err, 9, "--target", "127.0.0.1:1", "--attack", "fill", "--attack-source",
                       "127.3.0.253", "--attack-sources", "600"),
                 0, "%s", err);
    const uint32_t base = (127u << 24) | (3u << 16);
    cr_assert_eq(pskgw_devsim_attack_source(&o.attack, 0), base | 253u);
    cr_assert_eq(pskgw_devsim_attack_source(&o.attack, 1), base | 254u);
    cr_assert_eq(pskgw_devsim_attack_source(&o.attack, 2), base | (1u << 8) | 1u);
    for (uint32_t i = 0; i < 600; i++) {
        uint32_t a = pskgw_devsim_attack_source(&o.attack, i);
        cr_assert((a & 0xFF) != 0 && (a & 0xFF) != 255 && (a >> 24) == 127);
        if (i > 0)
            cr_assert_gt(a, pskgw_devsim_attack_source(&o.attack, i - 1), "distinct, in order");
    }
}
