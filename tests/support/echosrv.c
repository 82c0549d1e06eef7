#define _GNU_SOURCE
#include "echosrv.h"

#include "httpsrv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct echosrv {
    httpsrv_t *srv;
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

static enum MHD_Result on_request(void *arg, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *body, size_t len)
{
    echosrv_t *s = arg;
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
    n = snprintf(out, sizeof(out), "%s %s %.*s", method, seq ? seq : "-", (int)len,
                 body ? body : "");
    return answer(con, 200, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1,
                  close_q != NULL);
}

static void on_connection(void *arg)
{
    echosrv_t *s = arg;

    pthread_mutex_lock(&s->mu);
    s->connections++;
    pthread_mutex_unlock(&s->mu);
}

int echosrv_start(echosrv_t **out, int *port)
{
    echosrv_t *s = calloc(1, sizeof(*s));
    httpsrv_cfg_t cfg = { on_request, on_connection, NULL };

    if (!s)
        return -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    cfg.arg = s;
    if (httpsrv_start(&s->srv, port, &cfg) < 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
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
    httpsrv_stop(s->srv);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
