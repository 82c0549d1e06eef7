/* pskgw-devsim: a device's sockets (see fleet_internal.h): UDP bound to the device's source
 * address or TCP, reads into the device, writes of what its client queued. */
#include "tools/devsim/fleet_internal.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "tools/devsim/creds.h"
#include "tools/devsim/payload.h"
#include "tools/rotkeys/rotkeys.h"

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

void fleet_on_sock_closed(uv_handle_t *h)
{
    device_t *d = h->data;
    for (int i = 0; i < 2; i++)
        if (h == &d->sock[i].h)
            d->sock_open[i] = 0;
}

void fleet_sock_close(device_t *d, int slot)
{
    uv_handle_t *h = &d->sock[slot].h;
    if (!d->sock_open[slot] || uv_is_closing(h))
        return;
    uv_close(h, fleet_on_sock_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    device_t *d = req->data;
    for (int i = 0; i < 2; i++)
        if (req == &d->shut[i])
            fleet_sock_close(d, i);
}

/* Close a slot; TCP gets its pending writes (close_notify) flushed first. */
void fleet_sock_retire(device_t *d, int slot)
{
    if (!d->sock_open[slot] || uv_is_closing(&d->sock[slot].h))
        return;
    if (d->f->o->transport == PSKGW_DEVSIM_TLS && uv_is_writable(&d->sock[slot].stream)) {
        d->shut[slot].data = d;
        if (uv_shutdown(&d->shut[slot], &d->sock[slot].stream, on_shutdown) == 0)
            return;
    }
    fleet_sock_close(d, slot);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    device_t *d = h->data;
    buf->base = (char *)d->f->rx;
    buf->len = sizeof(d->f->rx);
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    (void)addr;
    (void)flags;
    device_t *d = h->data;
    if (nread <= 0 || h != &d->sock[d->cur].udp || d->c == NULL)
        return; /* nothing, an ICMP error (the handshake timer covers it), or an old socket */
    fleet_deliver(d, (const uint8_t *)buf->base, (size_t)nread);
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
            fleet_hs_failed(d, PSKGW_ECLOSED);
        else
            fleet_peer_closed(d);
        return;
    }
    if (nread > 0)
        fleet_deliver(d, (const uint8_t *)buf->base, (size_t)nread);
}

static void on_connect(uv_connect_t *req, int status)
{
    device_t *d = req->data;
    if (status == UV_ECANCELED || d->state == D_ENDED)
        return;
    if (req != &d->conn[d->cur])
        return;
    if (status < 0 || uv_read_start(&d->sock[d->cur].stream, on_alloc, on_tcp_read) < 0) {
        fleet_count_error(d, PSKGW_DEVSIM_ERR_SOCKET, 1);
        fleet_dev_end(d);
        return;
    }
    fleet_session_start(d);
}

/* Open socket `slot`, bound to the device's source address. UDP is connected to the target and
 * ready; TCP is connecting (session_start runs from on_connect). */
int fleet_sock_open(device_t *d, int slot)
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
            r = uv_udp_connect(&s->udp, d->failed_over ? (const struct sockaddr *)&f->o->failover_to
                                                       : (const struct sockaddr *)&f->o->target);
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
        fleet_sock_close(d, slot);
    return r;
}

int fleet_sock_failover(device_t *d)
{
    const struct sockaddr_storage *to = &d->f->o->failover_to;
    uv_os_fd_t fd;
    int r = uv_fileno(&d->sock[d->cur].h, &fd);

    /* connect(2) again on the connected socket: it keeps its source port. (Disconnecting first,
     * as uv_udp_connect(NULL) does, would give the port back: the socket was bound to port 0.) */
    if (r == 0 && connect(fd, (const struct sockaddr *)to,
                          to->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                   : sizeof(struct sockaddr_in6)) != 0)
        r = -1;
    if (r == 0)
        d->failed_over = true;
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

void fleet_flush(device_t *d)
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

void fleet_arm_io(device_t *d)
{
    int64_t ms = d->c != NULL ? pskgw_devsim_client_timeout_ms(d->c) : -1;
    if (ms < 0)
        uv_timer_stop(&d->io_timer);
    else
        uv_timer_start(&d->io_timer, fleet_on_io_timer, (uint64_t)ms, 0);
}
