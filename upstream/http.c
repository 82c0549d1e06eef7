#include "upstream/http.h"

#include "common/err.h"
#include "common/wipe.h"
#include "curlmulti/curlmulti.h"

#include <stdlib.h>
#include <string.h>

struct pskgw_http_req {
    pskgw_http_t *h;
    pskgw_curlmulti_req_t *mreq;
    pskgw_http_cb cb;
    void *arg;
    int cancelled; /* pskgw_http_cancel(): the driver's ECANCELED callback only frees */
};

struct pskgw_http {
    pskgw_curlmulti_t *m;
    char *ca_file;
    size_t max_body;
    int closing;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void on_done(void *arg, const pskgw_curlmulti_result_t *mres)
{
    pskgw_http_req_t *r = arg;
    pskgw_http_result_t res;

    /* Cancelled by pskgw_http_cancel() or by the close: this API then never calls back. */
    if (!r->cancelled && !r->h->closing) {
        memset(&res, 0, sizeof(res));
        res.transport_err = mres->err;
        res.status = mres->status;
        res.body = mres->body;
        res.body_len = mres->body_len;
        res.retry_after = mres->header;
        res.detail = mres->detail;
        r->cb(r->arg, &res);
    }
    free(r);
}

int pskgw_http_new(uv_loop_t *loop, const pskgw_http_opts_t *opts, pskgw_http_t **out)
{
    pskgw_curlmulti_opts_t mo = { 0 };
    pskgw_http_t *h;
    int rc = PSKGW_ENOMEM;

    if (!loop || !opts || !out || !opts->max_body)
        return PSKGW_EINVAL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return PSKGW_ENOMEM;
    h->max_body = opts->max_body;
    if (opts->ca_file && !(h->ca_file = strdup(opts->ca_file)))
        goto fail;
    mo.max_connections = opts->max_connections;
    mo.share_tls_sessions = true;
    if ((rc = pskgw_curlmulti_new(loop, &mo, &h->m)) < 0)
        goto fail;
    *out = h;
    return 0;

fail:
    free(h->ca_file);
    free(h);
    return rc == PSKGW_EINTERNAL ? PSKGW_ENOMEM : rc;
}

size_t pskgw_http_active(const pskgw_http_t *h)
{
    return pskgw_curlmulti_active(h->m);
}

int pskgw_http_post(pskgw_http_t *h, const char *url, const char *auth, const char *body,
                    uint32_t timeout_ms, pskgw_http_cb cb, void *arg, pskgw_http_req_t **req_out)
{
    static const char prefix[] = "Authorization: ";
    const char *hdrs[4] = { "Content-Type: application/json", "Accept: application/json",
                            "Expect:", NULL };
    pskgw_curlmulti_req_opts_t ro = { 0 };
    pskgw_http_req_t *r;
    char *line = NULL;
    size_t line_len = 0;
    int rc = PSKGW_ENOMEM;

    if (!h || !url || !body || !cb || !timeout_ms)
        return PSKGW_EINVAL;
    if (h->closing)
        return PSKGW_ECLOSED;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PSKGW_ENOMEM;
    if (auth) {
        line_len = sizeof(prefix) + strlen(auth);
        if (!(line = malloc(line_len)))
            goto fail;
        memcpy(line, prefix, sizeof(prefix) - 1);
        memcpy(line + sizeof(prefix) - 1, auth, strlen(auth) + 1);
        hdrs[3] = line;
    }
    r->h = h;
    r->cb = cb;
    r->arg = arg;
    ro.url = url;
    ro.headers = hdrs;
    ro.n_headers = auth ? 4 : 3;
    ro.body = body;
    ro.body_len = strlen(body);
    ro.timeout_ms = timeout_ms;
    ro.ca_file = h->ca_file;
    ro.max_body = h->max_body;
    ro.capture_header = "retry-after";
    ro.flags = PSKGW_CURLMULTI_PIPEWAIT | PSKGW_CURLMULTI_KEEPALIVE;
    rc = pskgw_curlmulti_submit(h->m, &ro, on_done, r, &r->mreq);
    pskgw_free_secret(line, line_len); /* the driver holds its own (wiped) copy */
    if (rc < 0)
        goto fail;
    if (req_out)
        *req_out = r;
    return 0;

fail:
    free(r);
    return rc;
}

void pskgw_http_cancel(pskgw_http_req_t *r)
{
    if (!r)
        return;
    r->cancelled = 1;
    pskgw_curlmulti_cancel(r->mreq); /* on_done runs inside and frees r */
}

static void driver_closed(void *arg)
{
    pskgw_http_t *h = arg;
    void (*cb)(void *) = h->close_cb;
    void *cb_arg = h->close_arg;

    free(h->ca_file);
    free(h);
    if (cb)
        cb(cb_arg);
}

void pskgw_http_close(pskgw_http_t *h, void (*cb)(void *arg), void *arg)
{
    if (!h || h->closing)
        return;
    h->closing = 1;
    h->close_cb = cb;
    h->close_arg = arg;
    pskgw_curlmulti_close(h->m, driver_closed, h); /* cancelled transfers: on_done only frees */
}
