/* What a DTLS session holds between datagrams: an established session holds no more heap after
 * many records than after its first, and neither it nor a half-open handshake (the
 * cookie-verified ClientHello answered, no ClientKeyExchange) holds a wolfSSL I/O buffer (counted
 * exactly by dtls/wolfmem.c: the buffers freed when the server sessions are freed). wolfSSL
 * grows its 5-byte input buffer to MTU + 500 bytes before it asks the read callback for a
 * datagram; a read that found nothing used to leave it grown, 1.9 KB in every session waiting
 * for its peer (dtls/wolfio.c). The heap figures (glibc's in-use bytes, or ASan's) go to the
 * test's output and to docs/WOLFSSL.md and docs/SECURITY.md. */
#include "pair.h"

#include "common/err.h"
#include "dtls/internal.h"
#include "dtls/wolfmem.h"

#include <criterion/criterion.h>
#include <malloc.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define ID  "11010008002F33244B115B0AEEB9"
#define PSK "E5DE45B367DB690F2E17CF9D80A18E87"
#define UID "A1B2C3D4E5F60718"
#define N   20

extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

/* Heap in use, with wolfSSL's pooled I/O buffers returned first (they belong to no session). */
static size_t heap_in_use(void)
{
    pskgw_wolfmem_trim();
    if (__sanitizer_get_current_allocated_bytes != NULL)
        return __sanitizer_get_current_allocated_bytes();
    return mallinfo2().uordblks;
}

/* I/O buffers handed out and not yet returned (this thread). */
static long io_live(void)
{
    pskgw_wolfmem_stats_t st;

    pskgw_wolfmem_stats(&st);
    return st.live;
}

/* Heap per established session (N of them) after `records` messages each, acks included. */
static size_t per_established(int records)
{
    static tpair_t p[N];
    pskgw_dtls_ctx_t *c = tpair_dtls_ctx();
    tres_t r;
    size_t with, without;
    long live;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    for (int i = 0; i < N; i++) {
        tpair_init(&p[i], c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
        tpair_pump(&p[i]);
        cr_assert(p[i].cli_done);
        for (int k = 0; k < records; k++) {
            uint8_t ack[8];

            cr_assert_gt(wolfSSL_write(p[i].cli, "a record", 8), 0);
            tpair_pump(&p[i]);
            cr_assert_eq(pskgw_dtls_session_write(p[i].srv, (const uint8_t *)"ack", 3), 0);
            cr_assert_eq(wolfSSL_read(p[i].cli, ack, sizeof(ack)), 3);
        }
        cr_assert_eq(p[i].nmsgs, records < 8 ? records : 8);
    }
    with = heap_in_use();
    live = io_live();
    for (int i = 0; i < N; i++) {
        pskgw_dtls_session_free(p[i].srv);
        p[i].srv = NULL;
    }
    cr_assert_eq(live - io_live(), 0, "%ld I/O buffers held by %d established sessions",
                 live - io_live(), N);
    without = heap_in_use();
    cr_assert_gt(with, without);
    for (int i = 0; i < N; i++)
        tpair_deinit(&p[i]);
    pskgw_dtls_ctx_free(c);
    return (with - without) / N;
}

Test(memory, an_established_session_holds_no_more_after_many_records)
{
    size_t one = per_established(1);
    size_t many = per_established(5);

    printf("heap per established session: %zu bytes after 1 record, %zu after 5\n", one, many);
    cr_log_info("heap per established session: %zu bytes after 1 record, %zu after 5", one, many);
    cr_assert_lt(many, one + 256, "%zu bytes after 5 records, %zu after 1", many, one);
}

Test(memory, a_half_open_handshake_holds_no_input_buffer)
{
    static tpair_t p[N];
    pskgw_dtls_ctx_t *c = tpair_dtls_ctx();
    tres_t r;
    size_t with, without, per;
    long live;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    for (int i = 0; i < N; i++) {
        tpair_init(&p[i], c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
        p[i].drop_to_client = true; /* our flight never arrives: no ClientKeyExchange */
        tpair_pump(&p[i]);
        cr_assert_not_null(p[i].srv);
        cr_assert_null(pskgw_dtls_session_identity(p[i].srv));
    }
    with = heap_in_use();
    live = io_live();
    for (int i = 0; i < N; i++) {
        pskgw_dtls_session_free(p[i].srv);
        p[i].srv = NULL;
    }
    /* wolfSSL's object, its handshake arrays, hashes, suites and the flight kept for
     * retransmission, and the session; no input buffer (it was one per session). */
    cr_assert_eq(live - io_live(), 0, "%ld I/O buffers held by %d half-open handshakes",
                 live - io_live(), N);
    without = heap_in_use();
    per = (with - without) / N;
    printf("heap per half-open handshake: %zu bytes\n", per);
    cr_log_info("heap per half-open handshake: %zu bytes", per);
    cr_assert_lt(per, 16384, "per-handshake state stays small");
    for (int i = 0; i < N; i++)
        tpair_deinit(&p[i]);
    pskgw_dtls_ctx_free(c);
}

/* The session struct, awake or hibernated, keeps its flags a bit each and its wider fields
 * without holes: it fits a 256-byte malloc chunk (248 bytes usable) with the ClientHello random's
 * 64 bits in it (it was 264 bytes, a 272-byte chunk, without them). */
Test(memory, the_session_struct_fits_a_256_byte_chunk)
{
    pskgw_dtls_session_t *s = malloc(sizeof(*s));

    cr_assert_not_null(s);
    cr_assert_leq(sizeof(*s), 248, "%zu bytes", sizeof(*s));
    if (__sanitizer_get_current_allocated_bytes == NULL) /* glibc's chunks */
        cr_assert_leq(malloc_usable_size(s), 248, "%zu usable", malloc_usable_size(s));
    free(s);
}
