/* Test harness: a wolfSSL (D)TLS 1.2 PSK client wired in memory to a pskgw_dtls_session, and
 * a small in-memory PSK resolver (sync hits, or async lookups completed by the test). */
#ifndef PSKGW_TEST_DTLS_PAIR_H
#define PSKGW_TEST_DTLS_PAIR_H

#include "dtls/session.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TQ_CAP 64
#define TQ_MAX 18000

typedef struct {
    size_t len[TQ_CAP];
    uint8_t *data[TQ_CAP];
    unsigned head, count;
} tq_t;

/* Resolver entries. */
typedef struct {
    const char *identity; /* KeyID (upper hex) */
    uint8_t psk[32];
    size_t psk_len;
    const char *uid;
} tres_entry_t;

typedef struct tres_pending {
    char identity[300];
    pskgw_psk_done_cb cb;
    void *arg;
    struct tres_pending *next;
} tres_pending_t;

typedef struct {
    tres_entry_t entries[8];
    int n;
    bool sync;     /* lookup() answers hits at once */
    bool fail_now; /* resolve() fails at once */
    tres_pending_t *pending;
    int resolves;
    int cancels;
    pskgw_psk_resolver_t iface;
} tres_t;

void tres_init(tres_t *r);
void tres_add(tres_t *r, const char *identity, const char *psk_hex, const char *uid);
/* Complete every pending lookup: found entries with 0, others with PSKGW_ENOTFOUND, or all
 * with `force` when it is not 0. Returns how many completed. */
int tres_complete(tres_t *r, int force);

typedef struct {
    /* client */
    WOLFSSL_CTX *cctx;
    WOLFSSL *cli;
    bool dtls;
    char cli_identity[300];
    uint8_t cli_psk[64];
    size_t cli_psk_len;
    bool cli_done;
    int cli_error;
    /* links */
    tq_t to_server, to_client;
    bool drop_to_client;
    bool hold_cke; /* from a datagram starting with an epoch-0 CKE on, all go to `held` */
    tq_t held;
    /* server */
    pskgw_dtls_ctx_t *sctx;
    pskgw_dtls_session_t *srv;
    tres_t *res;
    uint64_t now;
    uint8_t peer[8];
    int hvr_sent;
    int server_sends;
    /* observed */
    int closed_calls;
    int closed_reason;
    int established;
    int auth_failed;
    int moved; /* PSKGW_DTLS_EV_PEER_MOVED */
    int thawed;
    int thaw_failed;
    int parks;
    int unparks;
    int lookup_failed;
    int refuse_identity;
    int refuse_park;
    bool free_in_message; /* the owner frees the session from its message callback */
    bool fail_sends;      /* the server's send callback fails (socket buffer full) */
    uint64_t deadline;
    uint64_t last_seq;
    char msgs[8][256];
    size_t msg_len[8];
    int nmsgs;
} tpair_t;

/* A DTLS server context with the defaults (idle timeout 30 s); asserts it was made. */
pskgw_dtls_ctx_t *tpair_dtls_ctx(void);
/* The same for DTLS or TLS (dtls false) with a framing (TLS only). */
pskgw_dtls_ctx_t *tpair_dtls_ctx_framed(bool dtls, pskgw_framing_t framing);

/* identity: as the client sends it (raw bytes allowed, NUL-terminated); psk_hex: its key. */
void tpair_init(tpair_t *p, pskgw_dtls_ctx_t *sctx, tres_t *res, bool dtls, const char *cipher,
                const char *identity, const char *psk_hex);
void tpair_deinit(tpair_t *p);
/* Run client and server until nothing moves. */
void tpair_pump(tpair_t *p);
/* Client retransmits its last flight (as if its timer fired). */
void tpair_client_timeout(tpair_t *p);
/* The callbacks the pair gives its server session (arg: the pair). */
const pskgw_dtls_session_cbs_t *tpair_server_cbs(void);

void tq_push(tq_t *q, const uint8_t *d, size_t n);
size_t tq_pop(tq_t *q, uint8_t *out, size_t cap);
void tq_clear(tq_t *q);

#endif
