/* A hibernated session against forged records (docs/SECURITY.md, "Attacker's review of the
 * session features"). Anyone who can spoof a device's address can send records with its epoch
 * and any sequence number; the session thaws to read them (the import comes before the MAC
 * check), but a record that does not authenticate delivers nothing, leaves the idle deadline
 * where the device's last authenticated record put it, ends nothing, and the session can
 * hibernate again at once: a flood of them costs one import per hibernated session per sweep of
 * its listener (gateway/hibernate.c), never a session. The device goes on without a handshake. */
#include "pair.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

#define ID  "11010008002F33244B115B0AEEB9"
#define PSK "E5DE45B367DB690F2E17CF9D80A18E87"
#define UID "A1B2C3D4E5F60718"

/* An application-data record of epoch 1 with sequence number seq and len bytes of junk. */
static size_t forged(uint8_t *d, uint64_t seq, size_t len)
{
    d[0] = 23;
    d[1] = 0xfe;
    d[2] = 0xfd;
    d[3] = 0;
    d[4] = 1;
    for (int i = 0; i < 6; i++)
        d[5 + i] = (uint8_t)(seq >> (8 * (5 - i)));
    d[11] = (uint8_t)(len >> 8);
    d[12] = (uint8_t)len;
    for (size_t i = 0; i < len; i++)
        d[13 + i] = (uint8_t)(i * 131 + seq);
    return 13 + len;
}

Test(hibernate_hostile, forged_records_thaw_a_hibernated_session_but_deliver_and_keep_nothing)
{
    pskgw_dtls_ctx_t *c = tpair_dtls_ctx();
    uint8_t d[13 + 64];
    uint64_t last_rx;
    tres_t r;
    tpair_t p;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert_eq(p.established, 1);
    cr_assert_eq(wolfSSL_write(p.cli, "one", 3), 3);
    tpair_pump(&p);
    cr_assert_eq(p.nmsgs, 1);
    last_rx = pskgw_dtls_session_last_rx(p.srv);
    for (int round = 0; round < 50; round++) {
        size_t n = forged(d, 1000000u + (uint64_t)round * 7919u, 16 + (size_t)round % 48);

        cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0, "round %d", round);
        p.now += 1000; /* within the idle timeout: 50 s of forged records every second */
        cr_assert_eq(pskgw_dtls_session_feed(p.srv, d, n, p.now), 0);
        cr_assert_eq(p.thawed, round + 1, "the record thawed it to be read");
        cr_assert_eq(p.thaw_failed, 0);
        cr_assert_eq(p.nmsgs, 1, "round %d: a forged record delivered something", round);
        cr_assert_eq(pskgw_dtls_session_last_rx(p.srv), last_rx,
                     "round %d: a forged record moved the idle deadline", round);
        cr_assert_eq(p.closed_calls, 0, "round %d: a forged record ended the session", round);
        cr_assert_eq(p.to_client.count, 0, "round %d: answered a forged record", round);
    }
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    pskgw_dtls_session_timeout(p.srv, last_rx + 30000);
    cr_assert_eq(p.closed_calls, 1, "idle since the device's last record: ends on time");
    cr_assert_eq(p.closed_reason, PSKGW_EAGAIN);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}

Test(hibernate_hostile, the_device_goes_on_after_forged_records_without_a_handshake)
{
    pskgw_dtls_ctx_t *c = tpair_dtls_ctx();
    uint8_t d[13 + 32];
    tres_t r;
    tpair_t p;

    tres_init(&r);
    tres_add(&r, ID, PSK, UID);
    tpair_init(&p, c, &r, true, "PSK-AES128-CCM-8", ID, PSK);
    tpair_pump(&p);
    cr_assert_eq(wolfSSL_write(p.cli, "one", 3), 3);
    tpair_pump(&p);
    for (int round = 0; round < 5; round++) {
        /* sequence numbers just above the device's own, and far ahead */
        size_t n =
            forged(d, round < 3 ? 2u + (uint64_t)round : 0xffffffffffffu - (uint64_t)round, 32);

        cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
        p.now += 100;
        cr_assert_eq(pskgw_dtls_session_feed(p.srv, d, n, p.now), 0);
    }
    cr_assert_eq(pskgw_dtls_session_hibernate(p.srv), 0);
    cr_assert_eq(wolfSSL_write(p.cli, "two", 3), 3);
    tpair_pump(&p);
    cr_assert_eq(p.nmsgs, 2, "the device's next record is read");
    cr_assert_str_eq(p.msgs[1], "two");
    cr_assert_eq(p.established, 1, "no new handshake");
    cr_assert_eq(p.closed_calls, 0);
    tpair_deinit(&p);
    pskgw_dtls_ctx_free(c);
}
