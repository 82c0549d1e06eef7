/* config/ internals shared by the parts of the domain schema (schema.c: listeners, limits,
 * admin, log and the domain's top-level walk; schema_api.c: api and cache; schema_sink.c: sinks):
 * the table macros and the schemas one part hands to another. Not for other modules. */
#ifndef PSKGW_CONFIG_SCHEMA_H
#define PSKGW_CONFIG_SCHEMA_H

#include "config/internal.h"

#include <stddef.h>

#define FIELD_SIZE(T, f) sizeof(((T *)0)->f)

#define K_STR(n, T, f, fl, mn, mx, d, ...)                                                    \
    {                                                                                         \
        .name = (n), .type = KT_STR, .flags = (fl), .min = (mn), .max = (mx), .def_str = (d), \
        .off = offsetof(T, f), .present_off = NO_OFF, __VA_ARGS__                             \
    }
#define K_UINT(n, T, f, fl, mn, mx, d, ...)                                                  \
    {                                                                                        \
        .name = (n), .type = KT_UINT, .flags = (fl), .min = (mn), .max = (mx), .def = (d),   \
        .off = offsetof(T, f), .width = FIELD_SIZE(T, f), .present_off = NO_OFF, __VA_ARGS__ \
    }
#define K_BOOL(n, T, f, d, ...)                                                                 \
    {                                                                                           \
        .name = (n), .type = KT_BOOL, .def = (d), .off = offsetof(T, f), .present_off = NO_OFF, \
        __VA_ARGS__                                                                             \
    }
#define K_ENUM(n, T, f, fl, e, d, ...)                                                       \
    {                                                                                        \
        .name = (n), .type = KT_ENUM, .flags = (fl), .enums = (e), .def = (d),               \
        .off = offsetof(T, f), .width = FIELD_SIZE(T, f), .present_off = NO_OFF, __VA_ARGS__ \
    }
#define K_GROUP(n, T, f, fl, present, sch)                                   \
    {                                                                        \
        .name = (n), .type = KT_GROUP, .flags = (fl), .off = offsetof(T, f), \
        .present_off = (present), .sub = &(sch)                              \
    }
#define K_GLIST(n, T, f, cnt, fl, mn, mx, sch)                                                     \
    {                                                                                              \
        .name = (n), .type = KT_GROUPLIST, .flags = (fl), .min = (mn), .max = (mx),                \
        .off = offsetof(T, f), .count_off = offsetof(T, cnt), .present_off = NO_OFF, .sub = &(sch) \
    }
#define K_SLIST(n, T, f, cnt, mn, mx, ...)                                                \
    {                                                                                     \
        .name = (n), .type = KT_STRLIST, .min = (mn), .max = (mx), .off = offsetof(T, f), \
        .count_off = offsetof(T, cnt), .present_off = NO_OFF, __VA_ARGS__                 \
    }
#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))
#define W(v)     (1u << (v))

#define PATH_MAX_LEN 4096
#define SECRET_MAX   (64 * 1024)

/* The member `name` of group s, or NULL. */
static inline const config_setting_t *member(const config_setting_t *s, const char *name)
{
    return config_setting_get_member(s, name);
}

/* The line of s's member `name` (s's own line when it is not given). */
static inline unsigned line_of(const config_setting_t *s, const char *name)
{
    const config_setting_t *m = member(s, name);
    return cfg_line(m != NULL ? m : s);
}

/* The groups of a domain file defined outside schema.c. */
extern const cfg_schema_t cfg_api_schema;        /* schema_api.c */
extern const cfg_schema_t cfg_cache_schema;      /* schema_api.c */
extern const cfg_schema_t cfg_resumption_schema; /* schema_api.c */
extern const cfg_schema_t cfg_sessions_schema;   /* schema_api.c */
extern const cfg_schema_t cfg_sink_schema;       /* schema_sink.c */

#endif
