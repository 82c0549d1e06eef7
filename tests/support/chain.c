/* The pskgw-sim <- pskgw chain of the tests: see chain.h. */
#include "chain.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int have(const char *name)
{
    return access(pskgw_test_bin(name), X_OK) == 0;
}

static void paths(chain_t *c, const char *conf_name)
{
    cr_assert_eq(pskgw_test_tmpdir(c->dir, sizeof(c->dir)), 0);
    snprintf(c->conf, sizeof(c->conf), "%s/%s", c->dir, conf_name);
    snprintf(c->secret, sizeof(c->secret), "%s/api.secret", c->dir);
    snprintf(c->sink, sizeof(c->sink), "%s/sink.jsonl", c->dir);
    snprintf(c->json_path, sizeof(c->json_path), "%s/run.json", c->dir);
    snprintf(c->sim_err, sizeof(c->sim_err), "%s/sim.stderr", c->dir);
    snprintf(c->gw_err, sizeof(c->gw_err), "%s/pskgw.stderr", c->dir);
    snprintf(c->devsim_err, sizeof(c->devsim_err), "%s/devsim.stderr", c->dir);
}

void chain_start_sim(chain_t *c, const char *conf_name, const char *seed,
                     const char *const *sim_extra)
{
    static char simbin[4096];
    char *sargv[32] = { simbin,         "--listen",       "127.0.0.1:0", "--api-key", CHAIN_API_KEY,
                        "--api-secret", CHAIN_API_SECRET, "--seed",      (char *)seed };
    int sargc = 9;
    const char *colon;
    FILE *f;

    cr_assert(have("pskgw"), "%s not built", pskgw_test_bin("pskgw"));
    cr_assert(have("pskgw-sim"), "%s not built", pskgw_test_bin("pskgw-sim"));
    paths(c, conf_name);
    snprintf(simbin, sizeof(simbin), "%s", pskgw_test_bin("pskgw-sim"));
    for (size_t i = 0; sim_extra && sim_extra[i] && sargc < 30; i++)
        sargv[sargc++] = (char *)sim_extra[i];
    sargv[sargc] = NULL;
    cr_assert_eq(pskgw_test_spawn_logged(&c->sim, sargv, 1, c->sim_err), 0);
    cr_assert_eq(pskgw_test_read_line(&c->sim, c->sim_url, sizeof(c->sim_url), CHAIN_GUARD_MS), 0,
                 "pskgw-sim silent");
    colon = strrchr(c->sim_url, ':');
    cr_assert_not_null(colon, "%s", c->sim_url);
    c->sim_port = (int)strtol(colon + 1, NULL, 10);
    cr_assert_gt(c->sim_port, 0);

    f = fopen(c->secret, "w");
    cr_assert_not_null(f);
    fputs(CHAIN_API_SECRET "\n", f);
    fclose(f);
    chmod(c->secret, 0600);
}

void chain_start_gw(chain_t *c, int admin)
{
    static char gwbin[4096];
    /* notice: the level of the lines naming each bound listener and the admin endpoint (each
     * logged once its socket is bound) */
    char *gargv[] = { gwbin, "--config", c->conf, "--log-level", "notice", NULL };

    snprintf(gwbin, sizeof(gwbin), "%s", pskgw_test_bin("pskgw"));
    cr_assert_eq(pskgw_test_spawn_logged(&c->gw, gargv, 0, c->gw_err), 0);
    c->udp_port = pskgw_test_log_port(c->gw_err, "on udp 127.0.0.1:", c->gw.pid, CHAIN_GUARD_MS);
    c->tcp_port = pskgw_test_log_port(c->gw_err, "on tcp 127.0.0.1:", c->gw.pid, CHAIN_GUARD_MS);
    cr_assert_gt(c->udp_port, 0, "pskgw logged no UDP listener (see %s)", c->gw_err);
    cr_assert_gt(c->tcp_port, 0, "pskgw logged no TCP listener (see %s)", c->gw_err);
    c->admin_port = 0;
    if (!admin)
        return;
    c->admin_port = pskgw_test_log_port(c->gw_err, "admin endpoint on http://127.0.0.1:", c->gw.pid,
                                        CHAIN_GUARD_MS);
    cr_assert_gt(c->admin_port, 0, "pskgw logged no admin endpoint (see %s)", c->gw_err);
}

void chain_stop(chain_t *c)
{
    char why[256];

    cr_expect_eq(
        pskgw_test_stop_checked(&c->gw, "pskgw", 0, c->gw_err, CHAIN_GUARD_MS, why, sizeof(why)), 0,
        "%s", why);
    cr_expect_eq(pskgw_test_stop_checked(&c->sim, "pskgw-sim", 0, c->sim_err, CHAIN_GUARD_MS, why,
                                         sizeof(why)),
                 0, "%s", why);
}

void chain_fini(chain_t *c)
{
    chain_stop(c);
    if (c->dir[0] != '\0')
        pskgw_test_rmtree(c->dir);
    c->dir[0] = '\0';
}

void chain_devsim_spawn(pskgw_test_proc_t *p, const char *err_path, va_list ap)
{
    char *argv[64];
    int argc = 0;
    static char bin[4096];
    const char *a;

    snprintf(bin, sizeof(bin), "%s", pskgw_test_bin("pskgw-devsim"));
    argv[argc++] = bin;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 62)
        argv[argc++] = (char *)a;
    argv[argc] = NULL;
    cr_assert_eq(pskgw_test_spawn_logged(p, argv, 1, err_path), 0);
}

int chain_devsim_finish(pskgw_test_proc_t *p, const char *err_path, char *out, size_t cap,
                        int read_guard_ms, int judge_all)
{
    size_t n = 0;
    char line[1024];
    char why[256];
    int st, exited, judged;

    out[0] = '\0';
    while (pskgw_test_read_line(p, line, sizeof(line), read_guard_ms) == 0) {
        int w = snprintf(out + n, cap - n, "%s\n", line);
        if (w > 0 && (size_t)w < cap - n)
            n += (size_t)w;
    }
    st = pskgw_test_wait(p, CHAIN_GUARD_MS);
    exited = st >= 0 && WIFEXITED(st);
    /* the caller asserts the exit status with the run's output; the run is judged here for a
     * sanitizer report too (a failed judgement copies the stderr to ours) */
    judged = pskgw_test_judge_exit("pskgw-devsim", st, judge_all && exited ? WEXITSTATUS(st) : 0,
                                   err_path, why, sizeof(why));
    if (exited && (judge_all || WEXITSTATUS(st) == 0))
        cr_expect_eq(judged, 0, "%s", why);
    return exited ? WEXITSTATUS(st) : -1;
}

const char *chain_http_get(int port, const char *path)
{
    static char buf[1 << 20];
    struct timeval tv = { 30, 0 }; /* a guard against hanging only */
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    char req[256];
    size_t n = 0;
    ssize_t got;
    const char *body;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int rl;

    cr_assert_geq(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    rl = snprintf(req, sizeof(req),
                  "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    cr_assert_eq(write(fd, req, (size_t)rl), (ssize_t)rl);
    while (n < sizeof(buf) - 1 && (got = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)got;
    close(fd);
    buf[n] = '\0';
    body = strstr(buf, "\r\n\r\n");
    cr_assert_not_null(body, "no HTTP answer from %s: %s", path, buf);
    return body + 4;
}

long long chain_udp_metric(int port, const char *domain, const char *family)
{
    const char *body = chain_http_get(port, "/metrics");
    char want[256];
    const char *p;

    snprintf(want, sizeof(want), "%s{domain=\"%s\",listener=\"udp\"} ", family, domain);
    p = strstr(body, want);
    return p != NULL ? strtoll(p + strlen(want), NULL, 10) : -1;
}

long long chain_wait_udp_metric(int port, const char *domain, const char *family, long long want)
{
    struct timespec pause = { 0, 100 * 1000000L };
    long long v = -1;

    for (int i = 0; i < CHAIN_GUARD_MS / 100; i++) {
        v = chain_udp_metric(port, domain, family);
        if (v >= want)
            break;
        nanosleep(&pause, NULL);
    }
    return v;
}

json_t *chain_sim_stats(const chain_t *c)
{
    const char *body = chain_http_get(c->sim_port, "/_sim/stats");
    json_error_t e;
    json_t *j = json_loads(body, 0, &e);

    cr_assert_not_null(j, "stats not JSON: %s", body);
    return j;
}
