/* The Prometheus text builder: label escaping and truncation, samples, families; the
 * process-wide families. */
#include "gateway/metrics.h"

#include "dtls/slab.h"
#include "peek.h" /* PSKGW_TEST_ASAN */
#include "proc.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(metrics, label_escapes_backslash_quote_newline)
{
    char out[64];

    pskgw_metrics_label(out, sizeof(out), "sink", "a\\b\"c\nd");
    cr_assert_str_eq(out, "sink=\"a\\\\b\\\"c\\nd\"");
}

/* Every capacity from 0 up: the result fits in exactly cap bytes (the buffer is malloc'ed at
 * that size, so ASan sees a write past it), ends with a quote when anything is written, and
 * never splits an escape. */
Test(metrics, label_truncation_stays_inside_the_buffer)
{
    for (size_t cap = 1; cap < 24; cap++) {
        char *out = malloc(cap);
        size_t len;

        cr_assert_not_null(out);
        pskgw_metrics_label(out, cap, "key", "v\"\"\"\"\"\"\"\"\"\"");
        len = strlen(out);
        cr_assert_lt(len, cap, "cap %zu", cap);
        if (len > 0) {
            cr_assert_eq(strncmp(out, "key=\"", 5), 0, "cap %zu: %s", cap, out);
            cr_assert_eq(out[len - 1], '"', "cap %zu: %s", cap, out);
            /* inside the quotes every backslash starts a whole escape */
            for (size_t i = 5; i + 1 < len; i++) {
                if (out[i] == '\\') {
                    cr_assert(i + 2 < len && (out[i + 1] == '"' || out[i + 1] == '\\'),
                              "cap %zu: split escape in %s", cap, out);
                    i++;
                } else {
                    cr_assert_neq(out[i], '"', "cap %zu: bare quote in %s", cap, out);
                }
            }
        }
        free(out);
    }
}

Test(metrics, family_and_samples)
{
    pskgw_metrics_t m;

    pskgw_metrics_init(&m);
    pskgw_metrics_family(&m, "x_total", "counter", "help text");
    pskgw_metrics_sample(&m, "x_total", "a=\"1\"", 7);
    pskgw_metrics_sample(&m, "x_total", NULL, 18446744073709551615u);
    cr_assert_not(m.failed);
    cr_assert_str_eq(m.text, "# HELP x_total help text\n# TYPE x_total counter\n"
                             "x_total{a=\"1\"} 7\nx_total 18446744073709551615\n");
    cr_assert_eq(m.len, strlen(m.text));
    pskgw_metrics_reset(&m);
    cr_assert_eq(m.len, 0);
    for (int i = 0; i < 10000; i++)
        pskgw_metrics_sample(&m, "a_long_metric_name_to_grow_the_buffer", "k=\"v\"", (uint64_t)i);
    cr_assert_not(m.failed);
    cr_assert_eq(m.len, strlen(m.text));
    pskgw_metrics_deinit(&m);
}

/* The samples are written without printf: the same text as printf's for every kind of value
 * (0, powers of ten around each digit count, the largest u64), thousandths, millionths, an empty
 * label set, and mixed with the printf-written floating-point samples. */
Test(metrics, samples_match_printf)
{
    pskgw_metrics_t m;
    char want[128];
    size_t at = 0;
    uint64_t v = 1;

    pskgw_metrics_init(&m);
    for (int i = 0; i < 40; i++, v = v * 10 - (i & 1)) {
        uint64_t x = i == 39 ? UINT64_MAX : i == 0 ? 0 : v;

        pskgw_metrics_sample(&m, "n", i & 1 ? "k=\"v\"" : "", x);
        snprintf(want, sizeof(want), i & 1 ? "n{k=\"v\"} %" PRIu64 "\n" : "n %" PRIu64 "\n", x);
        cr_assert_eq(strncmp(m.text + at, want, strlen(want)), 0, "%s", m.text + at);
        at += strlen(want);
        pskgw_metrics_sample_milli(&m, "s", "k=\"v\"", x);
        snprintf(want, sizeof(want), "s{k=\"v\"} %" PRIu64 ".%03u\n", x / 1000,
                 (unsigned)(x % 1000));
        cr_assert_eq(strncmp(m.text + at, want, strlen(want)), 0, "%s", m.text + at);
        at += strlen(want);
        pskgw_metrics_sample_micro(&m, "u", NULL, x);
        snprintf(want, sizeof(want), "u %" PRIu64 ".%06u\n", x / 1000000, (unsigned)(x % 1000000));
        cr_assert_eq(strncmp(m.text + at, want, strlen(want)), 0, "%s", m.text + at);
        at += strlen(want);
        pskgw_metrics_sample_f(&m, "f", NULL, 0.25);
        cr_assert_eq(strncmp(m.text + at, "f 0.25\n", 7), 0, "%s", m.text + at);
        at += 7;
    }
    cr_assert_not(m.failed);
    cr_assert_eq(m.len, at);
    cr_assert_eq(m.len, strlen(m.text));
    pskgw_metrics_deinit(&m);
}

/* pskgw_slab_active{} in the process families: the slab's mode as dtls/slab.h tells it. */
static void expect_slab_active(const char *value)
{
    pskgw_metrics_t m;
    char want[64];

    pskgw_metrics_init(&m);
    pskgw_metrics_process(&m, "9.9.9");
    cr_assert_not(m.failed);
    cr_assert_not_null(strstr(m.text, "# TYPE pskgw_slab_active gauge\n"), "%s", m.text);
    snprintf(want, sizeof(want), "\npskgw_slab_active %s\n", value);
    cr_assert_not_null(strstr(m.text, want), "want%s in %s", want, m.text);
    pskgw_metrics_deinit(&m);
}

/* 1 where the slab serves from its reserved range (a build without ASan on this machine); 0
 * under ASan, where pskgw_slab_calloc hands out calloc's blocks. */
Test(metrics, slab_active_gauge_says_the_slab_serves)
{
#ifdef PSKGW_TEST_ASAN
    expect_slab_active("0");
#else
    expect_slab_active("1");
#endif
}

/* 0 where the range cannot be reserved (here: an address-space limit below it, as a LimitAS=
 * would set; this test's process has not used the slab before). */
Test(metrics, slab_active_gauge_is_0_when_the_range_cannot_be_reserved)
{
    cr_assert_eq(pskgw_test_limit_address_space((size_t)256 << 20, NULL), 0);
    expect_slab_active("0");
}
