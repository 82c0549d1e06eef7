/* A small HTTP receiver for the http sink tests (on httpsrv.h: libmicrohttpd, its own threads,
 * 127.0.0.1 on a kernel-chosen port: it binds port 0 and reads the port back). It can be told
 * to answer 500, to hang, or to answer 400 to one message (a poison message, chosen by its
 * "seq"). */
#ifndef PSKGW_TEST_HTTPRX_H
#define PSKGW_TEST_HTTPRX_H

#include <stddef.h>
#include <stdint.h>

#include "sinktest.h"

typedef enum {
    HTTPRX_OK = 0, /* 200, message recorded */
    HTTPRX_FAIL,   /* 500 */
    HTTPRX_HANG,   /* no answer until the mode changes or the receiver stops, then 503 */
    HTTPRX_FLAKY,  /* every third request 500, the others as HTTPRX_OK */
} httprx_mode_t;

typedef struct httprx httprx_t;

/* 0 or -1. */
int httprx_start(httprx_t **out, int *port);
/* Takes effect for requests answered from now on; leaving HTTPRX_HANG releases the hung ones. */
void httprx_set_mode(httprx_t *rx, httprx_mode_t mode);
/* Requests hanging now (HTTPRX_HANG). */
int httprx_hanging(httprx_t *rx);
/* Answer 400 to messages with this seq (-1: none). */
void httprx_set_poison(httprx_t *rx, int64_t seq);
/* Messages answered 200 so far. */
int httprx_count(httprx_t *rx);
/* Requests seen (any answer). */
int httprx_requests(httprx_t *rx);
/* Copy the recorded messages (in arrival order): parsed into rx_out and raw bodies (malloc'ed,
 * caller frees) into raw when not NULL. Returns the count. */
int httprx_get(httprx_t *rx, st_rx_t *rx_out, char **raw, int max);
/* Value of the Authorization header of the last request ("" if none); static copy. */
const char *httprx_last_auth(httprx_t *rx);
void httprx_stop(httprx_t *rx);

#endif
