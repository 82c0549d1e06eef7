/* The connections pskgw opens to the security service (issue 10, "the cold path is the real
 * path"), against pskgw-sim behind Debian's nghttpx as an HTTPS front:
 * - where the service speaks HTTP/2, concurrent GetPSK calls are streams of one connection;
 * - where it speaks only HTTP/1.1, they share a pool of keep-alive connections no larger than
 *   the configured bound, reused from one burst to the next.
 * Connections are counted at the front (its access log names each request's client port);
 * concurrency is seen at the simulator (the most calls it held at once). Every test ends with
 * uv_loop_close() == 0. */
#include "common/err.h"
#include "h2front.h"
#include "simctl.h"
#include "skip.h"
#include "tools/rotkeys/rotkeys.h"
#include "upstream/upstream.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct {
    int calls;
    int status;
    pskgw_upstream_psk_t psk;
} res_t;

static uv_loop_t loop;
static uv_timer_t pump;
static pskgw_upstream_t *cli;
static sim_t sim;
static front_t front;
static int done;
static int closed;

static void suite_fini(void)
{
    front_stop(&front);
    sim_stop(&sim);
}

TestSuite(upstream_pool, .fini = suite_fini);

static void on_pump(uv_timer_t *t)
{
    (void)t;
}

static void psk_cb(void *arg, int status, const pskgw_upstream_psk_t *r)
{
    res_t *x = arg;

    x->calls++;
    x->status = status;
    if (r)
        x->psk = *r;
    done++;
}

static void on_closed(void *arg)
{
    (void)arg;
    closed++;
}

/* pskgw-sim (plain HTTP, answers after latency_ms) behind nghttpx offering alpn. */
static void start_service(const char *alpn, const char *latency_ms)
{
    const char *const extra[] = { "--latency-ms", latency_ms, NULL };

    if (!front_available())
        PSKGW_TEST_SKIP_MISSING("nghttpx (Debian: nghttp2-proxy) and openssl");
    cr_assert_eq(sim_start(&sim, extra), 0, "pskgw-sim did not start");
    cr_assert_eq(front_start(&front, sim.url, alpn), 0, "nghttpx did not start");
}

static void start_client(uint32_t max_in_flight, uint32_t max_connections)
{
    pskgw_upstream_opts_t o;

    pskgw_upstream_opts_init(&o);
    o.name = "test";
    o.base_url = front.url;
    o.ca_file = front.ca;
    o.key_id = SIM_KEY;
    o.secret = SIM_SECRET;
    o.max_in_flight = max_in_flight;
    o.max_connections = max_connections;
    o.timeout_ms = 60000; /* a loaded machine never turns a slow answer into a retry */
    o.deadline_ms = 120000;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_timer_init(&loop, &pump), 0);
    uv_timer_start(&pump, on_pump, 10, 10);
    cr_assert_eq(pskgw_upstream_new(&loop, &o, &cli), 0);
    done = closed = 0;
}

/* Run the loop until *counter >= target (timeout_ms: a guard against hanging only). */
static void run_until(const int *counter, int target, uint64_t timeout_ms)
{
    uint64_t end = uv_now(&loop) + timeout_ms;

    while (*counter < target && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
}

/* Run the loop until the simulator has held `want` calls at once: its high-water mark
 * max_in_flight (a blocking GET of its stats every 50 ms of loop time, straight to the
 * simulator, not through the front). The mark cannot be missed between two looks; the
 * momentary in_flight this waited for could (under load the pool's 4 calls of 300 ms overlap
 * briefly, maybe only between two looks). */
static void run_until_sim_in_flight(long want, uint64_t timeout_ms)
{
    uint64_t end = uv_now(&loop) + timeout_ms;
    uint64_t next = 0;
    long seen = -1;

    while (uv_now(&loop) < end) {
        if (uv_now(&loop) >= next) {
            seen = sim_stat(&sim, NULL, "max_in_flight");
            if (seen >= want)
                return;
            next = uv_now(&loop) + 50;
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_fail("the simulator never held %ld calls at once (at most %ld)", want, seen);
}

static void get_psks(unsigned first, unsigned n, res_t *r)
{
    for (unsigned i = 0; i < n; i++) {
        char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
        cr_assert_eq(pskgw_rot_identity_hex(SIM_SEED, first + i, id), 0);
        cr_assert_eq(pskgw_upstream_get_psk(cli, id, 128, 0, psk_cb, &r[i], NULL), 0);
    }
}

static void check_psks(unsigned first, unsigned n, const res_t *r)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t key[32];
        size_t len = 0;
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].status, 0, "device %u: %s", first + i, pskgw_strerror(r[i].status));
        cr_assert_eq(pskgw_rot_psk(SIM_SEED, first + i, 128, key, sizeof(key), &len), 0);
        cr_assert_eq(r[i].psk.key_len, len);
        cr_assert(memcmp(r[i].psk.key, key, len) == 0, "device %u: wrong key", first + i);
    }
}

/* Wait (guard only) until the front logged n API requests: it logs a request when it ends. */
static int front_api_requests(int skip, int n, int *ports, size_t cap, size_t *nports,
                              const char *alpn, int *other_alpn)
{
    uint64_t end = uv_now(&loop) + 30000;
    int got;

    while ((got = front_requests(&front, "/v1/", skip, ports, cap, nports, alpn, other_alpn)) < n &&
           uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    return got;
}

static void finish(void)
{
    if (cli)
        pskgw_upstream_close(cli, on_closed, NULL);
    cli = NULL;
    uv_close((uv_handle_t *)&pump, NULL);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(closed, 1);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles left open");
    front_stop(&front);
    sim_stop(&sim);
}

Test(upstream_pool, http2_service_gets_one_connection_and_many_streams)
{
    enum { N = 24 };
    res_t r[N + 1];
    int ports[64];
    size_t nports = 0;
    int other = 0;

    memset(r, 0, sizeof(r));
    /* answers wait 3 s: long enough for the N calls to be at the service together */
    start_service("h2,http/1.1", "3000");
    start_client(64, 0);   /* max_connections: the default, max_in_flight */
    get_psks(1, 1, &r[N]); /* authenticate + one GetPSK first */
    run_until(&done, 1, 60000);
    check_psks(1, 1, &r[N]);
    get_psks(100, N, r);
    run_until_sim_in_flight(N, 60000);
    run_until(&done, 1 + N, 60000);
    check_psks(100, N, r);
    cr_assert_eq(front_api_requests(0, N + 2, ports, 64, &nports, "h2", &other), N + 2);
    cr_assert_eq(other, 0, "%d requests did not use HTTP/2", other);
    cr_assert_eq(nports, 1, "%zu connections to an HTTP/2 service for %d concurrent calls", nports,
                 N);
    cr_assert_eq(sim_calls(&sim, "get_psk"), N + 1);
    finish();
}

/* The service closed the connection (nghttpx restarted): the next burst of concurrent calls
 * must not open a connection per call, but one, and wait for it to learn that it multiplexes
 * (CURLOPT_PIPEWAIT). */
Test(upstream_pool, http2_burst_after_the_service_closed_the_connection_opens_one)
{
    enum { N = 16 };
    res_t r[N + 1];
    int ports[64];
    size_t nports = 0;
    int other = 0;

    memset(r, 0, sizeof(r));
    start_service("h2,http/1.1", "2000");
    start_client(64, 0);
    get_psks(1, 1, &r[N]); /* authenticate + one GetPSK: two calls on the first connection */
    run_until(&done, 1, 60000);
    check_psks(1, 1, &r[N]);
    cr_assert_eq(front_restart(&front), 0, "nghttpx did not start again");
    get_psks(200, N, r);
    run_until_sim_in_flight(N, 60000);
    run_until(&done, 1 + N, 60000);
    check_psks(200, N, r);
    cr_assert_eq(front_api_requests(2, N, ports, 64, &nports, "h2", &other), N);
    cr_assert_eq(other, 0, "%d requests did not use HTTP/2", other);
    cr_assert_eq(nports, 1, "%zu new connections for a burst of %d calls to an HTTP/2 service",
                 nports, N);
    finish();
}

Test(upstream_pool, http11_service_gets_a_bounded_pool_reused_across_bursts)
{
    enum { N = 16, BOUND = 4 };
    res_t r[3][N];
    int ports[64], first[64];
    size_t nports = 0, nfirst = 0;
    int other = 0;
    int total = 0;

    memset(r, 0, sizeof(r));
    start_service("http/1.1", "300");
    start_client(N, BOUND);
    for (unsigned b = 0; b < 3; b++) {
        get_psks(1000 + 100 * b, N, r[b]);
        /* the pool is full while calls queue behind it */
        run_until_sim_in_flight(BOUND, 60000);
        run_until(&done, (int)(N * (b + 1)), 120000);
        check_psks(1000 + 100 * b, N, r[b]);
        total = N * (int)(b + 1) + 1; /* + authenticate */
        cr_assert_eq(front_api_requests(0, total, ports, 64, &nports, "http/1.1", &other), total);
        cr_assert_eq(other, 0, "%d requests did not use HTTP/1.1", other);
        cr_assert_leq(nports, BOUND, "%zu connections for a pool of %d", nports, BOUND);
        if (b == 0) {
            memcpy(first, ports, nports * sizeof(*ports));
            nfirst = nports;
        }
    }
    /* bursts 2 and 3 went over the connections of burst 1: none was opened after it */
    cr_assert_eq(nports, nfirst, "%zu connections after burst 1, %zu after burst 3", nfirst,
                 nports);
    for (size_t i = 0; i < nports; i++)
        cr_assert_eq(ports[i], first[i]);
    cr_assert_leq(sim_stat(&sim, NULL, "max_in_flight"), BOUND);
    finish();
}

/* A connection opened after the first resumes the TLS session it left (the session cache is
 * shared by the transfers; each transfer being its own easy handle, no connection ever
 * resumed): the pool grows, or the client reconnects, without a full TLS handshake each. The
 * first new connection offers a ticket nobody used yet, so it resumes; the others, opened at
 * once from the tickets the client holds by then, resume or not as the server treats a ticket
 * offered twice (nghttpx may take each once), so only "at least one" is asserted. */
Test(upstream_pool, new_connections_resume_the_tls_session)
{
    enum { N = 8 };
    res_t r[N + 1];
    int ports[64];
    size_t nports = 0;
    int other = 0;

    memset(r, 0, sizeof(r));
    start_service("http/1.1", "1000");
    start_client(N, N);
    get_psks(1, 1, &r[N]); /* authenticate + one GetPSK: the first connection, its session */
    run_until(&done, 1, 60000);
    check_psks(1, 1, &r[N]);
    get_psks(300, N, r); /* N at once: the idle connection and N - 1 new ones */
    run_until_sim_in_flight(N, 60000);
    run_until(&done, 1 + N, 60000);
    check_psks(300, N, r);
    cr_assert_eq(front_api_requests(0, N + 2, ports, 64, &nports, "http/1.1", &other), N + 2);
    cr_assert_eq(nports, N, "%zu connections", nports);
    cr_assert_geq(front_resumed_connections(&front, "/v1/"), 1,
                  "none of the %d connections opened after the first resumed its TLS session",
                  N - 1);
    finish();
}

/* pskgw-sim --latency-ms MS --latency-jitter-ms J (the bench's 100 +/- 50 ms service) is MS - J
 * plus a uniform 0..2J, and a jitter larger than the latency is refused. */
static size_t sink(char *p, size_t sz, size_t nm, void *u)
{
    char *buf = u;
    size_t n = sz * nm;
    size_t have = strlen(buf);

    if (have + n >= 4096)
        return 0;
    memcpy(buf + have, p, n);
    buf[have + n] = '\0';
    return n;
}

Test(upstream_pool, simulator_latency_with_symmetric_jitter)
{
    const char *const extra[] = { "--latency-ms", "100", "--latency-jitter-ms", "50", NULL };
    const char *const bad[] = { "--latency-ms", "10", "--latency-jitter-ms", "50", NULL };
    static char body[4096];
    char url[256];
    CURL *e;
    json_t *j;

    cr_assert_eq(sim_start(&sim, extra), 0);
    snprintf(url, sizeof(url), "%s/_sim/faults", sim.url);
    e = curl_easy_init();
    cr_assert_not_null(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    body[0] = '\0';
    cr_assert_eq(curl_easy_perform(e), CURLE_OK);
    curl_easy_cleanup(e);
    j = json_loads(body, 0, NULL);
    cr_assert_not_null(j, "%s", body);
    cr_assert_eq(json_integer_value(json_object_get(j, "latency_ms")), 50, "%s", body);
    cr_assert_eq(json_integer_value(json_object_get(j, "jitter_ms")), 100, "%s", body);
    json_decref(j);
    sim_stop(&sim);
    cr_assert_neq(sim_start(&sim, bad), 0, "a jitter above the latency was accepted");
    sim.proc.pid = -1; /* sim_start reaped it */
}
