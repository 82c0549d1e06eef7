/* The spool on a real loop and real files: order, torn tails, damage, forged records in device
 * payloads, the format-1 migration, the offset file, limits. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/err.h"
#include "proc.h"
#include "sinks/crc32.h"
#include "sinks/msg.h"
#include "sinks/record.h"
#include "sinks/spool.h"

#define MAXR 256

typedef struct {
    uv_loop_t loop;
    pskgw_spool_t *sp;
    char dir[256];
    int appended;
    int append_err;
    int ready;
    int nrec;
    uint64_t seqs[MAXR];
    uint64_t offs[MAXR];
    uint64_t ends[MAXR];
    int stop_after; /* take at most this many records per read (0: all) */
    int taken_this_read;
    int closed;
} ctx_t;

static int on_record(void *arg, const uint8_t *body, size_t len, uint64_t off, uint64_t end)
{
    ctx_t *c = arg;
    pskgw_msg_t *m = NULL;

    if (c->stop_after && c->taken_this_read >= c->stop_after)
        return 1;
    cr_assert_eq(pskgw_msg_decode(body, len, &m), 0);
    cr_assert_lt(c->nrec, MAXR);
    c->seqs[c->nrec] = m->env.seq;
    c->offs[c->nrec] = off;
    c->ends[c->nrec] = end;
    c->nrec++;
    c->taken_this_read++;
    pskgw_msg_unref(m);
    return 0;
}

static void on_ready(void *arg)
{
    ((ctx_t *)arg)->ready++;
}

static const pskgw_spool_cbs_t cbs = { on_record, on_ready };

static void append_cb(void *arg, int status)
{
    ctx_t *c = arg;

    if (status == 0)
        c->appended++;
    else
        c->append_err++;
}

static void closed_cb(void *arg)
{
    ((ctx_t *)arg)->closed = 1;
}

static void run_until(ctx_t *c, int *flag, int want)
{
    uint64_t deadline = uv_now(&c->loop) + 10000;

    while (*flag < want) {
        uv_run(&c->loop, UV_RUN_ONCE);
        uv_update_time(&c->loop);
        cr_assert_lt(uv_now(&c->loop), deadline, "timed out waiting");
    }
}

static void open_spool(ctx_t *c, uint64_t max)
{
    int r0 = c->ready;

    cr_assert_eq(
        pskgw_spool_new(&c->loop, c->dir, "s1", max, PSKGW_SINK_FSYNC_BATCH, &cbs, c, &c->sp), 0);
    run_until(c, &c->ready, r0 + 1); /* the open scan */
}

static void close_spool(ctx_t *c)
{
    c->closed = 0;
    pskgw_spool_close(c->sp, closed_cb, c);
    run_until(c, &c->closed, 1);
    c->sp = NULL;
}

static pskgw_msg_t *mk(uint64_t seq, const char *dev)
{
    static const uint8_t pl[] = "payload-bytes";
    pskgw_envelope_t e = { .domain = "d",
                           .listener = "l",
                           .transport = "dtls",
                           .peer = "p:1",
                           .psk_identity = dev,
                           .rot_public_uid = dev,
                           .seq = seq,
                           .received_at_ms = 1000,
                           .payload = pl,
                           .payload_len = sizeof(pl) };
    pskgw_msg_t *m = NULL;

    cr_assert_eq(pskgw_msg_new(&e, "00000000000000000000000000000001", &m), 0);
    return m;
}

static void append_n(ctx_t *c, uint64_t first, int n)
{
    int want = c->appended + n;

    for (int i = 0; i < n; i++) {
        pskgw_msg_t *m = mk(first + (uint64_t)i, i % 2 ? "devA" : "devB");
        cr_assert_eq(pskgw_spool_append(c->sp, m, append_cb, c), 0);
        pskgw_msg_unref(m);
    }
    run_until(c, &c->appended, want);
}

static size_t read_hint; /* bytes per read (0: the spool's default) */

static void read_all(ctx_t *c)
{
    while (pskgw_spool_has_unread(c->sp)) {
        int r0 = c->ready;
        c->taken_this_read = 0;
        pskgw_spool_read(c->sp, read_hint);
        run_until(c, &c->ready, r0 + 1);
        if (c->stop_after)
            break;
    }
}

static ctx_t *setup(void)
{
    ctx_t *c = calloc(1, sizeof(*c));

    cr_assert_eq(uv_loop_init(&c->loop), 0);
    cr_assert_eq(pskgw_test_tmpdir(c->dir, sizeof(c->dir)), 0);
    return c;
}

static void teardown(ctx_t *c)
{
    if (c->sp)
        close_spool(c);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&c->loop), 0);
    pskgw_test_rmtree(c->dir);
    free(c);
}

static off_t file_size(ctx_t *c)
{
    char p[512];
    struct stat st;

    snprintf(p, sizeof(p), "%s/s1.spool", c->dir);
    cr_assert_eq(stat(p, &st), 0);
    return st.st_size;
}

Test(spool, append_read_in_order_then_empties)
{
    ctx_t *c = setup();

    open_spool(c, 1 << 20);
    append_n(c, 0, 50);
    read_all(c);
    cr_assert_eq(c->nrec, 50);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(c->seqs[i], (uint64_t)i);
    pskgw_spool_commit(c->sp, pskgw_spool_read_offset(c->sp));
    /* everything delivered: the spool truncates itself */
    for (int i = 0; i < 100 && pskgw_spool_bytes(c->sp) > 0; i++)
        uv_run(&c->loop, UV_RUN_ONCE); /* wakes when the reset job completes */
    cr_assert_eq(pskgw_spool_bytes(c->sp), 0);
    cr_assert_eq(file_size(c), 0);
    close_spool(c);
    c->nrec = 0;
    open_spool(c, 1 << 20);
    cr_assert_not(pskgw_spool_has_unread(c->sp));
    teardown(c);
}

Test(spool, torn_tail_cut_and_survivors_replayed)
{
    ctx_t *c = setup();
    char p[512];
    int fd;
    off_t good;
    static const uint8_t torn[] = { 'P', 'S', 'R', '1', 100, 0, 0, 0, 1, 2, 3, 4, 5, 6 };

    open_spool(c, 1 << 20);
    append_n(c, 0, 10);
    close_spool(c);
    good = file_size(c);
    snprintf(p, sizeof(p), "%s/s1.spool", c->dir);
    fd = open(p, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, torn, sizeof(torn)), (ssize_t)sizeof(torn));
    close(fd);

    open_spool(c, 1 << 20);
    cr_assert_eq(file_size(c), good, "torn tail not cut");
    cr_assert(pskgw_spool_in_backlog(c->sp));
    append_n(c, 10, 5); /* lands after the survivors, not after the garbage */
    read_all(c);
    cr_assert_eq(c->nrec, 15);
    for (int i = 0; i < 15; i++)
        cr_assert_eq(c->seqs[i], (uint64_t)i);
    cr_assert_not(pskgw_spool_in_backlog(c->sp));
    teardown(c);
}

/* One damaged record in the middle (a bad sector, a bit flip) is not a torn append: the records
 * after it were acknowledged as spooled and must not be cut away with it. */
Test(spool, damage_in_the_middle_keeps_the_records_after_it)
{
    ctx_t *c = setup();
    char p[512];
    int fd;
    off_t size;
    off_t rec;
    uint8_t b;

    open_spool(c, 1 << 20);
    append_n(c, 0, 10);
    close_spool(c);
    size = file_size(c);
    rec = (size - PSKGW_SPOOL_FILE_HDR) / 10; /* same-sized records after the file header */
    cr_assert_eq(PSKGW_SPOOL_FILE_HDR + rec * 10, size);
    snprintf(p, sizeof(p), "%s/s1.spool", c->dir);
    fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, &b, 1, PSKGW_SPOOL_FILE_HDR + 4 * rec + rec / 2), 1); /* record 4 */
    b ^= 0x40;
    cr_assert_eq(pwrite(fd, &b, 1, PSKGW_SPOOL_FILE_HDR + 4 * rec + rec / 2), 1);
    close(fd);

    open_spool(c, 1 << 20);
    cr_assert_eq(file_size(c), size, "valid records after the damage were cut");
    append_n(c, 10, 2);
    read_all(c);
    cr_assert_eq(c->nrec, 11);
    for (int i = 0, k = 0; i < 12; i++) {
        if (i == 4)
            continue;
        cr_assert_eq(c->seqs[k], (uint64_t)i);
        k++;
    }
    teardown(c);
}

/* The same damage found while reading (after the open scan): skipped to the next record. */
Test(spool, damage_found_while_reading_skips_to_the_next_record)
{
    ctx_t *c = setup();
    char p[512];
    int fd;
    off_t size;
    off_t rec;
    uint8_t b;

    open_spool(c, 1 << 20);
    append_n(c, 0, 10);
    size = file_size(c);
    rec = (size - PSKGW_SPOOL_FILE_HDR) / 10;
    snprintf(p, sizeof(p), "%s/s1.spool", c->dir);
    fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, &b, 1, PSKGW_SPOOL_FILE_HDR + 2 * rec + 17), 1); /* record 2's length */
    b ^= 0x10;
    cr_assert_eq(pwrite(fd, &b, 1, PSKGW_SPOOL_FILE_HDR + 2 * rec + 17), 1);
    close(fd);
    for (int reads = 0; pskgw_spool_has_unread(c->sp); reads++) {
        int r0 = c->ready;
        cr_assert_lt(reads, 50, "reading never gets past the damaged record");
        pskgw_spool_read(c->sp, 0);
        run_until(c, &c->ready, r0 + 1);
    }
    cr_assert_eq(c->nrec, 9);
    for (int i = 0, k = 0; i < 10; i++) {
        if (i == 2)
            continue;
        cr_assert_eq(c->seqs[k], (uint64_t)i);
        k++;
    }
    teardown(c);
}

Test(spool, offset_file_resumes_after_delivered)
{
    ctx_t *c = setup();

    open_spool(c, 1 << 20);
    append_n(c, 0, 10);
    read_all(c);
    cr_assert_eq(c->nrec, 10);
    /* records 0..4 delivered */
    pskgw_spool_commit(c->sp, c->offs[5]);
    close_spool(c);
    c->nrec = 0;
    open_spool(c, 1 << 20);
    read_all(c);
    cr_assert_eq(c->nrec, 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(c->seqs[i], (uint64_t)(5 + i));
    teardown(c);
}

Test(spool, damaged_offset_file_replays_everything)
{
    ctx_t *c = setup();
    char p[512];
    int fd;

    open_spool(c, 1 << 20);
    append_n(c, 0, 4);
    read_all(c);
    pskgw_spool_commit(c->sp, c->offs[2]);
    close_spool(c);
    snprintf(p, sizeof(p), "%s/s1.offset", c->dir);
    fd = open(p, O_WRONLY);
    cr_assert_eq(pwrite(fd, "X", 1, 6), 1);
    close(fd);
    c->nrec = 0;
    open_spool(c, 1 << 20);
    read_all(c);
    cr_assert_eq(c->nrec, 4); /* duplicates, never loss */
    teardown(c);
}

Test(spool, limit_and_partial_reads)
{
    ctx_t *c = setup();
    pskgw_msg_t *m = mk(0, "x");
    size_t rec = PSKGW_SPOOL_REC_HDR + pskgw_msg_encoded_len(m);
    int ok = 0;

    open_spool(c, rec * 3 + rec / 2);
    for (int i = 0; i < 5; i++) {
        int rc = pskgw_spool_append(c->sp, m, append_cb, c);
        if (rc == 0)
            ok++;
        else
            cr_assert_eq(rc, PSKGW_EFULL);
    }
    pskgw_msg_unref(m);
    cr_assert_eq(ok, 3);
    run_until(c, &c->appended, 3);
    cr_assert_eq(pskgw_spool_bytes(c->sp), rec * 3);
    c->stop_after = 2;
    read_all(c);
    cr_assert_eq(c->nrec, 2);
    cr_assert(pskgw_spool_has_unread(c->sp));
    c->stop_after = 0;
    read_all(c);
    cr_assert_eq(c->nrec, 3);
    teardown(c);
}

Test(spool, second_user_is_refused)
{
    ctx_t *c = setup();
    pskgw_spool_t *other = NULL;

    open_spool(c, 1 << 20);
    cr_assert_eq(
        pskgw_spool_new(&c->loop, c->dir, "s1", 1 << 20, PSKGW_SINK_FSYNC_NEVER, &cbs, c, &other),
        PSKGW_EBUSY);
    teardown(c);
}

Test(spool, records_bigger_than_a_read)
{
    ctx_t *c = setup();
    static uint8_t big[100000];
    pskgw_envelope_t e = { .domain = "d",
                           .psk_identity = "x",
                           .rot_public_uid = "x",
                           .received_at_ms = 1,
                           .payload = big,
                           .payload_len = sizeof(big) };
    pskgw_msg_t *m = NULL;

    read_hint = 4096;
    open_spool(c, 1 << 22);
    append_n(c, 0, 3);
    e.seq = 3;
    cr_assert_eq(pskgw_msg_new(&e, "00000000000000000000000000000002", &m), 0);
    cr_assert_eq(pskgw_spool_append(c->sp, m, append_cb, c), 0);
    pskgw_msg_unref(m);
    run_until(c, &c->appended, 4);
    append_n(c, 4, 3);
    read_all(c);
    read_hint = 0;
    cr_assert_eq(c->nrec, 7);
    for (int i = 0; i < 7; i++)
        cr_assert_eq(c->seqs[i], (uint64_t)i);
    teardown(c);
}

/* A device controls its payload: it can embed bytes that are a well-formed spool record of
 * another identity, in the format-1 layout ("PSR1") and in the format-2 layout with a guessed
 * sync. Returns the forged bytes' length. */
static size_t forge(uint8_t *out, size_t cap, const char *victim, uint64_t seq)
{
    pskgw_msg_t *m = mk(seq, victim);
    size_t blen = pskgw_msg_encoded_len(m);
    size_t n = 0;
    uint32_t crc;

    cr_assert_leq(2 * (blen + PSKGW_SPOOL_REC_HDR), cap);
    /* format 1: "PSR1" | len | crc32(len || body) | body */
    memcpy(out, "PSR1", 4);
    for (int i = 0; i < 4; i++)
        out[4 + i] = (uint8_t)(blen >> (8 * i));
    pskgw_msg_encode(m, out + 12);
    crc = pskgw_crc32_update(pskgw_crc32(out + 4, 4), out + 12, blen);
    for (int i = 0; i < 4; i++)
        out[8 + i] = (uint8_t)(crc >> (8 * i));
    n = 12 + blen;
    /* format 2 with a guessed (all-zero) sync */
    {
        static const uint8_t zero[PSKGW_SPOOL_SYNC_LEN];
        pskgw_spool_record_header(out + n, zero, out + 12, blen);
        memcpy(out + n + PSKGW_SPOOL_REC_HDR, out + 12, blen);
        n += PSKGW_SPOOL_REC_HDR + blen;
    }
    pskgw_msg_unref(m);
    return n;
}

static void append_payload(ctx_t *c, uint64_t seq, const char *dev, const uint8_t *pl, size_t n)
{
    pskgw_envelope_t e = { .domain = "d",
                           .psk_identity = dev,
                           .rot_public_uid = dev,
                           .seq = seq,
                           .received_at_ms = 1000,
                           .payload = pl,
                           .payload_len = n };
    pskgw_msg_t *m = NULL;
    int want = c->appended + 1;

    cr_assert_eq(pskgw_msg_new(&e, "00000000000000000000000000000003", &m), 0);
    cr_assert_eq(pskgw_spool_append(c->sp, m, append_cb, c), 0);
    pskgw_msg_unref(m);
    run_until(c, &c->appended, want);
}

/* Issue 16 §4: a record whose payload embeds a forged record, torn at the end of the file by a
 * crash. The torn tail is cut; nothing inside it is replayed. */
Test(spool, torn_tail_with_a_forged_record_inside_replays_nothing_forged)
{
    ctx_t *c = setup();
    uint8_t pl[2048];
    size_t n;
    off_t good;
    off_t full;
    char p[512];

    n = forge(pl, sizeof(pl), "victim", 999);
    memset(pl + n, 'z', 64); /* the crash tears the attacker's record here */
    open_spool(c, 1 << 20);
    append_n(c, 0, 3);
    good = file_size(c);
    append_payload(c, 3, "attacker", pl, n + 64);
    full = file_size(c);
    close_spool(c);
    snprintf(p, sizeof(p), "%s/s1.spool", c->dir);
    cr_assert_eq(truncate(p, full - 32), 0);

    open_spool(c, 1 << 20);
    cr_assert_eq(file_size(c), good, "the torn tail was not cut");
    read_all(c);
    cr_assert_eq(c->nrec, 3, "%d records replayed (forged: seq 999)", c->nrec);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(c->seqs[i], (uint64_t)i);
    teardown(c);
}

/* The same payload in the middle of the file, its record's header damaged: resynchronisation
 * skips the whole damaged record (never stops on the forged bytes) and keeps the records after. */
Test(spool, damaged_record_with_a_forged_record_inside_resyncs_past_it)
{
    ctx_t *c = setup();
    uint8_t pl[2048];
    size_t n;
    off_t at;
    char p[512];
    int fd;
    uint8_t b;

    n = forge(pl, sizeof(pl), "victim", 999);
    open_spool(c, 1 << 20);
    append_n(c, 0, 3);
    at = file_size(c);
    append_payload(c, 3, "attacker", pl, n);
    append_n(c, 4, 3);
    close_spool(c);
    snprintf(p, sizeof(p), "%s/s1.spool", c->dir);
    fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, &b, 1, at + 2), 1); /* the attacker record's header */
    b ^= 0x01;
    cr_assert_eq(pwrite(fd, &b, 1, at + 2), 1);
    close(fd);

    open_spool(c, 1 << 20);
    read_all(c);
    cr_assert_eq(c->nrec, 6, "%d records", c->nrec);
    for (int i = 0, k = 0; i < 7; i++) {
        if (i == 3)
            continue;
        cr_assert_eq(c->seqs[k], (uint64_t)i, "record %d: seq %llu", k,
                     (unsigned long long)c->seqs[k]);
        k++;
    }
    teardown(c);
}

/* A spool left by a version with format 1 is migrated once when it opens: its undelivered
 * records (from the offset on) are replayed in order, and the file is format 2 afterwards. */
Test(spool, format_1_file_is_migrated_and_replayed)
{
    ctx_t *c = setup();
    char p[512];
    uint8_t file[8192];
    uint8_t obuf[PSKGW_SPOOL_OFFSET_LEN];
    uint64_t third = 0;
    size_t n = 0;
    int fd;

    for (int i = 0; i < 5; i++) {
        pskgw_msg_t *m = mk((uint64_t)i, "old");
        size_t blen = pskgw_msg_encoded_len(m);
        if (i == 2)
            third = n;
        cr_assert_leq(n + PSKGW_SPOOL_V1_REC_HDR + blen, sizeof(file));
        pskgw_msg_encode(m, file + n + PSKGW_SPOOL_V1_REC_HDR);
        pskgw_spool_v1_header(file + n, file + n + PSKGW_SPOOL_V1_REC_HDR, blen);
        n += PSKGW_SPOOL_V1_REC_HDR + blen;
        pskgw_msg_unref(m);
    }
    snprintf(p, sizeof(p), "%s/s1.spool", c->dir);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(write(fd, file, n), (ssize_t)n);
    close(fd);
    pskgw_spool_offset_encode(obuf, third); /* records 0 and 1 were delivered */
    snprintf(p, sizeof(p), "%s/s1.offset", c->dir);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(write(fd, obuf, sizeof(obuf)), (ssize_t)sizeof(obuf));
    close(fd);

    open_spool(c, 1 << 20);
    append_n(c, 5, 2);
    read_all(c);
    cr_assert_eq(c->nrec, 5, "%d records", c->nrec);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(c->seqs[i], (uint64_t)(2 + i));
    close_spool(c);
    snprintf(p, sizeof(p), "%s/s1.spool", c->dir);
    fd = open(p, O_RDONLY);
    cr_assert_eq(read(fd, file, 4), 4);
    close(fd);
    cr_assert_eq(memcmp(file, "PSF2", 4), 0, "not migrated");
    c->nrec = 0;
    open_spool(c, 1 << 20); /* the format-2 file opens as it is */
    read_all(c);
    cr_assert_eq(c->nrec, 5);
    teardown(c);
}

/* The first append of a file torn inside its header: the file is emptied, the spool works. */
Test(spool, torn_file_header_is_emptied)
{
    ctx_t *c = setup();
    char p[512];
    int fd;

    snprintf(p, sizeof(p), "%s/s1.spool", c->dir);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(write(fd, "PSF2\x01\x02\x03", 7), 7);
    close(fd);
    open_spool(c, 1 << 20);
    cr_assert_eq(file_size(c), 0);
    cr_assert_not(pskgw_spool_has_unread(c->sp));
    append_n(c, 0, 3);
    read_all(c);
    cr_assert_eq(c->nrec, 3);
    teardown(c);
}

/* A damaged file header loses the sync: nothing in the file can be trusted as a record. The
 * file is kept aside for an operator, the spool starts empty and works. */
Test(spool, damaged_file_header_is_set_aside)
{
    ctx_t *c = setup();
    char p[512];
    struct stat st;
    off_t size;
    int fd;
    uint8_t b;

    open_spool(c, 1 << 20);
    append_n(c, 0, 3);
    close_spool(c);
    size = file_size(c);
    snprintf(p, sizeof(p), "%s/s1.spool", c->dir);
    fd = open(p, O_RDWR);
    cr_assert_eq(pread(fd, &b, 1, 9), 1); /* inside the sync */
    b ^= 0x01;
    cr_assert_eq(pwrite(fd, &b, 1, 9), 1);
    close(fd);

    open_spool(c, 1 << 20);
    cr_assert_eq(file_size(c), 0);
    snprintf(p, sizeof(p), "%s/s1.spool.damaged", c->dir);
    cr_assert_eq(stat(p, &st), 0, "damaged file not kept");
    cr_assert_eq(st.st_size, size);
    append_n(c, 10, 2);
    read_all(c);
    cr_assert_eq(c->nrec, 2);
    cr_assert_eq(c->seqs[0], 10);
    teardown(c);
}

/* An offset left from an older, longer file must not skip the records of the new one. */
Test(spool, stale_offset_beyond_the_file_skips_nothing)
{
    ctx_t *c = setup();
    char p[512];
    uint8_t obuf[PSKGW_SPOOL_OFFSET_LEN];
    int fd;

    pskgw_spool_offset_encode(obuf, 5000);
    snprintf(p, sizeof(p), "%s/s1.offset", c->dir);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_eq(write(fd, obuf, sizeof(obuf)), (ssize_t)sizeof(obuf));
    close(fd);
    open_spool(c, 1 << 20);
    append_n(c, 0, 40); /* the file grows past 5000 bytes */
    cr_assert_gt(file_size(c), 5000);
    close_spool(c); /* crash-like: nothing was read or committed */
    open_spool(c, 1 << 20);
    read_all(c);
    cr_assert_eq(c->nrec, 40, "%d records replayed", c->nrec);
    teardown(c);
}
