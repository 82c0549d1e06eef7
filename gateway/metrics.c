#include "gateway/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pskgw_metrics_init(pskgw_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
}

void pskgw_metrics_deinit(pskgw_metrics_t *m)
{
    free(m->text);
    memset(m, 0, sizeof(*m));
}

void pskgw_metrics_reset(pskgw_metrics_t *m)
{
    m->len = 0;
    m->failed = 0;
    if (m->text)
        m->text[0] = '\0';
}

static void append(pskgw_metrics_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append(pskgw_metrics_t *m, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (m->failed)
        return;
    for (;;) {
        size_t room = m->cap - m->len;

        va_start(ap, fmt);
        n = vsnprintf(m->text ? m->text + m->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            m->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            m->len += (size_t)n;
            return;
        }
        size_t ncap = m->cap ? m->cap * 2 : 4096;
        while (ncap < m->len + (size_t)n + 1)
            ncap *= 2;
        char *t = realloc(m->text, ncap);
        if (!t) {
            m->failed = 1;
            return;
        }
        m->text = t;
        m->cap = ncap;
    }
}

void pskgw_metrics_family(pskgw_metrics_t *m, const char *name, const char *type, const char *help)
{
    append(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void pskgw_metrics_sample(pskgw_metrics_t *m, const char *name, const char *labels, uint64_t value)
{
    if (labels && *labels)
        append(m, "%s{%s} %" PRIu64 "\n", name, labels, value);
    else
        append(m, "%s %" PRIu64 "\n", name, value);
}

void pskgw_metrics_sample_f(pskgw_metrics_t *m, const char *name, const char *labels, double value)
{
    if (labels && *labels)
        append(m, "%s{%s} %.6g\n", name, labels, value);
    else
        append(m, "%s %.6g\n", name, value);
}

void pskgw_metrics_label(char *out, size_t cap, const char *key, const char *value)
{
    size_t o;
    int n = snprintf(out, cap, "%s=\"", key);

    if (n < 0 || (size_t)n + 2 > cap) { /* room for the closing quote and the NUL */
        if (cap)
            out[0] = '\0';
        return;
    }
    o = (size_t)n;
    for (const char *p = value; *p && o + 3 < cap; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}
