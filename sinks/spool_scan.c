#define _GNU_SOURCE /* fdatasync, flock, memmem */
#include "sinks/spool_scan.h"

#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCAN_CHUNK (256u * 1024u)

int pskgw_spool_pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return PSKGW_EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

ssize_t pskgw_spool_pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int fresh_sync(uint8_t sync[PSKGW_SPOOL_SYNC_LEN])
{
    size_t got = 0;

    while (got < PSKGW_SPOOL_SYNC_LEN) {
        ssize_t r = getrandom(sync + got, PSKGW_SPOOL_SYNC_LEN - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return PSKGW_EIO;
        got += (size_t)r;
    }
    return 0;
}

/* Is there a whole, valid record (parsed by v1 or with sync) at off? Its size in *len. */
static bool record_at(int fd, const uint8_t *sync, uint64_t off, uint64_t size, size_t *len,
                      uint8_t **copy)
{
    size_t hl = sync ? PSKGW_SPOOL_REC_HDR : PSKGW_SPOOL_V1_REC_HDR;
    uint8_t hdr[PSKGW_SPOOL_REC_HDR];
    const uint8_t *body;
    size_t blen;
    size_t need = 0;
    uint8_t *buf;
    int rc;

    if (size - off < hl || pskgw_spool_pread_all(fd, hdr, hl, off) != (ssize_t)hl)
        return false;
    rc = sync ? pskgw_spool_record_parse(hdr, hl, sync, &body, &blen, &need)
              : pskgw_spool_v1_parse(hdr, hl, &body, &blen, &need);
    if (rc != PSKGW_EAGAIN && rc != 0)
        return false;
    if (rc == 0)
        need = hl;
    if (off + need > size || !(buf = malloc(need)))
        return false;
    if (pskgw_spool_pread_all(fd, buf, need, off) != (ssize_t)need ||
        (sync ? pskgw_spool_record_parse(buf, need, sync, &body, &blen, &need)
              : pskgw_spool_v1_parse(buf, need, &body, &blen, &need)) != 0) {
        free(buf);
        return false;
    }
    *len = need;
    if (copy)
        *copy = buf;
    else
        free(buf);
    return true;
}

/* The offset of the first whole valid record after pos that starts with sync, or size. Only
 * sync is searched for: a device's payload cannot hold it. */
static uint64_t next_record(int fd, const uint8_t *sync, uint64_t pos, uint64_t size)
{
    uint8_t *buf = malloc(SCAN_CHUNK);
    uint64_t at = pos + 1;
    uint64_t found = size;

    while (buf && at + PSKGW_SPOOL_REC_HDR <= size && found == size) {
        size_t want = size - at < SCAN_CHUNK ? (size_t)(size - at) : SCAN_CHUNK;
        ssize_t n = pskgw_spool_pread_all(fd, buf, want, at);
        size_t i = 0;
        size_t len;

        if (n < (ssize_t)PSKGW_SPOOL_SYNC_LEN)
            break;
        while (found == size && i + PSKGW_SPOOL_SYNC_LEN <= (size_t)n) {
            uint8_t *p = memmem(buf + i, (size_t)n - i, sync, PSKGW_SPOOL_SYNC_LEN);
            if (!p)
                break;
            i = (size_t)(p - buf);
            if (record_at(fd, sync, at + i, size, &len, NULL))
                found = at + i;
            i++;
        }
        if ((size_t)n < want)
            break;
        at += (uint64_t)n - (PSKGW_SPOOL_SYNC_LEN - 1); /* a sync may straddle the chunks */
    }
    free(buf);
    return found;
}

/* The format-2 chain from pos; sets out->end, cut (by the caller), damaged. */
static int scan_chain(int fd, uint64_t pos, uint64_t size, pskgw_spool_scan_t *out)
{
    size_t cap = SCAN_CHUNK;
    uint8_t *buf = malloc(cap);

    if (!buf)
        return PSKGW_ENOMEM;
    while (pos < size) {
        size_t want = size - pos < cap ? (size_t)(size - pos) : cap;
        ssize_t n = pskgw_spool_pread_all(fd, buf, want, pos);
        size_t used = 0;
        size_t consumed = 0;
        const uint8_t *body;
        size_t blen;
        int rc;

        if (n != (ssize_t)want) {
            free(buf);
            return PSKGW_EIO;
        }
        while ((rc = pskgw_spool_record_parse(buf + used, (size_t)n - used, out->sync, &body, &blen,
                                              &consumed)) == 0)
            used += consumed;
        pos += used;
        if (rc == PSKGW_EAGAIN && consumed == 0) {
            if (pos + ((size_t)n - used) >= size)
                break; /* a torn header at the end: cut, not scanned */
            continue;
        }
        if (rc == PSKGW_EAGAIN) {
            if (pos + consumed > size)
                break; /* a valid header whose body is torn: cut, not scanned */
            if (consumed > cap) {
                uint8_t *nb = realloc(buf, consumed); /* a record larger than the chunk */
                if (!nb) {
                    free(buf);
                    return PSKGW_ENOMEM;
                }
                buf = nb;
                cap = consumed;
            }
            continue;
        }
        /* damage: resynchronise on the file's sync only */
        {
            uint64_t nxt = next_record(fd, out->sync, pos, size);
            if (nxt >= size)
                break;
            out->damaged += nxt - pos;
            pos = nxt;
        }
    }
    free(buf);
    out->end = pos;
    return 0;
}

static char *path_with(const char *path, const char *ext)
{
    size_t n = strlen(path) + strlen(ext) + 1;
    char *p = malloc(n);

    if (p)
        snprintf(p, n, "%s%s", path, ext);
    return p;
}

static int reset_offset(int off_fd)
{
    uint8_t obuf[PSKGW_SPOOL_OFFSET_LEN];

    pskgw_spool_offset_encode(obuf, 0);
    if (pskgw_spool_pwrite_all(off_fd, obuf, sizeof(obuf), 0) < 0 || fdatasync(off_fd) < 0)
        return PSKGW_EIO;
    return 0;
}

/* Copy the whole file to "<path>.damaged" (for an operator), then empty it. */
static int set_aside(int fd, int off_fd, const char *path, uint64_t size)
{
    char *p = path_with(path, ".damaged");
    uint8_t *buf = malloc(SCAN_CHUNK);
    int rc = PSKGW_EIO;
    int dfd = -1;

    if (!p || !buf) {
        rc = PSKGW_ENOMEM;
        goto fail;
    }
    dfd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (dfd < 0)
        goto fail;
    for (uint64_t at = 0; at < size;) {
        size_t want = size - at < SCAN_CHUNK ? (size_t)(size - at) : SCAN_CHUNK;
        if (pskgw_spool_pread_all(fd, buf, want, at) != (ssize_t)want ||
            pskgw_spool_pwrite_all(dfd, buf, want, at) < 0)
            goto fail;
        at += want;
    }
    if (fdatasync(dfd) < 0 || reset_offset(off_fd) < 0 || ftruncate(fd, 0) < 0)
        goto fail;
    rc = 0;
fail:
    if (dfd >= 0)
        close(dfd);
    free(buf);
    free(p);
    return rc;
}

/* Format 1 -> format 2 (see the header). */
static int migrate(int *fd, int off_fd, const char *path, const char *dir, uint64_t from,
                   uint64_t size, pskgw_spool_scan_t *out)
{
    char *tmp = path_with(path, ".migrating");
    uint8_t fh[PSKGW_SPOOL_FILE_HDR];
    uint64_t wr = PSKGW_SPOOL_FILE_HDR;
    uint64_t pos = from;
    int rc = PSKGW_EIO;
    int nfd = -1;
    int dfd = -1;

    if (!tmp)
        return PSKGW_ENOMEM;
    nfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (nfd < 0 || flock(nfd, LOCK_EX | LOCK_NB) < 0)
        goto fail;
    pskgw_spool_file_header(fh, out->sync);
    if (pskgw_spool_pwrite_all(nfd, fh, sizeof(fh), 0) < 0)
        goto fail;
    for (;;) {
        size_t len = 0;
        uint8_t *rec = NULL;
        uint8_t hdr[PSKGW_SPOOL_REC_HDR];
        size_t blen;

        if (pos >= size || !record_at(*fd, NULL, pos, size, &len, &rec))
            break;
        blen = len - PSKGW_SPOOL_V1_REC_HDR;
        pskgw_spool_record_header(hdr, out->sync, rec + PSKGW_SPOOL_V1_REC_HDR, blen);
        rc = pskgw_spool_pwrite_all(nfd, hdr, sizeof(hdr), wr);
        if (rc == 0)
            rc = pskgw_spool_pwrite_all(nfd, rec + PSKGW_SPOOL_V1_REC_HDR, blen, wr + sizeof(hdr));
        free(rec);
        if (rc < 0)
            goto fail;
        rc = PSKGW_EIO;
        wr += sizeof(hdr) + blen;
        pos += len;
        out->migrated++;
    }
    /* offset 0 first: a crash before the rename replays the old file (duplicates only) */
    if (fdatasync(nfd) < 0 || reset_offset(off_fd) < 0 || rename(tmp, path) < 0)
        goto fail;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    close(*fd);
    *fd = nfd;
    out->start = PSKGW_SPOOL_FILE_HDR;
    out->end = wr;
    out->dropped = size - pos;
    free(tmp);
    return 0;
fail:
    if (nfd >= 0) {
        close(nfd);
        (void)unlink(tmp);
    }
    free(tmp);
    return rc;
}

int pskgw_spool_scan(int *fd, int off_fd, const char *path, const char *dir, uint64_t committed,
                     pskgw_spool_scan_t *out)
{
    uint8_t fh[PSKGW_SPOOL_FILE_HDR];
    struct stat st;
    uint64_t size;
    ssize_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    if (fstat(*fd, &st) < 0)
        return PSKGW_EIO;
    size = (uint64_t)st.st_size;
    if (size == 0) {
        /* a stale offset must not outlive the records it counted (they would be skipped) */
        if (committed != 0 && (rc = reset_offset(off_fd)) < 0)
            return rc;
        return fresh_sync(out->sync);
    }
    n = pskgw_spool_pread_all(*fd, fh, sizeof(fh), 0);
    if (n < 0)
        return PSKGW_EIO;
    if (pskgw_spool_is_v1(fh, (size_t)n)) {
        if ((rc = fresh_sync(out->sync)) < 0)
            return rc;
        return migrate(fd, off_fd, path, dir, committed <= size ? committed : 0, size, out);
    }
    rc = pskgw_spool_file_header_parse(fh, (size_t)n, out->sync);
    if (rc < 0) {
        out->header = rc == PSKGW_EAGAIN ? 1 : 2;
        out->dropped = size;
        if (rc == PSKGW_EAGAIN)
            rc = reset_offset(off_fd) < 0 || ftruncate(*fd, 0) < 0 ? PSKGW_EIO : 0;
        else
            rc = set_aside(*fd, off_fd, path, size);
        return rc < 0 ? rc : fresh_sync(out->sync);
    }
    if (committed < PSKGW_SPOOL_FILE_HDR || committed > size) {
        if (committed != 0 && (rc = reset_offset(off_fd)) < 0)
            return rc;
        committed = PSKGW_SPOOL_FILE_HDR; /* replay everything: duplicates, never loss */
    }
    out->start = committed;
    if ((rc = scan_chain(*fd, committed, size, out)) < 0)
        return rc;
    if (out->end < size) {
        if (ftruncate(*fd, (off_t)out->end) < 0)
            return PSKGW_EIO;
        out->cut = size - out->end;
    }
    return 0;
}
