#define _GNU_SOURCE
#include "common/log.h"
#include "common/clock.h"
#include "common/err.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *buf;
static size_t buflen;
static FILE *out;
static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

static void setup(void)
{
    out = open_memstream(&buf, &buflen);
    pskgw_log_set_output(out);
    pskgw_log_set_journal(1); /* the exact-line tests below use the journald form */
    pskgw_log_set_format(PSKGW_LOG_FORMAT_TEXT);
    pskgw_log_set_level(PSKGW_LOG_INFO);
    pskgw_log_set_clock(fake_clock);
    pskgw_log_set_ratelimit(2, 1000);
    fake_now = 5000;
}

static void teardown(void)
{
    pskgw_log_set_output(NULL);
    pskgw_log_set_journal(PSKGW_LOG_JOURNAL_AUTO);
    unsetenv("JOURNAL_STREAM");
    pskgw_log_set_clock(NULL);
    fclose(out);
    free(buf);
}

static size_t count_lines(void)
{
    size_t n = 0;

    fflush(out);
    for (size_t i = 0; i < buflen; i++)
        n += buf[i] == '\n';
    return n;
}

TestSuite(log, .init = setup, .fini = teardown);

Test(log, journald_priority_prefix)
{
    PSKGW_WARN("peer \"%s\" sent garbage", "127.0.0.1:5000");
    fflush(out);
    cr_assert_str_eq(buf, "<4>pskgw: peer \"127.0.0.1:5000\" sent garbage\n");
}

Test(log, level_checked_before_formatting)
{
    int evaluated = 0;

    PSKGW_DEBUG("%d", ++evaluated);
    cr_assert_eq(evaluated, 0, "arguments must not be evaluated below the level");
    cr_assert_eq(count_lines(), 0);
}

Test(log, json_format_escapes)
{
    pskgw_log_set_format(PSKGW_LOG_FORMAT_JSON);
    PSKGW_ERR("bad \"quote\" \\ here");
    fflush(out);
    cr_assert(strstr(buf, "\"level\":\"err\"") != NULL);
    cr_assert(strstr(buf, "\"msg\":\"bad \\\"quote\\\" \\\\ here\"}") != NULL, "%s", buf);
    cr_assert(strncmp(buf, "{\"ts\":\"", 7) == 0);
}

Test(log, control_characters_cannot_forge_lines)
{
    PSKGW_INFO("identity \"%s\"", "AB\nCD");
    cr_assert_eq(count_lines(), 1);
}

Test(log, rate_limit_per_key)
{
    for (int i = 0; i < 10; i++)
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "10.0.0.1", "noise %d", i);
    PSKGW_LOG_RL(PSKGW_LOG_WARNING, "10.0.0.2", "other peer");
    cr_assert_eq(count_lines(), 3, "2 for the first key, 1 for the second");
    fake_now += 1001;
    PSKGW_LOG_RL(PSKGW_LOG_WARNING, "10.0.0.1", "again");
    cr_assert_eq(count_lines(), 4);
    cr_assert(strstr(buf, "again (8 similar lines suppressed)") != NULL, "%s", buf);
}

Test(log, parse_names)
{
    pskgw_log_level_t l;
    pskgw_log_format_t f;

    cr_assert_eq(pskgw_log_level_parse("debug", &l), 0);
    cr_assert_eq(l, PSKGW_LOG_DEBUG);
    cr_assert_eq(pskgw_log_level_parse("loud", &l), PSKGW_EINVAL);
    cr_assert_eq(pskgw_log_format_parse("json", &f), 0);
    cr_assert_eq(f, PSKGW_LOG_FORMAT_JSON);
    cr_assert_eq(pskgw_log_format_parse("xml", &f), PSKGW_EINVAL);
}

Test(clock, rfc3339_millis)
{
    char s[32];

    cr_assert_eq(pskgw_clock_rfc3339(1700000000123ULL, s, sizeof(s)), 0);
    cr_assert_str_eq(s, "2023-11-14T22:13:20.123Z");
    cr_assert_eq(pskgw_clock_rfc3339(0, s, 10), PSKGW_ETOOBIG);
}

/* A real file as the output (open_memstream has no descriptor to compare with JOURNAL_STREAM):
 * writes one warning with the journal mode given, returns the line (static buffer). */
static const char *line_to_file(int mode, const char *journal_stream_of_file)
{
    static char line[512];
    char path[] = "/tmp/pskgw-log-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    struct stat st;
    char js[64];

    cr_assert(fd >= 0);
    f = fdopen(fd, "w+");
    cr_assert_not_null(f);
    unlink(path);
    cr_assert_eq(fstat(fd, &st), 0);
    if (journal_stream_of_file) {
        snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + (strcmp(journal_stream_of_file, "other") == 0));
        setenv("JOURNAL_STREAM", js, 1);
    } else {
        unsetenv("JOURNAL_STREAM");
    }
    pskgw_log_set_journal(mode);
    pskgw_log_set_output(f);
    PSKGW_WARN("peer \"%s\" sent garbage", "127.0.0.1:5000");
    pskgw_log_set_output(out);
    rewind(f);
    cr_assert_not_null(fgets(line, sizeof(line), f));
    fclose(f);
    return line;
}

static int matches(const char *re, const char *s)
{
    regex_t r;
    int rc;

    cr_assert_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    rc = regexec(&r, s, 0, NULL, 0);
    regfree(&r);
    return rc == 0;
}

#define STAMPED "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "

Test(log, text_off_journald_has_a_timestamp_and_no_priority_prefix)
{
    const char *l = line_to_file(PSKGW_LOG_JOURNAL_AUTO, NULL);

    cr_assert(matches(STAMPED "warning pskgw: peer \"127\\.0\\.0\\.1:5000\" sent garbage\n$", l),
              "%s", l);
}

Test(log, text_under_journald_has_the_priority_prefix_and_no_timestamp)
{
    const char *l = line_to_file(PSKGW_LOG_JOURNAL_AUTO, "this file");

    cr_assert_str_eq(l, "<4>pskgw: peer \"127.0.0.1:5000\" sent garbage\n");
}

Test(log, journal_stream_of_another_file_is_not_journald)
{
    /* a child whose stderr was redirected inherits JOURNAL_STREAM: it must not matter */
    const char *l = line_to_file(PSKGW_LOG_JOURNAL_AUTO, "other");

    cr_assert(matches(STAMPED "warning pskgw: ", l), "%s", l);
}

Test(log, journal_mode_forced_off)
{
    const char *l = line_to_file(0, "this file");

    cr_assert(matches(STAMPED "warning pskgw: ", l), "%s", l);
}

Test(log, json_lines_carry_the_known_fields)
{
    json_error_t err;
    json_t *j;

    pskgw_log_set_format(PSKGW_LOG_FORMAT_JSON);
    PSKGW_LOG_RL_F(PSKGW_LOG_INFO, "k",
                   (&(pskgw_log_fields_t){ .domain = "acme",
                                           .listener = "dtls",
                                           .peer = "10.0.0.1:5684",
                                           .identity = "ab\"cd\n",
                                           .reason = "wrong key" }),
                   "handshake failed");
    PSKGW_LOG_F(PSKGW_LOG_WARNING, (&(pskgw_log_fields_t){ .domain = "fleet" }), "only a domain");
    PSKGW_WARN("no fields");
    fflush(out);
    cr_assert_eq(count_lines(), 3);
    j = json_loadb(buf, strcspn(buf, "\n"), 0, &err);
    cr_assert_not_null(j, "%s: %s", buf, err.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "domain")), "acme");
    cr_assert_str_eq(json_string_value(json_object_get(j, "listener")), "dtls");
    cr_assert_str_eq(json_string_value(json_object_get(j, "peer")), "10.0.0.1:5684");
    cr_assert_str_eq(json_string_value(json_object_get(j, "identity")), "ab\"cd\n");
    cr_assert_str_eq(json_string_value(json_object_get(j, "reason")), "wrong key");
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "handshake failed");
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "info");
    json_decref(j);
    {
        const char *second = strchr(buf, '\n') + 1;
        const char *third = strchr(second, '\n') + 1;

        j = json_loadb(second, strcspn(second, "\n"), 0, &err);
        cr_assert_not_null(j, "%s", second);
        cr_assert_str_eq(json_string_value(json_object_get(j, "domain")), "fleet");
        cr_assert_null(json_object_get(j, "peer"), "unknown fields are left out");
        json_decref(j);
        j = json_loadb(third, strcspn(third, "\n"), 0, &err);
        cr_assert_not_null(j, "%s", third);
        cr_assert_eq(json_object_size(j), 3, "ts, level, msg");
        json_decref(j);
    }
}
