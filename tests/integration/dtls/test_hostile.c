/* Hostile traffic against the UDP listener on real loopback sockets (issue 16): wrong keys
 * from one source never lock a device out, a replayed ClientHello ends no session, a few
 * sources cannot fill the session table, a flood of one failure cannot hide another in the
 * log. Sources are distinct 127.0.0.x addresses. */
#include "listenfix.h"
#include "srcpeer.h"

#include "gateway/listen_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_Y  "11010008002F33244B115B0AEEB8"
#define PSK_Y "0102030405060708090A0B0C0D0E0F10"

static speer_t cli[128];

static void setup(void)
{
    lfix_setup();
    memset(cli, 0, sizeof(cli));
}

static void teardown(void)
{
    for (size_t i = 0; i < sizeof(cli) / sizeof(cli[0]); i++)
        speer_close(&cli[i]);
    lfix_teardown();
}

TestSuite(hostile, .init = setup, .fini = teardown, .timeout = 120);

static void start(pskgw_listener_opts_t *o)
{
    if (o->handshakes_per_ip == 0)
        o->handshakes_per_ip = 100000; /* the tests start many handshakes from one source */
    lfix_start(o);
}

static const pskgw_listener_counters_t *ctr(void)
{
    return lfix_ctr();
}

static uint16_t port(void)
{
    return pskgw_listener_port(lst);
}

static uint64_t want;
static bool auth_failures_reached(void *arg)
{
    (void)arg;
    return ctr()->auth_failures >= want;
}

static bool blocked_reached(void *arg)
{
    (void)arg;
    return ctr()->blocked_identities >= want;
}

static bool msgs_reached(void *arg)
{
    (void)arg;
    return (uint64_t)msgs.n >= want;
}

static bool started_reached(void *arg)
{
    (void)arg;
    return ctr()->handshakes_started >= want;
}

static bool cookies_reached(void *arg)
{
    (void)arg;
    return ctr()->cookie_verified >= want;
}

static bool half_open_over(void *arg)
{
    (void)arg;
    return ctr()->half_open_timeouts >= 1 && ctr()->sessions_active == 1;
}

static bool done_or_failed(void *arg)
{
    speer_t *c = arg;

    return c->done || c->error != 0;
}

static bool all_done(void *arg)
{
    int n = *(int *)arg;

    for (int i = 0; i < n; i++) {
        if (!cli[i].done)
            return false;
    }
    return true;
}

/* Issue 16 section 2: five wrong-key handshakes with a device's identity, from any address,
 * blocked the device's correct key for 300 s. Now 100 of them from 127.0.0.2 throttle that
 * identity from 127.0.0.2 only: the device connects from 127.0.0.3 at once, and 127.0.0.2 is
 * not refused for other identities either. */
Test(hostile, wrong_keys_from_one_source_never_lock_a_device_out)
{
    pskgw_listener_opts_t o = { 0 };
    speer_t *x = &cli[120];
    speer_t *y = &cli[121];
    speer_t *x2 = &cli[122];

    lfix_resolver_knows_h_id();
    hres_add(&res, ID_Y, PSK_Y);
    start(&o); /* default failure limits: 5 per identity and source, 50 per source, 300 s */
    for (int batch = 0; batch < 5; batch++) {
        for (int i = 0; i < 20; i++)
            speer_start(&cli[batch * 20 + i], &loop, "127.0.0.2", 0, port(), H_ID, H_WRONG, NULL);
        want = (uint64_t)(batch + 1) * 20;
        cr_assert(hrun_until(&loop, auth_failures_reached, NULL, 30000),
                  "batch %d: %llu wrong-key handshakes failed", batch,
                  (unsigned long long)ctr()->auth_failures);
        for (int i = 0; i < 20; i++)
            speer_close(&cli[batch * 20 + i]); /* no retransmissions to the next batch */
    }
    cr_assert_eq(ctr()->handshakes_completed, 0);
    cr_assert_geq(ctr()->blocked_identities, 90, "the attacker's identity is throttled for it");
    /* The device, from another source, at once. */
    speer_start(x, &loop, "127.0.0.3", 0, port(), H_ID, H_PSK, "x");
    cr_assert(hrun_until(&loop, done_or_failed, x, 10000));
    cr_assert(x->done, "the device was refused (error %d)", x->error);
    want = 1;
    cr_assert(hrun_until(&loop, msgs_reached, NULL, 10000));
    cr_assert_str_eq(msgs.identity[0], H_ID);
    /* The failing source still reaches other identities... */
    speer_start(y, &loop, "127.0.0.2", 0, port(), ID_Y, PSK_Y, NULL);
    cr_assert(hrun_until(&loop, done_or_failed, y, 10000));
    cr_assert(y->done, "another identity from the failing source (error %d)", y->error);
    /* ...but not the identity it failed with, even with the right key. */
    want = ctr()->blocked_identities + 1;
    speer_start(x2, &loop, "127.0.0.2", 0, port(), H_ID, H_PSK, NULL);
    cr_assert(hrun_until(&loop, blocked_reached, NULL, 10000));
    cr_assert(!x2->done);
    cr_assert_eq(ctr()->throttled_sources, 0, "100 failures of one identity throttle only it");
}

/* Many identities failing from one source throttle the whole source (source_failure_max),
 * still never another source. */
Test(hostile, a_source_failing_with_many_identities_is_throttled_alone)
{
    pskgw_listener_opts_t o = { 0 };
    char id[8][32];

    lfix_resolver_knows_h_id();
    o.identity_failure_max = 2;
    o.source_failure_max = 6;
    start(&o);
    for (int i = 0; i < 6; i++) {
        (void)snprintf(id[i], sizeof(id[i]), "AA%02d", i);
        hres_add(&res, id[i], H_PSK);
        speer_start(&cli[i], &loop, "127.0.0.5", 0, port(), id[i], H_WRONG, NULL);
    }
    want = 6;
    cr_assert(hrun_until(&loop, auth_failures_reached, NULL, 30000));
    speer_start(&cli[10], &loop, "127.0.0.5", 0, port(), H_ID, H_PSK, NULL);
    want = 7;
    cr_assert(hrun_until(&loop, cookies_reached, NULL, 10000));
    cr_assert_eq(ctr()->throttled_sources, 1, "the source is refused before any session");
    cr_assert_eq(ctr()->handshakes_started, 6);
    speer_start(&cli[11], &loop, "127.0.0.6", 0, port(), H_ID, H_PSK, NULL);
    cr_assert(hrun_until(&loop, done_or_failed, &cli[11], 10000));
    cr_assert(cli[11].done, "another source (error %d)", cli[11].error);
}

/* Issue 16 section 5: a ClientHello captured earlier and replayed from the device's address
 * and port (its cookie still valid) ended the established session. Now the handshake it
 * starts runs beside the session, which keeps working, and ends at its half-open deadline;
 * a real reconnect (device rebooted, same port) still replaces the old session once its
 * handshake completes. */
Test(hostile, a_replayed_client_hello_does_not_end_the_live_session)
{
    pskgw_listener_opts_t o = { 0 };
    uint8_t old_hello[1024];
    size_t old_len;
    uint16_t local;
    uint64_t sid;

    lfix_resolver_knows_h_id();
    o.half_open_timeout_ms = 500;
    start(&o);
    speer_start(&cli[0], &loop, "127.0.0.4", 0, port(), H_ID, H_PSK, "one");
    want = 1;
    cr_assert(hrun_until(&loop, msgs_reached, NULL, 10000));
    cr_assert_gt(cli[0].hello_len, 0);
    memcpy(old_hello, cli[0].hello, cli[0].hello_len);
    old_len = cli[0].hello_len;
    local = speer_local_port(&cli[0]);
    speer_close(&cli[0]);
    (void)uv_run(&loop, UV_RUN_NOWAIT);
    /* The device reboots behind the same address and port: a real reconnect. */
    speer_start(&cli[1], &loop, "127.0.0.4", local, port(), H_ID, H_PSK, "two");
    want = 2;
    cr_assert(hrun_until(&loop, msgs_reached, NULL, 10000), "the rebooted device got through");
    sid = msgs.meta[1].session_id;
    cr_assert_neq(sid, msgs.meta[0].session_id);
    cr_assert_eq(ctr()->rehandshakes, 1, "the completed handshake replaced the old session");
    cr_assert_eq(ctr()->sessions_active, 1);
    /* The attacker replays the first boot's ClientHello from that address and port. */
    speer_send_raw(&cli[1], old_hello, old_len);
    want = 3;
    cr_assert(hrun_until(&loop, started_reached, NULL, 10000), "the replay starts a handshake");
    cr_assert_eq(ctr()->sessions_active, 2, "beside the live session, not in its place");
    cr_assert_gt(speer_write(&cli[1], "three"), 0);
    want = 3;
    cr_assert(hrun_until(&loop, msgs_reached, NULL, 10000), "the live session still works");
    cr_assert_str_eq(msgs.data[2], "three");
    cr_assert_eq(msgs.meta[2].session_id, sid);
    cr_assert_eq(msgs.meta[2].seq, 2);
    /* The replayed handshake never completes: it ends at its half-open deadline. */
    cr_assert(hrun_until(&loop, half_open_over, NULL, 10000));
    cr_assert_eq(ctr()->sessions_active, 1);
    cr_assert_eq(ctr()->rehandshakes, 1);
    cr_assert_gt(speer_write(&cli[1], "four"), 0);
    want = 4;
    cr_assert(hrun_until(&loop, msgs_reached, NULL, 10000));
    cr_assert_eq(msgs.meta[3].session_id, sid);
}

/* Issue 16 section 7: max_sessions is global, so a few sources holding half-open handshakes
 * filled it. Now each source holds at most half_open_per_source: four sources trying 15 each
 * hold 8 each, and real devices from another source keep connecting. */
Test(hostile, a_few_sources_cannot_fill_the_session_table)
{
    pskgw_listener_opts_t o = { 0 };
    char src[16];
    int devices = 6;

    lfix_resolver_knows_h_id();
    o.max_sessions = 40;
    o.half_open_per_source = 8;
    o.handshake_timeout_ms = 60000; /* the half-open handshakes outlive the test */
    start(&o);
    for (int s = 0; s < 4; s++) {
        (void)snprintf(src, sizeof(src), "127.0.0.%d", 10 + s);
        for (int i = 0; i < 15; i++) {
            speer_t *c = &cli[20 + s * 15 + i];

            speer_start(c, &loop, src, 0, port(), H_ID, H_PSK, NULL);
            c->max_sends = 2; /* ClientHello, ClientHello with the cookie, then silence */
        }
    }
    want = 60;
    cr_assert(hrun_until(&loop, cookies_reached, NULL, 20000), "every fill attempt was seen");
    cr_assert_leq(ctr()->sessions_active, 32, "at most 8 per source");
    cr_assert_eq(ctr()->refused_half_open, 60 - ctr()->handshakes_started);
    for (int i = 0; i < devices; i++)
        speer_start(&cli[i], &loop, "127.0.0.20", 0, port(), H_ID, H_PSK, NULL);
    cr_assert(hrun_until(&loop, all_done, &devices, 20000), "real devices keep connecting");
    cr_assert_eq(ctr()->refused_max_sessions, 0);
    cr_assert_eq(ctr()->handshakes_completed, (uint64_t)devices);
}

static bool half_open_timed_out(void *arg)
{
    (void)arg;
    return ctr()->half_open_timeouts >= 1 && ctr()->sessions_active == 0;
}

/* A handshake whose ClientKeyExchange does not come ends at half_open_timeout_ms, long before
 * the handshake deadline, and gives its source's place back. */
Test(hostile, a_handshake_without_key_exchange_ends_at_the_half_open_deadline)
{
    pskgw_listener_opts_t o = { 0 };

    lfix_resolver_knows_h_id();
    o.half_open_per_source = 1;
    o.half_open_timeout_ms = 300;
    o.handshake_timeout_ms = 600000;
    start(&o);
    speer_start(&cli[0], &loop, "127.0.0.7", 0, port(), H_ID, H_PSK, NULL);
    cli[0].max_sends = 2;
    cr_assert(hrun_until(&loop, half_open_timed_out, NULL, 20000));
    cr_assert_eq(ctr()->handshakes_failed, 1);
    speer_start(&cli[1], &loop, "127.0.0.7", 0, port(), H_ID, H_PSK, NULL);
    cr_assert(hrun_until(&loop, done_or_failed, &cli[1], 10000));
    cr_assert(cli[1].done, "the source's place was given back (error %d)", cli[1].error);
}

/* ---- log lines ---------------------------------------------------------------------------- */

static char *logbuf;
static size_t loglen;
static FILE *logfp;

static void log_capture(void)
{
    logfp = open_memstream(&logbuf, &loglen);
    cr_assert_not_null(logfp);
    pskgw_log_set_output(logfp);
    pskgw_log_set_level(PSKGW_LOG_INFO);
    pskgw_log_set_ratelimit(2, 600000);
}

static void log_release(void)
{
    pskgw_log_set_output(NULL);
    pskgw_log_set_ratelimit(5, 10000);
    (void)fclose(logfp);
    free(logbuf);
    logbuf = NULL;
}

static bool lookups_failed(void *arg)
{
    (void)arg;
    return ctr()->lookups_failed >= 1 && ctr()->sessions_active == 0;
}

/* Issue 16 section 8: one rate limit for every handshake-failure line let a flood of wrong
 * keys hide a real device's "service unavailable". Now each reason has its own limit, and
 * the lines name the identity. */
Test(hostile, a_flood_of_wrong_keys_cannot_hide_a_service_unavailable_line)
{
    pskgw_listener_opts_t o = { 0 };

    hres_init(&res, &loop, 0);
    res.sync_hits = true;
    res.fail_with = PSKGW_EUNAVAIL; /* lookups that reach the resolver (not cached) fail */
    hres_add(&res, H_ID, H_PSK);
    o.identity_failure_max = 1000;
    start(&o);
    log_capture();
    for (int i = 0; i < 10; i++)
        speer_start(&cli[i], &loop, "127.0.0.8", 0, port(), H_ID, H_WRONG, NULL);
    want = 10;
    cr_assert(hrun_until(&loop, auth_failures_reached, NULL, 30000));
    speer_start(&cli[20], &loop, "127.0.0.9", 0, port(), ID_Y, PSK_Y, NULL);
    cr_assert(hrun_until(&loop, lookups_failed, NULL, 10000));
    (void)fflush(logfp);
    cr_assert_not_null(strstr(logbuf, "identity \"" ID_Y "\" failed: "),
                       "the unavailable line is there:\n%s", logbuf);
    cr_assert_not_null(strstr(logbuf, "identity \"" H_ID "\" failed: "));
    log_release();
}

Test(hostile, identities_in_log_lines_are_escaped_and_bounded)
{
    char out[400];
    char longid[300];

    pskgw_listen_log_identity("AB\"\\\n\x01"
                              "CD",
                              out, sizeof(out));
    cr_assert_str_eq(out, "AB\\x22\\x5C\\x0A\\x01CD");
    pskgw_listen_log_identity(NULL, out, sizeof(out));
    cr_assert_str_eq(out, "");
    memset(longid, 'A', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    pskgw_listen_log_identity(longid, out, sizeof(out));
    cr_assert_eq(strlen(out), 83, "80 bytes and \"...\"");
    cr_assert_str_eq(out + 80, "...");
    pskgw_listen_log_identity("\xff\xff\xff\xff", out, 10);
    cr_assert_str_eq(out, "\\xFF...", "cut to the buffer");
}

/* ---- TCP ---------------------------------------------------------------------------------- */

typedef struct {
    uv_tcp_t h;
    uv_connect_t req;
    bool connected;
} rawtcp_t;

static rawtcp_t tcp[8];

static void on_tcp_connect(uv_connect_t *req, int status)
{
    rawtcp_t *t = req->data;

    t->connected = status == 0;
}

static void tcp_from(rawtcp_t *t, const char *src)
{
    struct sockaddr_in a;
    struct sockaddr_in to;

    cr_assert_eq(uv_tcp_init(&loop, &t->h), 0);
    cr_assert_eq(uv_ip4_addr(src, 0, &a), 0);
    cr_assert_eq(uv_tcp_bind(&t->h, (const struct sockaddr *)&a, 0), 0);
    cr_assert_eq(uv_ip4_addr("127.0.0.1", port(), &to), 0);
    t->req.data = t;
    cr_assert_eq(uv_tcp_connect(&t->req, &t->h, (const struct sockaddr *)&to, on_tcp_connect), 0);
}

static bool tcp_refused_or_started(void *arg)
{
    uint64_t n = *(uint64_t *)arg;

    return ctr()->handshakes_started + ctr()->refused_half_open >= n;
}

/* TLS connections count against the same per-source bound, from their accept on: silent
 * connections from one source cannot take the listener, another source still gets in. */
Test(hostile, tcp_connections_count_against_the_half_open_bound)
{
    pskgw_listener_opts_t o = { 0 };
    uint64_t n = 3;

    hres_init(&res, &loop, 0);
    o.proto = PSKGW_LISTEN_TCP;
    o.framing = PSKGW_FRAMING_LEN16;
    o.half_open_per_source = 2;
    start(&o);
    for (int i = 0; i < 3; i++)
        tcp_from(&tcp[i], "127.0.0.30");
    cr_assert(hrun_until(&loop, tcp_refused_or_started, &n, 10000));
    cr_assert_eq(ctr()->handshakes_started, 2);
    cr_assert_eq(ctr()->refused_half_open, 1);
    tcp_from(&tcp[3], "127.0.0.31");
    n = 4;
    cr_assert(hrun_until(&loop, tcp_refused_or_started, &n, 10000));
    cr_assert_eq(ctr()->handshakes_started, 3, "another source is admitted");
    for (int i = 0; i < 4; i++)
        uv_close((uv_handle_t *)&tcp[i].h, NULL);
}
