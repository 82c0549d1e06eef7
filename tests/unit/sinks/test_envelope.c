/* The envelope JSON is a contract with customers: exact keys, order and formats. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sinks/envelope.h"
#include "sinks/msg.h"
#include "sinks/sinkset.h"

#define ID "00112233445566778899aabbccddeeff"

static pskgw_envelope_t sample(void)
{
    static const uint8_t payload[] = { 'H', 'E', 'L', 'L', 'O' };
    pskgw_envelope_t e = {
        .domain = "acme",
        .listener = "udp5684",
        .transport = "dtls",
        .peer = "192.0.2.7:40001",
        .psk_identity = "dev-1",
        .rot_public_uid = "0123456789ABCDEF",
        .session_id = 18446744073709551615ull,
        .seq = 42,
        .received_at_ms = 1763719200123ull, /* 2025-11-21T10:00:00.123Z */
        .payload = payload,
        .payload_len = sizeof(payload),
    };
    return e;
}

Test(envelope, exact_json_without_e2e)
{
    pskgw_envelope_t e = sample();
    char *out = NULL;
    size_t len = 0;

    cr_assert_eq(pskgw_envelope_json(&e, ID, &out, &len), 0);
    cr_assert_str_eq(out, "{\"message_id\":\"" ID "\",\"domain\":\"acme\",\"listener\":\"udp5684\","
                          "\"transport\":\"dtls\",\"peer\":\"192.0.2.7:40001\","
                          "\"psk_identity\":\"dev-1\",\"rot_public_uid\":\"0123456789ABCDEF\","
                          "\"session_id\":18446744073709551615,\"seq\":42,"
                          "\"received_at\":\"2025-11-21T10:00:00.123Z\",\"payload\":\"SEVMTE8=\","
                          "\"payload_len\":5,\"e2e\":null}");
    cr_assert_eq(len, strlen(out));
    free(out);
}

Test(envelope, exact_json_with_e2e)
{
    pskgw_envelope_t e = sample();
    pskgw_envelope_e2e_t x = { 1, "0a0b0c", "AES_128_CCM", "0002000089282245", 0 };
    char *out = NULL;
    size_t len = 0;

    e.e2e = &x;
    e.transport = "tls";
    cr_assert_eq(pskgw_envelope_json(&e, ID, &out, &len), 0);
    cr_assert(strstr(out, "\"transport\":\"tls\""));
    cr_assert(strstr(out, ",\"e2e\":{\"version\":1,\"key_identity\":\"0a0b0c\","
                          "\"cipher_suite\":\"AES_128_CCM\",\"rot_public_uid\":"
                          "\"0002000089282245\",\"replay\":false}}") != NULL,
              "%s", out);
    free(out);
    x.replay = 1;
    cr_assert_eq(pskgw_envelope_json(&e, ID, &out, &len), 0);
    cr_assert(strstr(out, "\"rot_public_uid\":\"0002000089282245\",\"replay\":true}}"), "%s", out);
    cr_assert_eq(out[len - 1], '}');
    cr_assert_null(strchr(out, '\n'));
    free(out);
}

Test(envelope, escaping_and_invalid_utf8)
{
    pskgw_envelope_t e = sample();
    char *out = NULL;
    size_t len = 0;

    e.psk_identity = "a\"b\\c\n\x01\xc3\xa9\xff";
    e.domain = NULL;
    e.payload = NULL;
    e.payload_len = 0;
    cr_assert_eq(pskgw_envelope_json(&e, ID, &out, &len), 0);
    cr_assert(strstr(out, "\"psk_identity\":\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\xef\xbf\xbd\"") !=
                  NULL,
              "%s", out);
    cr_assert(strstr(out, "\"domain\":\"\""));
    cr_assert(strstr(out, "\"payload\":\"\",\"payload_len\":0"));
    free(out);
}

Test(envelope, rejects_bad_message_id)
{
    pskgw_envelope_t e = sample();
    char *out = NULL;
    size_t len = 0;

    cr_assert_eq(pskgw_envelope_json(&e, "xyz", &out, &len), PSKGW_EINVAL);
    cr_assert_eq(pskgw_envelope_json(&e, "0011223344556677889gaabbccddeeff", &out, &len),
                 PSKGW_EINVAL);
    cr_assert_null(out);
}

Test(envelope, device_and_ids)
{
    pskgw_envelope_t e = sample();
    char a[PSKGW_MESSAGE_ID_LEN + 1];
    char b[PSKGW_MESSAGE_ID_LEN + 1];

    cr_assert_str_eq(pskgw_envelope_device(&e), "0123456789ABCDEF");
    e.rot_public_uid = "";
    cr_assert_str_eq(pskgw_envelope_device(&e), "dev-1");
    cr_assert_eq(pskgw_envelope_new_id(a), 0);
    cr_assert_eq(pskgw_envelope_new_id(b), 0);
    cr_assert_eq(strlen(a), PSKGW_MESSAGE_ID_LEN);
    cr_assert_str_neq(a, b);
}

Test(msg, encode_decode_roundtrip_same_json)
{
    pskgw_envelope_t e = sample();
    pskgw_envelope_e2e_t x = { 2, "00ff", "AES_128_CCM", "UID-1", 1 };
    pskgw_msg_t *m = NULL;
    pskgw_msg_t *back = NULL;
    const char *j1;
    const char *j2;
    size_t l1;
    size_t l2;
    uint8_t *buf;
    size_t n;

    e.e2e = &x;
    cr_assert_eq(pskgw_msg_new(&e, ID, &m), 0);
    n = pskgw_msg_encoded_len(m);
    buf = malloc(n);
    pskgw_msg_encode(m, buf);
    cr_assert_eq(pskgw_msg_decode(buf, n, &back), 0);
    cr_assert_eq(pskgw_msg_json(m, &j1, &l1), 0);
    cr_assert_eq(pskgw_msg_json(back, &j2, &l2), 0);
    cr_assert_eq(l1, l2);
    cr_assert_str_eq(j1, j2);
    cr_assert_str_eq(back->id, ID);
    cr_assert_str_eq(back->e2e.rot_public_uid, "UID-1");
    cr_assert_eq(back->e2e.replay, 1);
    /* every truncation and a trailing byte are rejected */
    for (size_t i = 0; i < n; i++) {
        pskgw_msg_t *bad = NULL;
        cr_assert_eq(pskgw_msg_decode(buf, i, &bad), PSKGW_EPARSE, "len %zu", i);
    }
    buf = realloc(buf, n + 1);
    buf[n] = 0;
    {
        pskgw_msg_t *bad = NULL;
        cr_assert_eq(pskgw_msg_decode(buf, n + 1, &bad), PSKGW_EPARSE);
    }
    free(buf);
    pskgw_msg_unref(m);
    pskgw_msg_unref(back);
}

Test(msg, rejects_embedded_nul)
{
    pskgw_envelope_t e = sample();
    pskgw_msg_t *m = NULL;
    uint8_t *buf;
    size_t n;
    size_t at;

    cr_assert_eq(pskgw_msg_new(&e, ID, &m), 0);
    n = pskgw_msg_encoded_len(m);
    buf = malloc(n);
    pskgw_msg_encode(m, buf);
    /* the first string (domain "acme") starts after version, id, 3 x u64 and its u16 length */
    at = 1 + 32 + 24 + 2;
    cr_assert_eq(buf[at], 'a');
    buf[at] = 0;
    {
        pskgw_msg_t *bad = NULL;
        cr_assert_eq(pskgw_msg_decode(buf, n, &bad), PSKGW_EPARSE);
    }
    free(buf);
    pskgw_msg_unref(m);
}

/* The lengths a caller measured once per session (env.lens) are the ones the message is built
 * with: the same message as when measured here, and no string is measured again (a shorter
 * length given is a shorter string kept, which measuring would not do). */
Test(msg, given_lengths_are_used)
{
    pskgw_envelope_t e = sample();
    pskgw_envelope_e2e_t x = { 1, "00ff", "AES_128_CCM", "0123456789ABCDEF", 0 };
    pskgw_envelope_lens_t lens;
    pskgw_msg_t *measured = NULL;
    pskgw_msg_t *given = NULL;
    pskgw_msg_t *shorter = NULL;
    const char *j1;
    const char *j2;
    size_t l1;
    size_t l2;

    e.e2e = &x;
    pskgw_envelope_measure(&e, &lens);
    cr_assert_eq(pskgw_msg_new(&e, ID, &measured), 0);
    e.lens = &lens;
    cr_assert_eq(pskgw_msg_new(&e, ID, &given), 0);
    cr_assert_eq(memcmp(&given->lens, &measured->lens, sizeof(lens)), 0);
    cr_assert_eq(given->dev_len, measured->dev_len);
    cr_assert_eq(given->dev_hash, measured->dev_hash);
    cr_assert_eq(pskgw_msg_json(measured, &j1, &l1), 0);
    cr_assert_eq(pskgw_msg_json(given, &j2, &l2), 0);
    cr_assert_eq(l1, l2);
    cr_assert_str_eq(j1, j2);

    lens.len[0] = 2; /* domain "ac" */
    lens.len[3] = 9; /* peer "192.0.2.7" */
    lens.len[6] = 2; /* key identity "00" */
    cr_assert_eq(pskgw_msg_new(&e, ID, &shorter), 0);
    cr_assert_str_eq(shorter->env.domain, "ac");
    cr_assert_str_eq(shorter->env.peer, "192.0.2.7");
    cr_assert_str_eq(shorter->e2e.key_identity, "00");
    cr_assert_str_eq(shorter->env.listener, "udp5684");
    cr_assert_eq(shorter->lens.len[0], 2);

    lens.len[4] = 0x10000; /* too long for a spool record: refused as when measured */
    {
        pskgw_msg_t *bad = NULL;
        cr_assert_eq(pskgw_msg_new(&e, ID, &bad), PSKGW_EINVAL);
        cr_assert_null(bad);
    }
    pskgw_msg_unref(measured);
    pskgw_msg_unref(given);
    pskgw_msg_unref(shorter);
}

/* The sink set's per-message path: the message draws its own id (valid, a new one each time,
 * not checked again) and is otherwise what pskgw_msg_new() makes of the envelope. */
Test(msg, new_fresh_draws_a_valid_id)
{
    pskgw_envelope_t e = sample();
    pskgw_msg_t *a = NULL;
    pskgw_msg_t *b = NULL;
    pskgw_msg_t *ref = NULL;
    const char *ja;
    const char *jr;
    size_t la;
    size_t lr;

    cr_assert_eq(pskgw_msg_new_fresh(NULL, &e, &a), 0);
    cr_assert_eq(pskgw_msg_new_fresh(NULL, &e, &b), 0);
    cr_assert(pskgw_envelope_id_valid(a->id));
    cr_assert_eq(strlen(a->id), PSKGW_MESSAGE_ID_LEN);
    cr_assert_str_neq(a->id, b->id);
    cr_assert_eq(pskgw_msg_new(&e, a->id, &ref), 0);
    cr_assert_eq(pskgw_msg_json(a, &ja, &la), 0);
    cr_assert_eq(pskgw_msg_json(ref, &jr, &lr), 0);
    cr_assert_eq(la, lr);
    cr_assert_str_eq(ja, jr);
    e.payload = NULL; /* payload_len without a payload: refused before any id is drawn */
    {
        pskgw_msg_t *bad = NULL;
        cr_assert_eq(pskgw_msg_new_fresh(NULL, &e, &bad), PSKGW_EINVAL);
        cr_assert_null(bad);
    }
    pskgw_msg_unref(a);
    pskgw_msg_unref(b);
    pskgw_msg_unref(ref);
}

Test(backoff, doubles_capped_jittered)
{
    for (unsigned a = 1; a < 40; a++) {
        uint64_t d = 100;
        for (unsigned i = 1; i < a && d < 30000; i++)
            d *= 2;
        if (d > 30000)
            d = 30000;
        for (uint32_t r = 0; r < 2000; r += 37) {
            uint64_t v = pskgw_sink_backoff_ms(a, 100, 30000, r * 2654435761u);
            cr_assert(v >= d / 2 && v <= d, "attempt %u: %llu not in [%llu, %llu]", a,
                      (unsigned long long)v, (unsigned long long)d / 2, (unsigned long long)d);
            cr_assert(v <= 30000);
        }
    }
    cr_assert_eq(pskgw_sink_backoff_ms(1, 100, 30000, 0), 100);
    cr_assert_eq(pskgw_sink_backoff_ms(3, 100, 30000, 0), 400);
    cr_assert_eq(pskgw_sink_backoff_ms(60, 100, 30000, 0), 30000);
}

/* Spool records written before the e2e object had rot_public_uid and replay (body version 1)
 * still decode: an empty uid, no replay. */
Test(msg, decodes_version_1_bodies)
{
    static const uint8_t v1[] = {
        1,   '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
        '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
        '1', 7,   0,   0,   0,   0,   0,   0,   0,   9,   0,   0,   0,   0,   0,   0,
        0,   1,   0,   0,   0,   0,   0,   0,   0,   1,   0,   'd', 0,   0,   0,   0,
        0,   0,   1,   0,   'i', 1,   0,   'u', 1,   1,   0,   0,   0,   2,   0,   'a',
        'b', 3,   0,   'A', 'E', 'S', 2,   0,   0,   0,   'h', 'i',
    };
    pskgw_msg_t *m = NULL;
    const char *j;
    size_t l;

    cr_assert_eq(pskgw_msg_decode(v1, sizeof(v1), &m), 0);
    cr_assert_eq(m->env.seq, 9);
    cr_assert_not_null(m->env.e2e);
    cr_assert_str_eq(m->e2e.key_identity, "ab");
    cr_assert_str_eq(m->e2e.rot_public_uid, "");
    cr_assert_eq(m->e2e.replay, 0);
    cr_assert_eq(pskgw_msg_json(m, &j, &l), 0);
    cr_assert(strstr(j, "\"rot_public_uid\":\"\",\"replay\":false}}"), "%s", j);
    pskgw_msg_unref(m);
}
