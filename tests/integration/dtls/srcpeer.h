/* A DTLS 1.2 PSK client (wolfSSL) on a uv UDP socket bound to a chosen loopback source
 * address (127.0.0.x: each address is a different source for the listener's per-source
 * limits), for the hostile-traffic tests. Like harness.h's hcli_t, with a source address. */
#ifndef PSKGW_TEST_SRCPEER_H
#define PSKGW_TEST_SRCPEER_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

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
    struct sockaddr_in srv;
    char identity[200];
    uint8_t psk[64];
    size_t psk_len;
    uint8_t rx[8][2048];
    size_t rx_len[8];
    unsigned rx_head, rx_count;
    int sends;
    int max_sends; /* >0: stop sending after this many datagrams (a vanishing peer) */
    bool done;
    int error;
    const char *send_on_done;
    uint8_t hello[1024]; /* the last ClientHello sent with a cookie */
    size_t hello_len;
    bool open;
} speer_t;

/* Starts a handshake from src_ip (e.g. "127.0.0.2") port src_port (0: any) to 127.0.0.1:port. */
void speer_start(speer_t *c, uv_loop_t *loop, const char *src_ip, uint16_t src_port, uint16_t port,
                 const char *identity, const char *psk_hex, const char *send_on_done);
uint16_t speer_local_port(speer_t *c);
/* Sends raw bytes from the client's socket (a replay). */
void speer_send_raw(speer_t *c, const uint8_t *data, size_t len);
/* Writes an application message on an established session. */
int speer_write(speer_t *c, const char *msg);
/* Closes the socket and timer (run the loop to finish) and frees the wolfSSL objects. */
void speer_close(speer_t *c);

#endif
