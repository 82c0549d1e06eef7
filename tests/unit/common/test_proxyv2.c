/* The PROXY v2 encoder against the byte layout of HAProxy's proxy-protocol.txt (2.2). */
#include "common/err.h"
#include "common/proxyv2.h"
#include "pp2_decode.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
    struct sockaddr_in a;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port)
{
    struct sockaddr_in6 a;

    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return a;
}

/* Every byte of a TCP/IPv4 header with both TLVs, written out by hand from the specification. */
Test(proxyv2, tcp4_bytes_match_the_specification)
{
    struct sockaddr_in s = v4("192.0.2.1", 50000), d = v4("198.51.100.7", 8883);
    pskgw_pp2_t h = { .transport = PSKGW_PP2_TRANSPORT_TCP,
                      .src = (struct sockaddr *)&s,
                      .dst = (struct sockaddr *)&d,
                      .identity = "AB12",
                      .rot_uid = "0102" };
    static const uint8_t want[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, /* signature */
        0x21,                                                                   /* v2, PROXY */
        0x11,                                                                   /* INET, STREAM */
        0x00, 0x1A,                                  /* 12 address bytes + 2 TLVs of 7 */
        192,  0,    2,    1,    198,  51,   100,  7, /* src, dst */
        0xC3, 0x50, 0x22, 0xB3,                      /* 50000, 8883 */
        0xE0, 0x00, 0x04, 'A',  'B',  '1',  '2',  0xE1, 0x00, 0x04, '0',  '1',  '0', '2',
    };
    uint8_t out[128];
    size_t len = 0, size = 0;

    cr_assert_eq(pskgw_pp2_size(&h, &size), 0);
    cr_assert_eq(pskgw_pp2_encode(&h, out, sizeof(out), &len), 0);
    cr_assert_eq(len, sizeof(want));
    cr_assert_eq(size, len);
    cr_assert_arr_eq(out, want, sizeof(want));
}

Test(proxyv2, udp6_and_a_mixed_pair_are_ipv6_with_mapped_ipv4)
{
    struct sockaddr_in6 s = v6("2001:db8::1", 5684);
    struct sockaddr_in d = v4("10.0.0.2", 5683);
    pskgw_pp2_t h = { .transport = PSKGW_PP2_TRANSPORT_UDP,
                      .src = (struct sockaddr *)&s,
                      .dst = (struct sockaddr *)&d,
                      .identity = "00FF" };
    static const uint8_t mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2 };
    uint8_t out[128];
    size_t len;
    pp2_decoded_t dec;

    cr_assert_eq(pskgw_pp2_encode(&h, out, sizeof(out), &len), 0);
    cr_assert_eq(out[13], 0x22, "INET6, DGRAM");
    cr_assert_eq(out[14] << 8 | out[15], 36 + 7);
    cr_assert_eq(len, 16u + 36 + 7);
    cr_assert_eq(pp2_decode(out, len, &dec), 0);
    cr_assert_eq(dec.addr_len, 16u);
    cr_assert_arr_eq(dec.src, &s.sin6_addr, 16);
    cr_assert_arr_eq(dec.dst, mapped, 16);
    cr_assert_eq(dec.src_port, 5684);
    cr_assert_eq(dec.dst_port, 5683);
    cr_assert_str_eq(dec.identity, "00FF");
    cr_assert_str_eq(dec.rot_uid, "", "no UID: no TLV");
    cr_assert_eq(dec.ntlv, 1u);
}

Test(proxyv2, local_has_no_addresses)
{
    pskgw_pp2_t h = { .local = true, .transport = PSKGW_PP2_TRANSPORT_TCP };
    uint8_t out[32];
    size_t len;

    cr_assert_eq(pskgw_pp2_encode(&h, out, sizeof(out), &len), 0);
    cr_assert_eq(len, 16u);
    cr_assert_eq(out[12], 0x20);
    cr_assert_eq(out[13], 0x00);
    cr_assert_eq(out[14], 0);
    cr_assert_eq(out[15], 0);
}

Test(proxyv2, errors_write_nothing)
{
    struct sockaddr_in s = v4("192.0.2.1", 1), d = v4("192.0.2.2", 2);
    struct sockaddr bad = { .sa_family = AF_UNIX };
    pskgw_pp2_t h = { .transport = PSKGW_PP2_TRANSPORT_TCP,
                      .src = (struct sockaddr *)&s,
                      .dst = (struct sockaddr *)&d,
                      .identity = "AB" };
    uint8_t out[64];
    size_t len = 7;

    memset(out, 0x5A, sizeof(out));
    cr_assert_eq(pskgw_pp2_encode(&h, out, 16 + 12 + 4, &len), PSKGW_ETOOBIG, "one byte short");
    cr_assert_eq(out[0], 0x5A);
    cr_assert_eq(len, 7u);
    h.transport = 3;
    cr_assert_eq(pskgw_pp2_encode(&h, out, sizeof(out), &len), PSKGW_EINVAL);
    h.transport = PSKGW_PP2_TRANSPORT_TCP;
    h.src = &bad;
    cr_assert_eq(pskgw_pp2_encode(&h, out, sizeof(out), &len), PSKGW_EINVAL);
    cr_assert_eq(len, 7u);
}

Test(proxyv2, the_total_length_is_bounded)
{
    static char big[65536];
    struct sockaddr_in s = v4("192.0.2.1", 1), d = v4("192.0.2.2", 2);
    pskgw_pp2_t h = { .transport = PSKGW_PP2_TRANSPORT_TCP,
                      .src = (struct sockaddr *)&s,
                      .dst = (struct sockaddr *)&d,
                      .identity = big };
    size_t len;

    memset(big, 'A', 65535 - 12 - 3);
    cr_assert_eq(pskgw_pp2_size(&h, &len), 0, "exactly 65535 after the fixed part");
    cr_assert_eq(len, 16u + 65535);
    big[65535 - 12 - 3] = 'A';
    cr_assert_eq(pskgw_pp2_size(&h, &len), PSKGW_EINVAL);
}
