/* No allocation per record on an established session: a wolfSSL client sends messages to a
 * pskgw_dtls_session through memory (tests/unit/dtls/pair.h) and the session answers each with
 * an ack, on a fake clock. After a warm-up, many more exchanges go through while
 * tests/support/allocfail counts every allocation of our code and of wolfSSL (both sides: the
 * client is wolfSSL too), as tests/unit/sinks/test_alloc_path.c does for the path after it: the
 * count must not move. wolfSSL grows and frees its record I/O buffers for every record;
 * dtls/wolfmem.c recycles them (docs/WOLFSSL.md, "Per record"). */
#include "pair.h"

#include "allocfail.h"
#include "common/err.h"
#include "dtls/wolfmem.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define ID  "11010008002F33244B115B0AEEB9"
#define PSK "E5DE45B367DB690F2E17CF9D80A18E87"
#define UID "A1B2C3D4E5F60718"

/* Message i's length: fixed, or (len 0) every size from 1 to 1200 bytes in turn. */
static size_t msg_len(size_t len, size_t i)
{
    return len > 0 ? len : 1 + (i * 37) % 1200;
}

/* One message client -> session (framed as the context wants) and one ack session -> client. */
static void exchange(tpair_t *p, pskgw_framing_t framing, size_t len, size_t i)
{
    static uint8_t msg[1300];
    static uint8_t got[1300];
    size_t n = msg_len(len, i);
    size_t wire = n;
    uint64_t seq = p->last_seq;
    char ack[32];
    int alen;

    if (framing == PSKGW_FRAMING_LEN16) {
        msg[0] = (uint8_t)(n >> 8);
        msg[1] = (uint8_t)n;
        memset(msg + 2, 'a' + (int)(i % 26), n);
        wire = n + 2;
    } else {
        memset(msg, 'a' + (int)(i % 26), n);
    }
    p->now += 10;
    cr_assert_eq(wolfSSL_write(p->cli, msg, (int)wire), (int)wire, "message %zu", i);
    tpair_pump(p);
    cr_assert_eq(p->last_seq, seq + 1, "message %zu delivered once", i);
    alen = snprintf(ack, sizeof(ack), "ack %zu", i);
    cr_assert_eq(pskgw_dtls_session_write(p->srv, (const uint8_t *)ack, (size_t)alen), 0);
    cr_assert_eq(wolfSSL_read(p->cli, got, (int)sizeof(got)),
                 framing == PSKGW_FRAMING_LEN16 ? alen + 2 : alen);
    cr_assert(memcmp(framing == PSKGW_FRAMING_LEN16 ? got + 2 : got, ack, (size_t)alen) == 0);
}

static void run(bool dtls, const char *cipher, pskgw_framing_t framing, size_t len)
{
    enum { WARM = 64, COUNT = 1000 };
    pskgw_dtls_ctx_t *c = tpair_dtls_ctx_framed(dtls, framing);
    pskgw_wolfmem_stats_t st0, st1;
    tres_t r;
    tpair_t p;
    long before, after;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, dtls, cipher, ID, PSK);
    tpair_pump(&p);
    cr_assert(p.cli_done, "%s: client error %d", cipher, p.cli_error);
    cr_assert_eq(p.established, 1);
    for (size_t i = 0; i < WARM; i++)
        exchange(&p, framing, len, i);
    pskgw_wolfmem_stats(&st0);
    before = pskgw_allocfail_calls();
    for (size_t i = WARM; i < WARM + COUNT; i++)
        exchange(&p, framing, len, i);
    after = pskgw_allocfail_calls();
    pskgw_wolfmem_stats(&st1);
    cr_assert_eq(after - before, 0,
                 "%s %s: %ld allocations for %d messages and acks in steady state (%.2f each)",
                 dtls ? "DTLS" : "TLS", cipher, after - before, COUNT,
                 (double)(after - before) / COUNT);
    /* The I/O buffers were there, and came from the pool: at least one per record each way. */
    cr_assert_geq(st1.hits - st0.hits, 2 * (size_t)COUNT, "pool hits %zu", st1.hits - st0.hits);
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(alloc_path, dtls_records_allocate_nothing_in_steady_state)
{
    run(true, "PSK-AES128-CCM-8", PSKGW_FRAMING_RECORD, 64);
    run(true, "PSK-AES128-GCM-SHA256", PSKGW_FRAMING_RECORD, 64);
    run(true, "PSK-AES128-CBC-SHA256", PSKGW_FRAMING_RECORD, 64);
}

/* Messages of every size up to 1200 bytes: each size class of the pool warms up once. */
Test(alloc_path, dtls_records_of_every_size_allocate_nothing_in_steady_state)
{
    run(true, "PSK-AES128-CCM-8", PSKGW_FRAMING_RECORD, 0);
}

/* TLS over a stream, len16 framing: the framed write used to malloc a frame per message. */
Test(alloc_path, tls_len16_messages_allocate_nothing_in_steady_state)
{
    run(false, "PSK-AES128-GCM-SHA256", PSKGW_FRAMING_LEN16, 64);
    run(false, "PSK-AES128-GCM-SHA256", PSKGW_FRAMING_LEN16, 0);
}

/* The counter counts wolfSSL's own allocations (so a counter stuck at zero cannot pass the
 * tests above): a wolfSSL CTX made by the test itself allocates through dtls/wolfmem.c. */
Test(alloc_path, the_counter_sees_wolfssl_allocations)
{
    long before = pskgw_allocfail_calls();
    WOLFSSL_CTX *w = wolfSSL_CTX_new(wolfDTLSv1_2_server_method());

    cr_assert_not_null(w);
    cr_assert_gt(pskgw_allocfail_calls() - before, 0);
    cr_assert(pskgw_wolfmem_enabled(), "the profile builds wolfSSL with XMALLOC_USER");
    wolfSSL_CTX_free(w);
}
