/* pskgw configuration: parse and validate the domain files (libconfig), pure (no sockets, no
 * libuv). docs/CONFIG.md is the operator's reference of every key; this header is the contract
 * for the modules that read the result.
 *
 * One file describes one customer domain (a Thingstream account: API credentials, listeners,
 * sinks). Several files are loaded together; a domain name or a listener (proto, address, port)
 * used twice across them is an error.
 *
 * Loading:
 *   pskgw_config_diag_t diag;
 *   pskgw_config_t *cfg = NULL;
 *   pskgw_config_diag_init(&diag);
 *   int rc = pskgw_config_load(paths, npaths, &cfg, &diag);
 *   pskgw_config_diag_print(&diag, stderr, PSKGW_CONFIG_PRINT_ERRORS);
 *   ...                                  // rc == 0: use cfg; PSKGW_ECONFIG: exit 2 / keep old
 *   pskgw_config_free(cfg);              // wipes every secret
 *   pskgw_config_diag_deinit(&diag);
 *
 * Warnings (inline secret, plain http API URL, ...) are logged with PSKGW_WARN as they are found
 * and also kept in diag; print PSKGW_CONFIG_PRINT_ERRORS to avoid showing them twice, or
 * PSKGW_CONFIG_PRINT_ALL when logging is off.
 *
 * Ownership: the caller owns the pskgw_config_t returned in *out and frees it with
 * pskgw_config_free(), which releases every string, array and secret inside (secrets are wiped).
 * Everything reachable from it is owned by it: readers never free or keep pointers past
 * pskgw_config_free(). The structures are plain so that modules read fields directly; they are
 * read-only after loading.
 *
 * Relative paths in a file (secret files, ca_file, spool and sink paths) are taken relative to the
 * directory of the file that names them and stored joined to it (pskgw_config_load_string(): the
 * current directory). Secret files: see pskgw_config_secret_t.
 */
#ifndef PSKGW_CONFIG_CONFIG_H
#define PSKGW_CONFIG_CONFIG_H

#include "common/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- diagnostics ------------------------------------------------------------------------- */

typedef enum {
    PSKGW_CONFIG_SEV_ERROR = 0,
    PSKGW_CONFIG_SEV_WARNING = 1,
} pskgw_config_severity_t;

typedef struct {
    pskgw_config_severity_t severity;
    char *file;    /* the config file (or the name given to pskgw_config_load_string) */
    unsigned line; /* 1-based; 0 when the problem concerns the whole file (cannot open it) */
    char *path;    /* setting path ("api.timeout_ms", "sinks[1].spool.path"); NULL for syntax */
    char *message; /* "must be between 100 and 600000 (got 5)" */
    /* Ready to print: "file:line: path: message"; warnings: "file:line: path: warning: message";
     * "file: message" when line is 0 and there is no path. Never contains a secret. */
    char *text;
} pskgw_config_diag_item_t;

/* Collected diagnostics, in the order found (file by file). Caller memory: _init/_deinit.
 * One diag may be passed to several loads; items accumulate. */
typedef struct pskgw_config_diag {
    pskgw_config_diag_item_t *items;
    size_t nitems;
    size_t cap;
    size_t nerrors;
    size_t nwarnings;
    bool truncated; /* items were dropped (more than PSKGW_CONFIG_MAX_DIAG_PER_FILE in a file) */
} pskgw_config_diag_t;

/* At most this many errors are kept per file; one more line says that the rest was dropped. */
#define PSKGW_CONFIG_MAX_DIAG_PER_FILE 100

void pskgw_config_diag_init(pskgw_config_diag_t *diag);
void pskgw_config_diag_deinit(pskgw_config_diag_t *diag);

#define PSKGW_CONFIG_PRINT_ERRORS   1u
#define PSKGW_CONFIG_PRINT_WARNINGS 2u
#define PSKGW_CONFIG_PRINT_ALL      3u
/* Print the selected items' `text`, one per line, to out. Returns the number of lines printed. */
size_t pskgw_config_diag_print(const pskgw_config_diag_t *diag, FILE *out, unsigned what);

/* ---- the configuration ------------------------------------------------------------------- */

/* A secret read from a file (API secret, passwords, secret header lines). `data` is
 * NUL-terminated (len excludes the NUL), wiped on free. Never log it. Read from a file, it lives in
 * don't-dump memory (common/secmem.h); an inline secret stays in the heap.
 *
 * Where it comes from (key `*_file` = NAME):
 *   - NAME without '/' and $CREDENTIALS_DIRECTORY set (systemd LoadCredential=): that
 *     directory's NAME;
 *   - otherwise the path NAME (relative: to the directory of the config file).
 * The file must be a regular file of at most 64 KiB; one trailing "\n" (or "\r\n") is stripped;
 * an empty secret is an error. */
typedef struct {
    char *data;
    size_t len;
    bool dontdump; /* data from a file: in don't-dump memory (common/secmem.h) */
} pskgw_config_secret_t;

typedef enum {
    PSKGW_CONFIG_AUTH_RAW = 0,    /* Authorization: <token> (u-blox's own client) */
    PSKGW_CONFIG_AUTH_BEARER = 1, /* Authorization: Bearer <token> */
} pskgw_config_auth_header_t;

typedef struct {
    char *authenticate; /* default "/v1/authenticate" */
    char *get_psk;      /* default "/v1/GetPSK" */
    char *e2e_params;   /* default "/v1/GetE2EDecryptionParameters" */
} pskgw_config_api_paths_t;

/* api = { ... }: the security service of this domain (upstream/). */
typedef struct {
    char *url;                    /* base URL, http:// or https://, no trailing '/' kept */
    char *key_id;                 /* APIKey */
    char *secret_file;            /* as written (credential name or path); NULL: inline */
    pskgw_config_secret_t secret; /* APISecret (from secret_file, or inline `secret`) */
    pskgw_config_auth_header_t auth_header;
    unsigned psk_key_bits;    /* 128 or 256: KeyLength sent to GetPSK */
    uint32_t timeout_ms;      /* one HTTP attempt */
    uint32_t deadline_ms;     /* one request: transient failures are retried until it passes */
    uint32_t retry_min_ms;    /* first backoff (then doubled, with jitter) */
    uint32_t retry_max_ms;    /* backoff cap; >= retry_min_ms */
    uint32_t max_in_flight;   /* requests on the wire at once */
    uint32_t queue_size;      /* requests waiting behind max_in_flight; full -> "busy" */
    uint32_t max_connections; /* connections to the service host; 0 (unset): max_in_flight */
    char *ca_file;            /* CA bundle; NULL: the system's store. Verification is always on. */
    /* Without a usable token, authentication is asked again at most this often (gateway/health.h) */
    uint32_t reauth_interval_ms;
    pskgw_config_api_paths_t paths;
} pskgw_config_api_t;

typedef enum {
    PSKGW_CONFIG_PROTO_UDP = 0, /* DTLS */
    PSKGW_CONFIG_PROTO_TCP = 1, /* TLS */
} pskgw_config_proto_t;

typedef enum {
    PSKGW_CONFIG_FRAMING_NONE = 0,    /* udp: one DTLS application record = one message */
    PSKGW_CONFIG_FRAMING_LEN16 = 1,   /* 2-byte big-endian length, then the message */
    PSKGW_CONFIG_FRAMING_NEWLINE = 2, /* message ends at '\n' (not included) */
    PSKGW_CONFIG_FRAMING_RECORD = 3,  /* one TLS application record = one message */
} pskgw_config_framing_t;

typedef enum {
    PSKGW_CONFIG_ACK_NONE = 0,
    PSKGW_CONFIG_ACK_ACCEPTED = 1, /* ack once every sink accepted or spooled the message */
} pskgw_config_ack_t;

typedef enum {
    PSKGW_CONFIG_CID_OFF = 0,
    PSKGW_CONFIG_CID_ON =
        1, /* udp: offer a DTLS 1.2 Connection ID (RFC 9146) to clients that ask */
} pskgw_config_cid_t;

/* listeners = ( { ... }, ... ) */
/* The DTLS anti-replay window of the wolfSSL profile (scripts/build-wolfssl: wolfSSL's default
 * WOLFSSL_DTLS_WINDOW_WORDS 2, 32-bit words); test_dtls_replay_window checks it on the wire. */
#define PSKGW_CONFIG_REPLAY_WINDOW 64

typedef struct {
    char *name; /* unique in the domain; default "<proto>:<port>" (":<index>" added if taken) */
    pskgw_config_proto_t proto;
    char *address;                  /* numeric IPv4 or IPv6 literal; default "0.0.0.0" */
    uint16_t port;                  /* 0: the kernel picks a free port (tests) */
    pskgw_config_framing_t framing; /* NONE for udp; default LEN16 for tcp */
    pskgw_config_ack_t ack;
    /* Effective limit: the listener's own value, else limits.max_message_bytes capped at 16384
     * (the largest message a listener handles, any protocol and framing). */
    uint32_t max_message_bytes;
    uint32_t cookie_rotate_s;   /* udp: DTLS cookie period; a cookie lives at most two periods */
    uint32_t hibernate_after_s; /* udp: idle established sessions hibernate after it; 0 off */
    /* Forwarding (issue 14): forward = "tcp://HOST:PORT" (tcp listeners) or "udp://HOST:PORT"
     * (udp listeners), HOST a numeric IPv4 or [IPv6] literal. The listener then passes each
     * session's cleartext both ways to that server instead of the sinks (docs/CONFIG.md). */
    char *forward;                       /* as written; NULL: the sinks */
    char *forward_host;                  /* the literal, without brackets */
    uint16_t forward_port;               /* 1..65535 */
    bool proxy_protocol;                 /* PROXY v2 header first (tcp) / per datagram (udp) */
    uint32_t forward_connect_timeout_ms; /* tcp: backend connect deadline */
    uint32_t forward_buffer_bytes;       /* bytes held per direction before reads pause */
    pskgw_config_cid_t cid;              /* udp: default on */
    uint32_t cid_length;                 /* udp: bytes of the CIDs offered, 4..16 (default 8) */
    /* udp: the DTLS anti-replay window in records (RFC 6347 4.1.2.6). wolfSSL's window is
     * fixed when it is built (WOLFSSL_DTLS_WINDOW_WORDS: 2 words, 64 records) and has no runtime
     * setting: 64 is the only value accepted (PSKGW_CONFIG_REPLAY_WINDOW). */
    uint32_t replay_window;
    unsigned line; /* where it is defined in the domain's file, for messages */
} pskgw_config_listener_t;

/* A redis://[host][:port][/db] URL, parsed; or redis+sentinel://h[:p],h[:p]/master[/db]
 * (Redis Sentinel: the master is asked from the sentinels; host NULL, port 0 then). */
typedef struct {
    char *url;           /* as written */
    char *host;          /* default "127.0.0.1"; IPv6 written [::1] in the URL, stored without [] */
    uint16_t port;       /* default 6379 */
    char *sentinels;     /* redis+sentinel: "h:p,h:p" as written (port default 26379); else NULL */
    char *master_name;   /* redis+sentinel: the master's name; else NULL */
    uint32_t db;         /* default 0 */
    char *password_file; /* as written; NULL: none */
    pskgw_config_secret_t password; /* from *_password_file; data NULL when none (no AUTH) */
} pskgw_config_redis_t;

/* cache = { ... } (keycache/) */
typedef struct {
    uint32_t entries;          /* PSK entries in the in-process LRU */
    uint32_t ttl_s;            /* fresh lifetime of a PSK entry */
    uint32_t negative_ttl_s;   /* lifetime of a 403/404 answer (0: not cached) */
    uint32_t negative_entries; /* 403/404 answers kept in an LRU of their own (per cache) */
    uint32_t stale_s;     /* served past ttl_s while the service fails transiently (0: never) */
    uint32_t e2e_entries; /* E2E parameter entries in the LRU */
    uint32_t e2e_ttl_s;   /* fresh lifetime of E2E parameters */
    uint32_t max_waiters; /* single-flight waiters per key; more get "busy" */
    bool has_redis;       /* cache.redis given: shared layer 2 */
    pskgw_config_redis_t redis;
    uint32_t redis_timeout_ms; /* one Redis command */
    char *kek_file;            /* as written; NULL: none */
    bool has_kek;              /* kek_file given (required with redis) */
    uint8_t kek[32];           /* AES-256-GCM key-encryption key; wiped on free */
} pskgw_config_cache_t;

/* sessions = { ... }: hibernated sessions shared by the gateways of a domain through Redis
 * (gateway/sessredis.h), sealed under cache.kek_file (required). */
typedef struct {
    pskgw_config_redis_t redis; /* required: redis:// or redis+sentinel:// */
    uint32_t redis_timeout_ms;  /* connect + reply watchdog; 1000 */
    char *node_id;              /* lease holder name; NULL: "<hostname>:<pid>" */
    uint32_t lease_ms;          /* a taken session's lease; 30000 */
    uint32_t park_per_source;   /* datagrams held per source while looked up; 4 */
    uint32_t park_total;        /* ... per listener; 1024 */
} pskgw_config_sessions_t;

/* resumption = { ... }: RFC 5077 session tickets under keys every gateway of the domain derives
 * from the same secrets (dtls/ticket.h), so a device resumes on any of them without GetPSK. */
#define PSKGW_CONFIG_TICKET_SECRETS 4
typedef struct {
    char *ticket_key_file;      /* required in the group: one secret per line (64 hex), current
                                 * first, then previous ones; '#' lines and blank lines skipped */
    uint32_t ticket_lifetime_s; /* default 86400 */
    uint32_t session_cache;     /* sessions kept per listener (session IDs); 10000, 0: off */
    uint8_t secrets[PSKGW_CONFIG_TICKET_SECRETS][32]; /* wiped on free */
    size_t nsecrets;                                  /* 1..4 once loaded */
} pskgw_config_resumption_t;

typedef enum {
    PSKGW_CONFIG_E2E_OFF = 0,      /* forward the DTLS plaintext as is */
    PSKGW_CONFIG_E2E_AUTO = 1,     /* decrypt payloads with a valid E2E header, forward others */
    PSKGW_CONFIG_E2E_REQUIRED = 2, /* reject anything that is not a valid E2E payload */
} pskgw_config_e2e_t;

/* e2e_header_case: the case of the EncryptedHeader hex sent to GetE2EDecryptionParameters. */
typedef enum {
    PSKGW_CONFIG_E2E_HEADER_LOWER = 0, /* "lower": as the seed's example (default) */
    PSKGW_CONFIG_E2E_HEADER_UPPER = 1, /* "upper" */
} pskgw_config_e2e_header_case_t;

/* e2e_v2_layout: how E2E version 2 payloads are read (e2e/header.h has the table). */
typedef enum {
    PSKGW_CONFIG_E2E_V2_SEED = 0, /* "seed": KI (11) | ciphertext | tag (default) */
    PSKGW_CONFIG_E2E_V2_PAD1 = 1, /* "pad1": KI (11) | 1 skipped byte | ciphertext | tag */
} pskgw_config_e2e_v2_layout_t;

typedef enum {
    PSKGW_CONFIG_E2E_REPLAY_FLAG = 0,   /* forward a replayed E2E payload, "replay":true */
    PSKGW_CONFIG_E2E_REPLAY_REJECT = 1, /* reject it (counted, reason "replay") */
} pskgw_config_e2e_replay_t;

typedef enum {
    PSKGW_CONFIG_SINK_FILE = 0,
    PSKGW_CONFIG_SINK_HTTP = 1,
    PSKGW_CONFIG_SINK_MQTT = 2,
    PSKGW_CONFIG_SINK_REDIS_STREAM = 3,
    PSKGW_CONFIG_SINK_KAFKA = 4,
} pskgw_config_sink_type_t;

typedef enum {
    PSKGW_CONFIG_FSYNC_ALWAYS = 0, /* after every record */
    PSKGW_CONFIG_FSYNC_BATCH = 1,  /* every 200 ms when written to (sinks/) */
    PSKGW_CONFIG_FSYNC_NEVER = 2,  /* leave it to the kernel */
} pskgw_config_fsync_t;

typedef enum {
    PSKGW_CONFIG_PAYLOAD_BASE64 = 0, /* the JSON envelope */
    PSKGW_CONFIG_PAYLOAD_RAW = 1,    /* raw bytes, metadata as properties/headers/fields */
} pskgw_config_payload_t;

typedef struct {
    char *path;         /* spool directory: "<domain>-<sink>[-wN].spool" / ".offset" in it;
                         * shared by sinks whose "<domain>-<sink>" differ */
    uint64_t max_bytes; /* past this, messages are dropped and counted */
    pskgw_config_fsync_t fsync;
} pskgw_config_spool_t;

typedef struct {
    char *path; /* "-": stdout; otherwise appended to, reopened on SIGHUP */
} pskgw_config_sink_file_t;

typedef enum {
    PSKGW_CONFIG_SINK_PROBE_HEAD = 0,
    PSKGW_CONFIG_SINK_PROBE_OFF = 1,
} pskgw_config_sink_probe_t;

typedef struct {
    char *url;
    char **headers; /* "Name: value" lines, validated (token name, no CR/LF) */
    size_t nheaders;
    char *headers_file;                    /* as written; NULL: none */
    pskgw_config_secret_t *secret_headers; /* from headers_file: one "Name: value" per line */
    size_t nsecret_headers;
    uint32_t timeout_ms;
    char *dead_letter_path; /* where 4xx-refused envelopes go (JSON lines); NULL: dropped */
    /* probe = "head" (default) | "off": while no POST is under way, a HEAD request to url every
     * probe_interval_s tells whether the target answers (the sink's connected/ready state) */
    pskgw_config_sink_probe_t probe;
    uint32_t probe_interval_s;
} pskgw_config_sink_http_t; /* https: verified against the system CA store */

typedef struct {
    char *host;
    uint16_t port;
    char *topic; /* template: {domain}, {rot_public_uid}, {psk_identity}; no '+' or '#' */
    unsigned qos;
    char *client_id;                /* NULL: the sink makes "pskgw-<domain>-<sink>-<pid>" */
    char *username;                 /* NULL: none */
    char *password_file;            /* as written; NULL: none */
    pskgw_config_secret_t password; /* from password_file; data NULL when none */
    uint32_t keepalive_s;
} pskgw_config_sink_mqtt_t; /* plain TCP (no TLS yet) */

typedef struct {
    pskgw_config_redis_t redis; /* from url + password_file */
    char *stream;               /* template as mqtt topic; default "pskgw:{domain}" */
    uint64_t maxlen;            /* XADD MAXLEN ~ maxlen; 0: no trimming */
} pskgw_config_sink_redis_stream_t;

typedef struct {
    char *brokers; /* "host:port,host:port" */
    char *topic;
    char **properties; /* extra librdkafka "key=value"; acks / idempotence refused */
    size_t nproperties;
    char *properties_file;                    /* as written; NULL: none */
    pskgw_config_secret_t *secret_properties; /* from properties_file, "key=value" per line */
    size_t nsecret_properties;
} pskgw_config_sink_kafka_t;

/* sinks = ( { type = "..."; ... }, ... ). Only the member matching `type` is filled; the others
 * are zero. */
typedef struct {
    char *name; /* unique in the domain; default "<type>-<index>" ("file-0") */
    pskgw_config_sink_type_t type;
    uint32_t queue_size;   /* messages held in memory */
    uint32_t in_flight;    /* deliveries outstanding at once */
    uint32_t retry_max_ms; /* backoff cap (retries start at 100 ms, doubling) */
    bool has_spool;        /* spool = { ... } given; without it a full queue drops (counted) */
    pskgw_config_spool_t spool;
    pskgw_config_payload_t payload; /* RAW only for mqtt, redis-stream, kafka */
    pskgw_config_sink_file_t file;
    pskgw_config_sink_http_t http;
    pskgw_config_sink_mqtt_t mqtt;
    pskgw_config_sink_redis_stream_t redis_stream;
    pskgw_config_sink_kafka_t kafka;
    unsigned line;
} pskgw_config_sink_t;

/* limits = { ... } (dtls/ and the gateway's listeners), per domain */
typedef struct {
    uint32_t max_sessions;             /* established + handshaking; new handshakes refused */
    uint32_t max_pending_handshakes;   /* handshakes parked on a key lookup */
    uint32_t handshake_timeout_ms;     /* ClientHello to Finished */
    uint32_t idle_timeout_s;           /* established session without traffic */
    uint32_t per_ip_handshakes_per_s;  /* token bucket rate per source IP; 0: unlimited */
    uint32_t per_ip_handshake_burst;   /* bucket size */
    uint32_t identity_fail_max;        /* failed handshakes of one identity from one source per
                                       * identity_block_s before it is throttled there; 0 off */
    uint32_t source_fail_max;          /* failed handshakes of one source (any identity) per
                                       * identity_block_s before the source is throttled; 0 off */
    uint32_t identity_block_s;         /* the failure period of both */
    uint32_t half_open_per_source;     /* handshakes in progress per source; 0: unlimited */
    uint32_t half_open_timeout_ms;     /* a handshake without a ClientKeyExchange by then ends */
    uint32_t ipv6_source_prefix;       /* IPv6 prefix length that makes one source */
    uint32_t max_message_bytes;        /* default for listeners */
    uint32_t max_identity_len;         /* PSK identity bytes accepted */
    uint32_t max_parked_bytes;         /* bytes held per session while its key is looked up */
    uint32_t lookups_in_flight;        /* cold key lookups at once per listener; 0: api's
                                       * max_in_flight */
    uint32_t lookups_per_source;       /* of them, from one source */
    uint32_t lookup_queue_per_source;  /* cold lookups of one source waiting for their turn */
    uint32_t lookups_per_source_per_s; /* new cold lookups per second per source; 0: unlimited */
    uint32_t lookup_burst;             /* bucket size of that rate */
    uint32_t good_source_share_pct;    /* of lookups_in_flight, kept for sources with a good
                                        * record (a completed handshake) */
    uint32_t good_source_window_s;     /* how long a completed handshake is a good record */
} pskgw_config_limits_t;

/* admin = { ... }: metrics/health endpoint (process-wide; see pskgw_config_t.admin). */
typedef struct {
    char *address;               /* numeric IP literal, default "127.0.0.1" */
    uint16_t port;               /* default 9464; 0: a free port */
    char *token_file;            /* as written; NULL: none (only allowed on a loopback address) */
    pskgw_config_secret_t token; /* bearer token of the /admin/ routes; data NULL when none */
} pskgw_config_admin_t;

/* log = { ... }: process-wide; --log-level / --log-format on the command line win. */
typedef struct {
    pskgw_log_level_t level;   /* default info */
    pskgw_log_format_t format; /* default text */
} pskgw_config_log_t;

#define PSKGW_CONFIG_MAX_CIPHERS 16

/* One file. */
typedef struct {
    char *name;   /* `domain` */
    char *source; /* the file it came from (or the name given to _load_string) */
    pskgw_config_api_t api;
    pskgw_config_listener_t *listeners; /* >= 1 */
    size_t nlisteners;
    /* Cipher suites in order of preference, validated and de-aliased: */
    char *ciphers;         /* canonical names joined by ':' ("PSK-AES128-CCM8:...") */
    char *ciphers_wolfssl; /* the same in wolfSSL's names, for wolfSSL_CTX_set_cipher_list() */
    uint16_t cipher_ids[PSKGW_CONFIG_MAX_CIPHERS]; /* IANA suite numbers (0xC0A8, ...) */
    size_t nciphers;
    pskgw_config_cache_t cache;
    pskgw_config_e2e_t e2e;                         /* default OFF */
    pskgw_config_e2e_header_case_t e2e_header_case; /* default LOWER */
    pskgw_config_e2e_v2_layout_t e2e_v2_layout;     /* default SEED */
    pskgw_config_e2e_replay_t e2e_replay;           /* default FLAG */
    uint32_t e2e_replay_window_s; /* a KI seen again within this is a replay; 86400 */
    uint32_t e2e_replay_entries;  /* (device, KI) pairs remembered; 100000 */
    pskgw_config_sink_t *sinks;   /* >= 1; none only when every listener forwards */
    size_t nsinks;
    pskgw_config_limits_t limits;
    bool has_admin; /* this file's admin group (merged into pskgw_config_t.admin) */
    pskgw_config_admin_t admin;
    char *deny_file; /* identities or ROTPublicUIDs refused; NULL: none */
    char *state_dir; /* sessions handed over across restarts (gateway/handover.h); NULL: default */
    char **deny;     /* its entries (hex), sorted ignoring case; read at load (and reload) */
    size_t ndeny;
    bool has_log; /* this file's log group (merged into pskgw_config_t.log) */
    pskgw_config_log_t log;
    bool has_resumption; /* resumption group given: tickets on every listener of the domain */
    pskgw_config_resumption_t resumption;
    bool has_sessions; /* sessions group given: hibernated sessions shared through Redis */
    pskgw_config_sessions_t sessions;
} pskgw_config_domain_t;

typedef struct pskgw_config {
    pskgw_config_domain_t *domains; /* in the order of the files */
    size_t ndomains;
    /* Process-wide settings. A file may set them; files that set them must agree. */
    bool has_admin; /* no file has an admin group: no admin endpoint */
    pskgw_config_admin_t admin;
    pskgw_config_log_t log; /* defaults when no file sets it */
    bool has_log;
} pskgw_config_t;

/* Load and validate the files paths[0..npaths-1] (npaths >= 1), then check them against each
 * other. Every problem of every file is added to diag (which may be NULL; warnings are also
 * logged with PSKGW_WARN).
 *   0               *out = the configuration (warnings may have been added)
 *   PSKGW_ECONFIG   at least one error was added to diag; *out untouched
 *   PSKGW_ENOMEM    out of memory (diag may be incomplete); *out untouched
 *   PSKGW_EINVAL    paths/out NULL or npaths 0 */
int pskgw_config_load(const char *const *paths, size_t npaths, pskgw_config_t **out,
                      pskgw_config_diag_t *diag);

/* The same for texts in memory (tests, fuzzing): names[i] is used in messages and as the base
 * of relative paths is the current directory. `@include` is refused as in files. */
int pskgw_config_load_strings(const char *const *names, const char *const *texts, size_t n,
                              pskgw_config_t **out, pskgw_config_diag_t *diag);
/* One text. */
int pskgw_config_load_string(const char *name, const char *text, pskgw_config_t **out,
                             pskgw_config_diag_t *diag);

/* What start-up would fail on in the file system, for --check-config (run as the service's
 * user: ExecStartPre): every spool directory exists and is writable, or can be created (its
 * parent exists and is writable); every file sink's path and dead_letter_path is writable, or
 * can be created in an existing writable directory. (Secret files and ca_file are checked
 * readable by the load.) Errors are added to diag at the sink's line:
 *   0               nothing found
 *   PSKGW_ECONFIG   at least one error added
 *   PSKGW_ENOMEM    out of memory (diag may be incomplete)
 *   PSKGW_EINVAL    cfg NULL */
int pskgw_config_check_paths(const pskgw_config_t *cfg, pskgw_config_diag_t *diag);

/* Free everything, wiping secrets (API secret, passwords, secret headers, KEK). NULL accepted. */
void pskgw_config_free(pskgw_config_t *cfg);

/* Domain by name, or NULL. Borrowed from cfg. */
/* Whether id (a PSK identity or ROTPublicUID, hex) is in d's deny_file (case ignored). */
bool pskgw_config_denied(const pskgw_config_domain_t *d, const char *id);

const pskgw_config_domain_t *pskgw_config_find_domain(const pskgw_config_t *cfg, const char *name);

/* ---- names, for messages and metrics labels ---------------------------------------------- */
const char *pskgw_config_proto_name(pskgw_config_proto_t p);         /* "udp" */
const char *pskgw_config_framing_name(pskgw_config_framing_t f);     /* "len16" ("none") */
const char *pskgw_config_sink_type_name(pskgw_config_sink_type_t t); /* "redis-stream" */
const char *pskgw_config_e2e_name(pskgw_config_e2e_t m);             /* "auto" */

/* ---- cipher suite names ------------------------------------------------------------------ */

typedef struct {
    const char *name;    /* canonical (OpenSSL-style) config name: "PSK-AES128-CCM8" */
    const char *wolfssl; /* wolfSSL's name: "PSK-AES128-CCM-8" */
    uint16_t iana;       /* 0xC0A8 */
    bool ecdhe;          /* ECDHE-PSK: opt-in, about 60x the CPU of plain PSK */
} pskgw_config_cipher_t;

/* The suite known by this name or alias (case-insensitive), or NULL. */
const pskgw_config_cipher_t *pskgw_config_cipher_find(const char *name);

/* The default cipher list. */
#define PSKGW_CONFIG_DEFAULT_CIPHERS \
    "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:PSK-AES128-CBC-SHA256:PSK-AES128-CBC-SHA"

#endif
