#define _GNU_SOURCE /* fdatasync, flock */
#include "sinks/spool.h"

#include "common/err.h"
#include "common/log.h"
#include "sinks/record.h"
#include "sinks/spool_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH_FSYNC_MS 200
#define SCAN_CHUNK     (256u * 1024u)
#define pwrite_all     pskgw_spool_pwrite_all
#define pread_all      pskgw_spool_pread_all

typedef struct {
    pskgw_spool_append_cb cb;
    void *arg;
} waiter_t;

/* One job on the thread pool: inputs set on the loop thread, outputs read back after it. */
typedef struct {
    bool open;
    pskgw_spool_scan_t scan; /* out of the open job */
    bool whdr;               /* write the file header at 0 before the appended records */
    uint8_t *abuf;
    size_t alen;
    uint64_t aoff;
    waiter_t *aw;
    size_t awn;
    bool fsync;
    bool commit;
    uint64_t commit_val;
    bool reset;
    bool read;
    uint64_t roff;
    size_t rlen;
    uint8_t *rbuf;
    size_t rgot; /* out */
    bool close;
    int err;  /* out: open or append error (PSKGW_E*) */
    int oerr; /* out: fsync/offset/reset error */
} job_t;

struct pskgw_spool {
    uv_loop_t *loop;
    char *name;
    char *path; /* dir/name.spool */
    char *dir;
    uint8_t sync[PSKGW_SPOOL_SYNC_LEN]; /* the file's (sinks/record.h); set by the open scan */
    int fd;
    int off_fd;
    uint64_t max_bytes;
    pskgw_sink_fsync_t fsync_mode;
    const pskgw_spool_cbs_t *cbs;
    void *arg;

    bool opening;
    bool broken;
    bool closing;
    bool fds_closed;
    bool dirty; /* written since the last fdatasync (batch mode) */
    bool want_fsync;
    uint64_t written_end;
    uint64_t read_off;
    uint64_t committed;
    uint64_t committed_disk;
    uint64_t backlog_end;
    uint64_t writing; /* bytes of the append job in progress */

    uint8_t *pend;
    size_t pend_len;
    size_t pend_cap;
    waiter_t *pw;
    size_t pw_len;
    size_t pw_cap;

    bool read_req;
    size_t read_want; /* bytes asked for by pskgw_spool_read() */
    size_t read_min;  /* at least this much: the next record is that big */

    bool busy;
    uv_work_t work;
    job_t job;
    uv_timer_t timer;
    void (*close_cb)(void *);
    void *close_arg;
};

static void kick(pskgw_spool_t *s);

/* Thread pool: read the offset file, then check (and migrate or repair) the spool file. */
static int job_open(pskgw_spool_t *s, job_t *j)
{
    uint8_t obuf[PSKGW_SPOOL_OFFSET_LEN];
    uint64_t committed = 0;
    ssize_t n = pskgw_spool_pread_all(s->off_fd, obuf, sizeof(obuf), 0);

    if (n != (ssize_t)sizeof(obuf) || pskgw_spool_offset_decode(obuf, sizeof(obuf), &committed) < 0)
        committed = 0; /* missing or damaged: replay everything (duplicates only) */
    return pskgw_spool_scan(&s->fd, s->off_fd, s->path, s->dir, committed, &j->scan);
}

static int write_offset(pskgw_spool_t *s, uint64_t off)
{
    uint8_t obuf[PSKGW_SPOOL_OFFSET_LEN];
    int rc;

    pskgw_spool_offset_encode(obuf, off);
    rc = pwrite_all(s->off_fd, obuf, sizeof(obuf), 0);
    if (rc == 0 && s->fsync_mode != PSKGW_SINK_FSYNC_NEVER && fdatasync(s->off_fd) < 0)
        rc = PSKGW_EIO;
    return rc;
}

static void work_cb(uv_work_t *w)
{
    pskgw_spool_t *s = w->data;
    job_t *j = &s->job;
    int rc;

    if (j->open) {
        j->err = job_open(s, j);
        return;
    }
    if (j->alen > 0) {
        rc = 0;
        if (j->whdr) {
            uint8_t fh[PSKGW_SPOOL_FILE_HDR];
            pskgw_spool_file_header(fh, s->sync);
            rc = pwrite_all(s->fd, fh, sizeof(fh), 0);
        }
        if (rc == 0)
            rc = pwrite_all(s->fd, j->abuf, j->alen, j->aoff);
        if (rc == 0 && s->fsync_mode == PSKGW_SINK_FSYNC_ALWAYS && fdatasync(s->fd) < 0)
            rc = PSKGW_EIO;
        j->err = rc;
    }
    if (j->fsync && fdatasync(s->fd) < 0)
        j->oerr = PSKGW_EIO;
    if (j->commit && (rc = write_offset(s, j->commit_val)) < 0)
        j->oerr = rc;
    if (j->reset) {
        /* offset first: a crash before the truncate replays delivered records, never skips */
        rc = write_offset(s, 0);
        if (rc == 0 && ftruncate(s->fd, 0) < 0)
            rc = PSKGW_EIO;
        if (rc < 0) {
            j->reset = false;
            j->oerr = rc;
        }
    }
    if (j->read) {
        ssize_t n = pread_all(s->fd, j->rbuf, j->rlen, j->roff);
        j->rgot = n > 0 ? (size_t)n : 0;
    }
    if (j->close) {
        if (s->fsync_mode != PSKGW_SINK_FSYNC_NEVER) {
            (void)fdatasync(s->fd);
            (void)fdatasync(s->off_fd);
        }
        close(s->fd);
        close(s->off_fd);
    }
}

static void timer_close_cb(uv_handle_t *h)
{
    pskgw_spool_t *s = h->data;
    void (*cb)(void *) = s->close_cb;
    void *arg = s->close_arg;

    free(s->pend);
    free(s->pw);
    free(s->name);
    free(s->path);
    free(s->dir);
    free(s);
    if (cb)
        cb(arg);
}

/* Where reading may go on after damaged bytes at from: the next offset in the buffer where a
 * valid record starts, or may start (the record or its header goes past the buffer but fits
 * in the file: the next read checks it), else the end of the buffer. */
static size_t resync(const pskgw_spool_t *s, const job_t *j, size_t from)
{
    for (size_t i = from + 1; i < j->rgot; i++) {
        size_t left = j->rgot - i;
        const uint8_t *body;
        size_t blen;
        size_t consumed = 0;
        int rc;

        if (memcmp(j->rbuf + i, s->sync,
                   left < PSKGW_SPOOL_SYNC_LEN ? left : PSKGW_SPOOL_SYNC_LEN) != 0)
            continue;
        rc = pskgw_spool_record_parse(j->rbuf + i, left, s->sync, &body, &blen, &consumed);
        if (rc == 0)
            return i;
        if (rc == PSKGW_EAGAIN && (consumed == 0 ? j->roff + j->rgot < s->written_end
                                                 : j->roff + i + consumed <= s->written_end))
            return i;
    }
    return j->rgot;
}

static void deliver_read(pskgw_spool_t *s, job_t *j)
{
    size_t used = 0;

    while (used < j->rgot) {
        const uint8_t *body;
        size_t blen;
        size_t consumed = 0;
        int rc = pskgw_spool_record_parse(j->rbuf + used, j->rgot - used, s->sync, &body, &blen,
                                          &consumed);

        if (rc == PSKGW_EAGAIN) {
            bool fits = consumed == 0 ? j->roff + j->rgot < s->written_end
                                      : j->roff + used + consumed <= s->written_end;
            if (fits) {
                if (used == 0 && consumed > j->rlen)
                    s->read_min = consumed; /* next read fits the big record */
                break;
            }
            rc = PSKGW_EPARSE; /* claims bytes past the end: damaged */
        }
        if (rc < 0) {
            /* damaged bytes (kept by the open scan between valid records, or damaged since):
             * skip to the next valid record, never past it */
            size_t k = resync(s, j, used);

            PSKGW_ERR("spool \"%s\": damaged record at offset %llu, skipping %llu bytes", s->name,
                      (unsigned long long)(j->roff + used), (unsigned long long)(k - used));
            used = k;
            s->read_min = 0;
            s->read_off = j->roff + used;
            continue;
        }
        if (s->cbs->on_record(s->arg, body, blen, j->roff + used, j->roff + used + consumed) != 0)
            break;
        used += consumed;
        s->read_min = 0;
        s->read_off = j->roff + used;
    }
}

/* The open scan's results; records appended meanwhile get the file's sync. */
static void opened(pskgw_spool_t *s, const pskgw_spool_scan_t *sc)
{
    memcpy(s->sync, sc->sync, sizeof(s->sync));
    for (size_t at = 0; at < s->pend_len;) {
        uint8_t *rec = s->pend + at;
        size_t blen =
            (size_t)rec[16] | (size_t)rec[17] << 8 | (size_t)rec[18] << 16 | (size_t)rec[19] << 24;
        pskgw_spool_record_header(rec, s->sync, rec + PSKGW_SPOOL_REC_HDR, blen);
        at += PSKGW_SPOOL_REC_HDR + blen;
    }
    s->committed = s->committed_disk = s->read_off = sc->start;
    s->written_end = s->backlog_end = sc->end;
    if (sc->migrated || sc->dropped) {
        if (sc->header == 0)
            PSKGW_WARN("spool \"%s\": migrated %llu records of the old format (%llu bytes after "
                       "the first invalid one dropped)",
                       s->name, (unsigned long long)sc->migrated, (unsigned long long)sc->dropped);
        else if (sc->header == 1)
            PSKGW_WARN("spool \"%s\": emptied a torn file header (%llu bytes)", s->name,
                       (unsigned long long)sc->dropped);
        else
            PSKGW_ERR("spool \"%s\": damaged file header: %llu bytes moved to \"%s.damaged\", "
                      "spool emptied",
                      s->name, (unsigned long long)sc->dropped, s->path);
    }
    if (sc->cut)
        PSKGW_WARN("spool \"%s\": cut %llu bytes of a torn or damaged tail", s->name,
                   (unsigned long long)sc->cut);
    if (sc->damaged)
        PSKGW_ERR("spool \"%s\": %llu damaged bytes between valid records (skipped; the "
                  "records after them are kept)",
                  s->name, (unsigned long long)sc->damaged);
    if (sc->end > sc->start)
        PSKGW_INFO("spool \"%s\": %llu bytes to replay", s->name,
                   (unsigned long long)(sc->end - sc->start));
}

static void after_work_cb(uv_work_t *w, int status)
{
    pskgw_spool_t *s = w->data;
    job_t *j = &s->job;
    job_t done = *j;
    bool notify = false;

    (void)status;
    memset(j, 0, sizeof(*j));
    if (done.open) {
        s->opening = false;
        if (done.err < 0) {
            PSKGW_ERR("spool \"%s\": cannot open: %s", s->name, pskgw_strerror(done.err));
            s->broken = true;
            for (size_t i = 0; i < s->pw_len; i++)
                s->pw[i].cb(s->pw[i].arg, PSKGW_EIO);
            s->pw_len = 0;
            s->pend_len = 0;
        } else {
            opened(s, &done.scan);
        }
        notify = true;
    }
    s->writing = 0;
    if (done.awn > 0) {
        if (done.err == 0) {
            s->written_end = done.aoff + done.alen;
            if (done.whdr && s->read_off < PSKGW_SPOOL_FILE_HDR) {
                /* the file starts again: offset 0 on disk means "after the header" */
                s->read_off = s->committed = s->committed_disk = PSKGW_SPOOL_FILE_HDR;
            }
            s->dirty = true;
            notify = true; /* new unread records */
        } else {
            PSKGW_ERR("spool \"%s\": append failed: %s", s->name, pskgw_strerror(done.err));
        }
        for (size_t i = 0; i < done.awn; i++)
            done.aw[i].cb(done.aw[i].arg, done.err);
    }
    free(done.abuf);
    free(done.aw);
    if (done.oerr < 0)
        PSKGW_ERR("spool \"%s\": offset/fsync failed: %s", s->name, pskgw_strerror(done.oerr));
    if (done.commit && done.oerr == 0)
        s->committed_disk = done.commit_val;
    if (done.reset) {
        s->written_end = s->read_off = s->committed = s->committed_disk = s->backlog_end = 0;
    }
    if (done.read) {
        s->read_req = false;
        deliver_read(s, &done);
        free(done.rbuf);
        notify = true;
    }
    if (done.close) {
        s->fds_closed = true;
        s->busy = false;
        uv_close((uv_handle_t *)&s->timer, timer_close_cb);
        return;
    }
    s->busy = false;
    if (notify && !s->closing)
        s->cbs->on_ready(s->arg);
    kick(s);
}

static void kick(pskgw_spool_t *s)
{
    job_t *j = &s->job;
    bool any = false;

    if (s->busy || s->fds_closed || s->opening)
        return;
    memset(j, 0, sizeof(*j));
    if (s->pend_len > 0) {
        j->abuf = s->pend;
        j->alen = s->pend_len;
        j->whdr = s->written_end == 0;
        j->aoff = j->whdr ? PSKGW_SPOOL_FILE_HDR : s->written_end;
        j->aw = s->pw;
        s->writing = s->pend_len;
        j->awn = s->pw_len;
        s->pend = NULL;
        s->pend_len = s->pend_cap = 0;
        s->pw = NULL;
        s->pw_len = s->pw_cap = 0;
        any = true;
    }
    if (s->want_fsync) {
        s->want_fsync = false;
        j->fsync = true;
        any = true;
    }
    if (s->committed != s->committed_disk) {
        j->commit = true;
        j->commit_val = s->committed;
        any = true;
    }
    if (!any && s->written_end > 0 && s->read_off == s->written_end &&
        s->committed == s->written_end && !s->read_req) {
        j->reset = true;
        any = true;
    }
    if (!j->reset && s->read_req && s->read_off < s->written_end && !s->closing) {
        uint64_t left = s->written_end - s->read_off;
        j->rlen = s->read_want > s->read_min ? s->read_want : s->read_min;
        if (left < j->rlen)
            j->rlen = (size_t)left;
        j->rbuf = malloc(j->rlen);
        if (j->rbuf) {
            j->read = true;
            j->roff = s->read_off;
            any = true;
        }
    } else if (s->read_req && (s->read_off >= s->written_end || s->closing)) {
        s->read_req = false;
    }
    if (s->closing && !j->alen && !j->commit && !j->reset) {
        j->close = true;
        any = true;
    }
    if (!any)
        return;
    s->busy = true;
    s->work.data = s;
    if (uv_queue_work(s->loop, &s->work, work_cb, after_work_cb) != 0) {
        /* cannot happen with a valid loop; run nothing and leave the state for a later kick */
        s->busy = false;
        PSKGW_ERR("spool \"%s\": uv_queue_work failed", s->name);
    }
}

static void timer_cb(uv_timer_t *t)
{
    pskgw_spool_t *s = t->data;

    if (s->dirty && s->fsync_mode == PSKGW_SINK_FSYNC_BATCH) {
        s->dirty = false;
        s->want_fsync = true;
        kick(s);
    }
}

static char *join_path(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%s/%s%s", dir, name, ext);
    return p;
}

int pskgw_spool_new(uv_loop_t *loop, const char *dir, const char *name, uint64_t max_bytes,
                    pskgw_sink_fsync_t fsync_mode, const pskgw_spool_cbs_t *cbs, void *arg,
                    pskgw_spool_t **out)
{
    pskgw_spool_t *s;
    char *p1 = NULL;
    char *p2 = NULL;
    int rc = PSKGW_ENOMEM;

    if (!loop || !dir || !name || !name[0] || strchr(name, '/') || !cbs)
        return PSKGW_EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return PSKGW_ENOMEM;
    s->fd = s->off_fd = -1;
    s->name = strdup(name);
    p1 = join_path(dir, name, ".spool");
    p2 = join_path(dir, name, ".offset");
    s->dir = strdup(dir);
    if (!s->name || !p1 || !p2 || !s->dir)
        goto fail;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        PSKGW_ERR("spool: cannot create \"%s\": %s", dir, strerror(errno));
        rc = PSKGW_EIO;
        goto fail;
    }
    s->fd = open(p1, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    s->off_fd = open(p2, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->fd < 0 || s->off_fd < 0) {
        PSKGW_ERR("spool: cannot open \"%s\": %s", p1, strerror(errno));
        rc = PSKGW_EIO;
        goto fail;
    }
    if (flock(s->fd, LOCK_EX | LOCK_NB) < 0) {
        PSKGW_ERR("spool: \"%s\" is in use by another process", p1);
        rc = PSKGW_EBUSY;
        goto fail;
    }
    s->path = p1; /* read by the open job */
    p1 = NULL;
    s->loop = loop;
    s->max_bytes = max_bytes;
    s->fsync_mode = fsync_mode;
    s->cbs = cbs;
    s->arg = arg;
    s->read_want = SCAN_CHUNK;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    if (fsync_mode == PSKGW_SINK_FSYNC_BATCH)
        uv_timer_start(&s->timer, timer_cb, BATCH_FSYNC_MS, BATCH_FSYNC_MS);
    /* the open scan is the first job */
    s->opening = true;
    s->busy = true;
    memset(&s->job, 0, sizeof(s->job));
    s->job.open = true;
    s->work.data = s;
    if (uv_queue_work(loop, &s->work, work_cb, after_work_cb) != 0) {
        s->busy = false;
        s->opening = false;
        s->broken = true;
    }
    free(p2);
    *out = s;
    return 0;
fail:
    if (s->fd >= 0)
        close(s->fd);
    if (s->off_fd >= 0)
        close(s->off_fd);
    free(p1);
    free(p2);
    free(s->name);
    free(s->dir);
    free(s);
    return rc;
}

int pskgw_spool_append(pskgw_spool_t *s, const pskgw_msg_t *m, pskgw_spool_append_cb cb, void *arg)
{
    size_t blen = pskgw_msg_encoded_len(m);
    size_t rlen = PSKGW_SPOOL_REC_HDR + blen;
    uint8_t *rec;

    if (s->closing)
        return PSKGW_ECLOSED;
    if (s->broken)
        return PSKGW_EIO;
    if (blen > PSKGW_SPOOL_REC_MAX_BODY)
        return PSKGW_ETOOBIG;
    if (pskgw_spool_bytes(s) + rlen > s->max_bytes)
        return PSKGW_EFULL;
    if (s->pend_len + rlen > s->pend_cap) {
        size_t ncap = s->pend_cap ? s->pend_cap : 4096;
        uint8_t *np;
        while (ncap < s->pend_len + rlen)
            ncap *= 2;
        np = realloc(s->pend, ncap);
        if (!np)
            return PSKGW_ENOMEM;
        s->pend = np;
        s->pend_cap = ncap;
    }
    if (s->pw_len == s->pw_cap) {
        size_t ncap = s->pw_cap ? 2 * s->pw_cap : 16;
        waiter_t *np = realloc(s->pw, ncap * sizeof(*np));
        if (!np)
            return PSKGW_ENOMEM;
        s->pw = np;
        s->pw_cap = ncap;
    }
    rec = s->pend + s->pend_len;
    pskgw_msg_encode(m, rec + PSKGW_SPOOL_REC_HDR);
    pskgw_spool_record_header(rec, s->sync, rec + PSKGW_SPOOL_REC_HDR, blen);
    s->pend_len += rlen;
    s->pw[s->pw_len].cb = cb;
    s->pw[s->pw_len].arg = arg;
    s->pw_len++;
    kick(s);
    return 0;
}

void pskgw_spool_read(pskgw_spool_t *s, size_t max_bytes)
{
    if (s->read_req || s->closing || s->broken || s->read_off >= s->written_end)
        return;
    s->read_req = true;
    s->read_want = max_bytes ? max_bytes : SCAN_CHUNK;
    kick(s);
}

void pskgw_spool_commit(pskgw_spool_t *s, uint64_t off)
{
    if (off == s->committed || off > s->read_off)
        return;
    s->committed = off;
    kick(s);
}

bool pskgw_spool_opening(const pskgw_spool_t *s)
{
    return s->opening;
}

bool pskgw_spool_has_unread(const pskgw_spool_t *s)
{
    return s->opening || s->read_off < s->written_end;
}

bool pskgw_spool_in_backlog(const pskgw_spool_t *s)
{
    return s->opening || s->read_off < s->backlog_end;
}

uint64_t pskgw_spool_read_offset(const pskgw_spool_t *s)
{
    return s->read_off;
}

uint64_t pskgw_spool_bytes(const pskgw_spool_t *s)
{
    uint64_t hdr = s->written_end >= PSKGW_SPOOL_FILE_HDR ? PSKGW_SPOOL_FILE_HDR : 0;

    return s->written_end - hdr + s->writing + s->pend_len;
}

void pskgw_spool_close(pskgw_spool_t *s, void (*cb)(void *arg), void *arg)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    uv_timer_stop(&s->timer);
    if (s->broken && !s->busy && !s->fds_closed) {
        /* fail what is pending, then close */
        for (size_t i = 0; i < s->pw_len; i++)
            s->pw[i].cb(s->pw[i].arg, PSKGW_EIO);
        s->pw_len = 0;
        s->pend_len = 0;
    }
    kick(s);
}
