/* pskgw-devsim: the wolfSSL DTLS 1.2 client path, for --cid (RFC 9146 Connection ID, which
 * OpenSSL 3.0 does not have). Internal to client.c: the same contract as client.h (bytes in,
 * datagrams out, no socket, no uv.h), dispatched there when the context was made for CID.
 *
 * The client asks for a Connection ID (connection_id extension, a zero-length CID of its own:
 * it needs none, the server's is what lets the gateway follow it across addresses) and uses the
 * server's CID in its records once the server gave one. wolfSSL is the gateway-profile build
 * (scripts/build-wolfssl): the path exists only when it has DTLS 1.2 CID (wolfSSL >= 5.7.4 built
 * with --enable-dtlscid); pskgw_devsim_wclient_available() says so.
 *
 * Ownership as in client.h: the context outlives its clients; a client owns its WOLFSSL object,
 * its queued output and a wiped copy of its identity and PSK.
 */
#ifndef PSKGW_TOOLS_DEVSIM_CLIENT_WOLF_H
#define PSKGW_TOOLS_DEVSIM_CLIENT_WOLF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/devsim/client.h"

typedef struct pskgw_devsim_wctx pskgw_devsim_wctx_t;
typedef struct pskgw_devsim_wclient pskgw_devsim_wclient_t;

/* True when this build's wolfSSL can do DTLS 1.2 with a Connection ID. */
bool pskgw_devsim_wclient_available(void);

/* ciphers: OpenSSL names as client.h takes them ("CCM8" is spelled "CCM-8" for wolfSSL). Errors:
 * PSKGW_EINVAL, PSKGW_ENOMEM, PSKGW_ECONFIG (no CID in this wolfSSL, or no usable cipher). */
int pskgw_devsim_wctx_new(const char *ciphers, pskgw_devsim_wctx_t **out);
void pskgw_devsim_wctx_free(pskgw_devsim_wctx_t *ctx);

/* Arguments checked by the caller (client.c). Errors: PSKGW_ENOMEM, PSKGW_ETLS. */
int pskgw_devsim_wclient_new(pskgw_devsim_wctx_t *ctx, const uint8_t *identity, size_t identity_len,
                             const uint8_t *psk, size_t psk_len, size_t mtu,
                             pskgw_devsim_wclient_t **out);
void pskgw_devsim_wclient_free(pskgw_devsim_wclient_t *c);
int pskgw_devsim_wclient_start(pskgw_devsim_wclient_t *c, pskgw_devsim_hs_state_t *state);
int pskgw_devsim_wclient_feed(pskgw_devsim_wclient_t *c, const uint8_t *data, size_t len,
                              pskgw_devsim_hs_state_t *state, unsigned *records);
int pskgw_devsim_wclient_write(pskgw_devsim_wclient_t *c, const uint8_t *msg, size_t len);
void pskgw_devsim_wclient_close_notify(pskgw_devsim_wclient_t *c);
bool pskgw_devsim_wclient_next_out(pskgw_devsim_wclient_t *c, const uint8_t **data, size_t *len);
int64_t pskgw_devsim_wclient_timeout_ms(pskgw_devsim_wclient_t *c);
int pskgw_devsim_wclient_on_timeout(pskgw_devsim_wclient_t *c);
const char *pskgw_devsim_wclient_peer_alert(const pskgw_devsim_wclient_t *c);
const char *pskgw_devsim_wclient_cipher(const pskgw_devsim_wclient_t *c);
/* True once the handshake negotiated a CID (the server gave one). */
bool pskgw_devsim_wclient_cid_in_use(pskgw_devsim_wclient_t *c);

#endif
