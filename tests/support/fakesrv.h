/* Test helper: a scripted HTTP/1.1 server on 127.0.0.1 (port 0) for the cases pskgw-sim cannot
 * produce (answers chosen per call, a slow authenticate only, HTTP-date Retry-After, malformed
 * bodies). One thread accepts; one thread per connection (keep-alive) answers. Everything is
 * stopped and joined by fakesrv_stop(). */
#ifndef PSKGW_TEST_UPSTREAM_FAKESRV_H
#define PSKGW_TEST_UPSTREAM_FAKESRV_H

#include <stddef.h>

typedef struct fakesrv fakesrv_t;

typedef struct {
    int status;          /* HTTP status */
    const char *headers; /* extra header lines, each ending in "\r\n" (may be NULL) */
    const char *body;    /* body (may be NULL) */
    unsigned delay_ms;   /* waited before answering */
} fake_reply_t;

/* Called (serialised) for every request: path ("/v1/authenticate", ...) and n, the number of
 * earlier requests to that path. Fills *out (zeroed before; status 0 means 500). */
typedef void (*fake_handler)(void *arg, const char *path, unsigned n, fake_reply_t *out);

/* 0, and url ("http://127.0.0.1:PORT") written; or -1. */
int fakesrv_start(fakesrv_t **out, fake_handler h, void *arg, char *url, size_t url_cap);
/* Requests received so far for path. */
unsigned fakesrv_count(fakesrv_t *s, const char *path);
void fakesrv_stop(fakesrv_t *s);

#endif
