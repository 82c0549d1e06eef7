/* Diagnostics: "file:line: path: message" lines collected for the caller. */
#include "config/internal.h"

#include "common/log.h"

#include <stdlib.h>
#include <string.h>

void pskgw_config_diag_init(pskgw_config_diag_t *diag)
{
    memset(diag, 0, sizeof(*diag));
}

void pskgw_config_diag_deinit(pskgw_config_diag_t *diag)
{
    if (diag == NULL)
        return;
    for (size_t i = 0; i < diag->nitems; i++) {
        pskgw_config_diag_item_t *it = &diag->items[i];
        free(it->file);
        free(it->path);
        free(it->message);
        free(it->text);
    }
    free(diag->items);
    memset(diag, 0, sizeof(*diag));
}

size_t pskgw_config_diag_print(const pskgw_config_diag_t *diag, FILE *out, unsigned what)
{
    size_t n = 0;
    if (diag == NULL || out == NULL)
        return 0;
    for (size_t i = 0; i < diag->nitems; i++) {
        const pskgw_config_diag_item_t *it = &diag->items[i];
        unsigned bit = it->severity == PSKGW_CONFIG_SEV_ERROR ? PSKGW_CONFIG_PRINT_ERRORS
                                                              : PSKGW_CONFIG_PRINT_WARNINGS;
        if ((what & bit) == 0)
            continue;
        fprintf(out, "%s\n", it->text);
        n++;
    }
    return n;
}

static char *vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    if (vsnprintf(s, (size_t)n + 1, fmt, ap) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

static char *make_text(pskgw_config_severity_t sev, const char *file, unsigned line,
                       const char *path, const char *msg)
{
    const char *w = sev == PSKGW_CONFIG_SEV_WARNING ? "warning: " : "";
    if (line == 0 && path == NULL)
        return format("%s: %s%s", file, w, msg);
    if (line == 0)
        return format("%s: %s: %s%s", file, path, w, msg);
    if (path == NULL)
        return format("%s:%u: %s%s", file, line, w, msg);
    return format("%s:%u: %s: %s%s", file, line, path, w, msg);
}

void cfg_diag_add(pskgw_config_diag_t *diag, bool *oom, pskgw_config_severity_t sev,
                  const char *file, unsigned line, const char *path, const char *fmt, va_list ap)
{
    pskgw_config_diag_item_t it = { 0 };
    char *msg = vformat(fmt, ap);
    if (msg == NULL) {
        *oom = true;
        return;
    }
    if (sev == PSKGW_CONFIG_SEV_WARNING) {
        char *t = make_text(sev, file, line, path, msg);
        if (t != NULL)
            PSKGW_WARN("config: %s", t);
        free(t);
    }
    if (diag == NULL) {
        free(msg);
        return;
    }
    if (diag->nitems == diag->cap) {
        size_t cap = diag->cap == 0 ? 16 : diag->cap * 2;
        pskgw_config_diag_item_t *items = realloc(diag->items, cap * sizeof(*items));
        if (items == NULL) {
            free(msg);
            *oom = true;
            return;
        }
        diag->items = items;
        diag->cap = cap;
    }
    it.severity = sev;
    it.line = line;
    it.message = msg;
    it.file = strdup(file);
    it.path = path != NULL ? strdup(path) : NULL;
    it.text = make_text(sev, file, line, path, msg);
    if (it.file == NULL || (path != NULL && it.path == NULL) || it.text == NULL) {
        free(it.file);
        free(it.path);
        free(it.text);
        free(msg);
        *oom = true;
        return;
    }
    diag->items[diag->nitems++] = it;
    if (sev == PSKGW_CONFIG_SEV_ERROR)
        diag->nerrors++;
    else
        diag->nwarnings++;
}

static void add_va(cfg_ctx_t *ctx, pskgw_config_severity_t sev, unsigned line, const char *path,
                   const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void add_va(cfg_ctx_t *ctx, pskgw_config_severity_t sev, unsigned line, const char *path,
                   const char *fmt, va_list ap)
{
    cfg_diag_add(ctx->diag, &ctx->oom, sev, ctx->file, line, path, fmt, ap);
}

static void add(cfg_ctx_t *ctx, pskgw_config_severity_t sev, unsigned line, const char *path,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add(cfg_ctx_t *ctx, pskgw_config_severity_t sev, unsigned line, const char *path,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_va(ctx, sev, line, path, fmt, ap);
    va_end(ap);
}

void cfg_error(cfg_ctx_t *ctx, unsigned line, const char *path, const char *fmt, ...)
{
    va_list ap;
    ctx->nerrors++;
    if (ctx->nkept >= PSKGW_CONFIG_MAX_DIAG_PER_FILE) {
        if (ctx->nkept == PSKGW_CONFIG_MAX_DIAG_PER_FILE) {
            add(ctx, PSKGW_CONFIG_SEV_ERROR, 0, NULL, "too many errors; the rest are not shown");
            if (ctx->diag != NULL)
                ctx->diag->truncated = true;
            ctx->nkept++;
        }
        return;
    }
    ctx->nkept++;
    va_start(ap, fmt);
    add_va(ctx, PSKGW_CONFIG_SEV_ERROR, line, path, fmt, ap);
    va_end(ap);
}

void cfg_warn(cfg_ctx_t *ctx, unsigned line, const char *path, const char *fmt, ...)
{
    va_list ap;
    if (ctx->nkept >= PSKGW_CONFIG_MAX_DIAG_PER_FILE)
        return;
    va_start(ap, fmt);
    add_va(ctx, PSKGW_CONFIG_SEV_WARNING, line, path, fmt, ap);
    va_end(ap);
}
