/* redisconn/ internals shared by redisconn.c and uvadapter.c. Not for other modules. */
#ifndef PSKGW_REDISCONN_INTERNAL_H
#define PSKGW_REDISCONN_INTERNAL_H

#include "redisconn/redisconn.h"
#include "redisconn/sentinel.h"

#include "common/backoff.h"
#include "common/list.h"

#include <hiredis/async.h>
#include <stdbool.h>
#include <uv.h>

struct pskgw_redisconn {
    uv_loop_t *loop;
    char *host;
    char *password;
    char *log_name;
    int port;
    int db;
    uint32_t timeout_ms;
    pskgw_backoff_t backoff; /* min doubling to max, 80..120 %, own seeded jitter */
    pskgw_redisconn_state_cb on_state;
    char *channel; /* subscriber mode: the channel; NULL: a command connection */
    pskgw_redisconn_message_cb on_message;
    void *arg;

    pskgw_redisconn_state_t state;
    bool closing;
    redisAsyncContext *ac;     /* current context */
    redisAsyncContext *doomed; /* dropped inside a hiredis callback: freed by reap_timer */
    unsigned depth;            /* hiredis dispatch frames on the stack */

    uv_getaddrinfo_t gai;
    bool gai_pending;
    uv_timer_t conn_timer; /* backoff (IDLE) or connect + gate deadline */
    uv_timer_t op_timer;   /* deadline of the oldest outstanding command */
    uv_timer_t reap_timer; /* frees `doomed` outside hiredis */
    unsigned handles;      /* timers and adapter poll handles not yet closed */

    pskgw_list_t cmds; /* outstanding commands (pskgw_redisconn_cmd_t.link), oldest first */
    /* finished commands kept for the next ones (none allocated per command in steady state) */
    pskgw_redisconn_cmd_t *free_cmds;
    unsigned nfree_cmds;
    uint32_t max_in_flight; /* 0: no limit; else sent and not answered at most */
    uint32_t max_held;      /* 0: no limit; else held (GATE, or past max_in_flight) at most */
    uint32_t in_flight;     /* sent to the current or a doomed context, not answered yet */
    uint32_t held;          /* formatted and waiting to be sent */
    pskgw_list_t held_cmds; /* those (pskgw_redisconn_cmd_t.hold), oldest first */

    void (*close_cb)(void *arg);
    void *close_arg;
    pskgw_redisconn_stats_t stats;

    pskgw_redisconn_sentinels_t *sentinels; /* Sentinel mode: host/port come from them */
    bool asking;                            /* a master address is being asked for */
    bool no_sentinel;                       /* the last ask found no READY sentinel */
};

/* Free c and call its close callback once it is closing and nothing is left: no open handle, no
 * name lookup or sentinel ask, no context (current or doomed), no outstanding command and no
 * hiredis frame on the stack. Called from every close callback (redisconn.c). */
void pskgw_rc_maybe_closed(pskgw_redisconn_t *c);

/* Close the connection's three timers (each counted in c->handles); nothing when they are
 * already closing (redisconn.c). */
void pskgw_rc_close_handles(pskgw_redisconn_t *c);

#endif
