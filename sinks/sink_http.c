/* http sink: POST the JSON envelope to a URL through the curl-multi driver
 * (curlmulti/curlmulti.h: libcurl multi on the libuv loop, connections kept alive). This file
 * keeps only the sink's part: the configured URL and headers, and the classification of results.
 *
 * Results: 2xx delivered; 408, 429, 5xx, 3xx and transport errors/timeouts transient (retried);
 * other 4xx permanent (PSKGW_EBADREQ: dead letter).
 *
 * Idle probe (probe_interval_ms > 0): a deliveries' outcome tells the core whether the target
 * answers, but an idle sink learns nothing. A repeating timer sends HEAD to the URL (with the
 * configured headers) when no POST is under way and none ended within the interval: any HTTP
 * answer but 502/503/504 means the target is there (connected), a transport error, timeout or
 * one of those three means it is not (pskgw_sink_set_connected: the sink fails, /ready says so;
 * a recovery retries what waited in backoff at once). One probe at a time; close cancels it.
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
    uv_timer_t probe;      /* probe_ms > 0 */
    uint64_t probe_ms;     /* 0: no probe */
    bool probing;          /* a HEAD under way */
    bool probe_ok;         /* the last probe's verdict (for the log on a change) */
    size_t posts;          /* POSTs under way */
    uint64_t last_done_ms; /* uv_now() when the last POST ended */
    uv_loop_t *loop;
    int pending;                     /* close: the driver and the probe timer */
    pskgw_sink_freelist_t free_reqs; /* req_t: none allocated per message in steady state */
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

    pskgw_sink_fl_put(&h->free_reqs, r);
    if (h->closing)
        return; /* close(): tokens are forgotten, no result */
    h->posts--;
    h->last_done_ms = uv_now(h->loop);
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
    r = pskgw_sink_fl_get(&h->free_reqs, sizeof(*r));
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
        pskgw_sink_fl_put(&h->free_reqs, r);
        return rc == PSKGW_EINVAL ? PSKGW_EINVAL : PSKGW_ENOMEM;
    }
    h->posts++;
    return 0;
}

/* ---- idle probe --------------------------------------------------------------------------- */

static void on_probe(void *arg, const pskgw_curlmulti_result_t *res)
{
    http_sink_t *h = arg;
    bool ok = res->err >= 0 && res->status != 502 && res->status != 503 && res->status != 504;

    h->probing = false;
    if (h->closing)
        return;
    if (ok != h->probe_ok) {
        if (ok)
            PSKGW_NOTICE("sink \"%s\": probe: the target answers (HEAD: http %ld)",
                         pskgw_sink_name(h->core), res->status);
        else
            PSKGW_WARN("sink \"%s\": probe: the target does not answer (HEAD: %s, http %ld)",
                       pskgw_sink_name(h->core), res->err < 0 ? res->detail : "status",
                       res->status);
    }
    h->probe_ok = ok;
    pskgw_sink_set_connected(h->core, ok);
}

static void probe_tick(uv_timer_t *t)
{
    http_sink_t *h = t->data;
    pskgw_curlmulti_req_opts_t ro = { 0 };

    /* deliveries under way or just ended tell the core already */
    if (h->closing || h->probing || h->posts > 0 || uv_now(h->loop) - h->last_done_ms < h->probe_ms)
        return;
    ro.method = "HEAD";
    ro.url = h->url;
    ro.headers = (const char *const *)h->headers;
    ro.n_headers = h->n_headers;
    ro.timeout_ms = h->timeout_ms < h->probe_ms ? h->timeout_ms : (uint32_t)h->probe_ms;
    if (pskgw_curlmulti_submit(h->m, &ro, on_probe, h, NULL) == 0)
        h->probing = true;
}

static void http_free(http_sink_t *h)
{
    for (size_t i = 0; i < h->n_headers; i++)
        pskgw_free_secret_str(h->headers[i]);
    free(h->headers);
    free(h->url);
    pskgw_sink_fl_free(&h->free_reqs);
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
    h->loop = loop;
    h->probe_ok = true; /* healthy from the start, like the core's connected */
    h->last_done_ms = uv_now(loop);
    h->probe_ms = o->http.probe_interval_ms;
    if (h->probe_ms > 0) {
        uv_timer_init(loop, &h->probe);
        h->probe.data = h;
        uv_timer_start(&h->probe, probe_tick, h->probe_ms, h->probe_ms);
    }
    *impl = h;
    return 0;

fail:
    http_free(h);
    return rc;
}

static void closed_one(http_sink_t *h)
{
    pskgw_sink_t *core = h->core;

    if (--h->pending > 0)
        return;
    http_free(h);
    pskgw_sink_backend_closed(core);
}

static void driver_closed(void *arg)
{
    closed_one(arg);
}

static void probe_closed(uv_handle_t *t)
{
    closed_one(t->data);
}

static void http_close(void *impl)
{
    http_sink_t *h = impl;

    h->closing = true;
    h->pending = 1 + (h->probe_ms > 0);
    if (h->probe_ms > 0)
        uv_close((uv_handle_t *)&h->probe, probe_closed);
    /* in-flight POSTs and the probe: their callbacks only free or return */
    pskgw_curlmulti_close(h->m, driver_closed, h);
}

const pskgw_sink_backend_t pskgw_sink_backend_http = {
    .type = "http",
    .raw_ok = false,
    .create = http_create,
    .send = http_send,
    .reopen = NULL,
    .close = http_close,
};
