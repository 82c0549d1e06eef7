/* Forwarding listeners (issue 14): a listener with forward = "tcp://..." or "udp://..." passes
 * each device session's cleartext both ways to one backend server instead of the sinks.
 *
 * TCP (TLS listeners, forward_tcp.c): when the handshake completes, one backend TCP connection
 * per device session. With proxy_protocol its first bytes are a PROXY v2 header
 * (common/proxyv2.h: the device's address and port, the listener's, TLVs 0xE0 identity and 0xE1
 * ROTPublicUID). Device records go to the backend as they arrive (also while it connects);
 * backend bytes go to the device as TLS records of at most max_message bytes. Bounded both ways:
 * more than buffer_bytes queued towards the backend stops reading the device, more than
 * buffer_bytes queued towards the device stops reading the backend; reading resumes below half.
 * The idle timeout of a forwarding session counts activity both ways: bytes from the backend
 * restart it as device records do (a backend that streams keeps the session up).
 * Ends: the device's close_notify or FIN (or its idle timeout) shuts the backend's write side
 * (FIN after the queued bytes) and closes it once the shutdown is done (or buffer time runs
 * out: at most connect_timeout_ms); the backend's FIN becomes close_notify to the device (after
 * the bytes queued before it); a backend reset or write error ends the device session without
 * close_notify; a connect failure or connect_timeout_ms ends it with close_notify, counted by
 * reason (refused, timeout, other).
 *
 * UDP (DTLS listeners, forward_udp.c): when the handshake completes, one connected UDP socket
 * per device session (the backend sees one flow per device). Each device record is one
 * datagram (with proxy_protocol: prefixed by a PROXY v2 header, transport DGRAM); each backend
 * datagram is one record to the device (above max_message: dropped, counted). A datagram that
 * would take the socket's send queue above buffer_bytes is dropped (counted). The session's end
 * (close_notify, idle timeout) closes the socket.
 *
 * Ownership: a flow is owned by the listener; it holds a listener reference until its handles
 * are closed, and outlives its device session only while the TCP backend drains.
 * Threading: the loop's thread only.
 */
#ifndef PSKGW_GATEWAY_FORWARD_H
#define PSKGW_GATEWAY_FORWARD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A backend given by host name is resolved on the thread pool (uv_getaddrinfo, never on the
 * loop) for each new backend flow, within connect_timeout_ms (the connect deadline covers the
 * resolution): no address cached here, so a changed DNS record applies to the next session (the
 * system resolver's own cache, nscd or systemd-resolved, keeps the cost down). The first address
 * returned is used. A failed resolution ends the device session like a failed connect (reason
 * "resolve"). Device bytes that arrive while the name resolves are held and sent once the
 * backend is connected: TCP within buffer_bytes (reads paused above), UDP up to buffer_bytes of
 * datagrams (beyond: dropped, counted). */
typedef struct {
    bool enabled;
    struct sockaddr_storage backend; /* AF_INET or AF_INET6, port set (unless resolve) */
    bool resolve;                    /* host is a name: resolved per flow */
    char host[254];                  /* the name (resolve) */
    uint16_t port;
    bool proxy_protocol;
    uint32_t connect_timeout_ms; /* TCP; 0: 5000 */
    uint32_t buffer_bytes;       /* per direction; 0: 65536 */
} pskgw_forward_opts_t;

/* Backend latency to first byte: from the first byte sent to the backend (or, when the backend
 * speaks first, the connect) to the first byte received; upper bounds in ms, then +Inf. */
#define PSKGW_FWD_LAT_BUCKETS  12
#define PSKGW_FWD_FAIL_REASONS 4
extern const uint32_t pskgw_fwd_latency_bounds_ms[PSKGW_FWD_LAT_BUCKETS];

/* Per listener; monotonic totals except the gauges. All uint64_t (rendered by offset). */
typedef struct {
    uint64_t sessions;               /* backend flows opened */
    uint64_t bytes_to_backend;       /* cleartext bytes from devices written to backends */
    uint64_t bytes_from_backend;     /* bytes from backends sent to devices */
    uint64_t datagrams_to_backend;   /* UDP datagrams (TCP: writes) to backends */
    uint64_t datagrams_from_backend; /* UDP datagrams (TCP: reads) from backends */
    uint64_t datagrams_dropped;      /* UDP: send queue full, or above max_message */
    uint64_t device_pauses;          /* device reads stopped: the backend's queue was full */
    uint64_t backend_pauses;         /* backend reads stopped: the device's queue was full */
    uint64_t backend_closes;         /* backend FIN passed to the device as close_notify */
    uint64_t backend_errors;         /* backend resets and write errors that ended a session */
    uint64_t sessions_active;        /* gauge: backend flows open now */
    uint64_t buffered_bytes;         /* gauge: bytes queued towards backends now */
    uint64_t connect_failed[PSKGW_FWD_FAIL_REASONS]; /* by reason: refused, timeout, ... */
    uint64_t latency_le[PSKGW_FWD_LAT_BUCKETS + 1];  /* cumulative histogram, last +Inf */
    uint64_t latency_sum_ms;
    uint64_t latency_count;
    /* Readiness (health.c): uv_now() of the last backend connect that worked (UDP: a datagram
     * came back) and of the last that failed (UDP: ICMP unreachable), 0: never; the reason of
     * the last failure (index in pskgw_fwd_fail_reasons). Not rendered as metrics. */
    uint64_t backend_ok_ms;
    uint64_t backend_fail_ms;
    uint64_t backend_fail_why;
} pskgw_forward_counters_t;

/* "refused", "timeout", "other", "resolve" */
extern const char *const pskgw_fwd_fail_reasons[PSKGW_FWD_FAIL_REASONS];

#endif
