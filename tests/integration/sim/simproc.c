/* pskgw-sim's test process: see simproc.h. */
#include "simproc.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void simproc_err_path(simproc_t *s, char *out, size_t cap, const char *name)
{
    if (s->tmp[0] == '\0')
        cr_assert_eq(pskgw_test_tmpdir(s->tmp, sizeof(s->tmp)), 0);
    snprintf(out, cap, "%s/%s.stderr", s->tmp, name);
}

void simproc_start(simproc_t *s, const char *const *base, const char *const *extra)
{
    char *argv[64];
    size_t n = 0;
    int rc;

    argv[n++] = strdup(pskgw_test_bin("pskgw-sim"));
    for (size_t i = 0; base && base[i]; i++) {
        cr_assert(n < 62);
        argv[n++] = strdup(base[i]);
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        cr_assert(n < 62);
        argv[n++] = strdup(extra[i]);
    }
    argv[n] = NULL;
    simproc_err_path(s, s->err, sizeof(s->err), "sim");
    rc = pskgw_test_spawn_logged(&s->proc, argv, 1, s->err);
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    cr_assert_eq(rc, 0, "spawn pskgw-sim");
    cr_assert_eq(pskgw_test_read_line(&s->proc, s->url, sizeof(s->url), SIMPROC_GUARD_MS), 0,
                 "pskgw-sim printed no URL");
}

void simproc_stop_clean(simproc_t *s)
{
    char why[256];

    cr_assert_eq(pskgw_test_stop_checked(&s->proc, "pskgw-sim", 0, s->err, SIMPROC_GUARD_MS, why,
                                         sizeof(why)),
                 0, "%s", why);
}

void simproc_fini(simproc_t *s)
{
    if (s->proc.pid > 0)
        pskgw_test_stop(&s->proc, SIGKILL, 5000);
    if (s->tmp[0]) {
        pskgw_test_rmtree(s->tmp);
        s->tmp[0] = '\0';
    }
    s->ca[0] = '\0';
}

size_t simproc_append(char *buf, size_t cap, size_t *len, const char *p, size_t n)
{
    if (*len + n >= cap)
        return 0;
    memcpy(buf + *len, p, n);
    *len += n;
    buf[*len] = '\0';
    return n;
}
