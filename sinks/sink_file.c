/* file sink: JSON lines appended to a path or stdout ("-"); reopened on SIGHUP. A message is
 * delivered once its line has been written (write(2) returned); a failed open or write is
 * transient (retried: the directory may appear, the disk may get space). The envelope is rendered
 * straight into the appender's batch buffer, and write requests come from a freelist: no
 * allocation per message in steady state. */
#include "common/err.h"
#include "sinks/appender.h"
#include "sinks/internal.h"

#include <stdlib.h>

#define REQS_KEEP 4096u

typedef struct file_req file_req_t;

typedef struct {
    pskgw_sink_t *core;
    pskgw_appender_t *out;
    file_req_t *free_reqs;
    unsigned nfree_reqs;
    unsigned outstanding; /* writes whose callback is still to come */
    bool closing;
    bool closed;
} file_sink_t;

struct file_req {
    file_sink_t *f;
    void *token;
    file_req_t *next_free;
};

static void maybe_closed(file_sink_t *f)
{
    if (f->closing && f->closed && f->outstanding == 0) {
        pskgw_sink_t *core = f->core;
        while (f->free_reqs) {
            file_req_t *r = f->free_reqs;
            f->free_reqs = r->next_free;
            free(r);
        }
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
    if (f->nfree_reqs < REQS_KEEP) {
        r->next_free = f->free_reqs;
        f->free_reqs = r;
        f->nfree_reqs++;
    } else {
        free(r);
    }
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
    file_req_t *r = f->free_reqs;
    size_t max = pskgw_envelope_json_max_lens(&msg->env, &msg->lens);
    char *where;
    size_t len;
    int rc;

    if (r) {
        f->free_reqs = r->next_free;
        f->nfree_reqs--;
    } else if (!(r = malloc(sizeof(*r)))) {
        return PSKGW_ENOMEM;
    }
    rc = pskgw_appender_reserve(f->out, max, &where);
    if (rc == 0)
        rc = pskgw_envelope_json_into_lens(&msg->env, &msg->lens, msg->id, where, max, &len);
    if (rc < 0) {
        r->next_free = f->free_reqs;
        f->free_reqs = r;
        f->nfree_reqs++;
        return rc;
    }
    r->f = f;
    r->token = token;
    f->outstanding++;
    pskgw_appender_commit(f->out, len, true, write_cb, r);
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
