/* --check-config's look at the file system: the directories and files start-up would fail on.
 * Secrets and ca_file are read (or checked readable) by the load itself. */
#include "common/err.h"
#include "config/config.h"
#include "config/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    pskgw_config_diag_t *diag;
    bool oom;
    size_t nerrors;
    const pskgw_config_domain_t *d;
    unsigned line;
} pctx_t;

__attribute__((format(printf, 3, 4))) static void perr(pctx_t *x, const char *path, const char *fmt,
                                                       ...)
{
    va_list ap;

    x->nerrors++;
    va_start(ap, fmt);
    cfg_diag_add(x->diag, &x->oom, PSKGW_CONFIG_SEV_ERROR, x->d->source, x->line, path, fmt, ap);
    va_end(ap);
}

static void parent_of(const char *p, char *out, size_t cap)
{
    const char *slash = strrchr(p, '/');

    if (slash == NULL)
        snprintf(out, cap, ".");
    else if (slash == p)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - p), p);
}

/* A directory pskgw writes in: exists and is writable, or its parent does and is (then
 * pskgw creates it: spool directories). */
static void check_dir(pctx_t *x, const char *key, const char *dir, bool creatable)
{
    struct stat st;
    char parent[PATH_MAX];

    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            perr(x, key, "\"%s\" is not a directory", dir);
        else if (access(dir, W_OK | X_OK) != 0)
            perr(x, key, "directory \"%s\" is not writable by uid %u", dir, (unsigned)getuid());
        return;
    }
    if (errno != ENOENT || !creatable) {
        perr(x, key, "directory \"%s\": %s", dir, strerror(errno));
        return;
    }
    parent_of(dir, parent, sizeof(parent));
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
        perr(x, key, "\"%s\" cannot be created: its parent directory \"%s\" does not exist", dir,
             parent);
    else if (access(parent, W_OK | X_OK) != 0)
        perr(x, key, "\"%s\" cannot be created: \"%s\" is not writable by uid %u", dir, parent,
             (unsigned)getuid());
}

/* A file pskgw appends to: writable if it exists, else its directory must exist and be
 * writable (the file is created, its directory is not). */
static void check_file(pctx_t *x, const char *key, const char *file)
{
    struct stat st;
    char parent[PATH_MAX];

    if (stat(file, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            perr(x, key, "\"%s\" is a directory", file);
        else if (access(file, W_OK) != 0)
            perr(x, key, "\"%s\" is not writable by uid %u", file, (unsigned)getuid());
        return;
    }
    if (errno != ENOENT) {
        perr(x, key, "\"%s\": %s", file, strerror(errno));
        return;
    }
    parent_of(file, parent, sizeof(parent));
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
        perr(x, key, "\"%s\" cannot be created: directory \"%s\" does not exist", file, parent);
    else if (access(parent, W_OK | X_OK) != 0)
        perr(x, key, "\"%s\" cannot be created: directory \"%s\" is not writable by uid %u", file,
             parent, (unsigned)getuid());
}

static void check_sink(pctx_t *x, size_t i, const pskgw_config_sink_t *s)
{
    char key[96];

    x->line = s->line;
    if (s->has_spool && s->spool.path != NULL) {
        snprintf(key, sizeof(key), "sinks[%zu].spool.path", i);
        check_dir(x, key, s->spool.path, true);
    }
    if (s->type == PSKGW_CONFIG_SINK_FILE && s->file.path != NULL &&
        strcmp(s->file.path, "-") != 0) {
        snprintf(key, sizeof(key), "sinks[%zu].path", i);
        check_file(x, key, s->file.path);
    }
    if (s->type == PSKGW_CONFIG_SINK_HTTP && s->http.dead_letter_path != NULL) {
        snprintf(key, sizeof(key), "sinks[%zu].dead_letter_path", i);
        check_file(x, key, s->http.dead_letter_path);
    }
}

int pskgw_config_check_paths(const pskgw_config_t *cfg, pskgw_config_diag_t *diag)
{
    pctx_t x = { .diag = diag };

    if (cfg == NULL)
        return PSKGW_EINVAL;
    for (size_t d = 0; d < cfg->ndomains; d++) {
        x.d = &cfg->domains[d];
        for (size_t i = 0; i < x.d->nsinks; i++)
            check_sink(&x, i, &x.d->sinks[i]);
    }
    if (x.oom)
        return PSKGW_ENOMEM;
    return x.nerrors ? PSKGW_ECONFIG : 0;
}
