/* What a hibernated session keeps (issue 12 section 1: <= 512 B per hibernated session all-in):
 * on a real UDP listener (loopback, a wolfSSL client), a session idle for hibernate_after_s
 * holds no dtls session struct and no timer, only its listener struct and the frozen form
 * (dtls/session.h, "frozen sessions"), within a byte budget; it is listed without being woken;
 * its next record, a reply written to it, the idle timeout and the listener's close reach it as
 * they reach an awake one. */
#include "listenfix.h"

#include "gateway/listen_internal.h"

#include "common/err.h"
#include "common/wipe.h"
#include "dtls/slab.h"

#include <criterion/criterion.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

/* The listener struct and the frozen form, in bytes of memory they take: the struct's malloc
 * chunk (malloc_usable_size and the chunk's 8-byte header: 208 on x86-64 glibc) and the frozen
 * form's slot in the slab (dtls/slab.h: 240 with its 32-byte header), 448. Before, the frozen
 * form was a malloc chunk of its own behind a 40-byte header (256: 464 in all); before that the
 * struct also held the handshake's state, the peer's name and its peer key (a 400-byte struct);
 * before the frozen form a hibernated session held its 760-byte listener struct (a uv_timer_t and
 * a uv_tcp_t in it), its 304-byte dtls session struct and the blob: about 1,300 bytes. */
#define HIBERNATED_BUDGET 448

/* What a block takes: a slab slot, or a malloc chunk with its header. */
static size_t taken(const void *p)
{
    return pskgw_slab_owns(p) ? pskgw_slab_slot_size(p) : malloc_usable_size((void *)p) + 8;
}

static hcli_t cli;
static hcli_t more[4]; /* template_learned: four more devices */
static int n_more;

static void teardown(void)
{
    hcli_close(&cli);
    for (int i = 0; i < n_more; i++)
        hcli_close(&more[i]);
    lfix_teardown();
}

TestSuite(hibernated, .init = lfix_setup, .fini = teardown, .timeout = 60);

static int want_msgs;
static bool have_msgs(void *arg)
{
    (void)arg;
    return msgs.n >= want_msgs;
}

static bool is_hibernated(void *arg)
{
    (void)arg;
    return lfix_ctr()->hibernated >= 1;
}

static bool got_reply(void *arg)
{
    (void)arg;
    return cli.got_len >= 1;
}

static bool idle_ended(void *arg)
{
    (void)arg;
    return lfix_ctr()->idle_closes >= 1;
}

static void start_one(uint32_t idle_timeout_s)
{
    pskgw_listener_opts_t o = { 0 };

    lfix_resolver_knows_h_id();
    o.hibernate_after_s = 1;
    o.idle_timeout_s = idle_timeout_s;
    lfix_start(&o);
    hcli_start(&cli, &loop, pskgw_listener_port(lst), false, "PSK-AES128-CCM-8", H_ID, H_PSK, "hi");
    want_msgs = 1;
    cr_assert(hrun_until(&loop, have_msgs, NULL, 5000));
    cr_assert(hrun_until(&loop, is_hibernated, NULL, 5000));
}

/* The session of the first message, frozen. */
static pskgw_lsess_t *frozen_session(void)
{
    pskgw_lsess_t *s = pskgw_ltable_find_id(&lst->by_id, msgs.meta[0].session_id);

    cr_assert_not_null(s);
    cr_assert(s->hibernated);
    cr_assert_null(s->ds, "a hibernated session keeps no dtls session struct");
    cr_assert_not_null(s->frozen);
    cr_assert_null(s->timer, "an established session under the sweep keeps no timer");
    cr_assert_null(s->hs, "a frozen session keeps no handshake state");
    cr_assert_null(s->peer, "a frozen session keeps no peer name (made again when it thaws)");
    return s;
}

static int listed;
static void on_listed(void *arg, const pskgw_listener_session_info_t *info)
{
    (void)arg;
    cr_assert_str_eq(info->identity, H_ID);
    /* A frozen session holds no name: the listing formats it from the address. */
    cr_assert_str_eq(info->peer, msgs.peer[0]);
    listed++;
}

Test(hibernated, holds_its_frozen_form_only_within_the_budget_and_thaws_on_its_next_record)
{
    pskgw_lsess_t *s;
    size_t held;

    start_one(300);
    s = frozen_session();
    held = taken(s) + taken(s->frozen); /* s->hs, s->peer: NULL */
    cr_log_info("a hibernated session holds %zu bytes (lsess %zu)", held, taken(s));
    cr_assert_leq(held, HIBERNATED_BUDGET, "a hibernated session holds %zu bytes", held);
    cr_assert_eq(pskgw_listener_sessions(lst, NULL, on_listed, NULL), 1);
    cr_assert_eq(listed, 1);
    cr_assert_not_null(s->frozen, "listing does not wake it");

    cr_assert_gt(dcli_write(&cli, "again"), 0);
    want_msgs = 2;
    cr_assert(hrun_until(&loop, have_msgs, NULL, 5000));
    cr_assert_eq(msgs.len[1], 5);
    cr_assert_eq(memcmp(msgs.data[1], "again", 5), 0);
    cr_assert_eq(msgs.meta[1].session_id, msgs.meta[0].session_id, "no new handshake");
    cr_assert_str_eq(msgs.identity[1], H_ID);
    cr_assert_str_eq(msgs.peer[1], msgs.peer[0], "the thaw names the peer again");
    cr_assert_eq(lfix_ctr()->thaws, 1);
    cr_assert_eq(lfix_ctr()->handshakes_completed, 1);
    cr_assert_null(s->frozen);
    cr_assert_not_null(s->ds);
}

static bool five_hibernated(void *arg)
{
    (void)arg;
    return lfix_ctr()->hibernated >= 5;
}

/* What a frozen session holds at scale: once four sessions taught the thread's export template
 * (dtls/hibernate.c), a frozen form holds the export packed against it: the struct's chunk and
 * one 144-byte slot, 352 B (448 before the template: the first sessions; 464 before the slab).
 * Five devices: the fourth and fifth to hibernate are frozen that small, and each one's next
 * record is delivered on its old session. */
#define FROZEN_AT_SCALE_BUDGET 352

Test(hibernated, once_the_template_is_learned_a_frozen_session_holds_352_bytes)
{
    pskgw_listener_opts_t o = { 0 };
    size_t small = 0, n = 0;

    lfix_resolver_knows_h_id();
    o.hibernate_after_s = 1;
    o.idle_timeout_s = 300;
    lfix_start(&o);
    hcli_start(&cli, &loop, pskgw_listener_port(lst), false, "PSK-AES128-CCM-8", H_ID, H_PSK, "hi");
    for (n_more = 0; n_more < 4; n_more++)
        hcli_start(&more[n_more], &loop, pskgw_listener_port(lst), false, "PSK-AES128-CCM-8", H_ID,
                   H_PSK, "hi");
    want_msgs = 5;
    cr_assert(hrun_until(&loop, have_msgs, NULL, 10000));
    cr_assert(hrun_until(&loop, five_hibernated, NULL, 10000));
    for (size_t i = 0; i < lst->by_id.cap; i++) {
        for (pskgw_lsess_t *s = lst->by_id.b[i]; s != NULL; s = s->next_id) {
            size_t held;

            cr_assert_not_null(s->frozen);
            held = taken(s) + taken(s->frozen);
            cr_log_info("a frozen session holds %zu bytes", held);
            cr_assert_leq(held, HIBERNATED_BUDGET);
            small += held <= FROZEN_AT_SCALE_BUDGET;
            n++;
        }
    }
    cr_assert_eq(n, 5);
    cr_assert_geq(small, 2, "%zu of 5 frozen within %d bytes", small, FROZEN_AT_SCALE_BUDGET);
    cr_assert_gt(dcli_write(&cli, "again"), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_gt(dcli_write(&more[i], "again"), 0);
    want_msgs = 10;
    cr_assert(hrun_until(&loop, have_msgs, NULL, 5000));
    cr_assert_eq(lfix_ctr()->thaws, 5);
    cr_assert_eq(lfix_ctr()->thaw_failures, 0);
    cr_assert_eq(lfix_ctr()->handshakes_completed, 5, "no new handshake");
}

Test(hibernated, a_reply_to_a_frozen_session_reaches_the_device)
{
    start_one(300);
    (void)frozen_session();
    cr_assert_eq(pskgw_listener_send(lst, msgs.meta[0].session_id, (const uint8_t *)"ack", 3), 0);
    cr_assert(hrun_until(&loop, got_reply, NULL, 5000));
    cr_assert_eq(cli.got_len, 3);
    cr_assert_eq(memcmp(cli.got, "ack", 3), 0);
    cr_assert_eq(lfix_ctr()->thaws, 1);
}

Test(hibernated, the_idle_timeout_ends_a_frozen_session)
{
    start_one(2);
    (void)frozen_session();
    cr_assert(hrun_until(&loop, idle_ended, NULL, 10000));
    cr_assert_eq(lfix_ctr()->sessions_active, 0);
    cr_assert_eq(lfix_ctr()->hibernated, 0);
    cr_assert_eq(pskgw_listener_send(lst, msgs.meta[0].session_id, (const uint8_t *)"x", 1),
                 PSKGW_ENOTFOUND);
}

/* A session taken over (a hand-over or the Redis store: pskgw_listen_import_record) runs no
 * handshake: it keeps no handshake state from its import on (it kept lsess_new's until its first
 * freeze), its struct packs with the others (the slab's listener-session zone, but under ASan),
 * and the device's next record reaches it without a handshake. */
Test(hibernated, an_imported_session_keeps_no_handshake_state)
{
    pskgw_lsess_t *s = NULL;
    uint8_t *rec = NULL;
    size_t len = 0;

    start_one(300);
    s = frozen_session();
    cr_assert_eq(pskgw_listen_export_record(lst, s, uv_now(&loop), &rec, &len), 0);
    pskgw_lsess_end(s); /* as the exporting process's sessions end */
    s = NULL;
    cr_assert_eq(pskgw_listen_import_record(lst, rec, len, uv_now(&loop), &s), 0);
    pskgw_wipe(rec, len);
    free(rec);
    cr_assert_not_null(s);
    cr_assert(s->hibernated);
    cr_assert_not_null(s->ds);
    cr_assert_null(s->hs, "an imported session keeps no handshake state");
    cr_assert_leq(taken(s), 208, "its struct: %zu bytes", taken(s));
    cr_assert_gt(dcli_write(&cli, "again"), 0);
    want_msgs = 2;
    cr_assert(hrun_until(&loop, have_msgs, NULL, 5000));
    cr_assert_str_eq(msgs.data[1], "again");
    cr_assert_eq(lfix_ctr()->handshakes_completed, 1, "no new handshake");
    cr_assert_eq(lfix_ctr()->thaw_failures, 0);
}
