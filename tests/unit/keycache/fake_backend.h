/* A fake layer-3 backend for the key-cache tests, driven by the test: fetches are recorded and
 * stay pending until the test completes them (from the test's own stack, never from inside
 * fetch). Follows the backend contract of keycache/keycache.h. Header-only (static functions). */
#ifndef PSKGW_TEST_FAKE_BACKEND_H
#define PSKGW_TEST_FAKE_BACKEND_H

#include "common/err.h"
#include "keycache/keycache.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct fake_call {
    struct fake_call *next;
    pskgw_keycache_backend_done_cb done;
    void *done_arg;
    bool canceled; /* cancel requested but not yet answered (cancel_async) */
    size_t key_len;
    uint8_t key[];
} fake_call_t;

typedef struct {
    fake_call_t *pending; /* newest first */
    size_t npending;
    size_t calls;      /* fetches accepted */
    size_t cancels;    /* cancel() calls */
    int fail_at_once;  /* non-zero: fetch returns it */
    bool cancel_async; /* cancel does not answer at once; fake_answer_canceled() does */
} fake_backend_t;

static int fake_fetch(void *ctx, const uint8_t *key, size_t key_len,
                      pskgw_keycache_backend_done_cb done, void *done_arg, void **handle)
{
    fake_backend_t *fb = ctx;
    fake_call_t *c;

    if (fb->fail_at_once)
        return fb->fail_at_once;
    /* The contract: at most one outstanding call per key. */
    for (fake_call_t *p = fb->pending; p; p = p->next)
        cr_assert(!(p->key_len == key_len && memcmp(p->key, key, key_len) == 0),
                  "two backend calls outstanding for one key");
    c = calloc(1, sizeof(*c) + key_len);
    cr_assert_not_null(c);
    c->done = done;
    c->done_arg = done_arg;
    c->key_len = key_len;
    memcpy(c->key, key, key_len);
    c->next = fb->pending;
    fb->pending = c;
    fb->npending++;
    fb->calls++;
    *handle = c;
    return 0;
}

static void fake_unlink(fake_backend_t *fb, fake_call_t *c)
{
    for (fake_call_t **l = &fb->pending; *l; l = &(*l)->next) {
        if (*l == c) {
            *l = c->next;
            fb->npending--;
            return;
        }
    }
    cr_assert_fail("fake backend: unknown call");
}

static void fake_cancel(void *ctx, void *handle)
{
    fake_backend_t *fb = ctx;
    fake_call_t *c = handle;

    fb->cancels++;
    if (fb->cancel_async) {
        c->canceled = true;
        return;
    }
    fake_unlink(fb, c);
    c->done(c->done_arg, PSKGW_ECANCELED, NULL, 0);
    free(c);
}

/* Answer the pending call for key. Returns false if there is none. */
static bool fake_complete(fake_backend_t *fb, const void *key, size_t key_len, int status,
                          const void *value, size_t value_len)
{
    for (fake_call_t *c = fb->pending; c; c = c->next) {
        if (c->key_len == key_len && memcmp(c->key, key, key_len) == 0) {
            fake_unlink(fb, c);
            c->done(c->done_arg, status, value, value_len);
            free(c);
            return true;
        }
    }
    return false;
}

/* Answer every pending call: value = "v:" + key (status OK) unless status says otherwise. */
static size_t fake_complete_all(fake_backend_t *fb, int status)
{
    size_t n = 0;

    while (fb->pending) {
        fake_call_t *c = fb->pending;
        uint8_t v[300];
        size_t vl = 0;

        v[vl++] = 'v';
        v[vl++] = ':';
        memcpy(v + vl, c->key, c->key_len < 200 ? c->key_len : 200);
        vl += c->key_len < 200 ? c->key_len : 200;
        fake_unlink(fb, c);
        c->done(c->done_arg, c->canceled ? PSKGW_ECANCELED : status, v, vl);
        free(c);
        n++;
    }
    return n;
}

static void fake_backend_init(fake_backend_t *fb, pskgw_keycache_backend_t *be)
{
    memset(fb, 0, sizeof(*fb));
    be->fetch = fake_fetch;
    be->cancel = fake_cancel;
    be->ctx = fb;
}

#endif
