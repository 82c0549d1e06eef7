/* A session taken over through Redis never reuses a record sequence number: an established
 * dtls session (a wolfSSL client through memory queues, tests/unit/dtls/pair.c) is exported, its
 * record stored by one node (gateway/sessredis.c, a real redis-server) and taken by another,
 * imported into a new context: the client's next record is delivered with no handshake and the
 * server's next record is written at least PSKGW_DTLS_SEQ_JUMP past the last one the client saw
 * (the AES-CCM nonce is never used twice); the same record cannot be taken a second time. */
#include "pair.h"

#include "common/err.h"
#include "common/wipe.h"
#include "gateway/sessredis.h"
#include "loopwait.h"
#include "proc.h"
#include "redistest.h"
#include "sessfix.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define ID  "11010008002F33244B115B0AEEB9"
#define PSK "E5DE45B367DB690F2E17CF9D80A18E87"
#define UID "A1B2C3D4E5F60718"

static const uint8_t KEY[32] = { 7 };
static pskgw_test_proc_t redis = { -1, -1 };
static int port;
static uv_loop_t loop;

static void cli_says(tpair_t *p, const char *msg)
{
    cr_assert_eq(wolfSSL_write(p->cli, msg, (int)strlen(msg)), (int)strlen(msg));
    tpair_pump(p);
}

/* The server writes msg: the 48-bit sequence number of its record (the client reads msg). */
static uint64_t srv_says(tpair_t *p, const char *msg)
{
    char buf[64];
    const uint8_t *d;
    uint64_t seq = 0;

    cr_assert_eq(pskgw_dtls_session_write(p->srv, (const uint8_t *)msg, strlen(msg)), 0);
    cr_assert_eq(p->to_client.count, 1);
    d = p->to_client.data[p->to_client.head];
    for (int i = 5; i < 11; i++)
        seq = seq << 8 | d[i];
    cr_assert_eq(wolfSSL_read(p->cli, buf, sizeof(buf) - 1), (int)strlen(msg), "%s", msg);
    return seq;
}

typedef struct {
    int calls, status;
    uint8_t *rec;
    size_t len;
} got_t;

static void on_got(void *arg, int status, const uint8_t *rec, size_t len)
{
    got_t *g = arg;

    g->calls++;
    g->status = status;
    if (status == 0) {
        g->rec = malloc(len);
        cr_assert_not_null(g->rec);
        memcpy(g->rec, rec, len);
        g->len = len;
    }
}

static pskgw_sessredis_t *node(const char *id)
{
    pskgw_sessredis_t *r = sessfix_node(&loop, id, port, KEY);

    cr_assert(hrun_until(&loop, sessfix_connected, r, 10000));
    return r;
}

static void start(void)
{
    cr_assert_eq(pskgw_test_redis_start(&redis, &port), 0, "redis-server did not start");
    cr_assert_eq(uv_loop_init(&loop), 0);
}

static void stop(void)
{
    if (redis.pid > 0)
        pskgw_test_stop(&redis, SIGTERM, 10000);
}

Test(sessredis_import, a_session_taken_over_jumps_its_write_sequence, .init = start, .fini = stop,
     .timeout = 60)
{
    tres_t r;
    tpair_t p;
    pskgw_dtls_ctx_t *c = tpair_dtls_ctx(), *c2 = tpair_dtls_ctx();
    pskgw_sessredis_t *a = node("node-a"), *b = node("node-b");
    pskgw_dtls_session_t *old;
    got_t g = { 0 }, g2 = { 0 };
    uint8_t *rec = NULL;
    size_t len = 0;
    uint64_t s1, s3;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert_eq(p.established, 1);
    cli_says(&p, "one");
    s1 = srv_says(&p, "ack1");
    /* Node a hibernates the session, stores it, and is lost. (Had a thawed it and written
     * again, its own thaw would have jumped from the same record: that is why a node deletes
     * the stored copy of a session that thaws where it is, pskgw_listen_sessredis_thawed.) */
    cr_assert_eq(pskgw_dtls_session_export(p.srv, p.now, &rec, &len), 0);
    cr_assert_eq(pskgw_sessredis_store(a, "dtls", "127.1.0.1:4000", NULL, 0, rec, len, 30000, NULL),
                 0);
    pskgw_wipe(rec, len);
    free(rec);
    cr_assert(sessfix_wait_stores(&loop, a, 1));
    old = p.srv;
    p.srv = NULL;
    pskgw_dtls_session_free(old);

    /* Node b takes it from Redis and imports it into its own context. */
    cr_assert_eq(pskgw_sessredis_lookup(b, "dtls", "127.1.0.1:4000", on_got, &g, NULL), 0);
    cr_assert(hrun_until_count(&loop, &g.calls, 1));
    cr_assert_eq(g.status, 0, "%s", pskgw_strerror(g.status));
    cr_assert_eq(pskgw_dtls_session_import(c2, &r.iface, tpair_server_cbs(), &p, g.rec, g.len,
                                           p.now, &p.srv),
                 0);
    pskgw_wipe(g.rec, g.len);
    free(g.rec);
    cli_says(&p, "two");
    cr_assert_eq(p.nmsgs, 2, "delivered on the taken-over session");
    cr_assert_str_eq(p.msgs[1], "two");
    s3 = srv_says(&p, "ack4");
    cr_assert_geq(s3, s1 + PSKGW_DTLS_SEQ_JUMP, "imported: %llu after the record's %llu",
                  (unsigned long long)s3, (unsigned long long)s1);
    cr_assert_eq(p.established, 1, "no new handshake");

    /* Taken once: a second lookup (another node) finds nothing to import. */
    cr_assert_eq(pskgw_sessredis_lookup(a, "dtls", "127.1.0.1:4000", on_got, &g2, NULL), 0);
    cr_assert(hrun_until_count(&loop, &g2.calls, 1));
    cr_expect_eq(g2.status, PSKGW_ENOTFOUND);

    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
    pskgw_dtls_ctx_free(c2);
    pskgw_sessredis_close(a, NULL, NULL);
    pskgw_sessredis_close(b, NULL, NULL);
    cr_expect_eq(hloop_finish(&loop), 0);
}
