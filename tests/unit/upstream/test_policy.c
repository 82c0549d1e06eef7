/* Error classification (spec section 4), backoff bounds, Retry-After, counters' labels. */
#include "common/err.h"
#include "upstream/policy.h"
#include "upstream/upstream.h"

#include <criterion/criterion.h>
#include <string.h>

Test(classify, status_table)
{
    static const struct {
        long status;
        pskgw_upstream_class_t cls;
        int err;
    } t[] = {
        { 200, PSKGW_UPSTREAM_CLASS_OK, 0 },
        { 400, PSKGW_UPSTREAM_CLASS_PERMANENT, PSKGW_EBADREQ },
        { 401, PSKGW_UPSTREAM_CLASS_REAUTH, PSKGW_EAUTH },
        { 403, PSKGW_UPSTREAM_CLASS_PERMANENT, PSKGW_EDENIED },
        { 404, PSKGW_UPSTREAM_CLASS_PERMANENT, PSKGW_ENOTFOUND },
        { 408, PSKGW_UPSTREAM_CLASS_TRANSIENT, PSKGW_EUNAVAIL },
        { 429, PSKGW_UPSTREAM_CLASS_RATELIMIT, PSKGW_ERATELIMIT },
        { 500, PSKGW_UPSTREAM_CLASS_TRANSIENT, PSKGW_EUNAVAIL },
        { 502, PSKGW_UPSTREAM_CLASS_TRANSIENT, PSKGW_EUNAVAIL },
        { 503, PSKGW_UPSTREAM_CLASS_TRANSIENT, PSKGW_EUNAVAIL },
        { 504, PSKGW_UPSTREAM_CLASS_TRANSIENT, PSKGW_EUNAVAIL },
        { 599, PSKGW_UPSTREAM_CLASS_TRANSIENT, PSKGW_EUNAVAIL },
        { 201, PSKGW_UPSTREAM_CLASS_PERMANENT, PSKGW_EPROTO },
        { 301, PSKGW_UPSTREAM_CLASS_PERMANENT, PSKGW_EPROTO },
        { 405, PSKGW_UPSTREAM_CLASS_PERMANENT, PSKGW_EPROTO },
        { 600, PSKGW_UPSTREAM_CLASS_PERMANENT, PSKGW_EPROTO },
        { 0, PSKGW_UPSTREAM_CLASS_PERMANENT, PSKGW_EPROTO },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int err = 12345;
        cr_assert_eq(pskgw_upstream_classify(t[i].status, 0, &err), t[i].cls, "status %ld",
                     t[i].status);
        cr_assert_eq(err, t[i].err, "status %ld: %d", t[i].status, err);
    }
}

Test(classify, transport_errors)
{
    int err = 0;

    cr_assert_eq(pskgw_upstream_classify(0, PSKGW_EUNAVAIL, &err), PSKGW_UPSTREAM_CLASS_TRANSIENT);
    cr_assert_eq(err, PSKGW_EUNAVAIL);
    cr_assert_eq(pskgw_upstream_classify(0, PSKGW_ETIMEOUT, &err), PSKGW_UPSTREAM_CLASS_TRANSIENT);
    cr_assert_eq(err, PSKGW_EUNAVAIL);
    cr_assert_eq(pskgw_upstream_classify(0, PSKGW_ETLS, &err), PSKGW_UPSTREAM_CLASS_PERMANENT);
    cr_assert_eq(err, PSKGW_ETLS);
    cr_assert_eq(pskgw_upstream_classify(200, PSKGW_ETOOBIG, &err), PSKGW_UPSTREAM_CLASS_PERMANENT);
    cr_assert_eq(err, PSKGW_ETOOBIG);
    cr_assert_eq(pskgw_upstream_classify(0, PSKGW_EINVAL, &err), PSKGW_UPSTREAM_CLASS_PERMANENT);
    cr_assert_eq(err, PSKGW_EINVAL);
}

static uint32_t seq_rand_state;
static uint32_t seq_rand(void)
{
    seq_rand_state = seq_rand_state * 1103515245u + 12345u;
    return seq_rand_state;
}

Test(backoff, never_above_max_and_grows)
{
    const uint32_t base = 100;
    const uint32_t max = 2000;
    uint64_t prev_lo = 0;

    for (unsigned a = 1; a <= 40; a++) {
        uint64_t cap = base;
        for (unsigned i = 1; i < a && cap < max; i++)
            cap *= 2;
        if (cap > max)
            cap = max;
        /* extremes of the random source */
        uint64_t lo = pskgw_upstream_backoff_ms(a, base, max, 0);
        uint64_t hi = pskgw_upstream_backoff_ms(a, base, max, (uint32_t)(cap / 2));
        uint64_t top = pskgw_upstream_backoff_ms(a, base, max, UINT32_MAX);
        cr_assert_eq(lo, cap - cap / 2, "attempt %u", a);
        cr_assert_eq(hi, cap, "attempt %u", a);
        cr_assert_leq(top, max);
        cr_assert_geq(lo, prev_lo, "lower bound must not shrink (attempt %u)", a);
        for (int k = 0; k < 1000; k++) {
            uint64_t d = pskgw_upstream_backoff_ms(a, base, max, seq_rand());
            cr_assert_leq(d, cap, "attempt %u: %llu", a, (unsigned long long)d);
            cr_assert_leq(d, max);
            cr_assert_geq(d, cap - cap / 2);
        }
        prev_lo = lo;
    }
    /* growth: the lower bound of attempt 4 exceeds the upper bound of attempt 1 */
    cr_assert_gt(pskgw_upstream_backoff_ms(4, base, max, 0),
                 pskgw_upstream_backoff_ms(1, base, max, UINT32_MAX));
}

Test(backoff, jitter_spreads)
{
    uint64_t seen_min = UINT64_MAX;
    uint64_t seen_max = 0;

    for (int k = 0; k < 2000; k++) {
        uint64_t d = pskgw_upstream_backoff_ms(3, 100, 2000, seq_rand());
        if (d < seen_min)
            seen_min = d;
        if (d > seen_max)
            seen_max = d;
    }
    cr_assert_lt(seen_min, 230);
    cr_assert_gt(seen_max, 370);
}

Test(backoff, degenerate_parameters)
{
    cr_assert_leq(pskgw_upstream_backoff_ms(1, 0, 0, UINT32_MAX), 1);
    cr_assert_geq(pskgw_upstream_backoff_ms(1, 0, 0, 0), 1);
    cr_assert_eq(pskgw_upstream_backoff_ms(UINT32_MAX, 100, 100, 0), 50);
    cr_assert_leq(pskgw_upstream_backoff_ms(1, 500, 100, UINT32_MAX), 500);
}

Test(backoff, within_deadline)
{
    cr_assert(pskgw_upstream_retry_fits(1000, 100, 2000, 20));
    cr_assert(pskgw_upstream_retry_fits(1000, 980, 2000, 20));
    cr_assert_not(pskgw_upstream_retry_fits(1000, 981, 2000, 20));
    cr_assert_not(pskgw_upstream_retry_fits(2000, 0, 2000, 0));
    cr_assert_not(pskgw_upstream_retry_fits(3000, 0, 2000, 0));
    cr_assert_not(pskgw_upstream_retry_fits(0, UINT64_MAX, 2000, 20));
}

Test(retry_after, delay_seconds)
{
    cr_assert_eq(pskgw_upstream_retry_after_ms("1", 1), 1000);
    cr_assert_eq(pskgw_upstream_retry_after_ms(" 120 ", 5), 120000);
    cr_assert_eq(pskgw_upstream_retry_after_ms("0", 1), 0);
    cr_assert_eq(pskgw_upstream_retry_after_ms("99999999999999999999", 20), 86400000);
    cr_assert_eq(pskgw_upstream_retry_after_ms("", 0), -1);
    cr_assert_eq(pskgw_upstream_retry_after_ms("-1", 2), -1);
    cr_assert_eq(pskgw_upstream_retry_after_ms("1.5", 3), -1);
    cr_assert_eq(pskgw_upstream_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 29), -1);
    cr_assert_eq(pskgw_upstream_retry_after_ms(NULL, 0), -1);
}

Test(labels, outcomes_and_ops)
{
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(0)), "ok");
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(PSKGW_EDENIED)),
                     "denied");
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(PSKGW_ENOTFOUND)),
                     "notfound");
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(PSKGW_EBADREQ)),
                     "badreq");
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(PSKGW_ERATELIMIT)),
                     "ratelimited");
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(PSKGW_EUNAVAIL)),
                     "unavailable");
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(PSKGW_ETIMEOUT)),
                     "timeout");
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(PSKGW_EBUSY)), "busy");
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(PSKGW_ECANCELED)),
                     "canceled");
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(PSKGW_EAUTH)), "auth");
    cr_assert_str_eq(pskgw_upstream_outcome_name(pskgw_upstream_outcome_of(PSKGW_EPARSE)), "error");
    cr_assert_str_eq(pskgw_upstream_op_name(PSKGW_UPSTREAM_OP_AUTH), "authenticate");
    cr_assert_str_eq(pskgw_upstream_op_name(PSKGW_UPSTREAM_OP_PSK), "get_psk");
    cr_assert_str_eq(pskgw_upstream_op_name(PSKGW_UPSTREAM_OP_E2E), "e2e_params");
    for (unsigned i = 1; i < PSKGW_UPSTREAM_LAT_BUCKETS; i++)
        cr_assert_gt(pskgw_upstream_latency_bounds_ms[i], pskgw_upstream_latency_bounds_ms[i - 1]);
}

Test(retry_after, http_date_forms)
{
    /* 1994-11-06 08:49:37 GMT = 784111777 s */
    const int64_t t = 784111777000;

    cr_assert_eq(pskgw_upstream_http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT", 29), t);
    cr_assert_eq(pskgw_upstream_http_date_ms("Sunday, 06-Nov-94 08:49:37 GMT", 30), t);
    cr_assert_eq(pskgw_upstream_http_date_ms("Sun Nov  6 08:49:37 1994", 24), t);
    cr_assert_eq(pskgw_upstream_http_date_ms(" Sun, 06 Nov 1994 08:49:37 GMT\r\n", 32), t);
    cr_assert_eq(pskgw_upstream_http_date_ms("Wed, 21 Oct 2015 07:28:00 GMT", 29), 1445412480000);
    cr_assert_eq(pskgw_upstream_http_date_ms("Sun, 06 Nov 1994 08:49:37 UTC", 29), -1);
    cr_assert_eq(pskgw_upstream_http_date_ms("Sun, 06 Foo 1994 08:49:37 GMT", 29), -1);
    cr_assert_eq(pskgw_upstream_http_date_ms("Sun, 32 Nov 1994 08:49:37 GMT", 29), -1);
    cr_assert_eq(pskgw_upstream_http_date_ms("Sun, 06 Nov 1994 24:49:37 GMT", 29), -1);
    cr_assert_eq(pskgw_upstream_http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT x", 31), -1);
    cr_assert_eq(pskgw_upstream_http_date_ms("", 0), -1);
    cr_assert_eq(pskgw_upstream_http_date_ms(NULL, 0), -1);
}

Test(retry_after, either_form_from_now)
{
    const uint64_t now = 1445412480000; /* Wed, 21 Oct 2015 07:28:00 GMT */

    cr_assert_eq(pskgw_upstream_retry_after_at_ms("7", 1, now), 7000);
    cr_assert_eq(pskgw_upstream_retry_after_at_ms("Wed, 21 Oct 2015 07:28:05 GMT", 29, now), 5000);
    cr_assert_eq(pskgw_upstream_retry_after_at_ms("Wed, 21 Oct 2015 07:27:00 GMT", 29, now), 0);
    cr_assert_eq(pskgw_upstream_retry_after_at_ms("Thu, 21 Oct 2055 07:28:00 GMT", 29, now),
                 86400000);
    cr_assert_eq(pskgw_upstream_retry_after_at_ms("soon", 4, now), -1);
}
