/* Session-ID resumption (RFC 5246 7.3; dtls/sidcache.h, the callbacks in dtls/ticket.c): a
 * wolfSSL client that sends no ticket extension resumes by the session ID pskgw issued, with an
 * abbreviated handshake, no lookup, identity and uid from the cache; unknown, expired, evicted
 * and other listeners' IDs lead to full handshakes. And the cache itself: bounded, LRU, expiry. */
#include "resumefix.h"

#include "common/err.h"
#include "common/secmem.h"
#include "dtls/ctx.h"
#include "dtls/internal.h"
#include "dtls/sidcache.h"
#include "dtls/ticket.h"

#include <criterion/criterion.h>
#include <string.h>

#define ID  RFIX_ID
#define PSK RFIX_PSK
#define UID RFIX_UID
#define ID2 "11010008002F33244B115B0AEEBA"

#define SECRET "the shared secret of the domain, 32+"

/* The fixture's ticket keys with a session-ID cache of `entries` (0: none). */
static pskgw_ticket_keys_t *mkkeys(rfix_t *f, uint32_t lifetime_s, uint32_t entries)
{
    pskgw_ticket_keys_t *k = rfix_keys(f, SECRET, NULL, lifetime_s);

    cr_assert_eq(pskgw_ticket_keys_set_session_cache(k, entries), 0);
    return k;
}

static void resume_by_id(bool dtls)
{
    rfix_t f;
    pskgw_ticket_keys_t *k;
    pskgw_dtls_ctx_t *c;
    const pskgw_ticket_stats_t *st;
    WOLFSSL_SESSION *s1;
    rfix_conn_t a = { 0 }, b = { 0 };

    rfix_init(&f, dtls);
    k = mkkeys(&f, 3600, 100);
    c = rfix_ctx(&f, k);
    st = pskgw_ticket_keys_stats(k);
    s1 = rfix_connect(&f, c, NULL, &a);
    cr_assert(a.established && !a.reused);
    cr_assert_eq(f.res.resolves, 1);
    cr_assert_eq(st->sid_stored, 1, "the full handshake's session is cached");
    cr_assert_eq(st->sealed, 0, "a client without the extension gets no ticket");
    (void)rfix_connect(&f, c, s1, &b);
    cr_assert(b.established);
    cr_assert(b.reused, "abbreviated handshake by session ID");
    cr_assert_eq(f.res.resolves, 1, "no lookup for the resumed session");
    cr_assert_str_eq(b.uid, UID, "the uid comes from the cache");
    cr_assert_eq(st->sid_found, 1);
    cr_assert_eq(st->resumed_id, 1);
    cr_assert_eq(st->resumed_ticket, 0);
    cr_assert_eq(st->full, 1);
    rfix_deinit(&f);
}

Test(sid, dtls_client_without_tickets_resumes_by_session_id)
{
    resume_by_id(true);
}

Test(sid, tls_client_without_tickets_resumes_by_session_id)
{
    resume_by_id(false);
}

Test(sid, another_listeners_session_id_means_a_full_handshake)
{
    /* Same secret, same domain even: each listener has its own cache. */
    rfix_t f;
    pskgw_ticket_keys_t *k;
    pskgw_dtls_ctx_t *a, *b;
    rfix_conn_t x = { 0 }, y = { 0 };

    rfix_init(&f, true);
    k = mkkeys(&f, 3600, 100);
    a = rfix_ctx(&f, k);
    b = rfix_ctx(&f, k);
    (void)rfix_connect(&f, b, rfix_connect(&f, a, NULL, &x), &y);
    cr_assert(y.established && !y.reused);
    cr_assert_eq(f.res.resolves, 2);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_unknown, 1);
    cr_assert_str_eq(y.uid, UID);
    rfix_deinit(&f);
}

Test(sid, expired_session_id_means_a_full_handshake)
{
    rfix_t f;
    pskgw_ticket_keys_t *k;
    pskgw_dtls_ctx_t *c;
    WOLFSSL_SESSION *s1;
    rfix_conn_t a = { .now = 1000 }, b = { .now = 60999 }, d = { .now = 61000 + 1000 };

    rfix_init(&f, true);
    k = mkkeys(&f, 60, 100);
    c = rfix_ctx(&f, k);
    s1 = rfix_connect(&f, c, NULL, &a);
    (void)rfix_connect(&f, c, s1, &b);
    cr_assert(b.reused, "within the lifetime");
    (void)rfix_connect(&f, c, s1, &d);
    cr_assert(d.established && !d.reused, "past the lifetime: full");
    cr_assert_eq(f.res.resolves, 2);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_expired, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_unknown, 1);
    rfix_deinit(&f);
}

Test(sid, evicted_session_id_means_a_full_handshake)
{
    rfix_t f;
    pskgw_ticket_keys_t *k;
    pskgw_dtls_ctx_t *c;
    WOLFSSL_SESSION *s1;
    rfix_conn_t a = { 0 }, b = { .id = ID2 }, d = { 0 };

    rfix_init(&f, true);
    tres_add(&f.res, ID2, PSK, UID);
    k = mkkeys(&f, 3600, 1);
    c = rfix_ctx(&f, k);
    s1 = rfix_connect(&f, c, NULL, &a);
    (void)rfix_connect(&f, c, NULL, &b); /* the cache holds one: s1's goes */
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_evicted, 1);
    (void)rfix_connect(&f, c, s1, &d);
    cr_assert(d.established && !d.reused);
    cr_assert_eq(f.res.resolves, 3);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_unknown, 1);
    rfix_deinit(&f);
}

Test(sid, a_client_with_a_ticket_is_not_cached)
{
    rfix_t f;
    pskgw_ticket_keys_t *k;
    pskgw_dtls_ctx_t *c;
    WOLFSSL_SESSION *s1;
    rfix_conn_t a = { .tickets = true }, b = { .tickets = true };

    rfix_init(&f, true);
    k = mkkeys(&f, 3600, 100);
    c = rfix_ctx(&f, k);
    s1 = rfix_connect(&f, c, NULL, &a);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sealed, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_stored, 0);
    (void)rfix_connect(&f, c, s1, &b);
    cr_assert(b.reused);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->resumed_ticket, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->resumed_id, 0);
    rfix_deinit(&f);
}

Test(sid, refused_identity_does_not_resume_by_session_id)
{
    rfix_t f;
    pskgw_ticket_keys_t *k;
    pskgw_dtls_ctx_t *c;
    WOLFSSL_SESSION *s1;
    rfix_conn_t a = { 0 }, b = { .refuse = 1 };

    rfix_init(&f, true);
    k = mkkeys(&f, 3600, 100);
    c = rfix_ctx(&f, k);
    s1 = rfix_connect(&f, c, NULL, &a);
    cr_assert_null(rfix_connect(&f, c, s1, &b));
    cr_assert(!b.established, "no session for a refused identity");
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_refused, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->resumed_id, 0);
    cr_assert_eq(pskgw_sidcache_count(c->sids), 0, "the entry is gone");
    rfix_deinit(&f);
}

Test(sid, without_a_session_cache_no_session_id_resumes)
{
    rfix_t f;
    pskgw_dtls_ctx_t *c;
    rfix_conn_t a = { 0 }, b = { 0 };

    rfix_init(&f, true);
    c = rfix_ctx(&f, mkkeys(&f, 3600, 0));
    (void)rfix_connect(&f, c, rfix_connect(&f, c, NULL, &a), &b);
    cr_assert(b.established && !b.reused);
    cr_assert_null(c->sids);
    cr_assert_eq(f.res.resolves, 2);
    rfix_deinit(&f);
}

/* wolfSSL resumed nothing older than its session timeout, 500 s by default, whatever the ticket
 * lifetime: the context sets it to the lifetime. */
Test(sid, wolfssl_session_timeout_is_the_ticket_lifetime)
{
    rfix_t f;
    rfix_conn_t a = { .tickets = true };

    rfix_init(&f, true);
    (void)rfix_connect(&f, rfix_ctx(&f, mkkeys(&f, 7200, 0)), NULL, &a);
    cr_assert_eq(a.wolf_timeout, 7200);
    rfix_deinit(&f);
}

/* ---- the cache alone ---- */

static void mkid(uint8_t id[PSKGW_SID_LEN], uint8_t n)
{
    memset(id, 0xA5, PSKGW_SID_LEN);
    id[0] = n;
    id[31] = n;
}

Test(sidcache, stores_finds_and_replaces)
{
    pskgw_sidcache_t *c = NULL;
    pskgw_sidcache_hit_t h;
    uint8_t id[PSKGW_SID_LEN];
    const uint8_t st[] = "state";

    cr_assert_eq(pskgw_sidcache_new(4, &c), 0);
    mkid(id, 1);
    cr_assert_eq(pskgw_sidcache_get(c, id, 0, &h), PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_sidcache_put(c, id, 0, 100, st, sizeof(st), ID, UID), 0);
    cr_assert_eq(pskgw_sidcache_get(c, id, 99, &h), 0);
    cr_assert_eq(h.state_len, sizeof(st));
    cr_assert_eq(memcmp(h.state, st, sizeof(st)), 0);
    cr_assert_str_eq(h.identity, ID);
    cr_assert_str_eq(h.uid, UID);
    cr_assert_eq(pskgw_sidcache_put(c, id, 10, 200, st, 3, ID2, NULL), 0);
    cr_assert_eq(pskgw_sidcache_count(c), 1, "replaced, not added");
    cr_assert_eq(pskgw_sidcache_get(c, id, 150, &h), 0);
    cr_assert_str_eq(h.identity, ID2);
    cr_assert_null(h.uid);
    pskgw_sidcache_remove(c, id);
    cr_assert_eq(pskgw_sidcache_count(c), 0);
    cr_assert_eq(pskgw_sidcache_stats(c)->unknown, 1);
    pskgw_sidcache_free(c);
}

Test(sidcache, bounded_least_recently_used_goes_first)
{
    pskgw_sidcache_t *c = NULL;
    pskgw_sidcache_hit_t h;
    uint8_t id[5][PSKGW_SID_LEN];
    const uint8_t st[] = "s";

    cr_assert_eq(pskgw_sidcache_new(3, &c), 0);
    for (uint8_t i = 0; i < 5; i++)
        mkid(id[i], i);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pskgw_sidcache_put(c, id[i], 0, 1000, st, 1, ID, NULL), 0);
    cr_assert_eq(pskgw_sidcache_get(c, id[0], 1, &h), 0); /* 0 is now the most recent */
    cr_assert_eq(pskgw_sidcache_put(c, id[3], 1, 1000, st, 1, ID, NULL), 0);
    cr_assert_eq(pskgw_sidcache_count(c), 3);
    cr_assert_eq(pskgw_sidcache_stats(c)->evicted, 1);
    cr_assert_eq(pskgw_sidcache_get(c, id[1], 2, &h), PSKGW_ENOTFOUND, "1 was the oldest");
    cr_assert_eq(pskgw_sidcache_get(c, id[0], 2, &h), 0);
    cr_assert_eq(pskgw_sidcache_get(c, id[2], 2, &h), 0);
    cr_assert_eq(pskgw_sidcache_get(c, id[3], 2, &h), 0);
    pskgw_sidcache_free(c);
}

Test(sidcache, expired_entries_are_never_returned_and_are_wiped)
{
    pskgw_sidcache_t *c = NULL;
    pskgw_sidcache_hit_t h;
    pskgw_secmem_stats_t m0, m1, m2;
    uint8_t a[PSKGW_SID_LEN], b[PSKGW_SID_LEN];
    const uint8_t st[] = "master secret";

    pskgw_secmem_stats(&m0);
    cr_assert_eq(pskgw_sidcache_new(8, &c), 0);
    mkid(a, 1);
    mkid(b, 2);
    cr_assert_eq(pskgw_sidcache_put(c, a, 0, 50, st, sizeof(st), ID, UID), 0);
    cr_assert_eq(pskgw_sidcache_put(c, b, 0, 500, st, sizeof(st), ID, UID), 0);
    pskgw_secmem_stats(&m1);
    cr_assert_eq(m1.blocks_in_use, m0.blocks_in_use + 2, "entries live in don't-dump memory");
    cr_assert_eq(pskgw_sidcache_get(c, a, 50, &h), PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_sidcache_stats(c)->expired, 1);
    cr_assert_eq(pskgw_sidcache_count(c), 1);
    pskgw_secmem_stats(&m2);
    cr_assert_eq(m2.blocks_in_use, m0.blocks_in_use + 1);
    cr_assert_eq(pskgw_sidcache_put(c, a, 0, 0, st, 1, ID, NULL), PSKGW_EINVAL, "already expired");
    cr_assert_eq(pskgw_sidcache_put(c, a, 0, 9, st, 0, ID, NULL), PSKGW_EINVAL);
    cr_assert_eq(pskgw_sidcache_put(c, a, 0, 9, st, 1, "", NULL), PSKGW_EINVAL);
    pskgw_sidcache_free(c);
    pskgw_secmem_stats(&m2);
    cr_assert_eq(m2.blocks_in_use, m0.blocks_in_use);
    cr_assert_eq(pskgw_sidcache_new(0, &c), PSKGW_EINVAL);
    cr_assert_eq(pskgw_sidcache_new(PSKGW_SIDCACHE_MAX + 1, &c), PSKGW_EINVAL);
}

/* A session ID travels in clear: whoever copies it without the master secret gets the server's
 * abbreviated handshake but cannot finish it (the Finished messages prove the secret); the
 * device's entry stays and the device still resumes. */
Test(sid, a_copied_session_id_without_the_master_secret_establishes_nothing)
{
    rfix_t f;
    pskgw_ticket_keys_t *k;
    pskgw_dtls_ctx_t *c;
    WOLFSSL_SESSION *s1, *forged;
    rfix_conn_t a = { 0 }, b = { 0 }, d = { 0 };
    unsigned char buf[512], *p = buf;
    const unsigned char *q = buf;
    int n;

    rfix_init(&f, true);
    k = mkkeys(&f, 3600, 100);
    c = rfix_ctx(&f, k);
    s1 = rfix_connect(&f, c, NULL, &a);
    /* wolfSSL_i2d_SSL_SESSION: side(1) bornOn(4) timeout(4) idlen(1) id(32) masterSecret(48) */
    n = wolfSSL_i2d_SSL_SESSION(s1, NULL);
    cr_assert(n > 90 && n <= (int)sizeof(buf));
    cr_assert_eq(wolfSSL_i2d_SSL_SESSION(s1, &p), n);
    cr_assert_eq(buf[9], 32);
    for (int i = 42; i < 90; i++)
        buf[i] ^= 0x5A;
    forged = rfix_keep(&f, wolfSSL_d2i_SSL_SESSION(NULL, &q, n));
    cr_assert_not_null(forged);
    cr_assert_null(rfix_connect(&f, c, forged, &b));
    cr_assert(!b.established, "no session without the master secret");
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_found, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->resumed_id, 0);
    (void)rfix_connect(&f, c, s1, &d);
    cr_assert(d.established && d.reused, "the device itself still resumes");
    cr_assert_eq(f.res.resolves, 1);
    rfix_deinit(&f);
}

/* A reload's session_cache (pskgw_sidcache_resize): shrinking keeps the most recently used
 * entries and wipes the others (counted evicted); growing rehashes and keeps them all; clear
 * wipes everything and keeps the bound. Failed before: the cache had no resize. */
Test(sidcache, resize_keeps_the_most_recent_and_wipes_the_rest)
{
    pskgw_sidcache_t *c = NULL;
    pskgw_sidcache_hit_t h;
    pskgw_secmem_stats_t m0, m1;
    uint8_t id[40][PSKGW_SID_LEN];
    const uint8_t st[] = "master secret";

    pskgw_secmem_stats(&m0);
    cr_assert_eq(pskgw_sidcache_new(4, &c), 0);
    for (uint8_t i = 0; i < 40; i++)
        mkid(id[i], i);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pskgw_sidcache_put(c, id[i], 0, 1000, st, sizeof(st), ID, UID), 0);
    cr_assert_eq(pskgw_sidcache_get(c, id[0], 1, &h), 0); /* use order: 0 3 2 1 */
    cr_assert_eq(pskgw_sidcache_resize(c, 2), 0);
    cr_assert_eq(pskgw_sidcache_count(c), 2);
    cr_assert_eq(pskgw_sidcache_stats(c)->evicted, 2);
    pskgw_secmem_stats(&m1);
    cr_assert_eq(m1.blocks_in_use, m0.blocks_in_use + 2, "the dropped entries' blocks are freed");
    cr_assert_eq(pskgw_sidcache_get(c, id[1], 2, &h), PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_sidcache_get(c, id[2], 2, &h), PSKGW_ENOTFOUND);
    cr_assert_eq(pskgw_sidcache_get(c, id[3], 2, &h), 0);
    cr_assert_eq(pskgw_sidcache_get(c, id[0], 2, &h), 0);
    cr_assert_str_eq(h.identity, ID);
    /* the bound holds after it: a third entry evicts the least recent (3) */
    cr_assert_eq(pskgw_sidcache_put(c, id[4], 2, 1000, st, sizeof(st), ID, NULL), 0);
    cr_assert_eq(pskgw_sidcache_count(c), 2);
    cr_assert_eq(pskgw_sidcache_get(c, id[3], 3, &h), PSKGW_ENOTFOUND);
    /* growing past the first table's 16 buckets: everything still found, nothing evicted */
    cr_assert_eq(pskgw_sidcache_resize(c, 40), 0);
    for (int i = 5; i < 40; i++)
        cr_assert_eq(pskgw_sidcache_put(c, id[i], 3, 1000, st, sizeof(st), ID, NULL), 0);
    cr_assert_eq(pskgw_sidcache_count(c), 37);
    cr_assert_eq(pskgw_sidcache_stats(c)->evicted, 3);
    cr_assert_eq(pskgw_sidcache_resize(c, 40), 0, "the same size: nothing changes");
    cr_assert_eq(pskgw_sidcache_resize(c, 20), 0, "and again smaller, from the larger table");
    cr_assert_eq(pskgw_sidcache_count(c), 20);
    for (int i = 20; i < 40; i++)
        cr_assert_eq(pskgw_sidcache_get(c, id[i], 4, &h), 0, "entry %d", i);
    cr_assert_eq(pskgw_sidcache_resize(c, 0), PSKGW_EINVAL);
    cr_assert_eq(pskgw_sidcache_resize(c, PSKGW_SIDCACHE_MAX + 1), PSKGW_EINVAL);
    cr_assert_eq(pskgw_sidcache_count(c), 20, "a refused size changes nothing");
    pskgw_sidcache_clear(c);
    cr_assert_eq(pskgw_sidcache_count(c), 0);
    cr_assert_eq(pskgw_sidcache_stats(c)->evicted, 2 + 1 + 17 + 20);
    pskgw_secmem_stats(&m1);
    cr_assert_eq(m1.blocks_in_use, m0.blocks_in_use, "every entry wiped and freed");
    pskgw_sidcache_free(c);
}

/* A reload replaces a kept listener's keys (pskgw_dtls_ctx_set_tickets) with keys of another
 * session_cache and applies it (pskgw_ticket_ctx_apply_session_cache): 2 -> 1 drops the least
 * recently used session (a full handshake follows for it, the other resumes), 0 empties the
 * cache and stores no more, 2 again stores and resumes; a context made without a cache says it
 * cannot take one. Failed before: the context kept its cache and its size. */
Test(sid, a_reload_resizes_or_empties_the_session_cache)
{
    rfix_t f;
    pskgw_ticket_keys_t *k = NULL;
    pskgw_dtls_ctx_t *c, *none;
    WOLFSSL_SESSION *s1, *s2;
    rfix_conn_t a = { 0 }, b = { .id = ID2 }, x = { 0 }, y = { .id = ID2 }, z = { 0 };
    size_t ev = 99;

    rfix_init(&f, true);
    tres_add(&f.res, ID2, PSK, UID);
    c = rfix_ctx(&f, mkkeys(&f, 3600, 2));
    none = rfix_ctx(&f, mkkeys(&f, 3600, 0));
    s1 = rfix_connect(&f, c, NULL, &a);
    s2 = rfix_connect(&f, c, NULL, &b);
    cr_assert_eq(pskgw_sidcache_count(c->sids), 2);
    k = mkkeys(&f, 3600, 1);
    cr_assert_eq(pskgw_dtls_ctx_set_tickets(c, k), 0);
    cr_assert_eq(pskgw_ticket_ctx_apply_session_cache(c, &ev), 0);
    cr_assert_eq(ev, 1);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_evicted, 1);
    (void)rfix_connect(&f, c, s2, &y);
    cr_assert(y.established && y.reused, "the most recent session resumes");
    (void)rfix_connect(&f, c, s1, &x);
    cr_assert(x.established && !x.reused, "the least recent one was dropped");
    cr_assert_eq(f.res.resolves, 3);
    k = mkkeys(&f, 3600, 0);
    cr_assert_eq(pskgw_dtls_ctx_set_tickets(c, k), 0);
    cr_assert_eq(pskgw_ticket_ctx_apply_session_cache(c, &ev), 0);
    cr_assert_eq(ev, 1, "x's session, stored by its full handshake");
    cr_assert_eq(pskgw_sidcache_count(c->sids), 0);
    memset(&z, 0, sizeof(z));
    s1 = rfix_connect(&f, c, NULL, &z);
    cr_assert(z.established);
    cr_assert_eq(pskgw_sidcache_count(c->sids), 0, "nothing stored at 0");
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_stored, 0);
    k = mkkeys(&f, 3600, 2);
    cr_assert_eq(pskgw_dtls_ctx_set_tickets(c, k), 0);
    cr_assert_eq(pskgw_ticket_ctx_apply_session_cache(c, &ev), 0);
    cr_assert_eq(ev, 0);
    memset(&z, 0, sizeof(z));
    s1 = rfix_connect(&f, c, NULL, &z);
    cr_assert_eq(pskgw_ticket_keys_stats(k)->sid_stored, 1);
    memset(&z, 0, sizeof(z));
    (void)rfix_connect(&f, c, s1, &z);
    cr_assert(z.established && z.reused, "2 again: stored and resumed");
    cr_assert_eq(pskgw_dtls_ctx_set_tickets(none, k), 0);
    cr_assert_eq(pskgw_ticket_ctx_apply_session_cache(none, &ev), PSKGW_EUNSUPPORTED);
    rfix_deinit(&f);
}
