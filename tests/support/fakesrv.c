#define _GNU_SOURCE
#include "fakesrv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_PATHS 8

struct fakesrv {
    int lfd;
    volatile int stop;
    pthread_t acceptor;
    pthread_mutex_t mu;
    fake_handler h;
    void *arg;
    pthread_t conns[MAX_CONNS];
    int conn_fds[MAX_CONNS];
    int nconns;
    char paths[MAX_PATHS][64];
    unsigned counts[MAX_PATHS];
};

typedef struct {
    fakesrv_t *s;
    int fd;
} conn_arg_t;

static unsigned *count_slot(fakesrv_t *s, const char *path)
{
    for (int i = 0; i < MAX_PATHS; i++) {
        if (s->paths[i][0] == '\0') {
            snprintf(s->paths[i], sizeof(s->paths[i]), "%s", path);
            return &s->counts[i];
        }
        if (strcmp(s->paths[i], path) == 0)
            return &s->counts[i];
    }
    return NULL;
}

unsigned fakesrv_count(fakesrv_t *s, const char *path)
{
    unsigned n = 0;

    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < MAX_PATHS; i++)
        if (strcmp(s->paths[i], path) == 0)
            n = s->counts[i];
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Wait for fd to be readable, watching the stop flag. 1 readable, 0 stopped. */
static int wait_readable(fakesrv_t *s, int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    while (!s->stop) {
        int n = poll(&p, 1, 20);
        if (n > 0)
            return 1;
    }
    return 0;
}

static void nap(fakesrv_t *s, unsigned ms)
{
    while (ms > 0 && !s->stop) {
        unsigned step = ms < 10 ? ms : 10;
        usleep(step * 1000);
        ms -= step;
    }
}

static void *conn_main(void *p)
{
    conn_arg_t *ca = p;
    fakesrv_t *s = ca->s;
    int fd = ca->fd;
    char buf[8192];
    size_t len = 0;

    free(ca);
    for (;;) {
        char *end;
        size_t hdr_len;
        size_t body_len = 0;
        char path[64] = "";
        char *cl;
        fake_reply_t rep;
        unsigned *slot;
        unsigned n = 0;
        char out[4096];
        int o;

        while ((end = memmem(buf, len, "\r\n\r\n", 4)) == NULL) {
            ssize_t r;
            if (len == sizeof(buf) || !wait_readable(s, fd))
                goto out;
            r = read(fd, buf + len, sizeof(buf) - len);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        hdr_len = (size_t)(end - buf) + 4;
        *end = '\0';
        cl = strcasestr(buf, "\r\ncontent-length:");
        if (cl)
            body_len = strtoul(cl + 17, NULL, 10);
        if (sscanf(buf, "%*s %63s", path) != 1)
            goto out;
        while (len < hdr_len + body_len) {
            ssize_t r;
            if (len == sizeof(buf) || !wait_readable(s, fd))
                goto out;
            r = read(fd, buf + len, sizeof(buf) - len);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        memset(&rep, 0, sizeof(rep));
        pthread_mutex_lock(&s->mu);
        slot = count_slot(s, path);
        if (slot)
            n = (*slot)++;
        s->h(s->arg, path, n, &rep);
        pthread_mutex_unlock(&s->mu);
        nap(s, rep.delay_ms);
        if (s->stop)
            goto out;
        o = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: "
                     "%zu\r\n\r\n%s",
                     rep.status ? rep.status : 500, rep.headers ? rep.headers : "",
                     rep.body ? strlen(rep.body) : 0, rep.body ? rep.body : "");
        if (o < 0 || (size_t)o >= sizeof(out) || write(fd, out, (size_t)o) != o)
            goto out;
        memmove(buf, buf + hdr_len + body_len, len - hdr_len - body_len);
        len -= hdr_len + body_len;
    }
out:
    return NULL;
}

static void *accept_main(void *p)
{
    fakesrv_t *s = p;

    while (wait_readable(s, s->lfd)) {
        int fd = accept(s->lfd, NULL, NULL);
        conn_arg_t *ca;

        if (fd < 0)
            continue;
        ca = malloc(sizeof(*ca));
        pthread_mutex_lock(&s->mu);
        if (!ca || s->nconns == MAX_CONNS) {
            pthread_mutex_unlock(&s->mu);
            free(ca);
            close(fd);
            continue;
        }
        ca->s = s;
        ca->fd = fd;
        s->conn_fds[s->nconns] = fd;
        if (pthread_create(&s->conns[s->nconns], NULL, conn_main, ca) != 0) {
            free(ca);
            close(fd);
        } else {
            s->nconns++;
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

int fakesrv_start(fakesrv_t **out, fake_handler h, void *arg, char *url, size_t url_cap)
{
    fakesrv_t *s = calloc(1, sizeof(*s));
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int one = 1;

    if (!s)
        return -1;
    s->h = h;
    s->arg = arg;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 64) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0 ||
        pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
        if (s->lfd >= 0)
            close(s->lfd);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -1;
    }
    snprintf(url, url_cap, "http://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    *out = s;
    return 0;
}

void fakesrv_stop(fakesrv_t *s)
{
    if (!s)
        return;
    s->stop = 1;
    pthread_join(s->acceptor, NULL);
    for (int i = 0; i < s->nconns; i++) {
        pthread_join(s->conns[i], NULL);
        close(s->conn_fds[i]);
    }
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
