/* Issue 16 section 1, lookup admission, on real loopback UDP sockets: flooding sources send
 * half handshakes (ClientHello, cookie, ClientKeyExchange) with random identities while real
 * devices from other sources, half of them cached and half new, connect. The security service
 * is a FIFO that answers one lookup at a time, in arrival order (as the upstream client's queue
 * does), and it is paused until every flood lookup and every device's lookup has reached the
 * listener, so what is measured is order, never time: how many other lookups the service
 * answered between a device's ClientKeyExchange and its own answer. Before the lookup
 * admission, the whole flood stood in front of every new device (300 answers). */
#include "harness.h"
#include "srcpeer.h"

#include "gateway/listen_internal.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NFLOOD_MAX 320
#define NDEV       8 /* 4 cached, 4 new, pairwise from the same source */
#define DEV_PSK    "A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8"
#define IN_FLIGHT  4

/* ---- a paused FIFO security service ---- */
typedef struct sreq {
    struct sreq *next;
    char id[80];
    pskgw_psk_done_cb cb;
    void *arg;
} sreq_t;

typedef struct {
    uv_timer_t tick;
    bool paused;
    bool ticking;
    sreq_t *head, *tail;
    int served;       /* answers given */
    int lookups;      /* lookup() calls: one per ClientKeyExchange reaching the listener */
    int resolves;     /* lookups that reached the service */
    int outstanding;  /* resolves not answered or cancelled yet */
    int cached_asked; /* resolves of a cached device's identity (must stay 0) */
    char dev_id[NDEV][40];
    int seen_at[NDEV];         /* answers given when the device's ClientKeyExchange arrived */
    int done_at[NDEV];         /* answers given when its own answer was given */
    uint64_t waiting_at[NDEV]; /* flood lookups still waiting for their turn then */
    int stale_dev;             /* lookup() says PSKGW_EAGAIN: a stale key is known (-1: none) */
    int arrived_paused[NDEV];  /* the device's lookup reached the service while paused */
} svc_t;

static uv_loop_t loop;
static svc_t svc;
static hmsgs_t msgs;
static speer_t flood[NFLOOD_MAX];
static speer_t dev[NDEV];
static pskgw_listener_t *lst;

static int dev_index(const char *id)
{
    for (int i = 0; i < NDEV; i++) {
        if (strcmp(svc.dev_id[i], id) == 0)
            return i;
    }
    return -1;
}

static bool dev_cached(int i)
{
    return i < NDEV / 2;
}

static void svc_tick(uv_timer_t *t)
{
    sreq_t *q = svc.head;
    uint8_t psk[16];
    int i;

    (void)t;
    if (svc.paused || q == NULL) {
        (void)uv_timer_stop(&svc.tick);
        svc.ticking = false;
        return;
    }
    svc.head = q->next;
    if (svc.head == NULL)
        svc.tail = NULL;
    svc.served++;
    svc.outstanding--;
    i = dev_index(q->id);
    if (i >= 0) {
        svc.done_at[i] = svc.served;
        svc.waiting_at[i] = pskgw_listener_counters(lst)->lookups_waiting;
        for (int k = 0; k < 16; k++)
            psk[k] = (uint8_t)(0xA1 + (k / 8) * 0x10 + (k % 8));
        q->cb(q->arg, 0, psk, sizeof(psk), H_UID);
    } else {
        q->cb(q->arg, PSKGW_ENOTFOUND, NULL, 0, NULL);
    }
    free(q);
}

static void svc_kick(void)
{
    if (!svc.paused && !svc.ticking && svc.head != NULL) {
        svc.ticking = true;
        cr_assert_eq(uv_timer_start(&svc.tick, svc_tick, 1, 1), 0);
    }
}

static int svc_resolve(void *ctx, const char *id, pskgw_psk_done_cb cb, void *arg, void **handle)
{
    sreq_t *q = calloc(1, sizeof(*q));
    int i = dev_index(id);

    (void)ctx;
    cr_assert_not_null(q);
    (void)snprintf(q->id, sizeof(q->id), "%s", id);
    q->cb = cb;
    q->arg = arg;
    if (svc.tail != NULL)
        svc.tail->next = q;
    else
        svc.head = q;
    svc.tail = q;
    svc.resolves++;
    svc.outstanding++;
    if (i >= 0 && dev_cached(i))
        svc.cached_asked++;
    if (i >= 0 && svc.paused)
        svc.arrived_paused[i] = 1;
    *handle = q;
    svc_kick();
    return 0;
}

static void svc_cancel(void *ctx, void *handle)
{
    sreq_t *prev = NULL;

    (void)ctx;
    for (sreq_t *q = svc.head; q != NULL; prev = q, q = q->next) {
        if (q != handle)
            continue;
        if (prev != NULL)
            prev->next = q->next;
        else
            svc.head = q->next;
        if (svc.tail == q)
            svc.tail = prev;
        svc.outstanding--;
        q->cb(q->arg, PSKGW_ECANCELED, NULL, 0, NULL);
        free(q);
        return;
    }
    cr_assert_fail("cancel of an unknown lookup");
}

/* The in-memory layer: the cached devices' keys answer at once. */
static int svc_lookup(void *ctx, const char *id, uint8_t *psk, size_t *psk_len, char *uid,
                      size_t cap)
{
    int i = dev_index(id);

    (void)ctx;
    svc.lookups++;
    if (i >= 0 && svc.seen_at[i] < 0)
        svc.seen_at[i] = svc.served;
    if (i >= 0 && i == svc.stale_dev)
        return PSKGW_EAGAIN;
    if (i < 0 || !dev_cached(i))
        return PSKGW_ENOTFOUND;
    for (int k = 0; k < 16; k++)
        psk[k] = (uint8_t)(0xA1 + (k / 8) * 0x10 + (k % 8));
    *psk_len = 16;
    (void)snprintf(uid, cap, "%s", H_UID);
    return 0;
}

static const pskgw_psk_resolver_t svc_iface = { svc_resolve, svc_cancel, svc_lookup, NULL };

/* ---- suite ---- */

static void setup(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&svc, 0, sizeof(svc));
    memset(&msgs, 0, sizeof(msgs));
    memset(flood, 0, sizeof(flood));
    memset(dev, 0, sizeof(dev));
    cr_assert_eq(uv_timer_init(&loop, &svc.tick), 0);
    for (int i = 0; i < NDEV; i++) {
        (void)snprintf(svc.dev_id[i], sizeof(svc.dev_id[i]), "11010008002F33244B115B0AEE%02X",
                       0xC0 + i);
        svc.seen_at[i] = -1;
        svc.done_at[i] = -1;
    }
    svc.paused = true;
    svc.stale_dev = -1;
    lst = NULL;
    cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
}

static void teardown(void)
{
    for (int i = 0; i < NFLOOD_MAX; i++)
        speer_close(&flood[i]);
    for (int i = 0; i < NDEV; i++)
        speer_close(&dev[i]);
    if (lst != NULL) {
        pskgw_listener_close(lst, NULL, NULL);
        lst = NULL;
    }
    uv_close((uv_handle_t *)&svc.tick, NULL);
    cr_assert_eq(hloop_finish(&loop), 0, "every handle closed");
    cr_assert_eq(svc.outstanding, 0, "every lookup answered or cancelled");
    wolfSSL_Cleanup();
}

TestSuite(lookup_flood, .init = setup, .fini = teardown, .timeout = 180);

static const pskgw_listener_counters_t *ctr(void)
{
    return pskgw_listener_counters(lst);
}

static void start(void)
{
    pskgw_listener_opts_t o = { 0 };
    const char *why = NULL;

    o.domain = "acme";
    o.name = "devices";
    o.address = "127.0.0.1";
    /* Only the lookup admission is under test: the other per-source limits stay out of the way
     * (UINT32_MAX: off), and nothing times out during the test. */
    o.handshakes_per_ip = UINT32_MAX;
    o.source_failure_max = UINT32_MAX;
    o.identity_failure_max = UINT32_MAX;
    o.half_open_per_source = UINT32_MAX;
    o.handshake_timeout_ms = 120000;
    o.half_open_timeout_ms = 120000;
    o.lookups_in_flight = IN_FLIGHT;
    o.lookups_per_source = 2;
    o.lookup_queue_per_source = 64;
    o.lookups_per_source_per_s = UINT32_MAX; /* a per-second bound would make it about time */
    cr_assert_eq(pskgw_listener_new(&loop, &o, &svc_iface, hmsgs_cb, &msgs, &lst, &why), 0,
                 "listener: %s", why ? why : "");
    msgs.l = lst;
}

static int want;
static bool lookups_reached(void *arg)
{
    (void)arg;
    return svc.lookups >= want;
}

static bool devs_finished(void *arg)
{
    int from = *(int *)arg;

    for (int i = from; i < from + NDEV / 2; i++) {
        if (!dev[i].done && dev[i].error == 0)
            return false;
    }
    return true;
}

static void random_id(char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i + 1 < cap && i < 28; i++)
        out[i] = hex[rand() % 16];
    out[i] = '\0';
}

/* nsrc flooding sources (127.0.0.first..), per_src half handshakes each, all parked. */
static void flood_start(int first, int nsrc, int per_src)
{
    static char ids[NFLOOD_MAX][32];
    char ip[16];
    int nflood = nsrc * per_src;

    cr_assert_leq(nflood, NFLOOD_MAX);
    srand(16);
    start();
    for (int s = 0; s < nsrc; s++) {
        (void)snprintf(ip, sizeof(ip), "127.0.0.%d", first + s);
        for (int i = 0; i < per_src; i++) {
            speer_t *c = &flood[s * per_src + i];

            random_id(ids[s * per_src + i], sizeof(ids[0]));
            speer_start(c, &loop, ip, 0, pskgw_listener_port(lst), ids[s * per_src + i],
                        "00112233445566778899AABBCCDDEEFF", NULL);
        }
    }
    want = nflood;
    cr_assert(hrun_until(&loop, lookups_reached, NULL, 60000),
              "every flood ClientKeyExchange reached the listener (%d of %d)", svc.lookups, nflood);
}

/* The flood, then cached devices, then new devices from the cached ones' sources. */
static void run(int first, int nsrc, int per_src)
{
    char ip[16];
    int nflood = nsrc * per_src;
    int from;

    flood_start(first, nsrc, per_src);

    /* Cached devices connect at once: no lookup at the service. */
    for (int i = 0; i < NDEV / 2; i++) {
        (void)snprintf(ip, sizeof(ip), "127.0.0.%d", 30 + i);
        speer_start(&dev[i], &loop, ip, 0, pskgw_listener_port(lst), svc.dev_id[i], DEV_PSK, NULL);
    }
    from = 0;
    cr_assert(hrun_until(&loop, devs_finished, &from, 60000));
    for (int i = 0; i < NDEV / 2; i++)
        cr_assert(dev[i].done, "cached device %d connected while the service is paused", i);
    cr_assert_eq(svc.cached_asked, 0, "a cached identity never waits for the service");

    /* New devices from the same sources: their keys need the service. */
    for (int i = NDEV / 2; i < NDEV; i++) {
        (void)snprintf(ip, sizeof(ip), "127.0.0.%d", 30 + i - NDEV / 2);
        speer_start(&dev[i], &loop, ip, 0, pskgw_listener_port(lst), svc.dev_id[i], DEV_PSK, NULL);
    }
    want = nflood + NDEV;
    cr_assert(hrun_until(&loop, lookups_reached, NULL, 60000));

    svc.paused = false;
    svc_kick();
    from = NDEV / 2;
    cr_assert(hrun_until(&loop, devs_finished, &from, 120000));
    for (int i = NDEV / 2; i < NDEV; i++) {
        int between = svc.done_at[i] - svc.seen_at[i] - 1;

        cr_assert(dev[i].done, "new device %d connected (error %d)", i, dev[i].error);
        /* At most what was at the service already, one turn of each flooding source and the
         * other devices: never the flood's queue. */
        cr_assert_leq(between, IN_FLIGHT + nsrc + NDEV / 2,
                      "new device %d waited for %d other answers (flood %d)", i, between, nflood);
        cr_assert_gt(svc.waiting_at[i], 0, "device %d was answered ahead of the flood's queue", i);
    }
    /* The devices' sources had completed handshakes (the cached devices): their lookups went
     * in the good-record class. */
    cr_assert_geq(ctr()->lookups_good, NDEV / 2);
    /* Every cold lookup was admitted, queued or refused, and counted. */
    cr_assert_eq(ctr()->lookups_admitted + ctr()->lookups_queued + ctr()->lookups_refused_queue,
                 (uint64_t)(nflood + NDEV / 2));
    cr_assert_geq(ctr()->lookups_queued,
                  (uint64_t)(64 * nsrc < nflood - IN_FLIGHT ? 64 * nsrc : nflood - IN_FLIGHT),
                  "the flood waited for its turns");
}

Test(lookup_flood, one_flooding_source_does_not_delay_new_devices)
{
    run(2, 1, 300);
    /* 127.0.0.2 had 2 lookups at the service and 64 waiting: the rest was refused at once. */
    cr_assert_eq(ctr()->lookups_refused_queue, 300 - 2 - 64);
}

Test(lookup_flood, sixteen_flooding_sources_do_not_delay_new_devices)
{
    run(10, 16, 16);
}

/* A known device whose key is only stale in memory (its TTL passed): its lookup is a refresh,
 * not a cold lookup, and goes to the service at once while sixteen sources' lookups wait. */
Test(lookup_flood, a_device_with_a_stale_key_never_waits_behind_the_flood)
{
    int from = NDEV / 2;

    svc.stale_dev = NDEV / 2;
    flood_start(10, 16, 4);
    cr_assert_gt(ctr()->lookups_waiting, 0, "the flood's lookups wait for the budget");
    speer_start(&dev[NDEV / 2], &loop, "127.0.0.40", 0, pskgw_listener_port(lst),
                svc.dev_id[NDEV / 2], DEV_PSK, NULL);
    want = 64 + 1;
    cr_assert(hrun_until(&loop, lookups_reached, NULL, 60000));
    cr_assert(svc.arrived_paused[NDEV / 2], "its refresh went to the service at once");
    cr_assert_gt(ctr()->lookups_waiting, 0, "while the flood waits");
    cr_assert_eq(ctr()->lookups_stale_known, 1);
    svc.paused = false;
    svc_kick();
    for (int i = from + 1; i < NDEV; i++)
        dev[i].done = true; /* not started */
    cr_assert(hrun_until(&loop, devs_finished, &from, 120000));
    cr_assert(dev[NDEV / 2].done, "error %d", dev[NDEV / 2].error);
    cr_assert_leq(svc.done_at[NDEV / 2], IN_FLIGHT + 1,
                  "answered after the lookups at the service");
}
