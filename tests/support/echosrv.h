/* An HTTP/1.1 server for the curl-multi driver tests (on httpsrv.h: libmicrohttpd, a thread
 * per connection, 127.0.0.1 on a kernel-chosen port). By path:
 *   /echo   200, body "<method> <X-Seq header or -> <request body>", header "Retry-After: 7";
 *           with ?close the server closes the connection after answering (Connection: close)
 *   /hang   counted as hanging, then held until echosrv_release() (or echosrv_stop()), then 503
 *   /drop   the connection is closed without an answer
 *   /big    200 with a body of 4096 'x'
 */
#ifndef PSKGW_TEST_ECHOSRV_H
#define PSKGW_TEST_ECHOSRV_H

typedef struct echosrv echosrv_t;

/* 0 or -1. */
int echosrv_start(echosrv_t **out, int *port);
/* Requests whose handler ran (any path), and those held in /hang right now. */
int echosrv_requests(echosrv_t *s);
int echosrv_hanging(echosrv_t *s);
/* Connections the server accepted so far. */
int echosrv_connections(echosrv_t *s);
/* Answer every held /hang request (503), and the ones to come at once. */
void echosrv_release(echosrv_t *s);
void echosrv_stop(echosrv_t *s);

#endif
