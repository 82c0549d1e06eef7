/* config/ internals shared by config.c, schema*.c, walk.c, secret.c, cipher.c. Not for other
 * modules. */
#ifndef PSKGW_CONFIG_INTERNAL_H
#define PSKGW_CONFIG_INTERNAL_H

#include "config/config.h"

#include <libconfig.h>
#include <stdarg.h>

#define CFG_PATH_MAX 256

/* The state of one file's validation. */
typedef struct {
    pskgw_config_diag_t *diag; /* may be NULL: then only counted (and warnings logged) */
    const char *file;          /* name for messages */
    const char *basedir;       /* directory for relative paths; NULL: current directory */
    const char *text;          /* the text being read (to recheck integers), or NULL */
    size_t nerrors;            /* errors found in this file */
    size_t nkept;              /* errors kept in diag for this file */
    bool oom;                  /* an allocation failed: the result is unusable */
} cfg_ctx_t;

void cfg_error(cfg_ctx_t *ctx, unsigned line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cfg_warn(cfg_ctx_t *ctx, unsigned line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Add one item to diag (used by cfg_error/cfg_warn and the cross-file checks). */
void cfg_diag_add(pskgw_config_diag_t *diag, bool *oom, pskgw_config_severity_t sev,
                  const char *file, unsigned line, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 7, 0)));

/* "parent.name" / "parent[i]" into out (truncated if too long). */
void cfg_path_member(char *out, const char *parent, const char *name);
void cfg_path_index(char *out, const char *parent, size_t i);

/* Line of a setting (its parent's when libconfig has none). */
unsigned cfg_line(const config_setting_t *s);

/* ---- table-driven schema ---- */

typedef enum {
    KT_STR,       /* string; min/max: length; F_PATH: joined to the config's directory */
    KT_UINT,      /* integer in [min, max], stored in `width` bytes; `choices` optional */
    KT_BOOL,      /* true/false, stored as bool */
    KT_ENUM,      /* string out of `enums`, stored as int */
    KT_GROUP,     /* { ... } described by `sub`; `present_off` gets true when given */
    KT_GROUPLIST, /* ( {...}, ... ) of `sub`; array at off, size_t count at count_off; min/max */
    KT_STRLIST,   /* [ "a", "b" ] or ( "a", "b" ); char ** at off, count at count_off; min/max */
} cfg_kt_t;

#define F_REQUIRED 1u
#define F_PATH     2u /* relative path: joined to the directory of the config file */
#define F_NOEMPTY  4u /* strings: not "" (implied by min >= 1) */
#define F_DISCR    8u /* the group's discriminator (type / proto): read first */

typedef struct {
    const char *name;
    int value;
} cfg_enum_t;

struct cfg_schema;

typedef struct {
    const char *name;
    cfg_kt_t type;
    unsigned flags;
    uint64_t min, max;
    const char *def_str;     /* KT_STR default (strdup'd), NULL: none */
    uint64_t def;            /* KT_UINT/KT_BOOL/KT_ENUM default */
    const cfg_enum_t *enums; /* KT_ENUM: {NULL, 0}-terminated */
    const uint64_t *choices; /* KT_UINT: allowed values, 0-terminated (NULL: any in range) */
    size_t off;              /* where the value goes in the object */
    unsigned width;          /* KT_UINT: 1, 2, 4 or 8 */
    size_t present_off;      /* KT_GROUP: bool set when given (NO_OFF: always present) */
    size_t count_off;        /* KT_GROUPLIST/KT_STRLIST: size_t count */
    const struct cfg_schema *sub;
    unsigned when; /* discriminator values (bit 1 << value) the key belongs to; 0: all */
} cfg_key_t;

#define NO_OFF ((size_t)-1)

typedef struct cfg_schema {
    const char *label; /* for messages: "sink", "listener" */
    const cfg_key_t *keys;
    size_t nkeys;
    size_t size; /* object size (list elements) */
    /* Cross-field checks after every key was read: s is the group, path its path, index its
     * position in a list (0 otherwise). Reports with cfg_error. */
    void (*finish)(cfg_ctx_t *ctx, const config_setting_t *s, const char *path, size_t index,
                   void *obj);
    /* Frees what finish() allocated beyond the table's keys (secrets, parsed parts). */
    void (*release)(void *obj);
} cfg_schema_t;

/* Apply defaults to obj, then read group s into it per schema. */
void cfg_walk_group(cfg_ctx_t *ctx, const cfg_schema_t *schema, const config_setting_t *s,
                    const char *path, size_t index, void *obj);
/* Defaults only (for optional groups not given). */
void cfg_apply_defaults(cfg_ctx_t *ctx, const cfg_schema_t *schema, void *obj);
/* Free everything the table describes in obj (strings, lists, subgroups), then release(). */
void cfg_release(const cfg_schema_t *schema, void *obj);

/* Setting type in words ("a string", "an integer") for messages. */
const char *cfg_type_words(int type);

/* The domain schema (schema.c). */
extern const cfg_schema_t cfg_domain_schema;

/* ---- deny lists (deny.c) ---- */

/* Read a deny_file: one hex identity or ROTPublicUID per line, '#' comments, blank lines;
 * sorted (case ignored) into *out (free with cfg_deny_free). Errors reported at line/path.
 * 0 or -1. */
int cfg_read_deny(cfg_ctx_t *ctx, unsigned line, const char *path, const char *file, char ***out,
                  size_t *n);
void cfg_deny_free(char **list, size_t n);

/* ---- secrets (secret.c) ---- */

/* Resolve a secret file name (credentials directory, base directory), read it, strip one
 * trailing newline. Errors (unreadable, not a regular file, too big, empty) are reported at
 * line/path. 0 or -1. max: at most this many bytes. */
int cfg_read_secret(cfg_ctx_t *ctx, unsigned line, const char *path, const char *name, size_t max,
                    bool strip_newline, pskgw_config_secret_t *out);
void cfg_secret_free(pskgw_config_secret_t *s);
/* Decode a key-encryption key: exactly 32 raw bytes, or 64 hex chars, or base64 of 32 bytes
 * (one trailing newline allowed for the text forms). 0 or -1 (reported). */
int cfg_read_kek(cfg_ctx_t *ctx, unsigned line, const char *path, const char *name,
                 uint8_t kek[32]);
/* Join a relative path to basedir (heap); absolute paths and basedir NULL: copy. NULL: OOM. */
char *cfg_join_path(const char *basedir, const char *p);

/* ---- ciphers (cipher.c) ---- */

/* Parse and check a cipher list into d->ciphers, ciphers_wolfssl, cipher_ids. */
void cfg_parse_ciphers(cfg_ctx_t *ctx, unsigned line, const char *path, const char *list,
                       pskgw_config_domain_t *d);

#endif
