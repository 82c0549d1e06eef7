/* Spool file, record and offset-file codecs (pure functions; fuzzed by fuzz/fuzz_spool_record.c).
 *
 * A spool file (format 2) is a file header followed by records appended with one write each:
 *   file header: magic "PSF2" | sync[16] | u32 LE crc32(magic || sync)           (24 bytes)
 *   record:      sync[16] | u32 LE body_len | u32 LE crc32(sync || body_len)
 *                | u32 LE crc32(body) | body                                       (28 + body)
 * sync is 16 random bytes chosen when the file gets its header (getrandom); the file is 0600 and
 * the value never leaves it. It is what makes a record a record: the bytes of a message body come
 * from a device, which can embed anything in its payload, including a well-formed record of
 * another identity, but it cannot know sync. A reader that lost the record chain (damage in the
 * middle) resynchronises only on sync, so it never mistakes a device's bytes for a record.
 * The header CRC tells a torn append (a valid header whose body goes past the end of the file:
 * cut, never scanned) from damage (a header or body that fails its checks).
 *
 * Format 1 (no file header, records "PSR1" | u32 LE body_len | u32 LE crc32(len || body) | body)
 * is still read once: pskgw_spool_v1_parse() lets the spool migrate such a file when it opens
 * (sinks/spool.h).
 *
 * The offset file (16 bytes) says where the undelivered records start:
 *   magic "PSO1" | u64 LE offset | u32 LE crc32(first 12 bytes)
 */
#ifndef PSKGW_SINKS_RECORD_H
#define PSKGW_SINKS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSKGW_SPOOL_SYNC_LEN     16u
#define PSKGW_SPOOL_FILE_HDR     24u
#define PSKGW_SPOOL_REC_HDR      28u
#define PSKGW_SPOOL_REC_MAX_BODY (16u * 1024u * 1024u)
#define PSKGW_SPOOL_OFFSET_LEN   16u
#define PSKGW_SPOOL_V1_REC_HDR   12u

/* The file header carrying sync. */
void pskgw_spool_file_header(uint8_t hdr[PSKGW_SPOOL_FILE_HDR],
                             const uint8_t sync[PSKGW_SPOOL_SYNC_LEN]);
/* 0 and *sync, or PSKGW_EAGAIN (fewer than PSKGW_SPOOL_FILE_HDR bytes that match a header so
 * far), PSKGW_EPARSE (not a format-2 header or CRC mismatch). */
int pskgw_spool_file_header_parse(const uint8_t *buf, size_t len,
                                  uint8_t sync[PSKGW_SPOOL_SYNC_LEN]);
/* True when buf starts like a format-1 record ("PSR1"). */
bool pskgw_spool_is_v1(const uint8_t *buf, size_t len);

/* Header for body (the caller writes hdr then body, contiguously); body_len must be
 * <= PSKGW_SPOOL_REC_MAX_BODY. */
void pskgw_spool_record_header(uint8_t hdr[PSKGW_SPOOL_REC_HDR],
                               const uint8_t sync[PSKGW_SPOOL_SYNC_LEN], const uint8_t *body,
                               size_t body_len);

/* Parse the record at the start of buf[0..len) of a file whose header holds sync.
 *   0             a valid record: *body and *body_len point into buf, *consumed = its total size
 *   PSKGW_EAGAIN  incomplete: fewer bytes than a header (and those bytes match sync so far:
 *                 *consumed = 0), or a valid header whose body is not all there (*consumed =
 *                 the record's total size)
 *   PSKGW_EPARSE  wrong sync, header CRC mismatch, body_len over the maximum, body CRC mismatch
 * Outputs are written only on 0 (and *consumed on PSKGW_EAGAIN). */
int pskgw_spool_record_parse(const uint8_t *buf, size_t len,
                             const uint8_t sync[PSKGW_SPOOL_SYNC_LEN], const uint8_t **body,
                             size_t *body_len, size_t *consumed);

/* A format-1 record, same results as pskgw_spool_record_parse() (*consumed on PSKGW_EAGAIN
 * when the 12-byte header is there). Used only to migrate old files. */
int pskgw_spool_v1_parse(const uint8_t *buf, size_t len, const uint8_t **body, size_t *body_len,
                         size_t *consumed);
/* Build a format-1 record header (tests and the migration test only). */
void pskgw_spool_v1_header(uint8_t hdr[PSKGW_SPOOL_V1_REC_HDR], const uint8_t *body,
                           size_t body_len);

void pskgw_spool_offset_encode(uint8_t out[PSKGW_SPOOL_OFFSET_LEN], uint64_t offset);
/* 0 or PSKGW_EPARSE (wrong length, magic or CRC). */
int pskgw_spool_offset_decode(const uint8_t *buf, size_t len, uint64_t *offset);

#endif
