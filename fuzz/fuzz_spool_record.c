/* Fuzz target: the spool file, record and offset readers (sinks/record.h) and the message
 * decoder (sinks/msg.h) read files that a crash may have torn, a disk may have damaged and whose
 * record bodies hold device-controlled payloads. They must never read or write out of bounds, a
 * message they accept must encode back to the same bytes and render as JSON, and a record is
 * accepted only under the sync of its file header. */
#include "sinks/msg.h"
#include "sinks/record.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    uint64_t off;

    (void)pskgw_spool_offset_decode(
        data, size < PSKGW_SPOOL_OFFSET_LEN ? size : PSKGW_SPOOL_OFFSET_LEN, &off);
    /* the body alone, as the decoder sees it */
    {
        pskgw_msg_t *m = NULL;
        if (pskgw_msg_decode(data, size, &m) == 0) {
            size_t n = pskgw_msg_encoded_len(m);
            uint8_t *back = malloc(n);
            const char *json;
            size_t jl;
            if (!back)
                abort();
            pskgw_msg_encode(m, back);
            /* version 2 bodies encode back to the same bytes (version 1 ones become version 2) */
            if (data[0] == 2 && (n != size || memcmp(back, data, n) != 0))
                abort();
            if (pskgw_msg_json(m, &json, &jl) != 0 || jl != strlen(json))
                abort();
            free(back);
            pskgw_msg_unref(m);
        }
    }
    /* a format-2 file: its header, then records one after another until the first torn or bad
     * one; every record accepted starts with the header's sync */
    {
        uint8_t sync[PSKGW_SPOOL_SYNC_LEN];
        if (pskgw_spool_file_header_parse(data, size, sync) == 0)
            pos = PSKGW_SPOOL_FILE_HDR;
        else
            pos = size;
        while (pos < size) {
            const uint8_t *body;
            size_t blen;
            size_t used = 0;
            pskgw_msg_t *m = NULL;

            if (pskgw_spool_record_parse(data + pos, size - pos, sync, &body, &blen, &used) != 0)
                break;
            if (used != PSKGW_SPOOL_REC_HDR + blen || body != data + pos + PSKGW_SPOOL_REC_HDR ||
                memcmp(data + pos, sync, sizeof(sync)) != 0)
                abort();
            if (pskgw_msg_decode(body, blen, &m) == 0)
                pskgw_msg_unref(m);
            pos += used;
        }
    }
    /* a format-1 file, as the migration reads it */
    pos = 0;
    while (pos < size) {
        const uint8_t *body;
        size_t blen;
        size_t used = 0;

        if (pskgw_spool_v1_parse(data + pos, size - pos, &body, &blen, &used) != 0)
            break;
        if (used != PSKGW_SPOOL_V1_REC_HDR + blen || body != data + pos + PSKGW_SPOOL_V1_REC_HDR)
            abort();
        pos += used;
    }
    return 0;
}
