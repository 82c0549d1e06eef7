/* Test support: the real chain pskgw-sim <- pskgw, as the devsim tests run it. Each test starts
 * its own simulator (port 0, its URL from its first stdout line) and gateway (pskgw on port 0,
 * its UDP, TCP and admin ports read from its log), writes the gateway's config between the two,
 * and stops and judges both inside the test (Criterion does not count a failure in a suite's
 * fini). Every path is in a temporary directory of the chain's own. Failures are Criterion
 * assertions: the test ends there. */
#ifndef PSKGW_TEST_CHAIN_H
#define PSKGW_TEST_CHAIN_H

#include "proc.h"

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>

#define CHAIN_GUARD_MS   60000 /* a guard against hanging only, never a statement about speed */
#define CHAIN_API_KEY    "k"
#define CHAIN_API_SECRET "s3cret"

typedef struct {
    char dir[256];       /* the temporary directory, removed by chain_fini() */
    char conf[512];      /* the gateway's config: the test writes it (chain_start_sim) */
    char secret[512];    /* the API secret file (CHAIN_API_SECRET, mode 0600) */
    char sink[512];      /* sink.jsonl: the file sink's path */
    char json_path[512]; /* run.json: pskgw-devsim's --json report */
    char sim_err[512], gw_err[512], devsim_err[512]; /* captured stderr */
    char sim_url[256];
    pskgw_test_proc_t sim, gw;
    int sim_port, udp_port, tcp_port, admin_port; /* admin_port 0 without an admin endpoint */
} chain_t;

#define CHAIN_INIT                          \
    {                                       \
        .sim = { -1, -1 }, .gw = { -1, -1 } \
    }

/* Make the directory and paths (conf named conf_name), check pskgw and pskgw-sim are built,
 * start pskgw-sim with the chain's credentials, seed and extra flags (NULL-terminated, may be
 * NULL), read its URL and port, write the secret file. The test then writes c->conf. */
void chain_start_sim(chain_t *c, const char *conf_name, const char *seed,
                     const char *const *sim_extra);
/* pskgw --config c->conf at log level notice; waits for its udp and tcp listeners and, when
 * admin, its admin endpoint, each logged once bound. */
void chain_start_gw(chain_t *c, int admin);
/* Stop pskgw, then the simulator (pskgw may still talk to it while it stops), and judge both
 * (exit 0, no sanitizer report): Criterion expectations. Nothing for one not running. */
void chain_stop(chain_t *c);
/* After a test that ended early: chain_stop(), then the directory removed. */
void chain_fini(chain_t *c);

/* GET path from 127.0.0.1:port (HTTP/1.1, Connection: close; a receive guard of 30 s): the
 * body, in a static buffer valid until the next call. */
const char *chain_http_get(int port, const char *path);
/* The sample family{domain="<domain>",listener="udp"} in the /metrics of the admin endpoint on
 * port, or -1 when absent. */
long long chain_udp_metric(int port, const char *domain, const char *family);
/* Reads it every 100 ms until it is at least want (/metrics is refreshed periodically;
 * CHAIN_GUARD_MS is a guard only); the last value read. */
long long chain_wait_udp_metric(int port, const char *domain, const char *family, long long want);
/* The simulator's /_sim/stats, parsed (the caller json_decref()s it). */
json_t *chain_sim_stats(const chain_t *c);

/* Start pskgw-devsim with the NULL-terminated arguments in ap, stdout captured, stderr into the
 * file err_path (c->devsim_err in a chain). */
void chain_devsim_spawn(pskgw_test_proc_t *p, const char *err_path, va_list ap);
/* Its stdout (into out, cap bytes) until it closes (read_guard_ms a guard per line), then its
 * exit status (-1 when it did not exit normally). A normal exit is judged for a sanitizer report
 * (a Criterion expectation): whatever its status when judge_all, else only a clean exit. */
int chain_devsim_finish(pskgw_test_proc_t *p, const char *err_path, char *out, size_t cap,
                        int read_guard_ms, int judge_all);

#endif
