/* The sink core's spool side (sink_spill.c; module-internal, for sink.c and sink_close.c). See
 * sink.c's opening comment for the ordering rules it keeps: a device with records in the spool
 * has its new messages spooled behind them, and its queued messages go there first. */
#ifndef PSKGW_SINKS_SINK_SPILL_H
#define PSKGW_SINKS_SINK_SPILL_H

#include "sinks/sink_core.h"
#include "sinks/spool.h"

/* The spool's callbacks (replayed records into the queue, within queue_size; then dispatch):
 * given to pskgw_spool_new() with the sink as argument. */
extern const pskgw_spool_cbs_t pskgw_sink_spool_cbs;

/* Append m (for sub, may be NULL: a replayed or taken-back message) to s's spool; sub is done
 * when the record is written (or its write failed: counted as a drop). 0, PSKGW_EFULL (no
 * spool) or the spool's error (nothing appended, sub not called). */
int pskgw_sink_spool_msg(pskgw_sink_t *s, pskgw_msg_t *m, pskgw_sub_t *sub, device_t *d);

/* d's messages must go to the spool from now on: its queued messages of this run that are not
 * in flight go there first, in order. 0, or the spool error of the first message that could
 * not be moved (it and the later ones stay queued). */
int pskgw_sink_spill_device(pskgw_sink_t *s, device_t *d);

/* The sink s replaced (pskgw_sink_new_after) has closed: open the spool it held, append behind
 * its records what s held in memory meanwhile, then dispatch (or go on with a close asked
 * meanwhile). */
void pskgw_sink_spool_take(pskgw_sink_t *s);

#endif
