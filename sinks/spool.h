/* pskgw_spool_t: one sink's disk spool (module-internal).
 *
 * Files (in the spool directory, named after the sink): "<name>.spool", an append-only sequence
 * of CRC-checked records (sinks/record.h), and "<name>.offset", the offset below which every
 * record has been delivered. Nothing is ever rewritten in place except the offset file.
 *
 * Crash safety (kill -9 at any point loses nothing, may duplicate):
 *  - a record is appended with one pwrite at the known end; an append is reported only after
 *    the write (and, with fsync "always", fdatasync) completed;
 *  - the offset only moves past records the sink reported delivered, and it is written after
 *    the fact: a crash replays from an older offset (duplicates, never loss);
 *  - when everything is delivered the spool is emptied: the offset file is set to 0 first, then
 *    the file truncated; a crash between the two replays delivered records (duplicates);
 *  - on open the records from the offset on are checked (sinks/spool_scan.h); a torn tail (a
 *    crash during an append) is truncated away, never scanned, before anything new is appended.
 *    A damaged record with valid records after it (a bad sector, a bit flip) is not a tail: the
 *    records after it are kept, and reading skips the damaged bytes to the next valid record
 *    (logged), never further. Only records that start with the file's random sync count
 *    (sinks/record.h): bytes a device put in a payload are never taken for a record.
 *  - the file header (with the sync) is written with the first append to an empty file; the
 *    file is truncated to 0 when emptied. max_bytes counts records, not the 24-byte header.
 * fsync policy: "always": fdatasync before an append is reported (group commit: one per batch
 * of appends); "batch": appends reported after write(2), fdatasync every 200 ms when dirty;
 * "never": left to the kernel. kill -9 loses nothing in every mode; power loss only with always.
 *
 * The loop never blocks on the disk: all file I/O after pskgw_spool_new() (which opens and locks
 * the files synchronously: call it at start-up or reload) runs as one uv_work_t job at a time
 * on the libuv thread pool; the job touches only its own job data.
 * A second process cannot use the same spool: the file is locked (flock) -> PSKGW_EBUSY.
 */
#ifndef PSKGW_SINKS_SPOOL_H
#define PSKGW_SINKS_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sinks/msg.h"
#include "sinks/sinkset.h"

typedef struct pskgw_spool pskgw_spool_t;

typedef struct {
    /* One record read by pskgw_spool_read(): body borrowed during the call; off/end are its
     * file offsets. Return 0 to take it (the read offset moves past it) or non-zero to stop
     * (it is read again next time). */
    int (*on_record)(void *arg, const uint8_t *body, size_t len, uint64_t off, uint64_t end);
    /* After a pskgw_spool_read() completed (records delivered or not), after appends were
     * written (there is more to read), and once after the open scan finished
     * (pskgw_spool_opening() turns false). */
    void (*on_ready)(void *arg);
} pskgw_spool_cbs_t;

typedef void (*pskgw_spool_append_cb)(void *arg, int status);

/* Open (create) dir/name.spool and dir/name.offset (dir created 0700 if missing), lock them, and
 * start the asynchronous open scan. cbs/arg borrowed for the spool's life.
 * 0, PSKGW_EBUSY (locked by another process), PSKGW_EIO, PSKGW_ENOMEM, PSKGW_EINVAL. */
int pskgw_spool_new(uv_loop_t *loop, const char *dir, const char *name, uint64_t max_bytes,
                    pskgw_sink_fsync_t fsync_mode, const pskgw_spool_cbs_t *cbs, void *arg,
                    pskgw_spool_t **out);

/* Queue m for appending. 0: cb(arg, 0) fires later once it is written per the fsync policy, or
 * cb(arg, PSKGW_EIO) if the write failed. Fails now (no callback) with PSKGW_EFULL (max_bytes
 * would be exceeded), PSKGW_ETOOBIG, PSKGW_ENOMEM, PSKGW_ECLOSED, PSKGW_EIO (spool broken). */
int pskgw_spool_append(pskgw_spool_t *s, const pskgw_msg_t *m, pskgw_spool_append_cb cb, void *arg);

/* Read about max_bytes (0: 256 KiB; more when the next record is bigger) from the read
 * offset (async; on_record per whole record, then on_ready). No-op when a read is already
 * pending or nothing is unread. */
void pskgw_spool_read(pskgw_spool_t *s, size_t max_bytes);
/* Every record before off has been delivered (off must be a record boundary <= read offset). */
void pskgw_spool_commit(pskgw_spool_t *s, uint64_t off);

bool pskgw_spool_opening(const pskgw_spool_t *s);
/* Records written (by now or a previous run) that have not been read yet. */
bool pskgw_spool_has_unread(const pskgw_spool_t *s);
/* True while records left by a previous run are still unread (or the open scan runs): the
 * sink then spools every new message, to keep each device's order. */
bool pskgw_spool_in_backlog(const pskgw_spool_t *s);
uint64_t pskgw_spool_read_offset(const pskgw_spool_t *s);
/* File size plus pending appends. */
uint64_t pskgw_spool_bytes(const pskgw_spool_t *s);

/* Finish pending appends and the offset, close the files, free. cb fires once, later. */
void pskgw_spool_close(pskgw_spool_t *s, void (*cb)(void *arg), void *arg);

#endif
