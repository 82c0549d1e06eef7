/* http sink: POST the JSON envelope to a URL through the curl-multi driver
 * (curlmulti/curlmulti.h: libcurl multi on the libuv loop, connections kept alive). This file
 * keeps only the sink's part: the configured URL and headers, and the classification of results.
 *
 * Results: 2xx delivered; 408, 429, 5xx, 3xx and transport errors/timeouts transient (retried);
 * other 4xx permanent (PSKGW_EBADREQ: dead letter).
 */
#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "curlmulti/curlmulti.h"
#include "sinks/internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct http_sink {
    pskgw_sink_t *core;
    pskgw_curlmulti_t *m;
    char *url;
    char **headers; /* "Name: value" lines, Content-Type first; wiped (tokens) */
    size_t n_headers;
    uint32_t timeout_ms;
    bool closing;
} http_sink_t;

typedef struct req {
    http_sink_t *h;
    void *token;
} req_t;

static int classify(int err, long code)
{
    if (err < 0)
        return err == PSKGW_ETIMEOUT ? PSKGW_ETIMEOUT : PSKGW_EUNAVAIL;
    if (code >= 200 && code < 300)
        return 0;
    if (code >= 400 && code < 500 && code != 408 && code != 429)
        return PSKGW_EBADREQ;
    return PSKGW_EUNAVAIL;
}

static void on_done(void *arg, const pskgw_curlmulti_result_t *res)
{
    req_t *r = arg;
    http_sink_t *h = r->h;
    void *token = r->token;
    int status;

    free(r);
    if (h->closing)
        return; /* close(): tokens are forgotten, no result */
    status = classify(res->err, res->status);
    if (status < 0)
        PSKGW_LOG_RL(PSKGW_LOG_INFO, pskgw_sink_name(h->core),
                     "sink \"%s\": POST failed: %s (http %ld)", pskgw_sink_name(h->core),
                     res->err < 0 ? res->detail : "status", res->status);
    pskgw_sink_result(h->core, token, status);
}

static int http_send(void *impl, pskgw_msg_t *msg, void *token)
{
    http_sink_t *h = impl;
    pskgw_curlmulti_req_opts_t ro = { 0 };
    const char *json;
    size_t len;
    req_t *r;
    int rc;

    if ((rc = pskgw_msg_json(msg, &json, &len)) < 0)
        return rc;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PSKGW_ENOMEM;
    r->h = h;
    r->token = token;
    ro.method = "POST";
    ro.url = h->url;
    ro.headers = (const char *const *)h->headers;
    ro.n_headers = h->n_headers;
    ro.body = json;
    ro.body_len = len;
    ro.timeout_ms = h->timeout_ms;
    if ((rc = pskgw_curlmulti_submit(h->m, &ro, on_done, r, NULL)) < 0) {
        free(r);
        return rc == PSKGW_EINVAL ? PSKGW_EINVAL : PSKGW_ENOMEM;
    }
    return 0;
}

static void http_free(http_sink_t *h)
{
    for (size_t i = 0; i < h->n_headers; i++)
        pskgw_free_secret_str(h->headers[i]);
    free(h->headers);
    free(h->url);
    free(h);
}

/* One "Name: value" line per configured header, after Content-Type. */
static int headers_build(http_sink_t *h, const pskgw_sink_options_t *o)
{
    h->headers = calloc(o->http.n_headers + 1, sizeof(*h->headers));
    if (!h->headers || !(h->headers[0] = strdup("Content-Type: application/json")))
        return PSKGW_ENOMEM;
    h->n_headers = 1;
    for (size_t i = 0; i < o->http.n_headers; i++) {
        const pskgw_sink_kv_t *kv = &o->http.headers[i];
        size_t n;

        if (!kv->key || !kv->value || strpbrk(kv->key, ":\r\n") || strpbrk(kv->value, "\r\n")) {
            PSKGW_ERR("sink \"%s\": bad http header", o->name);
            return PSKGW_ECONFIG;
        }
        n = strlen(kv->key) + strlen(kv->value) + 3;
        if (!(h->headers[h->n_headers] = malloc(n)))
            return PSKGW_ENOMEM;
        snprintf(h->headers[h->n_headers++], n, "%s: %s", kv->key, kv->value);
    }
    return 0;
}

static int http_create(pskgw_sink_t *core, uv_loop_t *loop, const pskgw_sink_options_t *o,
                       void **impl)
{
    pskgw_curlmulti_opts_t mo = { 0 };
    http_sink_t *h;
    int rc;

    if (!o->http.url ||
        (strncmp(o->http.url, "http://", 7) != 0 && strncmp(o->http.url, "https://", 8) != 0)) {
        PSKGW_ERR("sink \"%s\": http url must start with http:// or https://", o->name);
        return PSKGW_ECONFIG;
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        return PSKGW_ENOMEM;
    h->core = core;
    h->timeout_ms = !o->http.timeout_ms               ? 10000
                    : o->http.timeout_ms > UINT32_MAX ? UINT32_MAX
                                                      : (uint32_t)o->http.timeout_ms;
    rc = PSKGW_ENOMEM;
    if (!(h->url = strdup(o->http.url)))
        goto fail;
    if ((rc = headers_build(h, o)) < 0)
        goto fail;
    if ((rc = pskgw_curlmulti_new(loop, &mo, &h->m)) < 0)
        goto fail;
    *impl = h;
    return 0;

fail:
    http_free(h);
    return rc;
}

static void driver_closed(void *arg)
{
    http_sink_t *h = arg;
    pskgw_sink_t *core = h->core;

    http_free(h);
    pskgw_sink_backend_closed(core);
}

static void http_close(void *impl)
{
    http_sink_t *h = impl;

    h->closing = true;
    pskgw_curlmulti_close(h->m, driver_closed, h); /* in-flight POSTs: on_done only frees */
}

const pskgw_sink_backend_t pskgw_sink_backend_http = {
    .type = "http",
    .raw_ok = false,
    .create = http_create,
    .send = http_send,
    .reopen = NULL,
    .close = http_close,
};
