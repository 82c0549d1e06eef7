/* Fuzz target: the Connection ID record path (dtls/cid.h), what the listener does with a
 * tls12_cid datagram before any decryption: parse every record at the listener's CID length
 * (taken from the first input byte) and look its CID up in a table of known CIDs. The parser
 * must never read out of bounds and must report consistent lengths; a lookup must only find an
 * entry whose CID equals the record's. */
#include "dtls/cid.h"

#include <stdlib.h>
#include <string.h>

#define KNOWN 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pskgw_cid_entry_t known[KNOWN];
    pskgw_cid_table_t t;
    size_t cid_len, off = 1;
    uint8_t rnd[PSKGW_CID_MAX];

    if (size < 1)
        return 0;
    cid_len = PSKGW_CID_MIN + data[0] % (PSKGW_CID_MAX - PSKGW_CID_MIN + 1);
    pskgw_cid_table_init(&t, 0x5eed);
    /* Known CIDs: worker i % 4, the rest derived from i; one also equals the input's first
     * record's CID when there is one, so the hit path runs. */
    for (int i = 0; i < KNOWN; i++) {
        for (size_t k = 0; k < sizeof(rnd); k++)
            rnd[k] = (uint8_t)(i * 31 + k);
        memset(&known[i], 0, sizeof(known[i]));
        if (pskgw_dtls_cid_make((uint8_t)(i % 4), rnd, cid_len, known[i].cid) != 0)
            abort();
        known[i].len = (uint8_t)cid_len;
    }
    if (size > 1 + PSKGW_CID_OFFSET + cid_len)
        memcpy(known[0].cid, data + 1 + PSKGW_CID_OFFSET, cid_len);
    for (int i = 0; i < KNOWN; i++)
        (void)pskgw_cid_table_insert(&t, &known[i]); /* a duplicate is refused */
    while (off < size) {
        pskgw_dtls_cid_record_t rec;
        pskgw_cid_entry_t *e;
        size_t used = 0;

        if (pskgw_dtls_cid_record_parse(data + off, size - off, cid_len, &rec, &used) < 0)
            break;
        if (used != PSKGW_CID_OFFSET + cid_len + 2 + rec.length || used > size - off ||
            rec.cid != data + off + PSKGW_CID_OFFSET || rec.seq >> 48 != 0)
            abort();
        e = pskgw_cid_table_find(&t, rec.cid, cid_len);
        if (e != NULL && (e->len != cid_len || memcmp(e->cid, rec.cid, cid_len) != 0))
            abort();
        if (e != NULL)
            pskgw_cid_table_remove(&t, e);
        if (pskgw_cid_table_find(&t, rec.cid, cid_len) != NULL && e != NULL)
            abort(); /* removed entries are gone; no other entry has the same CID */
        off += used;
    }
    pskgw_cid_table_deinit(&t);
    return 0;
}
