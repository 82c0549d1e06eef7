/* Fuzz target: the key cache's stored-value codec (keycache/codec.h). Whatever Redis holds, decode
 * must never read or write out of bounds and must fail unless the bytes were sealed under one of
 * the keyring's KEKs for this entry; and encode/decode must round-trip any record built from the
 * input. */
#include "common/err.h"
#include "keycache/codec.h"
#include "keycache/psk_value.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t kek[32] = { 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f };
static const uint8_t prev[32] = { 0x20, 0x21, 0x22, 0x23 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t value[PSKGW_KEYCACHE_VALUE_MAX];
    static uint8_t sealed[PSKGW_KEYCACHE_CODEC_OVERHEAD + PSKGW_KEYCACHE_VALUE_MAX];
    const pskgw_keycache_keyring_t kr = { kek, 1, prev, 0 };
    pskgw_keycache_record_t rec;
    pskgw_keycache_record_t back;
    size_t n = 0;
    int rc;

    /* 1. The input as a stored value, for a fixed entry; small value buffers too. */
    rc = pskgw_keycache_codec_decode(&kr, "example.com", "psk", (const uint8_t *)"id", 2, data,
                                     size, value, sizeof(value), &rec);
    if (rc == 0 && (rec.value_len > sizeof(value) || rec.fresh_until_ms > rec.stale_until_ms))
        abort();
    (void)pskgw_keycache_codec_decode(&kr, "example.com", "psk", (const uint8_t *)"id", 2, data,
                                      size, value, size % 8, &rec);

    /* 2. The input as a PSK-cache value: decode, then encode must give the same bytes. */
    {
        uint8_t psk[PSKGW_KEYCACHE_PSK_MAX];
        uint8_t again[PSKGW_KEYCACHE_PSK_VALUE_MAX];
        char uid[PSKGW_KEYCACHE_UID_MAX + 1];
        size_t pl = 0;
        size_t m = 0;

        if (pskgw_keycache_psk_value_decode(data, size, psk, sizeof(psk), &pl, uid, sizeof(uid)) ==
            0) {
            if (pskgw_keycache_psk_value_encode(psk, pl, uid, again, sizeof(again), &m) != 0 ||
                m != size || memcmp(again, data, size) != 0)
                abort();
        }
    }

    /* 3. Round trip: the input is kind, key length, key, value. */
    if (size >= 3) {
        uint8_t kind = (uint8_t)(1 + data[0] % 3);
        size_t klen = 1 + data[1] % 64;
        const uint8_t *key = data + 2;
        size_t rest = size - 2;
        uint8_t iv[PSKGW_KEYCACHE_IV_LEN] = { 0 };

        if (klen > rest)
            return 0;
        rec.kind = kind;
        rec.fresh_until_ms = 1000;
        rec.stale_until_ms = 2000;
        rec.value = data + 2 + klen;
        rec.value_len = kind == PSKGW_KEYCACHE_KIND_VALUE ? rest - klen : 0;
        if (rec.value_len > PSKGW_KEYCACHE_VALUE_MAX)
            rec.value_len = PSKGW_KEYCACHE_VALUE_MAX;
        memcpy(iv, data, size < sizeof(iv) ? size : sizeof(iv));
        if (pskgw_keycache_codec_encode(kek, 1, iv, "d.example", "e2e", key, klen, &rec, sealed,
                                        sizeof(sealed), &n) != 0)
            abort();
        if (pskgw_keycache_codec_decode(&kr, "d.example", "e2e", key, klen, sealed, n, value,
                                        sizeof(value), &back) != 0)
            abort();
        if (back.kind != rec.kind || back.value_len != rec.value_len ||
            back.fresh_until_ms != 1000 || back.stale_until_ms != 2000 ||
            (rec.value_len && memcmp(back.value, rec.value, rec.value_len) != 0))
            abort();
        /* Any single-bit change must be refused. */
        sealed[data[size - 1] % n] ^= (uint8_t)(1u << (data[0] % 8));
        if (pskgw_keycache_codec_decode(&kr, "d.example", "e2e", key, klen, sealed, n, value,
                                        sizeof(value), &back) == 0)
            abort();
    }
    return 0;
}
