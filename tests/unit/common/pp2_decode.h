/* Test-only PROXY v2 decoder: reads what common/proxyv2.c writes, checking every length. Not in
 * product code (it would parse untrusted bytes there). */
#ifndef PSKGW_TEST_PP2_DECODE_H
#define PSKGW_TEST_PP2_DECODE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t ver_cmd, fam;
    size_t header_len; /* 16 + len */
    uint8_t src[16], dst[16];
    size_t addr_len; /* per address: 4 or 16; 0 for LOCAL */
    uint16_t src_port, dst_port;
    char identity[512]; /* TLV 0xE0, "" when absent */
    char rot_uid[512];  /* TLV 0xE1, "" when absent */
    unsigned ntlv;
} pp2_decoded_t;

/* 0, or -1 when the bytes are no complete, consistent v2 header. */
int pp2_decode(const uint8_t *p, size_t n, pp2_decoded_t *out);

#endif
