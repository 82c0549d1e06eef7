#include "sinks/record.h"

#include "common/err.h"
#include "sinks/crc32.h"

#include <string.h>

static const uint8_t v1_magic[4] = { 'P', 'S', 'R', '1' };
static const uint8_t file_magic[4] = { 'P', 'S', 'F', '2' };
static const uint8_t off_magic[4] = { 'P', 'S', 'O', '1' };

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void pskgw_spool_file_header(uint8_t hdr[PSKGW_SPOOL_FILE_HDR],
                             const uint8_t sync[PSKGW_SPOOL_SYNC_LEN])
{
    memcpy(hdr, file_magic, 4);
    memcpy(hdr + 4, sync, PSKGW_SPOOL_SYNC_LEN);
    put32(hdr + 20, pskgw_crc32(hdr, 20));
}

int pskgw_spool_file_header_parse(const uint8_t *buf, size_t len,
                                  uint8_t sync[PSKGW_SPOOL_SYNC_LEN])
{
    if (memcmp(buf, file_magic, len < 4 ? len : 4) != 0)
        return PSKGW_EPARSE;
    if (len < PSKGW_SPOOL_FILE_HDR)
        return PSKGW_EAGAIN;
    if (pskgw_crc32(buf, 20) != get32(buf + 20))
        return PSKGW_EPARSE;
    memcpy(sync, buf + 4, PSKGW_SPOOL_SYNC_LEN);
    return 0;
}

bool pskgw_spool_is_v1(const uint8_t *buf, size_t len)
{
    return len >= 4 && memcmp(buf, v1_magic, 4) == 0;
}

void pskgw_spool_record_header(uint8_t hdr[PSKGW_SPOOL_REC_HDR],
                               const uint8_t sync[PSKGW_SPOOL_SYNC_LEN], const uint8_t *body,
                               size_t body_len)
{
    memcpy(hdr, sync, PSKGW_SPOOL_SYNC_LEN);
    put32(hdr + 16, (uint32_t)body_len);
    put32(hdr + 20, pskgw_crc32(hdr, 20));
    put32(hdr + 24, pskgw_crc32(body, body_len));
}

int pskgw_spool_record_parse(const uint8_t *buf, size_t len,
                             const uint8_t sync[PSKGW_SPOOL_SYNC_LEN], const uint8_t **body,
                             size_t *body_len, size_t *consumed)
{
    uint32_t n;

    if (len < PSKGW_SPOOL_REC_HDR) {
        if (memcmp(buf, sync, len < PSKGW_SPOOL_SYNC_LEN ? len : PSKGW_SPOOL_SYNC_LEN) != 0)
            return PSKGW_EPARSE;
        *consumed = 0;
        return PSKGW_EAGAIN;
    }
    if (memcmp(buf, sync, PSKGW_SPOOL_SYNC_LEN) != 0 || pskgw_crc32(buf, 20) != get32(buf + 20))
        return PSKGW_EPARSE;
    n = get32(buf + 16);
    if (n > PSKGW_SPOOL_REC_MAX_BODY)
        return PSKGW_EPARSE;
    if (len - PSKGW_SPOOL_REC_HDR < n) {
        *consumed = PSKGW_SPOOL_REC_HDR + (size_t)n;
        return PSKGW_EAGAIN;
    }
    if (pskgw_crc32(buf + PSKGW_SPOOL_REC_HDR, n) != get32(buf + 24))
        return PSKGW_EPARSE;
    *body = buf + PSKGW_SPOOL_REC_HDR;
    *body_len = n;
    *consumed = PSKGW_SPOOL_REC_HDR + (size_t)n;
    return 0;
}

void pskgw_spool_v1_header(uint8_t hdr[PSKGW_SPOOL_V1_REC_HDR], const uint8_t *body,
                           size_t body_len)
{
    memcpy(hdr, v1_magic, 4);
    put32(hdr + 4, (uint32_t)body_len);
    put32(hdr + 8, pskgw_crc32_update(pskgw_crc32(hdr + 4, 4), body, body_len));
}

int pskgw_spool_v1_parse(const uint8_t *buf, size_t len, const uint8_t **body, size_t *body_len,
                         size_t *consumed)
{
    uint32_t n;

    if (len < PSKGW_SPOOL_V1_REC_HDR) {
        if (memcmp(buf, v1_magic, len < 4 ? len : 4) != 0)
            return PSKGW_EPARSE;
        *consumed = 0;
        return PSKGW_EAGAIN;
    }
    if (memcmp(buf, v1_magic, 4) != 0)
        return PSKGW_EPARSE;
    n = get32(buf + 4);
    if (n > PSKGW_SPOOL_REC_MAX_BODY)
        return PSKGW_EPARSE;
    if (len - PSKGW_SPOOL_V1_REC_HDR < n) {
        *consumed = PSKGW_SPOOL_V1_REC_HDR + (size_t)n;
        return PSKGW_EAGAIN;
    }
    if (pskgw_crc32_update(pskgw_crc32(buf + 4, 4), buf + PSKGW_SPOOL_V1_REC_HDR, n) !=
        get32(buf + 8))
        return PSKGW_EPARSE;
    *body = buf + PSKGW_SPOOL_V1_REC_HDR;
    *body_len = n;
    *consumed = PSKGW_SPOOL_V1_REC_HDR + (size_t)n;
    return 0;
}

void pskgw_spool_offset_encode(uint8_t out[PSKGW_SPOOL_OFFSET_LEN], uint64_t offset)
{
    memcpy(out, off_magic, 4);
    put32(out + 4, (uint32_t)offset);
    put32(out + 8, (uint32_t)(offset >> 32));
    put32(out + 12, pskgw_crc32(out, 12));
}

int pskgw_spool_offset_decode(const uint8_t *buf, size_t len, uint64_t *offset)
{
    if (len != PSKGW_SPOOL_OFFSET_LEN || memcmp(buf, off_magic, 4) != 0 ||
        pskgw_crc32(buf, 12) != get32(buf + 12))
        return PSKGW_EPARSE;
    *offset = (uint64_t)get32(buf + 4) | (uint64_t)get32(buf + 8) << 32;
    return 0;
}
