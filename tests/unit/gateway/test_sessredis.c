/* gateway/sessredis: the sealing (pure: round trip under both names, any other domain,
 * listener, name, key or byte refused) and the store against a real redis-server: a record
 * stored under its address and Connection ID with the session's TTL, found once (its keys
 * deleted, the lease held under the node's id), refused to a second node while the lease lives,
 * a miss, forget (after a CID move too), a cancelled lookup, stores past the bound dropped and
 * counted, and nothing done while Redis is not connected. Every test ends with no handle left
 * open (hloop_finish). */
#define _GNU_SOURCE /* memmem */
#include "common/err.h"
#include "gateway/sessredis.h"
#include "loopwait.h"
#include "sessfix.h"
#include "proc.h"
#include "redistest.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static const uint8_t KEY[32] = { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t REC[] = "a listener's record: sockaddr and the dtls session's export";
static const uint8_t CID[] = { 0x00, 0xab, 0xcd, 0xef };

/* ---- sealing ------------------------------------------------------------------------------ */

static int open_as(const uint8_t *key, const char *d, const char *l, const char *name,
                   const uint8_t *sealed, size_t n, const char **peer, const char **cid)
{
    static char names[2 * (PSKGW_SESSREDIS_NAME_MAX + 1)];
    uint8_t *plain = NULL;
    size_t plain_len = 0, rec_len = 0;
    const uint8_t *rec = NULL;
    int rc = pskgw_sessredis_open(key, d, l, name, sealed, n, &plain, &plain_len, names, peer, cid,
                                  &rec, &rec_len);

    if (rc == 0) {
        cr_expect_eq(rec_len, sizeof(REC));
        cr_expect_eq(memcmp(rec, REC, sizeof(REC)), 0);
        pskgw_sessredis_plain_free(plain, plain_len);
    }
    return rc;
}

Test(sessredis_seal, round_trip_under_both_names)
{
    char cname[64];
    uint8_t *s = NULL;
    size_t n = 0;
    const char *peer = NULL, *cid = NULL;

    cr_assert_eq(pskgw_sessredis_cid_name(CID, sizeof(CID), cname, sizeof(cname)), 12);
    cr_assert_str_eq(cname, "cid:00abcdef");
    cr_assert_eq(pskgw_sessredis_seal(KEY, "acme", "dtls", "127.1.0.1:4000", "127.1.0.1:4000",
                                      cname, REC, sizeof(REC), &s, &n),
                 0);
    cr_assert_eq(n, sizeof(REC) + PSKGW_SESSREDIS_SEAL_OVERHEAD + strlen("127.1.0.1:4000") +
                        strlen(cname));
    cr_assert_null(memmem(s, n, REC, 16), "the record is not in the clear");
    cr_assert_eq(open_as(KEY, "acme", "dtls", "127.1.0.1:4000", s, n, &peer, &cid), 0);
    cr_expect_str_eq(peer, "127.1.0.1:4000");
    cr_expect_str_eq(cid, "cid:00abcdef");
    free(s);
    /* Under the CID name: the value stored under that key. */
    cr_assert_eq(pskgw_sessredis_seal(KEY, "acme", "dtls", cname, "127.1.0.1:4000", cname, REC,
                                      sizeof(REC), &s, &n),
                 0);
    cr_assert_eq(open_as(KEY, "acme", "dtls", cname, s, n, &peer, &cid), 0);
    cr_expect_str_eq(peer, "127.1.0.1:4000");
    free(s);
}

Test(sessredis_seal, refuses_another_domain_listener_name_key_or_byte)
{
    uint8_t *s = NULL, other[32];
    size_t n = 0;
    const char *peer, *cid;

    memcpy(other, KEY, sizeof(other));
    other[31] ^= 1;
    cr_assert_eq(pskgw_sessredis_seal(KEY, "acme", "dtls", "127.1.0.1:4000", "127.1.0.1:4000", NULL,
                                      REC, sizeof(REC), &s, &n),
                 0);
    cr_expect_eq(open_as(KEY, "other", "dtls", "127.1.0.1:4000", s, n, &peer, &cid), PSKGW_EPARSE);
    cr_expect_eq(open_as(KEY, "acme", "dtls2", "127.1.0.1:4000", s, n, &peer, &cid), PSKGW_EPARSE);
    cr_expect_eq(open_as(KEY, "acme", "dtls", "127.1.0.1:4001", s, n, &peer, &cid), PSKGW_EPARSE);
    cr_expect_eq(open_as(other, "acme", "dtls", "127.1.0.1:4000", s, n, &peer, &cid), PSKGW_EPARSE);
    for (size_t i = 0; i < n; i += 7) {
        s[i] ^= 0x40;
        cr_expect_eq(open_as(KEY, "acme", "dtls", "127.1.0.1:4000", s, n, &peer, &cid),
                     PSKGW_EPARSE, "byte %zu changed", i);
        s[i] ^= 0x40;
    }
    cr_expect_eq(open_as(KEY, "acme", "dtls", "127.1.0.1:4000", s, n - 1, &peer, &cid),
                 PSKGW_EPARSE);
    cr_expect_eq(open_as(KEY, "acme", "dtls", "127.1.0.1:4000", s, 20, &peer, &cid), PSKGW_EPARSE);
    cr_expect_eq(open_as(KEY, "acme", "dtls", "127.1.0.1:4000", s, n, &peer, &cid), 0);
    free(s);
}

Test(sessredis_seal, a_value_sealed_under_a_name_it_does_not_hold_is_refused)
{
    uint8_t *s = NULL;
    size_t n = 0;
    const char *peer, *cid;

    /* Sealed (authentic) under the key of another peer than the one inside: never imported
     * there, where it would take the address of that peer. */
    cr_assert_eq(pskgw_sessredis_seal(KEY, "acme", "dtls", "127.9.9.9:1", "127.1.0.1:4000", NULL,
                                      REC, sizeof(REC), &s, &n),
                 0);
    cr_expect_eq(open_as(KEY, "acme", "dtls", "127.9.9.9:1", s, n, &peer, &cid), PSKGW_EPARSE);
    free(s);
    cr_expect_eq(pskgw_sessredis_seal(KEY, "acme", "dtls", "p", "", NULL, REC, sizeof(REC), &s, &n),
                 PSKGW_EINVAL);
    cr_expect_eq(pskgw_sessredis_seal(KEY, "acme", "dtls", "p", "p", NULL, REC, 0, &s, &n),
                 PSKGW_EINVAL);
}

/* ---- the store on a real Redis -------------------------------------------------------------- */

static pskgw_test_proc_t redis = { -1, -1 };
static int port;
static uv_loop_t loop;

typedef struct {
    int calls, status;
    uint8_t rec[256];
    size_t len;
} res_t;

static void on_res(void *arg, int status, const uint8_t *rec, size_t len)
{
    res_t *r = arg;

    r->calls++;
    r->status = status;
    if (status == 0 && rec != NULL && len <= sizeof(r->rec)) { /* a claim: no record */
        memcpy(r->rec, rec, len);
        r->len = len;
    }
}

static void start_redis(void)
{
    cr_assert_eq(pskgw_test_redis_start(&redis, &port), 0, "redis-server did not start");
    cr_assert_eq(uv_loop_init(&loop), 0);
}

static void stop_all(void)
{
    if (redis.pid > 0) {
        (void)kill(redis.pid, SIGCONT); /* a test that stopped it and failed */
        pskgw_test_stop(&redis, SIGTERM, 10000);
    }
}

static int closed;
static void on_closed(void *arg)
{
    (void)arg;
    closed++;
}

static long long redis_int(const char *cmd, const char *key)
{
    return pskgw_test_redis_int(port, NULL, 0, cmd, key);
}

static void get_str(const char *key, char *out, size_t cap)
{
    redisContext *c = pskgw_test_redis_connect(port, NULL, 0);
    redisReply *r = redisCommand(c, "GET %s", key);

    cr_assert_not_null(r);
    out[0] = '\0';
    if (r->type == REDIS_REPLY_STRING)
        snprintf(out, cap, "%s", r->str);
    freeReplyObject(r);
    redisFree(c);
}

Test(sessredis_store, found_once_then_leased_and_refused_to_another_node, .init = start_redis,
     .fini = stop_all, .timeout = 60)
{
    pskgw_sessredis_t *a = sessfix_node(&loop, "node-a", port, KEY),
                      *b = sessfix_node(&loop, "node-b", port, KEY);
    pskgw_sessredis_stats_t st;
    res_t r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
    char holder[64];

    cr_assert(hrun_until(&loop, sessfix_connected, a, 10000));
    cr_assert(hrun_until(&loop, sessfix_connected, b, 10000));
    cr_assert_eq(pskgw_sessredis_store(a, "dtls", "127.1.0.1:4000", CID, sizeof(CID), REC,
                                       sizeof(REC), 50000, NULL),
                 0);
    cr_assert(sessfix_wait_stores(&loop, a, 2));
    pskgw_sessredis_stats(a, &st);
    cr_expect_eq(st.stores, 2, "under the address and the CID");
    cr_expect_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:127.1.0.1:4000"), 1);
    cr_expect_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:cid:00abcdef"), 1);
    cr_expect(redis_int("PTTL", "pskgw:sess:acme:dtls:127.1.0.1:4000") > 0);
    cr_expect(redis_int("PTTL", "pskgw:sess:acme:dtls:127.1.0.1:4000") <= 50000);

    /* Node b takes it by its CID: the record, the lease in b's name, both keys gone. */
    cr_assert_eq(pskgw_sessredis_lookup(b, "dtls", "cid:00abcdef", on_res, &r1, NULL), 0);
    cr_assert(hrun_until_count(&loop, &r1.calls, 1));
    cr_assert_eq(r1.status, 0, "%s", pskgw_strerror(r1.status));
    cr_expect_eq(r1.len, sizeof(REC));
    cr_expect_eq(memcmp(r1.rec, REC, sizeof(REC)), 0);
    get_str("pskgw:lease:acme:dtls:127.1.0.1:4000", holder, sizeof(holder));
    cr_expect_str_eq(holder, "node-b");
    cr_expect(redis_int("PTTL", "pskgw:lease:acme:dtls:127.1.0.1:4000") > 0);
    /* The DEL went out before the lease's reply came back: one connection, in order. */
    cr_expect_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:127.1.0.1:4000"), 0);
    cr_expect_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:cid:00abcdef"), 0);

    /* Gone: a miss. Stored again (by a), the lease still held by b: refused to a. */
    cr_assert_eq(pskgw_sessredis_lookup(a, "dtls", "127.1.0.1:4000", on_res, &r2, NULL), 0);
    cr_assert(hrun_until_count(&loop, &r2.calls, 1));
    cr_expect_eq(r2.status, PSKGW_ENOTFOUND);
    cr_assert_eq(
        pskgw_sessredis_store(a, "dtls", "127.1.0.1:4000", NULL, 0, REC, sizeof(REC), 50000, NULL),
        0);
    cr_assert_eq(pskgw_sessredis_lookup(a, "dtls", "127.1.0.1:4000", on_res, &r3, NULL), 0);
    cr_assert(hrun_until_count(&loop, &r3.calls, 1));
    cr_expect_eq(r3.status, PSKGW_EBUSY);
    pskgw_sessredis_stats(a, &st);
    cr_expect_eq(st.misses, 1);
    cr_expect_eq(st.refused, 1);
    cr_expect_eq(st.leases, 0);
    pskgw_sessredis_stats(b, &st);
    cr_expect_eq(st.hits, 1);
    cr_expect_eq(st.leases, 1);

    /* forget: the node went on with it; nobody may take it. */
    cr_assert_eq(pskgw_sessredis_forget(a, "dtls", "127.1.0.1:4000", NULL, 0), 0);
    r2.calls = 0;
    cr_assert_eq(pskgw_sessredis_lookup(b, "dtls", "127.1.0.1:4000", on_res, &r2, NULL), 0);
    cr_assert(hrun_until_count(&loop, &r2.calls, 1));
    cr_expect_eq(r2.status, PSKGW_ENOTFOUND);

    pskgw_sessredis_close(a, on_closed, NULL);
    pskgw_sessredis_close(b, on_closed, NULL);
    cr_expect_eq(hloop_finish(&loop), 0);
    cr_expect_eq(closed, 2);
}

/* A CID session stored from one address that thaws on the same node from another (it moved):
 * the forget names the new address and the CID; the key of the address it was stored under goes
 * too (it used to stay until its TTL, importable by a node that got a record from the old
 * address). */
Test(sessredis_store, forget_after_a_cid_move_deletes_the_old_address_key, .init = start_redis,
     .fini = stop_all, .timeout = 60)
{
    pskgw_sessredis_t *a = sessfix_node(&loop, "node-a", port, KEY);
    res_t r1 = { 0 }, r2 = { 0 };

    cr_assert(hrun_until(&loop, sessfix_connected, a, 10000));
    cr_assert_eq(pskgw_sessredis_store(a, "dtls", "127.1.0.1:4000", CID, sizeof(CID), REC,
                                       sizeof(REC), 50000, NULL),
                 0);
    cr_assert(sessfix_wait_stores(&loop, a, 2));
    cr_assert_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:127.1.0.1:4000"), 1);
    cr_assert_eq(pskgw_sessredis_forget(a, "dtls", "127.1.0.9:5000", CID, sizeof(CID)), 0);
    /* Two misses in turn on the same connection: the second goes out after every command the
     * forget's replies started (a lookup of the old address would take it and delete it). */
    cr_assert_eq(pskgw_sessredis_lookup(a, "dtls", "127.1.0.99:1", on_res, &r1, NULL), 0);
    cr_assert(hrun_until_count(&loop, &r1.calls, 1));
    cr_assert_eq(pskgw_sessredis_lookup(a, "dtls", "127.1.0.99:2", on_res, &r2, NULL), 0);
    cr_assert(hrun_until_count(&loop, &r2.calls, 1));
    cr_expect_eq(r2.status, PSKGW_ENOTFOUND);
    cr_expect_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:127.1.0.1:4000"), 0,
                 "the address the session was stored under is still there");
    cr_expect_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:cid:00abcdef"), 0);

    pskgw_sessredis_close(a, on_closed, NULL);
    cr_expect_eq(hloop_finish(&loop), 0);
    cr_expect_eq(closed, 1);
}

/* A hibernation sweep's stores are bounded: past the held commands' bound a store is dropped,
 * counted, all its names or none; DELs and lookups keep their reserve, and past it they are
 * refused too. (Unbounded, 100k sessions hibernating in one sweep put 200k SETs in hiredis'
 * buffer at once.) Both drops are read as the admin endpoint serves them:
 * pskgw_sessions_redis_dropped_total{command="store|other"} (before it, a dropped store was
 * only part of _store_errors_total and a dropped DEL nowhere). */
static void expect_metric(const pskgw_sessredis_t *r, const char *line)
{
    pskgw_metrics_t m;

    pskgw_metrics_init(&m);
    pskgw_sessredis_metrics_families(&m);
    pskgw_sessredis_metrics_sample(r, "acme", &m);
    cr_expect_eq(m.failed, 0);
    cr_expect_not_null(strstr(m.text, line), "no \"%s\" in:\n%s", line, m.text);
    pskgw_metrics_deinit(&m);
}

Test(sessredis_store, stores_past_the_bound_are_dropped_and_counted, .init = start_redis,
     .fini = stop_all, .timeout = 60)
{
    pskgw_sessredis_opts_t o = { .domain = "acme",
                                 .node_id = "node-a",
                                 .host = "127.0.0.1",
                                 .port = (uint16_t)port,
                                 .timeout_ms = 20000,
                                 .lease_ms = 60000,
                                 .key = KEY,
                                 .max_in_flight = 1,
                                 .max_held = 4 };
    uint8_t cid2[] = { 2, 2, 2, 2 }, cid3[] = { 3, 3, 3, 3 };
    pskgw_sessredis_t *a = NULL;
    pskgw_sessredis_stats_t st;
    int rc, dels = 0;

    cr_assert_eq(pskgw_sessredis_new(&loop, &o, &a), 0);
    cr_assert(hrun_until(&loop, sessfix_connected, a, 10000));
    /* One store answered: past the connection's gate (everything is held until it), so that the
     * next SET goes out and the counts below do not depend on when Redis answered the gate. */
    cr_assert_eq(
        pskgw_sessredis_store(a, "dtls", "127.1.0.9:9", NULL, 0, REC, sizeof(REC), 50000, NULL), 0);
    cr_assert(sessfix_wait_stores(&loop, a, 1));
    cr_assert_eq(kill(redis.pid, SIGSTOP), 0); /* no reply: one SET in flight, the rest held */
    cr_assert_eq(pskgw_sessredis_store(a, "dtls", "127.1.0.1:1", CID, sizeof(CID), REC, sizeof(REC),
                                       50000, NULL),
                 0);
    cr_assert_eq(pskgw_sessredis_store(a, "dtls", "127.1.0.2:2", cid2, sizeof(cid2), REC,
                                       sizeof(REC), 50000, NULL),
                 0);
    cr_expect_eq(pskgw_sessredis_store(a, "dtls", "127.1.0.3:3", cid3, sizeof(cid3), REC,
                                       sizeof(REC), 50000, NULL),
                 PSKGW_EBUSY, "held: 3 of 4, a store with a CID needs 2");
    cr_expect_eq(pskgw_sessredis_forget(a, "dtls", "127.1.0.50:1", NULL, 0), 0,
                 "a DEL goes into the reserve");
    /* held: 4 (max_held) + the reserve's 1024 at most, 4 taken: DELs fill the rest, then one is
     * refused */
    while ((rc = pskgw_sessredis_forget(a, "dtls", "127.1.1.1:1", NULL, 0)) == 0 &&
           dels < 2 * PSKGW_SESSREDIS_RESERVE)
        dels++;
    cr_expect_eq(rc, PSKGW_EBUSY);
    cr_expect_eq(dels, PSKGW_SESSREDIS_RESERVE, "the places left, then refused");
    expect_metric(a, "pskgw_sessions_redis_dropped_total{domain=\"acme\",command=\"store\"} 1\n");
    expect_metric(a, "pskgw_sessions_redis_dropped_total{domain=\"acme\",command=\"other\"} 1\n");
    expect_metric(a, "pskgw_sessions_redis_store_errors_total{domain=\"acme\"} 1\n");
    cr_assert_eq(kill(redis.pid, SIGCONT), 0);
    pskgw_sessredis_stats(a, &st);
    cr_expect_eq(st.store_dropped, 1);
    cr_expect_eq(st.cmd_dropped, 1);
    cr_expect_eq(st.store_errors, 1);
    cr_assert(sessfix_wait_stores(&loop, a, 6)); /* the first, 4 SETs + the drop */
    pskgw_sessredis_stats(a, &st);
    cr_expect_eq(st.stores, 5);
    cr_expect_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:127.1.0.2:2"), 1);
    cr_expect_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:cid:02020202"), 1);
    cr_expect_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:127.1.0.3:3"), 0);
    cr_expect_eq(redis_int("EXISTS", "pskgw:sess:acme:dtls:cid:03030303"), 0);

    pskgw_sessredis_close(a, on_closed, NULL);
    cr_expect_eq(hloop_finish(&loop), 0);
    cr_expect_eq(closed, 1);
}

Test(sessredis_store, a_value_under_another_key_does_not_open, .init = start_redis,
     .fini = stop_all, .timeout = 60)
{
    pskgw_sessredis_t *a = sessfix_node(&loop, "node-a", port, KEY);
    pskgw_sessredis_stats_t st;
    res_t r1 = { 0 };
    redisContext *c;
    redisReply *rp;

    cr_assert(hrun_until(&loop, sessfix_connected, a, 10000));
    cr_assert_eq(
        pskgw_sessredis_store(a, "dtls", "127.1.0.1:4000", NULL, 0, REC, sizeof(REC), 50000, NULL),
        0);
    cr_assert_eq(
        pskgw_sessredis_store(a, "dtls", "127.1.0.2:4000", NULL, 0, REC, sizeof(REC), 50000, NULL),
        0);
    cr_assert(sessfix_wait_stores(&loop, a, 2));
    /* Someone with write access to Redis copies one session's value under another address. */
    c = pskgw_test_redis_connect(port, NULL, 0);
    rp = redisCommand(c, "COPY pskgw:sess:acme:dtls:127.1.0.1:4000 "
                         "pskgw:sess:acme:dtls:127.1.0.2:4000 REPLACE");
    cr_assert_not_null(rp);
    freeReplyObject(rp);
    redisFree(c);
    cr_assert_eq(pskgw_sessredis_lookup(a, "dtls", "127.1.0.2:4000", on_res, &r1, NULL), 0);
    cr_assert(hrun_until_count(&loop, &r1.calls, 1));
    cr_expect_eq(r1.status, PSKGW_EPARSE);
    pskgw_sessredis_stats(a, &st);
    cr_expect_eq(st.bad, 1);
    cr_expect_eq(st.leases, 0, "no lease for a value that does not open");
    pskgw_sessredis_close(a, NULL, NULL);
    cr_expect_eq(hloop_finish(&loop), 0);
}

Test(sessredis_store, cancel_and_close_call_back_once, .init = start_redis, .fini = stop_all,
     .timeout = 60)
{
    pskgw_sessredis_t *a = sessfix_node(&loop, "node-a", port, KEY);
    pskgw_sessredis_req_t *q = NULL;
    res_t r1 = { 0 }, r2 = { 0 };

    cr_assert(hrun_until(&loop, sessfix_connected, a, 10000));
    cr_assert_eq(pskgw_sessredis_lookup(a, "dtls", "127.1.0.1:1", on_res, &r1, &q), 0);
    pskgw_sessredis_cancel(q);
    cr_expect_eq(r1.calls, 1);
    cr_expect_eq(r1.status, PSKGW_ECANCELED);
    cr_assert_eq(pskgw_sessredis_lookup(a, "dtls", "127.1.0.1:2", on_res, &r2, NULL), 0);
    pskgw_sessredis_close(a, on_closed, NULL);
    cr_expect_eq(r2.calls, 1);
    cr_expect_eq(r2.status, PSKGW_ECANCELED);
    cr_expect_eq(hloop_finish(&loop), 0);
    cr_expect_eq(r1.calls, 1, "the cancelled lookup never calls back again");
    cr_expect_eq(closed, 1);
}

Test(sessredis_store, without_a_connection_nothing_is_done, .timeout = 60)
{
    int fd, p = 0;
    pskgw_sessredis_t *a;
    pskgw_sessredis_stats_t st;
    res_t r1 = { 0 };

    cr_assert_eq(uv_loop_init(&loop), 0);
    fd = pskgw_test_reserve_port(0, &p); /* bound, never listening: connections refused */
    cr_assert(fd >= 0);
    a = sessfix_node(&loop, "node-a", p, KEY);
    cr_expect_eq(
        pskgw_sessredis_store(a, "dtls", "127.1.0.1:4000", NULL, 0, REC, sizeof(REC), 1000, NULL),
        PSKGW_EUNAVAIL);
    cr_expect_eq(pskgw_sessredis_lookup(a, "dtls", "127.1.0.1:4000", on_res, &r1, NULL),
                 PSKGW_EUNAVAIL);
    pskgw_sessredis_stats(a, &st);
    cr_expect_eq(st.store_errors, 1);
    cr_expect_eq(st.errors, 1);
    cr_expect_eq(r1.calls, 0);
    pskgw_sessredis_close(a, NULL, NULL);
    cr_expect_eq(hloop_finish(&loop), 0);
    close(fd);
}

/* ---- claims: a node that stored a session claims it before it thaws it ---------------------- */

/* What a claim's reply means: the script's integer, else unavailable. */
Test(sessredis_claim, reply_results)
{
    cr_expect_eq(pskgw_sessredis_claim_result(0, REDIS_REPLY_INTEGER, 1), 0);
    cr_expect_eq(pskgw_sessredis_claim_result(0, REDIS_REPLY_INTEGER, 2), 0, "both keys");
    cr_expect_eq(pskgw_sessredis_claim_result(0, REDIS_REPLY_INTEGER, 0), PSKGW_ENOTFOUND);
    cr_expect_eq(pskgw_sessredis_claim_result(0, REDIS_REPLY_INTEGER, -1), PSKGW_EBUSY);
    cr_expect_eq(pskgw_sessredis_claim_result(0, REDIS_REPLY_INTEGER, -7), PSKGW_ENOTFOUND);
    cr_expect_eq(pskgw_sessredis_claim_result(0, REDIS_REPLY_NIL, 0), PSKGW_EUNAVAIL);
    cr_expect_eq(pskgw_sessredis_claim_result(0, REDIS_REPLY_ERROR, 1), PSKGW_EUNAVAIL);
    cr_expect_eq(pskgw_sessredis_claim_result(0, REDIS_REPLY_STATUS, 1), PSKGW_EUNAVAIL);
    cr_expect_eq(pskgw_sessredis_claim_result(PSKGW_EUNAVAIL, 0, 0), PSKGW_EUNAVAIL);
    cr_expect_eq(pskgw_sessredis_claim_result(PSKGW_ECANCELED, 0, 0), PSKGW_ECANCELED);
}

static void set_str(const char *key, const char *value)
{
    redisContext *c = pskgw_test_redis_connect(port, NULL, 0);
    redisReply *r = redisCommand(c, "SET %s %s", key, value);

    cr_assert_not_null(r);
    freeReplyObject(r);
    redisFree(c);
}

static int claim(pskgw_sessredis_t *n, const uint8_t *cid, size_t cid_len, const uint8_t *stamp)
{
    res_t r = { 0 };

    cr_assert_eq(
        pskgw_sessredis_claim(n, "dtls", "127.1.0.1:4000", cid, cid_len, stamp, on_res, &r, NULL),
        0);
    cr_assert(hrun_until_count(&loop, &r.calls, 1));
    return r.status;
}

#define ADDR_KEY  "pskgw:sess:acme:dtls:127.1.0.1:4000"
#define CID_KEY   "pskgw:sess:acme:dtls:cid:00abcdef"
#define LEASE_KEY "pskgw:lease:acme:dtls:127.1.0.1:4000"

/* The claim takes the session only while the value under its address is the one this node
 * stored (its stamp) and no other node holds the lease; it then holds the lease and both keys
 * are gone. Taken by another node first, or replaced by another node's value since (that node
 * took it and hibernated it again, its lease perhaps expired): refused, nothing deleted. */
Test(sessredis_claim, won_only_on_the_value_this_node_stored, .init = start_redis, .fini = stop_all,
     .timeout = 60)
{
    pskgw_sessredis_t *a = sessfix_node(&loop, "node-a", port, KEY),
                      *b = sessfix_node(&loop, "node-b", port, KEY);
    uint8_t s1[PSKGW_SESSREDIS_STAMP_LEN], s2[PSKGW_SESSREDIS_STAMP_LEN],
        sb[PSKGW_SESSREDIS_STAMP_LEN];
    pskgw_sessredis_stats_t st;
    res_t r1 = { 0 };
    char holder[64];

    cr_assert(hrun_until(&loop, sessfix_connected, a, 10000));
    cr_assert(hrun_until(&loop, sessfix_connected, b, 10000));
    /* Stored, claimed: won, both keys gone, the lease a's. */
    cr_assert_eq(pskgw_sessredis_store(a, "dtls", "127.1.0.1:4000", CID, sizeof(CID), REC,
                                       sizeof(REC), 50000, s1),
                 0);
    cr_assert(sessfix_wait_stores(&loop, a, 2));
    cr_expect_eq(claim(a, CID, sizeof(CID), s1), 0);
    cr_expect_eq(redis_int("EXISTS", ADDR_KEY), 0);
    cr_expect_eq(redis_int("EXISTS", CID_KEY), 0);
    get_str(LEASE_KEY, holder, sizeof(holder));
    cr_expect_str_eq(holder, "node-a");
    /* Claimed again: nothing there any more (the first claim took it). */
    cr_expect_eq(claim(a, CID, sizeof(CID), s1), PSKGW_ENOTFOUND);

    /* Stored again (a new IV, its own lease still on it), taken by b: a's claim finds it gone. */
    cr_assert_eq(redis_int("DEL", LEASE_KEY), 1);
    cr_assert_eq(pskgw_sessredis_store(a, "dtls", "127.1.0.1:4000", CID, sizeof(CID), REC,
                                       sizeof(REC), 50000, s2),
                 0);
    cr_assert(sessfix_wait_stores(&loop, a, 4));
    cr_expect_neq(memcmp(s1, s2, sizeof(s1)), 0, "each store its own random IV");
    cr_assert_eq(pskgw_sessredis_lookup(b, "dtls", "cid:00abcdef", on_res, &r1, NULL), 0);
    cr_assert(hrun_until_count(&loop, &r1.calls, 1));
    cr_assert_eq(r1.status, 0, "%s", pskgw_strerror(r1.status));
    cr_expect_eq(claim(a, CID, sizeof(CID), s2), PSKGW_ENOTFOUND);

    /* b hibernated it and stored its own record, its lease gone: a's stale copy's claim
     * compares its own stamp and is refused (a claim on "any value" would have taken b's). */
    cr_assert_eq(redis_int("DEL", LEASE_KEY), 1);
    cr_assert_eq(pskgw_sessredis_store(b, "dtls", "127.1.0.1:4000", CID, sizeof(CID), REC,
                                       sizeof(REC), 50000, sb),
                 0);
    cr_assert(sessfix_wait_stores(&loop, b, 2));
    cr_expect_eq(claim(a, CID, sizeof(CID), s2), PSKGW_ENOTFOUND);
    cr_expect_eq(redis_int("EXISTS", ADDR_KEY), 1, "b's record stays");
    cr_expect_eq(redis_int("EXISTS", CID_KEY), 1);
    cr_expect_eq(redis_int("EXISTS", LEASE_KEY), 0, "a lost: no lease taken");

    /* A lease another node holds: refused, nothing deleted; b's own claim then wins. */
    set_str(LEASE_KEY, "node-c");
    cr_expect_eq(claim(b, CID, sizeof(CID), sb), PSKGW_EBUSY);
    cr_expect_eq(redis_int("EXISTS", ADDR_KEY), 1);
    cr_assert_eq(redis_int("DEL", LEASE_KEY), 1);
    cr_expect_eq(claim(b, CID, sizeof(CID), sb), 0);
    cr_expect_eq(redis_int("EXISTS", ADDR_KEY), 0);
    cr_expect_eq(redis_int("EXISTS", CID_KEY), 0);

    pskgw_sessredis_stats(a, &st);
    cr_expect_eq(st.claims_won, 1);
    cr_expect_eq(st.claims_gone, 3);
    cr_expect_eq(st.claims_held, 0);
    pskgw_sessredis_stats(b, &st);
    cr_expect_eq(st.claims_won, 1);
    cr_expect_eq(st.claims_held, 1);
    cr_expect_eq(st.hits, 1);
    expect_metric(a, "pskgw_sessions_redis_claims_total{domain=\"acme\",result=\"gone\"} 3");
    expect_metric(b, "pskgw_sessions_redis_claims_total{domain=\"acme\",result=\"held\"} 1");
    pskgw_sessredis_close(a, on_closed, NULL);
    pskgw_sessredis_close(b, on_closed, NULL);
    cr_expect_eq(hloop_finish(&loop), 0);
    cr_expect_eq(closed, 2);
}

/* A stamp not known (a state file of an earlier version): any value of the session is taken. */
Test(sessredis_claim, without_a_stamp_any_value_is_taken, .init = start_redis, .fini = stop_all,
     .timeout = 60)
{
    pskgw_sessredis_t *a = sessfix_node(&loop, "node-a", port, KEY);

    cr_assert(hrun_until(&loop, sessfix_connected, a, 10000));
    cr_assert_eq(
        pskgw_sessredis_store(a, "dtls", "127.1.0.1:4000", NULL, 0, REC, sizeof(REC), 50000, NULL),
        0);
    cr_assert(sessfix_wait_stores(&loop, a, 1));
    cr_expect_eq(claim(a, NULL, 0, NULL), 0);
    cr_expect_eq(redis_int("EXISTS", ADDR_KEY), 0);
    cr_expect_eq(claim(a, NULL, 0, NULL), PSKGW_ENOTFOUND);
    pskgw_sessredis_close(a, on_closed, NULL);
    cr_expect_eq(hloop_finish(&loop), 0);
    cr_expect_eq(closed, 1);
}
