#define _GNU_SOURCE
#include "common/log.h"
#include "common/clock.h"
#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    pskgw_log_set_format(PSKGW_LOG_FORMAT_TEXT);
    pskgw_log_set_level(PSKGW_LOG_INFO);
    pskgw_log_set_clock(fake_clock);
    pskgw_log_set_ratelimit(2, 1000);
    fake_now = 5000;
}

static void teardown(void)
{
    pskgw_log_set_output(NULL);
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
