#include "common/log.h"
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RL_SLOTS  1024
#define LINE_MAX_ 2048

int pskgw_log_max_level = PSKGW_LOG_INFO;

struct rl_slot {
    uint64_t hash;
    uint64_t window_start;
    unsigned count;
    unsigned suppressed;
};

static struct {
    pskgw_log_format_t format;
    FILE *out;
    const char *ident;
    unsigned burst;
    uint64_t interval_ms;
    uint64_t (*now_ms)(void);
    int journal_mode; /* PSKGW_LOG_JOURNAL_AUTO, 0 or 1 */
    int journal;      /* auto: -1 not decided yet for this output, else 0 or 1 */
    struct rl_slot slots[RL_SLOTS];
} lg = { PSKGW_LOG_FORMAT_TEXT,  NULL, "pskgw",           5, 10000, NULL,
         PSKGW_LOG_JOURNAL_AUTO, -1,   { { 0, 0, 0, 0 } } };

static const char *const level_names[] = { "emerg",   "alert",  "crit", "err",
                                           "warning", "notice", "info", "debug" };

static uint64_t real_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void pskgw_log_set_level(pskgw_log_level_t level)
{
    pskgw_log_max_level = (int)level;
}

void pskgw_log_set_format(pskgw_log_format_t format)
{
    lg.format = format;
}

void pskgw_log_set_output(FILE *out)
{
    lg.out = out;
    lg.journal = -1;
}

void pskgw_log_set_journal(int mode)
{
    lg.journal_mode = mode;
    lg.journal = -1;
}

/* $JOURNAL_STREAM is "device:inode" of the stream systemd connected to journald; a process whose
 * output is that stream logs for journald (sd_journal_stream_fd(3), systemd.exec(5)). */
static int output_is_journal(FILE *out)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char *end;
    struct stat st;

    if (!js || !*js)
        return 0;
    errno = 0;
    dev = strtoull(js, &end, 10);
    if (errno || end == js || *end != ':')
        return 0;
    js = end + 1;
    ino = strtoull(js, &end, 10);
    if (errno || end == js || *end != '\0')
        return 0;
    if (fstat(fileno(out), &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int for_journal(FILE *out)
{
    if (lg.journal_mode != PSKGW_LOG_JOURNAL_AUTO)
        return lg.journal_mode != 0;
    if (lg.journal < 0)
        lg.journal = output_is_journal(out);
    return lg.journal;
}

void pskgw_log_set_ident(const char *ident)
{
    lg.ident = ident ? ident : "pskgw";
}

void pskgw_log_set_ratelimit(unsigned burst, uint64_t interval_ms)
{
    lg.burst = burst;
    lg.interval_ms = interval_ms;
    memset(lg.slots, 0, sizeof(lg.slots));
}

void pskgw_log_set_clock(uint64_t (*now_ms)(void))
{
    lg.now_ms = now_ms;
}

int pskgw_log_level_parse(const char *s, pskgw_log_level_t *out)
{
    for (int i = PSKGW_LOG_ERR; i <= PSKGW_LOG_DEBUG; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (pskgw_log_level_t)i;
            return 0;
        }
    }
    return PSKGW_EINVAL;
}

int pskgw_log_format_parse(const char *s, pskgw_log_format_t *out)
{
    if (s && strcmp(s, "text") == 0) {
        *out = PSKGW_LOG_FORMAT_TEXT;
        return 0;
    }
    if (s && strcmp(s, "json") == 0) {
        *out = PSKGW_LOG_FORMAT_JSON;
        return 0;
    }
    return PSKGW_EINVAL;
}

/* Append s to buf as the inside of a JSON string. */
static size_t json_escape(char *buf, size_t cap, size_t pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)c;
        } else if (c < 0x20) {
            buf[pos++] = '\\';
            buf[pos++] = 'u';
            buf[pos++] = '0';
            buf[pos++] = '0';
            buf[pos++] = hex[c >> 4];
            buf[pos++] = hex[c & 15];
        } else {
            buf[pos++] = (char)c;
        }
    }
    return pos;
}

/* "2026-11-21T10:00:00.123Z" (UTC, milliseconds) */
static void timestamp(char *ts, size_t cap)
{
    char base[32];
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts, cap, "%s.%03ldZ", base, now.tv_nsec / 1000000L);
}

/* ,"name":"value" for each field the caller knows */
static size_t json_fields(char *line, size_t cap, size_t pos, const pskgw_log_fields_t *f)
{
    const char *names[] = { "domain", "listener", "peer", "identity", "reason" };
    const char *values[5];

    if (!f)
        return pos;
    values[0] = f->domain;
    values[1] = f->listener;
    values[2] = f->peer;
    values[3] = f->identity;
    values[4] = f->reason;
    for (size_t i = 0; i < 5; i++) {
        int n;

        if (!values[i] || pos + 16 + strlen(names[i]) >= cap)
            continue;
        n = snprintf(line + pos, cap - pos, ",\"%s\":\"", names[i]);
        if (n < 0)
            continue;
        pos = json_escape(line, cap - 2, pos + (size_t)n, values[i]);
        line[pos++] = '"';
    }
    return pos;
}

static void emit(pskgw_log_level_t level, const pskgw_log_fields_t *f, const char *msg)
{
    FILE *out = lg.out ? lg.out : stderr;
    int lvl = (int)level;
    char ts[48];

    if (lvl < 0 || lvl > 7)
        lvl = PSKGW_LOG_ERR;
    if (lg.format == PSKGW_LOG_FORMAT_JSON) {
        char line[LINE_MAX_ + 1024];
        size_t pos;

        timestamp(ts, sizeof(ts));
        pos = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
                               level_names[lvl]);
        pos = json_fields(line, sizeof(line) - LINE_MAX_, pos, f);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, ",\"msg\":\"");
        pos = json_escape(line, sizeof(line), pos, msg);
        fprintf(out, "%.*s\"}\n", (int)pos, line);
    } else if (for_journal(out)) {
        fprintf(out, "<%d>%s: %s\n", lvl, lg.ident, msg);
    } else {
        timestamp(ts, sizeof(ts));
        fprintf(out, "%s %s %s: %s\n", ts, level_names[lvl], lg.ident, msg);
    }
    fflush(out);
}

__attribute__((format(printf, 4, 0))) static void vwrite(pskgw_log_level_t level,
                                                         const pskgw_log_fields_t *f,
                                                         const char *suffix, const char *fmt,
                                                         va_list ap)
{
    char msg[LINE_MAX_];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);

    /* Control characters from peers must not split a line or forge one. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
    if (suffix && n >= 0 && (size_t)n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - (size_t)n, "%s", suffix);
    emit(level, f, msg);
}

void pskgw_log_write(pskgw_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vwrite(level, NULL, NULL, fmt, ap);
    va_end(ap);
}

void pskgw_log_write_f(pskgw_log_level_t level, const pskgw_log_fields_t *f, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vwrite(level, f, NULL, fmt, ap);
    va_end(ap);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h | 1; /* 0 marks an empty slot */
}

/* 1 if a line of this key may be written now (and suffix names what was suppressed before) */
static int rl_admit(const char *key, char *suffix, size_t cap)
{
    uint64_t now = lg.now_ms ? lg.now_ms() : real_now_ms();
    uint64_t h = fnv1a(key ? key : "");
    struct rl_slot *slot = &lg.slots[h % RL_SLOTS];

    suffix[0] = '\0';
    if (slot->hash != h || now - slot->window_start >= lg.interval_ms) {
        /* New key in this slot (collisions share a budget) or a new window. */
        if (slot->hash == h && slot->suppressed)
            snprintf(suffix, cap, " (%u similar lines suppressed)", slot->suppressed);
        slot->hash = h;
        slot->window_start = now;
        slot->count = 0;
        slot->suppressed = 0;
    }
    if (slot->count >= lg.burst) {
        slot->suppressed++;
        return 0;
    }
    slot->count++;
    return 1;
}

int pskgw_log_write_rl(pskgw_log_level_t level, const char *key, const char *fmt, ...)
{
    char suffix[64];
    va_list ap;

    if (!rl_admit(key, suffix, sizeof(suffix)))
        return 0;
    va_start(ap, fmt);
    vwrite(level, NULL, suffix[0] ? suffix : NULL, fmt, ap);
    va_end(ap);
    return 1;
}

int pskgw_log_write_rl_f(pskgw_log_level_t level, const char *key, const pskgw_log_fields_t *f,
                         const char *fmt, ...)
{
    char suffix[64];
    va_list ap;

    if (!rl_admit(key, suffix, sizeof(suffix)))
        return 0;
    va_start(ap, fmt);
    vwrite(level, f, suffix[0] ? suffix : NULL, fmt, ap);
    va_end(ap);
    return 1;
}
