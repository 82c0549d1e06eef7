/* The UDP side of pskgw_listener: one socket, datagrams demultiplexed by peer address, stateless
 * cookies before any per-peer state. See listen_api.h. */
#define _GNU_SOURCE /* sendmmsg */
#include "gateway/udp_listener.h"

#include "gateway/listen_internal.h"

#include "dtls/cid.h"
#include "dtls/parse.h"

#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* recvmmsg: libuv splits the buffer into 64 KiB slots, one datagram each, and reads at most 20
 * (UV__MMSG_MAXWIDTH) per call. Only the bytes of the datagrams received are touched. */
#define RX_WIDTH    20
#define UDP_RBUF    (RX_WIDTH * 65536)
#define UDP_SOCKBUF (4 * 1024 * 1024)
/* The datagrams sent during one receive batch, sent together by one sendmmsg. A slot holds the
 * largest datagram of the default MTU (1400) with room; a larger one is sent on its own. */
#define TX_SLOTS    32
#define TX_SLOT_LEN 1536

struct pskgw_udp_tx {
    bool in_batch; /* between a batch's first datagram and its UV_UDP_MMSG_FREE */
    /* The receive side of a wake-up (on_alloc): libuv reads until recvmmsg fails with EAGAIN,
     * so a wake-up that finds a few datagrams paid a second, empty recvmmsg. A batch of fewer
     * than RX_WIDTH datagrams found the socket empty: the next read of the same wake-up is not
     * made (an empty buffer ends libuv's read loop with UV_ENOBUFS). What arrives meanwhile
     * keeps the socket readable (epoll is level-triggered): read at the next loop turn. */
    bool rx_drained;
    unsigned rx_batch;  /* datagrams of the batch being received */
    uint64_t rx_reads;  /* recvmmsg calls */
    uint64_t rx_empty;  /* of which found nothing (EAGAIN) */
    uint64_t rx_spared; /* reads not made after a batch that emptied the socket */
    unsigned n;
    uint64_t flushes; /* sendmmsg calls */
    uint64_t batched; /* datagrams handed to sendmmsg */
    struct mmsghdr msgs[TX_SLOTS];
    struct iovec iov[TX_SLOTS];
    struct sockaddr_in6 to[TX_SLOTS]; /* sockaddr_in or sockaddr_in6 */
    uint8_t data[TX_SLOTS][TX_SLOT_LEN];
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    pskgw_listener_t *l = h->data;

    (void)suggested;
    if (l->udp_tx != NULL && l->udp_tx->rx_drained) {
        l->udp_tx->rx_drained = false;
        l->udp_tx->rx_spared++;
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    if (l->udp_tx != NULL)
        l->udp_tx->rx_reads++;
    /* One loop thread, one batch at a time: a single buffer per listener. */
    *buf = uv_buf_init((char *)l->rbuf, (unsigned)l->rbuf_len);
}

/* Datagrams the socket refused: lost (DTLS retransmits handshake flights; an ack or a
 * downlink message is gone), counted, and said in a rate-limited log line. */
static void tx_lost(pskgw_listener_t *l, unsigned n, int err)
{
    l->counters.send_dropped += n;
    PSKGW_LOG_RL(PSKGW_LOG_WARNING, "udp-send",
                 "listener \"%s\": %u datagram(s) not sent: %s (%llu lost in all)", l->name, n,
                 strerror(err), (unsigned long long)l->counters.send_dropped);
}

static void tx_flush(pskgw_listener_t *l)
{
    struct pskgw_udp_tx *tx = l->udp_tx;
    unsigned done = 0;
    int fd = -1;

    if (tx == NULL || tx->n == 0)
        return;
    if (!l->handle_open || uv_fileno((uv_handle_t *)&l->h.udp, &fd) != 0) {
        tx->n = 0;
        return;
    }
    tx->flushes++;
    tx->batched += tx->n;
    while (done < tx->n) {
        int r = sendmmsg(fd, tx->msgs + done, tx->n - done, MSG_DONTWAIT);
        int err = errno;

        if (r < 0 && err == EINTR)
            continue;
        if (r < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)) {
            /* The socket buffer (or the kernel's) is full: the rest of the batch is lost. */
            tx_lost(l, tx->n - done, err);
            break;
        }
        if (r <= 0) {
            /* This datagram failed on its own (as uv_udp_try_send would): lose it, go on. */
            tx_lost(l, 1, r < 0 ? err : EIO);
            done++;
            continue;
        }
        l->counters.datagrams_out += (uint64_t)r;
        done += (unsigned)r;
    }
    tx->n = 0;
}

void pskgw_udp_flush(pskgw_listener_t *l)
{
    if (l->udp_tx == NULL)
        return;
    l->udp_tx->in_batch = false;
    tx_flush(l);
}

static int send_now(pskgw_listener_t *l, const struct sockaddr *to, const uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_udp_try_send(&l->h.udp, &b, 1, to);

    if (rc < 0) {
        tx_lost(l, 1, -rc); /* a lost datagram: DTLS retransmits */
        return pskgw_err_from_errno(rc);
    }
    l->counters.datagrams_out++;
    return 0;
}

/* Inside a receive batch the datagram is queued (copied) for the batch's sendmmsg; outside one
 * (lookup completions, timers, close) or when it does not fit a slot it is sent at once, after
 * the queued ones so that a peer's datagrams keep their order. */
static int send_to(pskgw_listener_t *l, const struct sockaddr *to, const uint8_t *data, size_t len)
{
    struct pskgw_udp_tx *tx = l->udp_tx;
    unsigned i;

    if (tx == NULL || !tx->in_batch || len > TX_SLOT_LEN) {
        tx_flush(l);
        return send_now(l, to, data, len);
    }
    if (tx->n == TX_SLOTS)
        tx_flush(l);
    i = tx->n++;
    memcpy(tx->data[i], data, len);
    memcpy(&tx->to[i], to,
           to->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    tx->iov[i].iov_base = tx->data[i];
    tx->iov[i].iov_len = len;
    memset(&tx->msgs[i], 0, sizeof(tx->msgs[i]));
    tx->msgs[i].msg_hdr.msg_name = &tx->to[i];
    tx->msgs[i].msg_hdr.msg_namelen =
        to->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    tx->msgs[i].msg_hdr.msg_iov = &tx->iov[i];
    tx->msgs[i].msg_hdr.msg_iovlen = 1;
    return 0;
}

void pskgw_udp_tx_stats(const pskgw_listener_t *l, uint64_t *flushes, uint64_t *batched)
{
    *flushes = l->udp_tx != NULL ? l->udp_tx->flushes : 0;
    *batched = l->udp_tx != NULL ? l->udp_tx->batched : 0;
}

void pskgw_udp_rx_stats(const pskgw_listener_t *l, uint64_t *reads, uint64_t *empty,
                        uint64_t *spared)
{
    *reads = l->udp_tx != NULL ? l->udp_tx->rx_reads : 0;
    *empty = l->udp_tx != NULL ? l->udp_tx->rx_empty : 0;
    *spared = l->udp_tx != NULL ? l->udp_tx->rx_spared : 0;
}

int pskgw_udp_send(pskgw_lsess_t *s, const uint8_t *data, size_t len)
{
    if (s->l->closing && !s->established)
        return PSKGW_ECLOSED;
    if (!s->l->handle_open)
        return PSKGW_ECLOSED;
    return send_to(s->l, (const struct sockaddr *)&s->u.udp.addr, data, len);
}

/* A new handshake for a ClientHello with a valid cookie. pred: the peer's established
 * session, which the new one replaces only when it completes (NULL: none). */
static void new_session(pskgw_listener_t *l, const struct sockaddr *from, const uint8_t *key,
                        uint8_t key_len, const char *peer, const uint8_t *data, size_t len,
                        pskgw_lsess_t *pred)
{
    pskgw_lsess_t *s = NULL;
    pskgw_dtls_client_hello_t ch;
    pskgw_halfopen_ticket_t ticket;
    uint64_t rseq = 0;
    uint16_t mseq = 0;
    uint8_t src[PSKGW_SOURCE_MAX];
    size_t src_len = pskgw_source_of(key, key_len, l->opt.ipv6_source_prefix, src);
    uint64_t now = uv_now(l->loop);

    if (l->counters.sessions_active >= l->opt.max_sessions) {
        l->counters.refused_max_sessions++;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "listen-full",
                     "listener \"%s\": max_sessions %u reached, refusing \"%s\"", l->name,
                     (unsigned)l->opt.max_sessions, peer);
        return;
    }
    if (src_len == 0 || pskgw_listen_admit(l, src, src_len, peer, &ticket) < 0)
        return;
    if (pskgw_dtls_find_client_hello(data, len, &rseq, &mseq, &ch) < 0 ||
        (pred == NULL ? pskgw_lsess_new(l, key, key_len, peer, &s)
                      : pskgw_lsess_new_beside(l, key, key_len, peer, &s)) < 0) {
        pskgw_halfopen_release(&l->half_open, &ticket);
        return;
    }
    pskgw_lsess_set_source(s, src, src_len, &ticket);
    if (from->sa_family == AF_INET)
        memcpy(&s->u.udp.addr, from, sizeof(struct sockaddr_in));
    else
        memcpy(&s->u.udp.addr, from, sizeof(struct sockaddr_in6));
    if (pred != NULL) {
        pred->successor = s;
        s->hs->predecessor = pred;
    }
    if (pskgw_dtls_session_new(l->dctx, &s->hs->res, &pskgw_listen_session_cbs, s, key, key_len,
                               now, &s->ds) < 0) {
        l->counters.handshakes_failed++;
        pskgw_lsess_end(s);
        return;
    }
    pskgw_dtls_session_note_hello(s->ds, ch.random); /* for is_new_client_hello */
    l->counters.handshakes_started++;
    (void)pskgw_dtls_session_feed(s->ds, data, len, now);
}

/* A ClientHello record (epoch 0) whose random is not the one that started session s. */
static bool is_client_hello(const uint8_t *d, size_t len)
{
    return len >= PSKGW_DTLS_RECORD_HEADER_LEN + 1 && d[0] == PSKGW_CT_HANDSHAKE && d[3] == 0 &&
           d[4] == 0 && d[PSKGW_DTLS_RECORD_HEADER_LEN] == PSKGW_HS_CLIENT_HELLO;
}

/* A ClientHello that is not the one that started session s (whose late network duplicate
 * still carries a valid cookie and must not replace the live session). */
static bool is_new_client_hello(const pskgw_lsess_t *s, const uint8_t *d, size_t len)
{
    pskgw_dtls_client_hello_t ch;
    uint64_t rseq = 0;
    uint16_t mseq = 0;

    if (!is_client_hello(d, len))
        return false;
    /* The dtls session keeps the random awake; a frozen session (no ds) no longer knows it:
     * any ClientHello is new. */
    return pskgw_dtls_find_client_hello(d, len, &rseq, &mseq, &ch) == 0 &&
           (s->ds == NULL || !pskgw_dtls_session_hello_is(s->ds, ch.random));
}

/* While a peer's new handshake runs beside its established session: handshake and
 * ChangeCipherSpec records and anything in epoch 0 belong to the new handshake; application
 * data and alerts in later epochs to the established session (the device's new handshake sends
 * none before it completes; if the device did not restart, they are its old session's). */
bool pskgw_listen_for_successor(const uint8_t *d, size_t len)
{
    if (len < PSKGW_DTLS_RECORD_HEADER_LEN)
        return false;
    return (d[3] == 0 && d[4] == 0) || d[0] == PSKGW_CT_HANDSHAKE ||
           d[0] == PSKGW_CT_CHANGE_CIPHER_SPEC;
}

/* A datagram from the peer of a live session s. The peer's name is formatted only off the
 * per-record path (a new ClientHello): a record of an established session costs no printf. */
static void on_peer_datagram(pskgw_listener_t *l, pskgw_lsess_t *s, const struct sockaddr *from,
                             const uint8_t *key, uint8_t key_len, const uint8_t *data, size_t len)
{
    pskgw_lsess_t *next = s->successor;
    uint8_t hvr[PSKGW_DTLS_HVR_MAX];
    size_t hvr_len = 0;
    char peer[PSKGW_PEER_STR_CAP];
    int rc;

    if (!is_new_client_hello(s, data, len)) {
        if (next != NULL && next->ds != NULL && !is_client_hello(data, len) &&
            pskgw_listen_for_successor(data, len))
            s = next;
        (void)pskgw_dtls_session_feed(s->ds, data, len, uv_now(l->loop));
        return;
    }
    if (next != NULL && next->ds != NULL && !is_new_client_hello(next, data, len)) {
        /* The new handshake's own ClientHello again (a retransmission or a duplicate). */
        (void)pskgw_dtls_session_feed(next->ds, data, len, uv_now(l->loop));
        return;
    }
    /* A new ClientHello (another random): the device restarted behind the same address and
     * port (RFC 6347 4.2.8; a client keeps its random across HelloVerifyRequest and
     * retransmissions), or someone replays an old one. Answer statelessly; only a valid
     * cookie starts a handshake, and an established session ends only when it completes. */
    rc = pskgw_dtls_ctx_check_hello(l->dctx, uv_now(l->loop), key, key_len, data, len, hvr,
                                    sizeof(hvr), &hvr_len);
    if (rc == 0 && send_to(l, from, hvr, hvr_len) == 0)
        l->counters.cookies_sent++;
    if (rc != 1 || pskgw_listen_peer_name(from, peer, sizeof(peer), NULL, NULL) < 0)
        return;
    l->counters.cookie_verified++;
    if (!s->established) {
        /* A handshake in progress has nothing to keep: the new one replaces it at once. */
        PSKGW_LOG_RL(PSKGW_LOG_INFO, "listen-rehello",
                     "listener \"%s\": new handshake from \"%s\" replaces handshake %llu", l->name,
                     peer, (unsigned long long)s->id);
        l->counters.handshakes_failed++;
        pskgw_lsess_end(s);
        new_session(l, from, key, key_len, peer, data, len, NULL);
        return;
    }
    if (next != NULL) {
        /* Only the newest handshake of the peer is kept beside its session. */
        l->counters.handshakes_failed++;
        pskgw_lsess_end(next);
    }
    new_session(l, from, key, key_len, peer, data, len, s);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags)
{
    pskgw_listener_t *l = h->data;
    const uint8_t *data = (const uint8_t *)buf->base;
    uint8_t key[PSKGW_PEER_KEY_MAX];
    uint8_t key_len = 0;
    char peer[PSKGW_PEER_STR_CAP];
    pskgw_lsess_t *s;
    uint8_t hvr[PSKGW_DTLS_HVR_MAX];
    size_t hvr_len = 0;
    int rc;

    if ((flags & UV_UDP_MMSG_FREE) != 0) {
        /* The end of a recvmmsg batch: what its datagrams made ready goes out together. */
        if (l->udp_tx != NULL) {
            l->udp_tx->rx_drained = l->udp_tx->rx_batch < RX_WIDTH;
            l->udp_tx->rx_batch = 0;
        }
        pskgw_udp_flush(l);
        return;
    }
    if (l->udp_tx != NULL) {
        if ((flags & UV_UDP_MMSG_CHUNK) != 0)
            l->udp_tx->rx_batch++;
        else if (nread == 0 && from == NULL)
            l->udp_tx->rx_empty++; /* recvmmsg found nothing (EAGAIN) */
    }
    if (nread <= 0 || from == NULL || l->closing)
        return; /* UV_ENOBUFS: the read on_alloc spared */
    if ((flags & UV_UDP_MMSG_CHUNK) != 0 && l->udp_tx != NULL)
        l->udp_tx->in_batch = true;
    l->counters.datagrams_in++;
    if ((flags & UV_UDP_PARTIAL) != 0) {
        l->counters.bad_datagrams++;
        return;
    }
    if (pskgw_listen_peer_key(from, key, &key_len) < 0)
        return;
    if (l->opt.cid_len == 0 || data[0] != PSKGW_CT_TLS12_CID) {
        s = pskgw_ltable_find_peer(&l->by_peer, key, key_len);
        /* stored in Redis: thawed only once claimed there (listen_sessredis.c) */
        if (s != NULL && s->in_redis &&
            pskgw_listen_sessredis_claim(s, from, key, key_len, NULL, false, data, (size_t)nread))
            return;
        /* a frozen session gets its dtls session back (pskgw_lsess_ds) */
        if (s != NULL && pskgw_lsess_ds(s) != NULL) {
            on_peer_datagram(l, s, from, key, key_len, data, (size_t)nread);
            return;
        }
    }
    /* Off the per-record path: the peer is named for the session, the logs and Redis. */
    if (pskgw_listen_peer_name(from, peer, sizeof(peer), key, &key_len) < 0)
        return;
    if (l->opt.cid_len > 0 && data[0] == PSKGW_CT_TLS12_CID) {
        /* Found by its Connection ID, whatever the address (listen_cid.c). */
        pskgw_listen_cid_recv(l, from, key, key_len, peer, data, (size_t)nread);
        return;
    }
    /* No session: only a ClientHello is answered, and without keeping anything. */
    rc = pskgw_dtls_ctx_check_hello(l->dctx, uv_now(l->loop), key, key_len, data, (size_t)nread,
                                    hvr, sizeof(hvr), &hvr_len);
    if (rc == 0) {
        if (send_to(l, from, hvr, hvr_len) == 0)
            l->counters.cookies_sent++;
        return;
    }
    if (rc < 0) {
        /* Maybe a session another node held: looked up in Redis, the datagram held meanwhile. */
        if (l->opt.sessions != NULL &&
            pskgw_listen_sessredis_park(l, from, key, key_len, peer, NULL, data, (size_t)nread))
            return;
        l->counters.bad_datagrams++;
        return;
    }
    l->counters.cookie_verified++;
    new_session(l, from, key, key_len, peer, data, (size_t)nread, NULL);
}

int pskgw_udp_listener_start(pskgw_listener_t *l, const char **why)
{
    struct sockaddr_storage ss;
    int namelen = sizeof(ss);
    int rc;

    l->rbuf_len = UDP_RBUF;
    l->rbuf = malloc(l->rbuf_len);
    l->udp_tx = calloc(1, sizeof(*l->udp_tx));
    if (l->rbuf == NULL || l->udp_tx == NULL)
        return PSKGW_ENOMEM;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(l->address, l->opt.port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(l->address, l->opt.port, (struct sockaddr_in6 *)&ss) != 0) {
        *why = "address is not an IPv4 or IPv6 literal";
        return PSKGW_ECONFIG;
    }
    rc = uv_udp_init_ex(l->loop, &l->h.udp, AF_UNSPEC | UV_UDP_RECVMMSG);
    if (rc < 0)
        return pskgw_err_from_errno(rc);
    l->h.udp.data = l;
    l->handle_open = true;
    if (l->opt.reuseport) {
        int fd = pskgw_listen_reuseport_socket((const struct sockaddr *)&ss, SOCK_DGRAM);

        if (fd < 0) {
            *why = "cannot bind the UDP socket (SO_REUSEPORT)";
            return fd;
        }
        rc = uv_udp_open(&l->h.udp, fd);
        if (rc < 0) {
            (void)close(fd);
            return pskgw_err_from_errno(rc);
        }
    } else {
        rc = uv_udp_bind(&l->h.udp, (const struct sockaddr *)&ss, 0);
        if (rc < 0) {
            *why = "cannot bind the UDP socket";
            return pskgw_err_from_errno(rc);
        }
    }
    /* Bursts of thousands of handshakes: a large socket buffer instead of kernel drops (the
     * kernel caps it at net.core.rmem_max / wmem_max). Best effort. */
    {
        int sz = UDP_SOCKBUF;

        (void)uv_recv_buffer_size((uv_handle_t *)&l->h.udp, &sz);
        sz = UDP_SOCKBUF;
        (void)uv_send_buffer_size((uv_handle_t *)&l->h.udp, &sz);
    }
    rc = uv_udp_getsockname(&l->h.udp, (struct sockaddr *)&ss, &namelen);
    if (rc < 0)
        return pskgw_err_from_errno(rc);
    l->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
    rc = uv_udp_recv_start(&l->h.udp, on_alloc, on_recv);
    if (rc < 0)
        return pskgw_err_from_errno(rc);
    return 0;
}
