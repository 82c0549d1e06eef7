/* The hiredis-on-libuv adapter of redisconn (module-internal): hiredis' read/write wishes
 * become a uv_poll_t on the context's socket, and contexts are freed only outside hiredis'
 * own dispatch. Every function runs on the loop thread of c. */
#ifndef PSKGW_REDISCONN_UVADAPTER_H
#define PSKGW_REDISCONN_UVADAPTER_H

#include "redisconn/internal.h"

/* Watch ac's socket on c's loop: a poll handle (counted in c->handles until its close callback,
 * which calls pskgw_rc_maybe_closed) drives redisAsyncHandleRead/Write with c->depth raised. A
 * poll error is handed to hiredis in the direction it waits on, so hiredis reads the socket
 * error itself. The handle is closed when hiredis frees ac (its cleanup hook).
 * 0, PSKGW_ENOMEM or PSKGW_EIO (nothing attached: the caller frees ac). */
int pskgw_rc_attach(pskgw_redisconn_t *c, redisAsyncContext *ac);

/* redisAsyncFree(ac) with c->depth raised: the pending callbacks get NULL replies. ac must not
 * be c->ac (nothing reconnects) and no hiredis frame of ac may be on the stack. */
void pskgw_rc_free_context(pskgw_redisconn_t *c, redisAsyncContext *ac);

/* Free a context we gave up: at once when no hiredis frame is on the stack (c->depth == 0),
 * else parked in c->doomed (an older doomed one is freed now) and freed by the reap timer. */
void pskgw_rc_discard(pskgw_redisconn_t *c, redisAsyncContext *ac);

/* The reap timer's callback: frees c->doomed; when c is closing, closes c's timers. */
void pskgw_rc_reap_cb(uv_timer_t *t);

#endif
