#define _GNU_SOURCE
#include "echosrv.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len;
} body_t;

struct echosrv {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int requests;
    int hanging;
    int connections;
    int released;
};

static enum MHD_Result answer(struct MHD_Connection *con, unsigned code, const char *body,
                              size_t len, int close_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Retry-After", "7");
    if (close_after)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(con, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result hang(echosrv_t *s, struct MHD_Connection *con)
{
    pthread_mutex_lock(&s->mu);
    s->hanging++;
    while (!s->released)
        pthread_cond_wait(&s->cv, &s->mu); /* this connection's own thread */
    s->hanging--;
    pthread_mutex_unlock(&s->mu);
    return answer(con, 503, "", 0, 0);
}

static enum MHD_Result dispatch(echosrv_t *s, struct MHD_Connection *con, const char *url,
                                const char *method, body_t *b)
{
    const char *seq = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Seq");
    const char *close_q = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, "close");
    char out[512];
    int n;

    pthread_mutex_lock(&s->mu);
    s->requests++;
    pthread_mutex_unlock(&s->mu);
    if (strcmp(url, "/hang") == 0)
        return hang(s, con);
    if (strcmp(url, "/drop") == 0)
        return MHD_NO;
    if (strcmp(url, "/big") == 0) {
        static char big[4096];
        memset(big, 'x', sizeof(big));
        return answer(con, 200, big, sizeof(big), 0);
    }
    n = snprintf(out, sizeof(out), "%s %s %.*s", method, seq ? seq : "-", (int)b->len,
                 b->buf ? b->buf : "");
    return answer(con, 200, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1,
                  close_q != NULL);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *con, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    body_t *b = *con_cls;

    (void)version;
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
    return dispatch(cls, con, url, method, b);
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

static void notify_conn(void *cls, struct MHD_Connection *con, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    echosrv_t *s = cls;

    (void)con;
    (void)socket_context;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    pthread_mutex_lock(&s->mu);
    s->connections++;
    pthread_mutex_unlock(&s->mu);
}

int echosrv_start(echosrv_t **out, int *port)
{
    echosrv_t *s = calloc(1, sizeof(*s));
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;

    if (!s)
        return -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
        NULL, handler, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, notify_conn, s, MHD_OPTION_END);
    if (!s->d)
        goto fail;
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        MHD_stop_daemon(s->d);
        goto fail;
    }
    *port = info->port;
    *out = s;
    return 0;

fail:
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return -1;
}

static int get(echosrv_t *s, const int *field)
{
    int v;

    pthread_mutex_lock(&s->mu);
    v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

int echosrv_requests(echosrv_t *s)
{
    return get(s, &s->requests);
}

int echosrv_hanging(echosrv_t *s)
{
    return get(s, &s->hanging);
}

int echosrv_connections(echosrv_t *s)
{
    return get(s, &s->connections);
}

void echosrv_release(echosrv_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->released = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void echosrv_stop(echosrv_t *s)
{
    echosrv_release(s);
    MHD_stop_daemon(s->d);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
