/* Test support for the Redis tests: a password-protected redis-server on a reserved port and the
 * tests' own synchronous hiredis client (blocking is fine between loop runs, never inside the
 * loop under test). Failures are Criterion assertions: the test ends there. */
#ifndef PSKGW_TEST_REDISTEST_H
#define PSKGW_TEST_REDISTEST_H

#include "proc.h"

#include <hiredis/hiredis.h>

/* redis-server on 127.0.0.1:*port with --requirepass password (none when NULL), no persistence, on a port
 * reserved here and handed over by pskgw_test_spawn_on_reserved() (no free-port pick). Returns
 * the reserving socket (the caller closes it; keep it open to restart the server on the port),
 * or -1 (nothing left running). */
int pskgw_test_redis_start_pw(pskgw_test_proc_t *p, int *port, const char *password);

/* redis-server (password as above, none when NULL) on a port the caller already has (a restart
 * on the port of one it stopped): 0 once that process listens there alone (a guard of 30 s), -1
 * otherwise. */
int pskgw_test_redis_spawn_on(pskgw_test_proc_t *p, int port, const char *password);

/* A synchronous connection to 127.0.0.1:port, authenticated with password (none when NULL) and on
 * database db (SELECT). The caller redisFree()s it. */
redisContext *pskgw_test_redis_connect(int port, const char *password, int db);

/* "cmd key" (EXISTS, XLEN, ...) on a connection made by pskgw_test_redis_connect(): its
 * integer reply. */
long long pskgw_test_redis_int(int port, const char *password, int db, const char *cmd,
                               const char *key);

#endif
