/* Invalid configurations: each error reported as "file:line: path: message", all of them. */
#include "helpers.h"

#include <dirent.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(config_bad, .init = cfgtest_setup, .fini = cfgtest_teardown);

/* Load text as acme.conf; it must fail with a configuration error. */
static void expect_fail(const char *text)
{
    int rc = load_text("acme.conf", text);
    cr_assert_eq(rc, PSKGW_ECONFIG, "rc %d", rc);
    cr_assert_null(cfg);
    cr_assert_gt(diag.nerrors, 0);
}

Test(config_bad, out_of_range)
{
    expect_fail(
        "domain = \"acme\";\n"
        "api = { url = \"https://x.example\"; key_id = \"K\"; secret_file = \"./api.secret\";\n"
        "        timeout_ms = 5; };\n" MIN_LISTENERS MIN_SINKS);
    cr_assert(
        diag_has("acme.conf:3: api.timeout_ms: must be between 100 and 600000 (got 5)", NULL));
    cr_assert_eq(diag.nerrors, 1);
    /* The full text starts with the file name as given. */
    cr_assert_eq(strncmp(diag.items[0].text, test_dir, strlen(test_dir)), 0);
    cr_assert_eq(diag.items[0].line, 3);
    cr_assert_str_eq(diag.items[0].path, "api.timeout_ms");
}

Test(config_bad, large_number_without_l_suffix_says_so)
{
    /* 2 GiB is a valid spool size, but written without L libconfig 1.5 truncates it: the
     * error names the suffix instead of a range the value is within. */
    expect_fail("domain = \"acme\";\n" MIN_API MIN_LISTENERS
                "sinks = ( { type = \"file\"; path = \"/tmp/x.jsonl\";\n"
                "            spool = { path = \"/tmp/spool\"; max_bytes = 2147483648; }; } );\n");
    cr_assert(diag_has("sinks[0].spool.max_bytes: 2147483648 is above 2147483647 and needs an L "
                       "suffix (write 2147483648L)",
                       NULL));
    cr_assert_eq(diag.nerrors, 1);
}

Test(config_bad, out_of_range_negative_and_huge)
{
    expect_fail("domain = \"acme\";\n" MIN_API "listeners = ( { proto = \"udp\"; port = -1; },\n"
                "              { proto = \"udp\"; port = 65536; } );\n" MIN_SINKS
                "limits = { max_sessions = 99999999999; max_pending_handshakes = 4294967296;\n"
                "  max_parked_bytes = 0x100000100; idle_timeout_s = 99999999999999999999999; };\n"
                "admin = { port : 4294967297 };\n");
    cr_assert(
        diag_has("acme.conf:4: listeners[0].port: must be between 0 and 65535 (got -1)", NULL));
    cr_assert(
        diag_has("acme.conf:5: listeners[1].port: must be between 0 and 65535 (got 65536)", NULL));
    /* libconfig 1.5 would truncate these to 32 bits; they are caught as written. */
    cr_assert(diag_has("acme.conf:7: limits.max_sessions: must be between 1 and 10000000 (got "
                       "99999999999)",
                       NULL));
    cr_assert(diag_has("limits.max_pending_handshakes: must be between 1 and 1000000 (got "
                       "4294967296)",
                       NULL));
    cr_assert(diag_has("limits.max_parked_bytes: must be between 256 and 1048576 (got 0x100000100)",
                       NULL));
    cr_assert(diag_has("acme.conf:8: limits.idle_timeout_s: must be between 1 and 604800 (got "
                       "99999999999999999999999)",
                       NULL));
    cr_assert(
        diag_has("acme.conf:9: admin.port: must be between 0 and 65535 (got 4294967297)", NULL));
    cr_assert_eq(diag.nerrors, 7);
}

Test(config_bad, bad_type)
{
    expect_fail(
        "domain = \"acme\";\n"
        "api = { url = \"https://x.example\"; key_id = \"K\"; secret_file = \"./api.secret\";\n"
        "        timeout_ms = \"3000\"; max_in_flight = 1.5; };\n"
        "listeners = { proto = \"udp\"; port = 1; };\n" MIN_SINKS
        "cache = 5;\nciphers = [ \"PSK-AES128-CCM8\" ];\n");
    cr_assert(diag_has("acme.conf:3: api.timeout_ms: must be an integer (got a string)", NULL));
    cr_assert(
        diag_has("acme.conf:3: api.max_in_flight: must be an integer (got a floating-point", NULL));
    cr_assert(
        diag_has("acme.conf:4: listeners: must be a list ( { ... }, ... ) (got a group", NULL));
    cr_assert(diag_has("acme.conf:6: cache: must be a group { ... } (got an integer)", NULL));
    cr_assert(diag_has("acme.conf:7: ciphers: must be a string (got an array", NULL));
}

Test(config_bad, bad_type_in_lists)
{
    expect_fail("domain = \"acme\";\n" MIN_API
                "listeners = ( \"udp\", { proto = \"udp\"; port = 1; } );\n"
                "sinks = ( { type = \"http\"; url = \"https://h.example\"; headers = \"X: y\"; },\n"
                "          { type = \"mqtt\"; host = \"b\"; qos = \"1\"; } );\n");
    cr_assert(diag_has("acme.conf:4: listeners[0]: must be a group { ... } (got a string)", NULL));
    cr_assert(diag_has("acme.conf:5: sinks[0].headers: must be an array of strings", NULL));
    cr_assert(diag_has("acme.conf:6: sinks[1].qos: must be an integer", NULL));
}

Test(config_bad, unknown_keys_top_and_nested)
{
    expect_fail(
        "domain = \"acme\";\n"
        "api = { url = \"https://x.example\"; key_id = \"K\"; secret_file = \"./api.secret\";\n"
        "        timout_ms = 3000; };\n"
        "listeners = ( { proto = \"udp\"; port = 1; colour = \"red\"; } );\n"
        "sinks = ( { type = \"file\"; path = \"-\";\n"
        "            spool = { path = \"/tmp/x\"; sync = \"always\"; }; } );\n"
        "extra = 1;\n");
    cr_assert(
        diag_has("acme.conf:3: api.timout_ms: unknown key (did you mean \"timeout_ms\"?)", NULL));
    cr_assert(diag_has("acme.conf:4: listeners[0].colour: unknown key", NULL));
    cr_assert(
        diag_has("acme.conf:6: sinks[0].spool.sync: unknown key (did you mean \"fsync\"?)", NULL));
    cr_assert(diag_has("acme.conf:7: extra: unknown key", NULL));
    cr_assert_eq(diag.nerrors, 4);
}

Test(config_bad, key_of_another_type)
{
    expect_fail("domain = \"acme\";\n" MIN_API
                "listeners = ( { proto = \"udp\"; port = 1; framing = \"len16\"; },\n"
                "              { proto = \"tcp\"; port = 2; cookie_rotate_s = 60; } );\n"
                "sinks = ( { type = \"http\"; url = \"https://h.example\"; path = \"/x\"; } );\n");
    cr_assert(
        diag_has("acme.conf:4: listeners[0].framing: only valid when proto is \"tcp\"", NULL));
    cr_assert(diag_has(
        "acme.conf:5: listeners[1].cookie_rotate_s: only valid when proto is \"udp\"", NULL));
    cr_assert(diag_has("acme.conf:6: sinks[0].path: only valid when type is \"file\"", NULL));
}

Test(config_bad, listener_cid)
{
    expect_fail("domain = \"acme\";\n" MIN_API
                "listeners = ( { proto = \"udp\"; port = 1; cid = \"yes\"; },\n"
                "              { proto = \"udp\"; port = 2; cid_length = 3; },\n"
                "              { proto = \"udp\"; port = 3; cid_length = 17; },\n"
                "              { proto = \"tcp\"; port = 4; cid = \"on\"; } );\n"
                "sinks = ( { type = \"file\"; path = \"-\"; } );\n");
    cr_assert(diag_has("acme.conf:4: listeners[0].cid:", NULL));
    cr_assert(diag_has("acme.conf:5: listeners[1].cid_length:", NULL));
    cr_assert(diag_has("acme.conf:6: listeners[2].cid_length:", NULL));
    cr_assert(diag_has("acme.conf:7: listeners[3].cid: only valid when proto is \"udp\"", NULL));
    cr_assert_eq(diag.nerrors, 4);
}

/* wolfSSL's DTLS anti-replay window is fixed at build time: another size is refused with why,
 * the one it has is accepted (config_good defaults_of_a_minimal_domain reads it back). */
Test(config_bad, replay_window_other_than_wolfssls)
{
    expect_fail("domain = \"acme\";\n" MIN_API
                "listeners = ( { proto = \"udp\"; port = 1; replay_window = 128; },\n"
                "              { proto = \"udp\"; port = 2; replay_window = 64; },\n"
                "              { proto = \"tcp\"; port = 3; replay_window = 64; } );\n"
                "sinks = ( { type = \"file\"; path = \"-\"; } );\n");
    cr_assert(diag_has("acme.conf:4: listeners[0].replay_window: 128 is not available: the DTLS "
                       "anti-replay window is wolfSSL's, fixed at 64 records",
                       NULL));
    cr_assert(diag_has("acme.conf:6: listeners[2].replay_window: only valid when proto is \"udp\"",
                       NULL));
    cr_assert_eq(diag.nerrors, 2);
}

Test(config_bad, missing_required_keys)
{
    expect_fail("api = { url = \"https://x.example\"; secret_file = \"./api.secret\"; };\n"
                "listeners = ( { port = 1; }, { proto = \"tcp\"; } );\n"
                "sinks = ( { type = \"kafka\"; brokers = \"k:9092\"; }, { path = \"-\"; } );\n");
    cr_assert(diag_has("acme.conf:1: domain: missing required key", NULL));
    cr_assert(diag_has("acme.conf:1: api.key_id: missing required key", NULL));
    cr_assert(diag_has("acme.conf:2: listeners[0].proto: missing required key", NULL));
    cr_assert(diag_has("acme.conf:2: listeners[1].port: missing required key", NULL));
    cr_assert(diag_has("acme.conf:3: sinks[0].topic: missing required key", NULL));
    cr_assert(diag_has("acme.conf:3: sinks[1].type: missing required key", NULL));
    cr_assert_eq(diag.nerrors, 6);
}

Test(config_bad, missing_groups_and_secret)
{
    expect_fail("domain = \"acme\";\napi = { url = \"https://x.example\"; key_id = \"K\"; };\n");
    cr_assert(diag_has("acme.conf:2: api.secret_file: missing required key", NULL));
    cr_assert(diag_has("acme.conf:1: listeners: missing required key", NULL));
    cr_assert(diag_has("acme.conf:1: sinks: missing required key", NULL));
    cr_assert_eq(diag.nerrors, 3);
}

Test(config_bad, empty_lists)
{
    expect_fail("domain = \"acme\";\n" MIN_API "listeners = ( );\n" MIN_SINKS);
    cr_assert(diag_has("acme.conf:4: listeners: must have 1 to 64 entries (got 0)", NULL));
}

Test(config_bad, unreadable_secret_file)
{
    expect_fail(
        "domain = \"acme\";\n"
        "api = { url = \"https://x.example\"; key_id = \"K\";\n"
        "        secret_file = \"/nonexistent/pskgw/secret\"; };\n" MIN_LISTENERS MIN_SINKS);
    cr_assert(diag_has("acme.conf:3: api.secret_file: cannot read secret file "
                       "\"/nonexistent/pskgw/secret\": No such file or directory",
                       NULL));
}

/* Loads acme.conf (written already) again and tells whether the mode-0 file "noperm" was refused
 * with "Permission denied". Root reads any file whatever its mode (and CI runs as root), so then
 * the load runs in a child that gave test_dir's files to "nobody" and became nobody: an owner is
 * refused by mode 0. The child reports by its exit status only (no Criterion calls). */
static bool unreadable_file_refused(void)
{
    static const char want[] = "acme.conf:7: sinks[1].password_file: cannot read secret file";

    if (geteuid() != 0)
        return diag_has(want, "Permission denied", NULL);
    const struct passwd *pw = getpwnam("nobody");
    uid_t uid = pw != NULL ? pw->pw_uid : 65534;
    gid_t gid = pw != NULL ? pw->pw_gid : 65534;
    char conf[1024];
    snprintf(conf, sizeof(conf), "%s", tpath("acme.conf"));
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        DIR *d = opendir(test_dir);
        const struct dirent *e;
        char p[1024];
        if (d == NULL || chown(test_dir, uid, gid) != 0)
            _exit(2);
        while ((e = readdir(d)) != NULL) {
            snprintf(p, sizeof(p), "%s/%s", test_dir, e->d_name);
            if (strcmp(e->d_name, "..") != 0 && chown(p, uid, gid) != 0)
                _exit(2);
        }
        closedir(d);
        if (setgid(gid) != 0 || setuid(uid) != 0 || geteuid() == 0)
            _exit(3);
        pskgw_config_diag_deinit(&diag);
        pskgw_config_diag_init(&diag);
        const char *paths[1] = { conf };
        int rc = pskgw_config_load(paths, 1, &cfg, &diag);
        _exit(rc == PSKGW_ECONFIG && diag_has(want, "Permission denied", NULL) ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the unprivileged child died (status %d)", status);
    cr_assert_neq(WEXITSTATUS(status), 2, "could not give the test files to nobody");
    cr_assert_neq(WEXITSTATUS(status), 3, "could not drop privileges to nobody");
    return WEXITSTATUS(status) == 0;
}

Test(config_bad, secret_file_directory_empty_and_unreadable)
{
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/dir", test_dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_file("empty", "\n");
    cr_assert_eq(mkfifo(tpath("fifo"), 0600), 0);
    write_file("noperm", "x");
    cr_assert_eq(chmod(tpath("noperm"), 0), 0);
    expect_fail("domain = \"acme\";\n"
                "api = { url = \"https://x.example\"; key_id = \"K\"; secret_file = \"./dir\"; "
                "};\n" MIN_LISTENERS
                "sinks = ( { type = \"mqtt\"; host = \"h\"; username = \"u\";\n"
                "            password_file = \"./empty\"; },\n"
                "          { type = \"redis-stream\"; url = \"redis://h\";\n"
                "            password_file = \"./noperm\"; },\n"
                "          { type = \"mqtt\"; host = \"h\"; username = \"u\";\n"
                "            password_file = \"./fifo\"; } );\n");
    cr_assert(diag_has("acme.conf:2: api.secret_file: cannot read secret file",
                       "not a regular file", NULL));
    cr_assert(diag_has("acme.conf:5: sinks[0].password_file: secret file", "is empty", NULL));
    /* A FIFO is refused, not waited on. */
    cr_assert(diag_has("acme.conf:9: sinks[2].password_file: cannot read secret file",
                       "not a regular file", NULL));
    cr_assert(unreadable_file_refused(), "no \"Permission denied\" for sinks[1].password_file");
}

Test(config_bad, both_secret_forms)
{
    expect_fail(
        "domain = \"acme\";\n"
        "api = { url = \"https://x.example\"; key_id = \"K\"; secret_file = \"./api.secret\";\n"
        "        secret = \"abc\"; };\n" MIN_LISTENERS MIN_SINKS);
    cr_assert(diag_has("acme.conf:3: api.secret: give secret_file or secret, not both", NULL));
}

Test(config_bad, null_cipher_refused)
{
    expect_fail(MIN_CONF "ciphers = \"PSK-AES128-CCM8:PSK-NULL-SHA256\";\n");
    cr_assert(diag_has("acme.conf:6: ciphers: \"PSK-NULL-SHA256\": NULL cipher suites are refused",
                       NULL));
}

Test(config_bad, unknown_and_duplicate_cipher)
{
    expect_fail(MIN_CONF "ciphers = \"AES128-SHA:PSK-AES128-CCM8:PSK-AES128-CCM-8\";\n");
    cr_assert(diag_has("acme.conf:6: ciphers: \"AES128-SHA\": unknown cipher suite", NULL));
    cr_assert(diag_has("acme.conf:6: ciphers: \"PSK-AES128-CCM-8\": listed twice", NULL));
    cr_assert_eq(diag.nerrors, 2);
}

Test(config_bad, empty_cipher_list)
{
    expect_fail(MIN_CONF "ciphers = \"::\";\n");
    cr_assert(diag_has("acme.conf:6: ciphers: must name at least one cipher suite", NULL));
}

Test(config_bad, bad_enum_values)
{
    expect_fail(MIN_CONF "e2e = \"maybe\";\n"
                         "log = { level = \"loud\"; format = 1; };\n");
    cr_assert(diag_has("acme.conf:6: e2e: must be one of \"off\", \"auto\", \"required\" (got "
                       "\"maybe\")",
                       NULL));
    cr_assert(diag_has("acme.conf:7: log.level: must be one of \"err\", \"warning\"", NULL));
    cr_assert(diag_has(
        "acme.conf:7: log.format: must be one of \"text\", \"json\" (got an integer)", NULL));
    expect_fail(MIN_CONF "e2e_header_case = \"UPPER\";\n"
                         "e2e_v2_layout = \"pad2\";\n");
    cr_assert(diag_has("acme.conf:6: e2e_header_case: must be one of \"lower\", \"upper\" (got "
                       "\"UPPER\")",
                       NULL));
    cr_assert(diag_has(
        "acme.conf:7: e2e_v2_layout: must be one of \"seed\", \"pad1\" (got \"pad2\")", NULL));
}

Test(config_bad, bad_sink_type_stops_type_specific_checks)
{
    expect_fail("domain = \"acme\";\n" MIN_API MIN_LISTENERS
                "sinks = ( { type = \"ftp\"; host = \"x\"; queue_size = 0; } );\n");
    cr_assert(diag_has("acme.conf:5: sinks[0].type: must be one of \"file\", \"http\", \"mqtt\", "
                       "\"redis-stream\", \"kafka\" (got \"ftp\")",
                       NULL));
    cr_assert(diag_has("sinks[0].queue_size: must be between 1 and 10000000 (got 0)", NULL));
    cr_assert_eq(diag.nerrors, 2); /* no "host: only valid when" noise */
}

Test(config_bad, psk_key_bits_choices)
{
    expect_fail(
        "domain = \"acme\";\n"
        "api = { url = \"https://x.example\"; key_id = \"K\"; secret_file = \"./api.secret\";\n"
        "        psk_key_bits = 192; };\n" MIN_LISTENERS MIN_SINKS);
    cr_assert(diag_has("acme.conf:3: api.psk_key_bits: must be 128 or 256 (got 192)", NULL));
}

Test(config_bad, multiple_errors_collected)
{
    expect_fail("domain = \"ac me\";\n"
                "api = { url = \"ftp://x\"; key_id = \"K\"; secret_file = \"./api.secret\";\n"
                "        retry_min_ms = 5000; retry_max_ms = 100; };\n"
                "listeners = ( { proto = \"udp\"; address = \"localhost\"; port = 1;\n"
                "                max_message_bytes = 20000; } );\n"
                "sinks = ( { type = \"file\"; path = \"-\"; payload = \"raw\"; } );\n"
                "e2e = \"on\";\n");
    cr_assert(diag_has("acme.conf:1: domain: may hold only letters", NULL));
    cr_assert(diag_has("acme.conf:2: api.url: must be an http:// or https:// URL", NULL));
    cr_assert(diag_has("acme.conf:3: api.retry_min_ms: must not exceed retry_max_ms", NULL));
    cr_assert(diag_has("acme.conf:4: listeners[0].address: must be a numeric IPv4 or IPv6", NULL));
    cr_assert(diag_has("acme.conf:4: listeners[0].max_message_bytes: must be at most 16384", NULL));
    cr_assert(diag_has("acme.conf:6: sinks[0].payload: \"raw\" is only valid for", NULL));
    cr_assert(diag_has("acme.conf:7: e2e: must be one of", NULL));
    cr_assert_eq(diag.nerrors, 7);
}

/* A listener refuses messages above 16384 bytes at start whatever its framing (dtls/ctx.h):
 * --check-config refuses them first, for len16 and newline framing too. */
Test(config_bad, max_message_bytes_above_what_a_listener_handles)
{
    expect_fail(
        "domain = \"acme\";\n"
        "api = { url = \"https://x.example\"; key_id = \"K\"; secret_file = \"./api.secret\"; };\n"
        "listeners = ( { proto = \"tcp\"; port = 1; framing = \"len16\"; max_message_bytes = "
        "20000; },\n"
        "              { proto = \"tcp\"; port = 2; framing = \"newline\"; max_message_bytes = "
        "16385; } );\n" MIN_SINKS);
    cr_assert(diag_has("acme.conf:3: listeners[0].max_message_bytes: must be at most 16384", NULL));
    cr_assert(diag_has("acme.conf:4: listeners[1].max_message_bytes: must be at most 16384", NULL));
    cr_assert_eq(diag.nerrors, 2);
}

Test(config_bad, too_many_errors_are_capped)
{
    size_t cap = 200 * 40 + 256;
    char *text = malloc(cap);
    size_t used = (size_t)snprintf(text, cap, "%s", MIN_CONF);
    for (int i = 0; i < 200; i++)
        used += (size_t)snprintf(text + used, cap - used, "unknown_%d = 1;\n", i);
    expect_fail(text);
    free(text);
    cr_assert_eq(diag.nerrors, PSKGW_CONFIG_MAX_DIAG_PER_FILE + 1);
    cr_assert(diag.truncated);
    cr_assert(diag_has("too many errors; the rest are not shown", NULL));
}

Test(config_bad, syntax_error_has_file_and_line)
{
    expect_fail("domain = \"acme\";\n"
                "api = { url = \"https://x.example\";\n"
                "        key_id = = \"K\"; };\n");
    cr_assert_eq(diag.nerrors, 1);
    cr_assert(diag_has("acme.conf:3: syntax error", NULL));
    cr_assert_null(diag.items[0].path);
    cr_assert_eq(diag.items[0].line, 3);
}

Test(config_bad, duplicate_setting_is_a_syntax_error)
{
    expect_fail(MIN_CONF "domain = \"again\";\n");
    cr_assert(diag_has("acme.conf:6: ", NULL));
}

Test(config_bad, include_refused)
{
    write_file("other.conf", "domain = \"x\";\n");
    expect_fail("# a comment\n  @include \"other.conf\"\n" MIN_CONF);
    cr_assert(diag_has("acme.conf:2: @include is not supported", NULL));
}

Test(config_bad, nul_byte_and_missing_file)
{
    static const char text[] = "domain = \"acme\";\n\0junk";
    write_bytes("nul.conf", text, sizeof(text));
    const char *paths[2] = { NULL, NULL };
    char p1[1024], p2[1024];
    snprintf(p1, sizeof(p1), "%s", tpath("nul.conf"));
    snprintf(p2, sizeof(p2), "%s", tpath("missing.conf"));
    paths[0] = p1;
    paths[1] = p2;
    cr_assert_eq(pskgw_config_load(paths, 2, &cfg, &diag), PSKGW_ECONFIG);
    cr_assert(diag_has("nul.conf:2: contains a NUL byte", NULL));
    cr_assert(diag_has("missing.conf: cannot open: No such file or directory", NULL));
    cr_assert_eq(diag.nerrors, 2);
}

Test(config_bad, invalid_arguments)
{
    const char *paths[1] = { NULL };
    cr_assert_eq(pskgw_config_load(NULL, 1, &cfg, &diag), PSKGW_EINVAL);
    cr_assert_eq(pskgw_config_load(paths, 0, &cfg, &diag), PSKGW_EINVAL);
    cr_assert_eq(pskgw_config_load(paths, 1, &cfg, &diag), PSKGW_EINVAL);
    cr_assert_eq(pskgw_config_load_string("x", NULL, &cfg, &diag), PSKGW_EINVAL);
    /* diag may be NULL: errors are still counted */
    cr_assert_eq(pskgw_config_load_string("x", "domain = 1;", &cfg, NULL), PSKGW_ECONFIG);
    cr_assert_null(cfg);
}

Test(config_bad, redis_urls)
{
    write_file("kek", "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF");
    static const char *const bad[] = {
        "rediss://h:1/0",    "TLS to Redis",
        "redis://:pw@h/0",   "credentials in the URL",
        "http://h",          "must be a redis://host:port/db URL",
        "redis://h:0/1",     "port must be between 1 and 65535",
        "redis://h:99999",   "port must be between 1 and 65535",
        "redis://h:1/x",     "database must be a number",
        "redis://[::1/0",    "bad IPv6",
        "redis://h:1/2?x=1", "no query",
        "redis://h:12ab",    "port must be between",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i += 2) {
        char text[1024];
        snprintf(text, sizeof(text),
                 MIN_CONF "cache = { redis = \"%s\"; kek_file = \"./kek\"; };\n", bad[i]);
        expect_fail(text);
        cr_assert(diag_has("acme.conf:6: cache.redis: ", bad[i + 1], NULL), "%s", bad[i]);
        pskgw_config_diag_deinit(&diag);
        pskgw_config_diag_init(&diag);
    }
    expect_fail(MIN_CONF "cache = { redis = \"redis://h\"; };\n");
    cr_assert(diag_has("acme.conf:6: cache.kek_file: required with cache.redis", NULL));
}

Test(config_bad, sink_specific_checks)
{
    write_file("hdr", "Good: yes\nno colon here\n");
    write_file("props", "acks=1\n");
    expect_fail("domain = \"acme\";\n" MIN_API MIN_LISTENERS "sinks = (\n"
                "  { type = \"http\"; url = \"https://h\"; headers = [ \"Content-Length: 5\",\n"
                "    \"Bad Name: x\" ]; headers_file = \"./hdr\"; },\n"
                "  { type = \"mqtt\"; host = \"b\"; topic = \"a/{device}\"; password_file = "
                "\"./api.secret\"; },\n"
                "  { type = \"kafka\"; brokers = \"a:1,,b:2\"; topic = \"bad topic\";\n"
                "    properties = [ \"enable.idempotence=false\", \"x\" ];\n"
                "    properties_file = \"./props\"; },\n"
                "  { type = \"redis-stream\"; url = \"redis://r\"; stream = \"s:{domain\"; }\n"
                ");\n");
    cr_assert(diag_has("acme.conf:6: sinks[0].headers[0]: this header is set by pskgw", NULL));
    cr_assert(
        diag_has("acme.conf:6: sinks[0].headers[1]: header name must be an HTTP token", NULL));
    cr_assert(diag_has("sinks[0].headers_file: line 2 of the secret file: must be \"Name: value\"",
                       NULL));
    cr_assert(diag_has("acme.conf:8: sinks[1].topic: unknown placeholder", NULL));
    cr_assert(diag_has("acme.conf:8: sinks[1].password_file: needs a username", NULL));
    cr_assert(diag_has("sinks[2].brokers: must be \"host:port,host:port\"", NULL));
    cr_assert(diag_has("sinks[2].topic: may hold only letters", NULL));
    cr_assert(diag_has("sinks[2].properties[0]: set by pskgw", NULL));
    cr_assert(diag_has("sinks[2].properties[1]: must be \"key=value\"", NULL));
    cr_assert(diag_has("sinks[2].properties_file: line 1 of the secret file: set by pskgw", NULL));
    cr_assert(diag_has("sinks[3].stream: unknown placeholder", NULL));
    /* Secret file content never appears in a message. */
    for (size_t i = 0; i < diag.nitems; i++)
        cr_assert_null(strstr(diag.items[i].text, "no colon here"));
}

Test(config_bad, mqtt_wildcards)
{
    expect_fail("domain = \"acme\";\n" MIN_API MIN_LISTENERS
                "sinks = ( { type = \"mqtt\"; host = \"b\"; topic = \"a/#\"; } );\n");
    cr_assert(diag_has("sinks[0].topic: must not contain the wildcards", NULL));
}

/* Keys that no module takes are not in the schema: a file still using one is refused like any
 * unknown key, not parsed and then ignored. */
Test(config_bad, keys_no_module_takes_are_unknown)
{
    write_file("ca.pem", "x");
    expect_fail(
        "domain = \"acme\";\n"
        "api = { url = \"https://x.example\"; key_id = \"K\"; secret_file = \"./api.secret\";\n"
        "        retries = 3; };\n" MIN_LISTENERS "cache = { redis_prefix = \"pskgw\"; };\n"
        "sinks = ( { type = \"file\"; path = \"out.jsonl\"; retry_min_ms = 100;\n"
        "            spool = { path = \"spool\"; fsync_interval_ms = 1000; }; },\n"
        "          { type = \"http\"; url = \"https://h.example\"; ca_file = \"ca.pem\"; },\n"
        "          { type = \"mqtt\"; host = \"b\"; tls = false; ca_file = \"ca.pem\"; } );\n");
    cr_assert(diag_has("api.retries: unknown key", NULL));
    cr_assert(diag_has("cache.redis_prefix: unknown key", NULL));
    cr_assert(diag_has("sinks[0].retry_min_ms: unknown key", NULL));
    cr_assert(diag_has("sinks[0].spool.fsync_interval_ms: unknown key", NULL));
    cr_assert(diag_has("sinks[1].ca_file: unknown key", NULL));
    cr_assert(diag_has("sinks[2].tls: unknown key", NULL));
    cr_assert(diag_has("sinks[2].ca_file: unknown key", NULL));
    cr_assert_eq(diag.nerrors, 7);
}

Test(config_bad, plain_http_api_warns)
{
    cr_assert_eq(load_text("acme.conf",
                           "domain = \"acme\";\n"
                           "api = { url = \"http://ssapi.example.com\"; key_id = \"K\";\n"
                           "        secret_file = \"./api.secret\"; };\n" MIN_LISTENERS MIN_SINKS),
                 0);
    cr_assert_eq(diag.nwarnings, 1);
    cr_assert(diag_has("acme.conf:2: api.url: warning: plain http", NULL));
}

Test(config_bad, control_characters_in_strings)
{
    expect_fail(
        "domain = \"acme\";\n" MIN_API MIN_LISTENERS
        "sinks = ( { type = \"http\"; url = \"https://h\"; headers = [ \"X: a\\r\\nY: b\" ]; "
        "} );\n");
    cr_assert(diag_has("sinks[0].headers[0]: must not contain control characters", NULL));
}

Test(config_bad, api_max_connections_out_of_range)
{
    expect_fail(
        "domain = \"acme\";\n"
        "api = { url = \"https://x.example\"; key_id = \"K\"; secret_file = \"./api.secret\";\n"
        "        max_connections = 0; };\n" MIN_LISTENERS MIN_SINKS);
    cr_assert(
        diag_has("acme.conf:3: api.max_connections: must be between 1 and 100000 (got 0)", NULL));
    cr_assert_eq(diag.nerrors, 1);
}

/* The health judge's re-authentication interval (gateway/health.h): a bound on how often a domain
 * without a token asks the security service again: not below the judge's tick (1 s), not hours. */
#define REAUTH_API(v)                                                                        \
    "domain = \"acme\";\n"                                                                   \
    "api = { url = \"https://x.example\"; key_id = \"K\"; secret_file = \"./api.secret\";\n" \
    "        reauth_interval_ms = " v "; };\n" MIN_LISTENERS MIN_SINKS

Test(config_bad, api_reauth_interval_below_range)
{
    expect_fail(REAUTH_API("999"));
    cr_assert(diag_has(
        "acme.conf:3: api.reauth_interval_ms: must be between 1000 and 3600000 (got 999)", NULL));
    cr_assert_eq(diag.nerrors, 1);
}

Test(config_bad, api_reauth_interval_above_range)
{
    expect_fail(REAUTH_API("3600001"));
    cr_assert(diag_has(
        "acme.conf:3: api.reauth_interval_ms: must be between 1000 and 3600000 (got 3600001)",
        NULL));
    cr_assert_eq(diag.nerrors, 1);
}

Test(config_bad, api_reauth_interval_not_an_integer)
{
    expect_fail(REAUTH_API("\"10s\""));
    cr_assert(
        diag_has("acme.conf:3: api.reauth_interval_ms: must be an integer (got a string)", NULL));
    cr_assert_eq(diag.nerrors, 1);
}
