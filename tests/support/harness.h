/* Listener test harness: in-loop wolfSSL DTLS clients on real UDP sockets, an asynchronous
 * resolver completing through uv timers, spawned OpenSSL s_client peers, and loop helpers. */
#ifndef PSKGW_TEST_LISTEN_HARNESS_H
#define PSKGW_TEST_LISTEN_HARNESS_H

#include "dtlscli.h"
#include "loopwait.h"
#include "gateway/listen_api.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define H_ID    "11010008002F33244B115B0AEEB9"
#define H_PSK   "E5DE45B367DB690F2E17CF9D80A18E87"
#define H_WRONG "00DE45B367DB690F2E17CF9D80A18E87"
#define H_UID   "0F1E2D3C4B5A6978"

/* ---- resolver: entries answered after delay_ms (0: synchronous lookup() hits) ---- */
typedef struct {
    uv_loop_t *loop;
    uint32_t delay_ms;
    int fail_with;     /* non-zero: every lookup completes with this status */
    bool sync_hits;    /* lookup() answers known identities at once */
    bool hold;         /* lookups wait for hres_release() instead of delay_ms */
    struct hreq *held; /* the lookups held (internal) */
    int nheld;
    char ids[256][64];
    uint8_t psk[256][32];
    size_t psk_len[256];
    int n;
    int resolves;
    int cancels;
    int outstanding;
    pskgw_psk_resolver_t iface;
} hres_t;

void hres_init(hres_t *r, uv_loop_t *loop, uint32_t delay_ms);
void hres_add(hres_t *r, const char *id, const char *psk_hex);
/* Answers every held lookup (in the next loop iteration) and stops holding new ones. */
void hres_release(hres_t *r);

/* ---- DTLS client on a uv UDP socket (tests/support/dtlscli.h) ---- */
typedef dcli_t hcli_t;

void hcli_start(hcli_t *c, uv_loop_t *loop, uint16_t port, bool ipv6, const char *cipher,
                const char *identity, const char *psk_hex, const char *send_on_done);
/* Same, from a given local port (IPv4). */
void hcli_start_from(hcli_t *c, uv_loop_t *loop, uint16_t port, uint16_t local_port,
                     const char *cipher, const char *identity, const char *psk_hex,
                     const char *send_on_done);
/* Same as hcli_start (IPv4), asking the server for a DTLS 1.2 Connection ID (RFC 9146). */
void hcli_start_cid(hcli_t *c, uv_loop_t *loop, uint16_t port, const char *cipher,
                    const char *identity, const char *psk_hex, const char *send_on_done);
/* NAT rebinding: the client goes on from a new socket (new source port), same WOLFSSL object;
 * the old socket stops receiving. */
void hcli_rebind(hcli_t *c);
/* The client's local port (of the socket in use). */
uint16_t hcli_local_port(hcli_t *c);
/* Closes the socket and timer (run the loop to finish) and frees the wolfSSL objects. */
void hcli_close(hcli_t *c);

/* ---- collected messages ---- */
typedef struct {
    int n;
    char data[300][128];
    size_t len[300];
    pskgw_msg_meta_t meta[300];
    char peer[300][64];
    char identity[300][80];
    char uid[300][40];
    pskgw_listener_t *l;
    bool reply; /* answer "ack" with pskgw_listener_send */
    int reply_rc;
    /* set: the first message closes the listener from inside the callback, then tries a send */
    pskgw_listener_close_cb close_on_message;
    void *close_arg;
    int send_after_close_rc;
} hmsgs_t;

void hmsgs_cb(void *arg, const pskgw_msg_meta_t *meta, const uint8_t *data, size_t len);

/* ---- OpenSSL s_client ---- */
typedef struct {
    uv_process_t proc;
    uv_pipe_t in;
    uv_pipe_t out;
    char out_buf[8192];
    size_t out_len;
    bool exited;
    int handles_open;
} hossl_t;

/* Spawns `openssl s_client` (dtls: -dtls1_2, else -tls1_2) to 127.0.0.1:port and writes
 * `input` to its stdin (kept open). */
void hossl_start(hossl_t *o, uv_loop_t *loop, bool dtls, uint16_t port, const char *cipher,
                 const char *identity, const char *psk_hex, const uint8_t *input, size_t len);
/* SIGTERM, then closes its pipes (run the loop to finish). */
void hossl_stop(hossl_t *o);

#endif
