/* Helpers for the sink integration tests: envelopes with known content, running the loop until
 * a condition holds, reading delivered JSON lines back, and the kill -9 child. */
#ifndef PSKGW_TEST_SINKTEST_H
#define PSKGW_TEST_SINKTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sinks/sinkset.h"

#define ST_MAX 4096

typedef struct {
    uv_loop_t loop;
    pskgw_sinkset_t *set;
    int done_ok;
    int done_err;
    int done_total;
    int last_err;
    int closed;
    char ids[ST_MAX][PSKGW_MESSAGE_ID_LEN + 1]; /* by submit index */
    int status[ST_MAX];                         /* 1 ok, -1 error, 0 pending */
    uint8_t payload[ST_MAX][24];
    size_t payload_len[ST_MAX];
} st_ctx_t;

/* A message of device (i % ndev) with seq i and a payload derived from i. */
void st_envelope(int i, int ndev, uint8_t *pl, size_t *pl_len, char *dev, size_t dev_cap,
                 pskgw_envelope_t *out);
/* Zero *c, initialise c->loop and make c->set a one-sink set of *o on it; asserts. */
void st_open(st_ctx_t *c, const pskgw_sink_options_t *o);
/* Submit messages [first, first + n) to c->set; asserts success. */
void st_submit(st_ctx_t *c, int first, int n, int ndev);
/* Run the loop until pred(arg) or timeout_ms (asserting on timeout). pred is re-checked after
 * every loop iteration and at least every 20 ms. */
void st_run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, int timeout_ms);
bool st_all_done(void *c); /* every submitted message got its callback */
/* Sink 0 of c->set delivered something and holds nothing more (queue and spool empty). */
bool st_drained(void *c);
/* Wait until sink 0 of c->set has delivered at least `want` messages. */
void st_wait_delivered(st_ctx_t *c, uint64_t want, int timeout_ms);
/* The allocation-free steady state of c->set's sinks (issue 13): bursts of `burst` messages of
 * ndev devices from index `first` on (as st_submit, without an allocation by the test), each
 * burst run until every message got its callback (asserted delivered). First at least `warm`
 * bursts, and on until one burst went through memory alone (sink 0's spooled, replayed and
 * retried counters did not move: the spool opened and the target connected); then `count`
 * bursts, which must not touch the spool or retry. Returns the allocations the loop thread (this
 * thread: the sinks' code) made during those `count` bursts (tests/support/allocfail.h;
 * receivers on their own threads and shared libraries are not counted). c->done_total is the
 * number of messages submitted, [first, first + c->done_total). */
long st_steady_allocs(st_ctx_t *c, int first, int burst, int warm, int count, int ndev);
/* Issue 13's test, for every network sink: st_open(c, o), st_steady_allocs(c, 0, 32, 8, 24, 6)
 * (at least 8 bursts of 32 messages of 6 devices to warm up, then 768 counted), asserts that
 * they allocated nothing, runs the loop until arrived(c) (NULL: until sink 0 counted every
 * message delivered) or timeout_ms, then closes the set and the loop. Returns the number of
 * messages submitted, [0, total) of 6 devices, for the test to check what its server received
 * (st_expect_envelopes). */
int st_steady_state_no_allocs(st_ctx_t *c, const pskgw_sink_options_t *o, bool (*arrived)(void *c),
                              int timeout_ms);
/* Close c->set and run the loop until closed; then uv_loop_close must be 0. */
void st_close(st_ctx_t *c);
void st_loop_fini(st_ctx_t *c);

/* One delivered message parsed back from its JSON. */
typedef struct {
    char id[PSKGW_MESSAGE_ID_LEN + 1];
    char dev[64];
    uint64_t seq;
} st_rx_t;

/* Each message [0, nmsg) of c (submitted by st_submit with ndev devices) stands exactly once,
 * as its exact envelope JSON, among raw[0..n). Asserts. */
void st_expect_exact_envelopes(const st_ctx_t *c, int nmsg, int ndev, char *const *raw, int n);
/* Whether received message j is `want` (wl bytes, the envelope JSON of a message of device dev);
 * it may assert on j's other fields (topic, key, ...) when it is. */
typedef bool (*st_match_t)(void *arg, int j, const char *want, size_t wl, const char *dev);
/* Each message [0, nmsg) of c (submitted with ndev devices) matches exactly one of the n
 * received ones. Asserts. */
void st_expect_envelopes(const st_ctx_t *c, int nmsg, int ndev, int n, st_match_t match, void *arg);
/* free() raw[0..n) and raw. */
void st_free_raw(char **raw, int n);
/* The spool-limit scenario every sink has: a new set of *o on c->loop (initialised here), whose
 * target fails or is down and whose spool holds o->spool.max_bytes, takes 300 messages of 3
 * devices and runs until all but 4 got their callback; asserts that more than 200 were refused
 * with PSKGW_EFULL and counted as dropped and that the spool kept its limit, then closes the set
 * (every callback fired) and the loop. *st: the sink's stats before the close, for the test's
 * own checks. */
void st_spool_limit_drops(st_ctx_t *c, const pskgw_sink_options_t *o, pskgw_sink_stats_t *st);

/* Parse one JSON envelope line (jansson) into rx; also checks all keys are present. 0 or -1. */
int st_parse_json(const char *line, size_t len, st_rx_t *rx);
/* Check rx[0..n): per device strictly increasing seq after removing duplicates (by id), and
 * every id in want[0..nwant) present. Returns the number of distinct ids. Asserts. */
int st_check_delivery(const st_rx_t *rx, int n, char (*want)[PSKGW_MESSAGE_ID_LEN + 1], int nwant);

/* kill -9 test: fork a child that runs `child(arg, fd)`: it must write each acknowledged
 * message id as a line to fd and then "READY\n", and keep running. The parent reads the ids
 * into ids (returns their count), then SIGKILLs the child and reaps it. */
int st_fork_kill9(void (*child)(void *arg, int fd), void *arg,
                  char (*ids)[PSKGW_MESSAGE_ID_LEN + 1], int max, int timeout_ms);
/* A child for st_fork_kill9 that builds a one-sink set from *o (a sink that is down), submits
 * n messages (device i % ndev), reports every acknowledged id and READY once every message is
 * acknowledged or waiting in the queue, and then runs the loop until killed. */
typedef struct {
    const pskgw_sink_options_t *o;
    int n;
    int ndev;
} st_child_t;
void st_child_spool(void *arg, int fd);
/* In a child: write s to fd fully (no stdio). */
void st_write_line(int fd, const char *s);

#endif
