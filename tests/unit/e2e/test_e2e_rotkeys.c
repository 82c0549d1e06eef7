/* Payloads made by the simulator's derivation (tools/rotkeys: what pskgw-sim serves and what
 * simulated devices encrypt with), decrypted by e2e/ with the parameters the simulated service
 * would return for their key identity. */
#include "e2e/decrypt.h"
#include "e2e/e2e.h"
#include "tools/rotkeys/rotkeys.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static const char seed[] = "pskgw-e2e-unit-test-seed";

/* GetE2EDecryptionParameters as the simulator answers it (pskgw-sim --e2e-v2-layout v2), from
 * the KI hex we would send. */
static int sim_params_as(const char *ki_hex, pskgw_rot_v2_layout_t v2, pskgw_e2e_params_t *out)
{
    uint8_t ki[16];
    size_t ki_len = 0;
    pskgw_rot_e2e_params_t rp;
    int rc;

    rc = pskgw_e2e_ki_from_hex(ki_hex, strlen(ki_hex), ki, sizeof(ki), &ki_len, NULL);
    if (rc != 0)
        return rc;
    rc = pskgw_rot_e2e_params_as(seed, ki, ki_len, v2, &rp);
    if (rc != 0)
        return rc; /* PSKGW_ENOTFOUND for a KI the simulator did not make: its 404 */
    memset(out, 0, sizeof(*out));
    memcpy(out->key, rp.key, sizeof(out->key));
    memcpy(out->nonce, rp.nonce, rp.nonce_len);
    out->nonce_len = rp.nonce_len;
    out->mac_bits = rp.mac_bits;
    rc = pskgw_e2e_suite_parse(rp.cipher_suite, strlen(rp.cipher_suite), &out->suite);
    if (rc == 0)
        rc = pskgw_rot_uid(seed, rp.info.device, out->rot_uid);
    pskgw_rot_e2e_params_wipe(&rp);
    return rc;
}

static int sim_params(const char *ki_hex, pskgw_e2e_params_t *out)
{
    return sim_params_as(ki_hex, PSKGW_ROT_V2_SEED, out);
}

Test(e2e_rotkeys, hello_v1_is_37_bytes_and_decrypts)
{
    uint8_t payload[64], out[64];
    size_t len = 0, n = 0;
    pskgw_e2e_header_t h;
    pskgw_e2e_params_t p;
    pskgw_rot_ki_info_t info;

    cr_assert_eq(pskgw_rot_e2e_encrypt(seed, 7, PSKGW_ROT_E2E_V1, (const uint8_t *)"HELLO", 5,
                                       payload, sizeof(payload), &len),
                 0);
    cr_assert_eq(len, 37);
    cr_assert_eq(pskgw_e2e_header_parse(payload, len, &h), 0);
    cr_assert_eq(h.version, 1);
    cr_assert_eq(h.ki_len, PSKGW_ROT_KI_V1_LEN);
    cr_assert_eq(strncmp(h.ki_hex, "1101", 4), 0);
    /* The simulator recognises the lower-case EncryptedHeader we send. */
    cr_assert_eq(pskgw_rot_e2e_ki_check_hex(seed, h.ki_hex, strlen(h.ki_hex), &info), 0);
    cr_assert_eq(info.device, 7);
    cr_assert_eq(sim_params(h.ki_hex, &p), 0);
    cr_assert_eq(p.suite, PSKGW_E2E_SUITE_AES_128_CCM);
    cr_assert_eq(p.mac_bits, 128);
    cr_assert_eq(pskgw_e2e_decrypt_payload(&p, payload, len, NULL, out, sizeof(out), &n), 0);
    cr_assert_eq(n, 5);
    cr_assert_arr_eq(out, "HELLO", 5);
    pskgw_e2e_params_wipe(&p);
}

Test(e2e_rotkeys, v1_and_v2_many_devices_counters_and_lengths)
{
    static uint8_t pt[1000], payload[1100], out[1100];
    unsigned cases = 0;

    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (uint8_t)(i * 13 + 1);
    for (int v = PSKGW_ROT_E2E_V1; v <= PSKGW_ROT_E2E_V2; v++) {
        for (uint32_t dev = 0; dev < 4; dev++) {
            for (uint16_t ctr = 0; ctr < 3; ctr++) {
                static const size_t lens[] = { 0, 1, 44, 255, 1000 };
                for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
                    size_t len = 0, n = 0;
                    pskgw_e2e_header_t h;
                    pskgw_e2e_params_t p;

                    cr_assert_eq(pskgw_rot_e2e_encrypt_ctr(seed, dev * 1000 + 3, v, ctr, pt,
                                                           lens[li], payload, sizeof(payload),
                                                           &len),
                                 0);
                    cr_assert_eq(len, lens[li] + pskgw_rot_e2e_overhead(v));
                    cr_assert_eq(pskgw_e2e_header_parse(payload, len, &h), 0);
                    cr_assert_eq(h.version, v);
                    cr_assert_eq(h.ki_len, pskgw_rot_e2e_ki_len(v));
                    cr_assert_eq(sim_params(h.ki_hex, &p), 0);
                    cr_assert_eq(p.mac_bits / 8, pskgw_rot_e2e_tag_len(v));
                    cr_assert_eq(pskgw_e2e_params_check(&p), 0);
                    cr_assert_eq(
                        pskgw_e2e_decrypt_payload(&p, payload, len, NULL, out, sizeof(out), &n), 0,
                        "v%d dev %u ctr %u len %zu", v, dev, ctr, lens[li]);
                    cr_assert_eq(n, lens[li]);
                    cr_assert_arr_eq(out, pt, n);
                    if (len > h.ki_len) {
                        payload[len - 1] ^= 0x80;
                        cr_assert_eq(
                            pskgw_e2e_decrypt_payload(&p, payload, len, NULL, out, sizeof(out), &n),
                            PSKGW_EBADMAC);
                    }
                    pskgw_e2e_params_wipe(&p);
                    cases++;
                }
            }
        }
    }
    cr_assert_eq(cases, 2 * 4 * 3 * 5);
}

/* ---- through the processor, with the simulator as the params source ---- */

typedef struct {
    int active;
    char ki_hex[PSKGW_E2E_KI_HEX_MAX + 1];
    pskgw_e2e_params_done_cb done;
    void *arg;
} sim_fetch_t;

static sim_fetch_t pending;

static int sim_fetch(void *ctx, const char *ki_hex, pskgw_e2e_params_done_cb done, void *arg,
                     void **handle)
{
    (void)ctx;
    if (pending.active)
        return PSKGW_EBUSY;
    pending.active = 1;
    snprintf(pending.ki_hex, sizeof(pending.ki_hex), "%s", ki_hex);
    pending.done = done;
    pending.arg = arg;
    *handle = &pending;
    return 0;
}

static void sim_cancel(void *ctx, void *handle)
{
    (void)ctx;
    pskgw_e2e_params_done_cb done = pending.done;
    void *arg = pending.arg;

    cr_assert_eq(handle, &pending);
    memset(&pending, 0, sizeof(pending));
    done(arg, PSKGW_ECANCELED, NULL);
}

static void sim_run(void)
{
    pskgw_e2e_params_t p;
    int rc;

    pskgw_e2e_params_done_cb done = pending.done;
    void *arg = pending.arg;
    char ki_hex[PSKGW_E2E_KI_HEX_MAX + 1];

    cr_assert(pending.active);
    memcpy(ki_hex, pending.ki_hex, sizeof(ki_hex));
    memset(&pending, 0, sizeof(pending)); /* forget the request: leaks stay visible to LSan */
    rc = sim_params(ki_hex, &p);
    done(arg, rc, rc == 0 ? &p : NULL);
    pskgw_e2e_params_wipe(&p);
}

typedef struct {
    int calls;
    pskgw_e2e_kind_t kind;
    int status;
    char data[64];
    size_t len;
    char uid[PSKGW_E2E_UID_MAX_LEN + 1];
    char suite[16];
} res_t;

static void on_result(void *arg, const pskgw_e2e_result_t *r)
{
    res_t *res = arg;

    res->calls++;
    res->kind = r->kind;
    res->status = r->status;
    res->len = r->len < sizeof(res->data) ? r->len : sizeof(res->data);
    if (res->len)
        memcpy(res->data, r->data, res->len);
    if (r->e2e && r->e2e->rot_uid)
        snprintf(res->uid, sizeof(res->uid), "%s", r->e2e->rot_uid);
    if (r->e2e && r->e2e->cipher_suite)
        snprintf(res->suite, sizeof(res->suite), "%s", r->e2e->cipher_suite);
}

Test(e2e_rotkeys, processor_with_simulated_service)
{
    pskgw_e2e_params_source_t src = { NULL, sim_fetch, sim_cancel, NULL };
    pskgw_e2e_t *e2e = NULL;
    uint8_t payload[64];
    size_t len = 0;
    res_t a = { 0 }, b = { 0 }, c = { 0 };
    char uid[PSKGW_ROT_UID_LEN + 1];

    memset(&pending, 0, sizeof(pending));
    cr_assert_eq(pskgw_e2e_new(&src, &e2e), 0);
    cr_assert_eq(pskgw_rot_uid(seed, 42, uid), 0);

    cr_assert_eq(pskgw_rot_e2e_encrypt(seed, 42, PSKGW_ROT_E2E_V2, (const uint8_t *)"door=open", 9,
                                       payload, sizeof(payload), &len),
                 0);
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_REQUIRED, payload, len, on_result, &a, NULL),
                 0);
    sim_run();
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.kind, PSKGW_E2E_DECRYPTED);
    cr_assert_eq(a.len, 9);
    cr_assert_arr_eq(a.data, "door=open", 9);
    cr_assert_str_eq(a.uid, uid);
    cr_assert_str_eq(a.suite, "AES_128_CCM_8");

    /* A KI the simulator never made (its tag does not match): 404 -> rejected. */
    payload[9] ^= 0x01;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, payload, len, on_result, &b, NULL), 0);
    sim_run();
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(b.kind, PSKGW_E2E_REJECTED);
    cr_assert_eq(b.status, PSKGW_ENOTFOUND);

    /* Cancel while the service is being asked. */
    payload[9] ^= 0x01;
    pskgw_e2e_req_t *req = NULL;
    cr_assert_eq(pskgw_e2e_process(e2e, PSKGW_E2E_MODE_AUTO, payload, len, on_result, &c, &req), 0);
    cr_assert_not_null(req);
    pskgw_e2e_cancel(e2e, req);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(c.status, PSKGW_ECANCELED);
    cr_assert_not(pending.active);
    pskgw_e2e_free(e2e);
}

/* Every V2 layout candidate: what simulated modules make (rotkeys) under candidate c decrypts
 * with the gateway's candidate of the same name and fails under any other. */
Test(e2e_rotkeys, every_v2_layout_candidate_round_trips)
{
    static const uint8_t pt[] = "{\"t\":21.5}";
    uint8_t payload[128], out[128];

    cr_assert_eq((int)PSKGW_ROT_V2_COUNT_, (int)PSKGW_E2E_V2_COUNT_, "the two tables agree");
    for (int c = 0; c < PSKGW_E2E_V2_COUNT_; c++) {
        pskgw_e2e_v2_layout_t gw = (pskgw_e2e_v2_layout_t)c;
        pskgw_rot_v2_layout_t dev = (pskgw_rot_v2_layout_t)c;
        const pskgw_e2e_layout_t *lay = pskgw_e2e_layout_as(2, gw);
        size_t len = 0, n = 0;
        pskgw_e2e_header_t h;
        pskgw_e2e_params_t p;

        cr_assert_str_eq(pskgw_e2e_v2_layout_name(gw), pskgw_rot_v2_layout_name(dev));
        cr_assert_eq(pskgw_rot_e2e_encrypt_as(seed, 11, PSKGW_ROT_E2E_V2, (uint16_t)(c + 5), dev,
                                              pt, sizeof(pt) - 1, payload, sizeof(payload), &len),
                     0);
        cr_assert_eq(len, sizeof(pt) - 1 + pskgw_rot_e2e_overhead_as(PSKGW_ROT_E2E_V2, dev));
        cr_assert_eq(pskgw_e2e_header_parse_as(payload, len, gw, &h), 0);
        cr_assert_eq(h.extra_len, lay->extra_len);
        cr_assert_eq(sim_params_as(h.ki_hex, dev, &p), 0);
        cr_assert_eq(pskgw_e2e_decrypt_payload_as(&p, gw, payload, len, NULL, out, sizeof(out), &n),
                     0, "candidate %s", lay->name);
        cr_assert_eq(n, sizeof(pt) - 1);
        cr_assert_arr_eq(out, pt, n);
        for (int o = 0; o < PSKGW_E2E_V2_COUNT_; o++) {
            if (o == c)
                continue;
            cr_assert_neq(pskgw_e2e_decrypt_payload_as(&p, (pskgw_e2e_v2_layout_t)o, payload, len,
                                                       NULL, out, sizeof(out), &n),
                          0, "%s read as %s", lay->name,
                          pskgw_e2e_v2_layout_name((pskgw_e2e_v2_layout_t)o));
        }
        pskgw_e2e_params_wipe(&p);
    }
    /* pad1 is the candidate that gives u-blox's 28 bytes. */
    cr_assert_eq(pskgw_rot_e2e_overhead_as(PSKGW_ROT_E2E_V2, PSKGW_ROT_V2_PAD1), 28);
}
