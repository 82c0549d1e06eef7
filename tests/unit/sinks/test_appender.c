/* The appender on a real loop and real files: a regular file is written on the loop thread (what
 * one loop turn appended, in one write(2) at the start of the next; issue 13), anything else
 * through the thread pool; callbacks never fire inside a write; close completes what is
 * pending. The thread pool is held by a work item waiting on a semaphore (UV_THREADPOOL_SIZE=1):
 * what still completes went through the loop thread, what does not through the pool. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "loopwait.h"
#include "proc.h"
#include "sinks/appender.h"

typedef struct {
    uv_loop_t loop;
    pskgw_appender_t *a;
    char dir[256];
    char path[300];
    int done;
    int failed;
    int closed;
    int done_at_close; /* callbacks fired when the close callback came */
    uv_sem_t hold;
    uv_work_t work;
    int work_done;
} ctx_t;

static void on_written(void *arg, int status)
{
    ctx_t *c = arg;

    if (status == 0)
        c->done++;
    else
        c->failed++;
}

static void on_closed(void *arg)
{
    ctx_t *c = arg;

    c->done_at_close = c->done;
    c->closed = 1;
}

static void hold_pool(uv_work_t *w)
{
    ctx_t *c = w->data;

    uv_sem_wait(&c->hold);
}

static void pool_released(uv_work_t *w, int status)
{
    ctx_t *c = w->data;

    cr_expect_eq(status, 0);
    c->work_done = 1;
}

static void ctx_open(ctx_t *c, const char *name)
{
    memset(c, 0, sizeof(*c));
    setenv("UV_THREADPOOL_SIZE", "1", 1); /* before the pool's first use in this process */
    cr_assert_eq(pskgw_test_tmpdir(c->dir, sizeof(c->dir)), 0);
    snprintf(c->path, sizeof(c->path), "%s/%s", c->dir, name);
    cr_assert_eq(uv_loop_init(&c->loop), 0);
    cr_assert_eq(uv_sem_init(&c->hold, 0), 0);
}

/* The file's open (and fstat) go through the pool: one line written first, then the pool held. */
static void first_line_then_hold_the_pool(ctx_t *c)
{
    cr_assert_eq(pskgw_appender_new(&c->loop, c->path, &c->a), 0);
    cr_assert_eq(pskgw_appender_write(c->a, "first", 5, true, on_written, c), 0);
    cr_assert(hrun_until_count(&c->loop, &c->done, 1));
    c->work.data = c;
    cr_assert_eq(uv_queue_work(&c->loop, &c->work, hold_pool, pool_released), 0);
}

static void release_close_finish(ctx_t *c)
{
    uv_sem_post(&c->hold);
    cr_assert(hrun_until_count(&c->loop, &c->work_done, 1));
    pskgw_appender_close(c->a, on_closed, c);
    cr_assert(hrun_until_count(&c->loop, &c->closed, 1));
    cr_assert_eq(hloop_finish(&c->loop), 0);
    uv_sem_destroy(&c->hold);
    pskgw_test_rmtree(c->dir);
}

static void expect_file(const char *path, const char *want)
{
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    cr_assert_geq(fd, 0);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    cr_assert_geq(n, 0);
    buf[n] = '\0';
    cr_assert_str_eq(buf, want);
}

TestSuite(appender, .timeout = 120);

/* Lines appended to a regular file complete while the thread pool is held: they were written on
 * the loop thread, with their callbacks later, never inside the write. Before issue 13's change
 * every write went through the pool, and this waited for it. */
Test(appender, regular_file_is_written_on_the_loop_thread)
{
    static ctx_t c;
    char *where;

    ctx_open(&c, "out.jsonl");
    first_line_then_hold_the_pool(&c);
    cr_assert_eq(pskgw_appender_write(c.a, "a", 1, true, on_written, &c), 0);
    cr_assert_eq(pskgw_appender_reserve(c.a, 16, &where), 0);
    memcpy(where, "b", 1);
    pskgw_appender_commit(c.a, 1, true, on_written, &c);
    cr_assert_eq(pskgw_appender_write(c.a, "c", 1, false, on_written, &c), 0);
    cr_assert_eq(c.done, 1, "a callback fired inside a write");
    cr_assert(hrun_until_count(&c.loop, &c.done, 4), "the lines waited for the thread pool");
    cr_assert_eq(c.failed, 0);
    expect_file(c.path, "first\na\nb\nc");
    release_close_finish(&c);
}

/* A FIFO is not a regular file (a reader may not keep up: a write could block the loop): its
 * writes still go through the thread pool, so they wait while the pool is held. */
Test(appender, fifo_is_written_through_the_thread_pool)
{
    static ctx_t c;
    char buf[64];
    int rfd;
    ssize_t n;

    ctx_open(&c, "fifo");
    cr_assert_eq(mkfifo(c.path, 0600), 0);
    rfd = open(c.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* the appender's open does not wait */
    cr_assert_geq(rfd, 0);
    first_line_then_hold_the_pool(&c);
    cr_assert_eq(pskgw_appender_write(c.a, "x", 1, true, on_written, &c), 0);
    for (int i = 0; i < 50; i++)
        uv_run(&c.loop, UV_RUN_NOWAIT);
    cr_assert_eq(c.done, 1, "a FIFO written on the loop thread");
    uv_sem_post(&c.hold);
    cr_assert(hrun_until_count(&c.loop, &c.work_done, 1));
    cr_assert(hrun_until_count(&c.loop, &c.done, 2));
    n = read(rfd, buf, sizeof(buf) - 1);
    cr_assert_eq(n, 8);
    buf[n] = '\0';
    cr_assert_str_eq(buf, "first\nx\n");
    release_close_finish(&c);
    close(rfd);
}

/* close() right after writes: every pending line is written and called back (status 0) before
 * the close callback, which never fires inside close. */
Test(appender, close_writes_what_is_pending_first)
{
    static ctx_t c;

    ctx_open(&c, "out.jsonl");
    cr_assert_eq(pskgw_appender_new(&c.loop, c.path, &c.a), 0);
    cr_assert_eq(pskgw_appender_write(c.a, "one", 3, true, on_written, &c), 0);
    cr_assert(hrun_until_count(&c.loop, &c.done, 1));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pskgw_appender_write(c.a, "line", 4, true, on_written, &c), 0);
    pskgw_appender_close(c.a, on_closed, &c);
    cr_assert_eq(c.closed, 0, "called back inside close");
    cr_assert(hrun_until_count(&c.loop, &c.closed, 1));
    cr_assert_eq(c.done_at_close, 4);
    cr_assert_eq(c.failed, 0);
    expect_file(c.path, "one\nline\nline\nline\n");
    cr_assert_eq(hloop_finish(&c.loop), 0);
    uv_sem_destroy(&c.hold);
    pskgw_test_rmtree(c.dir);
}

/* An appender closed without a write calls back later, never inside close, and leaves no handle
 * open. */
Test(appender, close_unused_calls_back_later)
{
    static ctx_t c;

    ctx_open(&c, "never.jsonl");
    cr_assert_eq(pskgw_appender_new(&c.loop, c.path, &c.a), 0);
    pskgw_appender_close(c.a, on_closed, &c);
    cr_assert_eq(c.closed, 0);
    cr_assert(hrun_until_count(&c.loop, &c.closed, 1));
    cr_assert_eq(hloop_finish(&c.loop), 0);
    cr_assert_neq(access(c.path, F_OK), 0, "opened without a write");
    uv_sem_destroy(&c.hold);
    pskgw_test_rmtree(c.dir);
}
