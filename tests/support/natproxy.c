/* The NAT-rebinding UDP proxy of the tests (see natproxy.h). */
#define _GNU_SOURCE /* pipe2 */
#include "natproxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pskgw_natproxy {
    struct sockaddr_storage server;
    socklen_t server_len;
    uint32_t rebind_after, rebind_every, hold_after;
    bool count_app;
    bool released; /* the hold ended (thread only) */
    int cfd;       /* client side */
    int sfd;       /* server side (replaced by a rebind) */
    int ctl[2];    /* control pipe: 'r' rebind, 'g' release the hold, 'q' quit */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t cmd_done;              /* rebind commands completed (under mu) */
    int cmd_result;                 /* the last command's result (under mu) */
    struct sockaddr_storage client; /* last client address (thread only) */
    socklen_t client_len;
    pskgw_natproxy_stats_t st; /* under mu */
    uint8_t buf[65536];
};

static uint16_t sock_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A new server-side socket: bound to a fresh ephemeral port of the loopback address of the
 * server's family, connected to the server (only its datagrams are read). */
static int server_socket(const pskgw_natproxy_t *p)
{
    int fam = p->server.ss_family;
    int fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_storage b;
    socklen_t blen;
    int rc;

    if (fd < 0)
        return -errno;
    memset(&b, 0, sizeof(b));
    if (fam == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&b;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        blen = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&b;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        blen = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&b, blen) != 0 ||
        connect(fd, (const struct sockaddr *)&p->server, p->server_len) != 0) {
        rc = -errno;
        (void)close(fd);
        return rc;
    }
    return fd;
}

/* Replace the server-side socket; the old one is closed (its mapping is gone). Thread only. */
static int do_rebind(pskgw_natproxy_t *p)
{
    int fd = server_socket(p);
    uint16_t port;

    if (fd < 0)
        return fd;
    /* The kernel may hand the port just freed back; a NAT never maps to the same port again. */
    (void)close(p->sfd);
    p->sfd = fd;
    port = sock_port(fd);
    pthread_mutex_lock(&p->mu);
    p->st.rebinds++;
    p->st.server_port = port;
    pthread_mutex_unlock(&p->mu);
    return port;
}

static void from_client(pskgw_natproxy_t *p)
{
    struct sockaddr_storage from;
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(p->cfd, p->buf, sizeof(p->buf), 0, (struct sockaddr *)&from, &flen);
    bool counts;
    uint64_t seen;

    if (n < 0)
        return;
    p->client = from;
    p->client_len = flen;
    counts = !p->count_app || (n > 0 && (p->buf[0] == 23 || p->buf[0] == 25));
    pthread_mutex_lock(&p->mu);
    seen = p->st.counted;
    pthread_mutex_unlock(&p->mu);
    if (counts && seen > 0 &&
        ((p->rebind_after != 0 && seen == p->rebind_after) ||
         (p->rebind_every != 0 && seen % p->rebind_every == 0)))
        (void)do_rebind(p);
    pthread_mutex_lock(&p->mu);
    if (send(p->sfd, p->buf, (size_t)n, 0) == n) {
        p->st.to_server++;
        p->st.counted += counts;
    } else {
        p->st.dropped++;
    }
    pthread_mutex_unlock(&p->mu);
}

static void from_server(pskgw_natproxy_t *p)
{
    ssize_t n = recv(p->sfd, p->buf, sizeof(p->buf), 0);
    bool ok;

    if (n < 0)
        return; /* e.g. ECONNREFUSED from an ICMP error: nothing to forward */
    /* Sent and counted under the lock, as to the server: a reader of the stats that has seen
     * the datagram arrive also sees it counted. */
    pthread_mutex_lock(&p->mu);
    ok = p->client_len > 0 &&
         sendto(p->cfd, p->buf, (size_t)n, 0, (struct sockaddr *)&p->client, p->client_len) == n;
    if (ok)
        p->st.to_client++;
    else
        p->st.dropped++;
    pthread_mutex_unlock(&p->mu);
}

static void *run(void *arg)
{
    pskgw_natproxy_t *p = arg;

    for (;;) {
        bool hold;

        pthread_mutex_lock(&p->mu);
        hold = p->hold_after != 0 && !p->released && p->st.counted >= p->hold_after;
        pthread_mutex_unlock(&p->mu);
        struct pollfd fds[3] = {
            { .fd = p->ctl[0], .events = POLLIN },
            { .fd = hold ? -1 : p->cfd, .events = POLLIN }, /* -1: not polled */
            { .fd = p->sfd, .events = POLLIN },
        };
        char c;

        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (fds[0].revents != 0) {
            if (read(p->ctl[0], &c, 1) != 1 || c == 'q')
                return NULL;
            if (c == 'g') {
                p->released = true;
                continue;
            }
            int rc = do_rebind(p);
            pthread_mutex_lock(&p->mu);
            p->cmd_result = rc;
            p->cmd_done++;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
            continue; /* the server socket may have changed: poll again */
        }
        if (fds[1].revents != 0)
            from_client(p);
        if (fds[2].revents != 0)
            from_server(p);
    }
}

static int listen_socket(const char *ip, int fam)
{
    struct sockaddr_storage b;
    socklen_t blen;
    int fd, rc;

    memset(&b, 0, sizeof(b));
    if (fam == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&b;
        a->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, ip != NULL ? ip : "::1", &a->sin6_addr) != 1)
            return -EINVAL;
        blen = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&b;
        a->sin_family = AF_INET;
        if (inet_pton(AF_INET, ip != NULL ? ip : "127.0.0.1", &a->sin_addr) != 1)
            return -EINVAL;
        blen = sizeof(*a);
    }
    fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&b, blen) != 0) {
        rc = -errno;
        (void)close(fd);
        return rc;
    }
    return fd;
}

int pskgw_natproxy_start(const pskgw_natproxy_opts_t *opts, pskgw_natproxy_t **out)
{
    pskgw_natproxy_t *p;
    int rc, fam;

    if (opts == NULL || opts->server == NULL ||
        (opts->server->sa_family != AF_INET && opts->server->sa_family != AF_INET6))
        return -EINVAL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->cfd = p->sfd = p->ctl[0] = p->ctl[1] = -1;
    fam = opts->server->sa_family;
    p->server_len = fam == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memcpy(&p->server, opts->server, p->server_len);
    p->rebind_after = opts->rebind_after;
    p->rebind_every = opts->rebind_every;
    p->count_app = opts->count_app;
    p->hold_after = opts->hold_after;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pipe2(p->ctl, O_CLOEXEC) != 0) {
        rc = -errno;
        goto fail;
    }
    rc = p->cfd = listen_socket(opts->listen_ip, fam);
    if (rc < 0)
        goto fail;
    rc = p->sfd = server_socket(p);
    if (rc < 0)
        goto fail;
    p->st.listen_port = sock_port(p->cfd);
    p->st.server_port = sock_port(p->sfd);
    rc = -pthread_create(&p->thread, NULL, run, p);
    if (rc < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    if (p->sfd >= 0)
        (void)close(p->sfd);
    if (p->cfd >= 0)
        (void)close(p->cfd);
    if (p->ctl[0] >= 0) {
        (void)close(p->ctl[0]);
        (void)close(p->ctl[1]);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return rc;
}

uint16_t pskgw_natproxy_port(const pskgw_natproxy_t *p)
{
    return p->st.listen_port; /* written before the thread started, never after */
}

int pskgw_natproxy_rebind(pskgw_natproxy_t *p)
{
    uint64_t want;
    int rc;

    pthread_mutex_lock(&p->mu);
    want = p->cmd_done + 1;
    pthread_mutex_unlock(&p->mu);
    if (write(p->ctl[1], "r", 1) != 1)
        return -errno;
    pthread_mutex_lock(&p->mu);
    while (p->cmd_done < want)
        pthread_cond_wait(&p->cv, &p->mu);
    rc = p->cmd_result;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void pskgw_natproxy_release(pskgw_natproxy_t *p)
{
    (void)!write(p->ctl[1], "g", 1);
}

void pskgw_natproxy_stats(pskgw_natproxy_t *p, pskgw_natproxy_stats_t *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->mu);
}

void pskgw_natproxy_stop(pskgw_natproxy_t *p)
{
    if (p == NULL)
        return;
    if (write(p->ctl[1], "q", 1) == 1)
        (void)pthread_join(p->thread, NULL);
    (void)close(p->sfd);
    (void)close(p->cfd);
    (void)close(p->ctl[0]);
    (void)close(p->ctl[1]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
