#include "upstream/http.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct pollctx {
    uv_poll_t poll;
    curl_socket_t fd;
    pskgw_http_t *h;
} pollctx_t;

typedef enum { REQ_ACTIVE = 1, REQ_DONE } req_state_t;

struct pskgw_http_req {
    pskgw_http_t *h;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    size_t body_len;
    char *resp;
    size_t resp_len;
    size_t resp_cap;
    int too_big;
    char retry_after[64];
    int has_retry_after;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode result;
    req_state_t state;
    pskgw_http_cb cb;
    void *arg;
    pskgw_http_req_t *prev;
    pskgw_http_req_t *next;
};

typedef struct {
    pskgw_http_req_t *head;
    pskgw_http_req_t *tail;
    size_t n;
} req_list_t;

struct pskgw_http {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share; /* the TLS session cache of every transfer: new connections resume */
    uv_timer_t timer;
    pollctx_t **fds;
    size_t nfds;
    req_list_t active;
    req_list_t done;
    char *ca_file;
    size_t max_body;
    unsigned busy;
    int closing;
    int torn_down;
    unsigned pending_closes;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void list_push(req_list_t *l, pskgw_http_req_t *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

static void list_unlink(req_list_t *l, pskgw_http_req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->n--;
}

static void req_free(pskgw_http_req_t *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    /* The Authorization header holds the token. */
    for (struct curl_slist *s = r->hdrs; s; s = s->next)
        pskgw_wipe(s->data, strlen(s->data));
    curl_slist_free_all(r->hdrs);
    pskgw_free_secret(r->body, r->body_len);
    pskgw_free_secret(r->resp, r->resp_cap);
    pskgw_wipe(r->retry_after, sizeof(r->retry_after));
    free(r);
}

/* ---- curl callbacks: they only arm uv handles ------------------------------------------ */

static void on_poll(uv_poll_t *p, int status, int events);

/* Every uv handle of h is counted in pending_closes; h is freed by the last close callback
 * after the teardown, whatever the order the closes complete in. */
static void handle_released(pskgw_http_t *h)
{
    h->pending_closes--;
    if (h->torn_down && h->pending_closes == 0) {
        void (*cb)(void *) = h->close_cb;
        void *arg = h->close_arg;
        free(h);
        if (cb)
            cb(arg);
    }
}

static void pollctx_closed(uv_handle_t *hd)
{
    pollctx_t *ctx = hd->data;
    pskgw_http_t *h = ctx->h;

    free(ctx);
    handle_released(h);
}

static void pollctx_detach(pskgw_http_t *h, curl_socket_t s)
{
    pollctx_t *ctx;

    if (s < 0 || (size_t)s >= h->nfds || !h->fds[s])
        return;
    ctx = h->fds[s];
    h->fds[s] = NULL;
    h->pending_closes++;
    uv_close((uv_handle_t *)&ctx->poll, pollctx_closed);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    pskgw_http_t *h = userp;
    pollctx_t *ctx;
    int events = 0;

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        pollctx_detach(h, s);
        return 0;
    }
    if (s < 0 || h->torn_down)
        return -1;
    if ((size_t)s >= h->nfds) {
        size_t n = h->nfds ? h->nfds : 64;
        pollctx_t **fds;
        while (n <= (size_t)s)
            n *= 2;
        fds = realloc(h->fds, n * sizeof(*fds));
        if (!fds)
            return -1;
        memset(fds + h->nfds, 0, (n - h->nfds) * sizeof(*fds));
        h->fds = fds;
        h->nfds = n;
    }
    ctx = h->fds[s];
    if (!ctx) {
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return -1;
        if (uv_poll_init_socket(h->loop, &ctx->poll, s) != 0) {
            free(ctx);
            return -1;
        }
        ctx->fd = s;
        ctx->h = h;
        ctx->poll.data = ctx;
        h->fds[s] = ctx;
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    if (uv_poll_start(&ctx->poll, events, on_poll) != 0)
        return -1;
    return 0;
}

static void on_timer(uv_timer_t *t);

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    pskgw_http_t *h = userp;

    (void)multi;
    if (h->torn_down)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    pskgw_http_req_t *r = userp;
    size_t n = size * nmemb;

    if (r->resp_len + n > r->h->max_body) {
        r->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (r->resp_len + n + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 512;
        char *p;
        while (cap < r->resp_len + n + 1)
            cap *= 2;
        if (cap > r->h->max_body + 1)
            cap = r->h->max_body + 1;
        p = malloc(cap);
        if (!p)
            return 0;
        if (r->resp_len)
            memcpy(p, r->resp, r->resp_len);
        pskgw_free_secret(r->resp, r->resp_cap);
        r->resp = p;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, data, n);
    r->resp_len += n;
    r->resp[r->resp_len] = '\0';
    return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    pskgw_http_req_t *r = userp;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    size_t i = sizeof(name) - 1;
    size_t o = 0;

    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        r->has_retry_after = 0; /* a new response (after 100-continue) */
        return n;
    }
    if (n < i || strncasecmp(data, name, i) != 0)
        return n;
    while (i < n && (data[i] == ' ' || data[i] == '\t'))
        i++;
    while (i < n && data[i] != '\r' && data[i] != '\n' && o + 1 < sizeof(r->retry_after))
        r->retry_after[o++] = data[i++];
    r->retry_after[o] = '\0';
    r->has_retry_after = 1;
    return n;
}

/* ---- uv callbacks: drive curl, then deliver finished transfers -------------------------- */

static int map_curl(const pskgw_http_req_t *r)
{
    switch (r->result) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return PSKGW_ETIMEOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
        return PSKGW_ETLS;
    case CURLE_WRITE_ERROR:
        return r->too_big ? PSKGW_ETOOBIG : PSKGW_ENOMEM;
    case CURLE_OUT_OF_MEMORY:
        return PSKGW_ENOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return PSKGW_EINVAL;
    default:
        return PSKGW_EUNAVAIL;
    }
}

static void finish_teardown(pskgw_http_t *h);

static void deliver_done(pskgw_http_t *h)
{
    pskgw_http_req_t *r;

    while (!h->closing && (r = h->done.head) != NULL) {
        pskgw_http_result_t res;
        long status = 0;

        list_unlink(&h->done, r);
        memset(&res, 0, sizeof(res));
        res.transport_err = map_curl(r);
        if (res.transport_err == 0) {
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
            res.status = status;
        }
        res.body = r->resp ? r->resp : "";
        res.body_len = r->resp_len;
        res.retry_after = r->has_retry_after ? r->retry_after : NULL;
        res.detail =
            res.transport_err ? (r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result)) : "";
        r->cb(r->arg, &res);
        req_free(r);
    }
}

static void collect_done(pskgw_http_t *h)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        pskgw_http_req_t *r = NULL;
        CURL *easy;
        if (msg->msg != CURLMSG_DONE)
            continue;
        easy = msg->easy_handle;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
        r->result = msg->data.result;
        curl_multi_remove_handle(h->multi, easy); /* msg is invalid from here */
        list_unlink(&h->active, r);
        r->state = REQ_DONE;
        list_push(&h->done, r);
    }
}

static void drive(pskgw_http_t *h, curl_socket_t s, int flags)
{
    int running = 0;

    h->busy++;
    curl_multi_socket_action(h->multi, s, flags, &running);
    collect_done(h);
    deliver_done(h);
    h->busy--;
    if (h->closing && !h->busy && !h->torn_down)
        finish_teardown(h);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    pollctx_t *ctx = p->data;
    int flags = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    /* ctx may be closed by socket_cb inside curl: only h is used after this point. */
    drive(ctx->h, ctx->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    drive(t->data, CURL_SOCKET_TIMEOUT, 0);
}

/* ---- public ---------------------------------------------------------------------------- */

int pskgw_http_new(uv_loop_t *loop, const pskgw_http_opts_t *opts, pskgw_http_t **out)
{
    pskgw_http_t *h;

    if (!loop || !opts || !out || !opts->max_body)
        return PSKGW_EINVAL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return PSKGW_ENOMEM;
    h->loop = loop;
    h->max_body = opts->max_body;
    if (opts->ca_file) {
        h->ca_file = strdup(opts->ca_file);
        if (!h->ca_file)
            goto fail;
    }
    h->multi = curl_multi_init();
    if (!h->multi)
        goto fail;
    /* Each transfer is its own easy handle, and an easy handle keeps TLS sessions to itself:
     * shared here, a connection opened after the first (a pool growing, a reconnect) resumes
     * instead of a full TLS handshake. One thread: no lock callbacks. */
    h->share = curl_share_init();
    if (!h->share ||
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        goto fail;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (opts->max_connections) {
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)opts->max_connections);
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)opts->max_connections);
    }
    if (uv_timer_init(loop, &h->timer) != 0)
        goto fail;
    h->timer.data = h;
    *out = h;
    return 0;

fail:
    if (h->share)
        curl_share_cleanup(h->share);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    free(h->ca_file);
    free(h);
    return PSKGW_ENOMEM;
}

size_t pskgw_http_active(const pskgw_http_t *h)
{
    return h->active.n + h->done.n;
}

int pskgw_http_post(pskgw_http_t *h, const char *url, const char *auth, const char *body,
                    uint32_t timeout_ms, pskgw_http_cb cb, void *arg, pskgw_http_req_t **req_out)
{
    pskgw_http_req_t *r;
    struct curl_slist *s;
    char *line = NULL;
    int rc = PSKGW_ENOMEM;

    if (!h || !url || !body || !cb || !timeout_ms)
        return PSKGW_EINVAL;
    if (h->closing)
        return PSKGW_ECLOSED;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PSKGW_ENOMEM;
    r->h = h;
    r->cb = cb;
    r->arg = arg;
    r->body_len = strlen(body);
    r->body = malloc(r->body_len + 1);
    if (!r->body)
        goto fail;
    memcpy(r->body, body, r->body_len + 1);
    static const char *const fixed[] = { "Content-Type: application/json",
                                         "Accept: application/json", "Expect:", NULL };
    for (size_t i = 0; fixed[i]; i++) {
        s = curl_slist_append(r->hdrs, fixed[i]);
        if (!s)
            goto fail;
        r->hdrs = s;
    }
    if (auth) {
        size_t n = strlen("Authorization: ") + strlen(auth) + 1;
        line = malloc(n);
        if (!line)
            goto fail;
        memcpy(line, "Authorization: ", strlen("Authorization: "));
        memcpy(line + strlen("Authorization: "), auth, strlen(auth) + 1);
        s = curl_slist_append(r->hdrs, line);
        pskgw_free_secret(line, n);
        if (!s)
            goto fail;
        r->hdrs = s;
    }
    r->easy = curl_easy_init();
    if (!r->easy)
        goto fail;
    rc = PSKGW_EINVAL;
#define SET(opt, val)                                 \
    do {                                              \
        if (curl_easy_setopt(r->easy, opt, val) != 0) \
            goto fail;                                \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, r->body);
    SET(CURLOPT_POSTFIELDSIZE, (long)r->body_len);
    SET(CURLOPT_HTTPHEADER, r->hdrs);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_PRIVATE, (char *)r);
    SET(CURLOPT_SHARE, h->share);
    SET(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SET(CURLOPT_PIPEWAIT, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* Verification is never switched off; these are curl's defaults, set to make that explicit. */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file)
        SET(CURLOPT_CAINFO, h->ca_file);
#undef SET
    if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
        rc = PSKGW_ENOMEM;
        goto fail;
    }
    r->state = REQ_ACTIVE;
    list_push(&h->active, r);
    if (req_out)
        *req_out = r;
    return 0;

fail:
    req_free(r);
    return rc;
}

void pskgw_http_cancel(pskgw_http_req_t *r)
{
    pskgw_http_t *h;

    if (!r)
        return;
    h = r->h;
    if (r->state == REQ_ACTIVE) {
        list_unlink(&h->active, r);
        curl_multi_remove_handle(h->multi, r->easy);
    } else {
        list_unlink(&h->done, r);
    }
    req_free(r);
}

static void timer_closed(uv_handle_t *hd)
{
    handle_released(hd->data);
}

static void finish_teardown(pskgw_http_t *h)
{
    pskgw_http_req_t *r;

    while ((r = h->active.head) != NULL) {
        list_unlink(&h->active, r);
        curl_multi_remove_handle(h->multi, r->easy);
        req_free(r);
    }
    while ((r = h->done.head) != NULL) {
        list_unlink(&h->done, r);
        req_free(r);
    }
    /* May call socket_cb (CURL_POLL_REMOVE) for cached connections: that only closes polls. */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    curl_share_cleanup(h->share); /* no easy handle is left to use it */
    h->share = NULL;
    h->torn_down = 1;
    for (size_t i = 0; i < h->nfds; i++)
        pollctx_detach(h, (curl_socket_t)i);
    free(h->fds);
    h->fds = NULL;
    h->nfds = 0;
    free(h->ca_file);
    h->ca_file = NULL;
    h->pending_closes++;
    uv_close((uv_handle_t *)&h->timer, timer_closed);
}

void pskgw_http_close(pskgw_http_t *h, void (*cb)(void *arg), void *arg)
{
    if (!h || h->closing)
        return;
    h->closing = 1;
    h->close_cb = cb;
    h->close_arg = arg;
    if (!h->busy)
        finish_teardown(h);
}
