/* Fuzz target: pskgw-sim's API calls (tools/sim/simapi.c) on untrusted request bodies and
 * Authorization headers.
 *
 * Input: byte 0 picks the endpoint (bits 0-1), the Authorization header (bits 2-3: none, a
 * valid token, "Bearer " + a valid token, or the input up to the first newline), a simulator
 * in --strict mode (bit 4) and, for it, no Content-Type instead of application/json (bit 5);
 * the rest is the body. Every answer must be a JSON object with a status the API may give
 * (415 only in strict mode); a 200 must carry the spec's exact fields.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/sim/simapi.h"

/* [0] lenient, [1] --strict: each with its own token secret, so its own tokens. */
static pskgw_sim_cfg_t cfg[2];
static pskgw_sim_stats_t *stats;
static pskgw_sim_api_t *api[2];
static char token[2][2048];
static char bearer[2][2100];

static void setup_one(int strict)
{
    static char key[] = "fuzz-key", secret[] = "fuzz-secret", strict_flag[] = "--strict";
    char err[128];
    char *argv[] = { "pskgw-sim", "--api-key",      key,         "--api-secret", secret,
                     "--seed",    "fuzz",           "--devices", "1000",         "--disabled-every",
                     "7",         "--no-e2e-every", "5",         strict_flag,    NULL };
    if (pskgw_sim_cfg_parse(&cfg[strict], 13 + strict, argv, err, sizeof(err)) != 0 ||
        pskgw_sim_api_new(&cfg[strict], stats, &api[strict]) != 0)
        abort();
    pskgw_sim_reply_t r;
    const char body[] = "{\"APIKey\":\"fuzz-key\",\"APISecret\":\"fuzz-secret\"}";
    if (pskgw_sim_api_call(api[strict], PSKGW_SIM_EP_AUTH, NULL, body, sizeof(body) - 1, 1000,
                           &r) != 0 ||
        r.status != 200)
        abort();
    json_t *j = json_loads(r.body, 0, NULL);
    const char *t = NULL;
    if (!j || json_unpack(j, "{s:s}", "AuthToken", &t) != 0 || strlen(t) >= sizeof(token[0]))
        abort();
    snprintf(token[strict], sizeof(token[0]), "%s", t);
    snprintf(bearer[strict], sizeof(bearer[0]), "Bearer %s", t);
    json_decref(j);
    pskgw_sim_reply_clear(&r);
}

static void setup(void)
{
    if (pskgw_sim_stats_new(&stats) != 0)
        abort();
    setup_one(0);
    setup_one(1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static unsigned calls;
    char header[512];
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1)
        return 0;
    pskgw_sim_ep_t ep = (pskgw_sim_ep_t)((data[0] & 3) == 0 ? PSKGW_SIM_EP_NONE : (data[0] & 3));
    int strict = (data[0] >> 4) & 1;
    const char *auth = NULL;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    switch ((data[0] >> 2) & 3) {
    case 1:
        auth = token[strict];
        break;
    case 2:
        auth = bearer[strict];
        break;
    case 3: {
        const char *nl = memchr(body, '\n', len);
        size_t n = nl ? (size_t)(nl - body) : len;
        if (n >= sizeof(header))
            n = sizeof(header) - 1;
        memcpy(header, body, n);
        header[n] = '\0';
        auth = header;
        if (nl) {
            len -= (size_t)(nl + 1 - body);
            body = nl + 1;
        }
        break;
    }
    default:
        break;
    }
    if (ep != PSKGW_SIM_EP_NONE)
        pskgw_sim_api_count(api[strict], ep, body, len);
    pskgw_sim_reply_t r;
    pskgw_sim_call_t call = { auth, (data[0] & 0x20) && strict ? NULL : "application/json",
                              body, len,
                              1001, 0 };
    if (pskgw_sim_api_handle(api[strict], ep, &call, &r) != 0)
        return 0; /* out of memory */
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    if (!json_is_object(j))
        abort();
    switch (r.status) {
    case 200:
        if (ep == PSKGW_SIM_EP_PSK && json_unpack(j, "{s:s, s:s !}", "Key", &(const char *){ 0 },
                                                  "ROTPublicUID", &(const char *){ 0 }) != 0)
            abort();
        if (ep == PSKGW_SIM_EP_E2E &&
            json_unpack(j, "{s:s, s:s, s:i, s:s, s:s !}", "Key", &(const char *){ 0 }, "Nonce",
                        &(const char *){ 0 }, "MACLength", &(int){ 0 }, "CipherSuite",
                        &(const char *){ 0 }, "ROTPublicUID", &(const char *){ 0 }) != 0)
            abort();
        break;
    case 415:
        if (!strict)
            abort();
        /* fall through */
    case 400:
    case 401:
    case 403:
    case 404:
        if (json_unpack(j, "{s:s !}", "error", &(const char *){ 0 }) != 0)
            abort();
        break;
    default:
        abort();
    }
    json_decref(j);
    pskgw_sim_reply_clear(&r);
    if (++calls % 10000 == 0)
        pskgw_sim_stats_reset(stats);
    return 0;
}
