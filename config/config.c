/* Loading files, checking them against each other, and freeing the result. */
#include "config/internal.h"

#include "common/err.h"
#include "common/secmem.h"
#include "common/wipe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A domain file larger than this is refused (a real one is a few KiB). */
#define CFG_FILE_MAX (1024 * 1024)

/* One loaded file with the lines the cross-file checks report. */
typedef struct {
    pskgw_config_domain_t d;
    bool ok; /* validated without error */
    unsigned domain_line, admin_line, log_line;
} loaded_t;

/* libconfig would open any file named by "@include" (even from a string): refuse them all. The
 * scanner only honours "@include" at the start of a line after blanks; look exactly there. */
static unsigned include_line(const char *text)
{
    unsigned line = 1;
    const char *p = text;
    for (;;) {
        const char *q = p;
        while (*q == ' ' || *q == '\t')
            q++;
        if (strncmp(q, "@include", 8) == 0)
            return line;
        p = strchr(p, '\n');
        if (p == NULL)
            return 0;
        p++;
        line++;
    }
}

static unsigned setting_line(const config_t *c, const char *name)
{
    const config_setting_t *s = config_setting_get_member(config_root_setting(c), name);
    return s != NULL ? cfg_line(s) : 1;
}

static void load_text(cfg_ctx_t *ctx, const char *text, loaded_t *out)
{
    config_t c;
    unsigned inc = include_line(text);
    if (inc > 0) {
        cfg_error(ctx, inc, NULL, "@include is not supported (one file per domain)");
        return;
    }
    ctx->text = text;
    config_init(&c);
    if (config_read_string(&c, text) != CONFIG_TRUE) {
        const char *why = config_error_text(&c);
        cfg_error(ctx, (unsigned)(config_error_line(&c) > 0 ? config_error_line(&c) : 0), NULL,
                  "%s", why != NULL ? why : "syntax error");
        config_destroy(&c);
        return;
    }
    cfg_walk_group(ctx, &cfg_domain_schema, config_root_setting(&c), "", 0, &out->d);
    ctx->text = NULL;
    out->domain_line = setting_line(&c, "domain");
    out->admin_line = setting_line(&c, "admin");
    out->log_line = setting_line(&c, "log");
    config_destroy(&c);
}

/* Directory part of a path ("a/b.conf" -> "a", "/b.conf" -> "/"), heap; NULL when none. */
static char *dir_of(const char *path, bool *oom)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return NULL;
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d == NULL) {
        *oom = true;
        return NULL;
    }
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

/* Read a config file into a NUL-terminated heap buffer; problems reported as "file: ...". */
static char *read_file(cfg_ctx_t *ctx, const char *path, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    if (fd < 0) {
        cfg_error(ctx, 0, NULL, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        cfg_error(ctx, 0, NULL, "not a regular file");
        goto fail;
    }
    if (st.st_size > CFG_FILE_MAX) {
        cfg_error(ctx, 0, NULL, "too large (more than %d bytes)", CFG_FILE_MAX);
        goto fail;
    }
    buf = malloc(CFG_FILE_MAX + 2);
    if (buf == NULL) {
        ctx->oom = true;
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, CFG_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            cfg_error(ctx, 0, NULL, "cannot read: %s", strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > CFG_FILE_MAX) {
            cfg_error(ctx, 0, NULL, "too large (more than %d bytes)", CFG_FILE_MAX);
            goto fail;
        }
    }
    buf[len] = '\0';
    close(fd);
    *len_out = len;
    return buf;
fail:
    if (buf != NULL)
        pskgw_free_secret(buf, CFG_FILE_MAX + 2);
    close(fd);
    return NULL;
}

/* Validate one text (from a file or a string) into out. */
static void load_one(pskgw_config_diag_t *diag, const char *name, const char *basedir,
                     const char *text, size_t len, loaded_t *out, size_t *nerrors, bool *oom)
{
    cfg_ctx_t ctx = { .diag = diag, .file = name, .basedir = basedir };
    out->d.source = strdup(name);
    if (out->d.source == NULL) {
        *oom = true;
        return;
    }
    const char *nul = memchr(text, '\0', len);
    if (nul != NULL) {
        unsigned line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        cfg_error(&ctx, line, NULL, "contains a NUL byte (not a text file)");
    } else {
        load_text(&ctx, text, out);
    }
    out->ok = ctx.nerrors == 0 && !ctx.oom;
    *nerrors += ctx.nerrors;
    *oom = *oom || ctx.oom;
}

/* ---- cross-file checks ---- */

typedef struct {
    int family;
    unsigned char a[16];
} addr_t;

static bool parse_addr(const char *s, addr_t *out)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return false;
    if (inet_pton(AF_INET, s, out->a) == 1) {
        out->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, out->a) == 1) {
        out->family = AF_INET6;
        return true;
    }
    return false;
}

static bool addr_wild(const addr_t *a)
{
    static const unsigned char zero[16];
    return memcmp(a->a, zero, a->family == AF_INET ? 4 : 16) == 0;
}

/* Could two binds of the same port collide? Equal addresses, or a wildcard on either side. */
static bool addr_overlap(const char *x, const char *y)
{
    addr_t a, b;
    if (!parse_addr(x, &a) || !parse_addr(y, &b))
        return false;
    if (addr_wild(&a) || addr_wild(&b))
        return true;
    return a.family == b.family && memcmp(a.a, b.a, a.family == AF_INET ? 4 : 16) == 0;
}

typedef struct {
    pskgw_config_diag_t *diag;
    bool *oom;
    size_t nerrors;
} xctx_t;

static void xerror(xctx_t *x, const char *file, unsigned line, const char *path, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));
static void xerror(xctx_t *x, const char *file, unsigned line, const char *path, const char *fmt,
                   ...)
{
    va_list ap;
    x->nerrors++;
    va_start(ap, fmt);
    cfg_diag_add(x->diag, x->oom, PSKGW_CONFIG_SEV_ERROR, file, line, path, fmt, ap);
    va_end(ap);
}

static void check_domains(xctx_t *x, loaded_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i && l[i].ok; j++) {
            if (l[j].ok && strcmp(l[i].d.name, l[j].d.name) == 0)
                xerror(x, l[i].d.source, l[i].domain_line, "domain",
                       "\"%s\" is already defined in %s:%u", l[i].d.name, l[j].d.source,
                       l[j].domain_line);
        }
    }
}

static void check_listeners(xctx_t *x, loaded_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!l[i].ok)
            continue;
        for (size_t li = 0; li < l[i].d.nlisteners; li++) {
            const pskgw_config_listener_t *a = &l[i].d.listeners[li];
            if (a->port == 0)
                continue;
            bool found = false;
            for (size_t j = 0; j <= i && !found; j++) {
                if (!l[j].ok)
                    continue;
                size_t end = j == i ? li : l[j].d.nlisteners;
                for (size_t lj = 0; lj < end && !found; lj++) {
                    const pskgw_config_listener_t *b = &l[j].d.listeners[lj];
                    if (b->proto != a->proto || b->port != a->port ||
                        !addr_overlap(a->address, b->address))
                        continue;
                    char p[CFG_PATH_MAX];
                    cfg_path_index(p, "listeners", li);
                    xerror(x, l[i].d.source, a->line, p,
                           "%s %s port %u is already used by listener \"%s\" of domain \"%s\" "
                           "(%s:%u)",
                           pskgw_config_proto_name(a->proto), a->address, (unsigned)a->port,
                           b->name, l[j].d.name, l[j].d.source, b->line);
                    found = true;
                }
            }
        }
    }
}

/* Files written by sinks must not be shared. A spool path is a directory in which the sink
 * set writes "<domain>-<sink>[-wN].spool" and ".offset" (sinks/spool.h): several sinks and
 * domains may share one spool directory as long as those names differ ("a-b" + "c" and "a" +
 * "b-c" would not). File-sink paths and dead-letter files must be unique, and none may be a
 * spool directory. */
typedef struct {
    const char *path;
    bool spool;     /* path is a spool directory; name is the spool file name */
    char name[130]; /* "<domain>-<sink>" (both at most 64 characters) */
    const char *file;
    unsigned line;
    char what[CFG_PATH_MAX];
    const char *domain;
} outfile_t;

/* Equal paths, ignoring trailing slashes ("/var/spool/" is "/var/spool"). */
static bool same_path(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    while (na > 1 && a[na - 1] == '/')
        na--;
    while (nb > 1 && b[nb - 1] == '/')
        nb--;
    return na == nb && memcmp(a, b, na) == 0;
}

static void check_outputs(xctx_t *x, loaded_t *l, size_t n)
{
    size_t cap = 0, used = 0;
    for (size_t i = 0; i < n; i++)
        cap += l[i].ok ? 3 * l[i].d.nsinks : 0;
    if (cap == 0)
        return;
    outfile_t *o = calloc(cap, sizeof(*o));
    if (o == NULL) {
        *x->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!l[i].ok)
            continue;
        for (size_t k = 0; k < l[i].d.nsinks; k++) {
            const pskgw_config_sink_t *s = &l[i].d.sinks[k];
            const char *paths[3] = { s->has_spool ? s->spool.path : NULL,
                                     s->type == PSKGW_CONFIG_SINK_FILE ? s->file.path : NULL,
                                     s->type == PSKGW_CONFIG_SINK_HTTP ? s->http.dead_letter_path
                                                                       : NULL };
            const char *keys[3] = { "spool.path", "path", "dead_letter_path" };
            for (size_t m = 0; m < 3; m++) {
                if (paths[m] == NULL || strcmp(paths[m], "-") == 0)
                    continue;
                outfile_t *cur = &o[used];
                cur->path = paths[m];
                cur->spool = m == 0;
                if (cur->spool)
                    snprintf(cur->name, sizeof(cur->name), "%s-%s", l[i].d.name ? l[i].d.name : "",
                             s->name ? s->name : "");
                cur->file = l[i].d.source;
                cur->line = s->line;
                cur->domain = l[i].d.name;
                snprintf(cur->what, sizeof(cur->what), "sinks[%zu].%s", k, keys[m]);
                for (size_t e = 0; e < used; e++) {
                    if (!same_path(o[e].path, cur->path))
                        continue;
                    if (!o[e].spool) {
                        xerror(x, cur->file, cur->line, cur->what,
                               "\"%s\" is also written by %s of domain \"%s\" (%s:%u)", cur->path,
                               o[e].what, o[e].domain, o[e].file, o[e].line);
                        break;
                    }
                    if (!cur->spool) {
                        xerror(x, cur->file, cur->line, cur->what,
                               "\"%s\" is the spool directory of %s of domain \"%s\" (%s:%u)",
                               cur->path, o[e].what, o[e].domain, o[e].file, o[e].line);
                        break;
                    }
                    if (strcmp(o[e].name, cur->name) == 0) {
                        xerror(x, cur->file, cur->line, cur->what,
                               "spool file \"%s.spool\" in \"%s\" is also written by %s of domain "
                               "\"%s\" (%s:%u); rename a sink or use another directory",
                               cur->name, cur->path, o[e].what, o[e].domain, o[e].file, o[e].line);
                        break;
                    }
                }
                used++;
            }
        }
    }
    free(o);
}

/* admin and log are process-wide: files that set them must agree. */
/* Two admin tokens are the same (both absent, or equal bytes). */
static bool token_eq(const pskgw_config_secret_t *a, const pskgw_config_secret_t *b)
{
    if (a->data == NULL || b->data == NULL)
        return a->data == b->data;
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static int merge_globals(xctx_t *x, loaded_t *l, size_t n, pskgw_config_t *cfg)
{
    const loaded_t *admin_from = NULL, *log_from = NULL;
    cfg->log.level = PSKGW_LOG_INFO;
    cfg->log.format = PSKGW_LOG_FORMAT_TEXT;
    for (size_t i = 0; i < n; i++) {
        const pskgw_config_domain_t *d = &l[i].d;
        if (!l[i].ok)
            continue;
        if (d->has_admin) {
            if (admin_from == NULL) {
                admin_from = &l[i];
            } else if (strcmp(admin_from->d.admin.address, d->admin.address) != 0 ||
                       admin_from->d.admin.port != d->admin.port ||
                       !token_eq(&admin_from->d.admin.token, &d->admin.token)) {
                xerror(x, d->source, l[i].admin_line, "admin",
                       "differs from the admin endpoint of %s:%u (it is process-wide)",
                       admin_from->d.source, admin_from->admin_line);
            }
        }
        if (d->has_log) {
            if (log_from == NULL) {
                log_from = &l[i];
            } else if (log_from->d.log.level != d->log.level ||
                       log_from->d.log.format != d->log.format) {
                xerror(x, d->source, l[i].log_line, "log",
                       "differs from the log settings of %s:%u (they are process-wide)",
                       log_from->d.source, log_from->log_line);
            }
        }
    }
    if (admin_from != NULL) {
        const pskgw_config_admin_t *a = &admin_from->d.admin;
        for (size_t i = 0; i < n && a->port != 0; i++) {
            if (!l[i].ok)
                continue;
            for (size_t k = 0; k < l[i].d.nlisteners; k++) {
                const pskgw_config_listener_t *t = &l[i].d.listeners[k];
                if (t->proto == PSKGW_CONFIG_PROTO_TCP && t->port == a->port &&
                    addr_overlap(t->address, a->address)) {
                    char p[CFG_PATH_MAX];
                    cfg_path_index(p, "listeners", k);
                    xerror(x, l[i].d.source, t->line, p,
                           "tcp port %u is also the admin endpoint's (%s:%u)", (unsigned)t->port,
                           admin_from->d.source, admin_from->admin_line);
                }
            }
        }
        cfg->has_admin = true;
        cfg->admin.port = a->port;
        cfg->admin.address = strdup(a->address);
        if (cfg->admin.address == NULL)
            return PSKGW_ENOMEM;
        if (a->token.data != NULL) {
            cfg->admin.token.data = strndup(a->token.data, a->token.len);
            if (cfg->admin.token.data == NULL)
                return PSKGW_ENOMEM;
            cfg->admin.token.len = a->token.len;
        }
    }
    if (log_from != NULL) {
        cfg->has_log = true;
        cfg->log = log_from->d.log;
    }
    return 0;
}

static void free_loaded(loaded_t *l, size_t n)
{
    for (size_t i = 0; l != NULL && i < n; i++)
        cfg_release(&cfg_domain_schema, &l[i].d);
    pskgw_secmem_free(l);
}

static int finish_load(pskgw_config_diag_t *diag, loaded_t *l, size_t n, size_t nerrors, bool oom,
                       pskgw_config_t **out)
{
    xctx_t x = { .diag = diag, .oom = &oom, .nerrors = nerrors };
    pskgw_config_t *cfg = NULL;
    int rc;

    if (!oom) {
        check_domains(&x, l, n);
        check_listeners(&x, l, n);
        check_outputs(&x, l, n);
    }
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || oom) {
        rc = PSKGW_ENOMEM;
        goto fail;
    }
    rc = merge_globals(&x, l, n, cfg);
    if (rc < 0 || oom) {
        rc = PSKGW_ENOMEM;
        goto fail;
    }
    if (x.nerrors > 0) {
        rc = PSKGW_ECONFIG;
        goto fail;
    }
    cfg->domains = pskgw_secmem_calloc(n, sizeof(*cfg->domains)); /* they hold KEKs */
    if (cfg->domains == NULL) {
        rc = PSKGW_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        cfg->domains[i] = l[i].d;
    cfg->ndomains = n;
    pskgw_secmem_free(l);
    *out = cfg;
    return 0;
fail:
    pskgw_config_free(cfg);
    free_loaded(l, n);
    return rc;
}

int pskgw_config_load(const char *const *paths, size_t npaths, pskgw_config_t **out,
                      pskgw_config_diag_t *diag)
{
    size_t nerrors = 0;
    bool oom = false;
    if (paths == NULL || npaths == 0 || out == NULL)
        return PSKGW_EINVAL;
    loaded_t *l = pskgw_secmem_calloc(npaths, sizeof(*l)); /* domains hold KEKs */
    if (l == NULL)
        return PSKGW_ENOMEM;
    for (size_t i = 0; i < npaths && !oom; i++) {
        cfg_ctx_t ctx = { .diag = diag, .file = paths[i] != NULL ? paths[i] : "(null)" };
        size_t len = 0;
        if (paths[i] == NULL) {
            free_loaded(l, npaths);
            return PSKGW_EINVAL;
        }
        char *text = read_file(&ctx, paths[i], &len);
        if (text == NULL) {
            nerrors += ctx.nerrors;
            oom = oom || ctx.oom;
            continue;
        }
        char *dir = dir_of(paths[i], &oom);
        if (!oom)
            load_one(diag, paths[i], dir, text, len, &l[i], &nerrors, &oom);
        free(dir);
        /* The text may hold an inline secret. */
        pskgw_free_secret(text, CFG_FILE_MAX + 2);
    }
    return finish_load(diag, l, npaths, nerrors, oom, out);
}

int pskgw_config_load_strings(const char *const *names, const char *const *texts, size_t n,
                              pskgw_config_t **out, pskgw_config_diag_t *diag)
{
    size_t nerrors = 0;
    bool oom = false;
    if (names == NULL || texts == NULL || n == 0 || out == NULL)
        return PSKGW_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (names[i] == NULL || texts[i] == NULL)
            return PSKGW_EINVAL;
    }
    loaded_t *l = pskgw_secmem_calloc(n, sizeof(*l)); /* domains hold KEKs */
    if (l == NULL)
        return PSKGW_ENOMEM;
    for (size_t i = 0; i < n && !oom; i++)
        load_one(diag, names[i], NULL, texts[i], strlen(texts[i]), &l[i], &nerrors, &oom);
    return finish_load(diag, l, n, nerrors, oom, out);
}

int pskgw_config_load_string(const char *name, const char *text, pskgw_config_t **out,
                             pskgw_config_diag_t *diag)
{
    return pskgw_config_load_strings(&name, &text, 1, out, diag);
}

void pskgw_config_free(pskgw_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; cfg->domains != NULL && i < cfg->ndomains; i++)
        cfg_release(&cfg_domain_schema, &cfg->domains[i]);
    pskgw_secmem_free(cfg->domains);
    free(cfg->admin.address);
    cfg_secret_free(&cfg->admin.token);
    free(cfg);
}

const pskgw_config_domain_t *pskgw_config_find_domain(const pskgw_config_t *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && name != NULL && i < cfg->ndomains; i++) {
        if (strcmp(cfg->domains[i].name, name) == 0)
            return &cfg->domains[i];
    }
    return NULL;
}
