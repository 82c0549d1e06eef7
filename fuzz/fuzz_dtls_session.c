/* Fuzz target: a DTLS server session (dtls/session.h) fed arbitrary datagrams, with the
 * stateless cookie check in front and an asynchronous resolver completing in between: the
 * identity pre-parser, parking, resume and wolfSSL's input path must never crash or leak.
 * Datagrams are separated by "\xff\xfe\xfd\xfc"; a byte after the marker picks the resolver's
 * answer. */
#include "dtls/session.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

static pskgw_psk_done_cb pending_cb;
static void *pending_arg;

static int f_resolve(void *ctx, const char *id, pskgw_psk_done_cb cb, void *arg, void **h)
{
    (void)ctx;
    (void)id;
    if (pending_cb != NULL)
        abort(); /* one lookup per session */
    pending_cb = cb;
    pending_arg = arg;
    *h = arg;
    return 0;
}

static void f_cancel(void *ctx, void *h)
{
    pskgw_psk_done_cb cb = pending_cb;

    (void)ctx;
    (void)h;
    pending_cb = NULL;
    if (cb != NULL)
        cb(pending_arg, PSKGW_ECANCELED, NULL, 0, NULL);
}

static int f_send(void *arg, const uint8_t *d, size_t n)
{
    (void)arg;
    (void)d;
    (void)n;
    return 0;
}

static void f_message(void *arg, uint64_t seq, const uint8_t *d, size_t n)
{
    (void)arg;
    (void)seq;
    (void)d;
    (void)n;
}

static int closed;
static void f_closed(void *arg, int reason)
{
    (void)arg;
    (void)reason;
    closed++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pskgw_dtls_ctx_t *ctx;
    static const uint8_t key[16] = { 1, 2, 3 };
    static const uint8_t marker[4] = { 0xff, 0xfe, 0xfd, 0xfc };
    pskgw_psk_resolver_t r = { .resolve = f_resolve, .cancel = f_cancel };
    pskgw_dtls_session_cbs_t cbs = { .send = f_send, .message = f_message, .closed = f_closed };
    pskgw_dtls_session_t *s = NULL;
    uint8_t hvr[PSKGW_DTLS_HVR_MAX];
    size_t hvr_len = 0;
    size_t start = 0;
    uint64_t now = 1000;

    if (ctx == NULL) {
        pskgw_dtls_options_t o = { .dtls = true };
        const char *why = NULL;

        if (pskgw_dtls_ctx_new(&o, &ctx, &why) != 0)
            abort();
    }
    if (size > 16384)
        return 0;
    closed = 0;
    pending_cb = NULL;
    if (pskgw_dtls_session_new(ctx, &r, &cbs, NULL, (const uint8_t *)"peer", 4, now, &s) != 0)
        abort();
    for (size_t i = 0; i <= size; i++) {
        bool end = i == size || (size - i >= 5 && memcmp(data + i, marker, 4) == 0);

        if (!end)
            continue;
        (void)pskgw_dtls_ctx_check_hello(ctx, now, (const uint8_t *)"peer", 4, data + start,
                                         i - start, hvr, sizeof(hvr), &hvr_len);
        (void)pskgw_dtls_session_feed(s, data + start, i - start, now);
        if (i < size && pending_cb != NULL) {
            pskgw_psk_done_cb cb = pending_cb;
            uint8_t pick = data[i + 4];

            pending_cb = NULL;
            if (pick % 3 == 0)
                cb(pending_arg, 0, key, sizeof(key), "uid");
            else if (pick % 3 == 1)
                cb(pending_arg, PSKGW_ENOTFOUND, NULL, 0, NULL);
            else
                cb(pending_arg, PSKGW_EUNAVAIL, NULL, 0, NULL);
        }
        now += 700;
        pskgw_dtls_session_timeout(s, now);
        start = i + 5;
        i += 4;
    }
    pskgw_dtls_session_free(s);
    if (closed > 1)
        abort(); /* closed fires at most once */
    return 0;
}
