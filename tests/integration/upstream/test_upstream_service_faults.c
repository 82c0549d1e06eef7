/* pskgw_upstream against a security service on a bad day (issue 10 §1, §5): pskgw-sim --strict
 * with its fault modes (extra fields, HTTP 200 with an error body, truncated JSON, slow TLS
 * handshakes, tokens that expire early), and a scripted server for a GetPSK key of the other
 * length. Each test checks what the client did: the callback status, its counters, what it
 * logged and what the service saw. Every test ends with uv_loop_close() == 0. */
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "fakesrv.h"
#include "simctl.h"
#include "upfix.h"
#include "tools/rotkeys/rotkeys.h"
#include "upstream/upstream.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

typedef struct {
    int calls;
    int status;
    pskgw_upstream_psk_t psk;
    pskgw_upstream_e2e_t e2e;
} res_t;

static fakesrv_t *srv;
static char *log_text;
static size_t log_len;
static FILE *log_out;
static char tmp[256]; /* shorter than sim.ca with "/ca.pem" */

static void suite_fini(void)
{
    sim_stop(&sim);
    fakesrv_stop(srv);
    srv = NULL;
    pskgw_log_set_output(NULL);
    if (log_out)
        fclose(log_out);
    log_out = NULL;
    free(log_text);
    log_text = NULL;
    if (tmp[0])
        pskgw_test_rmtree(tmp);
    tmp[0] = '\0';
}

TestSuite(upstream_service_faults, .fini = suite_fini, .timeout = 120);

/* Everything the client logs, at debug level, into memory. */
static void capture_log(void)
{
    log_out = open_memstream(&log_text, &log_len);
    cr_assert_not_null(log_out);
    pskgw_log_set_output(log_out);
    pskgw_log_set_level(PSKGW_LOG_DEBUG);
}

static size_t log_count(const char *needle)
{
    size_t n = 0;

    fflush(log_out);
    for (const char *p = log_text; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void psk_cb(void *arg, int status, const pskgw_upstream_psk_t *r)
{
    res_t *x = arg;

    if (in_api || x->calls || (status == 0) != (r != NULL))
        violated++;
    x->calls++;
    x->status = status;
    if (r)
        x->psk = *r;
    done++;
}

static void e2e_cb(void *arg, int status, const pskgw_upstream_e2e_t *r)
{
    res_t *x = arg;

    if (in_api || x->calls || (status == 0) != (r != NULL))
        violated++;
    x->calls++;
    x->status = status;
    if (r)
        x->e2e = *r;
    done++;
}

static void opts_base(pskgw_upstream_opts_t *o, const char *url)
{
    upfix_opts(o, "faults", url);
}

/* Run the loop until *counter >= target; timeout_ms only guards against hanging. */
static void run_until(const int *counter, int target, uint64_t timeout_ms)
{
    upfix_run_until(counter, target, timeout_ms);
    cr_assert_geq(*counter, target, "no callback within %llu ms (guard)",
                  (unsigned long long)timeout_ms);
}

/* One GetPSK of a device of the simulator's seed, run to its callback. */
static void psk(unsigned dev, unsigned bits, uint32_t deadline, res_t *r)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1];

    memset(r, 0, sizeof(*r));
    cr_assert_eq(pskgw_rot_identity_hex(SIM_SEED, dev, id), 0);
    in_api = 1;
    cr_assert_eq(pskgw_upstream_get_psk(cli, id, bits, deadline, psk_cb, r, NULL), 0);
    in_api = 0;
    run_until(&r->calls, 1, 30000);
}

static void check_psk(unsigned dev, unsigned bits, const res_t *r)
{
    uint8_t key[32];
    size_t n = 0;

    cr_assert_eq(r->status, 0, "device %u: %s", dev, pskgw_strerror(r->status));
    cr_assert_eq(pskgw_rot_psk(SIM_SEED, dev, bits, key, sizeof(key), &n), 0);
    cr_assert_eq(r->psk.key_len, n);
    cr_assert(memcmp(r->psk.key, key, n) == 0, "device %u: wrong key", dev);
}

static void e2e(unsigned dev, int version, res_t *r)
{
    uint8_t ki[PSKGW_ROT_KI_MAX_LEN];
    char hex[2 * PSKGW_ROT_KI_MAX_LEN + 1];
    size_t n = 0;
    pskgw_rot_e2e_params_t p;

    memset(r, 0, sizeof(*r));
    cr_assert_eq(pskgw_rot_e2e_ki(SIM_SEED, dev, version, 1, ki, sizeof(ki), &n), 0);
    cr_assert_eq(pskgw_hex_encode(ki, n, hex, sizeof(hex), 1), 0);
    in_api = 1;
    cr_assert_eq(pskgw_upstream_get_e2e(cli, hex, 0, e2e_cb, r, NULL), 0);
    in_api = 0;
    run_until(&r->calls, 1, 30000);
    cr_assert_eq(r->status, 0, "E2E V%d: %s", version, pskgw_strerror(r->status));
    cr_assert_eq(pskgw_rot_e2e_params(SIM_SEED, ki, n, &p), 0);
    cr_assert(memcmp(r->e2e.key, p.key, 16) == 0);
    cr_assert_eq(r->e2e.mac_bits, p.mac_bits);
    pskgw_rot_e2e_params_wipe(&p);
}

static void set_faults(const char *json)
{
    cr_assert_eq(sim_post(&sim, "/_sim/faults", json), 200, "faults %s", json);
}

static uint64_t outcome(pskgw_upstream_op_t op, pskgw_upstream_outcome_t out)
{
    pskgw_upstream_stats_t st;

    pskgw_upstream_stats(cli, &st);
    return st.outcomes[op][out];
}

/* The service adds fields to every answer (authenticate, GetPSK, E2E, top level and nested):
 * every call succeeds with the right key, and the client notes the unknown fields once per call
 * type at debug level, not once per answer. */
Test(upstream_service_faults, extra_fields_in_every_answer_are_ignored)
{
    static const char *const extra[] = { "--extra-fields-rate", "1", NULL };
    pskgw_upstream_opts_t o;
    res_t r;

    capture_log();
    start_sim(extra);
    opts_base(&o, sim.url);
    upfix_start_client(&o);
    psk(3, 128, 0, &r);
    check_psk(3, 128, &r);
    psk(4, 256, 0, &r);
    check_psk(4, 256, &r);
    e2e(5, 1, &r);
    e2e(6, 2, &r);
    cr_assert_eq(sim_stat(&sim, "faults", "extra_fields"), 5);
    cr_assert_eq(sim_stat(&sim, NULL, "strict_refused"), 0);
    cr_assert_eq(outcome(PSKGW_UPSTREAM_OP_PSK, PSKGW_UPSTREAM_OUT_OK), 2);
    cr_assert_eq(outcome(PSKGW_UPSTREAM_OP_E2E, PSKGW_UPSTREAM_OUT_OK), 2);
    cr_assert_eq(log_count("psk response: ignored 3 unknown fields (first \"Extra\") (noted once)"),
                 1, "%s", log_text);
    cr_assert_eq(log_count("e2e parameters response: ignored 3 unknown fields"), 1, "%s", log_text);
    cr_assert_eq(log_count("authenticate response: ignored 3 unknown fields"), 1, "%s", log_text);
    cr_assert_eq(log_count("bad response"), 0, "%s", log_text);
    upfix_finish();
}

/* HTTP 200 whose body is an error: a failed call (EPARSE, counted as an error, logged with the
 * reason), not a key and not retried; the next call is answered normally. */
Test(upstream_service_faults, status_200_with_an_error_body_fails_the_call)
{
    pskgw_upstream_opts_t o;
    res_t r;

    capture_log();
    start_sim(NULL);
    opts_base(&o, sim.url);
    upfix_start_client(&o);
    psk(1, 128, 0, &r); /* the token first */
    check_psk(1, 128, &r);
    set_faults("{\"error_body_next\": 1}");
    psk(2, 128, 0, &r);
    cr_assert_eq(r.status, PSKGW_EPARSE, "%s", pskgw_strerror(r.status));
    cr_assert_eq(sim_calls(&sim, "get_psk"), 2, "a parse failure is not retried");
    cr_assert_eq(outcome(PSKGW_UPSTREAM_OP_PSK, PSKGW_UPSTREAM_OUT_ERROR), 1);
    cr_assert_eq(log_count("bad response: psk response: Key: missing"), 1, "%s", log_text);
    cr_assert_eq(log_count("internal error"), 0, "the body is not logged as a key reason");
    psk(2, 128, 0, &r);
    check_psk(2, 128, &r);
    cr_assert_eq(sim_stat(&sim, "faults", "error_body"), 1);
    upfix_finish();
}

/* Truncated JSON: GetPSK fails with EPARSE ("not valid json"); a truncated authenticate answer
 * fails the waiting call, and the next call authenticates again and succeeds. */
Test(upstream_service_faults, truncated_json_fails_the_call)
{
    pskgw_upstream_opts_t o;
    res_t r;
    pskgw_upstream_stats_t st;

    capture_log();
    start_sim(NULL);
    opts_base(&o, sim.url);
    upfix_start_client(&o);
    set_faults("{\"truncate_next\": 1}"); /* the authenticate answer */
    psk(1, 128, 0, &r);
    cr_assert_eq(r.status, PSKGW_EPARSE, "%s", pskgw_strerror(r.status));
    cr_assert_eq(log_count("bad authenticate response: authenticate response: not valid json"), 1,
                 "%s", log_text);
    cr_assert_eq(sim_calls(&sim, "get_psk"), 0);
    psk(1, 128, 0, &r);
    check_psk(1, 128, &r);
    set_faults("{\"truncate_next\": 1}"); /* a GetPSK answer */
    psk(2, 256, 0, &r);
    cr_assert_eq(r.status, PSKGW_EPARSE, "%s", pskgw_strerror(r.status));
    cr_assert_eq(log_count("bad response: psk response: not valid json"), 1, "%s", log_text);
    psk(2, 256, 0, &r);
    check_psk(2, 256, &r);
    pskgw_upstream_stats(cli, &st);
    cr_assert_eq(st.token_renewals, 1);
    cr_assert_eq(sim_stat(&sim, "faults", "truncated"), 2);
    cr_assert_eq(sim_calls(&sim, "authenticate"), 2);
    upfix_finish();
}

/* A token that dies long before its exp claim: the client keeps it (the claims say an hour),
 * gets a 401, drops it, authenticates once more and retries: every call succeeds. */
Test(upstream_service_faults, token_expiring_early_is_renewed_on_401)
{
    pskgw_upstream_opts_t o;
    res_t r;
    pskgw_upstream_stats_t st;
    int calls = 0;

    start_sim(NULL);
    set_faults("{\"token_early_expiry_ms\": 1000}");
    opts_base(&o, sim.url);
    upfix_start_client(&o);
    /* Calls one after the other until one meets a dead token (the event; the count only
     * guards against a token that never dies). */
    do {
        psk(1 + (unsigned)(calls % 7), 128, 0, &r);
        check_psk(1 + (unsigned)(calls % 7), 128, &r);
        pskgw_upstream_stats(cli, &st);
    } while (st.reauth_on_401 == 0 && ++calls < 100000);
    cr_assert_eq(st.reauth_on_401, 1);
    cr_assert_eq(st.token_renewals, 2);
    cr_assert_eq(sim_status_count(&sim, 401), 1);
    cr_assert_eq(sim_stat(&sim, NULL, "tokens_issued"), 2);
    cr_assert_eq(outcome(PSKGW_UPSTREAM_OP_PSK, PSKGW_UPSTREAM_OUT_AUTH), 0);
    upfix_finish();
}

/* TLS handshakes (3 s: the test's own /_sim/ calls wait them out too) ten times slower than
 * the attempt timeout: every authenticate attempt times out, and the
 * call fails within its deadline (EUNAVAIL, or ETIMEOUT when the deadline ends it first)
 * without any API call reaching the service; once handshakes are quick again calls succeed, and a slow
 * (but in-time) handshake is paid once per connection, not per call. */
Test(upstream_service_faults, slow_tls_handshakes)
{
    char ca[sizeof(sim.ca)];
    const char *extra[] = { "--tls", "--cert-out", ca, "--tls-handshake-delay-ms", "3000", NULL };
    pskgw_upstream_opts_t o;
    res_t r;

    cr_assert_eq(pskgw_test_tmpdir(tmp, sizeof(tmp)), 0);
    snprintf(ca, sizeof(ca), "%s/ca.pem", tmp);
    start_sim(extra);
    snprintf(sim.ca, sizeof(sim.ca), "%s", ca);
    opts_base(&o, sim.url);
    o.ca_file = ca;
    o.timeout_ms = 300;
    o.deadline_ms = 1500;
    upfix_start_client(&o);
    capture_log();
    psk(1, 128, 0, &r);
    cr_assert(r.status == PSKGW_EUNAVAIL || r.status == PSKGW_ETIMEOUT, "%s",
              pskgw_strerror(r.status));
    cr_assert_geq(log_count("authenticate: timed out"), 1, "%s", log_text);
    cr_assert_eq(sim_calls(&sim, "authenticate"), 0, "no call got through a handshake");
    cr_assert_eq(sim_calls(&sim, "get_psk"), 0);
    long slow = sim_stat(&sim, "faults", "slow_handshakes");
    cr_assert_geq(slow, 1);
    upfix_finish();

    /* quick again, then slow but within the attempt timeout */
    start_sim(extra);
    snprintf(sim.ca, sizeof(sim.ca), "%s", ca);
    set_faults("{\"tls_handshake_delay_ms\": 0}");
    o.timeout_ms = 30000;
    o.deadline_ms = 60000;
    o.max_connections = 1;
    upfix_start_client(&o);
    psk(1, 128, 0, &r);
    check_psk(1, 128, &r);
    set_faults("{\"tls_handshake_delay_ms\": 200}");
    slow = sim_stat(&sim, "faults", "slow_handshakes");
    pskgw_upstream_stats_t st;
    pskgw_upstream_stats(cli, &st);
    cr_assert_eq(st.token_valid, 1);
    for (unsigned dev = 2; dev < 5; dev++) {
        psk(dev, 128, 0, &r);
        check_psk(dev, 128, &r);
    }
    /* the client's connection was opened before the fault: no new handshake */
    cr_assert_eq(sim_stat(&sim, "faults", "slow_handshakes") - slow, 1, "only the stats call");
    upfix_finish();
}

/* ---- a GetPSK key of the other length (scripted server) ---- */

static void other_length(void *arg, const char *path, unsigned n, fake_reply_t *out)
{
    (void)arg;
    (void)n;
    out->status = 200;
    if (strcmp(path, "/v1/authenticate") == 0)
        out->body = "{\"AuthToken\":\"aaaa.bbbb.cccc\"}";
    else /* 32 bytes, whatever KeyLength asked for */
        out->body = "{\"Key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\","
                    "\"ROTPublicUID\":\"0002000089282245\"}";
}

Test(upstream_service_faults, key_of_the_other_length_names_the_likely_cause)
{
    char url[64];
    pskgw_upstream_opts_t o;
    res_t r;

    capture_log();
    cr_assert_eq(fakesrv_start(&srv, other_length, NULL, url, sizeof(url)), 0);
    memset(&sim, 0, sizeof(sim));
    sim.proc.pid = -1;
    opts_base(&o, url);
    o.psk_key_bits = 128;
    upfix_start_client(&o);
    memset(&r, 0, sizeof(r));
    in_api = 1;
    cr_assert_eq(
        pskgw_upstream_get_psk(cli, "11010008002F33244B115B0AEEB9", 0, 0, psk_cb, &r, NULL), 0);
    in_api = 0;
    run_until(&r.calls, 1, 30000);
    cr_assert_eq(r.status, PSKGW_EPARSE, "%s", pskgw_strerror(r.status));
    cr_assert_eq(log_count("upstream \"faults\": get_psk \"11010008002F33244B115B0AEEB9\": bad "
                           "response: psk response: Key: 32 bytes (256 bits) where psk_key_bits "
                           "asks for 128: the device likely uses the other PSK length (set "
                           "psk_key_bits = 256 for it)"),
                 1, "%s", log_text);
    cr_assert_eq(log_count("AAECAwQF"), 0, "the key reached the log");
    upfix_finish();
    fakesrv_stop(srv);
    srv = NULL;
}
