/* Operator logging.
 *
 * One process-wide logger writing lines to stderr (or a FILE set by pskgw_log_set_output()).
 * Text format, under journald (the output is the stream $JOURNAL_STREAM names: systemd units),
 * prefixes each line with the syslog priority in sd-daemon form, which journald turns into the
 * entry's priority and stamps with the time:
 *   <4>pskgw: listener "dtls": handshake with "10.0.0.1:5684" ... failed: ...
 * anywhere else (a terminal, a file, a pipe) with the time (UTC) and the level instead:
 *   2026-11-21T10:00:00.123Z warning pskgw: listener "dtls": handshake with ...
 * JSON format writes one object per line, with the fields the caller knows (PSKGW_LOG_F):
 *   {"ts":"2026-11-21T10:00:00.123Z","level":"warning","domain":"acme","listener":"dtls",
 *    "peer":"10.0.0.1:5684","identity":"abcd","reason":"...","msg":"..."}
 * The level is checked before any formatting (use the macros). Messages are lower-case, values
 * quoted, and must never contain secrets: callers pass identities and ids, never keys.
 *
 * Per-peer noise goes through PSKGW_LOG_RL(): at most `burst` lines per key per interval; the
 * number suppressed is appended to the next line that passes for that key.
 *
 * Not thread-safe by design: pskgw runs one loop per process.
 */
#ifndef PSKGW_COMMON_LOG_H
#define PSKGW_COMMON_LOG_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    PSKGW_LOG_ERR = 3,
    PSKGW_LOG_WARNING = 4,
    PSKGW_LOG_NOTICE = 5,
    PSKGW_LOG_INFO = 6,
    PSKGW_LOG_DEBUG = 7,
} pskgw_log_level_t;

typedef enum {
    PSKGW_LOG_FORMAT_TEXT = 0,
    PSKGW_LOG_FORMAT_JSON = 1,
} pskgw_log_format_t;

extern int pskgw_log_max_level; /* read by the macros; set with pskgw_log_set_level() */

void pskgw_log_set_level(pskgw_log_level_t level);
void pskgw_log_set_format(pskgw_log_format_t format);
/* Borrowed: the FILE must outlive logging. NULL restores stderr. */
void pskgw_log_set_output(FILE *out);
/* Name used in text lines ("pskgw: ..."); borrowed, must be static. */
void pskgw_log_set_ident(const char *ident);
/* Text lines for journald ("<N>" prefix, no time) or not (time and level name). The default,
 * PSKGW_LOG_JOURNAL_AUTO, decides per output: journald's when $JOURNAL_STREAM is
 * "device:inode" of the output's file descriptor. */
#define PSKGW_LOG_JOURNAL_AUTO (-1)
void pskgw_log_set_journal(int mode); /* PSKGW_LOG_JOURNAL_AUTO, 0 (never) or 1 (always) */

/* What a line is about, for JSON lines (each non-NULL member becomes a string field of that
 * name); text lines do not repeat them: the message names them. Borrowed for the call only. */
typedef struct {
    const char *domain;
    const char *listener;
    const char *peer;     /* "address:port" */
    const char *identity; /* as logged: escaped by the caller (pskgw_listen_log_identity) */
    const char *reason;   /* why it failed, refused or ended */
} pskgw_log_fields_t;

/* Parse "err|warning|notice|info|debug" / "text|json". 0 or PSKGW_EINVAL. */
int pskgw_log_level_parse(const char *s, pskgw_log_level_t *out);
int pskgw_log_format_parse(const char *s, pskgw_log_format_t *out);

/* Rate limit for PSKGW_LOG_RL: `burst` lines per `interval_ms` per key (defaults 5 / 10000). */
void pskgw_log_set_ratelimit(unsigned burst, uint64_t interval_ms);
/* Test hook: the clock used by the rate limiter (monotonic ms). NULL restores the real clock. */
void pskgw_log_set_clock(uint64_t (*now_ms)(void));

void pskgw_log_write(pskgw_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Returns 1 if written, 0 if suppressed by the rate limiter. */
int pskgw_log_write_rl(pskgw_log_level_t level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with fields (f may be NULL). */
void pskgw_log_write_f(pskgw_log_level_t level, const pskgw_log_fields_t *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int pskgw_log_write_rl_f(pskgw_log_level_t level, const char *key, const pskgw_log_fields_t *f,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define PSKGW_LOG(level, ...)                      \
    do {                                           \
        if ((int)(level) <= pskgw_log_max_level)   \
            pskgw_log_write((level), __VA_ARGS__); \
    } while (0)

#define PSKGW_LOG_RL(level, key, ...)                              \
    do {                                                           \
        if ((int)(level) <= pskgw_log_max_level)                   \
            (void)pskgw_log_write_rl((level), (key), __VA_ARGS__); \
    } while (0)

/* PSKGW_LOG_F(level, &(pskgw_log_fields_t){ .domain = d, .peer = p }, "fmt", ...) */
#define PSKGW_LOG_F(level, fields, ...)                        \
    do {                                                       \
        if ((int)(level) <= pskgw_log_max_level)               \
            pskgw_log_write_f((level), (fields), __VA_ARGS__); \
    } while (0)

#define PSKGW_LOG_RL_F(level, key, fields, ...)                                \
    do {                                                                       \
        if ((int)(level) <= pskgw_log_max_level)                               \
            (void)pskgw_log_write_rl_f((level), (key), (fields), __VA_ARGS__); \
    } while (0)

#define PSKGW_ERR(...)    PSKGW_LOG(PSKGW_LOG_ERR, __VA_ARGS__)
#define PSKGW_WARN(...)   PSKGW_LOG(PSKGW_LOG_WARNING, __VA_ARGS__)
#define PSKGW_NOTICE(...) PSKGW_LOG(PSKGW_LOG_NOTICE, __VA_ARGS__)
#define PSKGW_INFO(...)   PSKGW_LOG(PSKGW_LOG_INFO, __VA_ARGS__)
#define PSKGW_DEBUG(...)  PSKGW_LOG(PSKGW_LOG_DEBUG, __VA_ARGS__)

#endif
