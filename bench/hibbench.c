/* pskgw-hibbench: what a hibernated DTLS session costs, in process (dtls/session.h).
 *
 * N in-memory wolfSSL DTLS 1.2 PSK clients (PSK-AES128-CCM-8) handshake with pskgw_dtls_session
 * servers through memory, each sends one record, then the server session hibernates and is
 * frozen (its smallest form, as the gateway keeps it: dtls/session.h) and the client is freed, except the first --thaw ones, which are made before the baseline is taken (so
 * their client objects are not counted) and kept to measure thaws. Reports the process RSS over
 * its baseline (after malloc_trim) per hibernated session made after it, the heap and the slab's
 * frozen-session slots (dtls/slab.h) in use per session, the wolfSSL zone's pages left, the size
 * of the frozen form, and the cost of a record that thaws a frozen session
 * (unfreeze, import, sequence jump, decrypt) next to the same record on an awake session.
 * One JSON object on stdout.
 * Usage: pskgw-hibbench [--sessions N] [--thaw K] */
#include "common/err.h"
#include "dtls/session.h"
#include "dtls/slab.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QCAP 16
#define DMAX 2048

typedef struct {
    uint8_t d[QCAP][DMAX];
    size_t len[QCAP];
    int head, count;
} q_t;

static q_t to_srv, to_cli;
static const uint8_t PSK[16] = { 0xE5, 0xDE, 0x45, 0xB3, 0x67, 0xDB, 0x69, 0x0F,
                                 0x2E, 0x17, 0xCF, 0x9D, 0x80, 0xA1, 0x8E, 0x87 };
static const char *ID = "11010008002F33244B115B0AEEB9";
static const char *UID = "A1B2C3D4E5F60718";
static uint64_t delivered;

static void push(q_t *q, const void *d, size_t n)
{
    int i = (q->head + q->count) % QCAP;

    if (q->count == QCAP || n > DMAX)
        return;
    memcpy(q->d[i], d, n);
    q->len[i] = n;
    q->count++;
}

static size_t pop(q_t *q, uint8_t *out, size_t cap)
{
    size_t n = q->len[q->head];

    if (n > cap)
        n = cap;
    memcpy(out, q->d[q->head], n);
    q->head = (q->head + 1) % QCAP;
    q->count--;
    return n;
}

static int cli_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)ctx;
    if (to_cli.count == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    return (int)pop(&to_cli, (uint8_t *)buf, (size_t)sz);
}

static int cli_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)ctx;
    push(&to_srv, buf, (size_t)sz);
    return sz;
}

static unsigned int cli_psk(WOLFSSL *ssl, const char *hint, char *identity, unsigned int id_max,
                            unsigned char *key, unsigned int key_max)
{
    (void)ssl;
    (void)hint;
    if (strlen(ID) >= id_max || sizeof(PSK) > key_max)
        return 0;
    memcpy(identity, ID, strlen(ID) + 1);
    memcpy(key, PSK, sizeof(PSK));
    return sizeof(PSK);
}

static int srv_send(void *arg, const uint8_t *d, size_t n)
{
    (void)arg;
    push(&to_cli, d, n);
    return 0;
}

static void srv_message(void *arg, uint64_t seq, const uint8_t *d, size_t n)
{
    (void)arg;
    (void)seq;
    (void)d;
    (void)n;
    delivered++;
}

static int lookup(void *ctx, const char *id, uint8_t *psk, size_t *psk_len, char *uid, size_t cap)
{
    (void)ctx;
    (void)id;
    memcpy(psk, PSK, sizeof(PSK));
    *psk_len = sizeof(PSK);
    /* A ROTPublicUID (16 hex digits) as the security service gives one: the session keeps it. */
    (void)snprintf(uid, cap, "%s", UID);
    return 0;
}

static int resolve(void *ctx, const char *id, pskgw_psk_done_cb cb, void *arg, void **h)
{
    (void)ctx;
    (void)id;
    (void)cb;
    (void)arg;
    (void)h;
    return PSKGW_EUNAVAIL;
}

static void cancel(void *ctx, void *h)
{
    (void)ctx;
    (void)h;
}

static const pskgw_psk_resolver_t RES = { .resolve = resolve, .cancel = cancel, .lookup = lookup };
static const pskgw_dtls_session_cbs_t CBS = { .send = srv_send, .message = srv_message };

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kb;
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One handshake and one record; the server session hibernates. 0 or -1. */
static int one(pskgw_dtls_ctx_t *sctx, WOLFSSL_CTX *cctx, uint32_t i, WOLFSSL **cli_out,
               pskgw_dtls_session_t **srv_out)
{
    uint8_t peer[7] = { 4, (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i, 0,
                        1 };
    uint8_t buf[DMAX];
    pskgw_dtls_session_t *srv = NULL;
    WOLFSSL *cli = wolfSSL_new(cctx);
    bool done = false;

    if (cli == NULL)
        return -1;
    wolfSSL_dtls_set_using_nonblock(cli, 1);
    for (int round = 0; round < 20 && !done; round++) {
        done = wolfSSL_connect(cli) == WOLFSSL_SUCCESS;
        while (to_srv.count > 0) {
            size_t n = pop(&to_srv, buf, sizeof(buf));

            if (srv == NULL) {
                uint8_t hvr[PSKGW_DTLS_HVR_MAX];
                size_t hn = 0;
                int rc = pskgw_dtls_ctx_check_hello(sctx, 1000, peer, sizeof(peer), buf, n, hvr,
                                                    sizeof(hvr), &hn);

                if (rc == 0)
                    push(&to_cli, hvr, hn);
                else if (rc == 1 && pskgw_dtls_session_new(sctx, &RES, &CBS, NULL, peer,
                                                           sizeof(peer), 1000, &srv) == 0)
                    (void)pskgw_dtls_session_feed(srv, buf, n, 1000);
            } else {
                (void)pskgw_dtls_session_feed(srv, buf, n, 1000);
            }
        }
    }
    if (!done || srv == NULL || wolfSSL_write(cli, "hello", 5) != 5)
        return -1;
    while (to_srv.count > 0) {
        size_t n = pop(&to_srv, buf, sizeof(buf));

        (void)pskgw_dtls_session_feed(srv, buf, n, 1000);
    }
    to_cli.count = 0;
    if (pskgw_dtls_session_hibernate(srv) != 0)
        return -1;
    *cli_out = cli;
    *srv_out = srv;
    return 0;
}

/* Mean µs of feeding one client record to each of the k sessions; a frozen one is unfrozen
 * first, in the time (the gateway's path: pskgw_lsess_ds, then the record thaws wolfSSL). */
static double feed_all(pskgw_dtls_ctx_t *sctx, WOLFSSL **cli, pskgw_dtls_session_t **srv,
                       pskgw_dtls_frozen_t **frz, size_t k)
{
    uint8_t buf[DMAX];
    double total = 0;

    for (size_t i = 0; i < k; i++) {
        double t0;
        size_t n;

        if (wolfSSL_write(cli[i], "again", 5) != 5 || to_srv.count != 1)
            return -1;
        n = pop(&to_srv, buf, sizeof(buf));
        t0 = now_us();
        if (frz[i] != NULL) {
            if (pskgw_dtls_session_unfreeze(sctx, &RES, &CBS, NULL, frz[i], 2000, &srv[i]) < 0)
                return -1;
            frz[i] = NULL;
        }
        (void)pskgw_dtls_session_feed(srv[i], buf, n, 2000);
        total += now_us() - t0;
        to_cli.count = 0;
    }
    return total / (double)k;
}

int main(int argc, char **argv)
{
    size_t n = 100000, k = 1000;
    pskgw_dtls_options_t o = { 0 };
    pskgw_dtls_ctx_t *sctx = NULL;
    const char *why = NULL;
    pskgw_dtls_session_t **srv;
    pskgw_dtls_frozen_t **frz;
    WOLFSSL **cli;
    WOLFSSL_CTX *cctx;
    long rss0 = 0, rss1;
    size_t heap0 = 0, heap1, frz0 = 0;
    pskgw_slab_stats_t st;
    double thaw_us, awake_us;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--sessions") == 0)
            n = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--thaw") == 0)
            k = strtoul(argv[i + 1], NULL, 10);
    }
    if (n < 2)
        n = 2;
    if (k >= n)
        k = n - 1;
    o.dtls = true;
    o.idle_timeout_s = 86400;
    o.ciphers = "PSK-AES128-CCM8";
    if (wolfSSL_Init() != WOLFSSL_SUCCESS || pskgw_dtls_ctx_new(&o, &sctx, &why) < 0) {
        fprintf(stderr, "pskgw-hibbench: %s\n", why ? why : "wolfSSL init");
        return 2;
    }
    cctx = wolfSSL_CTX_new(wolfDTLSv1_2_client_method());
    (void)wolfSSL_CTX_set_cipher_list(cctx, "PSK-AES128-CCM-8");
    wolfSSL_CTX_set_psk_client_callback(cctx, cli_psk);
    wolfSSL_CTX_SetIORecv(cctx, cli_recv);
    wolfSSL_CTX_SetIOSend(cctx, cli_send);
    srv = calloc(n, sizeof(*srv));
    frz = calloc(n, sizeof(*frz));
    cli = calloc(n, sizeof(*cli));
    if (srv == NULL || frz == NULL || cli == NULL)
        return 2;
    /* The arrays are touched first so that they are in the baseline. */
    memset(srv, 0, n * sizeof(*srv));
    memset(frz, 0, n * sizeof(*frz));
    memset(cli, 0, n * sizeof(*cli));
    for (size_t i = 0; i < n; i++) {
        if (i == k) {
            /* The k kept pairs (clients awake) are in the baseline, not in the figure. */
            malloc_trim(0);
            rss0 = rss_kb();
            heap0 = mallinfo2().uordblks;
            pskgw_slab_stats(PSKGW_SLAB_FROZEN, &st);
            frz0 = st.slot_bytes;
        }
        /* Hibernated, then frozen as the gateway keeps it (dtls/session.h). */
        if (one(sctx, cctx, (uint32_t)i, &cli[i], &srv[i]) < 0 ||
            pskgw_dtls_session_freeze(srv[i], &frz[i]) < 0) {
            fprintf(stderr, "pskgw-hibbench: session %zu failed\n", i);
            return 1;
        }
        srv[i] = NULL;
        if (i >= k) {
            wolfSSL_free(cli[i]);
            cli[i] = NULL;
        }
    }
    malloc_trim(0);
    rss1 = rss_kb();
    heap1 = mallinfo2().uordblks;
    pskgw_slab_stats(PSKGW_SLAB_FROZEN, &st);
    frz0 = st.slot_bytes - frz0;
    pskgw_slab_stats(PSKGW_SLAB_WOLFSSL, &st);
    thaw_us = feed_all(sctx, cli, srv, frz, k);
    awake_us = feed_all(sctx, cli, srv, frz, k);
    printf("{\"sessions\":%zu,\"thawed\":%zu,\"rss_over_baseline_kb\":%ld,"
           "\"rss_per_hibernated_session_bytes\":%.0f,\"heap_per_hibernated_session_bytes\":%.0f,"
           "\"slab_frozen_per_hibernated_session_bytes\":%.0f,\"wolfssl_slab_pages\":%zu,"
           "\"parts\":{\"frozen_alloc\":%zu,\"allocations\":1},\"kept_clients\":%zu,"
           "\"thaw_record_us\":%.1f,\"awake_record_us\":%.1f,\"delivered\":%llu}\n",
           n, k, rss1 - rss0, (double)(rss1 - rss0) * 1024 / (double)(n - k),
           (double)(heap1 - heap0) / (double)(n - k), (double)frz0 / (double)(n - k), st.pages,
           pskgw_dtls_frozen_size(frz[k]), k, thaw_us, awake_us, (unsigned long long)delivered);
    for (size_t i = 0; i < n; i++) {
        pskgw_dtls_session_free(srv[i]);
        pskgw_dtls_frozen_free(frz[i]);
        wolfSSL_free(cli[i]);
    }
    free(srv);
    free(frz);
    free(cli);
    wolfSSL_CTX_free(cctx);
    pskgw_dtls_ctx_free(sctx);
    return delivered == n + 2 * k ? 0 : 1;
}
