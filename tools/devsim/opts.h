/* pskgw-devsim: command-line options (pure parsing, no I/O except the usage text).
 *
 * Every run is bounded: device count, messages per device and the wall-clock duration all have
 * defaults and hard upper limits, checked here. Targets must be loopback addresses (127.0.0.0/8 or
 * ::1): anything else is refused, there is no override.
 */
#ifndef PSKGW_TOOLS_DEVSIM_OPTS_H
#define PSKGW_TOOLS_DEVSIM_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "tools/devsim/client.h"
#include "tools/rotkeys/rotkeys.h"

#define PSKGW_DEVSIM_MAX_DEVICES  1000000u
#define PSKGW_DEVSIM_MAX_MESSAGES 1000000u
#define PSKGW_DEVSIM_MAX_DURATION 86400.0
/* E2E key identities carry a 16-bit counter: more messages per device would reuse one. */
#define PSKGW_DEVSIM_MAX_E2E_MESSAGES 65536u

/* The default ClientHello offers several PSK suites, as a module does, and the server picks:
 * the gateway's default suites and the other PSK suites a (D)TLS 1.2 stack commonly offers. */
#define PSKGW_DEVSIM_MODULE_CIPHERS                                                              \
    "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:PSK-AES128-CCM:PSK-AES256-CCM:" \
    "PSK-AES128-CBC-SHA256:PSK-AES256-CBC-SHA384:PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA"

typedef enum {
    PSKGW_DEVSIM_FRAMING_NONE = 0, /* DTLS: one record = one message */
    PSKGW_DEVSIM_FRAMING_LEN16,    /* TLS: 2-byte big-endian length + message */
    PSKGW_DEVSIM_FRAMING_NEWLINE,  /* TLS: message + '\n' */
    PSKGW_DEVSIM_FRAMING_RECORD,   /* TLS: one TLS record (one SSL_write) = one message */
} pskgw_devsim_framing_t;

/* Hostile scenarios (hostile.h): at most one per run, alongside the fleet (which may be empty). */
typedef enum {
    PSKGW_DEVSIM_ATTACK_NONE = 0,
    PSKGW_DEVSIM_ATTACK_CKE_FLOOD, /* cookie exchange + a random identity's ClientKeyExchange */
    PSKGW_DEVSIM_ATTACK_WRONG_KEY, /* full handshakes with a victim's identity and a wrong PSK */
    PSKGW_DEVSIM_ATTACK_REPLAY,    /* a victim device's captured ClientHello replayed later */
    PSKGW_DEVSIM_ATTACK_FILL,      /* half-open handshakes held from many source addresses */
} pskgw_devsim_attack_kind_t;

#define PSKGW_DEVSIM_MAX_ATTACK_COUNT       1000000u
#define PSKGW_DEVSIM_MAX_ATTACK_SOURCES     65000u
#define PSKGW_DEVSIM_MAX_ATTACK_CONCURRENCY 60000u
#define PSKGW_DEVSIM_DEFAULT_SEED           "pskgw-sim" /* pskgw-sim's default */
#define PSKGW_DEVSIM_ATTACK_SOURCE_DEFAULT  "127.2.0.1"

typedef struct {
    pskgw_devsim_attack_kind_t kind;
    uint32_t count;       /* attempts (flood: ClientKeyExchanges; fill: half-open handshakes;
                             wrong-key: handshakes; replay: replayed ClientHellos) */
    double rate;          /* attempts started per second */
    uint32_t sources;     /* distinct source addresses, attempts spread round-robin */
    uint32_t source_base; /* first source, IPv4 host order in 127.0.0.0/8 (IPv6 target: ::1) */
    uint32_t concurrency; /* attempts in flight at most (one socket each) */
    double timeout;       /* an attempt waiting longer than this for the server ends */
    double hold;          /* fill: how long a half-open handshake is kept */
    double delay;         /* the attack starts this long after the run (replay: after the
                             victim's handshake) */
    uint32_t victim;      /* wrong-key, replay: the device index whose identity is used */
    const char *identities_path; /* flood: write every identity sent, one per line */
} pskgw_devsim_attack_opts_t;

typedef struct {
    pskgw_devsim_transport_t transport;
    struct sockaddr_storage target;
    char target_text[80]; /* "127.0.0.1:5684" as given, normalised */
    pskgw_devsim_framing_t framing;
    uint32_t devices;
    double ramp;       /* devices started per second; 0 = burst */
    uint32_t messages; /* per device */
    double rate;       /* messages per second per device */
    size_t size;       /* cleartext bytes per message */
    int e2e;           /* 0 none, 1 V1, 2 V2 */
    bool e2e_fixed_ki; /* KI counter 0 for every message (default: a new KI each) */
    pskgw_rot_v2_layout_t e2e_v2_layout; /* how V2 payloads are laid out (default seed) */
    bool identity_per_session;           /* a fresh identity + PSK per handshake */
    uint32_t reconnect_every;            /* 0 = never */
    uint32_t nat_rebind_every;           /* 0 = never */
    bool cid;                            /* --cid: wolfSSL clients asking for a DTLS 1.2 CID */
    bool resume;     /* --resume: keep each device's session (ticket) and resume on reconnect */
    bool no_tickets; /* --no-tickets: with --resume, take no ticket: resume by session ID */
    double rebind_every_s; /* 0 = never: a new socket (new port), same session,
                                            every S seconds (DTLS, needs expect_ack) */
    /* --failover-to ADDR:PORT --failover-after N: once a device has sent N messages (and had
     * them acknowledged), its datagrams go to ADDR:PORT from the same source port, as a load
     * balancer sends them after losing a node; the first message there tells whether the
     * session was taken over (its ack comes) or lost (handshake again). 0: never. */
    struct sockaddr_storage failover_to;
    char failover_text[80];
    uint32_t failover_after;
    double idle_interval; /* 0 = no idle devices */
    double idle_share;    /* share of devices that are idle when idle_interval > 0 */
    double unknown_share;
    double wrong_psk_share;
    bool unknown_by_index; /* unknown = index unknown_index_base + i, not a bad tag */
    uint32_t unknown_index_base;
    const char *seed; /* borrowed from argv */
    unsigned psk_bits;
    const char *cipher;
    size_t mtu;
    uint32_t per_ip;       /* devices per source address */
    uint32_t first_device; /* device i of this run is device first_device + i of the fleet: its
                              identity, PSK, E2E keys and source address (payloads and
                              --verify-file keep the run's own index i) */
    double duration;
    double handshake_timeout;
    bool expect_ack;
    bool
        expect_echo; /* --expect-echo: the gateway forwards to an echo server (implies expect_ack) */
    double ack_timeout;
    double hold; /* keep sessions open this long after the last message */
    const char *json_path;
    const char *verify_path;
    double verify_timeout;
    double progress_interval; /* plain progress lines when stderr is not a terminal */
    uint32_t run_id;
    bool run_id_set;
    bool quiet;
    pskgw_devsim_attack_opts_t attack;
    /* --preencrypt: after its handshake each device encrypts all its messages into memory;
     * when every device is ready, ready_file (if any) is written, and once start_file (if any)
     * exists they are sent (sendmmsg, devices in turn, paced by --rate). damage_device and
     * damage_message (--replay-damage D:N, for tests): that record gets one bit flipped in its
     * authentication tag before it is sent. */
    bool preencrypt;
    const char *ready_file;
    const char *start_file;
    bool damage;
    uint32_t damage_device, damage_message;
} pskgw_devsim_opts_t;

/* Parse argv. Returns 0 (run), 1 (--help given), 2 (--version given), or
 * PSKGW_EINVAL with a one-line reason in err. Pure apart from getopt's global state (resets it). */
int pskgw_devsim_opts_parse(int argc, char **argv, pskgw_devsim_opts_t *out, char *err,
                            size_t err_cap);

void pskgw_devsim_usage(FILE *out);

/* "cke-flood", "wrong-key", "replay", "fill" ("none" for NONE). Static text. */
const char *pskgw_devsim_attack_name(pskgw_devsim_attack_kind_t k);

/* Source address of attack source i (0 <= i < a->sources): a->source_base stepped i times over
 * 127.x.y.1 .. 127.x.y.254 (never .0 or .255), IPv4 host order. The parser checked that every
 * source of the run stays inside 127.0.0.0/8. */
uint32_t pskgw_devsim_attack_source(const pskgw_devsim_attack_opts_t *a, uint32_t i);

#endif
