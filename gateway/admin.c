#include "gateway/admin.h"
#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "common/secmem.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_ARGS 8

#define STARTING_JSON "{\"ready\":false,\"status\":\"starting\",\"failing\":[],\"parts\":[]}"

struct pskgw_admin {
    struct MHD_Daemon *daemon;
    struct MHD_Daemon *old_daemon; /* moved away from by a rebind, stopped by pskgw_admin_reap */
    uint64_t old_since_ms;
    uint16_t port;
    pthread_mutex_t lock; /* guards what follows: written by the loop, read by MHD's thread */
    char *text;
    size_t len;
    bool ready;
    char *ready_json; /* NULL: nothing published yet */
    uint64_t beat_ms; /* monotonic time of the last publish (or of the start) */
    uint64_t stall_ms;
    pskgw_list_t waiting; /* /admin/ requests for the loop (pskgw_admin_req_t), oldest first */
    char *token;          /* don't-dump memory (common/secmem), wiped on free; NULL: none */
    size_t token_len;
    pskgw_admin_wake_cb wake;
    void *wake_arg;
};

enum { REQ_NEW, REQ_WAITING, REQ_ANSWERED };

struct pskgw_admin_req {
    pskgw_admin_t *admin;
    struct MHD_Daemon *daemon; /* whose connection conn is */
    struct MHD_Connection *conn;
    pskgw_list_t link; /* admin->waiting, or the loop's batch taken from it */
    int state;
    char method[8];
    char path[96];
    char peer[64];
    char *keys[REQ_ARGS];
    char *values[REQ_ARGS];
    size_t nargs;
    unsigned status;
    char *body;
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

bool pskgw_admin_token_ok(const char *expected, size_t expected_len, const char *presented)
{
    size_t n = strlen(presented);
    unsigned char diff = n != expected_len;

    /* Time depends on the expected length only, never on where the bytes differ. */
    for (size_t i = 0; i < expected_len; i++)
        diff |= (unsigned char)expected[i] ^ (unsigned char)(i < n ? presented[i] : 0);
    return diff == 0;
}

static bool authorized(pskgw_admin_t *admin, struct MHD_Connection *conn)
{
    const char *h =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    bool ok;

    pthread_mutex_lock(&admin->lock); /* the loop may replace the token (reload) */
    if (!admin->token)
        ok = true;
    else if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        ok = false;
    else
        ok = pskgw_admin_token_ok(admin->token, admin->token_len, h + 7);
    pthread_mutex_unlock(&admin->lock);
    return ok;
}

static void peer_of(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    char ip[INET6_ADDRSTRLEN] = "?";

    snprintf(out, size, "?");
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(out, size, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(out, size, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    }
}

static enum MHD_Result keep_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    pskgw_admin_req_t *req = cls;

    (void)kind;
    if (req->nargs == REQ_ARGS)
        return MHD_NO;
    req->keys[req->nargs] = strdup(key);
    req->values[req->nargs] = strdup(value ? value : "");
    if (!req->keys[req->nargs] || !req->values[req->nargs]) {
        free(req->keys[req->nargs]);
        free(req->values[req->nargs]);
        return MHD_NO;
    }
    req->nargs++;
    return MHD_YES;
}

static void req_free(pskgw_admin_req_t *req)
{
    for (size_t i = 0; i < req->nargs; i++) {
        free(req->keys[i]);
        free(req->values[i]);
    }
    free(req->body);
    free(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    if (*req_cls) {
        req_free(*req_cls);
        *req_cls = NULL;
    }
}

static pskgw_admin_req_t *req_new(pskgw_admin_t *admin, struct MHD_Connection *conn,
                                  const char *url, const char *method)
{
    pskgw_admin_req_t *req = calloc(1, sizeof(*req));
    const union MHD_ConnectionInfo *ci;

    if (!req)
        return NULL;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
    req->admin = admin;
    req->daemon = ci ? ci->daemon : NULL;
    req->conn = conn;
    snprintf(req->method, sizeof(req->method), "%s", method);
    snprintf(req->path, sizeof(req->path), "%s", url);
    peer_of(conn, req->peer, sizeof(req->peer));
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, keep_arg, req);
    return req;
}

/* An /admin/ request: authorized, then handed to the loop (suspended until it answers). */
static enum MHD_Result admin_route(pskgw_admin_t *admin, struct MHD_Connection *conn,
                                   const char *url, const char *method, size_t *upload_size,
                                   void **req_cls)
{
    pskgw_admin_req_t *req = *req_cls;
    pskgw_admin_wake_cb wake;
    void *wake_arg;

    if (!req) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
            return reply(conn, 405, "text/plain", strdup("method not allowed\n"), 19);
        if (!authorized(admin, conn))
            return reply(conn, 401, "application/json", strdup("{\"error\":\"unauthorized\"}\n"),
                         25);
        if (!admin->wake)
            return reply(conn, 503, "application/json", strdup("{\"error\":\"no admin routes\"}\n"),
                         28);
        req = req_new(admin, conn, url, method);
        if (!req)
            return MHD_NO;
        *req_cls = req;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* no route reads a body: the query says everything */
        return MHD_YES;
    }
    if (req->state == REQ_ANSWERED) {
        char *body = req->body ? req->body : strdup("{}\n");

        req->body = NULL;
        if (!body)
            return MHD_NO;
        return reply(conn, req->status, "application/json", body, strlen(body));
    }
    pthread_mutex_lock(&admin->lock);
    wake = admin->wake;
    wake_arg = admin->wake_arg;
    if (wake) {
        req->state = REQ_WAITING;
        pskgw_list_insert_tail(&admin->waiting, &req->link);
        /* Suspended before the lock is released: the loop may answer (and resume) at once. */
        MHD_suspend_connection(conn);
    }
    pthread_mutex_unlock(&admin->lock);
    if (!wake)
        return reply(conn, 503, "application/json", strdup("{\"error\":\"stopping\"}\n"), 20);
    wake(wake_arg);
    return MHD_YES;
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
    if (strncmp(url, "/admin/", 7) == 0)
        return admin_route(admin, conn, url, method, upload_data_size, req_cls);
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
    return pskgw_admin_start_opts(address, port, NULL, out);
}

static void take_waiting(pskgw_admin_t *admin, pskgw_list_t *batch);
static pskgw_admin_req_t *batch_next(pskgw_list_t *batch);

/* A daemon of admin's on address:port: 0, PSKGW_EINVAL (not an IP literal), PSKGW_EEXISTS. */
static int start_daemon(pskgw_admin_t *admin, const char *address, uint16_t port,
                        struct MHD_Daemon **out, uint16_t *bound)
{
    struct sockaddr_in6 sa6;
    struct sockaddr_in sa4;
    struct sockaddr *sa;
    struct MHD_Daemon *daemon;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;

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
    /* At most 8 of the 64 connections per source address: one peer holding idle connections
     * must not leave load balancers' /health and Prometheus's /metrics unanswered. */
    daemon = MHD_start_daemon(flags, port, NULL, NULL, handle, admin, MHD_OPTION_SOCK_ADDR, sa,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                              MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)8,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, admin, MHD_OPTION_END);
    if (!daemon)
        return PSKGW_EEXISTS;
    info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    *bound = info ? info->port : port;
    *out = daemon;
    return 0;
}

int pskgw_admin_start_opts(const char *address, uint16_t port, const pskgw_admin_opts_t *opts,
                           pskgw_admin_t **out)
{
    pskgw_admin_t *admin;
    struct in6_addr probe;
    int rc;

    if (inet_pton(AF_INET, address, &probe) != 1 && inet_pton(AF_INET6, address, &probe) != 1)
        return PSKGW_EINVAL;
    admin = calloc(1, sizeof(*admin));
    if (!admin)
        return PSKGW_ENOMEM;
    pskgw_list_init(&admin->waiting);
    if (opts && opts->token) {
        admin->token = pskgw_secmem_alloc(opts->token_len + 1);
        if (!admin->token) {
            free(admin);
            return PSKGW_ENOMEM;
        }
        memcpy(admin->token, opts->token, opts->token_len);
        admin->token[opts->token_len] = '\0';
        admin->token_len = opts->token_len;
    }
    if (opts) {
        admin->wake = opts->wake;
        admin->wake_arg = opts->wake_arg;
    }
    pthread_mutex_init(&admin->lock, NULL);
    admin->stall_ms = PSKGW_ADMIN_STALL_MS;
    admin->beat_ms = mono_ms();
    rc = start_daemon(admin, address, port, &admin->daemon, &admin->port);
    if (rc < 0) {
        pthread_mutex_destroy(&admin->lock);
        pskgw_secmem_free(admin->token); /* wipes it */
        free(admin);
        return rc;
    }
    *out = admin;
    return 0;
}

/* The retired daemon stops: its requests still waiting for the loop get 503 first (their
 * connections are its own). */
static void stop_old(pskgw_admin_t *admin)
{
    pskgw_list_t batch, keep;
    pskgw_admin_req_t *req;

    if (!admin->old_daemon)
        return;
    pskgw_list_init(&keep);
    take_waiting(admin, &batch);
    while ((req = batch_next(&batch)) != NULL) {
        if (req->daemon == admin->old_daemon)
            pskgw_admin_reply(req, 503, "{\"error\":\"endpoint moved\"}\n");
        else
            pskgw_list_insert_tail(&keep, &req->link);
    }
    pthread_mutex_lock(&admin->lock);
    while ((req = batch_next(&keep)) != NULL) /* a wake is pending for them */
        pskgw_list_insert_tail(&admin->waiting, &req->link);
    pthread_mutex_unlock(&admin->lock);
    MHD_stop_daemon(admin->old_daemon);
    admin->old_daemon = NULL;
}

int pskgw_admin_rebind(pskgw_admin_t *admin, const char *address, uint16_t port)
{
    struct MHD_Daemon *daemon = NULL;
    uint16_t bound = 0;
    MHD_socket fd;
    int rc = start_daemon(admin, address, port, &daemon, &bound);

    if (rc < 0)
        return rc;
    stop_old(admin); /* a move still finishing */
    /* the old address stops accepting at once; its open connections get their answers */
    fd = MHD_quiesce_daemon(admin->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    admin->old_daemon = admin->daemon;
    admin->old_since_ms = mono_ms();
    admin->daemon = daemon;
    admin->port = bound;
    return 0;
}

void pskgw_admin_reap(pskgw_admin_t *admin)
{
    if (admin && admin->old_daemon && mono_ms() - admin->old_since_ms >= PSKGW_ADMIN_MOVE_GRACE_MS)
        stop_old(admin);
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

int pskgw_admin_set_token(pskgw_admin_t *admin, const char *token, size_t len)
{
    char *copy = NULL;
    char *old;

    if (token) {
        copy = pskgw_secmem_alloc(len + 1);
        if (!copy)
            return PSKGW_ENOMEM;
        memcpy(copy, token, len);
        copy[len] = '\0';
    }
    pthread_mutex_lock(&admin->lock);
    old = admin->token;
    admin->token = copy;
    admin->token_len = copy ? len : 0;
    pthread_mutex_unlock(&admin->lock);
    pskgw_secmem_free(old); /* wipes it */
    return 0;
}

void pskgw_admin_stop_routes(pskgw_admin_t *admin)
{
    pthread_mutex_lock(&admin->lock);
    admin->wake = NULL;
    admin->wake_arg = NULL;
    pthread_mutex_unlock(&admin->lock);
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

/* Move every waiting request into *batch (initialised here), in order, under the lock. */
static void take_waiting(pskgw_admin_t *admin, pskgw_list_t *batch)
{
    pskgw_list_t *first;

    pskgw_list_init(batch);
    pthread_mutex_lock(&admin->lock);
    while ((first = pskgw_list_first(&admin->waiting)) != NULL) {
        pskgw_list_remove(first);
        pskgw_list_insert_tail(batch, first);
    }
    pthread_mutex_unlock(&admin->lock);
}

/* The next request of a batch, taken out of it; NULL when it is empty. */
static pskgw_admin_req_t *batch_next(pskgw_list_t *batch)
{
    pskgw_list_t *first = pskgw_list_first(batch);

    if (!first)
        return NULL;
    pskgw_list_remove(first);
    return pskgw_container_of(first, pskgw_admin_req_t, link);
}

void pskgw_admin_serve(pskgw_admin_t *admin, pskgw_admin_handler_cb handler, void *arg)
{
    pskgw_list_t batch;
    pskgw_admin_req_t *req;

    take_waiting(admin, &batch);
    while ((req = batch_next(&batch)) != NULL)
        handler(arg, req);
}

const char *pskgw_admin_req_method(const pskgw_admin_req_t *req)
{
    return req->method;
}

const char *pskgw_admin_req_path(const pskgw_admin_req_t *req)
{
    return req->path;
}

const char *pskgw_admin_req_arg(const pskgw_admin_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nargs; i++) {
        if (strcmp(req->keys[i], name) == 0)
            return req->values[i];
    }
    return NULL;
}

const char *pskgw_admin_req_peer(const pskgw_admin_req_t *req)
{
    return req->peer;
}

void pskgw_admin_reply(pskgw_admin_req_t *req, unsigned status, const char *json)
{
    free(req->body);
    req->body = strdup(json ? json : "{}\n"); /* NULL: an empty "{}" answer (out of memory) */
    req->status = status;
    req->state = REQ_ANSWERED;
    MHD_resume_connection(req->conn);
}

void pskgw_admin_free(pskgw_admin_t *admin)
{
    pskgw_list_t batch;
    pskgw_admin_req_t *req;

    if (!admin)
        return;
    take_waiting(admin, &batch);
    while ((req = batch_next(&batch)) != NULL)
        pskgw_admin_reply(req, 503, "{\"error\":\"stopping\"}\n");
    if (admin->old_daemon)
        MHD_stop_daemon(admin->old_daemon);
    MHD_stop_daemon(admin->daemon);
    pskgw_secmem_free(admin->token); /* wipes it */
    pthread_mutex_destroy(&admin->lock);
    free(admin->text);
    free(admin->ready_json);
    free(admin);
}
