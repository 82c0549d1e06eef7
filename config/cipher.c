/* The PSK cipher suites a domain may name. Config does not link wolfSSL: this table is the
 * allowed set; dtls/ checks at start-up that the built library offers what was asked. */
#include "config/internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const pskgw_config_cipher_t ciphers[] = {
    { "PSK-AES128-CCM8", "PSK-AES128-CCM-8", 0xC0A8, false },
    { "PSK-AES128-GCM-SHA256", "PSK-AES128-GCM-SHA256", 0x00A8, false },
    { "PSK-AES128-CBC-SHA256", "PSK-AES128-CBC-SHA256", 0x00AE, false },
    { "PSK-AES128-CBC-SHA", "PSK-AES128-CBC-SHA", 0x008C, false },
    { "PSK-AES256-CBC-SHA", "PSK-AES256-CBC-SHA", 0x008D, false },
    { "PSK-AES256-GCM-SHA384", "PSK-AES256-GCM-SHA384", 0x00A9, false },
    { "PSK-AES256-CBC-SHA384", "PSK-AES256-CBC-SHA384", 0x00AF, false },
    { "PSK-AES128-CCM", "PSK-AES128-CCM", 0xC0A4, false },
    { "PSK-AES256-CCM", "PSK-AES256-CCM", 0xC0A5, false },
    { "PSK-AES256-CCM8", "PSK-AES256-CCM-8", 0xC0A9, false },
    { "ECDHE-PSK-AES128-CBC-SHA256", "ECDHE-PSK-AES128-CBC-SHA256", 0xC037, true },
    { "ECDHE-PSK-AES128-GCM-SHA256", "ECDHE-PSK-AES128-GCM-SHA256", 0xD001, true },
};

/* Other spellings accepted (wolfSSL's). */
static const struct {
    const char *alias;
    const char *name;
} aliases[] = {
    { "PSK-AES128-CCM-8", "PSK-AES128-CCM8" },
    { "PSK-AES256-CCM-8", "PSK-AES256-CCM8" },
};

const pskgw_config_cipher_t *pskgw_config_cipher_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        if (strcasecmp(name, aliases[i].alias) == 0) {
            name = aliases[i].name;
            break;
        }
    }
    for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++) {
        if (strcasecmp(name, ciphers[i].name) == 0)
            return &ciphers[i];
    }
    return NULL;
}

static bool contains_null(const char *s)
{
    for (; *s != '\0'; s++) {
        if (strncasecmp(s, "NULL", 4) == 0)
            return true;
    }
    return false;
}

/* Append s (and a ':' before it unless first) to buf of cap bytes. */
static void append(char *buf, size_t cap, const char *s)
{
    size_t used = strlen(buf);
    snprintf(buf + used, cap - used, "%s%s", used > 0 ? ":" : "", s);
}

void cfg_parse_ciphers(cfg_ctx_t *ctx, unsigned line, const char *path, const char *list,
                       pskgw_config_domain_t *d)
{
    char canon[PSKGW_CONFIG_MAX_CIPHERS * 40] = "";
    char wolf[PSKGW_CONFIG_MAX_CIPHERS * 40] = "";
    uint16_t ids[PSKGW_CONFIG_MAX_CIPHERS];
    size_t n = 0;
    bool bad = false;
    const char *p = list;

    while (*p != '\0') {
        const char *end = p + strcspn(p, ":, ");
        size_t len = (size_t)(end - p);
        char name[64];
        if (len == 0) {
            p = *end != '\0' ? end + 1 : end;
            continue;
        }
        if (len >= sizeof(name)) {
            cfg_error(ctx, line, path, "unknown cipher suite (name too long)");
            bad = true;
            p = *end != '\0' ? end + 1 : end;
            continue;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        p = *end != '\0' ? end + 1 : end;

        if (contains_null(name)) {
            cfg_error(ctx, line, path,
                      "\"%s\": NULL cipher suites are refused (they do not encrypt)", name);
            bad = true;
            continue;
        }
        const pskgw_config_cipher_t *c = pskgw_config_cipher_find(name);
        if (c == NULL) {
            cfg_error(ctx, line, path,
                      "\"%s\": unknown cipher suite (PSK suites only, see docs/CONFIG.md)", name);
            bad = true;
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            dup = dup || ids[i] == c->iana;
        if (dup) {
            cfg_error(ctx, line, path, "\"%s\": listed twice", name);
            bad = true;
            continue;
        }
        if (n == PSKGW_CONFIG_MAX_CIPHERS) {
            cfg_error(ctx, line, path, "at most %d cipher suites", PSKGW_CONFIG_MAX_CIPHERS);
            bad = true;
            break;
        }
        ids[n++] = c->iana;
        append(canon, sizeof(canon), c->name);
        append(wolf, sizeof(wolf), c->wolfssl);
    }
    if (bad)
        return;
    if (n == 0) {
        cfg_error(ctx, line, path, "must name at least one cipher suite");
        return;
    }
    char *a = strdup(canon);
    char *b = strdup(wolf);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        ctx->oom = true;
        return;
    }
    free(d->ciphers);
    free(d->ciphers_wolfssl);
    d->ciphers = a;
    d->ciphers_wolfssl = b;
    memcpy(d->cipher_ids, ids, n * sizeof(ids[0]));
    d->nciphers = n;
}
