/* PROXY protocol v2 encoder. See proxyv2.h. */
#include "common/proxyv2.h"

#include "common/err.h"

#include <netinet/in.h>
#include <string.h>

const uint8_t pskgw_pp2_signature[PSKGW_PP2_SIG_LEN] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

static size_t tlv_len(const char *v)
{
    return v != NULL && v[0] != '\0' ? 3 + strlen(v) : 0;
}

static bool family_ok(const struct sockaddr *sa)
{
    return sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

/* Both ends IPv4: 12 address bytes; otherwise 36 (IPv6, IPv4-mapped where needed). */
static size_t addr_len(const pskgw_pp2_t *h)
{
    if (h->local)
        return 0;
    return h->src->sa_family == AF_INET && h->dst->sa_family == AF_INET ? 12 : 36;
}

int pskgw_pp2_size(const pskgw_pp2_t *h, size_t *len)
{
    size_t body;

    if (h == NULL || len == NULL ||
        (h->transport != PSKGW_PP2_TRANSPORT_TCP && h->transport != PSKGW_PP2_TRANSPORT_UDP))
        return PSKGW_EINVAL;
    if (!h->local && (!family_ok(h->src) || !family_ok(h->dst)))
        return PSKGW_EINVAL;
    if ((h->identity != NULL && strlen(h->identity) > 65535) ||
        (h->rot_uid != NULL && strlen(h->rot_uid) > 65535))
        return PSKGW_EINVAL;
    body = addr_len(h) + tlv_len(h->identity) + tlv_len(h->rot_uid);
    if (body > 65535)
        return PSKGW_EINVAL;
    *len = PSKGW_PP2_HDR_LEN + body;
    return 0;
}

/* 16 address bytes of sa: IPv6 as is, IPv4 as ::ffff:a.b.c.d. */
static void put_addr6(uint8_t *p, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6) {
        memcpy(p, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return;
    }
    memset(p, 0, 10);
    p[10] = 0xff;
    p[11] = 0xff;
    memcpy(p + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
}

static const uint8_t *port_of(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6
               ? (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_port
               : (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_port;
}

static uint8_t *put_tlv(uint8_t *p, uint8_t type, const char *v)
{
    size_t n;

    if (v == NULL || v[0] == '\0')
        return p;
    n = strlen(v);
    p[0] = type;
    p[1] = (uint8_t)(n >> 8);
    p[2] = (uint8_t)n;
    memcpy(p + 3, v, n);
    return p + 3 + n;
}

int pskgw_pp2_encode(const pskgw_pp2_t *h, uint8_t *out, size_t cap, size_t *len)
{
    size_t total, alen;
    uint8_t *p;
    int rc = pskgw_pp2_size(h, &total);

    if (rc < 0)
        return rc;
    if (out == NULL || cap < total)
        return PSKGW_ETOOBIG;
    alen = addr_len(h);
    memcpy(out, pskgw_pp2_signature, PSKGW_PP2_SIG_LEN);
    out[12] = h->local ? 0x20 : 0x21;
    out[13] = h->local ? 0x00 : (uint8_t)((alen == 12 ? 0x10 : 0x20) | h->transport);
    out[14] = (uint8_t)((total - PSKGW_PP2_HDR_LEN) >> 8);
    out[15] = (uint8_t)(total - PSKGW_PP2_HDR_LEN);
    p = out + PSKGW_PP2_HDR_LEN;
    if (alen == 12) {
        memcpy(p, &((const struct sockaddr_in *)h->src)->sin_addr, 4);
        memcpy(p + 4, &((const struct sockaddr_in *)h->dst)->sin_addr, 4);
        p += 8;
    } else if (alen == 36) {
        put_addr6(p, h->src);
        put_addr6(p + 16, h->dst);
        p += 32;
    }
    if (alen > 0) {
        memcpy(p, port_of(h->src), 2);
        memcpy(p + 2, port_of(h->dst), 2);
        p += 4;
    }
    p = put_tlv(p, PSKGW_PP2_TYPE_IDENTITY, h->identity);
    p = put_tlv(p, PSKGW_PP2_TYPE_ROT_UID, h->rot_uid);
    *len = (size_t)(p - out);
    return 0;
}
