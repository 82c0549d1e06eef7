/* The table walker: reads a libconfig group into a C object as a cfg_schema_t describes it,
 * checking types, ranges, enums, unknown and missing keys, and reporting every problem with its
 * line and path. Nothing here knows a particular key: that is schema.c's table. */
#include "config/internal.h"

#include "common/wipe.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Longest string accepted in any list element (headers, properties). */
#define CFG_LIST_STR_MAX 4096

static void *at(void *obj, size_t off)
{
    return (char *)obj + off;
}

/* A path longer than CFG_PATH_MAX is cut: it only labels a message. */
void cfg_path_member(char *out, const char *parent, const char *name)
{
    int n;
    if (parent == NULL || parent[0] == '\0')
        n = snprintf(out, CFG_PATH_MAX, "%s", name);
    else
        n = snprintf(out, CFG_PATH_MAX, "%s.%s", parent, name);
    if (n >= CFG_PATH_MAX)
        out[CFG_PATH_MAX - 1] = '\0';
}

void cfg_path_index(char *out, const char *parent, size_t i)
{
    if (snprintf(out, CFG_PATH_MAX, "%s[%zu]", parent, i) >= CFG_PATH_MAX)
        out[CFG_PATH_MAX - 1] = '\0';
}

unsigned cfg_line(const config_setting_t *s)
{
    while (s != NULL) {
        if (config_setting_source_line(s) > 0)
            return config_setting_source_line(s);
        s = config_setting_parent(s);
    }
    return 1;
}

const char *cfg_type_words(int type)
{
    switch (type) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a floating-point number";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array [...]";
    case CONFIG_TYPE_LIST:
        return "a list (...)";
    case CONFIG_TYPE_GROUP:
        return "a group {...}";
    default:
        return "nothing";
    }
}

static void store_uint(void *p, unsigned width, uint64_t v)
{
    switch (width) {
    case 1: {
        uint8_t x = (uint8_t)v;
        memcpy(p, &x, 1);
        break;
    }
    case 2: {
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, 4);
        break;
    }
    default: {
        uint64_t x = v;
        memcpy(p, &x, 8);
        break;
    }
    }
}

static void store_int(void *p, int v)
{
    memcpy(p, &v, sizeof(v));
}

static bool applies(const cfg_key_t *k, unsigned mask)
{
    return k->when == 0 || (k->when & mask) != 0;
}

static void free_str_field(const cfg_key_t *k, char **field)
{
    (void)k;
    /* Any string may be an inline secret: wipe them all, it costs nothing here. */
    pskgw_free_secret_str(*field);
    *field = NULL;
}

static void defaults(cfg_ctx_t *ctx, const cfg_schema_t *schema, void *obj, unsigned mask)
{
    for (size_t i = 0; i < schema->nkeys; i++) {
        const cfg_key_t *k = &schema->keys[i];
        if (!applies(k, mask) || (k->flags & F_DISCR))
            continue;
        switch (k->type) {
        case KT_STR:
            free_str_field(k, at(obj, k->off));
            if (k->def_str != NULL) {
                char *d = strdup(k->def_str);
                if (d == NULL)
                    ctx->oom = true;
                *(char **)at(obj, k->off) = d;
            }
            break;
        case KT_UINT:
            store_uint(at(obj, k->off), k->width, k->def);
            break;
        case KT_BOOL:
            *(bool *)at(obj, k->off) = k->def != 0;
            break;
        case KT_ENUM:
            store_int(at(obj, k->off), (int)k->def);
            break;
        case KT_GROUP:
            if (k->present_off != NO_OFF)
                *(bool *)at(obj, k->present_off) = false;
            defaults(ctx, k->sub, at(obj, k->off), ~0u);
            break;
        case KT_GROUPLIST:
        case KT_STRLIST:
            break;
        }
    }
}

void cfg_apply_defaults(cfg_ctx_t *ctx, const cfg_schema_t *schema, void *obj)
{
    defaults(ctx, schema, obj, ~0u);
}

/* Levenshtein distance of two short names (for "did you mean"); large for long ones. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

static const char *suggest(const cfg_schema_t *schema, const char *name, unsigned mask)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < schema->nkeys; i++) {
        const cfg_key_t *k = &schema->keys[i];
        if (!applies(k, mask))
            continue;
        size_t d = distance(name, k->name);
        if (d < bestd && d * 2 <= strlen(k->name)) {
            bestd = d;
            best = k->name;
        }
    }
    return best;
}

/* Names of the discriminator values in `when`, as `"a" or "b"`. */
static void when_words(const cfg_key_t *discr, unsigned when, char *out, size_t cap)
{
    size_t used = 0;
    size_t n = 0;
    out[0] = '\0';
    for (const cfg_enum_t *e = discr->enums; e->name != NULL; e++) {
        if ((when & (1u << e->value)) == 0)
            continue;
        int w = snprintf(out + used, cap - used, "%s\"%s\"", n > 0 ? " or " : "", e->name);
        if (w < 0 || (size_t)w >= cap - used)
            return;
        used += (size_t)w;
        n++;
    }
}

static void enum_words(const cfg_enum_t *enums, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (const cfg_enum_t *e = enums; e->name != NULL; e++) {
        int w = snprintf(out + used, cap - used, "%s\"%s\"", e == enums ? "" : ", ", e->name);
        if (w < 0 || (size_t)w >= cap - used)
            return;
        used += (size_t)w;
    }
}

static bool has_ctrl(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/* Check a string value; 0 or -1 (reported). */
static int check_str(cfg_ctx_t *ctx, const cfg_key_t *k, const config_setting_t *m,
                     const char *path, const char *v)
{
    size_t len = strlen(v);
    unsigned line = cfg_line(m);
    uint64_t min = k->min;
    if ((k->flags & F_NOEMPTY) && min < 1)
        min = 1;
    if (len == 0 && min >= 1) {
        cfg_error(ctx, line, path, "must not be empty");
        return -1;
    }
    if (len < min || (k->max > 0 && len > k->max)) {
        cfg_error(ctx, line, path, "must be %" PRIu64 " to %" PRIu64 " characters long (got %zu)",
                  min, k->max, len);
        return -1;
    }
    if (has_ctrl(v)) {
        cfg_error(ctx, line, path, "must not contain control characters");
        return -1;
    }
    return 0;
}

static int read_enum(cfg_ctx_t *ctx, const cfg_key_t *k, const config_setting_t *m,
                     const char *path, int *value)
{
    char words[256];
    if (config_setting_type(m) != CONFIG_TYPE_STRING) {
        enum_words(k->enums, words, sizeof(words));
        cfg_error(ctx, cfg_line(m), path, "must be one of %s (got %s)", words,
                  cfg_type_words(config_setting_type(m)));
        return -1;
    }
    const char *v = config_setting_get_string(m);
    for (const cfg_enum_t *e = k->enums; e->name != NULL; e++) {
        if (strcmp(e->name, v) == 0) {
            *value = e->value;
            return 0;
        }
    }
    enum_words(k->enums, words, sizeof(words));
    /* The value is echoed only when short and printable: it is not a secret key. */
    if (strlen(v) <= 32 && !has_ctrl(v))
        cfg_error(ctx, cfg_line(m), path, "must be one of %s (got \"%s\")", words, v);
    else
        cfg_error(ctx, cfg_line(m), path, "must be one of %s", words);
    return -1;
}

static void read_strlist(cfg_ctx_t *ctx, const cfg_key_t *k, const config_setting_t *m,
                         const char *path, void *obj)
{
    int t = config_setting_type(m);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
        cfg_error(ctx, cfg_line(m), path, "must be an array of strings [ \"...\", ... ] (got %s)",
                  cfg_type_words(t));
        return;
    }
    size_t n = (size_t)config_setting_length(m);
    if (n < k->min || n > k->max) {
        cfg_error(ctx, cfg_line(m), path, "must have %" PRIu64 " to %" PRIu64 " entries (got %zu)",
                  k->min, k->max, n);
        return;
    }
    char **arr = n > 0 ? calloc(n, sizeof(*arr)) : NULL;
    if (n > 0 && arr == NULL) {
        ctx->oom = true;
        return;
    }
    *(char ***)at(obj, k->off) = arr;
    *(size_t *)at(obj, k->count_off) = n;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        char p[CFG_PATH_MAX];
        cfg_path_index(p, path, i);
        if (e == NULL || config_setting_type(e) != CONFIG_TYPE_STRING) {
            cfg_error(ctx, cfg_line(e != NULL ? e : m), p, "must be a string (got %s)",
                      e != NULL ? cfg_type_words(config_setting_type(e)) : "nothing");
            continue;
        }
        const char *v = config_setting_get_string(e);
        size_t len = strlen(v);
        if (len == 0) {
            cfg_error(ctx, cfg_line(e), p, "must not be empty");
            continue;
        }
        if (len > CFG_LIST_STR_MAX) {
            cfg_error(ctx, cfg_line(e), p, "must be at most %d characters long (got %zu)",
                      CFG_LIST_STR_MAX, len);
            continue;
        }
        if (has_ctrl(v)) {
            cfg_error(ctx, cfg_line(e), p, "must not contain control characters");
            continue;
        }
        arr[i] = strdup(v);
        if (arr[i] == NULL)
            ctx->oom = true;
    }
}

static void read_grouplist(cfg_ctx_t *ctx, const cfg_key_t *k, const config_setting_t *m,
                           const char *path, void *obj)
{
    int t = config_setting_type(m);
    if (t != CONFIG_TYPE_LIST) {
        cfg_error(ctx, cfg_line(m), path, "must be a list ( { ... }, ... ) (got %s)",
                  cfg_type_words(t));
        return;
    }
    size_t n = (size_t)config_setting_length(m);
    if (n < k->min || n > k->max) {
        cfg_error(ctx, cfg_line(m), path, "must have %" PRIu64 " to %" PRIu64 " entries (got %zu)",
                  k->min, k->max, n);
        return;
    }
    const cfg_schema_t *sub = k->sub;
    char *arr = calloc(n, sub->size);
    if (arr == NULL) {
        ctx->oom = true;
        return;
    }
    *(void **)at(obj, k->off) = arr;
    *(size_t *)at(obj, k->count_off) = n;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        char p[CFG_PATH_MAX];
        cfg_path_index(p, path, i);
        if (e == NULL || config_setting_type(e) != CONFIG_TYPE_GROUP) {
            cfg_error(ctx, cfg_line(e != NULL ? e : m), p, "must be a group { ... } (got %s)",
                      e != NULL ? cfg_type_words(config_setting_type(e)) : "nothing");
            continue;
        }
        cfg_walk_group(ctx, sub, e, p, i, arr + i * sub->size);
    }
}

/* libconfig 1.5 silently truncates an integer written without an L suffix to 32 bits
 * ("4294967296" reads as 0). Read the number as written on the setting's line to catch that:
 * returns true with the text in buf and its value (or *overflow) when `name = <number>` is
 * found on that line. */
static bool raw_int(const cfg_ctx_t *ctx, unsigned line, const char *name, char *buf, size_t cap,
                    long long *v, bool *overflow)
{
    const char *p = ctx->text;
    size_t nl = strlen(name);
    for (unsigned l = 1; p != NULL && l < line; l++) {
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    if (p == NULL || line == 0)
        return false;
    const char *eol = p + strcspn(p, "\n");
    for (const char *q = p; q + nl <= eol; q++) {
        if (strncmp(q, name, nl) != 0)
            continue;
        if (q > p && (isalnum((unsigned char)q[-1]) || q[-1] == '_' || q[-1] == '-'))
            continue;
        const char *r = q + nl;
        while (r < eol && (*r == ' ' || *r == '\t'))
            r++;
        if (r >= eol || (*r != '=' && *r != ':'))
            continue;
        r++;
        while (r < eol && (*r == ' ' || *r == '\t'))
            r++;
        size_t k = 0;
        while (r < eol && k + 1 < cap &&
               (isxdigit((unsigned char)*r) || *r == 'x' || *r == 'X' || *r == '-' || *r == '+'))
            buf[k++] = *r++;
        buf[k] = '\0';
        if (k == 0)
            return false;
        bool hex = (buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X'));
        char *end = NULL;
        errno = 0;
        *v = strtoll(buf, &end, hex ? 16 : 10);
        if (end == NULL || *end != '\0')
            return false;
        *overflow = errno == ERANGE || k + 1 >= cap;
        return true;
    }
    return false;
}

/* An unsigned integer key: range, the missing L suffix, the allowed choices. */
static void read_uint(cfg_ctx_t *ctx, const cfg_key_t *k, const config_setting_t *m,
                      const char *path, void *obj)
{
    int t = config_setting_type(m);
    unsigned line = cfg_line(m);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        cfg_error(ctx, line, path, "must be an integer (got %s)", cfg_type_words(t));
        return;
    }
    long long v = config_setting_get_int64(m);
    char raw[32];
    long long rv = 0;
    bool overflow = false;
    if (t == CONFIG_TYPE_INT && ctx->text != NULL &&
        raw_int(ctx, line, k->name, raw, sizeof(raw), &rv, &overflow) &&
        (overflow || rv > INT_MAX || rv < INT_MIN)) {
        /* A value that fits 64 bits was written without the L that libconfig needs: say
         * so, also when it is within range (the range alone would read as a riddle). */
        bool needs_l = !overflow && rv > INT_MAX;
        if (needs_l && (uint64_t)rv >= k->min && (uint64_t)rv <= k->max)
            cfg_error(ctx, line, path,
                      "%s is above 2147483647 and needs an L suffix (write %sL): without "
                      "it libconfig does not read it as written",
                      raw, raw);
        else
            cfg_error(ctx, line, path, "must be between %" PRIu64 " and %" PRIu64 " (got %s)%s",
                      k->min, k->max, raw,
                      needs_l ? "; numbers above 2147483647 also need an L suffix" : "");
        return;
    }
    if (v < 0 || (uint64_t)v < k->min || (uint64_t)v > k->max) {
        cfg_error(ctx, line, path, "must be between %" PRIu64 " and %" PRIu64 " (got %lld)", k->min,
                  k->max, v);
        return;
    }
    if (k->choices != NULL) {
        bool ok = false;
        char words[128];
        size_t used = 0;
        words[0] = '\0';
        for (const uint64_t *c = k->choices; *c != 0; c++) {
            if (*c == (uint64_t)v)
                ok = true;
            int w = snprintf(words + used, sizeof(words) - used, "%s%" PRIu64,
                             c == k->choices ? "" : " or ", *c);
            if (w > 0 && (size_t)w < sizeof(words) - used)
                used += (size_t)w;
        }
        if (!ok) {
            cfg_error(ctx, line, path, "must be %s (got %lld)", words, v);
            return;
        }
    }
    store_uint(at(obj, k->off), k->width, (uint64_t)v);
}

static void read_value(cfg_ctx_t *ctx, const cfg_key_t *k, const config_setting_t *m,
                       const char *path, void *obj)
{
    int t = config_setting_type(m);
    unsigned line = cfg_line(m);
    switch (k->type) {
    case KT_STR: {
        if (t != CONFIG_TYPE_STRING) {
            cfg_error(ctx, line, path, "must be a string (got %s)", cfg_type_words(t));
            return;
        }
        const char *v = config_setting_get_string(m);
        if (check_str(ctx, k, m, path, v) < 0)
            return;
        char *copy = (k->flags & F_PATH) ? cfg_join_path(ctx->basedir, v) : strdup(v);
        if (copy == NULL) {
            ctx->oom = true;
            return;
        }
        free_str_field(k, at(obj, k->off));
        *(char **)at(obj, k->off) = copy;
        return;
    }
    case KT_UINT:
        read_uint(ctx, k, m, path, obj);
        return;
    case KT_BOOL:
        if (t != CONFIG_TYPE_BOOL) {
            cfg_error(ctx, line, path, "must be true or false (got %s)", cfg_type_words(t));
            return;
        }
        *(bool *)at(obj, k->off) = config_setting_get_bool(m) != 0;
        return;
    case KT_ENUM: {
        int v;
        if (read_enum(ctx, k, m, path, &v) == 0)
            store_int(at(obj, k->off), v);
        return;
    }
    case KT_GROUP:
        if (t != CONFIG_TYPE_GROUP) {
            cfg_error(ctx, line, path, "must be a group { ... } (got %s)", cfg_type_words(t));
            return;
        }
        if (k->present_off != NO_OFF)
            *(bool *)at(obj, k->present_off) = true;
        cfg_walk_group(ctx, k->sub, m, path, 0, at(obj, k->off));
        return;
    case KT_GROUPLIST:
        read_grouplist(ctx, k, m, path, obj);
        return;
    case KT_STRLIST:
        read_strlist(ctx, k, m, path, obj);
        return;
    }
}

/* The key named `name` that applies under mask; *other gets the masks of same-named keys that
 * do not apply. */
static const cfg_key_t *find_key(const cfg_schema_t *schema, const char *name, unsigned mask,
                                 unsigned *other)
{
    *other = 0;
    for (size_t i = 0; i < schema->nkeys; i++) {
        const cfg_key_t *k = &schema->keys[i];
        if (strcmp(k->name, name) != 0)
            continue;
        if (applies(k, mask))
            return k;
        *other |= k->when;
    }
    return NULL;
}

void cfg_walk_group(cfg_ctx_t *ctx, const cfg_schema_t *schema, const config_setting_t *s,
                    const char *path, size_t index, void *obj)
{
    const cfg_key_t *discr = NULL;
    unsigned mask = ~0u;
    bool discr_ok = true;
    char p[CFG_PATH_MAX];

    for (size_t i = 0; i < schema->nkeys; i++) {
        if (schema->keys[i].flags & F_DISCR)
            discr = &schema->keys[i];
    }
    if (discr != NULL) {
        const config_setting_t *m = config_setting_get_member(s, discr->name);
        int v = 0;
        cfg_path_member(p, path, discr->name);
        if (m == NULL) {
            cfg_error(ctx, cfg_line(s), p, "missing required key");
            discr_ok = false;
        } else if (read_enum(ctx, discr, m, p, &v) < 0) {
            discr_ok = false;
        }
        mask = discr_ok ? 1u << v : 0;
        store_int(at(obj, discr->off), v);
    }
    defaults(ctx, schema, obj, mask);

    unsigned n = (unsigned)config_setting_length(s);
    for (unsigned i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(s, i);
        const char *name = m != NULL ? config_setting_name(m) : NULL;
        if (name == NULL)
            continue;
        if (discr != NULL && strcmp(name, discr->name) == 0)
            continue;
        cfg_path_member(p, path, name);
        unsigned other;
        const cfg_key_t *k = find_key(schema, name, mask, &other);
        if (k == NULL) {
            if (other != 0) {
                char words[128];
                if (!discr_ok)
                    continue; /* cannot tell: the discriminator's error says enough */
                when_words(discr, other, words, sizeof(words));
                cfg_error(ctx, cfg_line(m), p, "only valid when %s is %s", discr->name, words);
            } else {
                const char *hint = suggest(schema, name, mask);
                if (hint != NULL)
                    cfg_error(ctx, cfg_line(m), p, "unknown key (did you mean \"%s\"?)", hint);
                else
                    cfg_error(ctx, cfg_line(m), p, "unknown key");
            }
            continue;
        }
        read_value(ctx, k, m, p, obj);
    }

    for (size_t i = 0; i < schema->nkeys; i++) {
        const cfg_key_t *k = &schema->keys[i];
        if (!(k->flags & F_REQUIRED) || (k->flags & F_DISCR) || !applies(k, mask))
            continue;
        if (discr != NULL && !discr_ok && k->when != 0)
            continue;
        if (config_setting_get_member(s, k->name) == NULL) {
            cfg_path_member(p, path, k->name);
            cfg_error(ctx, cfg_line(s), p, "missing required key");
        }
    }
    if (schema->finish != NULL && discr_ok)
        schema->finish(ctx, s, path, index, obj);
}

void cfg_release(const cfg_schema_t *schema, void *obj)
{
    if (schema->release != NULL)
        schema->release(obj);
    for (size_t i = 0; i < schema->nkeys; i++) {
        const cfg_key_t *k = &schema->keys[i];
        switch (k->type) {
        case KT_STR:
            free_str_field(k, at(obj, k->off));
            break;
        case KT_GROUP:
            cfg_release(k->sub, at(obj, k->off));
            break;
        case KT_GROUPLIST: {
            char *arr = *(char **)at(obj, k->off);
            size_t n = *(size_t *)at(obj, k->count_off);
            for (size_t j = 0; arr != NULL && j < n; j++)
                cfg_release(k->sub, arr + j * k->sub->size);
            free(arr);
            *(char **)at(obj, k->off) = NULL;
            *(size_t *)at(obj, k->count_off) = 0;
            break;
        }
        case KT_STRLIST: {
            char **arr = *(char ***)at(obj, k->off);
            size_t n = *(size_t *)at(obj, k->count_off);
            for (size_t j = 0; arr != NULL && j < n; j++)
                free(arr[j]);
            free(arr);
            *(char ***)at(obj, k->off) = NULL;
            *(size_t *)at(obj, k->count_off) = 0;
            break;
        }
        default:
            break;
        }
    }
}
