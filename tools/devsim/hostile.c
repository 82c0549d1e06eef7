/* pskgw-devsim: hostile scenarios on the fleet's loop (see hostile.h). */
#include "tools/devsim/hostile.h"

#include <arpa/inet.h>
#include <math.h>
#include <stddef.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tools/devsim/creds.h"
#include "tools/devsim/rawdtls.h"

#define PACE_MS     5
#define START_MAX   2000 /* attempts started per pacing tick at most (the loop stays responsive) */
#define CAPTURE_MAX 2048

enum astate {
    A_FREE = 0, /* slot unused (its timers stay initialised) */
    A_CLOSING,  /* its socket is closing: free in the close callback */
    A_CH0,      /* first ClientHello sent, waiting for the HelloVerifyRequest */
    A_CH1,      /* ClientHello with cookie sent, waiting for ServerHelloDone */
    A_HOLD,     /* fill: half-open, held until --attack-hold */
    A_TLS,      /* wrong-key: an OpenSSL handshake in progress */
};

enum vstate { V_OFF = 0, V_HS, V_ACK1, V_DELAY, V_REPLAYING, V_SETTLE, V_ACK2, V_CLOSING, V_DONE };

typedef struct pskgw_devsim_hostile hostile_t;

typedef struct {
    hostile_t *h;
    uint32_t slot;
    uint8_t state;
    uv_udp_t sock;
    uv_timer_t deadline; /* the attempt's deadline, or the end of a fill's hold */
    uv_timer_t io;       /* DTLS retransmissions (wrong-key) */
    uint64_t t0_ns;
    uint32_t source; /* index among --attack-sources */
    uint8_t random[PSKGW_DEVSIM_RAW_RANDOM_LEN];
    pskgw_devsim_client_t *c;
} attempt_t;

/* The replay scenario's victim device. */
typedef struct {
    uint8_t state;
    bool sock_open;
    bool acked_before;
    uv_udp_t sock;
    uv_timer_t timer, io;
    pskgw_devsim_client_t *c;
    uint8_t capture[CAPTURE_MAX]; /* its ClientHello with cookie, as sent */
    size_t capture_len;
} victim_t;

struct pskgw_devsim_hostile {
    uv_loop_t *loop;
    const pskgw_devsim_opts_t *o;
    const pskgw_devsim_attack_opts_t *a;
    pskgw_devsim_client_ctx_t *ctx;
    pskgw_devsim_attack_stats_t *s;
    void (*on_done)(void *arg);
    void *arg;
    attempt_t *slots;
    uint32_t n_slots, n_free;
    uint32_t *free_list;
    uint8_t *answered; /* bitmap: sources that got a server flight */
    uint32_t active;   /* slots not free (closing included) */
    uint64_t t0_ns;
    uv_timer_t pace;
    bool stopped, done_fired;
    FILE *ids;
    victim_t v;
    uint8_t rx[65536];
    uint8_t tx[1024];
};

static void check_done(hostile_t *h);

static void on_attempt_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    attempt_t *at = hd->data;
    buf->base = (char *)at->h->rx;
    buf->len = sizeof(at->h->rx);
}

static void on_victim_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    hostile_t *h = hd->data;
    buf->base = (char *)h->rx;
    buf->len = sizeof(h->rx);
}

/* Open a UDP socket bound to source `src` (IPv4 host order; ::1 for an IPv6 target), connected
 * to the target, receiving. On failure *closing tells whether the handle was opened and is now
 * closing (close_cb will run). */
static int sock_open(hostile_t *h, uv_udp_t *u, void *data, uint32_t src, uv_alloc_cb alloc,
                     uv_udp_recv_cb recv, uv_close_cb close_cb, bool *closing)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (h->o->target.ss_family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_loopback;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(src);
    }
    *closing = false;
    int r = uv_udp_init(h->loop, u);
    if (r < 0)
        return r;
    u->data = data;
    r = uv_udp_bind(u, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_udp_connect(u, (const struct sockaddr *)&h->o->target);
    if (r == 0)
        r = uv_udp_recv_start(u, alloc, recv);
    if (r < 0) {
        uv_close((uv_handle_t *)u, close_cb);
        *closing = true;
    }
    return r;
}

static void udp_send(uv_udp_t *u, const uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    (void)uv_udp_try_send(u, &b, 1, NULL); /* a lost datagram ends as a timeout */
}

/* ---- attempts ---- */

static void on_attempt_closed(uv_handle_t *hd)
{
    attempt_t *at = hd->data;
    hostile_t *h = at->h;
    at->state = A_FREE;
    h->free_list[h->n_free++] = at->slot;
    h->active--;
    check_done(h);
}

static void attempt_end(attempt_t *at)
{
    if (at->state == A_FREE || at->state == A_CLOSING)
        return;
    if (at->state == A_HOLD)
        at->h->s->half_open_now--;
    pskgw_devsim_client_free(at->c);
    at->c = NULL;
    uv_timer_stop(&at->deadline);
    uv_timer_stop(&at->io);
    at->state = A_CLOSING;
    uv_close((uv_handle_t *)&at->sock, on_attempt_closed);
}

static void on_deadline(uv_timer_t *t)
{
    attempt_t *at = t->data;
    if (at->state != A_HOLD)
        at->h->s->timeouts++;
    attempt_end(at);
}

static void send_hello(attempt_t *at, const uint8_t *cookie, size_t cookie_len, int seq)
{
    hostile_t *h = at->h;
    size_t len;
    if (pskgw_devsim_raw_client_hello(at->random, cookie, cookie_len, (uint64_t)seq, (uint16_t)seq,
                                      h->tx, sizeof(h->tx), &len) == 0)
        udp_send(&at->sock, h->tx, len);
}

static void send_cke(attempt_t *at)
{
    hostile_t *h = at->h;
    uint8_t entropy[12];
    char id[29];
    size_t len;
    if (RAND_bytes(entropy, sizeof(entropy)) != 1)
        return;
    pskgw_devsim_raw_module_identity(entropy, id);
    if (pskgw_devsim_raw_client_key_exchange((const uint8_t *)id, 28, 2, 2, h->tx, sizeof(h->tx),
                                             &len) < 0)
        return;
    udp_send(&at->sock, h->tx, len);
    h->s->ckes_sent++;
    if (h->ids != NULL)
        fprintf(h->ids, "%s\n", id);
}

/* cke-flood and fill: the gateway's answer to a hand-made handshake. */
static void raw_answer(attempt_t *at, const uint8_t *data, size_t len)
{
    hostile_t *h = at->h;
    pskgw_devsim_raw_answer_t ans;
    pskgw_devsim_raw_read_answer(data, len, &ans);
    if (ans.alert) {
        h->s->refused++;
        if (at->state == A_HOLD)
            h->s->ended_by_gateway++;
        attempt_end(at);
        return;
    }
    if (ans.hello_verify && (at->state == A_CH0 || at->state == A_CH1)) {
        if (at->state == A_CH0)
            h->s->cookie_exchanges++;
        at->state = A_CH1;
        send_hello(at, ans.cookie, ans.cookie_len, 1);
        return;
    }
    if (!ans.server_hello_done || at->state != A_CH1)
        return;
    h->s->server_flights++;
    if (!(h->answered[at->source / 8] & (1u << (at->source % 8)))) {
        h->answered[at->source / 8] |= (uint8_t)(1u << (at->source % 8));
        h->s->sources_answered++;
    }
    pskgw_devsim_hist_add(&h->s->answer, (uv_hrtime() - at->t0_ns) / 1000);
    if (h->a->kind == PSKGW_DEVSIM_ATTACK_CKE_FLOOD) {
        send_cke(at);
        attempt_end(at); /* never finishing: nothing more is sent or awaited */
        return;
    }
    at->state = A_HOLD;
    if (++h->s->half_open_now > h->s->half_open_max)
        h->s->half_open_max = h->s->half_open_now;
    uv_timer_start(&at->deadline, on_deadline, (uint64_t)ceil(h->a->hold * 1000.0), 0);
}

static void tls_flush(uv_udp_t *u, pskgw_devsim_client_t *c)
{
    const uint8_t *data;
    size_t len;
    while (c != NULL && pskgw_devsim_client_next_out(c, &data, &len))
        udp_send(u, data, len);
}

static void on_attempt_io(uv_timer_t *t);

static void arm_io(uv_timer_t *io, pskgw_devsim_client_t *c, uv_timer_cb cb)
{
    int64_t ms = c != NULL ? pskgw_devsim_client_timeout_ms(c) : -1;
    if (ms < 0)
        uv_timer_stop(io);
    else
        uv_timer_start(io, cb, (uint64_t)ms, 0);
}

static void on_attempt_io(uv_timer_t *t)
{
    attempt_t *at = t->data;
    if (at->c == NULL)
        return;
    if (pskgw_devsim_client_on_timeout(at->c) < 0) {
        at->h->s->timeouts++;
        attempt_end(at);
        return;
    }
    tls_flush(&at->sock, at->c);
    arm_io(&at->io, at->c, on_attempt_io);
}

/* wrong-key: the gateway's answer to an OpenSSL handshake. */
static void tls_answer(attempt_t *at, const uint8_t *data, size_t len)
{
    pskgw_devsim_hs_state_t st = PSKGW_DEVSIM_HS_PENDING;
    int rc = pskgw_devsim_client_feed(at->c, data, len, &st, NULL);
    tls_flush(&at->sock, at->c);
    if (rc < 0 || st == PSKGW_DEVSIM_HS_DONE) {
        if (rc < 0)
            at->h->s->refused++;
        else
            at->h->s->accepted++;
        attempt_end(at);
        return;
    }
    arm_io(&at->io, at->c, on_attempt_io);
}

static void on_attempt_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                            const struct sockaddr *addr, unsigned flags)
{
    (void)addr;
    (void)flags;
    attempt_t *at = u->data;
    if (nread <= 0 || at->state == A_FREE || at->state == A_CLOSING)
        return;
    if (at->state == A_TLS)
        tls_answer(at, (const uint8_t *)buf->base, (size_t)nread);
    else
        raw_answer(at, (const uint8_t *)buf->base, (size_t)nread);
}

/* wrong-key: the victim's identity with a wrong PSK. */
static int tls_begin(attempt_t *at)
{
    hostile_t *h = at->h;
    pskgw_devsim_creds_t cr;
    int rc = pskgw_devsim_creds_get(h->o->seed, h->a->victim, PSKGW_DEVSIM_WRONG_PSK,
                                    h->o->psk_bits, UINT64_MAX, &cr);
    if (rc == 0) {
        rc = pskgw_devsim_client_new(h->ctx, (const uint8_t *)cr.identity, cr.identity_len, cr.psk,
                                     cr.psk_len, h->o->mtu, &at->c);
        pskgw_devsim_creds_wipe(&cr);
    }
    if (rc < 0)
        return rc;
    at->state = A_TLS;
    pskgw_devsim_hs_state_t st;
    rc = pskgw_devsim_client_start(at->c, &st);
    tls_flush(&at->sock, at->c);
    if (rc < 0)
        return rc;
    arm_io(&at->io, at->c, on_attempt_io);
    return 0;
}

static void attempt_start(hostile_t *h)
{
    attempt_t *at = &h->slots[h->free_list[--h->n_free]];
    h->active++;
    uint64_t n = h->s->attempts++;
    h->s->sources_used = h->s->attempts < h->a->sources ? h->s->attempts : h->a->sources;
    at->t0_ns = uv_hrtime();
    bool closing;
    at->source = (uint32_t)(n % h->a->sources);
    uint32_t src = pskgw_devsim_attack_source(h->a, at->source);
    at->state = A_CH0;
    if (sock_open(h, &at->sock, at, src, on_attempt_alloc, on_attempt_recv, on_attempt_closed,
                  &closing) < 0) {
        h->s->socket_errors++;
        if (closing) {
            at->state = A_CLOSING;
        } else {
            at->state = A_FREE;
            h->free_list[h->n_free++] = at->slot;
            h->active--;
        }
        return;
    }
    uv_timer_start(&at->deadline, on_deadline, (uint64_t)ceil(h->a->timeout * 1000.0), 0);
    if (h->a->kind == PSKGW_DEVSIM_ATTACK_WRONG_KEY) {
        if (tls_begin(at) < 0) {
            h->s->socket_errors++;
            attempt_end(at);
        }
        return;
    }
    if (RAND_bytes(at->random, sizeof(at->random)) != 1)
        memset(at->random, (int)(n & 0xFF), sizeof(at->random));
    send_hello(at, NULL, 0, 0);
}

static void on_pace(uv_timer_t *t)
{
    hostile_t *h = t->data;
    uint64_t now = uv_hrtime();
    double elapsed = now > h->t0_ns ? (double)(now - h->t0_ns) / 1e9 : 0.0;
    uint64_t due = (uint64_t)floor(elapsed * h->a->rate) + 1;
    if (due > h->a->count)
        due = h->a->count;
    for (int i = 0; i < START_MAX && h->s->attempts < due && h->n_free > 0 && !h->stopped; i++)
        attempt_start(h);
    if (h->s->attempts >= h->a->count) {
        uv_timer_stop(&h->pace);
        check_done(h);
    }
}

/* ---- the replay victim ---- */

static hostile_t *victim_hostile(victim_t *v)
{
    return (hostile_t *)((char *)v - offsetof(hostile_t, v));
}

static void victim_flush(victim_t *v)
{
    const uint8_t *data;
    size_t len;
    while (v->c != NULL && pskgw_devsim_client_next_out(v->c, &data, &len)) {
        /* The first session's ClientHello with cookie: the gateway accepts it without a new
         * cookie exchange while its cookie secret lasts. */
        if (v->capture_len == 0 && pskgw_devsim_raw_is_hello_with_cookie(data, len) &&
            len <= sizeof(v->capture)) {
            memcpy(v->capture, data, len);
            v->capture_len = len;
        }
        udp_send(&v->sock, data, len);
    }
}

static void victim_closed(victim_t *v)
{
    v->sock_open = false;
    v->state = V_DONE;
    check_done(victim_hostile(v));
}

static void on_victim_closed(uv_handle_t *hd)
{
    victim_closed(&((hostile_t *)hd->data)->v);
}

/* The victim is done: a verdict (1, 0, -1), a clean close when its session is alive. */
static void victim_end(victim_t *v, int verdict)
{
    hostile_t *h = victim_hostile(v);
    if (v->state == V_CLOSING || v->state == V_DONE)
        return;
    h->s->victim_survived = verdict;
    if (v->c != NULL && verdict != 0) {
        pskgw_devsim_client_close_notify(v->c);
        victim_flush(v);
    }
    pskgw_devsim_client_free(v->c);
    v->c = NULL;
    uv_timer_stop(&v->timer);
    uv_timer_stop(&v->io);
    v->state = V_CLOSING;
    if (v->sock_open)
        uv_close((uv_handle_t *)&v->sock, on_victim_closed);
    else
        victim_closed(v);
}

static void on_victim_timer(uv_timer_t *t);
static void on_victim_io(uv_timer_t *t);
static void victim_second_session(hostile_t *h);

static void victim_wait(victim_t *v, uint8_t state, double seconds)
{
    v->state = state;
    uv_timer_start(&v->timer, on_victim_timer, (uint64_t)ceil(seconds * 1000.0), 0);
}

static void victim_send(victim_t *v, const char *text)
{
    if (pskgw_devsim_client_write(v->c, (const uint8_t *)text, strlen(text)) == 0)
        victim_flush(v);
}

/* The next replay, or (all sent) the wait for the gateway's answer. */
static void victim_replay(victim_t *v)
{
    hostile_t *h = victim_hostile(v);
    if (v->capture_len == 0) { /* no cookie exchange was seen: nothing to replay */
        victim_end(v, -1);
        return;
    }
    udp_send(&v->sock, v->capture, v->capture_len);
    if (++h->s->replays_sent < h->a->count)
        victim_wait(v, V_REPLAYING, 1.0 / h->a->rate);
    else
        victim_wait(v, V_SETTLE, h->a->timeout);
}

static void victim_probe(victim_t *v)
{
    victim_send(v, "pskgw-devsim replay victim: after the replay");
    victim_wait(v, V_ACK2, victim_hostile(v)->a->timeout);
}

static void on_victim_timer(uv_timer_t *t)
{
    victim_t *v = &((hostile_t *)t->data)->v;
    hostile_t *h = victim_hostile(v);
    switch (v->state) {
    case V_HS:
        victim_end(v, -1); /* the victim never got in: no verdict */
        break;
    case V_ACK1:
        victim_wait(v, V_DELAY, h->a->delay);
        break;
    case V_DELAY:
    case V_REPLAYING:
        victim_replay(v);
        break;
    case V_SETTLE:
        victim_probe(v);
        break;
    case V_ACK2:
        victim_end(v, v->acked_before ? 0 : -1);
        break;
    case V_DONE: /* it could not even start: done, reported from the loop */
        check_done(h);
        break;
    default:
        break;
    }
}

static void on_victim_io(uv_timer_t *t)
{
    victim_t *v = &((hostile_t *)t->data)->v;
    if (v->c == NULL)
        return;
    if (pskgw_devsim_client_on_timeout(v->c) < 0 && v->state == V_HS) {
        victim_end(v, -1);
        return;
    }
    victim_flush(v);
    arm_io(&v->io, v->c, on_victim_io);
}

/* A datagram for the established victim: plaintext answers to the replay are counted and kept
 * away from its session; the rest is its session's traffic. */
static void victim_established_recv(victim_t *v, const uint8_t *data, size_t len)
{
    hostile_t *h = victim_hostile(v);
    pskgw_devsim_raw_answer_t ans;
    pskgw_devsim_raw_read_answer(data, len, &ans);
    if (!ans.encrypted) {
        h->s->replay_answer_hvr += ans.hello_verify;
        h->s->replay_answer_sh += ans.server_hello;
        h->s->replay_answer_alert += ans.alert;
        if (v->state == V_SETTLE && (ans.hello_verify || ans.server_hello || ans.alert))
            victim_probe(v);
        return;
    }
    unsigned recs = 0;
    pskgw_devsim_hs_state_t st;
    int rc = pskgw_devsim_client_feed(v->c, data, len, &st, &recs);
    victim_flush(v);
    h->s->victim_acks += recs;
    if (rc < 0) { /* the gateway ended the victim's session */
        victim_end(v, 0);
        return;
    }
    if (recs > 0 && v->state == V_ACK1) {
        v->acked_before = true;
        victim_wait(v, V_DELAY, h->a->delay);
    } else if (recs > 0 && v->state == V_ACK2) {
        victim_end(v, 1);
    }
}

static void on_victim_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                           const struct sockaddr *addr, unsigned flags)
{
    (void)addr;
    (void)flags;
    victim_t *v = &((hostile_t *)u->data)->v;
    if (nread <= 0 || v->c == NULL)
        return;
    const uint8_t *data = (const uint8_t *)buf->base;
    if (v->state != V_HS) {
        victim_established_recv(v, data, (size_t)nread);
        return;
    }
    pskgw_devsim_hs_state_t st = PSKGW_DEVSIM_HS_PENDING;
    int rc = pskgw_devsim_client_feed(v->c, data, (size_t)nread, &st, NULL);
    victim_flush(v);
    if (rc < 0) {
        victim_end(v, -1);
        return;
    }
    arm_io(&v->io, v->c, on_victim_io);
    if (st != PSKGW_DEVSIM_HS_DONE)
        return;
    uv_timer_stop(&v->io);
    if (++victim_hostile(v)->s->victim_handshakes == 1) {
        victim_second_session(victim_hostile(v));
        return;
    }
    victim_send(v, "pskgw-devsim replay victim: before the replay");
    victim_wait(v, V_ACK1, victim_hostile(v)->a->timeout);
}

/* A new session of the victim on its socket (its device identity and PSK). */
static int victim_session(hostile_t *h)
{
    victim_t *v = &h->v;
    pskgw_devsim_creds_t cr;
    int rc = pskgw_devsim_creds_get(h->o->seed, h->a->victim, PSKGW_DEVSIM_GOOD, h->o->psk_bits,
                                    UINT64_MAX, &cr);
    if (rc == 0) {
        rc = pskgw_devsim_client_new(h->ctx, (const uint8_t *)cr.identity, cr.identity_len, cr.psk,
                                     cr.psk_len, h->o->mtu, &v->c);
        pskgw_devsim_creds_wipe(&cr);
    }
    pskgw_devsim_hs_state_t st;
    if (rc == 0)
        rc = pskgw_devsim_client_start(v->c, &st);
    victim_flush(v);
    if (rc < 0)
        return rc;
    arm_io(&v->io, v->c, on_victim_io);
    victim_wait(v, V_HS, h->a->timeout);
    return 0;
}

/* The first session ends cleanly and the device handshakes again from the same address and
 * port (a new ClientHello random): the replay will be of the first session's hello. */
static void victim_second_session(hostile_t *h)
{
    victim_t *v = &h->v;
    pskgw_devsim_client_close_notify(v->c);
    victim_flush(v);
    pskgw_devsim_client_free(v->c);
    v->c = NULL;
    if (victim_session(h) < 0)
        victim_end(v, -1);
}

static void victim_start(hostile_t *h)
{
    victim_t *v = &h->v;
    h->s->attempts = 1;
    h->s->sources_used = 1;
    bool closing;
    int rc = sock_open(h, &v->sock, h, h->a->source_base, on_victim_alloc, on_victim_recv,
                       on_victim_closed, &closing);
    if (rc < 0) {
        h->s->socket_errors++;
        v->state = closing ? V_CLOSING : V_DONE;
        return;
    }
    v->sock_open = true;
    if (victim_session(h) < 0)
        victim_end(v, -1);
}

/* ---- the object ---- */

static void check_done(hostile_t *h)
{
    if (h->stopped || h->done_fired)
        return;
    if (h->a->kind == PSKGW_DEVSIM_ATTACK_REPLAY) {
        if (h->v.state != V_DONE)
            return;
    } else if (h->s->attempts < h->a->count || h->active > 0) {
        return;
    }
    h->done_fired = true;
    h->s->done = true;
    if (h->ids != NULL)
        fflush(h->ids);
    h->on_done(h->arg);
}

int pskgw_devsim_hostile_new(uv_loop_t *loop, const pskgw_devsim_opts_t *o,
                             pskgw_devsim_client_ctx_t *ctx, pskgw_devsim_attack_stats_t *stats,
                             void (*on_done)(void *arg), void *arg, pskgw_devsim_hostile_t **out)
{
    if (loop == NULL || o == NULL || ctx == NULL || stats == NULL || on_done == NULL ||
        out == NULL || o->attack.kind == PSKGW_DEVSIM_ATTACK_NONE ||
        o->transport != PSKGW_DEVSIM_DTLS)
        return PSKGW_EINVAL;
    hostile_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return PSKGW_ENOMEM;
    h->loop = loop;
    h->o = o;
    h->a = &o->attack;
    h->ctx = ctx;
    h->s = stats;
    h->on_done = on_done;
    h->arg = arg;
    memset(stats, 0, sizeof(*stats));
    stats->victim_survived = -1;
    bool replay = h->a->kind == PSKGW_DEVSIM_ATTACK_REPLAY;
    h->n_slots = replay ? 0 : (h->a->count < h->a->concurrency ? h->a->count : h->a->concurrency);
    h->slots = calloc(h->n_slots + 1, sizeof(*h->slots));
    h->free_list = calloc(h->n_slots + 1, sizeof(*h->free_list));
    h->answered = calloc(h->a->sources / 8 + 1, 1);
    if (h->slots == NULL || h->free_list == NULL || h->answered == NULL) {
        pskgw_devsim_hostile_free(h);
        return PSKGW_ENOMEM;
    }
    if (h->a->identities_path != NULL && (h->ids = fopen(h->a->identities_path, "w")) == NULL) {
        pskgw_devsim_hostile_free(h);
        return PSKGW_EIO;
    }
    for (uint32_t i = 0; i < h->n_slots; i++) {
        attempt_t *at = &h->slots[i];
        at->h = h;
        at->slot = i;
        uv_timer_init(loop, &at->deadline);
        uv_timer_init(loop, &at->io);
        at->deadline.data = at->io.data = at;
        h->free_list[h->n_free++] = h->n_slots - 1 - i;
    }
    uv_timer_init(loop, &h->pace);
    uv_timer_init(loop, &h->v.timer);
    uv_timer_init(loop, &h->v.io);
    h->pace.data = h->v.timer.data = h->v.io.data = h;
    *out = h;
    return 0;
}

void pskgw_devsim_hostile_start(pskgw_devsim_hostile_t *h)
{
    if (h->a->kind == PSKGW_DEVSIM_ATTACK_REPLAY) {
        victim_start(h);
        if (h->v.state == V_DONE) /* could not even open its socket: done, but later */
            uv_timer_start(&h->v.timer, on_victim_timer, 0, 0);
        return;
    }
    h->t0_ns = uv_hrtime() + (uint64_t)(h->a->delay * 1e9);
    uv_timer_start(&h->pace, on_pace, (uint64_t)ceil(h->a->delay * 1000.0), PACE_MS);
}

void pskgw_devsim_hostile_stop(pskgw_devsim_hostile_t *h)
{
    if (h == NULL || h->stopped)
        return;
    h->stopped = true;
    for (uint32_t i = 0; i < h->n_slots; i++) {
        attempt_t *at = &h->slots[i];
        if (at->state == A_HOLD)
            h->s->half_open_now--;
        if (at->state != A_FREE && at->state != A_CLOSING) {
            pskgw_devsim_client_free(at->c);
            at->c = NULL;
            at->state = A_CLOSING;
            uv_close((uv_handle_t *)&at->sock, on_attempt_closed);
        }
        uv_close((uv_handle_t *)&at->deadline, NULL);
        uv_close((uv_handle_t *)&at->io, NULL);
    }
    victim_t *v = &h->v;
    pskgw_devsim_client_free(v->c);
    v->c = NULL;
    if (v->sock_open && !uv_is_closing((uv_handle_t *)&v->sock))
        uv_close((uv_handle_t *)&v->sock, on_victim_closed);
    uv_close((uv_handle_t *)&h->pace, NULL);
    uv_close((uv_handle_t *)&v->timer, NULL);
    uv_close((uv_handle_t *)&v->io, NULL);
    if (h->ids != NULL)
        fflush(h->ids);
}

void pskgw_devsim_hostile_free(pskgw_devsim_hostile_t *h)
{
    if (h == NULL)
        return;
    if (h->ids != NULL)
        fclose(h->ids);
    free(h->slots);
    free(h->free_list);
    free(h->answered);
    free(h);
}
