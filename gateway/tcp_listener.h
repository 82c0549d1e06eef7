/* The TCP (TLS 1.2) listener: the public API is pskgw_listener_* in gateway/listen_api.h with
 * proto PSKGW_LISTEN_TCP.
 *
 * One session per connection (max_sessions and the per-IP rate are checked on accept; a refused
 * connection is closed at once). Stream bytes go to pskgw_dtls_session_feed(); while the
 * identity lookup runs they are held (bounded) in the session. Messages are cut by the
 * listener's framing (len16, newline, record). Writes are queued with uv_write; more than
 * 1 MiB queued for one connection ends it (a peer that does not read).
 */
#ifndef PSKGW_GATEWAY_TCP_LISTENER_H
#define PSKGW_GATEWAY_TCP_LISTENER_H

#include "gateway/listen_api.h"

#endif
