/* Forwarding flows (forward.h), shared by forward.c, forward_tcp.c and forward_udp.c. */
#ifndef PSKGW_GATEWAY_FORWARD_INTERNAL_H
#define PSKGW_GATEWAY_FORWARD_INTERNAL_H

#include "gateway/forward.h"
#include "gateway/listen_internal.h"

#include <uv.h>

#define PSKGW_FWD_RBUF 16384 /* backend reads: one buffer per listener (one loop thread) */

enum { FWD_FAIL_REFUSED = 0, FWD_FAIL_TIMEOUT = 1, FWD_FAIL_OTHER = 2, FWD_FAIL_RESOLVE = 3 };

struct pskgw_fwd {
    pskgw_listener_t *l; /* a reference held until the last close callback */
    pskgw_lsess_t *s;    /* the device session; NULL once it ended */
    union {
        uv_tcp_t tcp;
        uv_udp_t udp;
    } h;
    uv_timer_t timer; /* TCP: connect deadline, then the drain deadline after the device left */
    uv_getaddrinfo_t *gai; /* the backend's name resolving (counted in pending_closes) */
    uint8_t *early;        /* TCP: device bytes held while the name resolves */
    size_t early_len;
    int pending_closes;
    bool closing;
    bool connected;
    bool timed_out;      /* the connect deadline passed */
    bool shutdown_due;   /* the device left before the connect completed */
    bool device_paused;  /* TCP: device reads stopped */
    bool backend_paused; /* TCP: backend reads stopped */
    bool got_byte;       /* the first backend byte was seen (latency observed) */
    size_t queued;       /* bytes in backend writes */
    uint64_t t0_ms;      /* latency start: the connect, then the first byte to the backend */
    bool sent_byte;
};

/* Record a backend connect outcome for readiness (why: FWD_FAIL_*, or -1 for a success); a
 * failure is also counted in connect_failed. */
void pskgw_fwd_outcome(pskgw_listener_t *l, int why);
/* The flow's buffer bound (opts default applied). */
size_t pskgw_fwd_buffer(const pskgw_listener_t *l);
/* Observe the latency to the first backend byte (once per flow). */
void pskgw_fwd_first_byte(pskgw_fwd_t *f);
/* Allocate a flow for s (listener ref taken, counters: sessions, sessions_active). */
pskgw_fwd_t *pskgw_fwd_alloc(pskgw_lsess_t *s);
/* Close callback for the flow's handles (handle->data = flow); frees at the last one. */
void pskgw_fwd_handle_closed(uv_handle_t *h);
/* One pending close (or resolution) of f done; frees f at the last one. */
void pskgw_fwd_release(pskgw_fwd_t *f);
/* Start resolving the backend's name for f (counted in pending_closes): cb gets the first
 * address (0) or a negative status, then must call pskgw_fwd_release(f) last. 0, or a libuv
 * error (nothing started). */
int pskgw_fwd_resolve(pskgw_fwd_t *f, int socktype,
                      void (*cb)(pskgw_fwd_t *f, int status, const struct sockaddr *addr));
/* The PROXY v2 header for s (dst: the listener's address) in a heap buffer of its size: 0 and
 * *out (the caller frees it) and *len; or PSKGW_ENOMEM, PSKGW_EIO (no peer address),
 * PSKGW_EINVAL (a TLV too long). */
int pskgw_fwd_proxy_header(pskgw_lsess_t *s, const struct sockaddr *dst, int transport,
                           uint8_t **out, size_t *len);

int pskgw_fwd_tcp_start(pskgw_lsess_t *s);
void pskgw_fwd_tcp_from_device(pskgw_fwd_t *f, const uint8_t *data, size_t len);
void pskgw_fwd_tcp_detach(pskgw_fwd_t *f);
int pskgw_fwd_udp_start(pskgw_lsess_t *s);
void pskgw_fwd_udp_from_device(pskgw_fwd_t *f, const uint8_t *data, size_t len);
void pskgw_fwd_udp_detach(pskgw_fwd_t *f);

#endif
