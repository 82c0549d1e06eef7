/* deny_file: identities or ROTPublicUIDs refused by a domain (pure: reads one file). */
#include "config/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DENY_ENTRY_MAX 256
#define DENY_MAX       1000000

static int cmp(const void *a, const void *b)
{
    return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* One line without its comment and surrounding blanks: 1 (an entry in *e), 0 (none), -1 (not
 * hex or too long). */
static int entry_of(char *line, char **e)
{
    char *h = strchr(line, '#');
    size_t n;

    if (h)
        *h = '\0';
    while (isspace((unsigned char)*line))
        line++;
    n = strlen(line);
    while (n > 0 && isspace((unsigned char)line[n - 1]))
        line[--n] = '\0';
    if (n == 0)
        return 0;
    if (n > DENY_ENTRY_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)line[i]))
            return -1;
    }
    *e = line;
    return 1;
}

int cfg_read_deny(cfg_ctx_t *ctx, unsigned line, const char *path, const char *file, char ***out,
                  size_t *nout)
{
    FILE *f = fopen(file, "r");
    char buf[DENY_ENTRY_MAX + 64];
    char **list = NULL;
    size_t n = 0, cap = 0, lineno = 0;

    if (!f) {
        cfg_error(ctx, line, path, "cannot read \"%s\": %s", file, strerror(errno));
        return -1;
    }
    while (fgets(buf, sizeof(buf), f)) {
        char *e = NULL;
        int r;

        lineno++;
        if (!strchr(buf, '\n') && !feof(f)) {
            cfg_error(ctx, line, path, "%s:%zu: line too long", file, lineno);
            goto fail;
        }
        r = entry_of(buf, &e);
        if (r < 0) {
            cfg_error(ctx, line, path, "%s:%zu: not an identity or ROTPublicUID (hex)", file,
                      lineno);
            goto fail;
        }
        if (r == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **l = ncap <= DENY_MAX ? realloc(list, ncap * sizeof(*l)) : NULL;

            if (!l) {
                cfg_error(ctx, line, path, "%s: too many entries", file);
                goto fail;
            }
            list = l;
            cap = ncap;
        }
        if (!(list[n] = strdup(e))) {
            cfg_error(ctx, line, path, "out of memory");
            goto fail;
        }
        n++;
    }
    fclose(f);
    if (n > 1)
        qsort(list, n, sizeof(*list), cmp);
    *out = list;
    *nout = n;
    return 0;
fail:
    fclose(f);
    cfg_deny_free(list, n);
    return -1;
}

void cfg_deny_free(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

bool pskgw_config_denied(const pskgw_config_domain_t *d, const char *id)
{
    if (!id || d->ndeny == 0)
        return false;
    return bsearch(&id, d->deny, d->ndeny, sizeof(*d->deny), cmp) != NULL;
}
