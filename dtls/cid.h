/* DTLS 1.2 Connection ID (RFC 9146): the server's CID layout, the tls12_cid record parser and a
 * CID table. Pure: no I/O, no clock; the random bytes come from the caller. Fuzzed by
 * fuzz/fuzz_dtls_cid.c.
 *
 * CID layout (what pskgw puts in the connection_id extension of its ServerHello, and what every
 * record the device sends afterwards carries):
 *
 *     byte 0          worker index (0..255): the worker process that issued it. A BPF program
 *                     attached with SO_ATTACH_REUSEPORT_CBPF (gateway/cid_steer.c) reads it at
 *                     a fixed offset of the UDP payload to steer the datagram to that worker.
 *     bytes 1..len-1  random, from the CSPRNG (the listener's DRBG): unguessable, so a CID
 *                     cannot be forged to reach another device's session.
 *
 * len is the listener's cid_length (PSKGW_CID_MIN..PSKGW_CID_MAX), the same for every CID a
 * listener issues: the server knows where a record's CID ends without any state.
 *
 * tls12_cid record (content type 25), RFC 9146 section 4:
 *
 *     offset 0  type = 25        offset 1  version (0xFE 0xFD)
 *     offset 3  epoch (2)        offset 5  sequence number (6)
 *     offset 11 CID (len)        offset 11+len  length (2), then the encrypted fragment
 */
#ifndef PSKGW_DTLS_CID_H
#define PSKGW_DTLS_CID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSKGW_CT_TLS12_CID  25
#define PSKGW_CID_MIN       4
#define PSKGW_CID_MAX       16
#define PSKGW_CID_OFFSET    11 /* of the CID in a tls12_cid record */
#define PSKGW_CID_WORKER_AT 0  /* the worker index: byte 0 of the CID */

/* A CID of len bytes for worker: out[0] = worker, out[1..len-1] = rnd[0..len-2] (len-1 random
 * bytes from the caller's CSPRNG). PSKGW_EINVAL if len is outside PSKGW_CID_MIN..MAX. */
int pskgw_dtls_cid_make(uint8_t worker, const uint8_t *rnd, size_t len, uint8_t *out);

typedef struct {
    const uint8_t *cid; /* cid_len bytes, borrowed from the datagram */
    uint16_t epoch;
    uint64_t seq;    /* 48-bit record sequence number */
    uint16_t length; /* of the encrypted fragment */
} pskgw_dtls_cid_record_t;

/* The tls12_cid record at the start of buf with a CID of cid_len bytes. *consumed = header +
 * fragment. PSKGW_EPARSE when buf is not such a record (another type, version major not 0xFE,
 * short header, fragment beyond len); PSKGW_EINVAL for a cid_len outside 1..PSKGW_CID_MAX. */
int pskgw_dtls_cid_record_parse(const uint8_t *buf, size_t len, size_t cid_len,
                                pskgw_dtls_cid_record_t *rec, size_t *consumed);

/* ---- CID table: CID -> entry, intrusive (the entry lives in its owner: no allocation per
 * entry), chained hash under a secret seed (CIDs come from the network). One thread. ---- */
typedef struct pskgw_cid_entry pskgw_cid_entry_t;
struct pskgw_cid_entry {
    pskgw_cid_entry_t *next;
    uint8_t cid[PSKGW_CID_MAX];
    uint8_t len;
    bool linked;
};

typedef struct {
    pskgw_cid_entry_t **b;
    size_t cap; /* power of two, 0 before the first insert */
    size_t n;
    uint64_t seed;
} pskgw_cid_table_t;

/* An empty table; seed: secret random (the placement of network-chosen keys depends on it). */
void pskgw_cid_table_init(pskgw_cid_table_t *t, uint64_t seed);
/* Frees the bucket array; the entries belong to their owners. */
void pskgw_cid_table_deinit(pskgw_cid_table_t *t);
/* Inserts e (e->cid, e->len set; e not linked). 0, PSKGW_EEXISTS when another entry has the same
 * CID (nothing done), PSKGW_EINVAL for a bad length or a linked e, PSKGW_ENOMEM. */
int pskgw_cid_table_insert(pskgw_cid_table_t *t, pskgw_cid_entry_t *e);
/* Unlinks e if linked (idempotent). */
void pskgw_cid_table_remove(pskgw_cid_table_t *t, pskgw_cid_entry_t *e);
/* The entry with this CID, or NULL. */
pskgw_cid_entry_t *pskgw_cid_table_find(const pskgw_cid_table_t *t, const uint8_t *cid, size_t len);

#endif
