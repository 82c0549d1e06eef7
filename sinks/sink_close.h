/* The sink core's close (sink_close.c; module-internal, for sink.c and sink_spill.c). The public
 * call is pskgw_sink_close() (internal.h). */
#ifndef PSKGW_SINKS_SINK_CLOSE_H
#define PSKGW_SINKS_SINK_CLOSE_H

#include "sinks/sink_core.h"

/* Close now (nothing queued, or the close timer fired): the backend closes and forgets its
 * tokens, what is queued or in flight goes to the spool (or is lost, counted and logged), then
 * the spool, the dead-letter file and the timers close; the sink is freed by the last of them
 * (then the heir, if any, takes the spool over and close_cb runs). Once. */
void pskgw_sink_close_phase2(pskgw_sink_t *s);

/* Start closing: at once when the queue is empty, else dispatch and give the queue
 * close_timeout_ms. */
void pskgw_sink_close_start(pskgw_sink_t *s);

#endif
