/* admin.token_file (required off loopback, read as a secret) and deny_file (hex entries, '#'
 * comments, sorted, case ignored; a bad line is an error with the file's line). */
#include "helpers.h"

TestSuite(config_admin_deny, .init = cfgtest_setup, .fini = cfgtest_teardown);

Test(config_admin_deny, token_file_read_and_required_off_loopback)
{
    write_file("admin.token", "tok-123\n");
    cr_assert_eq(load_text("a.conf", MIN_CONF "admin = { address = \"0.0.0.0\"; port = 0;\n"
                                              "          token_file = \"admin.token\"; };\n"),
                 0);
    cr_assert(cfg->has_admin);
    cr_assert_str_eq(cfg->admin.token.data, "tok-123");
    cr_assert_eq(cfg->admin.token.len, 7);
    pskgw_config_free(cfg);
    cfg = NULL;
    cr_assert_neq(load_text("b.conf", MIN_CONF "admin = { address = \"::\"; port = 0; };\n"), 0);
    cr_assert(
        diag_has("admin.token_file", "required when the admin address is not loopback", NULL));
}

Test(config_admin_deny, loopback_needs_no_token)
{
    cr_assert_eq(load_text("a.conf", MIN_CONF "admin = { address = \"::1\"; port = 0; };\n"), 0);
    cr_assert_null(cfg->admin.token.data);
}

Test(config_admin_deny, deny_file_entries)
{
    const pskgw_config_domain_t *d;

    write_file("deny.list", "# revoked\n\n  ab01   # a device\nFF00\n0011aa\n");
    cr_assert_eq(load_text("a.conf", MIN_CONF "deny_file = \"deny.list\";\n"), 0);
    d = &cfg->domains[0];
    cr_assert_eq(d->ndeny, 3);
    cr_assert_str_eq(d->deny[0], "0011aa");
    cr_assert_str_eq(d->deny[1], "ab01");
    cr_assert_str_eq(d->deny[2], "FF00");
    cr_assert(pskgw_config_denied(d, "AB01"));
    cr_assert(pskgw_config_denied(d, "ff00"));
    cr_assert(pskgw_config_denied(d, "0011AA"));
    cr_assert_not(pskgw_config_denied(d, "AB0"));
    cr_assert_not(pskgw_config_denied(d, NULL));
}

Test(config_admin_deny, deny_file_errors)
{
    write_file("deny.list", "ab01\nnot-hex\n");
    cr_assert_neq(load_text("a.conf", MIN_CONF "deny_file = \"deny.list\";\n"), 0);
    cr_assert(diag_has("deny.list:2: not an identity or ROTPublicUID", NULL));
    cr_assert_neq(load_text("b.conf", MIN_CONF "deny_file = \"missing.list\";\n"), 0);
    cr_assert(diag_has("cannot read", NULL));
}

Test(config_admin_deny, files_with_different_tokens_refused)
{
    write_file("t1", "one\n");
    write_file("t2", "two\n");
    cr_assert_neq(load_two("a.conf",
                           "domain = \"a\";\n" MIN_API MIN_LISTENERS MIN_SINKS
                           "admin = { port = 9464; token_file = \"t1\"; };\n",
                           "b.conf",
                           "domain = \"b\";\n" MIN_API
                           "listeners = ( { proto = \"udp\"; port = 5685; } );\n" MIN_SINKS
                           "admin = { port = 9464; token_file = \"t2\"; };\n"),
                  0);
    cr_assert(diag_has("differs from the admin endpoint", NULL));
}
