/* Several files: what they must not share. */
#include "helpers.h"

TestSuite(config_cross, .init = cfgtest_setup, .fini = cfgtest_teardown);

Test(config_cross, duplicate_domain_across_files)
{
    static const char b[] = "# second\n"
                            "domain = \"acme\";\n" MIN_API
                            "listeners = ( { proto = \"udp\"; port = 6000; } );\n" MIN_SINKS;
    int rc = load_two("a.conf", MIN_CONF, "b.conf", b);
    cr_assert_eq(rc, PSKGW_ECONFIG);
    cr_assert_null(cfg);
    cr_assert(diag_has("b.conf:2: domain: \"acme\" is already defined in ", "a.conf:1", NULL));
    cr_assert_eq(diag.nerrors, 1);
}

Test(config_cross, same_listener_across_files)
{
    static const char b[] =
        "domain = \"beta\";\n" MIN_API "listeners = ( { proto = \"tcp\"; port = 5684; },\n"
        "              { proto = \"udp\"; address = \"127.0.0.1\"; port = 5684; } "
        ");\n" MIN_SINKS;
    int rc = load_two("a.conf", MIN_CONF, "b.conf", b);
    cr_assert_eq(rc, PSKGW_ECONFIG);
    /* tcp 5684 does not clash with udp 5684; udp 127.0.0.1:5684 clashes with udp 0.0.0.0:5684 */
    cr_assert_eq(diag.nerrors, 1);
    cr_assert(diag_has("b.conf:5: listeners[1]: udp 127.0.0.1 port 5684 is already used by "
                       "listener \"udp:5684\" of domain \"acme\"",
                       "a.conf:4)", NULL));
}

Test(config_cross, same_listener_in_one_file)
{
    int rc =
        load_text("acme.conf", "domain = \"acme\";\n" MIN_API
                               "listeners = ( { proto = \"udp\"; address = \"::1\"; port = 7; },\n"
                               "              { proto = \"udp\"; address = \"0:0::1\"; port = 7; "
                               "name = \"two\"; },\n"
                               "              { proto = \"udp\"; address = \"::2\"; port = 7; "
                               "name = \"three\"; } );\n" MIN_SINKS);
    cr_assert_eq(rc, PSKGW_ECONFIG);
    cr_assert(diag_has("acme.conf:5: listeners[1]: udp 0:0::1 port 7 is already used by listener "
                       "\"udp:7\" of domain \"acme\"",
                       NULL));
    cr_assert_eq(diag.nerrors, 1);
}

Test(config_cross, duplicate_listener_name)
{
    int rc =
        load_text("acme.conf", "domain = \"acme\";\n" MIN_API
                               "listeners = ( { proto = \"udp\"; port = 7; name = \"two\"; },\n"
                               "              { proto = \"tcp\"; port = 7; name = \"two\"; } "
                               ");\n" MIN_SINKS);
    cr_assert_eq(rc, PSKGW_ECONFIG);
    cr_assert(
        diag_has("acme.conf:5: listeners[1].name: \"two\" is already used by listeners[0]", NULL));
    cr_assert_eq(diag.nerrors, 1);
}

Test(config_cross, shared_spool_and_output_files)
{
    static const char a[] = "domain = \"alpha\";\n" MIN_API MIN_LISTENERS
                            "sinks = ( { type = \"file\"; path = \"/tmp/out.jsonl\";\n"
                            "            spool = { path = \"/tmp/one.spool\"; }; } );\n";
    static const char b[] =
        "domain = \"beta\";\n" MIN_API "listeners = ( { proto = \"udp\"; port = 1; } );\n"
        "sinks = ( { type = \"http\"; url = \"https://h\";\n"
        "            spool = { path = \"/tmp/one.spool\"; }; },\n"
        "          { type = \"file\"; path = \"/tmp/out.jsonl\"; name = \"f\"; } "
        ");\n";
    cr_assert_eq(load_two("a.conf", a, "b.conf", b), PSKGW_ECONFIG);
    cr_assert(diag_has("b.conf:5: sinks[0].spool.path: \"/tmp/one.spool\" is also written by "
                       "sinks[0].spool.path of domain \"alpha\"",
                       NULL));
    cr_assert(diag_has("b.conf:7: sinks[1].path: \"/tmp/out.jsonl\" is also written by "
                       "sinks[0].path of domain \"alpha\"",
                       NULL));
    cr_assert_eq(diag.nerrors, 2);
}

Test(config_cross, admin_and_log_must_agree)
{
    static const char a[] = MIN_CONF "admin = { port = 9464; };\nlog = { level = \"debug\"; };\n";
    static const char b[] =
        "domain = \"beta\";\n" MIN_API
        "listeners = ( { proto = \"tcp\"; port = 9464; address = \"127.0.0.1\"; "
        "} );\n" MIN_SINKS "admin = { port = 9465; };\nlog = { level = \"info\"; "
        "};\n";
    cr_assert_eq(load_two("a.conf", a, "b.conf", b), PSKGW_ECONFIG);
    cr_assert(diag_has("b.conf:6: admin: differs from the admin endpoint of ", "a.conf:6", NULL));
    cr_assert(diag_has("b.conf:7: log: differs from the log settings of ", "a.conf:7", NULL));
    cr_assert(diag_has("b.conf:4: listeners[0]: tcp port 9464 is also the admin endpoint's", NULL));
    cr_assert_eq(diag.nerrors, 3);
}

Test(config_cross, errors_in_every_file_are_reported)
{
    cr_assert_eq(load_two("a.conf", "domain = 1;\n", "b.conf", "domain = \"b\"\nx"), PSKGW_ECONFIG);
    cr_assert(diag_has("a.conf:1: domain: must be a string (got an integer)", NULL));
    cr_assert(diag_has("b.conf:2: syntax error", NULL));
}
