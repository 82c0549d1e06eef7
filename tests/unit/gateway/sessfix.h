/* The session-store tests' shared fixture (test_sessredis.c, test_sessredis_import.c): a node of
 * gateway/sessredis on a real redis-server, and the waits on its counters. */
#ifndef PSKGW_TEST_SESSFIX_H
#define PSKGW_TEST_SESSFIX_H

#include "gateway/sessredis.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* A node of domain "acme" named id on 127.0.0.1:port with key (32 bytes) and the default
 * bounds; asserts it was made. Not waited for: see sessfix_connected. */
pskgw_sessredis_t *sessfix_node(uv_loop_t *loop, const char *id, int port, const uint8_t *key);
/* hrun_until predicate (arg: the node): its Redis connection is up. */
bool sessfix_connected(void *node);
/* Runs the loop until n stores of the node were answered (stores + store_errors >= n); false
 * when the guard ran out. */
bool sessfix_wait_stores(uv_loop_t *loop, pskgw_sessredis_t *node, uint64_t n);

#endif
