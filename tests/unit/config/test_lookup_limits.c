/* The lookup-admission keys of `limits` (issue 16 section 1): defaults, values, ranges. */
#include "helpers.h"

TestSuite(config_lookup_limits, .init = cfgtest_setup, .fini = cfgtest_teardown);

Test(config_lookup_limits, defaults)
{
    cr_assert_eq(load_text("acme.conf", MIN_CONF), 0);
    const pskgw_config_limits_t *l = &cfg->domains[0].limits;

    cr_assert_eq(l->lookups_in_flight, 0, "0: the API client's max_in_flight");
    cr_assert_eq(l->lookups_per_source, 8);
    cr_assert_eq(l->lookup_queue_per_source, 256);
    cr_assert_eq(l->lookups_per_source_per_s, 100);
    cr_assert_eq(l->lookup_burst, 200);
    cr_assert_eq(l->good_source_share_pct, 25);
    cr_assert_eq(l->good_source_window_s, 3600);
}

Test(config_lookup_limits, values)
{
    cr_assert_eq(load_text("acme.conf", MIN_CONF "limits = { lookups_in_flight = 16; "
                                                 "lookups_per_source = 2; "
                                                 "lookup_queue_per_source = 0; "
                                                 "lookups_per_source_per_s = 0; "
                                                 "lookup_burst = 5; good_source_share_pct = 90; "
                                                 "good_source_window_s = 0; };\n"),
                 0);
    const pskgw_config_limits_t *l = &cfg->domains[0].limits;

    cr_assert_eq(l->lookups_in_flight, 16);
    cr_assert_eq(l->lookups_per_source, 2);
    cr_assert_eq(l->lookup_queue_per_source, 0);
    cr_assert_eq(l->lookups_per_source_per_s, 0);
    cr_assert_eq(l->lookup_burst, 5);
    cr_assert_eq(l->good_source_share_pct, 90);
    cr_assert_eq(l->good_source_window_s, 0);
}

Test(config_lookup_limits, ranges)
{
    cr_assert_eq(load_text("acme.conf", MIN_CONF
                           "limits = { good_source_share_pct = 91; lookups_per_source = 0; "
                           "};\n"),
                 PSKGW_ECONFIG);
    cr_assert(diag_has("limits.good_source_share_pct: must be between 0 and 90 (got 91)", NULL));
    cr_assert(diag_has("limits.lookups_per_source: must be between 1 and 100000 (got 0)", NULL));
}
