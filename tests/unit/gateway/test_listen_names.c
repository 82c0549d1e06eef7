/* Peer names (gateway/listen_names.c): the IPv4 name is formatted without printf (it runs for
 * every datagram); it must read exactly as inet_ntop + "%s:%u" did, cut like snprintf. */
#include "gateway/listen_internal.h"

#include "common/err.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static void name4(const char *ip, uint16_t port, char *out, size_t cap, uint8_t *key,
                  uint8_t *key_len)
{
    struct sockaddr_in a;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    cr_assert_eq(pskgw_listen_peer_name((const struct sockaddr *)&a, out, cap, key, key_len), 0);
}

Test(listen_names, ipv4_names_read_as_inet_ntop_and_port)
{
    static const char *ips[] = { "0.0.0.0",       "127.0.0.1",       "10.1.20.200",
                                 "192.168.100.9", "255.255.255.255", "1.22.133.4" };
    static const uint16_t ports[] = { 0, 1, 9, 10, 99, 100, 5684, 9999, 10000, 65535 };
    uint8_t key[PSKGW_PEER_KEY_MAX];
    uint8_t key_len = 0;

    for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
        for (size_t j = 0; j < sizeof(ports) / sizeof(ports[0]); j++) {
            char want[64];
            char got[PSKGW_PEER_STR_CAP];

            (void)snprintf(want, sizeof(want), "%s:%u", ips[i], (unsigned)ports[j]);
            name4(ips[i], ports[j], got, sizeof(got), key, &key_len);
            cr_assert_str_eq(got, want);
            cr_assert_eq(key_len, 7);
            cr_assert_eq(key[0], 4);
        }
    }
}

Test(listen_names, a_short_buffer_is_cut_and_terminated)
{
    uint8_t key[PSKGW_PEER_KEY_MAX];
    uint8_t key_len = 0;
    char got[8];

    memset(got, 'x', sizeof(got));
    name4("255.255.255.255", 65535, got, sizeof(got), key, &key_len);
    cr_assert_str_eq(got, "255.255");
    name4("1.2.3.4", 5, got, 1, key, &key_len);
    cr_assert_str_eq(got, "");
}

Test(listen_names, ipv6_names_keep_brackets)
{
    struct sockaddr_in6 a;
    uint8_t key[PSKGW_PEER_KEY_MAX];
    uint8_t key_len = 0;
    char got[PSKGW_PEER_STR_CAP];

    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(5684);
    cr_assert_eq(inet_pton(AF_INET6, "2001:db8::1", &a.sin6_addr), 1);
    cr_assert_eq(
        pskgw_listen_peer_name((const struct sockaddr *)&a, got, sizeof(got), key, &key_len), 0);
    cr_assert_str_eq(got, "[2001:db8::1]:5684");
    cr_assert_eq(key_len, 19);
}

/* A session's peer key is not stored but derived from its address, which pskgw_lsess_new sets
 * from the key it is given: key -> address -> key must give the same bytes back. */
Test(listen_names, a_peer_key_gives_back_its_address_and_the_same_key)
{
    static const char *const ips[] = { "127.0.0.1", "192.0.2.7", "2001:db8::1", "::ffff:10.0.0.1" };
    static const uint16_t ports[] = { 1, 5684, 65535 };

    for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
        for (size_t j = 0; j < sizeof(ports) / sizeof(ports[0]); j++) {
            struct sockaddr_in6 in, out;
            uint8_t key[PSKGW_PEER_KEY_MAX], again[PSKGW_PEER_KEY_MAX];
            uint8_t key_len = 0, again_len = 0;
            char a[PSKGW_PEER_STR_CAP], b[PSKGW_PEER_STR_CAP];

            memset(&in, 0, sizeof(in));
            if (strchr(ips[i], ':') != NULL) {
                in.sin6_family = AF_INET6;
                in.sin6_port = htons(ports[j]);
                cr_assert_eq(inet_pton(AF_INET6, ips[i], &in.sin6_addr), 1);
            } else {
                struct sockaddr_in *v4 = (struct sockaddr_in *)&in;

                v4->sin_family = AF_INET;
                v4->sin_port = htons(ports[j]);
                cr_assert_eq(inet_pton(AF_INET, ips[i], &v4->sin_addr), 1);
            }
            cr_assert_eq(
                pskgw_listen_peer_name((const struct sockaddr *)&in, a, sizeof(a), key, &key_len),
                0);
            cr_assert_eq(pskgw_listen_peer_addr(key, key_len, &out), 0);
            cr_assert_eq(pskgw_listen_peer_name((const struct sockaddr *)&out, b, sizeof(b), again,
                                                &again_len),
                         0);
            cr_assert_str_eq(b, a);
            cr_assert_eq(again_len, key_len);
            cr_assert_eq(memcmp(again, key, key_len), 0);
        }
    }
}

Test(listen_names, a_malformed_peer_key_gives_no_address)
{
    static const uint8_t v4[7] = { 4, 0, 1, 127, 0, 0, 1 };
    static const uint8_t v6[19] = { 6, 0, 1 };
    struct sockaddr_in6 out;

    cr_assert_eq(pskgw_listen_peer_addr(v4, 6, &out), PSKGW_EINVAL);
    cr_assert_eq(pskgw_listen_peer_addr(v6, 7, &out), PSKGW_EINVAL, "a v6 key of v4 length");
    cr_assert_eq(pskgw_listen_peer_addr(v4, 19, &out), PSKGW_EINVAL, "a v4 key of v6 length");
    cr_assert_eq(pskgw_listen_peer_addr(v4, 0, &out), PSKGW_EINVAL);
}
