/* Prometheus text exposition builder (format 0.0.4), used by the loop to render every module's
 * counters for the admin endpoint. A growable buffer owned by the caller. */
#ifndef PSKGW_GATEWAY_METRICS_H
#define PSKGW_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *text; /* NUL-terminated; owned */
    size_t len;
    size_t cap;
    int failed; /* set on allocation failure: the text is then incomplete */
} pskgw_metrics_t;

void pskgw_metrics_init(pskgw_metrics_t *m);
void pskgw_metrics_deinit(pskgw_metrics_t *m);
void pskgw_metrics_reset(pskgw_metrics_t *m);

/* "# HELP name help\n# TYPE name type\n"; type is "counter", "gauge" or "histogram". */
void pskgw_metrics_family(pskgw_metrics_t *m, const char *name, const char *type, const char *help);
/* One sample: name{labels} value. labels is "k=\"v\",k2=\"v2\"" already escaped, or NULL.
 * Label values from the network must go through pskgw_metrics_label(). */
void pskgw_metrics_sample(pskgw_metrics_t *m, const char *name, const char *labels, uint64_t value);
void pskgw_metrics_sample_f(pskgw_metrics_t *m, const char *name, const char *labels, double value);
/* One sample whose value is given in thousandths, written exactly ("12.345"): milliseconds
 * counted by a module, exposed in seconds. */
void pskgw_metrics_sample_milli(pskgw_metrics_t *m, const char *name, const char *labels,
                                uint64_t thousandths);
/* The same in millionths ("12.345678"): microseconds exposed in seconds. */
void pskgw_metrics_sample_micro(pskgw_metrics_t *m, const char *name, const char *labels,
                                uint64_t millionths);
/* The process-wide families every scrape starts with: pskgw_build_info{version} (always 1),
 * pskgw_slab_active (1: the slab serves from its reserved range, 0: malloc; dtls/slab.h) and
 * the standard process_* families (CPU seconds, resident and virtual memory, open and maximum
 * file descriptors, start time), read from getrusage(), getrlimit() and /proc/self (which the
 * hardened units keep visible: ProcSubset=pid). A value that cannot be read is left out. */
void pskgw_metrics_process(pskgw_metrics_t *m, const char *version);
/* Writes key="escaped value" into out (cap bytes, truncated safely). */
void pskgw_metrics_label(char *out, size_t cap, const char *key, const char *value);

#endif
