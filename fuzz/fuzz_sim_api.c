/* Fuzz target: pskgw-sim's API calls (tools/sim/simapi.c) on untrusted request bodies and
 * Authorization headers.
 *
 * Input: byte 0 picks the endpoint (bits 0-1) and the Authorization header (bits 2-3: none, a
 * valid token, "Bearer " + a valid token, or the input up to the first newline); the rest is the
 * body. Every answer must be a JSON object with a status the API may give; a 200 must carry the
 * spec's exact fields.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/sim/simapi.h"

static pskgw_sim_cfg_t cfg;
static pskgw_sim_stats_t *stats;
static pskgw_sim_api_t *api;
static char token[2048];
static char bearer[2100];

static void setup(void)
{
    static char key[] = "fuzz-key", secret[] = "fuzz-secret";
    char err[128];
    char *argv[] = { "pskgw-sim", "--api-key", key,    "--api-secret",     secret, "--seed",
                     "fuzz",      "--devices", "1000", "--disabled-every", "7",    "--no-e2e-every",
                     "5",         NULL };
    if (pskgw_sim_cfg_parse(&cfg, 13, argv, err, sizeof(err)) != 0 ||
        pskgw_sim_stats_new(&stats) != 0 || pskgw_sim_api_new(&cfg, stats, &api) != 0)
        abort();
    pskgw_sim_reply_t r;
    const char body[] = "{\"APIKey\":\"fuzz-key\",\"APISecret\":\"fuzz-secret\"}";
    if (pskgw_sim_api_call(api, PSKGW_SIM_EP_AUTH, NULL, body, sizeof(body) - 1, 1000, &r) != 0 ||
        r.status != 200)
        abort();
    json_t *j = json_loads(r.body, 0, NULL);
    const char *t = NULL;
    if (!j || json_unpack(j, "{s:s}", "AuthToken", &t) != 0 || strlen(t) >= sizeof(token))
        abort();
    snprintf(token, sizeof(token), "%s", t);
    snprintf(bearer, sizeof(bearer), "Bearer %s", t);
    json_decref(j);
    pskgw_sim_reply_clear(&r);
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
    const char *auth = NULL;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    switch ((data[0] >> 2) & 3) {
    case 1:
        auth = token;
        break;
    case 2:
        auth = bearer;
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
        pskgw_sim_api_count(api, ep, body, len);
    pskgw_sim_reply_t r;
    if (pskgw_sim_api_call(api, ep, auth, body, len, 1001, &r) != 0)
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
