#include "curlmulti/curlmulti.h"

#include "common/err.h"
#include "common/list.h"
#include "common/wipe.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct pollctx {
    uv_poll_t poll;
    curl_socket_t fd;
    pskgw_curlmulti_t *m;
    bool open; /* poll is initialised (and not closed) */
} pollctx_t;

typedef enum { REQ_ACTIVE = 1, REQ_DONE, REQ_CALLING } req_state_t;

struct pskgw_curlmulti_req {
    pskgw_curlmulti_t *m;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    size_t body_len;
    size_t body_cap; /* bytes of body allocated (a recycled request keeps its buffer) */
    char *resp;
    size_t resp_len;
    size_t resp_cap;
    size_t max_body;
    int too_big;
    char *capture;   /* "name:" of the header to capture, or NULL */
    char header[64]; /* its value */
    int has_header;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode result;
    req_state_t state;
    pskgw_curlmulti_cb cb;
    void *arg;
    pskgw_list_t link;                     /* in active or done */
    struct pskgw_curlmulti_req *next_free; /* m->free_reqs */
};

typedef struct {
    pskgw_list_t head;
    size_t n;
} req_list_t;

struct pskgw_curlmulti {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share; /* NULL unless share_tls_sessions */
    uv_timer_t timer;
    pollctx_t **fds; /* by descriptor number: a context for each, made when fds grows */
    size_t nfds;
    pollctx_t *ctx_blocks[48]; /* the blocks fds[] points into (one per growth), freed with m */
    unsigned nblocks;
    req_list_t active; /* in the multi handle */
    req_list_t done;   /* finished, callback not yet run */
    /* Finished requests kept for the next submits (their easy handle reset, body and response
     * buffers kept, wiped): none allocated per request in steady state. */
    pskgw_curlmulti_req_t *free_reqs;
    unsigned nfree_reqs;
    unsigned busy; /* drive() frames on the stack */
    int closing;
    int torn_down;
    unsigned pending_closes;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void list_push(req_list_t *l, pskgw_curlmulti_req_t *r)
{
    pskgw_list_insert_tail(&l->head, &r->link);
    l->n++;
}

static void list_unlink(req_list_t *l, pskgw_curlmulti_req_t *r)
{
    pskgw_list_remove(&r->link);
    l->n--;
}

/* The oldest request of l, or NULL. */
static pskgw_curlmulti_req_t *list_first(const req_list_t *l)
{
    return pskgw_list_entry(pskgw_list_first(&l->head), pskgw_curlmulti_req_t, link);
}

static void req_free(pskgw_curlmulti_req_t *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    for (struct curl_slist *s = r->hdrs; s; s = s->next)
        pskgw_wipe(s->data, strlen(s->data));
    curl_slist_free_all(r->hdrs);
    pskgw_free_secret(r->body, r->body_cap);
    pskgw_free_secret(r->resp, r->resp_cap);
    free(r->capture);
    pskgw_wipe(r->header, sizeof(r->header));
    free(r);
}

#define FREE_REQS_KEEP 256u

/* After its callback: r goes to m's freelist (headers freed, body and response wiped, the easy
 * handle reset) or, when m closes, it keeps enough or r never got an easy handle, is freed. */
static void req_recycle(pskgw_curlmulti_req_t *r)
{
    pskgw_curlmulti_t *m = r->m;
    CURL *easy = r->easy;
    char *body = r->body;
    size_t body_cap = r->body_cap;
    char *resp = r->resp;
    size_t resp_cap = r->resp_cap;

    if (m->closing || !easy || r->capture || m->nfree_reqs >= FREE_REQS_KEEP) {
        req_free(r);
        return;
    }
    for (struct curl_slist *s = r->hdrs; s; s = s->next)
        pskgw_wipe(s->data, strlen(s->data));
    curl_slist_free_all(r->hdrs);
    if (body)
        pskgw_wipe(body, r->body_len);
    if (resp)
        pskgw_wipe(resp, r->resp_len);
    curl_easy_reset(easy);
    memset(r, 0, sizeof(*r));
    r->m = m;
    r->easy = easy;
    r->body = body;
    r->body_cap = body_cap;
    r->resp = resp;
    r->resp_cap = resp_cap;
    r->next_free = m->free_reqs;
    m->free_reqs = r;
    m->nfree_reqs++;
}

/* A cleared request for m: recycled when there is one (easy handle and buffers kept). */
static pskgw_curlmulti_req_t *req_take(pskgw_curlmulti_t *m)
{
    pskgw_curlmulti_req_t *r = m->free_reqs;

    if (!r) {
        r = calloc(1, sizeof(*r));
        if (r)
            r->m = m;
        return r;
    }
    m->free_reqs = r->next_free;
    m->nfree_reqs--;
    r->next_free = NULL;
    return r;
}

static void free_reqs_drop(pskgw_curlmulti_t *m)
{
    while (m->free_reqs) {
        pskgw_curlmulti_req_t *r = m->free_reqs;
        m->free_reqs = r->next_free;
        req_free(r);
    }
    m->nfree_reqs = 0;
}

/* ---- curl callbacks: they only arm uv handles ------------------------------------------ */

static void on_poll(uv_poll_t *p, int status, int events);

/* Every uv handle of m is counted in pending_closes; m is freed by the last close callback
 * after the teardown, whatever the order the closes complete in. */
static void handle_released(pskgw_curlmulti_t *m)
{
    m->pending_closes--;
    if (m->torn_down && m->pending_closes == 0) {
        void (*cb)(void *) = m->close_cb;
        void *arg = m->close_arg;
        for (unsigned i = 0; i < m->nblocks; i++)
            free(m->ctx_blocks[i]);
        free(m->fds);
        free(m);
        curl_global_cleanup(); /* balances curl_global_init() in pskgw_curlmulti_new() */
        if (cb)
            cb(arg);
    }
}

static void pollctx_closed(uv_handle_t *hd)
{
    pollctx_t *ctx = hd->data;

    handle_released(ctx->m);
}

static void pollctx_detach(pskgw_curlmulti_t *m, curl_socket_t s)
{
    pollctx_t *ctx;

    if (s < 0 || (size_t)s >= m->nfds || !m->fds[s]->open)
        return;
    ctx = m->fds[s];
    ctx->open = false;
    m->pending_closes++;
    uv_close((uv_handle_t *)&ctx->poll, pollctx_closed);
}

static int fds_grow(pskgw_curlmulti_t *m, curl_socket_t s)
{
    size_t n = m->nfds ? m->nfds : 64;
    pollctx_t **fds;
    pollctx_t *block;

    while (n <= (size_t)s)
        n *= 2;
    if (m->nblocks == sizeof(m->ctx_blocks) / sizeof(m->ctx_blocks[0]))
        return -1;
    if (!(block = calloc(n - m->nfds, sizeof(*block))))
        return -1;
    fds = realloc(m->fds, n * sizeof(*fds));
    if (!fds) {
        free(block);
        return -1;
    }
    for (size_t i = m->nfds; i < n; i++) {
        fds[i] = &block[i - m->nfds];
        fds[i]->fd = (curl_socket_t)i;
        fds[i]->m = m;
    }
    m->ctx_blocks[m->nblocks++] = block;
    m->fds = fds;
    m->nfds = n;
    return 0;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    pskgw_curlmulti_t *m = userp;
    pollctx_t *ctx;
    int events = 0;

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        /* Stopped, not closed: curl removes a kept-alive connection's socket when the request
         * ends and adds it again when the next one reuses it (once per request); the context
         * stays with the descriptor number (whichever socket has it next) until the teardown. */
        if (s >= 0 && (size_t)s < m->nfds && m->fds[s]->open)
            uv_poll_stop(&m->fds[s]->poll);
        return 0;
    }
    if (s < 0 || m->torn_down)
        return -1;
    if ((size_t)s >= m->nfds && fds_grow(m, s) != 0)
        return -1;
    ctx = m->fds[s];
    if (!ctx->open) {
        if (uv_poll_init_socket(m->loop, &ctx->poll, s) != 0)
            return -1;
        ctx->poll.data = ctx;
        ctx->open = true;
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
    pskgw_curlmulti_t *m = userp;

    (void)multi;
    if (m->torn_down)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&m->timer);
    else
        uv_timer_start(&m->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    pskgw_curlmulti_req_t *r = userp;
    size_t n = size * nmemb;

    if (!r->max_body)
        return n; /* read and discarded */
    if (r->resp_len + n > r->max_body) {
        r->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (r->resp_len + n + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 512;
        char *p;
        while (cap < r->resp_len + n + 1)
            cap *= 2;
        if (cap > r->max_body + 1)
            cap = r->max_body + 1;
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
    pskgw_curlmulti_req_t *r = userp;
    size_t n = size * nmemb;
    size_t i = r->capture ? strlen(r->capture) : 0;
    size_t o = 0;

    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        r->has_header = 0; /* a new response (after 100-continue) */
        return n;
    }
    if (!r->capture || n < i || strncasecmp(data, r->capture, i) != 0)
        return n;
    while (i < n && (data[i] == ' ' || data[i] == '\t'))
        i++;
    while (i < n && data[i] != '\r' && data[i] != '\n' && o + 1 < sizeof(r->header))
        r->header[o++] = data[i++];
    r->header[o] = '\0';
    r->has_header = 1;
    return n;
}

/* ---- uv callbacks: drive curl, then deliver finished transfers -------------------------- */

static int map_curl(const pskgw_curlmulti_req_t *r)
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

/* Runs r's callback with err (0: its curl result) and frees r. r is in no list. */
static void req_complete(pskgw_curlmulti_req_t *r, int err)
{
    pskgw_curlmulti_result_t res;
    long status = 0;

    memset(&res, 0, sizeof(res));
    res.err = err ? err : map_curl(r);
    if (res.err == 0) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        res.status = status;
    }
    res.body = r->resp ? r->resp : "";
    res.body_len = r->resp_len;
    res.header = r->has_header ? r->header : NULL;
    if (err)
        res.detail = pskgw_strerror(err);
    else if (res.err)
        res.detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
    else
        res.detail = "";
    r->state = REQ_CALLING;
    r->cb(r->arg, &res);
    req_recycle(r);
}

static void finish_teardown(pskgw_curlmulti_t *m);

static void deliver_done(pskgw_curlmulti_t *m)
{
    pskgw_curlmulti_req_t *r;

    while (!m->closing && (r = list_first(&m->done)) != NULL) {
        list_unlink(&m->done, r);
        req_complete(r, 0);
    }
}

static void collect_done(pskgw_curlmulti_t *m)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        pskgw_curlmulti_req_t *r = NULL;
        CURL *easy;
        if (msg->msg != CURLMSG_DONE)
            continue;
        easy = msg->easy_handle;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
        r->result = msg->data.result;
        curl_multi_remove_handle(m->multi, easy); /* msg is invalid from here */
        list_unlink(&m->active, r);
        r->state = REQ_DONE;
        list_push(&m->done, r);
    }
}

static void drive(pskgw_curlmulti_t *m, curl_socket_t s, int flags)
{
    int running = 0;

    m->busy++;
    curl_multi_socket_action(m->multi, s, flags, &running);
    collect_done(m);
    deliver_done(m);
    m->busy--;
    if (m->closing && !m->busy && !m->torn_down)
        finish_teardown(m);
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
    /* ctx may be closed by socket_cb inside curl: only m is used after this point. */
    drive(ctx->m, ctx->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    drive(t->data, CURL_SOCKET_TIMEOUT, 0);
}

/* ---- public ---------------------------------------------------------------------------- */

static int multi_setup(pskgw_curlmulti_t *m, const pskgw_curlmulti_opts_t *opts)
{
    m->multi = curl_multi_init();
    if (!m->multi)
        return PSKGW_ENOMEM;
    /* Each transfer is its own easy handle, and an easy handle keeps TLS sessions to itself:
     * shared here, a connection opened after the first (a pool growing, a reconnect) resumes
     * instead of a full TLS handshake. One thread: no lock callbacks. */
    if (opts->share_tls_sessions) {
        m->share = curl_share_init();
        if (!m->share ||
            curl_share_setopt(m->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
            return PSKGW_ENOMEM;
    }
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (opts->max_connections) {
        curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)opts->max_connections);
        curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, (long)opts->max_connections);
    }
    return 0;
}

int pskgw_curlmulti_new(uv_loop_t *loop, const pskgw_curlmulti_opts_t *opts,
                        pskgw_curlmulti_t **out)
{
    pskgw_curlmulti_t *m;
    int rc;

    if (!loop || !opts || !out)
        return PSKGW_EINVAL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return PSKGW_EINTERNAL;
    m = calloc(1, sizeof(*m));
    if (!m) {
        rc = PSKGW_ENOMEM;
        goto fail;
    }
    m->loop = loop;
    pskgw_list_init(&m->active.head);
    pskgw_list_init(&m->done.head);
    if ((rc = multi_setup(m, opts)) < 0)
        goto fail;
    if (uv_timer_init(loop, &m->timer) != 0) {
        rc = PSKGW_ENOMEM;
        goto fail;
    }
    m->timer.data = m;
    *out = m;
    return 0;

fail:
    if (m && m->share)
        curl_share_cleanup(m->share);
    if (m && m->multi)
        curl_multi_cleanup(m->multi);
    free(m);
    curl_global_cleanup();
    return rc;
}

size_t pskgw_curlmulti_active(const pskgw_curlmulti_t *m)
{
    return m->active.n + m->done.n;
}

/* Copies the header lines, the body and the captured header's name into r. */
static int req_copy(pskgw_curlmulti_req_t *r, const pskgw_curlmulti_req_opts_t *ro)
{
    for (size_t i = 0; i < ro->n_headers; i++) {
        struct curl_slist *s;
        if (!ro->headers[i] || strpbrk(ro->headers[i], "\r\n"))
            return PSKGW_EINVAL;
        s = curl_slist_append(r->hdrs, ro->headers[i]);
        if (!s)
            return PSKGW_ENOMEM;
        r->hdrs = s;
    }
    if (ro->body) {
        if (r->body_cap < ro->body_len + 1) {
            size_t cap = ro->body_len + 1 < 1024 ? 1024 : ro->body_len + 1;
            pskgw_free_secret(r->body, r->body_cap);
            r->body_cap = 0;
            if (!(r->body = malloc(cap)))
                return PSKGW_ENOMEM;
            r->body_cap = cap;
        }
        r->body_len = ro->body_len;
        memcpy(r->body, ro->body, ro->body_len);
        r->body[ro->body_len] = '\0';
    }
    if (ro->capture_header) {
        size_t n = strlen(ro->capture_header);
        r->capture = malloc(n + 2);
        if (!r->capture)
            return PSKGW_ENOMEM;
        memcpy(r->capture, ro->capture_header, n);
        memcpy(r->capture + n, ":", 2);
    }
    return 0;
}

#define SET(opt, val)                                 \
    do {                                              \
        if (curl_easy_setopt(r->easy, opt, val) != 0) \
            return PSKGW_EINVAL;                      \
    } while (0)

static int req_method(pskgw_curlmulti_req_t *r, const pskgw_curlmulti_req_opts_t *ro)
{
    const char *method = ro->method ? ro->method : ro->body ? "POST" : "GET";

    if (ro->body) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDS, r->body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(method, ro->body ? "POST" : "GET") != 0 && strcmp(method, "HEAD") != 0)
        SET(CURLOPT_CUSTOMREQUEST, method);
    return 0;
}

static int req_options(pskgw_curlmulti_req_t *r, const pskgw_curlmulti_req_opts_t *ro)
{
    uint32_t connect_ms = ro->connect_timeout_ms ? ro->connect_timeout_ms : ro->timeout_ms;
    int rc;

    SET(CURLOPT_URL, ro->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    if ((rc = req_method(r, ro)) < 0)
        return rc;
    if (r->hdrs)
        SET(CURLOPT_HTTPHEADER, r->hdrs);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_PRIVATE, (char *)r);
    if (r->m->share)
        SET(CURLOPT_SHARE, r->m->share);
    SET(CURLOPT_TIMEOUT_MS, (long)ro->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    if (ro->flags & PSKGW_CURLMULTI_PIPEWAIT)
        SET(CURLOPT_PIPEWAIT, 1L);
    if (ro->flags & PSKGW_CURLMULTI_KEEPALIVE)
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* Verification is never switched off; these are curl's defaults, set to make that explicit. */
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (ro->ca_file)
        SET(CURLOPT_CAINFO, ro->ca_file);
    return 0;
}

#undef SET

int pskgw_curlmulti_submit(pskgw_curlmulti_t *m, const pskgw_curlmulti_req_opts_t *ro,
                           pskgw_curlmulti_cb cb, void *arg, pskgw_curlmulti_req_t **req_out)
{
    pskgw_curlmulti_req_t *r;
    int rc;

    if (!m || !ro || !ro->url || !cb || !ro->timeout_ms || (ro->n_headers && !ro->headers))
        return PSKGW_EINVAL;
    if (m->closing)
        return PSKGW_ECLOSED;
    r = req_take(m);
    if (!r)
        return PSKGW_ENOMEM;
    r->cb = cb;
    r->arg = arg;
    r->max_body = ro->max_body;
    if ((rc = req_copy(r, ro)) < 0)
        goto fail;
    rc = PSKGW_ENOMEM;
    if (!r->easy && !(r->easy = curl_easy_init()))
        goto fail;
    if ((rc = req_options(r, ro)) < 0)
        goto fail;
    if (curl_multi_add_handle(m->multi, r->easy) != CURLM_OK) {
        rc = PSKGW_ENOMEM;
        goto fail;
    }
    r->state = REQ_ACTIVE;
    list_push(&m->active, r);
    if (req_out)
        *req_out = r;
    return 0;

fail:
    req_free(r);
    return rc;
}

void pskgw_curlmulti_cancel(pskgw_curlmulti_req_t *r)
{
    pskgw_curlmulti_t *m;

    if (!r || r->state == REQ_CALLING)
        return;
    m = r->m;
    if (r->state == REQ_ACTIVE) {
        list_unlink(&m->active, r);
        curl_multi_remove_handle(m->multi, r->easy);
    } else {
        list_unlink(&m->done, r);
    }
    /* Before the callback: one that closes m may clean up the share handle, which curl refuses
     * while an easy handle still uses it. */
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
    req_complete(r, PSKGW_ECANCELED);
}

static void timer_closed(uv_handle_t *hd)
{
    handle_released(hd->data);
}

static void finish_teardown(pskgw_curlmulti_t *m)
{
    free_reqs_drop(m); /* their easy handles may still point at the share handle */
    /* May call socket_cb (CURL_POLL_REMOVE) for cached connections: that only stops polls. */
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
    if (m->share)
        curl_share_cleanup(m->share); /* no easy handle is left to use it */
    m->share = NULL;
    m->torn_down = 1;
    for (size_t i = 0; i < m->nfds; i++)
        pollctx_detach(m, (curl_socket_t)i);
    free(m->fds);
    m->fds = NULL;
    m->nfds = 0;
    m->pending_closes++;
    uv_close((uv_handle_t *)&m->timer, timer_closed);
}

void pskgw_curlmulti_close(pskgw_curlmulti_t *m, void (*cb)(void *arg), void *arg)
{
    pskgw_curlmulti_req_t *r;

    if (!m || m->closing)
        return;
    m->closing = 1;
    m->close_cb = cb;
    m->close_arg = arg;
    /* Finished ones (their callback not run yet) first, then the rest, each in submit order.
     * A callback may cancel others: the lists are read afresh each time. */
    while ((r = list_first(&m->done)) != NULL || (r = list_first(&m->active)) != NULL)
        pskgw_curlmulti_cancel(r);
    if (!m->busy)
        finish_teardown(m);
}
