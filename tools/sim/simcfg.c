/* pskgw-sim configuration parsing. */
#include "tools/sim/simcfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static const char usage[] =
    "usage: pskgw-sim --api-key K --api-secret S [options]\n"
    "\n"
    "Simulates the u-blox security service (POST /v1/authenticate, /v1/GetPSK,\n"
    "/v1/GetE2EDecryptionParameters and its alias /v1/e2e/uplink/protectionparameters/get).\n"
    "Keys come from the pskgw_rotkeys derivation of --seed (tools/rotkeys/README.md).\n"
    "The first line on stdout is the base URL (http://HOST:PORT or https://HOST:PORT).\n"
    "Runs until SIGTERM or SIGINT, then exits 0.\n"
    "\n"
    "  --listen HOST:PORT      address to serve (default 127.0.0.1:0; port 0 = a free port;\n"
    "                          IPv6 as [::1]:PORT)\n"
    "  --api-key K             APIKey of a domain; pairs with the next --api-secret\n"
    "  --api-secret S          APISecret of that domain (repeat the pair for more domains,\n"
    "                          up to 16)\n"
    "  --seed SEED             root-of-trust seed (default \"pskgw-sim\")\n"
    "  --token-ttl SECONDS     AuthToken lifetime, exp - iat (default 3600)\n"
    "  --devices N             device indexes 0..N-1 exist; a valid identity with index >= N\n"
    "                          is 404 (default 1000000)\n"
    "  --disabled-every N      device i has PSK provisioning disabled (403) when\n"
    "                          i % N == N-1 (default 0: none)\n"
    "  --disable-identity HEX  that PSK identity is disabled (403); repeatable\n"
    "  --no-e2e-every N        device i has E2E disabled (403) when i % N == N-1 (default 0)\n"
    "  --e2e-v2-layout L       E2E V2 as simulated modules make it: seed (KI | ct | 8-byte tag,\n"
    "                          AES_128_CCM_8) or pad1 (KI | 1 byte | ct | 16-byte tag,\n"
    "                          AES_128_CCM: 28 bytes); answers MACLength/CipherSuite to match\n"
    "                          (default seed; the gateway's e2e_v2_layout must agree)\n"
    "  --latency-ms MS         added latency before every API answer (default 0)\n"
    "  --jitter-ms MS          plus a uniform random 0..MS (default 0)\n"
    "  --latency-jitter-ms J   instead of --jitter-ms: --latency-ms plus or minus a uniform\n"
    "                          random J (J <= --latency-ms; e.g. 100 +/- 50 ms)\n"
    "  --error-rate R          fraction 0..1 of API calls answered with --error-status\n"
    "  --error-status S        status for --error-rate (default 503)\n"
    "  --ratelimit-rate R      fraction 0..1 of API calls answered 429 with Retry-After\n"
    "  --retry-after S         Retry-After seconds on those 429s (default 1)\n"
    "  --drop-rate R           fraction 0..1 of API calls whose connection is closed\n"
    "                          without an answer\n"
    "  --extra-fields-rate R   fraction 0..1 of 200 answers that gain unknown fields (top\n"
    "                          level and nested)\n"
    "  --error-body-rate R     fraction 0..1 of API calls answered 200 with an error body\n"
    "  --truncate-rate R       fraction 0..1 of 200 answers cut short (truncated JSON)\n"
    "  --tls-handshake-delay-ms MS  with --tls: every TLS handshake waits MS before the\n"
    "                          server answers the ClientHello\n"
    "  --token-early-expiry-ms MS  AuthTokens die MS after issue although their exp claim\n"
    "                          says --token-ttl (0: off)\n"
    "  --strict                refuse what a careful real service would refuse: no\n"
    "                          Content-Type: application/json (415), KeyLength other than\n"
    "                          the strings \"128\"/\"256\", unknown request fields (400), an\n"
    "                          Authorization form other than the domain's (401); also\n"
    "                          when the environment has PSKGW_SIM_STRICT=1\n"
    "  --auth-header raw|bearer  the Authorization form of the domain of the preceding\n"
    "                          --api-key/--api-secret pair (default raw: \"<token>\";\n"
    "                          bearer: \"Bearer <token>\"); enforced by --strict\n"
    "  --tls                   serve HTTPS with a freshly generated self-signed certificate\n"
    "                          (EC P-256; SAN 127.0.0.1, ::1, localhost and the listen host)\n"
    "  --cert-out FILE         write that certificate (PEM) to FILE, for clients' CA file\n"
    "  --verbose               log refused authentications, dropped calls, token expiry\n"
    "                          and libmicrohttpd messages to stderr (never secrets)\n"
    "  --show-device N         print device N's identity, PSKs, UID, KIs and a sample E2E\n"
    "                          payload for --seed as JSON, then exit (no server)\n"
    "  --help                  this text\n"
    "\n"
    "Control endpoints (no authentication; not part of the real API):\n"
    "  GET  /_sim/stats          calls, statuses, per-identity counts\n"
    "  POST /_sim/reset          zero the stats\n"
    "  GET  /_sim/faults         current faults\n"
    "  POST /_sim/faults         change faults: {\"latency_ms\",\"jitter_ms\",\"error_rate\",\n"
    "                            "
    "\"error_status\",\"ratelimit_rate\",\"retry_after_s\",\"drop_rate\",\n"
    "                            \"error_next\",\"ratelimit_next\",\"drop_next\",\n"
    "                            \"extra_fields_rate\",\"extra_fields_next\",\"error_body_rate\",\n"
    "                            \"error_body_next\",\"truncate_rate\",\"truncate_next\",\n"
    "                            \"tls_handshake_delay_ms\",\"token_early_expiry_ms\"}\n"
    "                            (all optional)\n"
    "  POST /_sim/expire-tokens  every AuthToken issued so far becomes invalid (401)\n";

const char *pskgw_sim_cfg_usage(void)
{
    return usage;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    if (!s || !*s || !isdigit((unsigned char)s[0]))
        return PSKGW_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return PSKGW_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    uint32_t v = 0;
    int rc = parse_u32(s, max, &v);
    if (rc == 0)
        *out = v;
    return rc;
}

static int parse_rate(const char *s, double *out)
{
    char *end = NULL;
    if (!s || !*s)
        return PSKGW_EINVAL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v >= 0.0 && v <= 1.0))
        return PSKGW_EINVAL;
    *out = v;
    return 0;
}

static int parse_listen(pskgw_sim_cfg_t *cfg, const char *s)
{
    const char *colon;
    const char *host = s;
    size_t host_len;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return PSKGW_EINVAL;
        host = s + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return PSKGW_EINVAL;
        host_len = (size_t)(colon - s);
    }
    uint32_t port = 0;
    if (host_len == 0 || parse_u32(colon + 1, 65535, &port) < 0)
        return PSKGW_EINVAL;
    cfg->host = host;
    cfg->host_len = host_len;
    cfg->port = (uint16_t)port;
    return 0;
}

static int parse_identity(pskgw_sim_cfg_t *cfg, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 28 || n % 2 || cfg->ndisabled >= PSKGW_SIM_MAX_DISABLED)
        return PSKGW_EINVAL;
    char *dst = cfg->disabled[cfg->ndisabled];
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return PSKGW_EINVAL;
        dst[i] = (char)toupper((unsigned char)s[i]);
    }
    dst[n] = '\0';
    cfg->ndisabled++;
    return 0;
}

/* What the flags must add up to (not needed for --show-device). */
static int check_complete(const pskgw_sim_cfg_t *cfg, int pending_key, char *err, size_t err_cap)
{
    if (pending_key) {
        snprintf(err, err_cap, "--api-key without a following --api-secret");
        return PSKGW_EINVAL;
    }
    if (cfg->ndomains == 0) {
        snprintf(err, err_cap, "at least one --api-key/--api-secret pair is required");
        return PSKGW_EINVAL;
    }
    if (cfg->cert_out && !cfg->tls) {
        snprintf(err, err_cap, "--cert-out needs --tls");
        return PSKGW_EINVAL;
    }
    return 0;
}

/* --latency-jitter-ms J: MS +/- J is MS - J plus the uniform 0..2J that --jitter-ms adds. */
static int fold_latency_jitter(pskgw_sim_cfg_t *cfg, char *err, size_t err_cap)
{
    pskgw_sim_faults_t *f = &cfg->faults;

    if (!cfg->latency_jitter_ms)
        return 0;
    if (f->jitter_ms || cfg->latency_jitter_ms > f->latency_ms) {
        snprintf(err, err_cap,
                 "--latency-jitter-ms needs --latency-ms at least as large and no "
                 "--jitter-ms");
        return PSKGW_EINVAL;
    }
    f->latency_ms -= cfg->latency_jitter_ms;
    f->jitter_ms = 2 * cfg->latency_jitter_ms;
    return 0;
}

/* The fault flags (--latency-ms ... --token-early-expiry-ms): 1 when opt is one of them (its
 * value parsed into *f, *rc < 0 when bad), 0 otherwise. */
static int fault_option(const char *opt, const char *val, pskgw_sim_faults_t *f, int *rc)
{
    if (strcmp(opt, "--latency-ms") == 0) {
        *rc = parse_uint(val, 600000, &f->latency_ms);
    } else if (strcmp(opt, "--jitter-ms") == 0) {
        *rc = parse_uint(val, 600000, &f->jitter_ms);
    } else if (strcmp(opt, "--error-rate") == 0) {
        *rc = parse_rate(val, &f->error_rate);
    } else if (strcmp(opt, "--error-status") == 0) {
        *rc = parse_uint(val, 599, &f->error_status);
        if (*rc == 0 && f->error_status < 100)
            *rc = PSKGW_EINVAL;
    } else if (strcmp(opt, "--ratelimit-rate") == 0) {
        *rc = parse_rate(val, &f->ratelimit_rate);
    } else if (strcmp(opt, "--retry-after") == 0) {
        *rc = parse_uint(val, 86400, &f->retry_after_s);
    } else if (strcmp(opt, "--drop-rate") == 0) {
        *rc = parse_rate(val, &f->drop_rate);
    } else if (strcmp(opt, "--extra-fields-rate") == 0) {
        *rc = parse_rate(val, &f->extra_fields_rate);
    } else if (strcmp(opt, "--error-body-rate") == 0) {
        *rc = parse_rate(val, &f->error_body_rate);
    } else if (strcmp(opt, "--truncate-rate") == 0) {
        *rc = parse_rate(val, &f->truncate_rate);
    } else if (strcmp(opt, "--tls-handshake-delay-ms") == 0) {
        *rc = parse_uint(val, 600000, &f->tls_handshake_delay_ms);
    } else if (strcmp(opt, "--token-early-expiry-ms") == 0) {
        *rc = parse_uint(val, 600000, &f->token_early_expiry_ms);
    } else {
        return 0;
    }
    return 1;
}

int pskgw_sim_cfg_parse(pskgw_sim_cfg_t *cfg, int argc, char **argv, char *err, size_t err_cap)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->host_len = strlen(cfg->host);
    cfg->seed = "pskgw-sim";
    cfg->token_ttl_s = 3600;
    cfg->devices = 1000000;
    cfg->faults.error_status = 503;
    cfg->faults.retry_after_s = 1;
    int pending_key = 0; /* an --api-key waiting for its --api-secret */

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        int takes = 1;
        pskgw_sim_faults_t *f = &cfg->faults;

        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            cfg->help = true;
            return 0;
        } else if (strcmp(opt, "--tls") == 0) {
            cfg->tls = true;
            takes = 0;
        } else if (strcmp(opt, "--verbose") == 0) {
            cfg->verbose = true;
            takes = 0;
        } else if (strcmp(opt, "--strict") == 0) {
            cfg->strict = true;
            takes = 0;
        } else if (!val) {
            snprintf(err, err_cap, "option \"%s\" unknown or missing its value", opt);
            return PSKGW_EINVAL;
        } else if (strcmp(opt, "--listen") == 0) {
            rc = parse_listen(cfg, val);
        } else if (strcmp(opt, "--api-key") == 0) {
            if (pending_key || cfg->ndomains >= PSKGW_SIM_MAX_DOMAINS || !*val)
                rc = PSKGW_EINVAL;
            else {
                cfg->domains[cfg->ndomains].key = argv[i + 1];
                pending_key = 1;
            }
        } else if (strcmp(opt, "--api-secret") == 0) {
            if (!pending_key)
                rc = PSKGW_EINVAL;
            else {
                cfg->domains[cfg->ndomains++].secret = argv[i + 1];
                pending_key = 0;
            }
        } else if (strcmp(opt, "--seed") == 0) {
            cfg->seed = val;
        } else if (strcmp(opt, "--token-ttl") == 0) {
            rc = parse_uint(val, 10u * 365 * 86400, &cfg->token_ttl_s);
            if (rc == 0 && cfg->token_ttl_s == 0)
                rc = PSKGW_EINVAL;
        } else if (strcmp(opt, "--devices") == 0) {
            rc = parse_u32(val, UINT32_MAX, &cfg->devices);
        } else if (strcmp(opt, "--disabled-every") == 0) {
            rc = parse_u32(val, UINT32_MAX, &cfg->disabled_every);
        } else if (strcmp(opt, "--no-e2e-every") == 0) {
            rc = parse_u32(val, UINT32_MAX, &cfg->no_e2e_every);
        } else if (strcmp(opt, "--e2e-v2-layout") == 0) {
            rc = pskgw_rot_v2_layout_parse(val, &cfg->e2e_v2_layout);
        } else if (strcmp(opt, "--disable-identity") == 0) {
            rc = parse_identity(cfg, val);
        } else if (strcmp(opt, "--latency-jitter-ms") == 0) {
            rc = parse_uint(val, 300000, &cfg->latency_jitter_ms);
        } else if (fault_option(opt, val, f, &rc)) {
            /* parsed into cfg->faults */
        } else if (strcmp(opt, "--auth-header") == 0) {
            if (pending_key || cfg->ndomains == 0)
                rc = PSKGW_EINVAL; /* it follows a complete pair */
            else if (strcmp(val, "raw") == 0 || strcmp(val, "bearer") == 0)
                cfg->domains[cfg->ndomains - 1].bearer = val[0] == 'b';
            else
                rc = PSKGW_EINVAL;
        } else if (strcmp(opt, "--show-device") == 0) {
            rc = parse_u32(val, UINT32_MAX, &cfg->show_index);
            cfg->show_device = true;
        } else if (strcmp(opt, "--cert-out") == 0) {
            cfg->cert_out = val;
        } else {
            snprintf(err, err_cap, "unknown option \"%s\"", opt);
            return PSKGW_EINVAL;
        }
        if (rc < 0) {
            snprintf(err, err_cap, "bad value for %s", opt);
            return PSKGW_EINVAL;
        }
        i += takes;
    }
    if (fold_latency_jitter(cfg, err, err_cap) < 0)
        return PSKGW_EINVAL;
    return cfg->show_device ? 0 : check_complete(cfg, pending_key, err, err_cap);
}
