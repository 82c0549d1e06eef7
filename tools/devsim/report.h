/* pskgw-devsim: the summary table (stdout) and the JSON summary (--json FILE). */
#ifndef PSKGW_TOOLS_DEVSIM_REPORT_H
#define PSKGW_TOOLS_DEVSIM_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/devsim/fleet.h"
#include "tools/devsim/opts.h"
#include "tools/devsim/verify.h"

/* True when the attack (if any) gained what it must not: a wrong key accepted, or the replay
 * victim's session lost. */
bool pskgw_devsim_attack_gained(const pskgw_devsim_stats_t *s);

/* True when the run passed (exit status 0): every good device completed, no error counted, the
 * attack (if any) gained nothing, and the verification (when vr is not NULL) found nothing
 * wrong. */
bool pskgw_devsim_run_ok(const pskgw_devsim_stats_t *s, const pskgw_devsim_verify_result_t *vr);

/* The human summary. vr may be NULL (no --verify-file). */
void pskgw_devsim_report_table(FILE *out, const pskgw_devsim_opts_t *o, uint32_t run_id,
                               const pskgw_devsim_stats_t *s,
                               const pskgw_devsim_verify_result_t *vr);

/* Write the JSON summary with per-second samples to path (replaced atomically via a temporary
 * file). 0, PSKGW_ENOMEM or PSKGW_EIO. */
int pskgw_devsim_report_json(const char *path, const pskgw_devsim_opts_t *o, uint32_t run_id,
                             const pskgw_devsim_stats_t *s, const pskgw_devsim_verify_result_t *vr);

#endif
