/* pskgw-devsim: the fleet on one libuv loop (see fleet.h). */
#include "tools/devsim/fleet.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/err.h"
#include "tools/devsim/client.h"
#include "tools/devsim/creds.h"
#include "tools/devsim/payload.h"
#include "tools/rotkeys/rotkeys.h"

#define RAMP_TICK_MS 5
#define START_BATCH  2000 /* devices started per loop turn at most (a burst stays responsive) */
#define ACK_RING     8
#define MAX_WIRE     (PSKGW_DEVSIM_PAYLOAD_MAX + 64)
#define REBIND_RETRY 1

enum { AFTER_FINISH = 0, AFTER_RECONNECT, AFTER_REBIND, AFTER_SOCKET_REBIND };

enum dstate {
    D_IDLE = 0,    /* not started */
    D_CONNECTING,  /* TCP connect in progress */
    D_HANDSHAKING, /* session started, not established */
    D_ESTABLISHED, /* sending messages */
    D_PROBING,     /* --rebind-every: the first message from a new port sent, its ack awaited */
    D_NOSESSION,   /* between sessions: the next session starts when the next message is due */
    D_DRAINING,    /* waiting for the acks of what was sent before finishing or closing */
    D_HOLDING,     /* all done, session kept open (--hold) */
    D_ENDED,
};

typedef union {
    uv_handle_t h;
    uv_stream_t stream;
    uv_udp_t udp;
    uv_tcp_t tcp;
} sock_u;

typedef struct fleet fleet_t;

typedef struct {
    fleet_t *f;
    uint32_t index;
    uint8_t kind;
    uint8_t state;
    uint8_t cur;          /* socket slot in use */
    uint8_t sock_open[2]; /* initialised and its close callback not yet run */
    bool timers_init;
    bool idle;
    bool counted_up;
    bool new_socket;     /* the next session needs a new socket (TCP, or NAT rebinding) */
    uint8_t after_drain; /* what D_DRAINING leads to: AFTER_FINISH, AFTER_RECONNECT, AFTER_REBIND */
    sock_u sock[2];
    uv_connect_t conn[2];
    uv_shutdown_t shut[2];
    uv_timer_t io_timer;  /* DTLS retransmission */
    uv_timer_t app_timer; /* handshake deadline, next message, ack wait, hold */
    pskgw_devsim_client_t *c;
    void *sess; /* --resume: the last established session's state, offered on the next one */
    uint64_t hs_start_ns;
    uint32_t sent, since_session, acks;
    uint32_t handshakes; /* sessions started (per-session identity number) */
    uint64_t bound_ns;   /* --rebind-every: when the current socket started carrying the session */
    uint8_t ring_head, ring_len;
    uint64_t ring[ACK_RING]; /* send times (ns) of unacknowledged messages */
    /* --expect-echo: the byte streams both ways (FNV-1a, independent of how they are cut) and
     * the stream offset where each unacknowledged message ends (beside ring); messages pushed
     * out of the ring are acknowledged once lost_end is back. */
    uint64_t tx_bytes, rx_bytes, tx_hash, rx_hash;
    uint64_t ends[ACK_RING];
    uint64_t lost_end;
    uint32_t lost_n;
} device_t;

struct fleet {
    const pskgw_devsim_opts_t *o;
    pskgw_devsim_stats_t *s;
    uv_loop_t loop;
    pskgw_devsim_client_ctx_t *ctx;
    device_t *dev;
    uint32_t n;
    uint32_t next_start;
    uint32_t run_id;
    uv_timer_t ramp_timer, tick_timer, stop_timer;
    uv_signal_t sigint, sigterm;
    pskgw_devsim_hostile_t *hostile; /* --attack, or NULL */
    uint64_t t0_ns;
    bool finishing;
    bool tty;
    double next_plain_progress;
    pskgw_devsim_hist_t hs_sec, msg_sec;
    uint64_t last_hs, last_msgs, last_acks, last_errs;
    size_t samples_cap;
    uint8_t pt[PSKGW_DEVSIM_PAYLOAD_MAX];
    uint8_t e2e[PSKGW_DEVSIM_PAYLOAD_MAX + 64];
    uint8_t wire[MAX_WIRE];
    uint8_t rx[65536];
};

static const char *const err_keys[] = {
#define K_(name, key, text) key,
    PSKGW_DEVSIM_ERROR_MAP(K_)
#undef K_
};
static const char *const err_texts[] = {
#define T_(name, key, text) text,
    PSKGW_DEVSIM_ERROR_MAP(T_)
#undef T_
};

const char *pskgw_devsim_error_key(pskgw_devsim_error_t e)
{
    return (unsigned)e < PSKGW_DEVSIM_ERR_COUNT ? err_keys[e] : "unknown";
}

const char *pskgw_devsim_error_text(pskgw_devsim_error_t e)
{
    return (unsigned)e < PSKGW_DEVSIM_ERR_COUNT ? err_texts[e] : "unknown";
}

uint64_t pskgw_devsim_stats_errors(const pskgw_devsim_stats_t *s)
{
    uint64_t t = 0;
    for (int i = 0; i < PSKGW_DEVSIM_ERR_COUNT; i++)
        t += s->errors[i];
    return t;
}

uint64_t pskgw_devsim_stats_hs_failures(const pskgw_devsim_stats_t *s)
{
    return s->errors[PSKGW_DEVSIM_ERR_HS_ALERT] + s->errors[PSKGW_DEVSIM_ERR_HS_TIMEOUT] +
           s->errors[PSKGW_DEVSIM_ERR_HS_ERROR];
}

void pskgw_devsim_stats_deinit(pskgw_devsim_stats_t *s)
{
    if (s == NULL)
        return;
    free(s->samples);
    free(s->sent_by_device);
    s->samples = NULL;
    s->sent_by_device = NULL;
}

static bool share_hit(uint64_t i, double share)
{
    return share > 0 && floor((double)(i + 1) * share) > floor((double)i * share);
}

/* ---- forward declarations ---- */
static void dev_end(device_t *d);
static void session_start(device_t *d);
static void on_app_timer(uv_timer_t *t);
static void fleet_finish(fleet_t *f);

/* The run ends by itself when every device has ended and the attack (if any) is done. */
static void maybe_finish(fleet_t *f)
{
    if (!f->finishing && f->s->ended == f->n && (f->hostile == NULL || f->s->attack.done))
        fleet_finish(f);
}

static void on_hostile_done(void *arg)
{
    maybe_finish(arg);
}

static void count_error(device_t *d, pskgw_devsim_error_t e, uint64_t n)
{
    d->f->s->errors[e] += n;
}

/* FNV-1a over a byte stream: the same for the same bytes however they are cut. */
static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* --expect-echo: at the end, every byte back and equal. */
static void check_echo(device_t *d)
{
    if (d->f->o->expect_echo &&
        (d->rx_bytes > d->tx_bytes || (d->rx_bytes == d->tx_bytes && d->rx_hash != d->tx_hash)))
        count_error(d, PSKGW_DEVSIM_ERR_ECHO_MISMATCH, 1);
}

/* --expect-echo: the echoed bytes, in order. */
static void on_echo(void *arg, const uint8_t *data, size_t len)
{
    device_t *d = arg;

    d->rx_bytes += len;
    d->rx_hash = fnv1a(d->rx_hash, data, len);
}

/* ---- sockets ---- */

static void source_addr(const fleet_t *f, uint32_t index, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (f->o->target.ss_family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_loopback;
        return;
    }
    /* 127.1.0.1, 127.1.0.2, ... 127.1.0.254, 127.1.1.1, ...: never .0 or .255. */
    uint32_t s = index / f->o->per_ip;
    uint32_t x = (s / (254u * 256u)) % 254u, y = (s / 254u) % 256u, z = 1 + s % 254u;
    struct sockaddr_in *a4 = (struct sockaddr_in *)out;
    a4->sin_family = AF_INET;
    a4->sin_addr.s_addr = htonl((127u << 24) | ((1 + x) << 16) | (y << 8) | z);
}

static void on_sock_closed(uv_handle_t *h)
{
    device_t *d = h->data;
    for (int i = 0; i < 2; i++)
        if (h == &d->sock[i].h)
            d->sock_open[i] = 0;
}

static void sock_close(device_t *d, int slot)
{
    uv_handle_t *h = &d->sock[slot].h;
    if (!d->sock_open[slot] || uv_is_closing(h))
        return;
    uv_close(h, on_sock_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    device_t *d = req->data;
    for (int i = 0; i < 2; i++)
        if (req == &d->shut[i])
            sock_close(d, i);
}

/* Close a slot; TCP gets its pending writes (close_notify) flushed first. */
static void sock_retire(device_t *d, int slot)
{
    if (!d->sock_open[slot] || uv_is_closing(&d->sock[slot].h))
        return;
    if (d->f->o->transport == PSKGW_DEVSIM_TLS && uv_is_writable(&d->sock[slot].stream)) {
        d->shut[slot].data = d;
        if (uv_shutdown(&d->shut[slot], &d->sock[slot].stream, on_shutdown) == 0)
            return;
    }
    sock_close(d, slot);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    device_t *d = h->data;
    buf->base = (char *)d->f->rx;
    buf->len = sizeof(d->f->rx);
}

static void deliver(device_t *d, const uint8_t *data, size_t len);
static void peer_closed(device_t *d);
static void hs_failed(device_t *d, int rc);

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    (void)addr;
    (void)flags;
    device_t *d = h->data;
    if (nread <= 0 || h != &d->sock[d->cur].udp || d->c == NULL)
        return; /* nothing, an ICMP error (the handshake timer covers it), or an old socket */
    deliver(d, (const uint8_t *)buf->base, (size_t)nread);
}

static void on_tcp_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    device_t *d = st->data;
    if (st != &d->sock[d->cur].stream || d->c == NULL) {
        if (nread < 0)
            uv_read_stop(st);
        return;
    }
    if (nread < 0) {
        uv_read_stop(st);
        if (d->state == D_HANDSHAKING)
            hs_failed(d, PSKGW_ECLOSED);
        else
            peer_closed(d);
        return;
    }
    if (nread > 0)
        deliver(d, (const uint8_t *)buf->base, (size_t)nread);
}

static void on_connect(uv_connect_t *req, int status)
{
    device_t *d = req->data;
    if (status == UV_ECANCELED || d->state == D_ENDED)
        return;
    if (req != &d->conn[d->cur])
        return;
    if (status < 0 || uv_read_start(&d->sock[d->cur].stream, on_alloc, on_tcp_read) < 0) {
        count_error(d, PSKGW_DEVSIM_ERR_SOCKET, 1);
        dev_end(d);
        return;
    }
    session_start(d);
}

/* Open socket `slot`, bound to the device's source address. UDP is connected to the target and
 * ready; TCP is connecting (session_start runs from on_connect). */
static int sock_open(device_t *d, int slot)
{
    fleet_t *f = d->f;
    struct sockaddr_storage src;
    source_addr(f, f->o->first_device + d->index, &src);
    sock_u *s = &d->sock[slot];
    int r;
    if (f->o->transport == PSKGW_DEVSIM_DTLS) {
        r = uv_udp_init(&f->loop, &s->udp);
        if (r < 0)
            return r;
        s->h.data = d;
        d->sock_open[slot] = 1;
        r = uv_udp_bind(&s->udp, (const struct sockaddr *)&src, 0);
        if (r == 0)
            r = uv_udp_connect(&s->udp, (const struct sockaddr *)&f->o->target);
        if (r == 0)
            r = uv_udp_recv_start(&s->udp, on_alloc, on_udp_recv);
    } else {
        r = uv_tcp_init(&f->loop, &s->tcp);
        if (r < 0)
            return r;
        s->h.data = d;
        d->sock_open[slot] = 1;
        r = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&src, 0);
        if (r == 0)
            r = uv_tcp_nodelay(&s->tcp, 1);
        if (r == 0) {
            d->conn[slot].data = d;
            r = uv_tcp_connect(&d->conn[slot], &s->tcp, (const struct sockaddr *)&f->o->target,
                               on_connect);
        }
    }
    if (r < 0)
        sock_close(d, slot);
    return r;
}

typedef struct {
    uv_write_t req;
    uint8_t data[];
} wreq_t;

static void on_write(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a read error or a timeout */
    free(req);
}

static void flush(device_t *d)
{
    const uint8_t *data;
    size_t len;
    sock_u *s = &d->sock[d->cur];
    while (d->c != NULL && pskgw_devsim_client_next_out(d->c, &data, &len)) {
        if (!d->sock_open[d->cur] || uv_is_closing(&s->h))
            continue;
        if (d->f->o->transport == PSKGW_DEVSIM_DTLS) {
            uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
            if (uv_udp_try_send(&s->udp, &b, 1, NULL) < 0)
                d->f->s->send_drops++;
        } else {
            wreq_t *w = malloc(sizeof(*w) + len);
            if (w == NULL) {
                d->f->s->send_drops++;
                continue;
            }
            memcpy(w->data, data, len);
            uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
            if (uv_write(&w->req, &s->stream, &b, 1, on_write) < 0) {
                free(w);
                d->f->s->send_drops++;
            }
        }
    }
}

static void on_io_timer(uv_timer_t *t);

static void arm_io(device_t *d)
{
    int64_t ms = d->c != NULL ? pskgw_devsim_client_timeout_ms(d->c) : -1;
    if (ms < 0)
        uv_timer_stop(&d->io_timer);
    else
        uv_timer_start(&d->io_timer, on_io_timer, (uint64_t)ms, 0);
}

/* ---- sessions ---- */

static void session_free(device_t *d, bool notify)
{
    if (d->c == NULL)
        return;
    if (notify) {
        pskgw_devsim_client_close_notify(d->c);
        flush(d);
    }
    pskgw_devsim_client_free(d->c);
    d->c = NULL;
    d->ring_len = 0;
    uv_timer_stop(&d->io_timer);
    if (d->counted_up) {
        d->counted_up = false;
        d->f->s->up--;
    }
}

static void app_timer_in(device_t *d, double seconds)
{
    uint64_t ms = seconds <= 0 ? 0 : (uint64_t)ceil(seconds * 1000.0);
    uv_timer_start(&d->app_timer, on_app_timer, ms, 0);
}

static void session_start(device_t *d)
{
    fleet_t *f = d->f;
    pskgw_devsim_creds_t cr;
    /* Per-session identities: session numbers start at the run id, so that runs against the
     * same gateway do not meet each other's identities in its cache. */
    int rc = pskgw_devsim_creds_get_session(
        f->o->seed, f->o->first_device + d->index, (pskgw_devsim_kind_t)d->kind, f->o->psk_bits,
        f->o->unknown_by_index ? f->o->unknown_index_base : UINT64_MAX, f->o->identity_per_session,
        f->run_id + d->handshakes, &cr);
    d->handshakes++;
    if (rc == 0) {
        rc = pskgw_devsim_client_new(f->ctx, (const uint8_t *)cr.identity, cr.identity_len, cr.psk,
                                     cr.psk_len, f->o->mtu, &d->c);
        pskgw_devsim_creds_wipe(&cr);
        if (rc == 0 && f->o->expect_echo)
            pskgw_devsim_client_on_data(d->c, on_echo, d);
        if (rc == 0 && f->o->resume)
            rc = pskgw_devsim_client_set_session(d->c, d->sess);
    }
    if (rc < 0) {
        count_error(d, PSKGW_DEVSIM_ERR_HS_ERROR, 1);
        dev_end(d);
        return;
    }
    d->state = D_HANDSHAKING;
    d->since_session = 0;
    d->hs_start_ns = uv_hrtime();
    f->s->handshakes_started++;
    app_timer_in(d, f->o->handshake_timeout);
    pskgw_devsim_hs_state_t st;
    rc = pskgw_devsim_client_start(d->c, &st);
    flush(d);
    if (rc < 0) {
        hs_failed(d, rc);
        return;
    }
    arm_io(d);
}

/* Start the next session: on the same socket, or on a new one (new source port). */
static void session_next(device_t *d)
{
    if (!d->new_socket) {
        session_start(d);
        return;
    }
    int old = d->cur, nxt = 1 - d->cur;
    if (d->sock_open[nxt]) { /* the previous one is still closing: try again shortly */
        d->state = D_NOSESSION;
        uv_timer_start(&d->app_timer, on_app_timer, REBIND_RETRY, 0);
        return;
    }
    /* Open the new socket before closing the old one, so the port cannot be reused. */
    if (sock_open(d, nxt) < 0) {
        count_error(d, PSKGW_DEVSIM_ERR_SOCKET, 1);
        dev_end(d);
        return;
    }
    d->cur = (uint8_t)nxt;
    d->new_socket = false;
    sock_retire(d, old);
    if (d->f->o->transport == PSKGW_DEVSIM_DTLS) {
        session_start(d);
    } else {
        d->state = D_CONNECTING;
        app_timer_in(d, d->f->o->handshake_timeout);
    }
}

static double interval_of(const device_t *d)
{
    const pskgw_devsim_opts_t *o = d->f->o;
    return d->idle ? o->idle_interval : 1.0 / o->rate;
}

static void finish_end(device_t *d);

static void finish(device_t *d)
{
    const pskgw_devsim_opts_t *o = d->f->o;
    if (o->expect_ack && d->acks < d->sent && o->ack_timeout > 0 && d->c != NULL) {
        d->state = D_DRAINING;
        d->after_drain = AFTER_FINISH;
        app_timer_in(d, o->ack_timeout);
        return;
    }
    finish_end(d);
}

/* End the session after K messages: close it (reconnect) or walk away from it (NAT rebinding);
 * the next session starts when the next message is due. */
static void session_cycle(device_t *d, int how)
{
    const pskgw_devsim_opts_t *o = d->f->o;
    if (how == AFTER_RECONNECT) {
        d->f->s->reconnects++;
        session_free(d, true);
        d->new_socket = o->transport == PSKGW_DEVSIM_TLS;
    } else {
        /* The NAT gave the device a new port: the gateway still holds the old session. */
        d->f->s->rebinds++;
        session_free(d, false);
        d->new_socket = true;
    }
    d->state = D_NOSESSION;
    app_timer_in(d, interval_of(d));
}

static void rebind_and_send(device_t *d);

static void drain_done(device_t *d)
{
    if (d->after_drain == AFTER_FINISH) {
        finish_end(d);
    } else if (d->after_drain == AFTER_SOCKET_REBIND) {
        d->state = D_ESTABLISHED;
        rebind_and_send(d);
    } else
        session_cycle(d, d->after_drain);
}

/* Every message sent (and acked, or the ack wait is over). */
static void finish_end(device_t *d)
{
    const pskgw_devsim_opts_t *o = d->f->o;
    uv_timer_stop(&d->app_timer);
    if (o->expect_ack && d->acks < d->sent)
        count_error(d, PSKGW_DEVSIM_ERR_ACK_MISSING, d->sent - d->acks);
    check_echo(d);
    d->f->s->completed++;
    if (o->hold > 0 && d->c != NULL) {
        d->state = D_HOLDING;
        app_timer_in(d, o->hold);
        return;
    }
    dev_end(d);
}

static void after_send(device_t *d);

static void send_message(device_t *d)
{
    fleet_t *f = d->f;
    const pskgw_devsim_opts_t *o = f->o;
    uint32_t n = d->sent;
    const uint8_t *msg = f->pt;
    size_t len = o->size;
    int rc = pskgw_devsim_payload_make(f->run_id, d->index, n, o->size, f->pt, sizeof(f->pt));
    if (rc == 0 && o->e2e != 0) {
        /* A new key identity (hence key and nonce) per message, as AT+USECE2EDATAENC gives:
         * message n of the run uses counter run_id + n (n < 65536, checked by the options), so
         * no two messages of a device in a run share one, and runs start apart. */
        uint16_t ctr = o->e2e_fixed_ki ? 0 : (uint16_t)((f->run_id + n) & 0xFFFF);
        rc = pskgw_rot_e2e_encrypt_as(o->seed, o->first_device + d->index, o->e2e, ctr,
                                      o->e2e_v2_layout, f->pt, o->size, f->e2e, sizeof(f->e2e),
                                      &len);
        msg = f->e2e;
    }
    size_t wlen = 0;
    if (rc == 0) {
        switch (o->framing) {
        case PSKGW_DEVSIM_FRAMING_LEN16:
            f->wire[0] = (uint8_t)(len >> 8);
            f->wire[1] = (uint8_t)len;
            memcpy(f->wire + 2, msg, len);
            wlen = len + 2;
            break;
        case PSKGW_DEVSIM_FRAMING_NEWLINE:
            memcpy(f->wire, msg, len);
            f->wire[len] = '\n';
            wlen = len + 1;
            break;
        default:
            memcpy(f->wire, msg, len);
            wlen = len;
            break;
        }
        rc = pskgw_devsim_client_write(d->c, f->wire, wlen);
    }
    if (rc < 0) {
        count_error(d, PSKGW_DEVSIM_ERR_SEND, 1);
        dev_end(d);
        return;
    }
    flush(d);
    d->sent++;
    d->since_session++;
    f->s->sent_by_device[d->index] = d->sent;
    f->s->messages_sent++;
    f->s->bytes_sent += wlen;
    if (o->expect_ack) {
        if (d->ring_len == ACK_RING) { /* too many outstanding: forget the oldest's time */
            d->lost_end = d->ends[d->ring_head];
            d->lost_n++;
            d->ring_head = (uint8_t)((d->ring_head + 1) % ACK_RING);
            d->ring_len--;
        }
        d->tx_bytes += wlen;
        d->tx_hash = fnv1a(d->tx_hash, f->wire, wlen);
        d->ends[(d->ring_head + d->ring_len) % ACK_RING] = d->tx_bytes;
        d->ring[(d->ring_head + d->ring_len) % ACK_RING] = uv_hrtime();
        d->ring_len++;
    }
    if (o->rebind_every_s > 0 && d->state == D_PROBING) {
        app_timer_in(d, o->ack_timeout); /* on_acks or on_app_timer decides */
        return;
    }
    after_send(d);
}

/* What follows a message sent (and, after a rebind, its ack): the next one, the end, or the
 * session's cycle. */
static void after_send(device_t *d)
{
    const pskgw_devsim_opts_t *o = d->f->o;
    if (d->sent >= o->messages) {
        finish(d);
        return;
    }
    int cycle = -1;
    if (o->reconnect_every != 0 && d->since_session >= o->reconnect_every)
        cycle = AFTER_RECONNECT;
    else if (o->nat_rebind_every != 0 && d->since_session >= o->nat_rebind_every)
        cycle = AFTER_REBIND;
    if (cycle < 0) {
        app_timer_in(d, interval_of(d));
    } else if (o->expect_ack && d->acks < d->sent && o->ack_timeout > 0) {
        d->state = D_DRAINING; /* a device waits for its acks before it lets the session go */
        d->after_drain = (uint8_t)cycle;
        app_timer_in(d, o->ack_timeout);
    } else {
        session_cycle(d, cycle);
    }
}

static void on_established(device_t *d)
{
    fleet_t *f = d->f;
    uint64_t us = (uv_hrtime() - d->hs_start_ns) / 1000;
    pskgw_devsim_hist_add(&f->s->hs, us);
    pskgw_devsim_hist_add(&f->hs_sec, us);
    f->s->handshakes_ok++;
    if (f->o->resume) {
        if (pskgw_devsim_client_reused(d->c)) {
            f->s->resumed++;
            f->s->resumed_us += us;
        } else {
            f->s->full_us += us;
        }
        pskgw_devsim_client_session_free(d->sess);
        d->sess = pskgw_devsim_client_get1_session(d->c);
    }
    if (pskgw_devsim_client_cid_in_use(d->c))
        f->s->cid_sessions++;
    if (f->s->cipher == NULL)
        f->s->cipher = pskgw_devsim_client_cipher(d->c);
    uv_timer_stop(&d->app_timer);
    arm_io(d);
    if (d->kind != PSKGW_DEVSIM_GOOD) {
        count_error(d, PSKGW_DEVSIM_ERR_BAD_ACCEPTED, 1);
        dev_end(d);
        return;
    }
    d->state = D_ESTABLISHED;
    d->bound_ns = uv_hrtime();
    d->counted_up = true;
    if (++f->s->up > f->s->up_max)
        f->s->up_max = f->s->up;
    if (d->sent >= f->o->messages) {
        finish(d);
        return;
    }
    /* The first message goes at once; later ones were already due when the session was
     * (re)started, so they go at once too. */
    send_message(d);
}

/* --expect-echo: messages whose last byte came back; those pushed out of the ring are counted
 * without a latency. */
static unsigned echoed(device_t *d)
{
    unsigned n = 0;

    if (d->lost_n > 0 && d->rx_bytes >= d->lost_end) {
        d->acks += d->lost_n;
        d->f->s->acks += d->lost_n;
        d->lost_n = 0;
    }
    for (unsigned i = 0; i < d->ring_len; i++) {
        if (d->ends[(d->ring_head + i) % ACK_RING] > d->rx_bytes)
            break;
        n++;
    }
    return n;
}

static void on_acks(device_t *d, unsigned recs)
{
    fleet_t *f = d->f;
    f->s->acks += recs;
    d->acks += recs;
    uint64_t now = uv_hrtime();
    for (unsigned i = 0; i < recs && d->ring_len > 0; i++) {
        uint64_t us = (now - d->ring[d->ring_head]) / 1000;
        d->ring_head = (uint8_t)((d->ring_head + 1) % ACK_RING);
        d->ring_len--;
        pskgw_devsim_hist_add(&f->s->msg, us);
        pskgw_devsim_hist_add(&f->msg_sec, us);
    }
    if (d->state == D_DRAINING && d->acks >= d->sent)
        drain_done(d);
    else if (d->state == D_PROBING && d->acks >= d->sent) {
        f->s->rebinds_followed++; /* the gateway answered on the new port: the session lives */
        d->state = D_ESTABLISHED;
        after_send(d);
    }
}

static void hs_failed(device_t *d, int rc)
{
    fleet_t *f = d->f;
    session_free(d, false);
    if (d->kind != PSKGW_DEVSIM_GOOD) {
        f->s->expected_failures++;
        if (d->kind == PSKGW_DEVSIM_UNKNOWN)
            f->s->expected_unknown++;
        else
            f->s->expected_wrong_psk++;
    } else {
        count_error(d,
                    rc == PSKGW_EAUTH      ? PSKGW_DEVSIM_ERR_HS_ALERT
                    : rc == PSKGW_ETIMEOUT ? PSKGW_DEVSIM_ERR_HS_TIMEOUT
                                           : PSKGW_DEVSIM_ERR_HS_ERROR,
                    1);
    }
    dev_end(d);
}

static void peer_closed(device_t *d)
{
    const pskgw_devsim_opts_t *o = d->f->o;
    d->f->s->peer_closes++;
    session_free(d, false);
    switch (d->state) {
    case D_ESTABLISHED:
    case D_PROBING:
        if (d->idle) { /* an idle device handshakes again when it next has data */
            d->new_socket = o->transport == PSKGW_DEVSIM_TLS;
            d->state = D_NOSESSION;
            return; /* app_timer already runs for the next message */
        }
        count_error(d, PSKGW_DEVSIM_ERR_PEER_CLOSED, 1);
        dev_end(d);
        return;
    case D_DRAINING:
        if (d->after_drain == AFTER_FINISH) {
            finish_end(d);
        } else { /* the session was about to be cycled anyway */
            d->new_socket = o->transport == PSKGW_DEVSIM_TLS || d->after_drain == AFTER_REBIND;
            d->state = D_NOSESSION;
            app_timer_in(d, interval_of(d));
        }
        return;
    case D_HOLDING:
        dev_end(d);
        return;
    default:
        return;
    }
}

static void deliver(device_t *d, const uint8_t *data, size_t len)
{
    bool handshaking = d->state == D_HANDSHAKING;
    pskgw_devsim_hs_state_t st = PSKGW_DEVSIM_HS_PENDING;
    unsigned recs = 0;
    int rc = pskgw_devsim_client_feed(d->c, data, len, &st, &recs);
    flush(d);
    if (d->f->o->expect_echo)
        recs = echoed(d);
    if (recs > 0 || (d->f->o->expect_echo && d->state == D_DRAINING && d->acks >= d->sent))
        on_acks(d, recs);
    if (d->c == NULL || d->state == D_ENDED)
        return;
    if (rc < 0) {
        if (handshaking)
            hs_failed(d, rc);
        else
            peer_closed(d);
        return;
    }
    if (handshaking && st == PSKGW_DEVSIM_HS_DONE)
        on_established(d);
    else
        arm_io(d);
}

static void on_io_timer(uv_timer_t *t)
{
    device_t *d = t->data;
    if (d->c == NULL)
        return;
    d->f->s->retransmissions++;
    int rc = pskgw_devsim_client_on_timeout(d->c);
    flush(d);
    if (rc < 0 && d->state == D_HANDSHAKING) {
        hs_failed(d, PSKGW_ETIMEOUT);
        return;
    }
    arm_io(d);
}

/* --rebind-every: the NAT gave the device a new port while its session lives (the SSL object is
 * kept, only the socket changes). 0, or -1 when the previous socket is still closing (the rebind
 * waits for the next message) or a new one cannot be opened (counted, the device ends). */
static int socket_rebind(device_t *d)
{
    int old = d->cur, nxt = 1 - d->cur;
    if (d->sock_open[nxt])
        return -1;
    /* Open the new socket before closing the old one, so the port cannot be reused. */
    if (sock_open(d, nxt) < 0) {
        count_error(d, PSKGW_DEVSIM_ERR_SOCKET, 1);
        dev_end(d);
        return -1;
    }
    d->cur = (uint8_t)nxt;
    sock_retire(d, old);
    d->bound_ns = uv_hrtime();
    d->f->s->socket_rebinds++;
    return 0;
}

/* The ack of the first message after a rebind did not come: the gateway did not follow the
 * device to its new port (no Connection ID), the session is lost. Handshake again from the new
 * port and send the unacknowledged messages again, as a module does (acks come in order: they
 * are the last sent - acks); they are counted, not errors. */
static void session_lost(device_t *d)
{
    fleet_t *f = d->f;
    f->s->sessions_lost++;
    f->s->lost_messages += d->sent - d->acks;
    d->sent = d->acks;
    f->s->sent_by_device[d->index] = d->sent;
    session_free(d, false);
    f->s->rehandshakes++;
    session_start(d);
}

/* The socket rebind of --rebind-every, then the message that was due (the probe). */
static void rebind_and_send(device_t *d)
{
    int r = socket_rebind(d);
    if (d->state == D_ENDED)
        return;
    if (r == 0)
        d->state = D_PROBING;
    send_message(d);
}

static void on_app_timer(uv_timer_t *t)
{
    device_t *d = t->data;
    switch (d->state) {
    case D_CONNECTING:
    case D_HANDSHAKING:
        hs_failed(d, PSKGW_ETIMEOUT);
        break;
    case D_ESTABLISHED:
        /* --rebind-every: the device wakes up behind a new NAT mapping when its next message
         * is due S seconds or more after the last one began. A device sleeps once what it sent
         * is acknowledged: with acks outstanding it waits for them (up to --ack-timeout) first,
         * so that an ack on its way to the old port is not mistaken for a lost one. */
        if (d->f->o->rebind_every_s > 0 &&
            (double)(uv_hrtime() - d->bound_ns) / 1e9 >= d->f->o->rebind_every_s) {
            if (d->acks < d->sent) {
                d->state = D_DRAINING;
                d->after_drain = AFTER_SOCKET_REBIND;
                app_timer_in(d, d->f->o->ack_timeout);
                break;
            }
            rebind_and_send(d);
            break;
        }
        send_message(d);
        break;
    case D_PROBING:
        session_lost(d);
        break;
    case D_NOSESSION:
        session_next(d);
        break;
    case D_DRAINING:
        drain_done(d);
        break;
    case D_HOLDING:
        dev_end(d);
        break;
    default:
        break;
    }
}

/* ---- devices ---- */

static void dev_end(device_t *d)
{
    if (d->state == D_ENDED)
        return;
    bool graceful = d->state == D_ESTABLISHED || d->state == D_PROBING || d->state == D_DRAINING ||
                    d->state == D_HOLDING;
    session_free(d, graceful);
    d->state = D_ENDED;
    if (d->timers_init) {
        uv_timer_stop(&d->io_timer);
        uv_timer_stop(&d->app_timer);
    }
    sock_retire(d, 0);
    sock_retire(d, 1);
    fleet_t *f = d->f;
    f->s->ended++;
    maybe_finish(f);
}

static void dev_start(device_t *d)
{
    fleet_t *f = d->f;
    f->s->started++;
    uv_timer_init(&f->loop, &d->io_timer);
    uv_timer_init(&f->loop, &d->app_timer);
    d->io_timer.data = d;
    d->app_timer.data = d;
    d->timers_init = true;
    if (sock_open(d, 0) < 0) {
        count_error(d, PSKGW_DEVSIM_ERR_SOCKET, 1);
        dev_end(d);
        return;
    }
    d->cur = 0;
    if (f->o->transport == PSKGW_DEVSIM_DTLS) {
        session_start(d);
    } else {
        d->state = D_CONNECTING;
        app_timer_in(d, f->o->handshake_timeout);
    }
}

/* ---- the run ---- */

static void on_ramp(uv_timer_t *t)
{
    fleet_t *f = t->data;
    double elapsed = (double)(uv_hrtime() - f->t0_ns) / 1e9;
    uint64_t due = f->o->ramp <= 0 ? f->n : (uint64_t)floor(elapsed * f->o->ramp) + 1;
    if (due > f->n)
        due = f->n;
    uint32_t batch = 0;
    while (f->next_start < due && batch < START_BATCH && !f->finishing) {
        dev_start(&f->dev[f->next_start++]);
        batch++;
    }
    if (f->next_start >= f->n)
        uv_timer_stop(&f->ramp_timer);
}

static void progress_line(fleet_t *f, const pskgw_devsim_sample_t *smp, bool final)
{
    const pskgw_devsim_stats_t *s = f->s;
    char errs[256];
    size_t off = 0;
    errs[0] = '\0';
    for (int i = 0; i < PSKGW_DEVSIM_ERR_COUNT; i++) {
        if (s->errors[i] == 0)
            continue;
        int w = snprintf(errs + off, sizeof(errs) - off, " %s=%llu", pskgw_devsim_error_key(i),
                         (unsigned long long)s->errors[i]);
        if (w < 0 || (size_t)w >= sizeof(errs) - off)
            break;
        off += (size_t)w;
    }
    char lat[96] = "";
    if (f->o->expect_ack)
        snprintf(lat, sizeof(lat), " msg p50/p99 %.1f/%.1f ms", (double)smp->msg_p50_us / 1000.0,
                 (double)smp->msg_p99_us / 1000.0);
    fprintf(stderr,
            "%s[%5.0fs] up %u/%u  hs/s %llu  msg/s %llu  hs p50/p99 %.1f/%.1f ms%s  "
            "expected-fail %llu  errors%s%s%s",
            f->tty ? "\r\033[K" : "", smp->t, s->up, s->devices,
            (unsigned long long)smp->handshakes, (unsigned long long)smp->messages,
            (double)smp->hs_p50_us / 1000.0, (double)smp->hs_p99_us / 1000.0, lat,
            (unsigned long long)s->expected_failures, off == 0 ? " 0" : errs,
            f->tty && !final ? "" : "\n", "");
    fflush(stderr);
}

static void take_sample(fleet_t *f, bool final)
{
    pskgw_devsim_stats_t *s = f->s;
    if (s->n_samples == f->samples_cap) {
        size_t cap = f->samples_cap ? f->samples_cap * 2 : 64;
        pskgw_devsim_sample_t *ns = realloc(s->samples, cap * sizeof(*ns));
        if (ns == NULL)
            return;
        s->samples = ns;
        f->samples_cap = cap;
    }
    pskgw_devsim_sample_t *smp = &s->samples[s->n_samples++];
    uint64_t errs = pskgw_devsim_stats_errors(s);
    smp->t = (double)(uv_hrtime() - f->t0_ns) / 1e9;
    smp->devices_up = s->up;
    smp->handshakes = s->handshakes_ok - f->last_hs;
    smp->messages = s->messages_sent - f->last_msgs;
    smp->acks = s->acks - f->last_acks;
    smp->errors = errs - f->last_errs;
    smp->hs_p50_us = pskgw_devsim_hist_quantile(&f->hs_sec, 0.50);
    smp->hs_p99_us = pskgw_devsim_hist_quantile(&f->hs_sec, 0.99);
    smp->msg_p50_us = pskgw_devsim_hist_quantile(&f->msg_sec, 0.50);
    smp->msg_p99_us = pskgw_devsim_hist_quantile(&f->msg_sec, 0.99);
    f->last_hs = s->handshakes_ok;
    f->last_msgs = s->messages_sent;
    f->last_acks = s->acks;
    f->last_errs = errs;
    pskgw_devsim_hist_reset(&f->hs_sec);
    pskgw_devsim_hist_reset(&f->msg_sec);
    if (f->o->quiet)
        return;
    if (f->tty || final || smp->t + 0.05 >= f->next_plain_progress) {
        progress_line(f, smp, final);
        while (f->next_plain_progress <= smp->t + 0.05)
            f->next_plain_progress += f->o->progress_interval;
    }
}

static void on_tick(uv_timer_t *t)
{
    take_sample(t->data, false);
}

static void on_stop(uv_timer_t *t)
{
    fleet_t *f = t->data;
    if (!f->finishing)
        fleet_finish(f);
}

static void on_signal(uv_signal_t *h, int signum)
{
    fleet_t *f = h->data;
    (void)signum;
    f->s->interrupted = true;
    if (!f->finishing)
        fleet_finish(f);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        if (h->type == UV_UDP || h->type == UV_TCP)
            uv_close(h, on_sock_closed);
        else
            uv_close(h, NULL);
    }
}

/* The run ends: count what did not finish, end every device, close every handle. */
static void fleet_finish(fleet_t *f)
{
    if (f->finishing)
        return;
    f->finishing = true;
    pskgw_devsim_stats_t *s = f->s;
    for (uint32_t i = 0; i < f->n; i++) {
        device_t *d = &f->dev[i];
        if (d->state == D_ENDED)
            continue;
        if (d->kind != PSKGW_DEVSIM_GOOD) {
            if (d->state == D_IDLE || d->state == D_CONNECTING || d->state == D_HANDSHAKING) {
                /* never got in: as expected (a device never started is counted the same) */
                s->expected_failures++;
                if (d->kind == PSKGW_DEVSIM_UNKNOWN)
                    s->expected_unknown++;
                else
                    s->expected_wrong_psk++;
            }
        } else if (d->state == D_DRAINING && d->after_drain == AFTER_FINISH) {
            if (d->acks < d->sent)
                count_error(d, PSKGW_DEVSIM_ERR_ACK_MISSING, d->sent - d->acks);
            check_echo(d);
            s->completed++;
        } else if (d->state != D_HOLDING) {
            count_error(d, PSKGW_DEVSIM_ERR_UNFINISHED, 1);
        }
        if (d->state == D_IDLE) {
            d->state = D_ENDED;
            s->ended++;
        } else {
            dev_end(d);
        }
    }
    s->elapsed_s = (double)(uv_hrtime() - f->t0_ns) / 1e9;
    take_sample(f, true);
    /* The attack's handles first, with their own close callbacks (close_any's are the devices'). */
    pskgw_devsim_hostile_stop(f->hostile);
    uv_walk(&f->loop, close_any, NULL);
}

static void raise_fd_limit(uint32_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want + 64)
        fprintf(stderr,
                "pskgw-devsim: warning: %llu file descriptors allowed for %u devices; raise "
                "'ulimit -n' (hard limit) or some devices will fail with socket errors\n",
                (unsigned long long)rl.rlim_cur, want);
}

int pskgw_devsim_fleet_run(const pskgw_devsim_opts_t *o, uint32_t run_id,
                           pskgw_devsim_stats_t *stats)
{
    int rc = PSKGW_ENOMEM;
    fleet_t *f = calloc(1, sizeof(*f));
    memset(stats, 0, sizeof(*stats));
    stats->attack.victim_survived = -1;
    if (f == NULL)
        return PSKGW_ENOMEM;
    f->o = o;
    f->s = stats;
    f->n = o->devices;
    f->run_id = run_id;
    f->tty = isatty(STDERR_FILENO) == 1;
    f->next_plain_progress = o->progress_interval;
    f->dev = calloc((size_t)o->devices + 1, sizeof(*f->dev)); /* + 1: --devices 0 with --attack */
    stats->sent_by_device = calloc((size_t)o->devices + 1, sizeof(uint32_t));
    if (f->dev == NULL || stats->sent_by_device == NULL)
        goto fail;
    rc = o->cid ? pskgw_devsim_client_ctx_new_cid(o->cipher, &f->ctx)
                : pskgw_devsim_client_ctx_new(o->transport, o->cipher, &f->ctx);
    if (rc < 0)
        goto fail;
    rc = PSKGW_EINTERNAL;
    if (uv_loop_init(&f->loop) != 0)
        goto fail;
    if (o->attack.kind != PSKGW_DEVSIM_ATTACK_NONE) {
        rc = pskgw_devsim_hostile_new(&f->loop, o, f->ctx, &stats->attack, on_hostile_done, f,
                                      &f->hostile);
        if (rc < 0) {
            uv_loop_close(&f->loop);
            goto fail;
        }
    }
    raise_fd_limit(o->devices +
                   (o->attack.kind != PSKGW_DEVSIM_ATTACK_NONE
                        ? (o->attack.kind == PSKGW_DEVSIM_ATTACK_REPLAY ? 1 : o->attack.concurrency)
                        : 0));
    stats->devices = o->devices;
    for (uint32_t i = 0; i < o->devices; i++) {
        device_t *d = &f->dev[i];
        d->f = f;
        d->index = i;
        d->kind = (uint8_t)pskgw_devsim_kind_of(i, o->unknown_share, o->wrong_psk_share);
        d->idle = o->idle_interval > 0 && share_hit(i, o->idle_share);
        stats->good += d->kind == PSKGW_DEVSIM_GOOD;
        stats->unknown += d->kind == PSKGW_DEVSIM_UNKNOWN;
        stats->wrong_psk += d->kind == PSKGW_DEVSIM_WRONG_PSK;
        stats->idle += d->idle;
    }
    stats->messages_planned = (uint64_t)stats->good * o->messages;
    uv_update_time(&f->loop);
    f->t0_ns = uv_hrtime();
    uv_timer_init(&f->loop, &f->ramp_timer);
    uv_timer_init(&f->loop, &f->tick_timer);
    uv_timer_init(&f->loop, &f->stop_timer);
    f->ramp_timer.data = f->tick_timer.data = f->stop_timer.data = f;
    uv_timer_start(&f->ramp_timer, on_ramp, 0, o->ramp <= 0 ? 1 : RAMP_TICK_MS);
    uv_timer_start(&f->tick_timer, on_tick, 1000, 1000);
    uv_timer_start(&f->stop_timer, on_stop, (uint64_t)ceil(o->duration * 1000.0), 0);
    /* Ctrl-C or SIGTERM ends the run early, with the summary (devices not done: unfinished). */
    uv_signal_init(&f->loop, &f->sigint);
    uv_signal_init(&f->loop, &f->sigterm);
    f->sigint.data = f->sigterm.data = f;
    uv_signal_start_oneshot(&f->sigint, on_signal, SIGINT);
    uv_signal_start_oneshot(&f->sigterm, on_signal, SIGTERM);
    if (f->hostile != NULL)
        pskgw_devsim_hostile_start(f->hostile);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    /* Every handle is closed by fleet_finish; run once more for close callbacks just in case. */
    uv_walk(&f->loop, close_any, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&f->loop) == 0 ? 0 : PSKGW_EINTERNAL;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        stats->cpu_user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
        stats->cpu_sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        stats->max_rss_kb = (uint64_t)ru.ru_maxrss;
    }
fail:
    if (f->dev != NULL) {
        for (uint32_t i = 0; i < f->n; i++) {
            pskgw_devsim_client_free(f->dev[i].c);
            pskgw_devsim_client_session_free(f->dev[i].sess);
        }
    }
    pskgw_devsim_hostile_free(f->hostile);
    pskgw_devsim_client_ctx_free(f->ctx);
    free(f->dev);
    free(f);
    if (rc < 0) {
        free(stats->sent_by_device);
        stats->sent_by_device = NULL;
        free(stats->samples);
        stats->samples = NULL;
    }
    return rc;
}
