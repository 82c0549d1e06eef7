/* Spool record and offset-file codecs (pure functions; fuzzed by fuzz/fuzz_spool_record.c).
 *
 * A spool file is a sequence of records appended with one write each:
 *   magic "PSR1" | u32 LE body_len | u32 LE crc32(body_len bytes || body) | body
 * The CRC covers the length, so a torn or overwritten length is detected. A reader stops at the
 * first record that is incomplete or fails its checks: that is a torn write at the end of the
 * file (a crash during append), and the spool truncates it away when it opens the file.
 *
 * The offset file (16 bytes) says where the undelivered records start:
 *   magic "PSO1" | u64 LE offset | u32 LE crc32(first 12 bytes)
 */
#ifndef PSKGW_SINKS_RECORD_H
#define PSKGW_SINKS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define PSKGW_SPOOL_REC_HDR      12u
#define PSKGW_SPOOL_REC_MAX_BODY (16u * 1024u * 1024u)
#define PSKGW_SPOOL_OFFSET_LEN   16u

/* Header for body (the caller writes hdr then body, contiguously); body_len must be
 * <= PSKGW_SPOOL_REC_MAX_BODY. */
void pskgw_spool_record_header(uint8_t hdr[PSKGW_SPOOL_REC_HDR], const uint8_t *body,
                               size_t body_len);

/* Parse the record at the start of buf[0..len).
 *   0             a valid record: *body and *body_len point into buf, *consumed = its total size
 *   PSKGW_EAGAIN  incomplete (fewer bytes than the header or its body_len need);
 *                 *consumed = total size needed when the header is there, else 0
 *   PSKGW_EPARSE  bad magic, body_len over the maximum, or CRC mismatch
 * Outputs are written only on 0 (and *consumed on PSKGW_EAGAIN). */
int pskgw_spool_record_parse(const uint8_t *buf, size_t len, const uint8_t **body, size_t *body_len,
                             size_t *consumed);

void pskgw_spool_offset_encode(uint8_t out[PSKGW_SPOOL_OFFSET_LEN], uint64_t offset);
/* 0 or PSKGW_EPARSE (wrong length, magic or CRC). */
int pskgw_spool_offset_decode(const uint8_t *buf, size_t len, uint64_t *offset);

#endif
