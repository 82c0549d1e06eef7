/* echopeer: the forwarding bench's backend (scripts/bench, section 4c). One libuv loop echoing
 * UDP datagrams and TCP streams on 127.0.0.1, kernel-chosen ports, so that the backend is never
 * what limits the gateway's forwarding figure (the tests' pp2peer.py is a Python thread per
 * connection with a listen backlog of 16: 500 devices connecting at once met SYN retransmissions).
 *
 * Prints "udp N" and "tcp N" (the bound ports) on stdout, then serves until SIGTERM or SIGINT,
 * and exits 0. A TCP connection's reads pause while its echo writes are queued beyond 1 MiB
 * (backpressure like any well-behaved server); its peer's FIN is answered with a FIN.
 *
 * usage: pskgw-echopeer
 */
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEER_READ_BUF   65536
#define PEER_QUEUE_HIGH (1u << 20)

typedef struct {
    uv_tcp_t h;
    size_t queued; /* bytes of echo writes not yet done */
    int paused;
} conn_t;

typedef struct {
    uv_write_t req;
    conn_t *c;
    size_t len;
    char data[]; /* the bytes being echoed */
} wreq_t;

static uv_udp_t g_udp;
static uv_tcp_t g_tcp;
static uv_signal_t g_term, g_int;
static char g_udp_buf[PEER_READ_BUF];

static void alloc_udp(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    *b = uv_buf_init(g_udp_buf, sizeof g_udp_buf);
}

static void on_udp(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                   unsigned flags)
{
    (void)flags;
    if (n <= 0 || from == NULL)
        return;
    uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
    /* Loopback: a full socket buffer drops the echo, which the fleet counts as missing. */
    (void)uv_udp_try_send(h, &out, 1, from);
}

static void alloc_tcp(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    wreq_t *w = malloc(sizeof *w + PEER_READ_BUF);
    *b = w == NULL ? uv_buf_init(NULL, 0) : uv_buf_init(w->data, PEER_READ_BUF);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void on_written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    conn_t *c = w->c;

    c->queued -= w->len;
    free(w);
    if (status < 0) {
        if (!uv_is_closing((uv_handle_t *)&c->h))
            uv_close((uv_handle_t *)&c->h, on_closed);
        return;
    }
    if (c->paused && c->queued < PEER_QUEUE_HIGH / 2 && !uv_is_closing((uv_handle_t *)&c->h)) {
        c->paused = 0;
        uv_read_start((uv_stream_t *)&c->h, alloc_tcp, on_read);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;

    (void)status;
    free(req);
    if (!uv_is_closing((uv_handle_t *)&c->h))
        uv_close((uv_handle_t *)&c->h, on_closed);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn_t *c = s->data;
    wreq_t *w = b->base == NULL ? NULL : (wreq_t *)(b->base - offsetof(wreq_t, data));

    if (n <= 0) {
        free(w);
        if (n == 0)
            return;
        uv_read_stop(s);
        uv_shutdown_t *sd = malloc(sizeof *sd);
        if (n != UV_EOF || sd == NULL || (sd->data = c, uv_shutdown(sd, s, on_shutdown)) != 0) {
            free(sd);
            if (!uv_is_closing((uv_handle_t *)s))
                uv_close((uv_handle_t *)s, on_closed);
        }
        return;
    }
    w->c = c;
    w->len = (size_t)n;
    uv_buf_t out = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, s, &out, 1, on_written) != 0) {
        free(w);
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    c->queued += (size_t)n;
    if (c->queued > PEER_QUEUE_HIGH) {
        c->paused = 1;
        uv_read_stop(s);
    }
}

static void on_conn(uv_stream_t *srv, int status)
{
    conn_t *c;

    if (status < 0 || (c = calloc(1, sizeof *c)) == NULL)
        return;
    uv_tcp_init(srv->loop, &c->h);
    c->h.data = c;
    if (uv_accept(srv, (uv_stream_t *)&c->h) != 0) {
        uv_close((uv_handle_t *)&c->h, on_closed);
        return;
    }
    uv_tcp_nodelay(&c->h, 1);
    uv_read_start((uv_stream_t *)&c->h, alloc_tcp, on_read);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->data != NULL ? on_closed : NULL); /* only connections carry data */
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_walk(s->loop, close_any, NULL);
}

static int bound_port(const uv_handle_t *h, int udp)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int rc = udp ? uv_udp_getsockname((const uv_udp_t *)h, (struct sockaddr *)&ss, &len)
                 : uv_tcp_getsockname((const uv_tcp_t *)h, (struct sockaddr *)&ss, &len);

    return rc == 0 ? ntohs(((struct sockaddr_in *)&ss)->sin_port) : -1;
}

int main(void)
{
    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in any;
    int rc;

    uv_ip4_addr("127.0.0.1", 0, &any);
    if ((rc = uv_udp_init(loop, &g_udp)) != 0 ||
        (rc = uv_udp_bind(&g_udp, (const struct sockaddr *)&any, 0)) != 0 ||
        (rc = uv_udp_recv_start(&g_udp, alloc_udp, on_udp)) != 0 ||
        (rc = uv_tcp_init(loop, &g_tcp)) != 0 ||
        (rc = uv_tcp_bind(&g_tcp, (const struct sockaddr *)&any, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&g_tcp, 4096, on_conn)) != 0) {
        fprintf(stderr, "pskgw-echopeer: %s\n", uv_strerror(rc));
        return 1;
    }
    /* The fleet's bursts: as much receive buffer as the kernel grants (net.core.rmem_max). */
    int rcvbuf = 8 << 20;
    uv_recv_buffer_size((uv_handle_t *)&g_udp, &rcvbuf);
    uv_signal_init(loop, &g_term);
    uv_signal_init(loop, &g_int);
    uv_signal_start(&g_term, on_signal, SIGTERM);
    uv_signal_start(&g_int, on_signal, SIGINT);
    printf("udp %d\ntcp %d\n", bound_port((uv_handle_t *)&g_udp, 1),
           bound_port((uv_handle_t *)&g_tcp, 0));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}
