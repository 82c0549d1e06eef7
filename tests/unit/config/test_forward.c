/* Forwarding listeners (issue 14): forward = "tcp://HOST:PORT" | "udp://HOST:PORT", its keys and
 * the errors --check-config prints with the file's line. */
#include "helpers.h"

TestSuite(config_forward, .init = cfgtest_setup, .fini = cfgtest_teardown);

#define DOM "domain = \"acme\";\n" MIN_API MIN_SINKS

Test(config_forward, tcp_and_udp_parsed)
{
    const pskgw_config_listener_t *t, *u;

    cr_assert_eq(load_text("a.conf", DOM
                           "listeners = (\n"
                           "  { proto = \"tcp\"; port = 0; forward = \"tcp://127.0.0.1:1883\";\n"
                           "    proxy_protocol = true; forward_buffer_bytes = 32768; },\n"
                           "  { proto = \"udp\"; port = 0; forward = \"udp://[::1]:5683\"; } );\n"),
                 0);
    t = &cfg->domains[0].listeners[0];
    u = &cfg->domains[0].listeners[1];
    cr_assert_str_eq(t->forward_host, "127.0.0.1");
    cr_assert_eq(t->forward_port, 1883);
    cr_assert(t->proxy_protocol);
    cr_assert_eq(t->forward_buffer_bytes, 32768);
    cr_assert_eq(t->forward_connect_timeout_ms, 5000, "the default");
    cr_assert_str_eq(u->forward_host, "::1");
    cr_assert_eq(u->forward_port, 5683);
    cr_assert_not(u->proxy_protocol);
    cr_assert_eq(u->forward_buffer_bytes, 65536, "the default");
}

Test(config_forward, host_names_accepted)
{
    cr_assert_eq(
        load_text(
            "a.conf", DOM
            "listeners = (\n"
            "  { proto = \"tcp\"; port = 0; forward = \"tcp://mqtt-1.backend.example:1883\"; },\n"
            "  { proto = \"udp\"; port = 0; forward = \"udp://localhost:5683\"; } );\n"),
        0);
    cr_assert_str_eq(cfg->domains[0].listeners[0].forward_host, "mqtt-1.backend.example");
    cr_assert_eq(cfg->domains[0].listeners[0].forward_port, 1883);
    cr_assert_str_eq(cfg->domains[0].listeners[1].forward_host, "localhost");
}

Test(config_forward, scheme_must_match_the_listener)
{
    cr_assert_neq(
        load_text("a.conf",
                  DOM "listeners = (\n"
                      "  { proto = \"udp\"; port = 0; forward = \"tcp://127.0.0.1:1\"; } );\n"),
        0);
    cr_assert(diag_has("a.conf:6", "listeners[0].forward",
                       "a udp listener forwards to udp://HOST:PORT", NULL),
              "got:");
}

Test(config_forward, bad_hosts_and_ports)
{
    static const char *const bad[][2] = {
        { "tcp://backend_x.example:80", "HOST must be a numeric" },
        { "tcp://-backend.example:80", "HOST must be a numeric" },
        { "tcp://backend..example:80", "HOST must be a numeric" },
        { "tcp://::1:80", "HOST must be a numeric" },
        { "tcp://[127.0.0.1]:80", "HOST must be a numeric" },
        { "tcp://127.0.0.1:0", "PORT must be 1..65535" },
        { "tcp://127.0.0.1:65536", "PORT must be 1..65535" },
        { "tcp://127.0.0.1:8x", "PORT must be 1..65535" },
        { "tcp://127.0.0.1", "must be tcp://HOST:PORT" },
    };
    char text[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text),
                 DOM "listeners = ( { proto = \"tcp\"; port = 0; forward = \"%s\"; } );\n",
                 bad[i][0]);
        cr_assert_neq(load_text("a.conf", text), 0, "%s", bad[i][0]);
        cr_assert(diag_has("a.conf:", "listeners[0].forward", bad[i][1], NULL), "%s", bad[i][0]);
        pskgw_config_free(cfg);
        cfg = NULL;
    }
}

Test(config_forward, framing_ack_and_forward_keys_without_forward_refused)
{
    cr_assert_neq(load_text("a.conf",
                            DOM "listeners = ( { proto = \"tcp\"; port = 0; framing = \"len16\";\n"
                                "  forward = \"tcp://127.0.0.1:1\"; } );\n"),
                  0);
    cr_assert(diag_has("listeners[0].framing", "not used with forward", NULL));
    pskgw_config_free(cfg);
    cfg = NULL;
    cr_assert_neq(load_text("b.conf", DOM "listeners = ( { proto = \"tcp\"; port = 0;\n"
                                          "  proxy_protocol = true; } );\n"),
                  0);
    cr_assert(diag_has("b.conf:6", "listeners[0].proxy_protocol", "only valid with forward", NULL));
    pskgw_config_free(cfg);
    cfg = NULL;
    cr_assert_neq(
        load_text("c.conf", DOM
                  "listeners = ( { proto = \"udp\"; port = 0; forward = \"udp://127.0.0.1:1\";\n"
                  "  forward_connect_timeout_ms = 1000; } );\n"),
        0);
    cr_assert(diag_has("listeners[0].forward_connect_timeout_ms", NULL));
}

/* A domain whose listeners all forward needs no sinks (nothing reaches one). */
#define DOM_NO_SINKS "domain = \"acme\";\n" MIN_API

Test(config_forward, forward_only_domain_needs_no_sinks)
{
    cr_assert_eq(
        load_text("a.conf", DOM_NO_SINKS
                  "listeners = (\n"
                  "  { proto = \"tcp\"; port = 0; forward = \"tcp://127.0.0.1:1883\"; },\n"
                  "  { proto = \"udp\"; port = 0; forward = \"udp://127.0.0.1:5683\"; } );\n"),
        0);
    cr_assert_eq(cfg->domains[0].nsinks, 0);
    cr_assert_null(cfg->domains[0].sinks);
}

Test(config_forward, sinks_required_when_a_listener_does_not_forward)
{
    cr_assert_neq(
        load_text("a.conf", DOM_NO_SINKS
                  "listeners = (\n"
                  "  { proto = \"tcp\"; port = 0; forward = \"tcp://127.0.0.1:1883\"; },\n"
                  "  { name = \"plain\"; proto = \"udp\"; port = 0; } );\n"),
        0);
    cr_assert(diag_has("a.conf:6", "sinks", "missing required key",
                       "listeners[1] (\"plain\") does not forward", NULL),
              "the error names the listener that needs sinks, at its line");
}

Test(config_forward, empty_sinks_list_still_refused)
{
    cr_assert_neq(load_text("a.conf", DOM_NO_SINKS "sinks = ();\n"
                                                   "listeners = (\n"
                                                   "  { proto = \"tcp\"; port = 0; forward = "
                                                   "\"tcp://127.0.0.1:1883\"; } );\n"),
                  0);
    cr_assert(diag_has("a.conf:", "sinks", NULL), "sinks, when present, holds 1 to 16 sinks");
}
