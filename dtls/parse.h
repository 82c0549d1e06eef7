/* Pure parsers for the plaintext parts of (D)TLS 1.2 that pskgw reads before wolfSSL does:
 * record headers, handshake headers, the ClientHello fields the stateless cookie covers, and the
 * PSK identity of a ClientKeyExchange (reassembled from DTLS fragments, or found in a TLS byte
 * stream). No I/O, no allocation, no clock: fuzzed by fuzz/fuzz_dtls_record.c and
 * fuzz/fuzz_dtls_cke.c.
 *
 * Every function returns 0 (or a documented positive value) or a negative PSKGW_E* code:
 *   PSKGW_EPARSE   the bytes are not a well-formed structure of that kind
 *   PSKGW_EAGAIN   (stream/reassembly) not enough bytes yet
 *   PSKGW_ETOOBIG  a length exceeds the bound given or the output capacity
 * Output pointers point into the caller's input buffer (borrowed, valid as long as it is).
 */
#ifndef PSKGW_DTLS_PARSE_H
#define PSKGW_DTLS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSKGW_DTLS_RECORD_HEADER_LEN 13
#define PSKGW_TLS_RECORD_HEADER_LEN  5
#define PSKGW_DTLS_HS_HEADER_LEN     12
#define PSKGW_TLS_HS_HEADER_LEN      4

enum {
    PSKGW_CT_CHANGE_CIPHER_SPEC = 20,
    PSKGW_CT_ALERT = 21,
    PSKGW_CT_HANDSHAKE = 22,
    PSKGW_CT_APPLICATION_DATA = 23,
};
enum {
    PSKGW_HS_CLIENT_HELLO = 1,
    PSKGW_HS_HELLO_VERIFY_REQUEST = 3,
    PSKGW_HS_CLIENT_KEY_EXCHANGE = 16,
};

/* Largest identity pskgw ever accepts from the wire (the per-listener bound is at most this). */
#define PSKGW_IDENTITY_MAX_RAW 128
/* Upper-hex form of the largest identity plus NUL. */
#define PSKGW_IDENTITY_HEX_CAP (2 * PSKGW_IDENTITY_MAX_RAW + 1)

typedef struct {
    uint8_t type;
    uint16_t version;
    uint16_t epoch;  /* DTLS only */
    uint64_t seq;    /* DTLS only: 48-bit sequence number */
    uint16_t length; /* fragment length */
    const uint8_t *fragment;
} pskgw_dtls_record_t;

/* One DTLS record at the start of buf. *consumed = header + fragment length. Records whose
 * version major byte is not 0xFE are PSKGW_EPARSE. */
int pskgw_dtls_record_parse(const uint8_t *buf, size_t len, pskgw_dtls_record_t *rec,
                            size_t *consumed);
/* One TLS record header at the start of a stream (major 3). PSKGW_EAGAIN if fewer than 5 bytes
 * or the fragment is incomplete; PSKGW_ETOOBIG if the length exceeds 16384 + 2048. */
int pskgw_tls_record_parse(const uint8_t *buf, size_t len, pskgw_dtls_record_t *rec,
                           size_t *consumed);

typedef struct {
    uint8_t msg_type;
    uint32_t length;      /* whole message */
    uint16_t message_seq; /* DTLS only */
    uint32_t frag_offset; /* DTLS only */
    uint32_t frag_length; /* DTLS only; TLS: == length */
    const uint8_t *body;  /* frag_length bytes */
} pskgw_dtls_hs_t;

/* A DTLS handshake fragment at the start of buf (one record's fragment may hold several).
 * Checks frag_offset + frag_length <= length and that the fragment bytes are present. */
int pskgw_dtls_hs_parse(const uint8_t *buf, size_t len, pskgw_dtls_hs_t *hs, size_t *consumed);

typedef struct {
    const uint8_t *version; /* 2 bytes */
    const uint8_t *random;  /* 32 bytes */
    const uint8_t *session_id;
    size_t session_id_len;
    const uint8_t *cookie;
    size_t cookie_len;
    const uint8_t *suites;
    size_t suites_len;
    const uint8_t *compression;
    size_t compression_len;
} pskgw_dtls_client_hello_t;

/* The fields of a (complete, unfragmented) DTLS ClientHello body. */
int pskgw_dtls_client_hello_parse(const uint8_t *body, size_t len, pskgw_dtls_client_hello_t *ch);

/* The first ClientHello in a datagram of epoch-0 records: record seq, message_seq and the
 * parsed fields. PSKGW_EPARSE if the first record is not an unfragmented ClientHello. */
int pskgw_dtls_find_client_hello(const uint8_t *dgram, size_t len, uint64_t *record_seq,
                                 uint16_t *message_seq, pskgw_dtls_client_hello_t *ch);

/* The identity of a ClientKeyExchange body: 2-byte big-endian length, then the identity (the
 * PSK and ECDHE-PSK key exchanges both begin so). PSKGW_EPARSE on an empty identity or a length
 * beyond the body; PSKGW_ETOOBIG if longer than max_len. */
int pskgw_cke_identity(const uint8_t *body, size_t len, size_t max_len, const uint8_t **ident,
                       size_t *ident_len);

/* Normalise an identity to the KeyID form: an identity of ASCII hex digits is used exactly as
 * the device sent it (case kept); anything else (raw bytes) is hex-encoded in upper case, as
 * the module prints identities (AT+USECPSK). out gets a NUL-terminated string. */
int pskgw_identity_normalize(const uint8_t *ident, size_t len, char *out, size_t cap);

/* Reassembly of a DTLS ClientKeyExchange from epoch-0 handshake fragments, in caller memory.
 * Only the first PSKGW_CKE_ASM_MAX bytes of the message are kept: enough for the identity. */
#define PSKGW_CKE_ASM_MAX (PSKGW_IDENTITY_MAX_RAW + 2)
typedef struct {
    bool active;
    uint16_t message_seq;
    uint32_t length; /* whole CKE body length */
    uint8_t buf[PSKGW_CKE_ASM_MAX];
    uint8_t have[(PSKGW_CKE_ASM_MAX + 7) / 8]; /* bitmap of bytes received */
} pskgw_cke_asm_t;

void pskgw_cke_asm_init(pskgw_cke_asm_t *a);
/* Feed one datagram. Returns 1 when the identity is complete (*ident points into a->buf, valid
 * until the next call), 0 when the datagram held no (new) complete identity, PSKGW_EPARSE for a
 * malformed epoch-0 handshake record, PSKGW_ETOOBIG for an identity longer than max_len.
 * *has_cke (optional) is set when the datagram carried a CKE fragment; *cke_start when one of
 * them was at offset 0 (the start of a (re)transmitted flight). Records of other epochs and
 * content types are skipped. */
int pskgw_cke_asm_feed(pskgw_cke_asm_t *a, const uint8_t *dgram, size_t len, size_t max_len,
                       const uint8_t **ident, size_t *ident_len, bool *has_cke, bool *cke_start);

/* TLS over a byte stream: scan the plaintext handshake records at the start of stream for a
 * ClientKeyExchange. 1 found (*ident points into scratch), 0 not yet (need more bytes), or
 * PSKGW_EPARSE / PSKGW_ETOOBIG. Stops at the first ChangeCipherSpec or non-handshake record
 * (returns PSKGW_EPARSE if no CKE came before it). Handshake messages may span records. The
 * identity must lie within the first `scratch_cap` bytes of the handshake byte stream; scratch
 * is caller memory used to join record fragments. */
int pskgw_tls_find_cke_identity(const uint8_t *stream, size_t len, size_t max_len, uint8_t *scratch,
                                size_t scratch_cap, const uint8_t **ident, size_t *ident_len);

#endif
