/* pskgw-devsim: message payloads (see payload.h). */
#include "tools/devsim/payload.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

int pskgw_devsim_payload_make(uint32_t run, uint32_t device, uint32_t n, size_t size, uint8_t *out,
                              size_t cap)
{
    if (out == NULL || size < PSKGW_DEVSIM_PAYLOAD_MIN || size > PSKGW_DEVSIM_PAYLOAD_MAX)
        return PSKGW_EINVAL;
    if (cap < size)
        return PSKGW_ETOOBIG;
    char head[PSKGW_DEVSIM_PAYLOAD_MIN + 1];
    int h =
        snprintf(head, sizeof(head), "%08x:%u:%u;", (unsigned)run, (unsigned)device, (unsigned)n);
    if (h <= 0 || (size_t)h >= sizeof(head))
        return PSKGW_EINVAL;
    memcpy(out, head, (size_t)h);
    uint32_t mix = device * 31u + n * 7u;
    for (size_t k = (size_t)h; k < size; k++)
        out[k] = (uint8_t)('a' + (mix + (uint32_t)k) % 26u);
    return 0;
}

static int parse_u32(const uint8_t *p, size_t len, size_t *pos, int base, uint8_t end,
                     uint32_t *out)
{
    uint64_t v = 0;
    size_t start = *pos, i = *pos;
    for (; i < len && p[i] != end; i++) {
        unsigned d;
        if (p[i] >= '0' && p[i] <= '9')
            d = p[i] - '0';
        else if (base == 16 && p[i] >= 'a' && p[i] <= 'f')
            d = p[i] - 'a' + 10u;
        else
            return PSKGW_EPARSE;
        v = v * (unsigned)base + d;
        if (v > UINT32_MAX || i - start >= 10)
            return PSKGW_EPARSE;
    }
    if (i == start || i >= len)
        return PSKGW_EPARSE;
    *pos = i + 1;
    *out = (uint32_t)v;
    return 0;
}

int pskgw_devsim_payload_parse(const uint8_t *msg, size_t len, uint32_t *run, uint32_t *device,
                               uint32_t *n)
{
    if (msg == NULL || run == NULL || device == NULL || n == NULL)
        return PSKGW_EINVAL;
    size_t pos = 0;
    uint32_t r, d, m;
    if (len < 9 || msg[8] != ':')
        return PSKGW_EPARSE;
    if (parse_u32(msg, len, &pos, 16, ':', &r) < 0 || pos != 9)
        return PSKGW_EPARSE;
    if (parse_u32(msg, len, &pos, 10, ':', &d) < 0 || parse_u32(msg, len, &pos, 10, ';', &m) < 0)
        return PSKGW_EPARSE;
    *run = r;
    *device = d;
    *n = m;
    return 0;
}
