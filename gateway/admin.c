#include "gateway/admin.h"
#include "common/err.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define STARTING_JSON "{\"ready\":false,\"status\":\"starting\",\"failing\":[],\"parts\":[]}"

struct pskgw_admin {
    struct MHD_Daemon *daemon;
    uint16_t port;
    pthread_mutex_t lock; /* guards what follows: written by the loop, read by MHD's thread */
    char *text;
    size_t len;
    bool ready;
    char *ready_json; /* NULL: nothing published yet */
    uint64_t beat_ms; /* monotonic time of the last publish (or of the start) */
    uint64_t stall_ms;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char *text_copy(const char *s, size_t len)
{
    char *c = malloc(len + 1);

    if (c) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result r;

    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Liveness: the loop published within stall_ms. */
static enum MHD_Result health(pskgw_admin_t *admin, struct MHD_Connection *conn)
{
    uint64_t now = mono_ms();
    uint64_t since;
    uint64_t limit;
    char msg[96];
    int n;

    pthread_mutex_lock(&admin->lock);
    since = now > admin->beat_ms ? now - admin->beat_ms : 0;
    limit = admin->stall_ms;
    pthread_mutex_unlock(&admin->lock);
    if (since <= limit)
        return reply(conn, 200, "text/plain", strdup("ok\n"), 3);
    n = snprintf(msg, sizeof(msg), "loop stalled: no progress for %llu ms\n",
                 (unsigned long long)since);
    return reply(conn, 503, "text/plain", strdup(msg), (size_t)n);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    pskgw_admin_t *admin = cls;
    char *body;
    size_t len;
    bool ready;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, 405, "text/plain", strdup("method not allowed\n"), 19);
    if (strcmp(url, "/metrics") == 0) {
        pthread_mutex_lock(&admin->lock);
        len = admin->len;
        body = malloc(len + 1);
        if (body)
            memcpy(body, admin->text ? admin->text : "", len);
        pthread_mutex_unlock(&admin->lock);
        if (!body)
            return MHD_NO;
        return reply(conn, 200, "text/plain; version=0.0.4", body, len);
    }
    if (strcmp(url, "/health") == 0 || strcmp(url, "/healthz") == 0)
        return health(admin, conn);
    if (strcmp(url, "/ready") == 0) {
        pthread_mutex_lock(&admin->lock);
        ready = admin->ready;
        body = admin->ready_json ? strdup(admin->ready_json) : strdup(STARTING_JSON);
        pthread_mutex_unlock(&admin->lock);
        if (!body)
            return MHD_NO;
        return reply(conn, ready ? 200 : 503, "application/json", body, strlen(body));
    }
    return reply(conn, 404, "text/plain", strdup("not found\n"), 10);
}

int pskgw_admin_start(const char *address, uint16_t port, pskgw_admin_t **out)
{
    struct sockaddr_in6 sa6;
    struct sockaddr_in sa4;
    struct sockaddr *sa;
    pskgw_admin_t *admin;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;

    memset(&sa4, 0, sizeof(sa4));
    memset(&sa6, 0, sizeof(sa6));
    if (inet_pton(AF_INET, address, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons(port);
        sa = (struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, address, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons(port);
        sa = (struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        return PSKGW_EINVAL;
    }
    admin = calloc(1, sizeof(*admin));
    if (!admin)
        return PSKGW_ENOMEM;
    pthread_mutex_init(&admin->lock, NULL);
    admin->stall_ms = PSKGW_ADMIN_STALL_MS;
    admin->beat_ms = mono_ms();
    admin->daemon = MHD_start_daemon(flags, port, NULL, NULL, handle, admin, MHD_OPTION_SOCK_ADDR,
                                     sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!admin->daemon) {
        pthread_mutex_destroy(&admin->lock);
        free(admin);
        return PSKGW_EEXISTS;
    }
    info = MHD_get_daemon_info(admin->daemon, MHD_DAEMON_INFO_BIND_PORT);
    admin->port = info ? info->port : port;
    *out = admin;
    return 0;
}

uint16_t pskgw_admin_port(const pskgw_admin_t *admin)
{
    return admin->port;
}

int pskgw_admin_publish(pskgw_admin_t *admin, const char *text, size_t len, bool ready,
                        const char *ready_json)
{
    char *copy = text_copy(text, len);
    char *json = text_copy(ready_json, strlen(ready_json));

    if (!copy || !json) {
        free(copy);
        free(json);
        return PSKGW_ENOMEM;
    }
    pthread_mutex_lock(&admin->lock);
    free(admin->text);
    free(admin->ready_json);
    admin->text = copy;
    admin->len = len;
    admin->ready = ready;
    admin->ready_json = json;
    admin->beat_ms = mono_ms();
    pthread_mutex_unlock(&admin->lock);
    return 0;
}

void pskgw_admin_beat(pskgw_admin_t *admin)
{
    pthread_mutex_lock(&admin->lock);
    admin->beat_ms = mono_ms();
    pthread_mutex_unlock(&admin->lock);
}

void pskgw_admin_set_stall_ms(pskgw_admin_t *admin, uint64_t ms)
{
    pthread_mutex_lock(&admin->lock);
    admin->stall_ms = ms;
    pthread_mutex_unlock(&admin->lock);
}

void pskgw_admin_free(pskgw_admin_t *admin)
{
    if (!admin)
        return;
    MHD_stop_daemon(admin->daemon);
    pthread_mutex_destroy(&admin->lock);
    free(admin->text);
    free(admin->ready_json);
    free(admin);
}
