/* The resumption tests' shared fixture (tests/unit/dtls/test_sid.c, test_ticket.c): ticket keys,
 * server contexts using them, a resolver that knows one device, and one client handshake of the
 * dtls tests' in-memory pair (tests/unit/dtls/pair.h) that may resume a session. Everything the
 * fixture makes (keys, contexts, the client sessions it returns) is its own and is freed by
 * rfix_deinit(). Failures are Criterion assertions. */
#ifndef PSKGW_TEST_RESUMEFIX_H
#define PSKGW_TEST_RESUMEFIX_H

#include "pair.h"

#include "dtls/ctx.h"
#include "dtls/ticket.h"

#include <stdbool.h>
#include <stdint.h>

/* The device the resolver knows. */
#define RFIX_ID  "11010008002F33244B115B0AEEB9"
#define RFIX_PSK "E5DE45B367DB690F2E17CF9D80A18E87"
#define RFIX_UID "0002000089282245"

#define RFIX_MAX 8 /* keys, contexts and sessions of one case, each */

typedef struct {
    bool dtls; /* the contexts' and clients' protocol: DTLS 1.2, or TLS 1.2 */
    tres_t res;
    pskgw_ticket_keys_t *keys[RFIX_MAX];
    pskgw_dtls_ctx_t *ctx[RFIX_MAX];
    WOLFSSL_SESSION *sess[RFIX_MAX];
    int nkeys, nctx, nsess;
} rfix_t;

/* One client handshake, what it offers and what came of it. */
typedef struct {
    bool tickets;      /* the client offers the ticket extension */
    uint64_t now;      /* the server's clock (ms); 0: 1000 */
    const char *id;    /* identity; NULL: RFIX_ID (the resolver must know it: tres_add) */
    int refuse;        /* the owner refuses the identity */
    bool reused;       /* out: abbreviated handshake */
    bool established;  /* out: both ends established */
    int cli_error;     /* out: the client's last error */
    char uid[64];      /* out: the server session's uid ("" without one) */
    long wolf_timeout; /* out: the server's wolfSSL session timeout (s) */
} rfix_conn_t;

/* An empty fixture whose resolver knows RFIX_ID (RFIX_PSK, RFIX_UID) and answers later
 * (r.sync false: each handshake parks on its lookup). */
void rfix_init(rfix_t *f, bool dtls);
/* Frees what the fixture made, sessions first. */
void rfix_deinit(rfix_t *f);
/* Ticket keys from one or two secrets (second may be NULL) with a lifetime (s); the fixture's. */
pskgw_ticket_keys_t *rfix_keys(rfix_t *f, const char *first, const char *second,
                               uint32_t lifetime_s);
/* A server context (idle timeout 30 s) with keys; the fixture's. */
pskgw_dtls_ctx_t *rfix_ctx(rfix_t *f, pskgw_ticket_keys_t *keys);
/* Keeps a session the test made (freed by rfix_deinit); returns it. */
WOLFSSL_SESSION *rfix_keep(rfix_t *f, WOLFSSL_SESSION *s);
/* One handshake of a client (resuming sess when not NULL) against c, the lookup completed when
 * it parks on one; once established, the server session's identity is checked (k->id) and one
 * message goes from the client to the server. Returns the client's session (the fixture's), or
 * NULL when no session was established. */
WOLFSSL_SESSION *rfix_connect(rfix_t *f, pskgw_dtls_ctx_t *c, WOLFSSL_SESSION *sess,
                              rfix_conn_t *k);

#endif
