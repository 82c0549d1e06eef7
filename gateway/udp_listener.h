/* The UDP (DTLS 1.2) listener: the public API is pskgw_listener_* in gateway/listen_api.h with
 * proto PSKGW_LISTEN_UDP.
 *
 * Path of a datagram: the listener's receive buffer (borrowed) -> the session found by peer
 * address (family, port, address) -> pskgw_dtls_session_feed(). Without a session only a
 * ClientHello is answered: no valid cookie -> a HelloVerifyRequest sent with uv_udp_try_send and
 * nothing remembered (counter cookies_sent); a valid cookie -> max_sessions and the per-IP rate
 * are checked, then a session is created (cookie_verified, handshakes_started). Anything else
 * counts as bad_datagrams. Datagrams are read in batches (UV_UDP_RECVMMSG, up to 20 a call into
 * one listener buffer). What the datagrams of a batch make ready to send (HelloVerifyRequests,
 * handshake flights, replies, alerts) is copied into the listener's send queue and goes out in
 * one sendmmsg at the batch's end (UV_UDP_MMSG_FREE) or when the listener closes; datagrams sent
 * outside a batch (lookup completions, timers) go out at once with uv_udp_try_send. A full
 * socket buffer loses the datagram, which DTLS retransmission covers: every datagram lost so
 * (sendmmsg's EAGAIN/ENOBUFS, which loses the rest of its batch, or a datagram refused on its
 * own) counts in send_dropped and is logged, rate-limited ("udp-send").
 *
 * Reads: libuv reads a readable socket until recvmmsg finds nothing (EAGAIN). A batch of fewer
 * datagrams than one call can take emptied the socket, so the listener makes no further read in
 * that wake-up: the empty recvmmsg per wake-up is not made. A datagram arriving meanwhile
 * keeps the socket readable and is read at the next loop turn (epoll is level-triggered).
 */
#ifndef PSKGW_GATEWAY_UDP_LISTENER_H
#define PSKGW_GATEWAY_UDP_LISTENER_H

#include "gateway/listen_api.h"

#include <stdint.h>

/* Receive counters of a UDP listener (zeros for TCP): recvmmsg calls made, calls that found
 * nothing (EAGAIN), and reads not made because the batch before emptied the socket. For tests
 * and bench/hs-cost.sh's reading of the system calls per datagram. */
void pskgw_udp_rx_stats(const pskgw_listener_t *l, uint64_t *reads, uint64_t *empty,
                        uint64_t *spared);

#endif
