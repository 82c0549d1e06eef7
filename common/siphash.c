/* SipHash-2-4, 64- and 128-bit outputs: see siphash.h. Reference structure of the paper. */
#define _DEFAULT_SOURCE /* le64toh, htole64 */
#include "common/siphash.h"

#include <endian.h>
#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND           \
    do {                   \
        v0 += v1;          \
        v1 = ROTL(v1, 13); \
        v1 ^= v0;          \
        v0 = ROTL(v0, 32); \
        v2 += v3;          \
        v3 = ROTL(v3, 16); \
        v3 ^= v2;          \
        v0 += v3;          \
        v3 = ROTL(v3, 21); \
        v3 ^= v0;          \
        v2 += v1;          \
        v1 = ROTL(v1, 17); \
        v1 ^= v2;          \
        v2 = ROTL(v2, 32); \
    } while (0)

/* One unaligned little-endian load: the byte loop it replaces was compiled as eight loads and
 * shifts (the per-message lookups and the E2E replay check hash with it). */
static uint64_t le64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

typedef struct {
    uint64_t v0, v1, v2, v3;
} sip_t;

/* Initialisation and compression of every message word and of the last (length) word: all
 * but the finalisation, shared by the 64- and the 128-bit outputs. wide: the 128-bit variant's
 * 0xee in v1. Always inlined: called, it and sip_final cost the 64-bit hash of the address and
 * key-cache tables 23 more instructions a call (callgrind). */
__attribute__((always_inline)) static inline sip_t
sip_absorb(const uint8_t key[16], const uint8_t *data, size_t len, int wide)
{
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56;
    size_t end = len - (len % 8);

    if (wide)
        v1 ^= 0xee;
    for (size_t i = 0; i < end; i += 8) {
        uint64_t m = le64(data + i);

        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)data[end + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    return (sip_t){ v0, v1, v2, v3 };
}

/* v2 ^= x, then the four finalisation rounds. */
__attribute__((always_inline)) static inline void sip_final(sip_t *s, uint64_t x)
{
    uint64_t v0 = s->v0, v1 = s->v1, v2 = s->v2 ^ x, v3 = s->v3;

    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    *s = (sip_t){ v0, v1, v2, v3 };
}

uint64_t pskgw_siphash24(const uint8_t key[16], const uint8_t *data, size_t len)
{
    sip_t s = sip_absorb(key, data, len, 0);

    sip_final(&s, 0xff);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
}

void pskgw_siphash24_128(const uint8_t key[16], const uint8_t *data, size_t len, uint8_t out[16])
{
    sip_t s = sip_absorb(key, data, len, 1);

    sip_final(&s, 0xee);
    put_le64(out, s.v0 ^ s.v1 ^ s.v2 ^ s.v3);
    s.v1 ^= 0xdd;
    sip_final(&s, 0);
    put_le64(out + 8, s.v0 ^ s.v1 ^ s.v2 ^ s.v3);
}
