/* pskgw-devsim: one device of the fleet (see fleet_internal.h): sessions, messages and their
 * acks, echo checks, NAT rebinding and reconnects, the end. */
#include "tools/devsim/fleet_internal.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/err.h"
#include "tools/devsim/creds.h"
#include "tools/devsim/payload.h"
#include "tools/rotkeys/rotkeys.h"

static void on_app_timer(uv_timer_t *t);

bool fleet_share_hit(uint64_t i, double share)
{
    return share > 0 && floor((double)(i + 1) * share) > floor((double)i * share);
}

void fleet_count_error(device_t *d, pskgw_devsim_error_t e, uint64_t n)
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
void fleet_check_echo(device_t *d)
{
    if (d->f->o->expect_echo &&
        (d->rx_bytes > d->tx_bytes || (d->rx_bytes == d->tx_bytes && d->rx_hash != d->tx_hash)))
        fleet_count_error(d, PSKGW_DEVSIM_ERR_ECHO_MISMATCH, 1);
}

/* --expect-echo: the echoed bytes, in order. */
static void on_echo(void *arg, const uint8_t *data, size_t len)
{
    device_t *d = arg;

    d->rx_bytes += len;
    d->rx_hash = fnv1a(d->rx_hash, data, len);
}
/* ---- sessions ---- */

static void session_free(device_t *d, bool notify)
{
    if (d->c == NULL)
        return;
    if (notify) {
        pskgw_devsim_client_close_notify(d->c);
        fleet_flush(d);
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

void fleet_session_start(device_t *d)
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
            rc = pskgw_devsim_client_set_session(d->c, d->sess, !f->o->no_tickets);
    }
    if (rc < 0) {
        fleet_count_error(d, PSKGW_DEVSIM_ERR_HS_ERROR, 1);
        fleet_dev_end(d);
        return;
    }
    d->state = D_HANDSHAKING;
    d->since_session = 0;
    d->hs_start_ns = uv_hrtime();
    f->s->handshakes_started++;
    app_timer_in(d, f->o->handshake_timeout);
    pskgw_devsim_hs_state_t st;
    rc = pskgw_devsim_client_start(d->c, &st);
    fleet_flush(d);
    if (rc < 0) {
        fleet_hs_failed(d, rc);
        return;
    }
    fleet_arm_io(d);
}

/* Start the next session: on the same socket, or on a new one (new source port). */
static void session_next(device_t *d)
{
    if (!d->new_socket) {
        fleet_session_start(d);
        return;
    }
    int old = d->cur, nxt = 1 - d->cur;
    if (d->sock_open[nxt]) { /* the previous one is still closing: try again shortly */
        d->state = D_NOSESSION;
        uv_timer_start(&d->app_timer, on_app_timer, REBIND_RETRY, 0);
        return;
    }
    /* Open the new socket before closing the old one, so the port cannot be reused. */
    if (fleet_sock_open(d, nxt) < 0) {
        fleet_count_error(d, PSKGW_DEVSIM_ERR_SOCKET, 1);
        fleet_dev_end(d);
        return;
    }
    d->cur = (uint8_t)nxt;
    d->new_socket = false;
    fleet_sock_retire(d, old);
    if (d->f->o->transport == PSKGW_DEVSIM_DTLS) {
        fleet_session_start(d);
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

static void failover_and_send(device_t *d);

static void drain_done(device_t *d)
{
    if (d->after_drain == AFTER_FINISH) {
        finish_end(d);
    } else if (d->after_drain == AFTER_SOCKET_REBIND) {
        d->state = D_ESTABLISHED;
        rebind_and_send(d);
    } else if (d->after_drain == AFTER_FAILOVER) {
        d->state = D_ESTABLISHED;
        failover_and_send(d);
    } else
        session_cycle(d, d->after_drain);
}

/* Every message sent (and acked, or the ack wait is over). */
static void finish_end(device_t *d)
{
    const pskgw_devsim_opts_t *o = d->f->o;
    uv_timer_stop(&d->app_timer);
    if (o->expect_ack && d->acks < d->sent)
        fleet_count_error(d, PSKGW_DEVSIM_ERR_ACK_MISSING, d->sent - d->acks);
    fleet_check_echo(d);
    d->f->s->completed++;
    if (o->hold > 0 && d->c != NULL) {
        d->state = D_HOLDING;
        app_timer_in(d, o->hold);
        return;
    }
    fleet_dev_end(d);
}

static void after_send(device_t *d);

int fleet_message_build(device_t *d, uint32_t n, size_t *wlen)
{
    fleet_t *f = d->f;
    const pskgw_devsim_opts_t *o = f->o;
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
    if (rc < 0)
        return rc;
    switch (o->framing) {
    case PSKGW_DEVSIM_FRAMING_LEN16:
        f->wire[0] = (uint8_t)(len >> 8);
        f->wire[1] = (uint8_t)len;
        memcpy(f->wire + 2, msg, len);
        *wlen = len + 2;
        break;
    case PSKGW_DEVSIM_FRAMING_NEWLINE:
        memcpy(f->wire, msg, len);
        f->wire[len] = '\n';
        *wlen = len + 1;
        break;
    default:
        memcpy(f->wire, msg, len);
        *wlen = len;
        break;
    }
    return 0;
}

static void send_message(device_t *d)
{
    fleet_t *f = d->f;
    const pskgw_devsim_opts_t *o = f->o;
    size_t wlen = 0;
    int rc = fleet_message_build(d, d->sent, &wlen);
    if (rc == 0)
        rc = pskgw_devsim_client_write(d->c, f->wire, wlen);
    if (rc < 0) {
        fleet_count_error(d, PSKGW_DEVSIM_ERR_SEND, 1);
        fleet_dev_end(d);
        return;
    }
    fleet_flush(d);
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
    if (d->state == D_PROBING) {
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
    fleet_arm_io(d);
    if (d->kind != PSKGW_DEVSIM_GOOD) {
        fleet_count_error(d, PSKGW_DEVSIM_ERR_BAD_ACCEPTED, 1);
        fleet_dev_end(d);
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
    if (f->o->preencrypt) { /* every message encrypted now, sent when the whole run is ready */
        fleet_replay_prepare(d);
        return;
    }
    /* The first message goes at once; later ones were already due when the session was
     * (re)started, so they go at once too. */
    send_message(d);
}

void fleet_dev_sent_all(device_t *d)
{
    d->state = D_ESTABLISHED;
    finish(d);
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
        /* the gateway answered on the new port, or the other node: the session lives */
        if (f->o->failover_after != 0)
            f->s->failovers_followed++;
        else
            f->s->rebinds_followed++;
        d->state = D_ESTABLISHED;
        after_send(d);
    }
}

void fleet_hs_failed(device_t *d, int rc)
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
        fleet_count_error(d,
                          rc == PSKGW_EAUTH      ? PSKGW_DEVSIM_ERR_HS_ALERT
                          : rc == PSKGW_ETIMEOUT ? PSKGW_DEVSIM_ERR_HS_TIMEOUT
                                                 : PSKGW_DEVSIM_ERR_HS_ERROR,
                          1);
    }
    fleet_dev_end(d);
}

void fleet_peer_closed(device_t *d)
{
    const pskgw_devsim_opts_t *o = d->f->o;
    d->f->s->peer_closes++;
    session_free(d, false);
    switch (d->state) {
    case D_ESTABLISHED:
    case D_PROBING:
    case D_REPLAY:
        if (d->idle) { /* an idle device handshakes again when it next has data */
            d->new_socket = o->transport == PSKGW_DEVSIM_TLS;
            d->state = D_NOSESSION;
            return; /* app_timer already runs for the next message */
        }
        fleet_count_error(d, PSKGW_DEVSIM_ERR_PEER_CLOSED, 1);
        fleet_dev_end(d);
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
        fleet_dev_end(d);
        return;
    default:
        return;
    }
}

void fleet_deliver(device_t *d, const uint8_t *data, size_t len)
{
    bool handshaking = d->state == D_HANDSHAKING;
    pskgw_devsim_hs_state_t st = PSKGW_DEVSIM_HS_PENDING;
    unsigned recs = 0;
    int rc = pskgw_devsim_client_feed(d->c, data, len, &st, &recs);
    fleet_flush(d);
    if (d->f->o->expect_echo)
        recs = echoed(d);
    if (recs > 0 || (d->f->o->expect_echo && d->state == D_DRAINING && d->acks >= d->sent))
        on_acks(d, recs);
    if (d->c == NULL || d->state == D_ENDED)
        return;
    if (rc < 0) {
        if (handshaking)
            fleet_hs_failed(d, rc);
        else
            fleet_peer_closed(d);
        return;
    }
    if (handshaking && st == PSKGW_DEVSIM_HS_DONE)
        on_established(d);
    else
        fleet_arm_io(d);
}

void fleet_on_io_timer(uv_timer_t *t)
{
    device_t *d = t->data;
    if (d->c == NULL)
        return;
    d->f->s->retransmissions++;
    int rc = pskgw_devsim_client_on_timeout(d->c);
    fleet_flush(d);
    if (rc < 0 && d->state == D_HANDSHAKING) {
        fleet_hs_failed(d, PSKGW_ETIMEOUT);
        return;
    }
    fleet_arm_io(d);
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
    if (fleet_sock_open(d, nxt) < 0) {
        fleet_count_error(d, PSKGW_DEVSIM_ERR_SOCKET, 1);
        fleet_dev_end(d);
        return -1;
    }
    d->cur = (uint8_t)nxt;
    fleet_sock_retire(d, old);
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
    fleet_session_start(d);
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

/* --failover-to: the device's datagrams go to the other node from now on (same socket, same
 * source port); the message that was due tells whether its session was taken over there. The
 * acks of the node it leaves that never came are forgotten (--verify-file says whether their
 * messages were delivered). */
static void failover_and_send(device_t *d)
{
    fleet_t *f = d->f;

    if (fleet_sock_failover(d) < 0) {
        fleet_count_error(d, PSKGW_DEVSIM_ERR_SOCKET, 1);
        fleet_dev_end(d);
        return;
    }
    f->s->failovers++;
    d->acks = d->sent;
    d->ring_len = 0;
    d->state = D_PROBING;
    send_message(d);
}

/* A message is due on an established session: --rebind-every first moves the device to a new
 * port when it wakes up behind a new NAT mapping, S seconds or more after the last one began. A
 * device sleeps once what it sent is acknowledged: with acks outstanding it waits for them (up
 * to --ack-timeout) first, so that an ack on its way to the old port is not mistaken for a lost
 * one. */
static void message_due(device_t *d)
{
    const pskgw_devsim_opts_t *o = d->f->o;
    if (o->failover_after != 0 && !d->failed_over && d->sent >= o->failover_after) {
        if (d->acks < d->sent) { /* an ack on its way from the node it leaves */
            d->state = D_DRAINING;
            d->after_drain = AFTER_FAILOVER;
            app_timer_in(d, o->ack_timeout);
            return;
        }
        failover_and_send(d);
        return;
    }
    if (o->rebind_every_s > 0 && (double)(uv_hrtime() - d->bound_ns) / 1e9 >= o->rebind_every_s) {
        if (d->acks < d->sent) {
            d->state = D_DRAINING;
            d->after_drain = AFTER_SOCKET_REBIND;
            app_timer_in(d, o->ack_timeout);
            return;
        }
        rebind_and_send(d);
        return;
    }
    send_message(d);
}

static void on_app_timer(uv_timer_t *t)
{
    device_t *d = t->data;
    switch (d->state) {
    case D_CONNECTING:
    case D_HANDSHAKING:
        fleet_hs_failed(d, PSKGW_ETIMEOUT);
        break;
    case D_ESTABLISHED:
        message_due(d);
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
        fleet_dev_end(d);
        break;
    default:
        break;
    }
}

/* ---- devices ---- */

void fleet_dev_end(device_t *d)
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
    fleet_sock_retire(d, 0);
    fleet_sock_retire(d, 1);
    fleet_t *f = d->f;
    f->s->ended++;
    if (f->o->preencrypt)
        fleet_replay_on_end(d);
    fleet_maybe_finish(f);
}

void fleet_dev_start(device_t *d)
{
    fleet_t *f = d->f;
    f->s->started++;
    uv_timer_init(&f->loop, &d->io_timer);
    uv_timer_init(&f->loop, &d->app_timer);
    d->io_timer.data = d;
    d->app_timer.data = d;
    d->timers_init = true;
    if (fleet_sock_open(d, 0) < 0) {
        fleet_count_error(d, PSKGW_DEVSIM_ERR_SOCKET, 1);
        fleet_dev_end(d);
        return;
    }
    d->cur = 0;
    if (f->o->transport == PSKGW_DEVSIM_DTLS) {
        fleet_session_start(d);
    } else {
        d->state = D_CONNECTING;
        app_timer_in(d, f->o->handshake_timeout);
    }
}
