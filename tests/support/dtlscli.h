/* Test support: one DTLS 1.2 PSK client (wolfSSL) on a uv UDP socket of the test's loop, bound to
 * a chosen local address (a loopback source 127.0.0.x is a distinct source for the listener's
 * per-source limits), for the listener tests (tests/integration/dtls: harness.h's hcli_t and
 * srcpeer.h's speer_t are this client).
 *
 * The handshake is driven from the loop (received datagrams and the retransmission timer);
 * once established, what the server sends is collected in `got` and a close_notify is noted.
 * Failures of the set-up are Criterion assertions. The client owns its socket, timer and wolfSSL
 * objects: dcli_close() starts closing the handles (run the loop to finish) and frees the
 * wolfSSL objects at once. */
#ifndef PSKGW_TEST_DTLSCLI_H
#define PSKGW_TEST_DTLSCLI_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct {
    uv_loop_t *loop;
    uv_udp_t sock;
    uv_timer_t rtx;
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    struct sockaddr_storage srv;
    char identity[200];
    uint8_t psk[64];
    size_t psk_len;
    uint8_t rx[8][2048];
    size_t rx_len[8];
    unsigned rx_head, rx_count;
    int sends;
    int max_sends; /* >0: stop sending after this many datagrams (a vanishing peer) */
    int retransmits;
    bool done;
    int error;
    bool got_close_notify;
    uint64_t done_at; /* loop time of the end of the handshake */
    char got[512];
    size_t got_len;
    const char *send_on_done; /* message written once established */
    uint8_t hello[1024];      /* the last ClientHello sent with a cookie */
    size_t hello_len;
    bool cid;           /* asks for a DTLS 1.2 Connection ID (dcli_start_cid) */
    uv_udp_t *out;      /* the socket in use: sock, or alt after dcli_rebind */
    uv_udp_t alt;       /* the socket after a rebind (a new source port) */
    bool alt_open;      /* alt is initialised (closed by dcli_close) */
    uint8_t last[2048]; /* the last datagram sent */
    size_t last_len;
} dcli_t;

/* Starts a handshake from local (its port may be 0) to srv (same family) with one cipher. */
void dcli_start(dcli_t *c, uv_loop_t *loop, const struct sockaddr *local,
                const struct sockaddr *srv, const char *cipher, const char *identity,
                const char *psk_hex, const char *send_on_done);
/* Same as dcli_start, asking the server for a DTLS 1.2 Connection ID (RFC 9146). */
void dcli_start_cid(dcli_t *c, uv_loop_t *loop, const struct sockaddr *local,
                    const struct sockaddr *srv, const char *cipher, const char *identity,
                    const char *psk_hex, const char *send_on_done);
/* A NAT rebinding: from now on the client sends from, and listens on, a new socket on
 * 127.0.0.1 with a new port; the old socket stops receiving (its mapping is gone). Once per
 * client. */
void dcli_rebind(dcli_t *c);
/* The client's local port (of the socket in use). */
uint16_t dcli_local_port(dcli_t *c);
/* Sends raw bytes from the client's socket to the server (a replay). */
void dcli_send_raw(dcli_t *c, const uint8_t *data, size_t len);
/* Writes an application message on an established session: wolfSSL_write's result. */
int dcli_write(dcli_t *c, const char *msg);
/* Closes the socket and timer (run the loop to finish) and frees the wolfSSL objects; a no-op
 * when already closed. */
void dcli_close(dcli_t *c);

#endif
