/* wolfpair: the machine's own ceiling for pskgw's TLS work, measured in one process with no
 * sockets: an in-memory wolfSSL DTLS 1.2 client/server pair using the gateway profile.
 *
 * Reports (one JSON object on stdout, human lines on stderr):
 *   - full PSK handshakes per second of server CPU (cookie exchange, and creating and freeing
 *     the server object, included: a server pays both for every handshake); the server context
 *     is set up as the gateway's (dtls/ctx.c): one DRBG shared by the sessions, flights grouped
 *     into one datagram each (3 datagrams out per handshake, HelloVerifyRequest included);
 *   - application records (64-byte payload) decrypted per second of server CPU, and encrypted
 *     per second of server CPU (the server's acks and downlink);
 *   - heap bytes held per established server session (after the first application record,
 *     with handshake resources freed), counted through wolfSSL_SetAllocators, and those bytes
 *     by block size (stderr, "held per session": what docs/WOLFSSL.md breaks down);
 *   - heap bytes held per half-open server session (the cookie-verified ClientHello answered,
 *     no ClientKeyExchange yet: docs/SECURITY.md);
 *   - wolfSSL's allocations per record each way (0 when its I/O buffers come from
 *     dtls/wolfmem.c's pool; the pool's blocks are returned to the heap before each heap
 *     figure is taken, so they do not count as session memory).
 *
 * usage: pskgw-wolfpair [--handshakes N] [--records N] [--sessions N] [--cipher NAME]
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/memory.h>

#include "dtls/wolfmem.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QCAP    64
#define BATCH   32
#define DGRAMSZ 1600

struct dgram {
    size_t len;
    unsigned char data[DGRAMSZ];
};

struct queue {
    struct dgram q[QCAP];
    unsigned head, count;
};

struct pair {
    struct queue to_server, to_client;
};

/* Heap accounting: a size header in front of each block; live bytes counted for the side
 * ("server" or not) that allocated the block. */
static int counting_server;
static long long live_server, live_other;
static long long allocs_server; /* allocations made while counting the server */

/* Every live block, listed (for the breakdown by size). */
struct hdr {
    size_t size;
    int server;
    int pad;
    struct hdr *prev, *next;
};

static struct hdr live_list = { 0, 0, 0, &live_list, &live_list };

static void *cnt_malloc(size_t n)
{
    struct hdr *h = malloc(sizeof(*h) + n);

    if (!h)
        return NULL;
    h->size = n;
    h->server = counting_server;
    if (h->server) {
        live_server += (long long)n;
        allocs_server++;
    } else {
        live_other += (long long)n;
    }
    h->next = &live_list;
    h->prev = live_list.prev;
    live_list.prev->next = h;
    live_list.prev = h;
    return h + 1;
}

static void cnt_free(void *p)
{
    struct hdr *h;

    if (!p)
        return;
    h = (struct hdr *)p - 1;
    if (h->server)
        live_server -= (long long)h->size;
    else
        live_other -= (long long)h->size;
    h->prev->next = h->next;
    h->next->prev = h->prev;
    free(h);
}

/* The server's live blocks by size, as blocks per session (sizes held by at least half of the
 * sessions), on stderr. */
static void breakdown(const char *what, long sessions)
{
    enum { MAXSZ = 64 };
    size_t size[MAXSZ];
    long count[MAXSZ];
    int n = 0;

    for (struct hdr *h = live_list.next; h != &live_list; h = h->next) {
        int i = 0;

        if (!h->server)
            continue;
        while (i < n && size[i] != h->size)
            i++;
        if (i == n) {
            if (n == MAXSZ)
                continue;
            size[n] = h->size;
            count[n++] = 0;
        }
        count[i]++;
    }
    fprintf(stderr, "  %s, held per session by block size:", what);
    for (int i = 0; i < n; i++) {
        if (count[i] * 2 < sessions)
            continue;
        if (count[i] == sessions)
            fprintf(stderr, " %zu", size[i]);
        else
            fprintf(stderr, " %zu x%.2f", size[i], (double)count[i] / (double)sessions);
    }
    fprintf(stderr, "\n");
}

static void *cnt_realloc(void *p, size_t n)
{
    struct hdr *h;
    void *np;

    if (!p)
        return cnt_malloc(n);
    h = (struct hdr *)p - 1;
    np = cnt_malloc(n);
    if (!np)
        return NULL;
    memcpy(np, p, h->size < n ? h->size : n);
    cnt_free(p);
    return np;
}

static int q_push(struct queue *q, const char *buf, int sz)
{
    struct dgram *d;

    if (q->count == QCAP || sz > DGRAMSZ)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    d = &q->q[(q->head + q->count) % QCAP];
    memcpy(d->data, buf, (size_t)sz);
    d->len = (size_t)sz;
    q->count++;
    return sz;
}

static int q_pop(struct queue *q, char *buf, int sz)
{
    struct dgram *d;
    int n;

    if (q->count == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    d = &q->q[q->head];
    n = (int)d->len < sz ? (int)d->len : sz;
    memcpy(buf, d->data, (size_t)n);
    q->head = (q->head + 1) % QCAP;
    q->count--;
    return n;
}

/* As pskgw does (dtls/wolfio.c): once the last datagram was taken, reads are disabled until
 * the server is called again (srv_call), so a read that would find nothing does not leave
 * wolfSSL's input buffer grown. */
static int srv_recv(WOLFSSL *s, char *b, int sz, void *ctx)
{
    struct queue *q = &((struct pair *)ctx)->to_server;
    int n = q_pop(q, b, sz);

    if (q->count == 0)
        wolfSSL_SSLDisableRead(s);
    return n;
}

static WOLFSSL *srv_call(WOLFSSL *s)
{
    wolfSSL_SSLEnableRead(s);
    return s;
}

/* Datagrams each way during the timed handshakes (the per-handshake figure in the report). */
static long dgrams_to_server, dgrams_to_client;

static int srv_send(WOLFSSL *s, char *b, int sz, void *ctx)
{
    (void)s;
    dgrams_to_client++;
    return q_push(&((struct pair *)ctx)->to_client, b, sz);
}

static int cli_recv(WOLFSSL *s, char *b, int sz, void *ctx)
{
    (void)s;
    return q_pop(&((struct pair *)ctx)->to_client, b, sz);
}

static int cli_send(WOLFSSL *s, char *b, int sz, void *ctx)
{
    (void)s;
    dgrams_to_server++;
    return q_push(&((struct pair *)ctx)->to_server, b, sz);
}

static int gen_cookie(WOLFSSL *s, unsigned char *buf, int sz, void *ctx)
{
    (void)s;
    (void)ctx;
    /* A fixed peer stands for the address: the pair has one "peer". */
    memset(buf, 0x5a, (size_t)(sz < 32 ? sz : 32));
    return sz < 32 ? sz : 32;
}

static const unsigned char psk_key[16] = { 0xE5, 0xDE, 0x45, 0xB3, 0x67, 0xDB, 0x69, 0x0F,
                                           0x2E, 0x17, 0xCF, 0x9D, 0x80, 0xA1, 0x8E, 0x87 };
static const char psk_id[] = "11010008002F33244B115B0AEEB9";

static unsigned int srv_psk(WOLFSSL *s, const char *id, unsigned char *key, unsigned int max)
{
    (void)s;
    if (strcmp(id, psk_id) != 0 || max < sizeof(psk_key))
        return 0;
    memcpy(key, psk_key, sizeof(psk_key));
    return sizeof(psk_key);
}

static unsigned int cli_psk(WOLFSSL *s, const char *hint, char *id, unsigned int id_max,
                            unsigned char *key, unsigned int key_max)
{
    (void)s;
    (void)hint;
    if (id_max < sizeof(psk_id) || key_max < sizeof(psk_key))
        return 0;
    memcpy(id, psk_id, sizeof(psk_id));
    memcpy(key, psk_key, sizeof(psk_key));
    return sizeof(psk_key);
}

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct conn {
    struct pair io;
    WOLFSSL *srv, *cli;
};

/* The timed handshakes' server object is made and freed here: bench/hs-cost.sh's pair run has
 * callgrind collect in these two and wolfSSL_accept only (--toggle-collect), the server's side. */
__attribute__((noinline)) static WOLFSSL *server_new(WOLFSSL_CTX *sctx)
{
    return wolfSSL_new(sctx);
}

__attribute__((noinline)) static void server_free(WOLFSSL *srv)
{
    wolfSSL_free(srv);
}

/* Runs a full handshake; adds the server's CPU seconds to *srv_cpu (creating the server object
 * included: a server pays it for every handshake). 0 or -1. */
static int handshake(WOLFSSL_CTX *sctx, WOLFSSL_CTX *cctx, struct conn *c, double *srv_cpu)
{
    int sdone = 0, cdone = 0;
    double t;

    memset(&c->io, 0, sizeof(c->io));
    counting_server = 1;
    t = cpu_now();
    c->srv = server_new(sctx);
    *srv_cpu += cpu_now() - t;
    counting_server = 0;
    c->cli = wolfSSL_new(cctx);
    if (!c->srv || !c->cli)
        return -1;
    wolfSSL_SetIOReadCtx(c->srv, &c->io);
    wolfSSL_SetIOWriteCtx(c->srv, &c->io);
    wolfSSL_SetIOReadCtx(c->cli, &c->io);
    wolfSSL_SetIOWriteCtx(c->cli, &c->io);
    for (int rounds = 0; rounds < 50 && !(sdone && cdone); rounds++) {
        if (!cdone) {
            int r = wolfSSL_connect(c->cli);
            if (r == WOLFSSL_SUCCESS)
                cdone = 1;
            else if (wolfSSL_get_error(c->cli, r) != WOLFSSL_ERROR_WANT_READ)
                return -1;
        }
        if (!sdone) {
            int r;

            counting_server = 1;
            t = cpu_now();
            r = wolfSSL_accept(srv_call(c->srv));
            *srv_cpu += cpu_now() - t;
            counting_server = 0;
            if (r == WOLFSSL_SUCCESS)
                sdone = 1;
            else if (wolfSSL_get_error(c->srv, r) != WOLFSSL_ERROR_WANT_READ)
                return -1;
        }
    }
    return sdone && cdone ? 0 : -1;
}

/* The server's half-open state (docs/SECURITY.md): the ClientHello with its cookie answered by
 * the server's flight, no ClientKeyExchange. 0 or -1. */
static int half_open(WOLFSSL_CTX *sctx, WOLFSSL_CTX *cctx, struct conn *c)
{
    memset(&c->io, 0, sizeof(c->io));
    counting_server = 1;
    c->srv = wolfSSL_new(sctx);
    counting_server = 0;
    c->cli = wolfSSL_new(cctx);
    if (!c->srv || !c->cli)
        return -1;
    wolfSSL_SetIOReadCtx(c->srv, &c->io);
    wolfSSL_SetIOWriteCtx(c->srv, &c->io);
    wolfSSL_SetIOReadCtx(c->cli, &c->io);
    wolfSSL_SetIOWriteCtx(c->cli, &c->io);
    /* ClientHello -> HelloVerifyRequest, ClientHello with the cookie -> ServerHelloDone */
    for (int round = 0; round < 2; round++) {
        int r = wolfSSL_connect(c->cli);

        if (r == WOLFSSL_SUCCESS || wolfSSL_get_error(c->cli, r) != WOLFSSL_ERROR_WANT_READ)
            return -1;
        counting_server = 1;
        r = wolfSSL_accept(srv_call(c->srv));
        counting_server = 0;
        if (r == WOLFSSL_SUCCESS || wolfSSL_get_error(c->srv, r) != WOLFSSL_ERROR_WANT_READ)
            return -1;
    }
    return c->io.to_client.count > 0 ? 0 : -1;
}

/* n application records client -> server (n <= BATCH), the server's reads timed as one block
 * so the clock's own cost does not count; server CPU added to *srv_cpu. 0 or -1. */
static int records_batch(struct conn *c, const unsigned char *msg, int len, int n, double *srv_cpu)
{
    char buf[256];
    double t;
    int ok = 1;

    for (int i = 0; i < n; i++)
        if (wolfSSL_write(c->cli, msg, len) != len)
            return -1;
    counting_server = 1;
    t = cpu_now();
    for (int i = 0; i < n; i++)
        ok &= wolfSSL_read(srv_call(c->srv), buf, sizeof(buf)) == len;
    *srv_cpu += cpu_now() - t;
    counting_server = 0;
    return ok ? 0 : -1;
}

/* n application records server -> client (n <= BATCH), the server's writes timed as one block;
 * server CPU added to *srv_cpu. 0 or -1. */
static int records_out_batch(struct conn *c, const unsigned char *msg, int len, int n,
                             double *srv_cpu)
{
    char buf[256];
    double t;
    int ok = 1;

    counting_server = 1;
    t = cpu_now();
    for (int i = 0; i < n; i++)
        ok &= wolfSSL_write(c->srv, msg, len) == len;
    *srv_cpu += cpu_now() - t;
    counting_server = 0;
    for (int i = 0; i < n; i++)
        if (wolfSSL_read(c->cli, buf, sizeof(buf)) != len)
            return -1;
    return ok ? 0 : -1;
}

/* Frees both objects; adds the server object's free to *srv_cpu when srv_cpu is not NULL. */
static void conn_free(struct conn *c, double *srv_cpu)
{
    double t = cpu_now();

    counting_server = 1;
    server_free(c->srv);
    counting_server = 0;
    if (srv_cpu)
        *srv_cpu += cpu_now() - t;
    wolfSSL_free(c->cli);
    c->srv = c->cli = NULL;
}

struct args {
    long handshakes, records, sessions;
    const char *cipher;
};

/* 0, or the exit status for a bad command line. */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = { { "handshakes", required_argument, NULL, 'h' },
                                          { "records", required_argument, NULL, 'r' },
                                          { "sessions", required_argument, NULL, 's' },
                                          { "cipher", required_argument, NULL, 'c' },
                                          { NULL, 0, NULL, 0 } };
    int opt;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        long v = 0;

        if (opt != 'c') {
            v = strtol(optarg, &end, 10);
            if (!end || *end || v < 1 || v > 10000000) {
                fprintf(stderr, "wolfpair: bad number \"%s\"\n", optarg);
                return 2;
            }
        }
        switch (opt) {
        case 'h':
            a->handshakes = v;
            break;
        case 'r':
            a->records = v;
            break;
        case 's':
            a->sessions = v;
            break;
        case 'c':
            a->cipher = optarg;
            break;
        default:
            fprintf(stderr, "usage: pskgw-wolfpair [--handshakes N] [--records N] "
                            "[--sessions N] [--cipher NAME]\n");
            return 2;
        }
    }
    return 0;
}

/* Heap held per half-open and per established server session, n of each at once (the pool's
 * blocks returned first: they belong to no session), with their blocks by size on stderr.
 * 0 or -1. */
static int measure_memory(WOLFSSL_CTX *sctx, WOLFSSL_CTX *cctx, const unsigned char *msg, int len,
                          long sessions, long long *per_half_open, long long *per_session)
{
    struct conn *held = calloc((size_t)sessions, sizeof(*held));
    long long before;

    if (!held)
        return -1;
    pskgw_wolfmem_trim();
    before = live_server;
    for (long i = 0; i < sessions; i++) {
        if (half_open(sctx, cctx, &held[i]) != 0) {
            fprintf(stderr, "wolfpair: half-open session %ld failed\n", i);
            return -1;
        }
        wolfSSL_free(held[i].cli);
        held[i].cli = NULL;
    }
    pskgw_wolfmem_trim();
    *per_half_open = (live_server - before) / sessions;
    breakdown("half-open", sessions);
    for (long i = 0; i < sessions; i++)
        conn_free(&held[i], NULL);
    pskgw_wolfmem_trim();
    before = live_server;
    for (long i = 0; i < sessions; i++) {
        double ignored = 0;

        if (handshake(sctx, cctx, &held[i], &ignored) != 0 ||
            records_batch(&held[i], msg, len, 1, &ignored) != 0)
            return -1;
        counting_server = 1;
        wolfSSL_FreeArrays(held[i].srv);
        counting_server = 0;
        /* The client object is not part of the server's cost: drop it now. */
        wolfSSL_free(held[i].cli);
        held[i].cli = NULL;
    }
    pskgw_wolfmem_trim();
    *per_session = (live_server - before) / sessions;
    breakdown("established", sessions);
    for (long i = 0; i < sessions; i++)
        conn_free(&held[i], NULL);
    free(held);
    return 0;
}

/* The server and client contexts of the pair, for cipher: 0, or 1 after saying why on stderr
 * (main then ends the process). */
static int make_contexts(const char *cipher, WOLFSSL_CTX **sctx, WOLFSSL_CTX **cctx)
{
    *sctx = wolfSSL_CTX_new(wolfDTLSv1_2_server_method());
    *cctx = wolfSSL_CTX_new(wolfDTLSv1_2_client_method());
    if (!*sctx || !*cctx || wolfSSL_CTX_set_cipher_list(*sctx, cipher) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_cipher_list(*cctx, cipher) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "wolfpair: cipher \"%s\" not available in this build\n", cipher);
        return 1;
    }
    wolfSSL_CTX_set_psk_server_callback(*sctx, srv_psk);
    wolfSSL_CTX_set_psk_client_callback(*cctx, cli_psk);
    wolfSSL_CTX_SetIORecv(*sctx, srv_recv);
    wolfSSL_CTX_SetIOSend(*sctx, srv_send);
    wolfSSL_CTX_SetIORecv(*cctx, cli_recv);
    wolfSSL_CTX_SetIOSend(*cctx, cli_send);
    wolfSSL_CTX_SetGenCookie(*sctx, gen_cookie);
    /* Like for like with the gateway's context (dtls/ctx.c): one DRBG for every server session
     * (not wc_InitRng per wolfSSL_new), and each flight grouped into one datagram. */
    if (wolfSSL_CTX_new_rng(*sctx) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_group_messages(*sctx) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "wolfpair: the gateway's context settings are not available\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = { 2000, 200000, 1000, "PSK-AES128-CCM8" };
    long handshakes, records, sessions;
    const char *cipher;
    WOLFSSL_CTX *sctx, *cctx;
    struct conn c;
    unsigned char msg[64];
    double hs_cpu = 0, rec_cpu = 0, enc_cpu = 0;
    long long per_session = 0, per_half_open = 0;
    int rc = parse_args(argc, argv, &a);

    if (rc != 0)
        return rc;
    handshakes = a.handshakes;
    records = a.records;
    sessions = a.sessions;
    cipher = a.cipher;
    wolfSSL_SetAllocators(cnt_malloc, cnt_free, cnt_realloc);
    wolfSSL_Init();
    if (make_contexts(cipher, &sctx, &cctx) != 0)
        return 1;
    memset(msg, 'x', sizeof(msg));

    for (long i = 0; i < handshakes; i++) {
        if (handshake(sctx, cctx, &c, &hs_cpu) != 0) {
            fprintf(stderr, "wolfpair: handshake %ld failed\n", i);
            return 1;
        }
        conn_free(&c, &hs_cpu);
    }
    double dgrams_in = handshakes > 0 ? (double)dgrams_to_server / (double)handshakes : 0;
    double dgrams_out = handshakes > 0 ? (double)dgrams_to_client / (double)handshakes : 0;
    if (handshake(sctx, cctx, &c, &hs_cpu) != 0)
        return 1;
    long long allocs0 = allocs_server;
    for (long i = 0; i < records; i += BATCH) {
        int n = records - i < BATCH ? (int)(records - i) : BATCH;

        if (records_batch(&c, msg, (int)sizeof(msg), n, &rec_cpu) != 0) {
            fprintf(stderr, "wolfpair: record %ld failed\n", i);
            return 1;
        }
    }
    /* wolfSSL's own heap calls per record, server side (its I/O buffers: docs/WOLFSSL.md). */
    double allocs_in = records > 0 ? (double)(allocs_server - allocs0) / (double)records : 0;
    allocs0 = allocs_server;
    for (long i = 0; i < records; i += BATCH) {
        int n = records - i < BATCH ? (int)(records - i) : BATCH;

        if (records_out_batch(&c, msg, (int)sizeof(msg), n, &enc_cpu) != 0) {
            fprintf(stderr, "wolfpair: outgoing record %ld failed\n", i);
            return 1;
        }
    }
    double allocs_out = records > 0 ? (double)(allocs_server - allocs0) / (double)records : 0;
    conn_free(&c, NULL);

    if (measure_memory(sctx, cctx, msg, (int)sizeof(msg), sessions, &per_half_open, &per_session) !=
        0)
        return 1;
    fprintf(stderr, "wolfSSL %s, %s\n", wolfSSL_lib_version(), cipher);
    fprintf(stderr, "  handshakes/s of server CPU: %.0f (%ld)\n", handshakes / hs_cpu, handshakes);
    fprintf(stderr, "  datagrams per handshake: %.2f to the server, %.2f from it\n", dgrams_in,
            dgrams_out);
    fprintf(stderr, "  64-byte records decrypted/s of server CPU: %.0f (%ld)\n", records / rec_cpu,
            records);
    fprintf(stderr, "  64-byte records encrypted/s of server CPU: %.0f (%ld)\n", records / enc_cpu,
            records);
    fprintf(stderr, "  wolfSSL allocations per record: %.2f decrypted, %.2f encrypted\n", allocs_in,
            allocs_out);
    fprintf(stderr, "  heap per established server session: %lld bytes (%ld sessions)\n",
            per_session, sessions);
    fprintf(stderr, "  heap per half-open server session: %lld bytes\n", per_half_open);
    printf("{\"wolfssl\":\"%s\",\"cipher\":\"%s\",\"handshakes\":%ld,\"handshakes_per_cpu_s\":%.0f,"
           "\"records\":%ld,\"records_per_cpu_s\":%.0f,\"records_encrypted_per_cpu_s\":%.0f,"
           "\"allocs_per_record_decrypted\":%.2f,\"allocs_per_record_encrypted\":%.2f,"
           "\"heap_per_session_bytes\":%lld,\"heap_per_half_open_bytes\":%lld,\"sessions\":%ld,"
           "\"datagrams_per_handshake_in\":%.2f,\"datagrams_per_handshake_out\":%.2f}\n",
           wolfSSL_lib_version(), cipher, handshakes, handshakes / hs_cpu, records,
           records / rec_cpu, records / enc_cpu, allocs_in, allocs_out, per_session, per_half_open,
           sessions, dgrams_in, dgrams_out);
    wolfSSL_CTX_free(sctx);
    wolfSSL_CTX_free(cctx);
    wolfSSL_Cleanup();
    return 0;
}
