/* A UDP proxy that plays a carrier NAT rebinding a device's mapping, for the tests.
 *
 * The proxy listens on a loopback port (its "client side") and forwards every datagram it gets
 * there to one server address from its "server-side" socket; datagrams that come back on the
 * server-side socket go to the last client address seen. A rebind replaces the server-side socket
 * with a new one bound to a new ephemeral port, as a NAT does when an idle mapping expired: the
 * server sees the same client from a new source port, and answers sent to the old port are lost
 * (the old socket is closed).
 *
 * Rebinds happen on command (pskgw_natproxy_rebind()) or by count: opts.rebind_after = N rebinds
 * once, before the (N+1)-th client datagram is forwarded; opts.rebind_every = N rebinds before
 * every (kN+1)-th one (k >= 1). With opts.count_app only client datagrams that start with a DTLS
 * application-data record (content type 23, or 25: tls12_cid) are counted and trigger the rebind,
 * so that handshake retransmissions under load do not move it. opts.hold_after = N: once N
 * counted datagrams went through, the proxy stops reading the client side (what the client sends
 * waits in the socket buffer) until pskgw_natproxy_release(): a device asleep between two
 * messages, with a client that sends them back to back. Real sockets on loopback, one thread per
 * proxy (poll over the two sockets and a control pipe).
 *
 * Ownership: pskgw_natproxy_start() returns a proxy owned by the caller, freed by
 * pskgw_natproxy_stop() (which joins the thread and closes every socket). The other functions may
 * be called from any thread while the proxy runs.
 */
#ifndef PSKGW_TEST_NATPROXY_H
#define PSKGW_TEST_NATPROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct pskgw_natproxy pskgw_natproxy_t;

typedef struct {
    const struct sockaddr *server; /* forward to (IPv4 or IPv6, copied) */
    const char *listen_ip;         /* client side, NULL = 127.0.0.1 (port 0: read it back) */
    uint32_t rebind_after;         /* 0 = no rebind by count */
    uint32_t rebind_every;         /* 0 = no periodic rebind */
    bool count_app;                /* count application-data datagrams only (23, 25) */
    uint32_t hold_after;           /* 0 = never hold the client side */
} pskgw_natproxy_opts_t;

typedef struct {
    uint64_t to_server;   /* client datagrams forwarded */
    uint64_t counted;     /* of those, the ones counted for rebind_after/every */
    uint64_t to_client;   /* server datagrams forwarded */
    uint64_t dropped;     /* server datagrams with no client known yet, or send errors */
    uint32_t rebinds;     /* server-side sockets replaced */
    uint16_t server_port; /* the current server-side source port (host order) */
    uint16_t listen_port; /* the client-side port (host order) */
} pskgw_natproxy_stats_t;

/* Bind both sockets and start the thread. Returns 0 and *out, or a negative errno value
 * (-EINVAL for an unusable option, socket/bind/pthread errors as they come). */
int pskgw_natproxy_start(const pskgw_natproxy_opts_t *opts, pskgw_natproxy_t **out);

/* The client-side port (host order): point the client here. */
uint16_t pskgw_natproxy_port(const pskgw_natproxy_t *p);

/* Replace the server-side socket now; returns once the new one is in place with its port (host
 * order, > 0), or a negative errno value (the proxy keeps the old socket then). */
int pskgw_natproxy_rebind(pskgw_natproxy_t *p);

/* End the hold of opts.hold_after (now, or before it begins): the client side is read again. */
void pskgw_natproxy_release(pskgw_natproxy_t *p);

/* A consistent copy of the counters. */
void pskgw_natproxy_stats(pskgw_natproxy_t *p, pskgw_natproxy_stats_t *out);

/* Stop the thread, close the sockets, free. NULL is a no-op. */
void pskgw_natproxy_stop(pskgw_natproxy_t *p);

#endif
