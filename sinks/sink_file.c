/* file sink: JSON lines appended to a path or stdout ("-"); reopened on SIGHUP. A message is
 * delivered once its line has been written (write(2) returned); a failed open or write is
 * transient (retried: the directory may appear, the disk may get space). */
#include "common/err.h"
#include "sinks/appender.h"
#include "sinks/internal.h"

#include <stdlib.h>

typedef struct {
    pskgw_sink_t *core;
    pskgw_appender_t *out;
    unsigned outstanding; /* writes whose callback is still to come */
    bool closing;
    bool closed;
} file_sink_t;

typedef struct {
    file_sink_t *f;
    void *token;
} file_req_t;

static void maybe_closed(file_sink_t *f)
{
    if (f->closing && f->closed && f->outstanding == 0) {
        pskgw_sink_t *core = f->core;
        free(f);
        pskgw_sink_backend_closed(core);
    }
}

static void write_cb(void *arg, int status)
{
    file_req_t *r = arg;
    file_sink_t *f = r->f;

    f->outstanding--;
    if (!f->closing)
        pskgw_sink_result(f->core, r->token, status);
    free(r);
    maybe_closed(f);
}

static int file_create(pskgw_sink_t *core, uv_loop_t *loop, const pskgw_sink_options_t *o,
                       void **impl)
{
    file_sink_t *f;
    int rc;

    if (!o->file.path || !o->file.path[0])
        return PSKGW_ECONFIG;
    f = calloc(1, sizeof(*f));
    if (!f)
        return PSKGW_ENOMEM;
    f->core = core;
    rc = pskgw_appender_new(loop, o->file.path, &f->out);
    if (rc < 0) {
        free(f);
        return rc;
    }
    *impl = f;
    return 0;
}

static int file_send(void *impl, pskgw_msg_t *msg, void *token)
{
    file_sink_t *f = impl;
    file_req_t *r;
    const char *json;
    size_t len;
    int rc;

    if ((rc = pskgw_msg_json(msg, &json, &len)) < 0)
        return rc;
    r = malloc(sizeof(*r));
    if (!r)
        return PSKGW_ENOMEM;
    r->f = f;
    r->token = token;
    rc = pskgw_appender_write(f->out, json, len, true, write_cb, r);
    if (rc < 0) {
        free(r);
        return rc;
    }
    f->outstanding++;
    return 0;
}

static void file_reopen(void *impl)
{
    file_sink_t *f = impl;

    pskgw_appender_reopen(f->out);
}

static void appender_closed(void *arg)
{
    file_sink_t *f = arg;

    f->closed = true;
    maybe_closed(f);
}

static void file_close(void *impl)
{
    file_sink_t *f = impl;

    f->closing = true;
    pskgw_appender_close(f->out, appender_closed, f);
}

const pskgw_sink_backend_t pskgw_sink_backend_file = {
    .type = "file",
    .raw_ok = false,
    .create = file_create,
    .send = file_send,
    .reopen = file_reopen,
    .close = file_close,
};
