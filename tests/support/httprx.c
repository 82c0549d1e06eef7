#define _GNU_SOURCE
#include "httprx.h"

#include "httpsrv.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct httprx {
    httpsrv_t *srv;
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

static enum MHD_Result on_request(void *arg, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *body, size_t len)
{
    httprx_t *h = arg;
    httprx_mode_t mode;
    st_rx_t one;
    const char *auth;

    (void)url;
    if (strcmp(method, "POST") != 0)
        return reply(con, 405);
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
    if (!body || st_parse_json(body, len, &one) != 0)
        return reply(con, 422);
    pthread_mutex_lock(&h->mu);
    if (h->poison >= 0 && one.seq == (uint64_t)h->poison) {
        pthread_mutex_unlock(&h->mu);
        return reply(con, 400);
    }
    if (h->n < ST_MAX * 2) {
        h->rx[h->n] = one;
        h->raw[h->n] = strndup(body, len);
        h->n++;
    }
    pthread_mutex_unlock(&h->mu);
    return reply(con, 200);
}

int httprx_start(httprx_t **out, int *port)
{
    httprx_t *h = calloc(1, sizeof(*h));
    httpsrv_cfg_t cfg = { on_request, NULL, NULL };

    if (!h)
        return -1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->changed, NULL);
    h->poison = -1;
    cfg.arg = h;
    if (httpsrv_start(&h->srv, port, &cfg) < 0) {
        pthread_cond_destroy(&h->changed);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return -1;
    }
    *out = h;
    return 0;
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
    httpsrv_stop(h->srv);
    for (int i = 0; i < h->n; i++)
        free(h->raw[i]);
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
