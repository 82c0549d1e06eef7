/* pskgw-devsim: hand-made DTLS 1.2 handshake datagrams for the hostile scenarios (hostile.h).
 *
 * An attacker needs no TLS library to cost a gateway a key lookup: a ClientHello, the same
 * ClientHello again with the server's cookie, then a ClientKeyExchange carrying any PSK identity
 * in clear (about 225 bytes, no cryptography). These functions build exactly those datagrams and
 * read what a server answers (HelloVerifyRequest cookie, ServerHelloDone, alerts). Pure: no I/O,
 * no clock, no allocation; the caller owns every buffer.
 *
 * Errors: PSKGW_EINVAL (bad argument), PSKGW_TOOBIG (does not fit in the caller's buffer).
 */
#ifndef PSKGW_TOOLS_DEVSIM_RAWDTLS_H
#define PSKGW_TOOLS_DEVSIM_RAWDTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PSKGW_DEVSIM_RAW_RANDOM_LEN   32
#define PSKGW_DEVSIM_RAW_COOKIE_MAX   255
#define PSKGW_DEVSIM_RAW_IDENTITY_MAX 128

/* What one received datagram held (every record of it is looked at). */
typedef struct {
    bool hello_verify;      /* a HelloVerifyRequest: cookie/cookie_len set */
    bool server_hello;      /* ServerHello */
    bool server_hello_done; /* ServerHelloDone: the server waits for our ClientKeyExchange */
    bool alert;             /* a plaintext (epoch 0) fatal alert: alert_desc set */
    bool encrypted;         /* at least one record of a later epoch (a session's traffic) */
    uint8_t alert_desc;
    uint8_t cookie[PSKGW_DEVSIM_RAW_COOKIE_MAX];
    size_t cookie_len;
} pskgw_devsim_raw_answer_t;

/* A ClientHello as a SARA module sends it: DTLS 1.2, the PSK suites of the spec (0xC0A8, 0x00A8,
 * 0x00AE, 0x008C), null compression, extended_master_secret and renegotiation_info extensions.
 * record_seq and message_seq as the handshake stands (0/0 first, 1/1 with the cookie). cookie may
 * be NULL with cookie_len 0. Writes the datagram to out[0..*out_len). */
int pskgw_devsim_raw_client_hello(const uint8_t random[PSKGW_DEVSIM_RAW_RANDOM_LEN],
                                  const uint8_t *cookie, size_t cookie_len, uint64_t record_seq,
                                  uint16_t message_seq, uint8_t *out, size_t cap, size_t *out_len);

/* A ClientKeyExchange (PSK: the identity, 1..PSKGW_DEVSIM_RAW_IDENTITY_MAX bytes, in clear). */
int pskgw_devsim_raw_client_key_exchange(const uint8_t *identity, size_t identity_len,
                                         uint64_t record_seq, uint16_t message_seq, uint8_t *out,
                                         size_t cap, size_t *out_len);

/* Read a datagram from the server. Records that do not parse end the walk (what was seen before
 * stays). Always succeeds; *ans is zeroed first. */
void pskgw_devsim_raw_read_answer(const uint8_t *data, size_t len, pskgw_devsim_raw_answer_t *ans);

/* True when a datagram a client sent is a ClientHello that carries a cookie (the one to capture
 * for a replay: the server accepts it without a new cookie exchange while its secret lasts). */
bool pskgw_devsim_raw_is_hello_with_cookie(const uint8_t *data, size_t len);

/* A random identity shaped like a module's: 28 upper-case hex characters starting "1101" (the
 * prefix of every identity the spec shows), the other 24 from `entropy` (12 bytes). out holds
 * 29 bytes (NUL-terminated). */
void pskgw_devsim_raw_module_identity(const uint8_t entropy[12], char out[29]);

#endif
