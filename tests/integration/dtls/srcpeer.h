/* A DTLS 1.2 PSK client (wolfSSL) on a uv UDP socket bound to a chosen loopback source
 * address (127.0.0.x: each address is a different source for the listener's per-source
 * limits), for the hostile-traffic tests: tests/support/dtlscli.h, like harness.h's hcli_t, with
 * a source address and the cipher PSK-AES128-CCM8. */
#ifndef PSKGW_TEST_SRCPEER_H
#define PSKGW_TEST_SRCPEER_H

#include "dtlscli.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef dcli_t speer_t;

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
