#define _GNU_SOURCE
#include "httprx.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len;
} body_t;

struct httprx {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    pthread_cond_t changed; /* the mode changed or the receiver is stopping */
    httprx_mode_t mode;
    bool stopping;
    int hanging;
    int64_t poison;
    int requests;
    int n;
    st_rx_t rx[ST_MAX * 2];
    char *raw[ST_MAX * 2];
    char auth[256];
};

static enum MHD_Result reply(struct MHD_Connection *con, unsigned code)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(con, code, r);

    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *con, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    httprx_t *h = cls;
    body_t *b = *con_cls;
    httprx_mode_t mode;
    st_rx_t one;
    const char *auth;

    (void)url;
    (void)version;
    if (strcmp(method, "POST") != 0)
        return reply(con, 405);
    if (!b) {
        b = calloc(1, sizeof(*b));
        *con_cls = b;
        return b ? MHD_YES : MHD_NO;
    }
    if (*upload_size > 0) {
        char *nb = realloc(b->buf, b->len + *upload_size + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + b->len, upload, *upload_size);
        b->buf = nb;
        b->len += *upload_size;
        b->buf[b->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    auth = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
    pthread_mutex_lock(&h->mu);
    h->requests++;
    mode = h->mode;
    if (mode == HTTPRX_FLAKY && h->requests % 3 == 0)
        mode = HTTPRX_FAIL;
    snprintf(h->auth, sizeof(h->auth), "%s", auth ? auth : "");
    if (mode == HTTPRX_HANG) {
        /* this connection's own thread waits for the test to end the hang */
        h->hanging++;
        while (h->mode == HTTPRX_HANG && !h->stopping)
            pthread_cond_wait(&h->changed, &h->mu);
        h->hanging--;
    }
    pthread_mutex_unlock(&h->mu);
    if (mode == HTTPRX_FAIL)
        return reply(con, 500);
    if (mode == HTTPRX_HANG)
        return reply(con, 503);
    if (!b->buf || st_parse_json(b->buf, b->len, &one) != 0)
        return reply(con, 422);
    pthread_mutex_lock(&h->mu);
    if (h->poison >= 0 && one.seq == (uint64_t)h->poison) {
        pthread_mutex_unlock(&h->mu);
        return reply(con, 400);
    }
    if (h->n < ST_MAX * 2) {
        h->rx[h->n] = one;
        h->raw[h->n] = strndup(b->buf, b->len);
        h->n++;
    }
    pthread_mutex_unlock(&h->mu);
    return reply(con, 200);
}

static void completed(void *cls, struct MHD_Connection *con, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    body_t *b = *con_cls;

    (void)cls;
    (void)con;
    (void)toe;
    if (b) {
        free(b->buf);
        free(b);
        *con_cls = NULL;
    }
}

int httprx_start(httprx_t **out, int *port)
{
    httprx_t *h = calloc(1, sizeof(*h));
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;

    if (!h)
        return -1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->changed, NULL);
    h->poison = -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_POLL,
                            0, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_END);
    if (!h->d)
        goto fail;
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        MHD_stop_daemon(h->d);
        goto fail;
    }
    *port = info->port;
    *out = h;
    return 0;
fail:
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->mu);
    free(h);
    return -1;
}

void httprx_set_mode(httprx_t *h, httprx_mode_t mode)
{
    pthread_mutex_lock(&h->mu);
    h->mode = mode;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->mu);
}

int httprx_hanging(httprx_t *h)
{
    int n;

    pthread_mutex_lock(&h->mu);
    n = h->hanging;
    pthread_mutex_unlock(&h->mu);
    return n;
}

void httprx_set_poison(httprx_t *h, int64_t seq)
{
    pthread_mutex_lock(&h->mu);
    h->poison = seq;
    pthread_mutex_unlock(&h->mu);
}

int httprx_count(httprx_t *h)
{
    int n;

    pthread_mutex_lock(&h->mu);
    n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

int httprx_requests(httprx_t *h)
{
    int n;

    pthread_mutex_lock(&h->mu);
    n = h->requests;
    pthread_mutex_unlock(&h->mu);
    return n;
}

int httprx_get(httprx_t *h, st_rx_t *rx_out, char **raw, int max)
{
    int n;

    pthread_mutex_lock(&h->mu);
    n = h->n < max ? h->n : max;
    for (int i = 0; i < n; i++) {
        rx_out[i] = h->rx[i];
        if (raw)
            raw[i] = strdup(h->raw[i]);
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

const char *httprx_last_auth(httprx_t *h)
{
    static char copy[256];

    pthread_mutex_lock(&h->mu);
    memcpy(copy, h->auth, sizeof(copy));
    pthread_mutex_unlock(&h->mu);
    return copy;
}

void httprx_stop(httprx_t *h)
{
    /* release hung requests first: MHD_stop_daemon joins their threads */
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->mu);
    MHD_stop_daemon(h->d);
    for (int i = 0; i < h->n; i++)
        free(h->raw[i]);
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
