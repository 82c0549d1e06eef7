/* Fuzz target: DTLS/TLS record-header, handshake-header and ClientHello parsers (dtls/parse.h)
 * must never read out of bounds and must report consistent lengths. */
#include "dtls/parse.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    pskgw_dtls_client_hello_t ch;
    uint64_t rseq = 0;
    uint16_t mseq = 0;

    while (off < size) {
        pskgw_dtls_record_t rec;
        size_t used = 0;
        size_t hoff = 0;

        if (pskgw_dtls_record_parse(data + off, size - off, &rec, &used) < 0)
            break;
        if (used != PSKGW_DTLS_RECORD_HEADER_LEN + rec.length || used > size - off)
            abort();
        off += used;
        while (hoff < rec.length) {
            pskgw_dtls_hs_t hs;
            size_t hused = 0;

            if (pskgw_dtls_hs_parse(rec.fragment + hoff, rec.length - hoff, &hs, &hused) < 0)
                break;
            if (hused > rec.length - hoff || hs.frag_offset + (uint64_t)hs.frag_length > hs.length)
                abort();
            if (hs.msg_type == PSKGW_HS_CLIENT_HELLO)
                (void)pskgw_dtls_client_hello_parse(hs.body, hs.frag_length, &ch);
            hoff += hused;
        }
    }
    if (pskgw_dtls_find_client_hello(data, size, &rseq, &mseq, &ch) == 0) {
        if (ch.random < data || ch.compression + ch.compression_len > data + size)
            abort();
    }
    off = 0;
    while (off < size) {
        pskgw_dtls_record_t rec;
        size_t used = 0;

        if (pskgw_tls_record_parse(data + off, size - off, &rec, &used) < 0)
            break;
        if (used > size - off)
            abort();
        off += used;
    }
    return 0;
}
