/* pskgw-devsim: latency histogram (log-linear, about 3 % precision, microseconds).
 * Caller memory (_init/_reset); no allocation; pure. */
#ifndef PSKGW_TOOLS_DEVSIM_HIST_H
#define PSKGW_TOOLS_DEVSIM_HIST_H

#include <stdint.h>

#define PSKGW_DEVSIM_HIST_SUB     32 /* sub-buckets per power of two */
#define PSKGW_DEVSIM_HIST_BUCKETS (2 * PSKGW_DEVSIM_HIST_SUB + 35 * PSKGW_DEVSIM_HIST_SUB)

typedef struct {
    uint64_t count;
    uint64_t max_us;
    uint64_t sum_us;
    uint32_t buckets[PSKGW_DEVSIM_HIST_BUCKETS];
} pskgw_devsim_hist_t;

void pskgw_devsim_hist_reset(pskgw_devsim_hist_t *h);
/* Values above about 25 days are clamped. */
void pskgw_devsim_hist_add(pskgw_devsim_hist_t *h, uint64_t us);
/* The q-quantile (0 <= q <= 1) in microseconds: a value within the bucket holding it (exact below
 * 64 us, otherwise within about 3 %); 0 when empty. */
uint64_t pskgw_devsim_hist_quantile(const pskgw_devsim_hist_t *h, double q);

#endif
