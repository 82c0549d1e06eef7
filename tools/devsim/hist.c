/* pskgw-devsim: latency histogram (see hist.h). */
#include "tools/devsim/hist.h"

#include <string.h>

#define SUB_BITS 5 /* log2(PSKGW_DEVSIM_HIST_SUB) */
#define EXACT    (2 * PSKGW_DEVSIM_HIST_SUB)
#define MAX_US   ((UINT64_C(1) << 41) - 1)

static unsigned msb(uint64_t v)
{
    unsigned e = 0;
    while (v >>= 1)
        e++;
    return e;
}

static unsigned index_of(uint64_t v)
{
    if (v < EXACT)
        return (unsigned)v;
    unsigned e = msb(v); /* >= SUB_BITS + 1 */
    unsigned shift = e - SUB_BITS;
    return EXACT + (e - (SUB_BITS + 1)) * PSKGW_DEVSIM_HIST_SUB +
           (unsigned)((v >> shift) - PSKGW_DEVSIM_HIST_SUB);
}

/* Middle of bucket i. */
static uint64_t value_of(unsigned i)
{
    if (i < EXACT)
        return i;
    unsigned j = i - EXACT;
    unsigned e = j / PSKGW_DEVSIM_HIST_SUB + SUB_BITS + 1;
    unsigned shift = e - SUB_BITS;
    uint64_t lo = ((uint64_t)(PSKGW_DEVSIM_HIST_SUB + j % PSKGW_DEVSIM_HIST_SUB)) << shift;
    return lo + ((UINT64_C(1) << shift) >> 1);
}

void pskgw_devsim_hist_reset(pskgw_devsim_hist_t *h)
{
    memset(h, 0, sizeof(*h));
}

void pskgw_devsim_hist_add(pskgw_devsim_hist_t *h, uint64_t us)
{
    if (us > MAX_US)
        us = MAX_US;
    h->buckets[index_of(us)]++;
    h->count++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

uint64_t pskgw_devsim_hist_quantile(const pskgw_devsim_hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)(q * (double)(h->count - 1)) + 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < PSKGW_DEVSIM_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = value_of(i);
            return v > h->max_us ? h->max_us : v;
        }
    }
    return h->max_us;
}
