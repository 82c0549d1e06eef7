/* DTLS 1.2 Connection ID: see cid.h. */
#include "dtls/cid.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

int pskgw_dtls_cid_make(uint8_t worker, const uint8_t *rnd, size_t len, uint8_t *out)
{
    if (len < PSKGW_CID_MIN || len > PSKGW_CID_MAX || rnd == NULL || out == NULL)
        return PSKGW_EINVAL;
    out[PSKGW_CID_WORKER_AT] = worker;
    memcpy(out + 1, rnd, len - 1);
    return 0;
}

int pskgw_dtls_cid_record_parse(const uint8_t *buf, size_t len, size_t cid_len,
                                pskgw_dtls_cid_record_t *rec, size_t *consumed)
{
    size_t hdr = PSKGW_CID_OFFSET + cid_len + 2;
    size_t frag;

    if (cid_len == 0 || cid_len > PSKGW_CID_MAX)
        return PSKGW_EINVAL;
    if (buf == NULL || len < hdr || buf[0] != PSKGW_CT_TLS12_CID || buf[1] != 0xFE)
        return PSKGW_EPARSE;
    frag = ((size_t)buf[hdr - 2] << 8) | buf[hdr - 1];
    if (frag > len - hdr)
        return PSKGW_EPARSE;
    rec->cid = buf + PSKGW_CID_OFFSET;
    rec->epoch = (uint16_t)((buf[3] << 8) | buf[4]);
    rec->seq = 0;
    for (int i = 5; i < 11; i++)
        rec->seq = (rec->seq << 8) | buf[i];
    rec->length = (uint16_t)frag;
    *consumed = hdr + frag;
    return 0;
}

/* ---- table -------------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* At most 16 bytes: two 64-bit words under the seed. */
static uint64_t cid_hash(uint64_t seed, const uint8_t *cid, size_t len)
{
    uint64_t w[2] = { 0, 0 };

    memcpy(w, cid, len);
    return mix64(mix64(seed ^ w[0] ^ len) ^ w[1] ^ (seed >> 7));
}

void pskgw_cid_table_init(pskgw_cid_table_t *t, uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    t->seed = seed;
}

void pskgw_cid_table_deinit(pskgw_cid_table_t *t)
{
    free(t->b);
    t->b = NULL;
    t->cap = t->n = 0;
}

static int grow(pskgw_cid_table_t *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    pskgw_cid_entry_t **nb = calloc(ncap, sizeof(*nb));

    if (nb == NULL)
        return PSKGW_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        pskgw_cid_entry_t *e = t->b[i];

        while (e != NULL) {
            pskgw_cid_entry_t *next = e->next;
            size_t j = cid_hash(t->seed, e->cid, e->len) & (ncap - 1);

            e->next = nb[j];
            nb[j] = e;
            e = next;
        }
    }
    free(t->b);
    t->b = nb;
    t->cap = ncap;
    return 0;
}

pskgw_cid_entry_t *pskgw_cid_table_find(const pskgw_cid_table_t *t, const uint8_t *cid, size_t len)
{
    if (t->cap == 0 || cid == NULL || len == 0 || len > PSKGW_CID_MAX)
        return NULL;
    for (pskgw_cid_entry_t *e = t->b[cid_hash(t->seed, cid, len) & (t->cap - 1)]; e != NULL;
         e = e->next) {
        if (e->len == len && memcmp(e->cid, cid, len) == 0)
            return e;
    }
    return NULL;
}

int pskgw_cid_table_insert(pskgw_cid_table_t *t, pskgw_cid_entry_t *e)
{
    size_t j;

    if (e == NULL || e->linked || e->len == 0 || e->len > PSKGW_CID_MAX)
        return PSKGW_EINVAL;
    if (pskgw_cid_table_find(t, e->cid, e->len) != NULL)
        return PSKGW_EEXISTS;
    if (t->n + 1 > t->cap && grow(t) < 0)
        return PSKGW_ENOMEM;
    j = cid_hash(t->seed, e->cid, e->len) & (t->cap - 1);
    e->next = t->b[j];
    t->b[j] = e;
    e->linked = true;
    t->n++;
    return 0;
}

void pskgw_cid_table_remove(pskgw_cid_table_t *t, pskgw_cid_entry_t *e)
{
    pskgw_cid_entry_t **pp;

    if (e == NULL || !e->linked || t->cap == 0)
        return;
    for (pp = &t->b[cid_hash(t->seed, e->cid, e->len) & (t->cap - 1)]; *pp != NULL;
         pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            e->next = NULL;
            e->linked = false;
            t->n--;
            return;
        }
    }
}
