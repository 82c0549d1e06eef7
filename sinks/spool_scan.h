/* The spool's open scan (module-internal; runs on the libuv thread pool, blocking file I/O).
 *
 * pskgw_spool_scan() takes a locked spool file and the offset the offset file holds, and leaves
 * the file ready for appending (sinks/record.h has the formats):
 *  - empty file: a fresh random sync (the header is written with the first append);
 *  - a format-2 file: the record chain is checked from the offset. A record whose header is
 *    valid but whose body goes past the end of the file is a torn append: it is cut, and its
 *    bytes are never scanned (they hold a device's payload). A record that fails its checks is
 *    damage: the scan looks for the next valid record that starts with the file's sync (which a
 *    device cannot know), keeps everything from there and counts the bytes skipped; when there
 *    is none the damaged bytes are a tail and are cut.
 *  - a torn header (the first append of the file was torn): the file is emptied;
 *  - a damaged header: the file is copied to "<path>.damaged" for an operator and emptied;
 *  - a format-1 file: migrated once (one way) to format 2: its valid records from the offset on
 *    (up to the first that fails its checks: format 1 cannot resynchronise safely) are written
 *    to "<path>.migrating" with a fresh sync, the offset file is set to 0 and synced, and the new
 *    file is renamed over the old one. A crash before the rename replays the old file again
 *    (duplicates); after it, the new file is complete. *fd is then the new (locked) file.
 * Returns 0 or PSKGW_EIO, PSKGW_ENOMEM. */
#ifndef PSKGW_SINKS_SPOOL_SCAN_H
#define PSKGW_SINKS_SPOOL_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sinks/record.h"

typedef struct {
    uint8_t sync[PSKGW_SPOOL_SYNC_LEN];
    uint64_t start;    /* first undelivered record (0 when the file is empty) */
    uint64_t end;      /* end of the last valid record = file size afterwards */
    uint64_t cut;      /* bytes cut from the end (torn or damaged tail) */
    uint64_t damaged;  /* damaged bytes between valid records (kept in the file, skipped) */
    uint64_t migrated; /* format-1 records migrated (0: no migration) */
    uint64_t dropped;  /* bytes of a format-1 file or damaged header not migrated */
    int header;        /* 0 fine, 1 torn header emptied, 2 damaged header set aside */
} pskgw_spool_scan_t;

int pskgw_spool_scan(int *fd, int off_fd, const char *path, const char *dir, uint64_t committed,
                     pskgw_spool_scan_t *out);

/* Thread pool helpers shared with spool.c. */
int pskgw_spool_pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off);
ssize_t pskgw_spool_pread_all(int fd, uint8_t *p, size_t n, uint64_t off);

#endif
