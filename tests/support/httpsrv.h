/* Test support: the core of the loopback HTTP/1.1 servers of the tests (echosrv, httprx):
 * libmicrohttpd with a thread per connection, on 127.0.0.1 and a kernel-chosen port (it binds
 * port 0 and reads the port back). It collects each request's body and then calls the request
 * handler once, on that connection's own thread (which may block: hold a request). */
#ifndef PSKGW_TEST_HTTPSRV_H
#define PSKGW_TEST_HTTPSRV_H

#include <microhttpd.h>
#include <stddef.h>

typedef struct httpsrv httpsrv_t;

typedef struct {
    /* Answer one request: body is the whole request body, NUL-terminated, or NULL when it had
     * none (len 0); valid during the call only. Return MHD_queue_response()'s result, or MHD_NO
     * to close the connection without an answer. Required. */
    enum MHD_Result (*request)(void *arg, struct MHD_Connection *con, const char *url,
                               const char *method, const char *body, size_t len);
    /* Called on each connection the server accepts. Optional. */
    void (*connection)(void *arg);
    void *arg; /* passed to both */
} httpsrv_cfg_t;

/* Start serving (cfg is copied). 0, and *out and *port written; or -1. */
int httpsrv_start(httpsrv_t **out, int *port, const httpsrv_cfg_t *cfg);
/* Stop: joins every connection thread, so release held requests first. NULL is a no-op. */
void httpsrv_stop(httpsrv_t *s);

#endif
