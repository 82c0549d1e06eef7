#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "sinks/appender.h"

#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    pskgw_appender_cb cb;
    void *arg;
} waiter_t;

typedef struct {
    char *buf;
    size_t len;
    size_t cap;
    waiter_t *w;
    size_t wn;
    size_t wcap;
} batch_t;

struct pskgw_appender {
    uv_loop_t *loop;
    char *path;
    bool is_stdout;
    uv_file fd;
    uv_fs_t req;
    bool busy;
    bool want_reopen;
    bool closing;
    bool torn;       /* a failed batch left a partial line at the end of the file */
    bool writing_nl; /* the write in progress is the "\n" that ends that partial line */
    int depth;
    batch_t pend;
    batch_t cur;
    size_t cur_done;
    uv_buf_t iov;
    /* Writing on the loop thread (see appender.h): the file is a regular file (fstat after the
     * open), and no write on the loop took longer than LOOP_WRITE_SLOW_NS since loop_after. */
    uv_idle_t flush;     /* active while a batch waits for a write on the loop */
    bool regular;        /* the open file is a regular file */
    uint64_t loop_after; /* uv_now() before which writes go through the thread pool */
    void (*close_cb)(void *);
    void *close_arg;
};

static void next_op(pskgw_appender_t *a);

/* A batch's buffers are kept for the next batch (no malloc per write in steady state), unless
 * a burst made them larger than this. */
#define BATCH_KEEP_BYTES   (1024u * 1024u)
#define BATCH_KEEP_WAITERS 16384u

/* Loop-thread writes: batches up to LOOP_WRITE_MAX bytes; a write that took longer than
 * LOOP_WRITE_SLOW_NS and slept (the disk is slow or throttled) sends the next
 * LOOP_WRITE_BACKOFF_MS of writes through the thread pool again; at most LOOP_WRITES_PER_TURN
 * writes per loop turn. */
#define LOOP_WRITE_MAX        (256u * 1024u)
#define LOOP_WRITE_SLOW_NS    1000000u
#define LOOP_WRITE_BACKOFF_MS 10000u
#define LOOP_WRITES_PER_TURN  16

/* Callbacks may write or even close: a->depth keeps next_op() from freeing under us (or from
 * moving the pending batch into b, whose waiter array is still being walked); every caller calls
 * next_op() after this returns. */
static void batch_finish(pskgw_appender_t *a, batch_t *b, int status)
{
    waiter_t *w = b->w;
    size_t n = b->wn;

    b->len = 0;
    b->wn = 0;
    a->depth++;
    for (size_t i = 0; i < n; i++)
        if (w[i].cb)
            w[i].cb(w[i].arg, status);
    a->depth--;
    if (b->cap > BATCH_KEEP_BYTES) {
        free(b->buf);
        b->buf = NULL;
        b->cap = 0;
    }
    if (b->wcap > BATCH_KEEP_WAITERS) {
        free(b->w);
        b->w = NULL;
        b->wcap = 0;
    }
}

static void batch_free(batch_t *b)
{
    free(b->buf);
    free(b->w);
    memset(b, 0, sizeof(*b));
}

static void flush_closed(uv_handle_t *h)
{
    pskgw_appender_t *a = h->data;
    void (*cb)(void *) = a->close_cb;
    void *arg = a->close_arg;

    batch_free(&a->pend);
    batch_free(&a->cur);
    free(a->path);
    free(a);
    if (cb)
        cb(arg);
}

static void free_appender(pskgw_appender_t *a)
{
    if (!uv_is_closing((uv_handle_t *)&a->flush))
        uv_close((uv_handle_t *)&a->flush, flush_closed);
}

static void close_cb(uv_fs_t *req)
{
    pskgw_appender_t *a = req->data;

    uv_fs_req_cleanup(req);
    a->busy = false;
    a->fd = -1;
    next_op(a);
}

/* A write of the batch in progress returned r (bytes or a negative libuv error); the caller
 * calls next_op() after it. */
static void write_result(pskgw_appender_t *a, ssize_t r)
{
    if (a->writing_nl) {
        a->writing_nl = false;
        if (r == 1) {
            a->torn = false;
            return;
        }
        if (r >= 0)
            r = UV_EIO;
    }
    if (r < 0) {
        PSKGW_LOG_RL(PSKGW_LOG_ERR, a->path, "file \"%s\": write failed: %s", a->path,
                     uv_strerror((int)r));
        /* part of the batch may be in the file, ending inside a line: the next batch starts
         * with a newline, so the lines written again are not glued to that fragment */
        if (a->cur_done > 0 && a->cur.buf[a->cur_done - 1] != '\n')
            a->torn = true;
        batch_finish(a, &a->cur, PSKGW_EIO);
        if (!a->is_stdout)
            a->want_reopen = true; /* start over with a fresh open */
    } else {
        a->cur_done += (size_t)r;
        if (a->cur_done >= a->cur.len)
            batch_finish(a, &a->cur, 0);
    }
}

static void write_cb(uv_fs_t *req)
{
    pskgw_appender_t *a = req->data;
    ssize_t r = req->result;

    uv_fs_req_cleanup(req);
    a->busy = false;
    write_result(a, r);
    next_op(a);
}

static void fstat_cb(uv_fs_t *req)
{
    pskgw_appender_t *a = req->data;

    a->regular = req->result == 0 && S_ISREG(req->statbuf.st_mode);
    uv_fs_req_cleanup(req);
    a->busy = false;
    next_op(a);
}

static void open_cb(uv_fs_t *req)
{
    pskgw_appender_t *a = req->data;
    ssize_t r = req->result;

    uv_fs_req_cleanup(req);
    a->busy = false;
    if (r < 0) {
        PSKGW_LOG_RL(PSKGW_LOG_ERR, a->path, "file \"%s\": cannot open: %s", a->path,
                     uv_strerror((int)r));
        batch_finish(a, &a->cur, PSKGW_EIO);
        next_op(a);
        return;
    }
    a->fd = (uv_file)r;
    a->regular = false;
    a->busy = true;
    if (uv_fs_fstat(a->loop, &a->req, a->fd, fstat_cb) == 0)
        return; /* a->req.data is still a */
    a->busy = false;
    next_op(a);
}

/* The pending batch becomes the current one once the current one is done. */
static void take_pending(pskgw_appender_t *a)
{
    if (a->cur.len == 0 && a->cur.wn == 0 && (a->pend.len > 0 || a->pend.wn > 0)) {
        batch_t spare = a->cur; /* empty, its buffers kept: the next pending batch */
        a->cur = a->pend;
        a->pend = spare;
        a->cur_done = 0;
    }
}

/* The rest of the current batch may be written on the loop thread. */
static bool loop_write_ok(const pskgw_appender_t *a)
{
    return a->regular && a->fd >= 0 && !a->torn && !a->want_reopen &&
           a->cur.len - a->cur_done <= LOOP_WRITE_MAX && uv_now(a->loop) >= a->loop_after;
}

/* This thread's voluntary context switches so far (it slept: disk, lock, page reclaim). */
static long slept(void)
{
    struct rusage ru;

    return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nvcsw : 0;
}

/* One write(2) of the current batch's rest on the loop thread, timed: a slow one that slept in
 * the kernel (a disk, not the scheduler: a preempted loop is no better off with the pool) sends
 * the next writes through the thread pool for a while. */
static void loop_write(pskgw_appender_t *a)
{
    long sw0 = slept();
    uint64_t t0 = uv_hrtime();
    uint64_t dt;
    ssize_t r;

    do
        r = write(a->fd, a->cur.buf + a->cur_done, a->cur.len - a->cur_done);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        r = uv_translate_sys_error(errno);
    dt = uv_hrtime() - t0;
    if (dt > LOOP_WRITE_SLOW_NS && slept() != sw0) {
        a->loop_after = uv_now(a->loop) + LOOP_WRITE_BACKOFF_MS;
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, a->path,
                     "file \"%s\": a write of %zu bytes took %llu us on the event loop: the "
                     "thread pool writes for the next %u s",
                     a->path, a->cur.len - a->cur_done, (unsigned long long)(dt / 1000u),
                     LOOP_WRITE_BACKOFF_MS / 1000u);
    }
    write_result(a, r);
}

/* What the last loop turn appended, written at the start of the next one (the idle phase: its
 * poll does not wait while this is pending); callbacks fire here, never inside a commit. */
static void flush_cb(uv_idle_t *h)
{
    pskgw_appender_t *a = h->data;

    uv_idle_stop(h);
    for (int i = 0; i < LOOP_WRITES_PER_TURN && !a->busy && a->depth == 0; i++) {
        take_pending(a);
        if (a->cur_done >= a->cur.len || !loop_write_ok(a))
            break;
        loop_write(a);
    }
    next_op(a);
}

static void next_op(pskgw_appender_t *a)
{
    int rc;

    if (a->busy || a->depth > 0 || uv_is_closing((uv_handle_t *)&a->flush))
        return;
    take_pending(a);
    a->req.data = a;
    if ((a->want_reopen || (a->closing && a->cur.wn == 0)) && a->fd >= 0 && !a->is_stdout) {
        a->want_reopen = false;
        a->busy = true;
        rc = uv_fs_close(a->loop, &a->req, a->fd, close_cb);
        if (rc == 0)
            return;
        a->busy = false;
        a->fd = -1;
    }
    a->want_reopen = false;
    if (a->cur.wn > 0) {
        if (a->fd < 0) {
            a->busy = true;
            rc = uv_fs_open(a->loop, &a->req, a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                            0640, open_cb);
            if (rc == 0)
                return;
            a->busy = false;
            batch_finish(a, &a->cur, PSKGW_EIO);
            next_op(a);
            return;
        }
        if (a->torn && a->cur_done == 0) {
            static char nl[] = "\n";
            a->iov = uv_buf_init(nl, 1);
            a->busy = true;
            a->writing_nl = true;
            rc = uv_fs_write(a->loop, &a->req, a->fd, &a->iov, 1, -1, write_cb);
            if (rc == 0)
                return;
            a->busy = false;
            a->writing_nl = false;
            batch_finish(a, &a->cur, PSKGW_EIO);
            next_op(a);
            return;
        }
        if (a->cur_done < a->cur.len) {
            if (loop_write_ok(a)) {
                uv_idle_start(&a->flush, flush_cb);
                return;
            }
            a->iov = uv_buf_init(a->cur.buf + a->cur_done, (unsigned)(a->cur.len - a->cur_done));
            a->busy = true;
            rc = uv_fs_write(a->loop, &a->req, a->fd, &a->iov, 1, -1, write_cb);
            if (rc == 0)
                return;
            a->busy = false;
            if (a->cur_done > 0 && a->cur.buf[a->cur_done - 1] != '\n')
                a->torn = true;
            batch_finish(a, &a->cur, PSKGW_EIO);
        } else {
            batch_finish(a, &a->cur, 0);
        }
        next_op(a);
        return;
    }
    if (a->closing && a->pend.wn == 0)
        free_appender(a);
}

int pskgw_appender_new(uv_loop_t *loop, const char *path, pskgw_appender_t **out)
{
    pskgw_appender_t *a;

    if (!loop || !path || !path[0])
        return PSKGW_EINVAL;
    a = calloc(1, sizeof(*a));
    if (!a)
        return PSKGW_ENOMEM;
    a->path = strdup(path);
    if (!a->path) {
        free(a);
        return PSKGW_ENOMEM;
    }
    a->loop = loop;
    a->fd = -1;
    uv_idle_init(loop, &a->flush);
    a->flush.data = a;
    if (strcmp(path, "-") == 0) {
        a->is_stdout = true;
        a->fd = STDOUT_FILENO;
    }
    *out = a;
    return 0;
}

/* Room for `need` more bytes and one more waiter in the pending batch. */
static int pend_reserve(pskgw_appender_t *a, size_t need)
{
    batch_t *b = &a->pend;

    if (b->len + need > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        char *np;
        while (ncap < b->len + need)
            ncap *= 2;
        np = realloc(b->buf, ncap);
        if (!np)
            return PSKGW_ENOMEM;
        b->buf = np;
        b->cap = ncap;
    }
    if (b->wn == b->wcap) {
        size_t ncap = b->wcap ? 2 * b->wcap : 16;
        waiter_t *nw = realloc(b->w, ncap * sizeof(*nw));
        if (!nw)
            return PSKGW_ENOMEM;
        b->w = nw;
        b->wcap = ncap;
    }
    return 0;
}

int pskgw_appender_reserve(pskgw_appender_t *a, size_t max, char **where)
{
    int rc;

    if (a->closing)
        return PSKGW_ECLOSED;
    if ((rc = pend_reserve(a, max + 1)) < 0)
        return rc;
    *where = a->pend.buf + a->pend.len;
    return 0;
}

void pskgw_appender_commit(pskgw_appender_t *a, size_t len, bool newline, pskgw_appender_cb cb,
                           void *arg)
{
    batch_t *b = &a->pend;

    if (newline)
        b->buf[b->len + len++] = '\n';
    b->len += len;
    b->w[b->wn].cb = cb;
    b->w[b->wn].arg = arg;
    b->wn++;
    next_op(a);
}

int pskgw_appender_write(pskgw_appender_t *a, const char *data, size_t len, bool newline,
                         pskgw_appender_cb cb, void *arg)
{
    char *where;
    int rc;

    if ((rc = pskgw_appender_reserve(a, len, &where)) < 0)
        return rc;
    memcpy(where, data, len);
    pskgw_appender_commit(a, len, newline, cb, arg);
    return 0;
}

void pskgw_appender_reopen(pskgw_appender_t *a)
{
    if (a->is_stdout)
        return;
    a->want_reopen = true;
    next_op(a);
}

void pskgw_appender_close(pskgw_appender_t *a, void (*cb)(void *arg), void *arg)
{
    a->closing = true;
    a->close_cb = cb;
    a->close_arg = arg;
    next_op(a); /* cb comes from the idle handle's close callback: never from inside close */
}
