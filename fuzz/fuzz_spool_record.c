/* Fuzz target: the spool record reader (sinks/record.h) and the message decoder (sinks/msg.h)
 * read files that a crash may have torn and a disk may have damaged. They must never read or
 * write out of bounds, and a message they accept must encode back to the same bytes and render
 * as JSON. */
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
            if (!back || n != size)
                abort();
            pskgw_msg_encode(m, back);
            if (memcmp(back, data, n) != 0)
                abort();
            if (pskgw_msg_json(m, &json, &jl) != 0 || jl != strlen(json))
                abort();
            free(back);
            pskgw_msg_unref(m);
        }
    }
    /* a file: records one after another until the first torn or bad one */
    while (pos < size) {
        const uint8_t *body;
        size_t blen;
        size_t used = 0;
        pskgw_msg_t *m = NULL;

        if (pskgw_spool_record_parse(data + pos, size - pos, &body, &blen, &used) != 0)
            break;
        if (used != PSKGW_SPOOL_REC_HDR + blen || body != data + pos + PSKGW_SPOOL_REC_HDR)
            abort();
        if (pskgw_msg_decode(body, blen, &m) == 0)
            pskgw_msg_unref(m);
        pos += used;
    }
    return 0;
}
