/* http sink: POST the JSON envelope to a URL with libcurl multi driven by the libuv loop (the
 * pattern of curl's docs/examples/multi-uv.c): curl's socket callback only arms uv_poll
 * handles, its timer callback only arms a uv_timer; curl is entered from those uv callbacks.
 * Connections are kept alive in the multi handle's cache.
 *
 * Results: 2xx delivered; 408, 429, 5xx, 3xx and transport errors/timeouts transient (retried);
 * other 4xx permanent (PSKGW_EBADREQ: dead letter).
 */
#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "sinks/internal.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct http_sink http_sink_t;

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    http_sink_t *h;
    struct sock_ctx *next;
} sock_ctx_t;

typedef struct req {
    struct req *prev;
    struct req *next;
    http_sink_t *h;
    CURL *easy;
    pskgw_msg_t *msg;
    void *token;
} req_t;

struct http_sink {
    pskgw_sink_t *core;
    uv_loop_t *loop;
    CURLM *multi;
    char *url;
    struct curl_slist *headers;
    long timeout_ms;
    uv_timer_t timer;
    sock_ctx_t *socks; /* live poll handles */
    req_t *reqs;
    bool closing;
    unsigned pending; /* handle closes outstanding during close */
};

static void check_done(http_sink_t *h);

static void release(http_sink_t *h)
{
    pskgw_sink_t *core;

    if (--h->pending > 0)
        return;
    core = h->core;
    free(h);
    curl_global_cleanup(); /* balances curl_global_init() in http_create() */
    pskgw_sink_backend_closed(core);
}

static void sock_closed(uv_handle_t *hd)
{
    sock_ctx_t *s = hd->data;
    http_sink_t *h = s->h;

    free(s);
    if (h->closing)
        release(h);
}

static void sock_drop(http_sink_t *h, sock_ctx_t *s)
{
    sock_ctx_t **pp;

    for (pp = &h->socks; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    if (h->closing)
        h->pending++;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    sock_ctx_t *s = p->data;
    http_sink_t *h = s->h;
    int flags = 0;
    int running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    check_done(h);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    http_sink_t *h = userp;
    sock_ctx_t *s = socketp;
    int ev = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(h->multi, fd, NULL);
            sock_drop(h, s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->h = h;
        s->poll.data = s;
        s->next = h->socks;
        h->socks = s;
        curl_multi_assign(h->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, poll_cb);
    return 0;
}

static void timer_cb(uv_timer_t *t)
{
    http_sink_t *h = t->data;
    int running;

    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    http_sink_t *h = userp;

    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

static void req_free(http_sink_t *h, req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    curl_multi_remove_handle(h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    pskgw_msg_unref(r->msg);
    free(r);
}

static int classify(CURLcode cc, long code)
{
    if (cc != CURLE_OK)
        return cc == CURLE_OPERATION_TIMEDOUT ? PSKGW_ETIMEOUT : PSKGW_EUNAVAIL;
    if (code >= 200 && code < 300)
        return 0;
    if (code >= 400 && code < 500 && code != 408 && code != 429)
        return PSKGW_EBADREQ;
    return PSKGW_EUNAVAIL;
}

static void check_done(http_sink_t *h)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(h->multi, &left))) {
        req_t *r = NULL;
        long code = 0;
        void *token;
        int status;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        status = classify(m->data.result, code);
        if (status < 0)
            PSKGW_LOG_RL(PSKGW_LOG_INFO, pskgw_sink_name(h->core),
                         "sink \"%s\": POST failed: %s (http %ld)", pskgw_sink_name(h->core),
                         m->data.result != CURLE_OK ? curl_easy_strerror(m->data.result) : "status",
                         code);
        token = r->token;
        req_free(h, r); /* m is invalid from here on */
        pskgw_sink_result(h->core, token, status);
        if (h->closing)
            return;
    }
}

static size_t discard_cb(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static int http_send(void *impl, pskgw_msg_t *msg, void *token)
{
    http_sink_t *h = impl;
    const char *json;
    size_t len;
    req_t *r;
    int rc;

    if ((rc = pskgw_msg_json(msg, &json, &len)) < 0)
        return rc;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PSKGW_ENOMEM;
    r->easy = curl_easy_init();
    if (!r->easy) {
        free(r);
        return PSKGW_ENOMEM;
    }
    r->h = h;
    r->msg = pskgw_msg_ref(msg);
    r->token = token;
    curl_easy_setopt(r->easy, CURLOPT_URL, h->url);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, discard_cb);
    if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
        curl_easy_cleanup(r->easy);
        pskgw_msg_unref(r->msg);
        free(r);
        return PSKGW_ENOMEM;
    }
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    return 0;
}

static void free_headers(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        pskgw_wipe(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

static int http_create(pskgw_sink_t *core, uv_loop_t *loop, const pskgw_sink_options_t *o,
                       void **impl)
{
    http_sink_t *h;

    if (!o->http.url ||
        (strncmp(o->http.url, "http://", 7) != 0 && strncmp(o->http.url, "https://", 8) != 0)) {
        PSKGW_ERR("sink \"%s\": http url must start with http:// or https://", o->name);
        return PSKGW_ECONFIG;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return PSKGW_EINTERNAL;
    h = calloc(1, sizeof(*h));
    if (!h) {
        curl_global_cleanup();
        return PSKGW_ENOMEM;
    }
    h->core = core;
    h->loop = loop;
    h->timeout_ms = o->http.timeout_ms ? (long)o->http.timeout_ms : 10000;
    h->url = strdup(o->http.url);
    h->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!h->url || !h->headers)
        goto fail;
    for (size_t i = 0; i < o->http.n_headers; i++) {
        const pskgw_sink_kv_t *kv = &o->http.headers[i];
        size_t n;
        char *line;
        struct curl_slist *nl;

        if (!kv->key || !kv->value || strpbrk(kv->key, ":\r\n") || strpbrk(kv->value, "\r\n")) {
            PSKGW_ERR("sink \"%s\": bad http header", o->name);
            free_headers(h->headers);
            free(h->url);
            free(h);
            curl_global_cleanup();
            return PSKGW_ECONFIG;
        }
        n = strlen(kv->key) + strlen(kv->value) + 3;
        line = malloc(n);
        if (!line)
            goto fail;
        snprintf(line, n, "%s: %s", kv->key, kv->value);
        nl = curl_slist_append(h->headers, line);
        pskgw_free_secret(line, n);
        if (!nl)
            goto fail;
        h->headers = nl;
    }
    h->multi = curl_multi_init();
    if (!h->multi)
        goto fail;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    *impl = h;
    return 0;
fail:
    free_headers(h->headers);
    free(h->url);
    free(h);
    curl_global_cleanup();
    return PSKGW_ENOMEM;
}

static void timer_closed(uv_handle_t *hd)
{
    release(hd->data);
}

static void http_close(void *impl)
{
    http_sink_t *h = impl;

    h->closing = true;
    h->pending = 1; /* the timer; each poll handle closed from now on adds one */
    while (h->reqs)
        req_free(h, h->reqs);     /* tokens forgotten: no result */
    curl_multi_cleanup(h->multi); /* may call socket_cb(REMOVE): closes poll handles */
    h->multi = NULL;
    while (h->socks)
        sock_drop(h, h->socks);
    free_headers(h->headers);
    free(h->url);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, timer_closed);
}

const pskgw_sink_backend_t pskgw_sink_backend_http = {
    .type = "http",
    .raw_ok = false,
    .create = http_create,
    .send = http_send,
    .reopen = NULL,
    .close = http_close,
};
