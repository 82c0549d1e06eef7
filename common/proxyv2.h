/* PROXY protocol version 2 header encoder (HAProxy's proxy-protocol.txt, section 2.2): no I/O.
 *
 * The header a forwarding listener writes first on a backend TCP connection (and in front of
 * every datagram on a UDP backend flow, when proxy_protocol is set):
 *
 *   12 bytes  signature 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
 *    1 byte   version and command: 0x21 (v2, PROXY) or 0x20 (v2, LOCAL: no addresses)
 *    1 byte   family and transport: 0x11 TCP/IPv4, 0x12 UDP/IPv4, 0x21 TCP/IPv6, 0x22 UDP/IPv6
 *             (0x00 with LOCAL)
 *    2 bytes  length of what follows, big-endian
 *   12 or 36  source address, destination address, source port, destination port (network
 *             order); an IPv4 and an IPv6 end are both written as IPv6 (IPv4-mapped)
 *   TLVs      type (1 byte), length (2 bytes, big-endian), value:
 *               0xE0 PSKGW_PP2_TYPE_IDENTITY  the device's PSK identity as pskgw names it
 *                                             (KeyID, upper-case hex ASCII), no NUL
 *               0xE1 PSKGW_PP2_TYPE_ROT_UID   the device's ROTPublicUID (hex ASCII) as the
 *                                             security service gave it; left out when unknown
 *             (0xE0..0xEF is the range the specification leaves to custom use.)
 *
 * Threading: pure functions, any thread.
 */
#ifndef PSKGW_COMMON_PROXYV2_H
#define PSKGW_COMMON_PROXYV2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PSKGW_PP2_SIG_LEN       12
#define PSKGW_PP2_HDR_LEN       16 /* signature, ver/cmd, fam, len */
#define PSKGW_PP2_TYPE_IDENTITY 0xE0
#define PSKGW_PP2_TYPE_ROT_UID  0xE1
#define PSKGW_PP2_TRANSPORT_TCP 1
#define PSKGW_PP2_TRANSPORT_UDP 2

extern const uint8_t pskgw_pp2_signature[PSKGW_PP2_SIG_LEN];

typedef struct {
    bool local;                 /* LOCAL command: no addresses (src, dst ignored) */
    int transport;              /* PSKGW_PP2_TRANSPORT_TCP or _UDP */
    const struct sockaddr *src; /* the device (AF_INET or AF_INET6) */
    const struct sockaddr *dst; /* the address the device reached (the listener's) */
    const char *identity;       /* NULL or "": no TLV */
    const char *rot_uid;        /* NULL or "": no TLV */
} pskgw_pp2_t;

/* The header's size for h, or PSKGW_EINVAL (unknown family or transport, a TLV value above
 * 65535 bytes or a total length above 65535). */
int pskgw_pp2_size(const pskgw_pp2_t *h, size_t *len);

/* Writes the header into out (cap bytes). 0 and *len written; PSKGW_EINVAL as for
 * pskgw_pp2_size, PSKGW_ETOOBIG when cap is too small (nothing written then). */
int pskgw_pp2_encode(const pskgw_pp2_t *h, uint8_t *out, size_t cap, size_t *len);

#endif
