/* pskgw-devsim: a fleet of simulated u-blox devices speaking PSK (D)TLS to pskgw.
 * See README.md and `pskgw-devsim --help`. Exit: 0 pass, 1 fail, 2 usage or start-up error. */
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/err.h"
#include "tools/devsim/fleet.h"
#include "tools/devsim/opts.h"
#include "tools/devsim/report.h"
#include "tools/devsim/verify.h"

int main(int argc, char **argv)
{
    pskgw_devsim_opts_t o;
    char err[256];
    int rc = pskgw_devsim_opts_parse(argc, argv, &o, err, sizeof(err));
    if (rc == 1) {
        pskgw_devsim_usage(stdout);
        return 0;
    }
    if (rc == 2) {
        printf("pskgw-devsim %s\n", PSKGW_VERSION);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "pskgw-devsim: %s (see --help)\n", err);
        return 2;
    }
    /* A peer that vanishes must not kill the simulator through SIGPIPE on a TCP write. */
    signal(SIGPIPE, SIG_IGN);
    uint32_t run_id = o.run_id;
    if (!o.run_id_set && RAND_bytes((unsigned char *)&run_id, sizeof(run_id)) != 1) {
        fprintf(stderr, "pskgw-devsim: no random run id\n");
        return 2;
    }
    pskgw_devsim_stats_t s;
    rc = pskgw_devsim_fleet_run(&o, run_id, &s);
    if (rc < 0) {
        fprintf(stderr, "pskgw-devsim: cannot run: %s%s\n", pskgw_strerror(rc),
                rc == PSKGW_ECONFIG ? " (check --cipher)"
                : rc == PSKGW_EIO   ? " (check --attack-identities)"
                                    : "");
        return 2;
    }
    pskgw_devsim_verify_result_t vr, *vrp = NULL;
    if (o.verify_path != NULL) {
        pskgw_devsim_verify_t *v = NULL;
        rc = pskgw_devsim_verify_new(o.verify_path, o.seed, run_id, o.size, o.e2e, s.sent_by_device,
                                     o.devices, &v);
        if (rc == 0)
            rc = pskgw_devsim_verify_wait(v, o.verify_timeout, &vr);
        pskgw_devsim_verify_free(v);
        if (rc < 0) {
            fprintf(stderr, "pskgw-devsim: cannot verify '%s': %s\n", o.verify_path,
                    pskgw_strerror(rc));
            pskgw_devsim_stats_deinit(&s);
            return 1;
        }
        vrp = &vr;
    }
    pskgw_devsim_report_table(stdout, &o, run_id, &s, vrp);
    bool ok = pskgw_devsim_run_ok(&s, vrp);
    if (o.json_path != NULL) {
        rc = pskgw_devsim_report_json(o.json_path, &o, run_id, &s, vrp);
        if (rc < 0) {
            fprintf(stderr, "pskgw-devsim: cannot write '%s': %s\n", o.json_path,
                    pskgw_strerror(rc));
            ok = false;
        }
    }
    pskgw_devsim_stats_deinit(&s);
    return ok ? 0 : 1;
}
