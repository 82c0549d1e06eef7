/* pskgw-devsim: command-line options (see opts.h). */
#include "tools/devsim/opts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tools/devsim/payload.h"

enum {
    O_TARGET = 256,
    O_TCP,
    O_FRAMING,
    O_DEVICES,
    O_RAMP,
    O_MESSAGES,
    O_RATE,
    O_SIZE,
    O_E2E,
    O_E2E_FRESH,
    O_E2E_FIXED,
    O_E2E_V2_LAYOUT,
    O_ID_PER_SESSION,
    O_RECONNECT,
    O_HS_PER_MSG,
    O_REBIND,
    O_REBIND_SECS,
    O_FAILOVER_TO,
    O_FAILOVER_AFTER,
    O_CID,
    O_RESUME,
    O_NO_TICKETS,
    O_IDLE,
    O_IDLE_SHARE,
    O_UNKNOWN,
    O_WRONG,
    O_UNKNOWN_BASE,
    O_SEED,
    O_PSK_BITS,
    O_CIPHER,
    O_MTU,
    O_PER_IP,
    O_FIRST_DEVICE,
    O_DURATION,
    O_HS_TIMEOUT,
    O_EXPECT_ACK,
    O_EXPECT_ECHO,
    O_ACK_TIMEOUT,
    O_HOLD,
    O_JSON,
    O_VERIFY,
    O_VERIFY_TIMEOUT,
    O_PROGRESS,
    O_RUN_ID,
    O_QUIET,
    O_PREENCRYPT,
    O_READY_FILE,
    O_START_FILE,
    O_REPLAY_DAMAGE,
    O_HELP,
    O_VERSION,
    O_ATTACK, /* the attack options: keep O_ATTACK first, O_ATTACK_IDS last */
    O_ATTACK_COUNT,
    O_ATTACK_RATE,
    O_ATTACK_SOURCES,
    O_ATTACK_SOURCE,
    O_ATTACK_CONC,
    O_ATTACK_TIMEOUT,
    O_ATTACK_HOLD,
    O_ATTACK_DELAY,
    O_ATTACK_VICTIM,
    O_ATTACK_IDS,
};

static const struct option long_opts[] = {
    { "target", required_argument, NULL, O_TARGET },
    { "tcp", required_argument, NULL, O_TCP },
    { "framing", required_argument, NULL, O_FRAMING },
    { "devices", required_argument, NULL, O_DEVICES },
    { "ramp", required_argument, NULL, O_RAMP },
    { "messages", required_argument, NULL, O_MESSAGES },
    { "rate", required_argument, NULL, O_RATE },
    { "size", required_argument, NULL, O_SIZE },
    { "e2e", required_argument, NULL, O_E2E },
    { "e2e-fresh-ki", no_argument, NULL, O_E2E_FRESH },
    { "e2e-fixed-ki", no_argument, NULL, O_E2E_FIXED },
    { "e2e-v2-layout", required_argument, NULL, O_E2E_V2_LAYOUT },
    { "identity-per-session", no_argument, NULL, O_ID_PER_SESSION },
    { "reconnect-every", required_argument, NULL, O_RECONNECT },
    { "handshake-per-message", no_argument, NULL, O_HS_PER_MSG },
    { "nat-rebind-every", required_argument, NULL, O_REBIND },
    { "rebind-every", required_argument, NULL, O_REBIND_SECS },
    { "failover-to", required_argument, NULL, O_FAILOVER_TO },
    { "failover-after", required_argument, NULL, O_FAILOVER_AFTER },
    { "cid", no_argument, NULL, O_CID },
    { "resume", no_argument, NULL, O_RESUME },
    { "no-tickets", no_argument, NULL, O_NO_TICKETS },
    { "idle-interval", required_argument, NULL, O_IDLE },
    { "idle-share", required_argument, NULL, O_IDLE_SHARE },
    { "unknown-share", required_argument, NULL, O_UNKNOWN },
    { "wrong-psk-share", required_argument, NULL, O_WRONG },
    { "unknown-index-base", required_argument, NULL, O_UNKNOWN_BASE },
    { "seed", required_argument, NULL, O_SEED },
    { "psk-bits", required_argument, NULL, O_PSK_BITS },
    { "cipher", required_argument, NULL, O_CIPHER },
    { "mtu", required_argument, NULL, O_MTU },
    { "devices-per-ip", required_argument, NULL, O_PER_IP },
    { "first-device", required_argument, NULL, O_FIRST_DEVICE },
    { "duration", required_argument, NULL, O_DURATION },
    { "handshake-timeout", required_argument, NULL, O_HS_TIMEOUT },
    { "expect-ack", no_argument, NULL, O_EXPECT_ACK },
    { "expect-echo", no_argument, NULL, O_EXPECT_ECHO },
    { "ack-timeout", required_argument, NULL, O_ACK_TIMEOUT },
    { "hold", required_argument, NULL, O_HOLD },
    { "json", required_argument, NULL, O_JSON },
    { "verify-file", required_argument, NULL, O_VERIFY },
    { "verify-timeout", required_argument, NULL, O_VERIFY_TIMEOUT },
    { "progress-interval", required_argument, NULL, O_PROGRESS },
    { "run-id", required_argument, NULL, O_RUN_ID },
    { "quiet", no_argument, NULL, O_QUIET },
    { "preencrypt", no_argument, NULL, O_PREENCRYPT },
    { "ready-file", required_argument, NULL, O_READY_FILE },
    { "start-file", required_argument, NULL, O_START_FILE },
    { "replay-damage", required_argument, NULL, O_REPLAY_DAMAGE },
    { "help", no_argument, NULL, O_HELP },
    { "version", no_argument, NULL, O_VERSION },
    { "attack", required_argument, NULL, O_ATTACK },
    { "attack-count", required_argument, NULL, O_ATTACK_COUNT },
    { "attack-rate", required_argument, NULL, O_ATTACK_RATE },
    { "attack-sources", required_argument, NULL, O_ATTACK_SOURCES },
    { "attack-source", required_argument, NULL, O_ATTACK_SOURCE },
    { "attack-concurrency", required_argument, NULL, O_ATTACK_CONC },
    { "attack-timeout", required_argument, NULL, O_ATTACK_TIMEOUT },
    { "attack-hold", required_argument, NULL, O_ATTACK_HOLD },
    { "attack-delay", required_argument, NULL, O_ATTACK_DELAY },
    { "attack-victim", required_argument, NULL, O_ATTACK_VICTIM },
    { "attack-identities", required_argument, NULL, O_ATTACK_IDS },
    { NULL, 0, NULL, 0 },
};

static int fail(char *err, size_t cap, const char *what, const char *arg)
{
    snprintf(err, cap, "%s: '%s'", what, arg != NULL ? arg : "");
    return PSKGW_EINVAL;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return PSKGW_EINVAL;
    *out = v;
    return 0;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end = NULL;
    if (s[0] == '-' || s[0] == '+' || s[0] == '\0')
        return PSKGW_EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return PSKGW_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* HOST:PORT, [V6]:PORT; loopback only; "localhost" means 127.0.0.1. */
static int parse_target(const char *s, struct sockaddr_storage *ss, char *text, size_t cap)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return PSKGW_EINVAL;
    size_t hl = (size_t)(colon - s);
    const char *h = s;
    if (s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']')
            return PSKGW_EINVAL;
        h = s + 1;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return PSKGW_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    uint32_t port;
    if (parse_u32(colon + 1, 1, 65535, &port) < 0)
        return PSKGW_EINVAL;
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
            return PSKGW_EDENIED;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        snprintf(text, cap, "%s:%u", host, (unsigned)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
            return PSKGW_EDENIED;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        snprintf(text, cap, "[%s]:%u", host, (unsigned)port);
        return 0;
    }
    return PSKGW_EINVAL;
}

static void defaults(pskgw_devsim_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->transport = PSKGW_DEVSIM_DTLS;
    o->framing = PSKGW_DEVSIM_FRAMING_NONE;
    o->devices = 10;
    o->messages = 10;
    o->rate = 1.0;
    o->size = 64;
    o->seed = PSKGW_DEVSIM_DEFAULT_SEED;
    o->psk_bits = 128;
    o->cipher = PSKGW_DEVSIM_MODULE_CIPHERS;
    o->mtu = 1400;
    o->per_ip = 1;
    o->duration = 300;
    o->handshake_timeout = 10;
    o->ack_timeout = 5;
    o->idle_share = -1; /* "not given" */
    o->verify_timeout = 10;
    o->progress_interval = 5;
    o->attack.count = 0; /* "not given": 100, replay 1 */
    o->attack.rate = 100;
    o->attack.sources = 0; /* "not given": 1, fill 64 */
    o->attack.concurrency = 1024;
    o->attack.timeout = 5;
    o->attack.hold = 10;
    o->attack.delay = -1; /* "not given": 0, replay 1 */
    inet_pton(AF_INET, PSKGW_DEVSIM_ATTACK_SOURCE_DEFAULT, &o->attack.source_base);
    o->attack.source_base = ntohl(o->attack.source_base);
}

const char *pskgw_devsim_attack_name(pskgw_devsim_attack_kind_t k)
{
    switch (k) {
    case PSKGW_DEVSIM_ATTACK_CKE_FLOOD:
        return "cke-flood";
    case PSKGW_DEVSIM_ATTACK_WRONG_KEY:
        return "wrong-key";
    case PSKGW_DEVSIM_ATTACK_REPLAY:
        return "replay";
    case PSKGW_DEVSIM_ATTACK_FILL:
        return "fill";
    default:
        return "none";
    }
}

uint32_t pskgw_devsim_attack_source(const pskgw_devsim_attack_opts_t *a, uint32_t i)
{
    uint32_t hi = a->source_base >> 8, pos = (a->source_base & 0xFFu) - 1u + i;
    return ((hi + pos / 254u) << 8) | (1u + pos % 254u);
}

/* The source address: loopback only (127.0.0.0/8 with a last octet 1..254, or ::1). */
static int parse_source(const char *s, pskgw_devsim_attack_opts_t *a)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, s, &v4) == 1) {
        uint32_t h = ntohl(v4.s_addr);
        if ((h >> 24) != 127)
            return PSKGW_EDENIED;
        if ((h & 0xFFu) == 0 || (h & 0xFFu) == 255)
            return PSKGW_EINVAL;
        a->source_base = h;
        return 0;
    }
    if (inet_pton(AF_INET6, s, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6) ? PSKGW_EINVAL : PSKGW_EDENIED;
    return PSKGW_EINVAL;
}

static int parse_attack_kind(const char *a, pskgw_devsim_attack_kind_t *k)
{
    for (int i = PSKGW_DEVSIM_ATTACK_CKE_FLOOD; i <= PSKGW_DEVSIM_ATTACK_FILL; i++)
        if (strcmp(a, pskgw_devsim_attack_name((pskgw_devsim_attack_kind_t)i)) == 0) {
            *k = (pskgw_devsim_attack_kind_t)i;
            return 0;
        }
    return PSKGW_EINVAL;
}

/* One --attack* option. */
static int parse_attack_opt(int c, const char *a, pskgw_devsim_attack_opts_t *t, char *err,
                            size_t cap)
{
    int rc;
    switch (c) {
    case O_ATTACK:
        if (parse_attack_kind(a, &t->kind) < 0)
            return fail(err, cap, "--attack must be cke-flood, wrong-key, replay or fill", a);
        return 0;
    case O_ATTACK_COUNT:
        if (parse_u32(a, 1, PSKGW_DEVSIM_MAX_ATTACK_COUNT, &t->count) < 0)
            return fail(err, cap, "--attack-count must be 1..1000000", a);
        return 0;
    case O_ATTACK_RATE:
        if (parse_double(a, 0.01, 1e6, &t->rate) < 0)
            return fail(err, cap, "--attack-rate must be 0.01..1000000 per second", a);
        return 0;
    case O_ATTACK_SOURCES:
        if (parse_u32(a, 1, PSKGW_DEVSIM_MAX_ATTACK_SOURCES, &t->sources) < 0)
            return fail(err, cap, "--attack-sources must be 1..65000", a);
        return 0;
    case O_ATTACK_SOURCE:
        rc = parse_source(a, t);
        if (rc == PSKGW_EDENIED)
            return fail(err, cap,
                        "refusing a non-loopback source address (127.0.0.0/8 or ::1 only)", a);
        if (rc < 0)
            return fail(err, cap,
                        "--attack-source must be an IPv4 loopback address ending in 1..254 (an "
                        "IPv6 target always uses ::1)",
                        a);
        return 0;
    case O_ATTACK_CONC:
        if (parse_u32(a, 1, PSKGW_DEVSIM_MAX_ATTACK_CONCURRENCY, &t->concurrency) < 0)
            return fail(err, cap, "--attack-concurrency must be 1..60000", a);
        return 0;
    case O_ATTACK_TIMEOUT:
        if (parse_double(a, 0.05, 3600, &t->timeout) < 0)
            return fail(err, cap, "--attack-timeout must be 0.05..3600 s", a);
        return 0;
    case O_ATTACK_HOLD:
        if (parse_double(a, 0, 3600, &t->hold) < 0)
            return fail(err, cap, "--attack-hold must be 0..3600 s", a);
        return 0;
    case O_ATTACK_DELAY:
        if (parse_double(a, 0, 3600, &t->delay) < 0)
            return fail(err, cap, "--attack-delay must be 0..3600 s", a);
        return 0;
    case O_ATTACK_VICTIM:
        if (parse_u32(a, 0, UINT32_MAX - 1, &t->victim) < 0)
            return fail(err, cap, "--attack-victim must be a device index", a);
        return 0;
    default: /* O_ATTACK_IDS */
        t->identities_path = a;
        return 0;
    }
}

/* After parsing: scenario defaults and the checks that need every option. */
static int check_attack(pskgw_devsim_opts_t *o, bool devices_given, char *err, size_t cap)
{
    pskgw_devsim_attack_opts_t *t = &o->attack;
    bool given = t->count || t->sources || t->delay >= 0 || t->identities_path;
    if (t->kind == PSKGW_DEVSIM_ATTACK_NONE) {
        if (given || o->devices == 0)
            return fail(err, cap, "--attack-* options and --devices 0 need --attack", "");
        return 0;
    }
    if (o->transport != PSKGW_DEVSIM_DTLS)
        return fail(err, cap, "--attack needs a DTLS --target", "");
    if (!devices_given)
        o->devices = 0; /* an attack alone unless a fleet is asked for */
    if (t->count == 0)
        t->count = t->kind == PSKGW_DEVSIM_ATTACK_REPLAY ? 1 : 100;
    if (t->sources == 0)
        t->sources = t->kind == PSKGW_DEVSIM_ATTACK_FILL ? 64 : 1;
    if (t->delay < 0)
        t->delay = t->kind == PSKGW_DEVSIM_ATTACK_REPLAY ? 1 : 0;
    if (t->identities_path != NULL && t->kind != PSKGW_DEVSIM_ATTACK_CKE_FLOOD)
        return fail(err, cap, "--attack-identities applies to --attack cke-flood", "");
    if (t->kind == PSKGW_DEVSIM_ATTACK_REPLAY && t->sources != 1)
        return fail(err, cap, "--attack replay uses one source (the victim's)", "");
    if (o->target.ss_family == AF_INET6 && t->sources != 1)
        return fail(err, cap, "an IPv6 target has one loopback source (::1): --attack-sources 1",
                    "");
    uint32_t last = pskgw_devsim_attack_source(t, t->sources - 1);
    if ((last >> 24) != 127)
        return fail(err, cap, "--attack-sources from --attack-source leave 127.0.0.0/8", "");
    return 0;
}

#define NOT_MINE 1 /* a parse_*_opt() that does not handle this option */

/* What the option loop has seen so far. */
typedef struct {
    bool have_target;
    bool framing_given;
    bool devices_given;
} parse_state_t;

/* --target, --tcp, --framing. 0, an error (err written) or NOT_MINE. */
static int parse_target_opt(int c, const char *a, pskgw_devsim_opts_t *o, parse_state_t *st,
                            char *err, size_t cap)
{
    int rc;

    switch (c) {
    case O_TARGET:
    case O_TCP:
        if (st->have_target)
            return fail(err, cap, "give one --target or --tcp", a);
        rc = parse_target(a, &o->target, o->target_text, sizeof(o->target_text));
        if (rc == PSKGW_EDENIED)
            return fail(err, cap, "refusing a non-loopback target", a);
        if (rc < 0)
            return fail(err, cap, "bad HOST:PORT", a);
        o->transport = c == O_TCP ? PSKGW_DEVSIM_TLS : PSKGW_DEVSIM_DTLS;
        st->have_target = true;
        return 0;
    case O_FRAMING:
        if (strcmp(a, "len16") == 0)
            o->framing = PSKGW_DEVSIM_FRAMING_LEN16;
        else if (strcmp(a, "newline") == 0)
            o->framing = PSKGW_DEVSIM_FRAMING_NEWLINE;
        else if (strcmp(a, "record") == 0)
            o->framing = PSKGW_DEVSIM_FRAMING_RECORD;
        else
            return fail(err, cap, "--framing must be len16, newline or record", a);
        st->framing_given = true;
        return 0;
    default:
        return NOT_MINE;
    }
}

/* How many devices send how much, how fast, and how they reconnect and idle. 0, an error (err
 * written) or NOT_MINE. */
static int parse_load_opt(int c, const char *a, pskgw_devsim_opts_t *o, parse_state_t *st,
                          char *err, size_t cap)
{
    uint32_t u;

    switch (c) {
    case O_DEVICES:
        if (parse_u32(a, 0, PSKGW_DEVSIM_MAX_DEVICES, &o->devices) < 0)
            return fail(err, cap, "--devices must be 1..1000000 (0 with --attack)", a);
        st->devices_given = true;
        return 0;
    case O_RAMP:
        if (parse_double(a, 0, 1e7, &o->ramp) < 0)
            return fail(err, cap, "--ramp must be 0..1e7 devices/s", a);
        return 0;
    case O_MESSAGES:
        if (parse_u32(a, 0, PSKGW_DEVSIM_MAX_MESSAGES, &o->messages) < 0)
            return fail(err, cap, "--messages must be 0..1000000", a);
        return 0;
    case O_RATE:
        if (parse_double(a, 1e-3, 1e5, &o->rate) < 0)
            return fail(err, cap, "--rate must be 0.001..100000 messages/s", a);
        return 0;
    case O_SIZE:
        if (parse_u32(a, PSKGW_DEVSIM_PAYLOAD_MIN, PSKGW_DEVSIM_PAYLOAD_MAX, &u) < 0)
            return fail(err, cap, "--size must be 32..16000", a);
        o->size = u;
        return 0;
    case O_RECONNECT:
        if (parse_u32(a, 1, PSKGW_DEVSIM_MAX_MESSAGES, &o->reconnect_every) < 0)
            return fail(err, cap, "--reconnect-every must be >= 1", a);
        return 0;
    case O_HS_PER_MSG:
        o->reconnect_every = 1;
        return 0;
    case O_REBIND:
        if (parse_u32(a, 1, PSKGW_DEVSIM_MAX_MESSAGES, &o->nat_rebind_every) < 0)
            return fail(err, cap, "--nat-rebind-every must be >= 1", a);
        return 0;
    case O_CID:
        o->cid = true;
        return 0;
    case O_RESUME:
        o->resume = true;
        return 0;
    case O_NO_TICKETS:
        o->no_tickets = true;
        return 0;
    case O_REBIND_SECS:
        if (parse_double(a, 0.001, 86400, &o->rebind_every_s) < 0)
            return fail(err, cap, "--rebind-every must be 0.001..86400 s", a);
        return 0;
    case O_FAILOVER_TO: {
        int rc = parse_target(a, &o->failover_to, o->failover_text, sizeof(o->failover_text));
        if (rc == PSKGW_EDENIED)
            return fail(err, cap, "refusing a non-loopback --failover-to", a);
        if (rc < 0)
            return fail(err, cap, "--failover-to: bad HOST:PORT", a);
        return 0;
    }
    case O_FAILOVER_AFTER:
        if (parse_u32(a, 1, PSKGW_DEVSIM_MAX_MESSAGES, &o->failover_after) < 0)
            return fail(err, cap, "--failover-after must be >= 1", a);
        return 0;
    case O_IDLE:
        if (parse_double(a, 0.001, 86400, &o->idle_interval) < 0)
            return fail(err, cap, "--idle-interval must be 0.001..86400 s", a);
        return 0;
    case O_IDLE_SHARE:
        if (parse_double(a, 0, 1, &o->idle_share) < 0)
            return fail(err, cap, "--idle-share must be 0..1", a);
        return 0;
    case O_PER_IP:
        if (parse_u32(a, 1, 60000, &o->per_ip) < 0)
            return fail(err, cap, "--devices-per-ip must be 1..60000", a);
        return 0;
    case O_FIRST_DEVICE:
        if (parse_u32(a, 0, PSKGW_DEVSIM_MAX_DEVICES, &o->first_device) < 0)
            return fail(err, cap, "--first-device must be 0..1000000", a);
        return 0;
    default:
        return NOT_MINE;
    }
}

/* Identities, keys, E2E and the wire: who the devices are and what they send. 0, an error (err
 * written) or NOT_MINE. */
static int parse_identity_opt(int c, const char *a, pskgw_devsim_opts_t *o, char *err, size_t cap)
{
    uint32_t u;

    switch (c) {
    case O_E2E:
        if (strcmp(a, "none") == 0)
            o->e2e = 0;
        else if (strcmp(a, "v1") == 0)
            o->e2e = 1;
        else if (strcmp(a, "v2") == 0)
            o->e2e = 2;
        else
            return fail(err, cap, "--e2e must be none, v1 or v2", a);
        return 0;
    case O_E2E_FRESH:
        o->e2e_fixed_ki = false;
        return 0;
    case O_E2E_FIXED:
        o->e2e_fixed_ki = true;
        return 0;
    case O_E2E_V2_LAYOUT:
        if (pskgw_rot_v2_layout_parse(a, &o->e2e_v2_layout) < 0)
            return fail(err, cap, "--e2e-v2-layout must be seed or pad1", a);
        return 0;
    case O_ID_PER_SESSION:
        o->identity_per_session = true;
        return 0;
    case O_UNKNOWN:
        if (parse_double(a, 0, 1, &o->unknown_share) < 0)
            return fail(err, cap, "--unknown-share must be 0..1", a);
        return 0;
    case O_WRONG:
        if (parse_double(a, 0, 1, &o->wrong_psk_share) < 0)
            return fail(err, cap, "--wrong-psk-share must be 0..1", a);
        return 0;
    case O_UNKNOWN_BASE:
        if (parse_u32(a, 0, UINT32_MAX - PSKGW_DEVSIM_MAX_DEVICES, &o->unknown_index_base) < 0)
            return fail(err, cap, "--unknown-index-base is too large", a);
        o->unknown_by_index = true;
        return 0;
    case O_SEED:
        o->seed = a;
        return 0;
    case O_PSK_BITS:
        if (parse_u32(a, 128, 256, &u) < 0 || (u != 128 && u != 256))
            return fail(err, cap, "--psk-bits must be 128 or 256", a);
        o->psk_bits = u;
        return 0;
    case O_CIPHER:
        if (a[0] == '\0')
            return fail(err, cap, "--cipher must not be empty", a);
        o->cipher = a;
        return 0;
    case O_MTU:
        if (parse_u32(a, 256, 65507, &u) < 0)
            return fail(err, cap, "--mtu must be 256..65507", a);
        o->mtu = u;
        return 0;
    default:
        return NOT_MINE;
    }
}

/* The run: duration, deadlines, acknowledgements, output files, progress, run id. 0, an error
 * (err written) or NOT_MINE. */
static int parse_run_opt(int c, const char *a, pskgw_devsim_opts_t *o, char *err, size_t cap)
{

    switch (c) {
    case O_DURATION:
        if (parse_double(a, 0.1, PSKGW_DEVSIM_MAX_DURATION, &o->duration) < 0)
            return fail(err, cap, "--duration must be 0.1..86400 s", a);
        return 0;
    case O_HS_TIMEOUT:
        if (parse_double(a, 0.05, 3600, &o->handshake_timeout) < 0)
            return fail(err, cap, "--handshake-timeout must be 0.05..3600 s", a);
        return 0;
    case O_EXPECT_ACK:
        o->expect_ack = true;
        return 0;
    case O_EXPECT_ECHO:
        o->expect_ack = o->expect_echo = true;
        return 0;
    case O_ACK_TIMEOUT:
        if (parse_double(a, 0, 3600, &o->ack_timeout) < 0)
            return fail(err, cap, "--ack-timeout must be 0..3600 s", a);
        return 0;
    case O_HOLD:
        if (parse_double(a, 0, PSKGW_DEVSIM_MAX_DURATION, &o->hold) < 0)
            return fail(err, cap, "--hold must be 0..86400 s", a);
        return 0;
    case O_JSON:
        o->json_path = a;
        return 0;
    case O_VERIFY:
        o->verify_path = a;
        return 0;
    case O_VERIFY_TIMEOUT:
        if (parse_double(a, 0, 3600, &o->verify_timeout) < 0)
            return fail(err, cap, "--verify-timeout must be 0..3600 s", a);
        return 0;
    case O_PROGRESS:
        if (parse_double(a, 0.1, 3600, &o->progress_interval) < 0)
            return fail(err, cap, "--progress-interval must be 0.1..3600 s", a);
        return 0;
    case O_RUN_ID: {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(a, &end, 16);
        if (errno != 0 || end == a || *end != '\0' || strlen(a) > 8 || a[0] == '-' || a[0] == '+')
            return fail(err, cap, "--run-id must be 1..8 hex digits", a);
        o->run_id = (uint32_t)v;
        o->run_id_set = true;
        return 0;
    }
    case O_QUIET:
        o->quiet = true;
        return 0;
    case O_PREENCRYPT:
        o->preencrypt = true;
        return 0;
    case O_READY_FILE:
        o->ready_file = a;
        return 0;
    case O_START_FILE:
        o->start_file = a;
        return 0;
    case O_REPLAY_DAMAGE: {
        char tail = 0;
        if (sscanf(a, "%" SCNu32 ":%" SCNu32 "%c", &o->damage_device, &o->damage_message, &tail) !=
                2 ||
            a[0] == '-' || strchr(a, '-') != NULL)
            return fail(err, cap, "--replay-damage must be DEVICE:MESSAGE (indexes from 0)", a);
        o->damage = true;
        return 0;
    }
    default:
        return NOT_MINE;
    }
}

/* --preencrypt: one session per device, nothing to wait for between messages. 0 or an error. */
static int check_replay(const pskgw_devsim_opts_t *o, char *err, size_t cap)
{
    if ((o->ready_file != NULL || o->start_file != NULL || o->damage) && !o->preencrypt)
        return fail(err, cap, "--ready-file, --start-file and --replay-damage go with --preencrypt",
                    "");
    if (!o->preencrypt)
        return 0;
    if (o->transport != PSKGW_DEVSIM_DTLS || o->expect_ack || o->reconnect_every != 0 ||
        o->nat_rebind_every != 0 || o->rebind_every_s > 0 || o->failover_after != 0 ||
        o->idle_interval > 0 || o->attack.kind != PSKGW_DEVSIM_ATTACK_NONE)
        return fail(err, cap,
                    "--preencrypt is for DTLS devices with one session each: not with --tcp, "
                    "acks or echoes, reconnects, rebinding, failover, idle devices or --attack",
                    "");
    if ((uint64_t)o->devices * o->messages > 50000000u)
        return fail(err, cap, "--preencrypt keeps every record in memory: at most 50,000,000", "");
    if (o->damage && (o->damage_device >= o->devices || o->damage_message >= o->messages))
        return fail(err, cap, "--replay-damage names a device or message outside the run", "");
    return 0;
}

/* The options that depend on each other, once all are read (framing defaults filled in). 0 or
 * an error (err written). */
static int check_combination(pskgw_devsim_opts_t *o, bool framing_given, char *err, size_t cap)
{
    if (o->transport == PSKGW_DEVSIM_DTLS && framing_given)
        return fail(err, cap, "--framing applies to --tcp only", "");
    if (o->transport == PSKGW_DEVSIM_TLS && !framing_given)
        o->framing = PSKGW_DEVSIM_FRAMING_LEN16;
    if (o->framing == PSKGW_DEVSIM_FRAMING_NEWLINE && o->e2e != 0)
        return fail(err, cap, "E2E payloads are binary: use --framing len16 or record", "");
    if (o->unknown_share + o->wrong_psk_share > 1.0)
        return fail(err, cap, "--unknown-share + --wrong-psk-share must be <= 1", "");
    if (o->idle_share >= 0 && o->idle_interval <= 0)
        return fail(err, cap, "--idle-share needs --idle-interval", "");
    if (o->idle_share < 0)
        o->idle_share = o->idle_interval > 0 ? 1.0 : 0.0;
    if (o->e2e != 0 && !o->e2e_fixed_ki && o->messages > PSKGW_DEVSIM_MAX_E2E_MESSAGES)
        return fail(err, cap,
                    "--messages over 65536 with --e2e would reuse a key identity and nonce (16-bit "
                    "counter): use fewer messages or --e2e-fixed-ki",
                    "");
    size_t wire = o->size + (o->e2e ? pskgw_rot_e2e_overhead_as(o->e2e, o->e2e_v2_layout) : 0) + 2;
    if (o->transport == PSKGW_DEVSIM_DTLS && wire + 13 + 8 + 8 > o->mtu)
        return fail(err, cap, "--size (plus E2E overhead) does not fit in one datagram of --mtu",
                    "");
    if (o->verify_path != NULL && o->messages == 0)
        return fail(err, cap, "--verify-file needs --messages >= 1", "");
    if (o->cid && (o->transport != PSKGW_DEVSIM_DTLS || o->attack.kind != PSKGW_DEVSIM_ATTACK_NONE))
        return fail(err, cap, "--cid applies to DTLS devices only, not with --attack", "");
    if (o->resume && o->cid)
        return fail(err, cap, "--resume is for OpenSSL clients, not with --cid", "");
    if (o->no_tickets && !o->resume)
        return fail(err, cap, "--no-tickets goes with --resume", "");
    if (o->cid && !pskgw_devsim_client_cid_available())
        return fail(
            err, cap,
            "--cid needs a wolfSSL with DTLS 1.2 Connection ID (>= 5.7.4, --enable-dtlscid: "
            "scripts/build-wolfssl)",
            "");
    if (o->rebind_every_s > 0 &&
        (o->transport != PSKGW_DEVSIM_DTLS || !o->expect_ack || o->nat_rebind_every != 0))
        return fail(err, cap,
                    "--rebind-every needs DTLS and --expect-ack (an ack tells whether the session "
                    "followed), not --nat-rebind-every",
                    "");
    if ((o->failover_after != 0) != (o->failover_to.ss_family != 0))
        return fail(err, cap, "--failover-to and --failover-after go together", "");
    if (o->failover_after != 0 &&
        (o->transport != PSKGW_DEVSIM_DTLS || !o->expect_ack || o->rebind_every_s > 0 ||
         o->nat_rebind_every != 0 || o->reconnect_every != 0 ||
         o->failover_to.ss_family != o->target.ss_family))
        return fail(err, cap,
                    "--failover-to needs DTLS and --expect-ack (an ack tells whether the session "
                    "was taken over), a target of the same family, and no rebinding or "
                    "reconnecting",
                    "");
    if (o->verify_path != NULL && o->first_device != 0)
        return fail(err, cap,
                    "--verify-file attributes messages to devices 0..N-1: not with "
                    "--first-device",
                    "");
    return 0;
}

int pskgw_devsim_opts_parse(int argc, char **argv, pskgw_devsim_opts_t *out, char *err,
                            size_t err_cap)
{
    pskgw_devsim_opts_t o;
    defaults(&o);
    parse_state_t st = { false, false, false };
    int c, rc;
    optind = 0; /* full reset (GNU): parse may be called more than once */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        const char *a = optarg;
        if (c == O_HELP || c == O_VERSION) {
            *out = o;
            return c == O_HELP ? 1 : 2;
        }
        rc = parse_target_opt(c, a, &o, &st, err, err_cap);
        if (rc == NOT_MINE)
            rc = parse_load_opt(c, a, &o, &st, err, err_cap);
        if (rc == NOT_MINE)
            rc = parse_identity_opt(c, a, &o, err, err_cap);
        if (rc == NOT_MINE)
            rc = parse_run_opt(c, a, &o, err, err_cap);
        if (rc == NOT_MINE && c >= O_ATTACK && c <= O_ATTACK_IDS)
            rc = parse_attack_opt(c, a, &o.attack, err, err_cap);
        if (rc == NOT_MINE)
            return fail(err, err_cap, "unknown or incomplete option",
                        optind > 0 && optind <= argc ? argv[optind - 1] : "");
        if (rc < 0)
            return rc;
    }
    if (optind < argc)
        return fail(err, err_cap, "unexpected argument", argv[optind]);
    if (!st.have_target)
        return fail(err, err_cap, "one of --target or --tcp is required", "");
    rc = check_combination(&o, st.framing_given, err, err_cap);
    if (rc == 0)
        rc = check_replay(&o, err, err_cap);
    if (rc == 0)
        rc = check_attack(&o, st.devices_given, err, err_cap);
    if (rc < 0)
        return rc;
    *out = o;
    return 0;
}
