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

/* spool.path is a directory holding "<domain>-<sink>[-wN].spool": sinks of one domain and of
 * several domains may share it (trailing slashes do not matter). */
Test(config_cross, spool_directory_shared_by_sinks_and_domains)
{
    static const char a[] = "domain = \"alpha\";\n" MIN_API MIN_LISTENERS
                            "sinks = ( { type = \"file\"; path = \"/tmp/alpha.jsonl\";\n"
                            "            spool = { path = \"/var/lib/pskgw/spool\"; }; },\n"
                            "          { type = \"http\"; url = \"https://h\";\n"
                            "            spool = { path = \"/var/lib/pskgw/spool/\"; }; } );\n";
    static const char b[] =
        "domain = \"beta\";\n" MIN_API "listeners = ( { proto = \"udp\"; port = 1; } );\n"
        "sinks = ( { type = \"file\"; path = \"/tmp/beta.jsonl\";\n"
        "            spool = { path = \"/var/lib/pskgw/spool\"; }; } );\n";
    int rc = load_two("a.conf", a, "b.conf", b);
    if (rc != 0)
        diag_dump();
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(cfg->domains[0].sinks[0].spool.path, "/var/lib/pskgw/spool");
    cr_assert_str_eq(cfg->domains[1].sinks[0].spool.path, "/var/lib/pskgw/spool");
}

/* Within a shared directory the spool file names must differ: "<domain>-<sink>" of domain
 * "a-b", sink "c" and of domain "a", sink "b-c" are both "a-b-c". */
Test(config_cross, spool_file_names_must_differ_in_a_shared_directory)
{
    static const char a[] = "domain = \"a-b\";\n" MIN_API MIN_LISTENERS
                            "sinks = ( { type = \"http\"; name = \"c\"; url = \"https://h\";\n"
                            "            spool = { path = \"/tmp/sp\"; }; } );\n";
    static const char b[] =
        "domain = \"a\";\n" MIN_API "listeners = ( { proto = \"udp\"; port = 1; } );\n"
        "sinks = ( { type = \"http\"; name = \"b-c\"; url = \"https://h\";\n"
        "            spool = { path = \"/tmp/sp/\"; }; } );\n";
    static const char b_elsewhere[] =
        "domain = \"a\";\n" MIN_API "listeners = ( { proto = \"udp\"; port = 1; } );\n"
        "sinks = ( { type = \"http\"; name = \"b-c\"; url = \"https://h\";\n"
        "            spool = { path = \"/tmp/sp2\"; }; } );\n";
    cr_assert_eq(load_two("a.conf", a, "b.conf", b), PSKGW_ECONFIG);
    cr_assert(diag_has("b.conf:5: sinks[0].spool.path: spool file \"a-b-c.spool\" in \"/tmp/sp/\" "
                       "is also written by sinks[0].spool.path of domain \"a-b\"",
                       NULL));
    cr_assert_eq(diag.nerrors, 1);
    pskgw_config_free(cfg);
    cfg = NULL;
    pskgw_config_diag_deinit(&diag);
    pskgw_config_diag_init(&diag);
    int rc = load_two("a.conf", a, "b.conf", b_elsewhere);
    if (rc != 0)
        diag_dump();
    cr_assert_eq(rc, 0, "different directories");
}

/* File-sink paths and dead-letter files stay unique, and none may be a spool directory. */
Test(config_cross, output_files_must_not_be_shared)
{
    static const char a[] = "domain = \"alpha\";\n" MIN_API MIN_LISTENERS
                            "sinks = ( { type = \"file\"; path = \"/tmp/out.jsonl\";\n"
                            "            spool = { path = \"/tmp/spool\"; }; } );\n";
    static const char b[] =
        "domain = \"beta\";\n" MIN_API "listeners = ( { proto = \"udp\"; port = 1; } );\n"
        "sinks = ( { type = \"http\"; url = \"https://h\"; dead_letter_path = \"/tmp/out.jsonl\"; "
        "},\n"
        "          { type = \"file\"; path = \"/tmp/out.jsonl\"; name = \"f\"; },\n"
        "          { type = \"file\"; path = \"/tmp/spool\"; name = \"g\"; } );\n";
    cr_assert_eq(load_two("a.conf", a, "b.conf", b), PSKGW_ECONFIG);
    cr_assert(diag_has("b.conf:5: sinks[0].dead_letter_path: \"/tmp/out.jsonl\" is also written by "
                       "sinks[0].path of domain \"alpha\"",
                       NULL));
    cr_assert(diag_has("b.conf:6: sinks[1].path: \"/tmp/out.jsonl\" is also written by "
                       "sinks[0].path of domain \"alpha\"",
                       NULL));
    cr_assert(diag_has("b.conf:7: sinks[2].path: \"/tmp/spool\" is the spool directory of "
                       "sinks[0].spool.path of domain \"alpha\"",
                       NULL));
    cr_assert_eq(diag.nerrors, 3);
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
