/* pskgw_appender_t: appends byte strings to a file (or stdout), the loop waiting at most for a short
 * page-cache write (module-internal; used by the file sink and for dead-letter files).
 *
 * One write at a time; what is written while one is in progress is batched into the next. A
 * regular file (fstat after the open) is written on the loop thread: what one loop turn appended
 * goes out in one write(2) at the start of the next turn (an idle handle: the loop's poll does not
 * wait meanwhile), a page-cache append of a few KiB that takes microseconds, where the thread
 * pool's hand-off and wake-up cost a loop turn or more (issue 13). Each such write is timed: one
 * that takes over 1 ms and slept in the kernel (a slow or throttled disk; not a preemption, which
 * the pool would not spare the loop) sends the writes of the next 10 s through the thread pool
 * (logged, rate-limited), and so do batches over 256 KiB. Anything else (stdout, a
 * FIFO, a device) is written through uv_fs (thread pool). Callbacks never fire inside a call.
 * The file is opened lazily (O_APPEND|O_CREAT, 0640); if it cannot be
 * opened or written, the writes of that batch fail with PSKGW_EIO and the next write tries to
 * open it again. A batch that failed after part of it was written (a disk filling up) may leave
 * a partial line at the end of the file: the next batch then starts with "\n", so the lines
 * written again are whole lines of their own. "-" writes to stdout (never closed). reopen() closes the file after the current
 * write so the next write opens the path again (log rotation on SIGHUP).
 */
#ifndef PSKGW_SINKS_APPENDER_H
#define PSKGW_SINKS_APPENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct pskgw_appender pskgw_appender_t;
typedef void (*pskgw_appender_cb)(void *arg, int status);

/* 0, PSKGW_EINVAL, PSKGW_ENOMEM. Owned by the caller until pskgw_appender_close(). */
int pskgw_appender_new(uv_loop_t *loop, const char *path, pskgw_appender_t **out);
/* Copy data (plus "\n" when newline) for appending. 0: cb(arg, 0 | PSKGW_EIO) fires once, later
 * (cb may be NULL). PSKGW_ENOMEM or PSKGW_ECLOSED now, without a callback. */
int pskgw_appender_write(pskgw_appender_t *a, const char *data, size_t len, bool newline,
                         pskgw_appender_cb cb, void *arg);
/* Write in place: reserve room for up to max bytes (plus the newline) at the end of the pending
 * batch, write them at *where, then commit the len (<= max) bytes written, with cb as for
 * pskgw_appender_write(). *where is valid until the commit; nothing else may be called on a in
 * between. reserve: 0, PSKGW_ENOMEM or PSKGW_ECLOSED (then no commit). commit cannot fail.
 * The batches' buffers are reused: in steady state neither call allocates. */
int pskgw_appender_reserve(pskgw_appender_t *a, size_t max, char **where);
void pskgw_appender_commit(pskgw_appender_t *a, size_t len, bool newline, pskgw_appender_cb cb,
                           void *arg);
void pskgw_appender_reopen(pskgw_appender_t *a);
/* Complete pending writes, close the file, free; cb(arg) once, later. */
void pskgw_appender_close(pskgw_appender_t *a, void (*cb)(void *arg), void *arg);

#endif
