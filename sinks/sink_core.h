/* The sink core's layout, private to sink.c (queue, attempts, dead letters, making a sink),
 * sink_spill.c (the spool's side), sink_close.c (close) and sink_dev.c (the device table).
 * Backends see only sinks/internal.h. */
#ifndef PSKGW_SINKS_SINK_CORE_H
#define PSKGW_SINKS_SINK_CORE_H

#include "sinks/internal.h"

#include "common/backoff.h"
#include "common/list.h"
#include "sinks/appender.h"
#include "sinks/spool.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define DEV_BUCKETS_MIN 64
#define DEV_KEY_POOLED  96    /* devices with keys up to this long are recycled (freelist) */
#define FREE_KEEP       4096u /* entries / devices kept on the freelists per sink */

typedef struct entry entry_t;

typedef struct dev {
    struct dev *hnext; /* also the freelist link */
    uint32_t hash;
    size_t key_len;
    unsigned refs;    /* entries in the queue */
    unsigned spooled; /* records appended by this run and not read back */
    bool busy;
    unsigned gen;
    /* The device's entries not in flight: the oldest (first) in s->waiting, unless the device
     * is busy, and the rest behind it here, in queue order (entry_t.wlink), so a dispatch
     * walks one entry per device, not every message queued behind a device's first. */
    entry_t *first;    /* its entry in s->waiting, NULL when none */
    pskgw_list_t held; /* entry_t (wlink) waiting behind first or the one in flight */
    char key[];
} device_t;

typedef struct mark {
    pskgw_list_t link; /* s->marks */
    uint64_t off;
    bool done;
} mark_t;

typedef struct dlq_ctx dlq_ctx_t;

struct entry {
    pskgw_list_t link;       /* s->queue */
    pskgw_list_t wlink;      /* not in flight: s->waiting (dev->first) or dev->held */
    struct entry *next_free; /* s->free_entries: a stack, singly linked on purpose */
    pskgw_msg_t *msg;
    pskgw_sub_t *sub; /* NULL for replayed records */
    device_t *dev;
    mark_t *mark; /* replayed: its place in the spool */
    bool inflight;
    unsigned attempts;
    uint64_t not_before;
    bool dead;         /* permanent failure: waits for its dead-letter line to be written */
    int dead_status;   /* why */
    unsigned dl_tries; /* failed dead-letter writes */
    dlq_ctx_t *dlq;    /* the dead-letter write in progress */
};

/* A dead-letter write in progress; e is NULL once close took the entry back (detached). */
struct dlq_ctx {
    pskgw_sink_t *s;
    entry_t *e;
};

typedef struct {
    pskgw_sink_t *s;
    pskgw_sub_t *sub;
    device_t *dev;
} spool_ctx_t;

struct pskgw_sink {
    uv_loop_t *loop;
    char *name;
    const pskgw_sink_backend_t *be;
    void *impl;
    size_t queue_size;
    unsigned window;
    uint64_t retry_max_ms;
    pskgw_backoff_t backoff; /* retries: 100 ms doubling to retry_max_ms, own seeded jitter */
    unsigned max_attempts;
    uint64_t close_timeout_ms;

    pskgw_list_t queue;   /* entry_t, in arrival order */
    pskgw_list_t waiting; /* devices' first entries not in flight (wlink): dispatch() walks it */
    size_t qlen;
    unsigned inflight;

    device_t **buckets;
    size_t nbuckets;
    size_t ndevs;
    unsigned gen;

    /* freelists: no malloc per message in steady state */
    entry_t *free_entries;
    unsigned nfree_entries;
    device_t *free_devs; /* each with room for a DEV_KEY_POOLED-byte key */
    unsigned nfree_devs;

    pskgw_spool_t *spool;
    pskgw_list_t marks; /* mark_t of the replayed records, in spool order */
    pskgw_appender_t *dlq;

    uv_timer_t retry_timer;
    uv_timer_t close_timer;
    bool dispatching;
    bool redispatch;
    pskgw_sink_stats_t st;
    bool failing;             /* the target is failing: see pskgw_sink_health_t */
    uint64_t spool_max_bytes; /* 0: no spool */
    /* Spool hand-over at a reload (pskgw_sink_new_after()): spool_from is the sink being
     * replaced, which still holds the spool files (this one sends nothing and holds what it is
     * given in memory until spool_from has closed); spool_heir the sink that opens them once
     * this one has closed. */
    struct pskgw_sink *spool_from;
    struct pskgw_sink *spool_heir;
    char *spool_dir;
    pskgw_sink_fsync_t spool_fsync;

    bool closing;
    bool phase2;
    unsigned pending; /* asynchronous closes outstanding */
    void (*close_cb)(void *);
    void *close_arg;
};

/* ---- the queue (sink.c) ---- */

/* A zeroed entry, from the freelist when it has one; NULL when out of memory. */
entry_t *pskgw_sink_entry_new(pskgw_sink_t *s);
/* Back to the freelist (bounded) or freed. */
void pskgw_sink_entry_free(pskgw_sink_t *s, entry_t *e);
/* Append e to the queue, waiting. */
void pskgw_sink_q_push(pskgw_sink_t *s, entry_t *e);
/* e's attempt (or dead-letter write) ended and e stays: back first in the waiting list. */
void pskgw_sink_set_waiting(pskgw_sink_t *s, entry_t *e);
/* Remove e from the queue for good: its sub is done with status, its spool mark done, its
 * device and message released, e freed. */
void pskgw_sink_finish(pskgw_sink_t *s, entry_t *e, int status);
/* Let the spool forget what was replayed and delivered (up to the first mark not done). */
void pskgw_sink_commit_marks(pskgw_sink_t *s);
/* Start what the window and each device's order allow; read the spool when there is room. */
void pskgw_sink_dispatch(pskgw_sink_t *s);

/* ---- the device table (sink_dev.c) ---- */

/* The device named key (len bytes, hash: the message's dev_hash), made (refs 0) when it is not
 * in the table; NULL when out of memory. */
device_t *pskgw_sink_dev_get(pskgw_sink_t *s, const char *key, size_t len, uint32_t hash);

/* Free d when nothing refers to it any more (no queued entry, no spooled record, not busy). */
void pskgw_sink_dev_put(pskgw_sink_t *s, device_t *d);

#endif
