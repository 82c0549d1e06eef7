/* Valid configurations: every key read back, defaults, secrets and their sources. */
#include "helpers.h"

#include "common/log.h"

TestSuite(config_good, .init = cfgtest_setup, .fini = cfgtest_teardown);

static const char full_conf[] =
    "# every key of the schema\n"
    "domain = \"acme-1\";\n"
    "api = {\n"
    "  url = \"https://ssapi.example.com/\";\n"
    "  key_id = \"KEY-1\";\n"
    "  secret_file = \"api.secret\";\n"
    "  auth_header = \"bearer\";\n"
    "  psk_key_bits = 256;\n"
    "  timeout_ms = 2500;\n"
    "  deadline_ms = 9000;\n"
    "  retry_min_ms = 50;\n"
    "  retry_max_ms = 1500;\n"
    "  max_in_flight = 32;\n"
    "  queue_size = 500; max_connections = 8; reauth_interval_ms = 2500;\n"
    "  ca_file = \"ca.pem\";\n"
    "  paths = { authenticate = \"/a\"; get_psk = \"/b\";\n"
    "            e2e_params = \"/v1/e2e/uplink/protectionparameters/get\"; };\n"
    "};\n"
    "listeners = (\n"
    "  { name = \"dtls\"; proto = \"udp\"; address = \"::\"; port = 5684; ack = \"accepted\";\n"
    "    max_message_bytes = 1024; cookie_rotate_s = 600; cid = \"off\"; cid_length = 12; },\n"
    "  { proto = \"tcp\"; address = \"127.0.0.1\"; port = 5685; framing = \"newline\"; }\n"
    ");\n"
    "ciphers = \"PSK-AES128-CCM-8:psk-aes256-gcm-sha384:ECDHE-PSK-AES128-GCM-SHA256\";\n"
    "cache = { entries = 1000; ttl_s = 3600; negative_ttl_s = 30; stale_s = 7200;\n"
    "          e2e_entries = 500; e2e_ttl_s = 1800; max_waiters = 10;\n"
    "          redis = \"redis://[::1]:6380/3\"; redis_password_file = \"redis.pw\";\n"
    "          redis_timeout_ms = 250; kek_file = \"kek.hex\"; };\n"
    "e2e = \"required\";\n"
    "e2e_header_case = \"upper\";\n"
    "e2e_v2_layout = \"pad1\";\n"
    "sinks = (\n"
    "  { type = \"file\"; path = \"out/messages.jsonl\"; queue_size = 100; in_flight = 1;\n"
    "    retry_max_ms = 20;\n"
    "    spool = { path = \"spool\"; max_bytes = 1048576L; fsync = \"always\"; }; },\n"
    "  { type = \"http\"; name = \"web\"; url = \"https://collector.example.com/in\";\n"
    "    headers = [ \"X-Tenant: acme\", \"Accept: */*\" ]; headers_file = \"hdr.secret\";\n"
    "    timeout_ms = 700; dead_letter_path = \"/var/lib/pskgw/dead.jsonl\";\n"
    "    probe = \"off\"; probe_interval_s = 30; },\n"
    "  { type = \"mqtt\"; host = \"broker.local\"; port = 8883; topic = "
    "\"t/{domain}/{psk_identity}\";\n"
    "    qos = 2; client_id = \"gw-1\"; username = \"u\"; password_file = \"mqtt.pw\";\n"
    "    keepalive_s = 30; payload = \"raw\"; },\n"
    "  { type = \"redis-stream\"; url = \"redis://10.0.0.5:6379/1\"; password_file = "
    "\"redis.pw\";\n"
    "    stream = \"s:{rot_public_uid}\"; maxlen = 5000000000L; },\n"
    "  { type = \"kafka\"; brokers = \"k1:9092,k2:9092\"; topic = \"pskgw.acme\";\n"
    "    properties = [ \"linger.ms=5\", \"compression.type=lz4\" ];\n"
    "    properties_file = \"kafka.secret\"; }\n"
    ");\n"
    "limits = { max_sessions = 2000; max_pending_handshakes = 100; handshake_timeout_ms = 5000;\n"
    "           idle_timeout_s = 120; per_ip_handshakes_per_s = 0; per_ip_handshake_burst = 7;\n"
    "           identity_fail_max = 3; identity_block_s = 60; max_message_bytes = 100000;\n"
    "           max_identity_len = 32; max_parked_bytes = 1024; source_fail_max = 9;\n"
    "           half_open_per_source = 11; half_open_timeout_ms = 2500; ipv6_source_prefix = 56; "
    "};\n"
    "admin = { address = \"::1\"; port = 0; };\n"
    "log = { level = \"debug\"; format = \"json\"; };\n";

static void write_full_secrets(void)
{
    write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    write_file("redis.pw", "redis-pass\r\n");
    write_file("mqtt.pw", "mqtt-pass");
    write_file("kek.hex", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
    write_file("hdr.secret", "Authorization: Bearer abc\n\nX-Key: 42\n");
    write_file("kafka.secret", "sasl.password=pw\n");
}

Test(config_good, every_key_read_back)
{
    write_full_secrets();
    int rc = load_text("acme.conf", full_conf);
    if (rc != 0)
        diag_dump();
    cr_assert_eq(rc, 0);
    cr_assert_eq(diag.nerrors, 0);
    cr_assert_eq(cfg->ndomains, 1);
    const pskgw_config_domain_t *d = &cfg->domains[0];
    cr_assert_str_eq(d->name, "acme-1");
    cr_assert_str_eq(d->source, tpath("acme.conf"));
    cr_assert_eq(pskgw_config_find_domain(cfg, "acme-1"), d);
    cr_assert_null(pskgw_config_find_domain(cfg, "other"));

    /* api */
    cr_assert_str_eq(d->api.url, "https://ssapi.example.com"); /* trailing '/' dropped */
    cr_assert_str_eq(d->api.key_id, "KEY-1");
    cr_assert_str_eq(d->api.secret_file, "api.secret");
    cr_assert_str_eq(d->api.secret.data, TEST_SECRET);
    cr_assert_eq(d->api.secret.len, strlen(TEST_SECRET));
    cr_assert_eq(d->api.auth_header, PSKGW_CONFIG_AUTH_BEARER);
    cr_assert_eq(d->api.psk_key_bits, 256);
    cr_assert_eq(d->api.timeout_ms, 2500);
    cr_assert_eq(d->api.deadline_ms, 9000);
    cr_assert_eq(d->api.retry_min_ms, 50);
    cr_assert_eq(d->api.retry_max_ms, 1500);
    cr_assert_eq(d->api.max_in_flight, 32);
    cr_assert_eq(d->api.queue_size, 500);
    cr_assert_eq(d->api.max_connections, 8);
    cr_assert_eq(d->api.reauth_interval_ms, 2500);
    cr_assert_str_eq(d->api.ca_file, tpath("ca.pem"));
    cr_assert_str_eq(d->api.paths.authenticate, "/a");
    cr_assert_str_eq(d->api.paths.get_psk, "/b");
    cr_assert_str_eq(d->api.paths.e2e_params, "/v1/e2e/uplink/protectionparameters/get");

    /* listeners */
    cr_assert_eq(d->nlisteners, 2);
    const pskgw_config_listener_t *u = &d->listeners[0], *t = &d->listeners[1];
    cr_assert_str_eq(u->name, "dtls");
    cr_assert_eq(u->proto, PSKGW_CONFIG_PROTO_UDP);
    cr_assert_str_eq(u->address, "::");
    cr_assert_eq(u->port, 5684);
    cr_assert_eq(u->framing, PSKGW_CONFIG_FRAMING_NONE);
    cr_assert_eq(u->ack, PSKGW_CONFIG_ACK_ACCEPTED);
    cr_assert_eq(u->max_message_bytes, 1024);
    cr_assert_eq(u->cookie_rotate_s, 600);
    cr_assert_eq(u->cid, PSKGW_CONFIG_CID_OFF);
    cr_assert_eq(u->cid_length, 12);
    cr_assert_eq(u->line, 20);
    cr_assert_str_eq(t->name, "tcp:5685");
    cr_assert_eq(t->proto, PSKGW_CONFIG_PROTO_TCP);
    cr_assert_str_eq(t->address, "127.0.0.1");
    cr_assert_eq(t->framing, PSKGW_CONFIG_FRAMING_NEWLINE);
    cr_assert_eq(t->ack, PSKGW_CONFIG_ACK_NONE);
    /* limits.max_message_bytes capped at 16384: what a listener handles, any framing */
    cr_assert_eq(t->max_message_bytes, 16384);

    /* ciphers: aliases and case folded to canonical names */
    cr_assert_str_eq(d->ciphers,
                     "PSK-AES128-CCM8:PSK-AES256-GCM-SHA384:ECDHE-PSK-AES128-GCM-SHA256");
    cr_assert_str_eq(d->ciphers_wolfssl,
                     "PSK-AES128-CCM-8:PSK-AES256-GCM-SHA384:ECDHE-PSK-AES128-GCM-SHA256");
    cr_assert_eq(d->nciphers, 3);
    cr_assert_eq(d->cipher_ids[0], 0xC0A8);
    cr_assert_eq(d->cipher_ids[1], 0x00A9);
    cr_assert_eq(d->cipher_ids[2], 0xD001);

    /* cache */
    cr_assert_eq(d->cache.entries, 1000);
    cr_assert_eq(d->cache.ttl_s, 3600);
    cr_assert_eq(d->cache.negative_ttl_s, 30);
    cr_assert_eq(d->cache.stale_s, 7200);
    cr_assert_eq(d->cache.e2e_entries, 500);
    cr_assert_eq(d->cache.e2e_ttl_s, 1800);
    cr_assert_eq(d->cache.max_waiters, 10);
    cr_assert(d->cache.has_redis);
    cr_assert_str_eq(d->cache.redis.url, "redis://[::1]:6380/3");
    cr_assert_str_eq(d->cache.redis.host, "::1");
    cr_assert_eq(d->cache.redis.port, 6380);
    cr_assert_eq(d->cache.redis.db, 3);
    cr_assert_str_eq(d->cache.redis.password.data, "redis-pass");
    cr_assert_eq(d->cache.redis_timeout_ms, 250);
    cr_assert(d->cache.has_kek);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(d->cache.kek[i], i);

    cr_assert_eq(d->e2e, PSKGW_CONFIG_E2E_REQUIRED);
    cr_assert_eq(d->e2e_header_case, PSKGW_CONFIG_E2E_HEADER_UPPER);
    cr_assert_eq(d->e2e_v2_layout, PSKGW_CONFIG_E2E_V2_PAD1);

    /* sinks */
    cr_assert_eq(d->nsinks, 5);
    const pskgw_config_sink_t *f = &d->sinks[0];
    cr_assert_str_eq(f->name, "file-0");
    cr_assert_eq(f->type, PSKGW_CONFIG_SINK_FILE);
    cr_assert_str_eq(f->file.path, tpath("out/messages.jsonl"));
    cr_assert_eq(f->queue_size, 100);
    cr_assert_eq(f->in_flight, 1);
    cr_assert_eq(f->retry_max_ms, 20);
    cr_assert(f->has_spool);
    cr_assert_str_eq(f->spool.path, tpath("spool")); /* a directory */
    cr_assert_eq(f->spool.max_bytes, 1048576);
    cr_assert_eq(f->spool.fsync, PSKGW_CONFIG_FSYNC_ALWAYS);
    cr_assert_eq(f->payload, PSKGW_CONFIG_PAYLOAD_BASE64);

    const pskgw_config_sink_t *h = &d->sinks[1];
    cr_assert_str_eq(h->name, "web");
    cr_assert_eq(h->type, PSKGW_CONFIG_SINK_HTTP);
    cr_assert_str_eq(h->http.url, "https://collector.example.com/in");
    cr_assert_eq(h->http.nheaders, 2);
    cr_assert_str_eq(h->http.headers[0], "X-Tenant: acme");
    cr_assert_str_eq(h->http.headers[1], "Accept: */*");
    cr_assert_eq(h->http.nsecret_headers, 2); /* the empty line is skipped */
    cr_assert_str_eq(h->http.secret_headers[0].data, "Authorization: Bearer abc");
    cr_assert_str_eq(h->http.secret_headers[1].data, "X-Key: 42");
    cr_assert_eq(h->http.timeout_ms, 700);
    cr_assert_str_eq(h->http.dead_letter_path, "/var/lib/pskgw/dead.jsonl");
    cr_assert_eq(h->http.probe, PSKGW_CONFIG_SINK_PROBE_OFF);
    cr_assert_eq(h->http.probe_interval_s, 30);
    cr_assert_eq(h->has_spool, false);
    cr_assert_eq(h->queue_size, 10000); /* defaults */
    cr_assert_eq(h->in_flight, 64);

    const pskgw_config_sink_t *m = &d->sinks[2];
    cr_assert_str_eq(m->name, "mqtt-2");
    cr_assert_str_eq(m->mqtt.host, "broker.local");
    cr_assert_eq(m->mqtt.port, 8883);
    cr_assert_str_eq(m->mqtt.topic, "t/{domain}/{psk_identity}");
    cr_assert_eq(m->mqtt.qos, 2);
    cr_assert_str_eq(m->mqtt.client_id, "gw-1");
    cr_assert_str_eq(m->mqtt.username, "u");
    cr_assert_str_eq(m->mqtt.password.data, "mqtt-pass");
    cr_assert_eq(m->mqtt.keepalive_s, 30);
    cr_assert_eq(m->payload, PSKGW_CONFIG_PAYLOAD_RAW);
    cr_assert_null(m->http.url); /* other types' members stay empty */
    cr_assert_null(m->file.path);

    const pskgw_config_sink_t *r = &d->sinks[3];
    cr_assert_eq(r->type, PSKGW_CONFIG_SINK_REDIS_STREAM);
    cr_assert_str_eq(r->redis_stream.redis.host, "10.0.0.5");
    cr_assert_eq(r->redis_stream.redis.port, 6379);
    cr_assert_eq(r->redis_stream.redis.db, 1);
    cr_assert_str_eq(r->redis_stream.redis.password.data, "redis-pass");
    cr_assert_str_eq(r->redis_stream.stream, "s:{rot_public_uid}");
    cr_assert_eq(r->redis_stream.maxlen, 5000000000ull);
    cr_assert_eq(r->mqtt.port, 0);

    const pskgw_config_sink_t *k = &d->sinks[4];
    cr_assert_eq(k->type, PSKGW_CONFIG_SINK_KAFKA);
    cr_assert_str_eq(k->kafka.brokers, "k1:9092,k2:9092");
    cr_assert_str_eq(k->kafka.topic, "pskgw.acme");
    cr_assert_eq(k->kafka.nproperties, 2);
    cr_assert_str_eq(k->kafka.properties[1], "compression.type=lz4");
    cr_assert_eq(k->kafka.nsecret_properties, 1);
    cr_assert_str_eq(k->kafka.secret_properties[0].data, "sasl.password=pw");

    /* limits */
    cr_assert_eq(d->limits.max_sessions, 2000);
    cr_assert_eq(d->limits.max_pending_handshakes, 100);
    cr_assert_eq(d->limits.handshake_timeout_ms, 5000);
    cr_assert_eq(d->limits.idle_timeout_s, 120);
    cr_assert_eq(d->limits.per_ip_handshakes_per_s, 0);
    cr_assert_eq(d->limits.per_ip_handshake_burst, 7);
    cr_assert_eq(d->limits.identity_fail_max, 3);
    cr_assert_eq(d->limits.identity_block_s, 60);
    cr_assert_eq(d->limits.max_message_bytes, 100000);
    cr_assert_eq(d->limits.max_identity_len, 32);
    cr_assert_eq(d->limits.max_parked_bytes, 1024);
    cr_assert_eq(d->limits.source_fail_max, 9);
    cr_assert_eq(d->limits.half_open_per_source, 11);
    cr_assert_eq(d->limits.half_open_timeout_ms, 2500);
    cr_assert_eq(d->limits.ipv6_source_prefix, 56);

    /* process-wide */
    cr_assert(cfg->has_admin);
    cr_assert_str_eq(cfg->admin.address, "::1");
    cr_assert_eq(cfg->admin.port, 0);
    cr_assert(cfg->has_log);
    cr_assert_eq(cfg->log.level, PSKGW_LOG_DEBUG);
    cr_assert_eq(cfg->log.format, PSKGW_LOG_FORMAT_JSON);
}

Test(config_good, defaults_of_a_minimal_domain)
{
    int rc = load_text("acme.conf", MIN_CONF);
    if (rc != 0)
        diag_dump();
    cr_assert_eq(rc, 0);
    cr_assert_eq(diag.nitems, 0, "no warning expected");
    const pskgw_config_domain_t *d = &cfg->domains[0];
    cr_assert_eq(d->api.auth_header, PSKGW_CONFIG_AUTH_RAW);
    cr_assert_eq(d->api.psk_key_bits, 128);
    cr_assert_eq(d->api.timeout_ms, 3000);
    cr_assert_eq(d->api.deadline_ms, 10000);
    cr_assert_eq(d->api.max_in_flight, 64);
    cr_assert_eq(d->api.queue_size, 10000);
    cr_assert_eq(d->api.max_connections, 0); /* unset: the client uses max_in_flight */
    cr_assert_eq(d->api.reauth_interval_ms, 10000, "the fixed interval it replaced");
    cr_assert_null(d->api.ca_file);
    cr_assert_str_eq(d->api.paths.authenticate, "/v1/authenticate");
    cr_assert_str_eq(d->api.paths.get_psk, "/v1/GetPSK");
    cr_assert_str_eq(d->api.paths.e2e_params, "/v1/GetE2EDecryptionParameters");
    cr_assert_str_eq(d->listeners[0].address, "0.0.0.0");
    cr_assert_str_eq(d->listeners[0].name, "udp:5684");
    cr_assert_eq(d->listeners[0].max_message_bytes, 16384);
    cr_assert_eq(d->listeners[0].cookie_rotate_s, 30); /* cookies live at most 60 s */
    cr_assert_eq(d->listeners[0].cid, PSKGW_CONFIG_CID_ON);
    cr_assert_eq(d->listeners[0].cid_length, 8);
    cr_assert_eq(d->listeners[0].replay_window, PSKGW_CONFIG_REPLAY_WINDOW);
    cr_assert_str_eq(d->ciphers, PSKGW_CONFIG_DEFAULT_CIPHERS);
    cr_assert_str_eq(d->ciphers_wolfssl,
                     "PSK-AES128-CCM-8:PSK-AES128-GCM-SHA256:PSK-AES128-CBC-SHA256:"
                     "PSK-AES128-CBC-SHA");
    cr_assert_eq(d->nciphers, 4);
    cr_assert_eq(d->cipher_ids[3], 0x008C);
    cr_assert_eq(d->cache.entries, 100000);
    cr_assert_eq(d->cache.ttl_s, 86400);
    cr_assert_eq(d->cache.negative_ttl_s, 60);
    cr_assert_eq(d->cache.stale_s, 604800);
    cr_assert_eq(d->cache.has_redis, false);
    cr_assert_eq(d->cache.has_kek, false);
    cr_assert_eq(d->e2e, PSKGW_CONFIG_E2E_OFF);
    cr_assert_eq(d->e2e_header_case, PSKGW_CONFIG_E2E_HEADER_LOWER);
    cr_assert_eq(d->e2e_v2_layout, PSKGW_CONFIG_E2E_V2_SEED);
    cr_assert_str_eq(d->sinks[0].file.path, "-");
    cr_assert_eq(d->sinks[0].retry_max_ms, 30000);
    cr_assert_eq(d->limits.max_sessions, 100000);
    cr_assert_eq(d->limits.max_pending_handshakes, 5000);
    cr_assert_eq(d->limits.handshake_timeout_ms, 30000);
    cr_assert_eq(d->limits.idle_timeout_s, 600);
    cr_assert_eq(d->limits.max_message_bytes, 16384);
    cr_assert_eq(d->limits.max_identity_len, 64);
    cr_assert_eq(d->limits.identity_fail_max, 5);
    cr_assert_eq(d->limits.source_fail_max, 50);
    cr_assert_eq(d->limits.half_open_per_source, 1000);
    cr_assert_eq(d->limits.half_open_timeout_ms, 10000);
    cr_assert_eq(d->limits.ipv6_source_prefix, 64);
    cr_assert_eq(cfg->has_admin, false);
    cr_assert_eq(cfg->has_log, false);
    cr_assert_eq(cfg->log.level, PSKGW_LOG_INFO);
}

Test(config_good, credentials_directory_lookup)
{
    char creds[600];
    snprintf(creds, sizeof(creds), "%s/creds", test_dir);
    cr_assert_eq(mkdir(creds, 0700), 0);
    write_file("creds/acme-api", "from-credentials\n\n");
    write_file("acme-api", "from-the-config-dir");
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    int rc =
        load_text("acme.conf", "domain = \"acme\";\n"
                               "api = { url = \"https://x.example\"; key_id = \"K\";\n"
                               "        secret_file = \"acme-api\"; };\n" MIN_LISTENERS MIN_SINKS);
    if (rc != 0)
        diag_dump();
    cr_assert_eq(rc, 0);
    /* Only one trailing newline is stripped. */
    cr_assert_str_eq(cfg->domains[0].api.secret.data, "from-credentials\n");
    pskgw_config_free(cfg);
    cfg = NULL;

    /* Without $CREDENTIALS_DIRECTORY a bare name is a file next to the config. */
    unsetenv("CREDENTIALS_DIRECTORY");
    rc = load_text("acme.conf", "domain = \"acme\";\n"
                                "api = { url = \"https://x.example\"; key_id = \"K\";\n"
                                "        secret_file = \"acme-api\"; };\n" MIN_LISTENERS MIN_SINKS);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(cfg->domains[0].api.secret.data, "from-the-config-dir");
    pskgw_config_free(cfg);
    cfg = NULL;

    /* A name with '/' is always a path, even with a credentials directory. */
    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    rc = load_text("acme.conf",
                   "domain = \"acme\";\n"
                   "api = { url = \"https://x.example\"; key_id = \"K\";\n"
                   "        secret_file = \"./acme-api\"; };\n" MIN_LISTENERS MIN_SINKS);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(cfg->domains[0].api.secret.data, "from-the-config-dir");
}

Test(config_good, inline_secret_is_a_warning_and_never_printed)
{
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *logf = open_memstream(&logbuf, &loglen);
    cr_assert_not_null(logf);
    pskgw_log_set_output(logf);
    pskgw_log_set_level(PSKGW_LOG_WARNING);

    int rc = load_text("acme.conf",
                       "domain = \"acme\";\n"
                       "api = { url = \"https://x.example\"; key_id = \"K\";\n"
                       "        secret = \"Inline-Secret-777\"; };\n" MIN_LISTENERS MIN_SINKS);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(cfg->domains[0].api.secret.data, "Inline-Secret-777");
    cr_assert_eq(cfg->domains[0].api.secret.len, 17);
    cr_assert_null(cfg->domains[0].api.secret_file);
    cr_assert_eq(diag.nwarnings, 1);
    cr_assert_eq(diag.nerrors, 0);
    cr_assert(diag_has("acme.conf:3: api.secret: warning: inline secret", NULL));
    cr_assert_eq(diag.items[0].severity, PSKGW_CONFIG_SEV_WARNING);

    /* Printing only errors prints nothing here. */
    cr_assert_eq(pskgw_config_diag_print(&diag, logf, PSKGW_CONFIG_PRINT_ERRORS), 0);
    pskgw_log_set_output(NULL);
    fclose(logf); /* logbuf now holds everything written */
    cr_assert_not_null(strstr(logbuf, "api.secret: warning: inline secret"), "%s", logbuf);
    cr_assert_null(strstr(logbuf, "Inline-Secret-777"));
    for (size_t i = 0; i < diag.nitems; i++)
        cr_assert_null(strstr(diag.items[i].text, "Inline-Secret-777"));
    free(logbuf);
}

Test(config_good, kek_forms)
{
    static const char conf[] =
        "domain = \"acme\";\n" MIN_API MIN_LISTENERS MIN_SINKS
        "cache = { redis = \"redis://127.0.0.1\"; kek_file = \"./kek\"; };\n";
    uint8_t raw[32];
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(0xA0 + i);
    raw[31] = '\n'; /* a raw key may end in 0x0a: 32 bytes are never stripped */

    write_bytes("kek", raw, 32);
    cr_assert_eq(load_text("acme.conf", conf), 0);
    cr_assert(memcmp(cfg->domains[0].cache.kek, raw, 32) == 0);
    cr_assert_str_eq(cfg->domains[0].cache.redis.host, "127.0.0.1");
    cr_assert_eq(cfg->domains[0].cache.redis.port, 6379);
    cr_assert_eq(cfg->domains[0].cache.redis.db, 0);
    pskgw_config_free(cfg);
    cfg = NULL;

    /* base64 of bytes 0..31 */
    write_file("kek", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    cr_assert_eq(load_text("acme.conf", conf), 0);
    cr_assert_eq(cfg->domains[0].cache.kek[31], 31);
    pskgw_config_free(cfg);
    cfg = NULL;

    write_file("kek", "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF");
    cr_assert_eq(load_text("acme.conf", conf), 0);
    cr_assert_eq(cfg->domains[0].cache.kek[1], 0x11);
    pskgw_config_free(cfg);
    cfg = NULL;

    write_file("kek", "too short");
    cr_assert_eq(load_text("acme.conf", conf), PSKGW_ECONFIG);
    cr_assert(diag_has("acme.conf:6: cache.kek_file: key file must hold 32 raw bytes", NULL));
}

Test(config_good, several_domains_and_port_zero)
{
    static const char b[] =
        "domain = \"beta\";\n" MIN_API "listeners = ( { proto = \"udp\"; port = 0; },\n"
        "              { proto = \"udp\"; port = 0; } );\n" MIN_SINKS "admin = { port = 9464; };\n";
    static const char a[] =
        "domain = \"alpha\";\n" MIN_API "listeners = ( { proto = \"udp\"; port = 0; },\n"
        "              { proto = \"udp\"; address = \"127.0.0.1\"; port = 5684; } );\n" MIN_SINKS
        "admin = { address = \"127.0.0.1\"; port = 9464; };\n";
    int rc = load_two("a.conf", a, "b.conf", b);
    if (rc != 0)
        diag_dump();
    cr_assert_eq(rc, 0);
    cr_assert_eq(cfg->ndomains, 2);
    cr_assert_str_eq(cfg->domains[0].name, "alpha");
    cr_assert_str_eq(cfg->domains[1].name, "beta");
    /* Two port-0 listeners never collide; their default names are made unique. */
    cr_assert_str_eq(cfg->domains[1].listeners[0].name, "udp:0");
    cr_assert_str_eq(cfg->domains[1].listeners[1].name, "udp:0:1");
    cr_assert(cfg->has_admin);
    cr_assert_eq(cfg->admin.port, 9464);
}

Test(config_good, load_string_and_cipher_lookup)
{
    static const char text[] = "domain = \"acme\";\n"
                               "api = { url = \"http://127.0.0.1:8080\"; key_id = \"K\";\n"
                               "        secret = \"x\"; };\n" MIN_LISTENERS MIN_SINKS;
    cr_assert_eq(pskgw_config_load_string("mem.conf", text, &cfg, &diag), 0);
    /* http to loopback is fine; inline secret warned */
    cr_assert_eq(diag.nwarnings, 1);
    cr_assert_str_eq(cfg->domains[0].api.url, "http://127.0.0.1:8080");
    cr_assert_str_eq(cfg->domains[0].source, "mem.conf");

    const pskgw_config_cipher_t *c = pskgw_config_cipher_find("psk-aes128-ccm-8");
    cr_assert_not_null(c);
    cr_assert_str_eq(c->name, "PSK-AES128-CCM8");
    cr_assert_str_eq(c->wolfssl, "PSK-AES128-CCM-8");
    cr_assert_eq(c->iana, 0xC0A8);
    cr_assert_not_null(pskgw_config_cipher_find("ECDHE-PSK-AES128-CBC-SHA256"));
    cr_assert(pskgw_config_cipher_find("ECDHE-PSK-AES128-CBC-SHA256")->ecdhe);
    cr_assert_null(pskgw_config_cipher_find("PSK-NULL-SHA256"));
    cr_assert_null(pskgw_config_cipher_find("AES128-SHA"));
    cr_assert_str_eq(pskgw_config_sink_type_name(PSKGW_CONFIG_SINK_REDIS_STREAM), "redis-stream");
    cr_assert_str_eq(pskgw_config_e2e_name(PSKGW_CONFIG_E2E_AUTO), "auto");
    cr_assert_str_eq(pskgw_config_framing_name(PSKGW_CONFIG_FRAMING_LEN16), "len16");
    cr_assert_str_eq(pskgw_config_proto_name(PSKGW_CONFIG_PROTO_TCP), "tcp");
}

Test(config_good, resumption_ticket_key_file)
{
    static const char conf[] =
        MIN_CONF "resumption = { ticket_key_file = \"./tickets\"; ticket_lifetime_s = 600; };\n";
    static const char a[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    static const char b[] = "0123456789ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef";
    char text[400];

    snprintf(text, sizeof(text), "# current first\n%s\n\n%s\r\n", b, a);
    write_file("tickets", text);
    cr_assert_eq(load_text("acme.conf", conf), 0);
    cr_assert(cfg->domains[0].has_resumption);
    cr_assert_eq(cfg->domains[0].resumption.nsecrets, 2);
    cr_assert_eq(cfg->domains[0].resumption.secrets[0][0], 0x01);
    cr_assert_eq(cfg->domains[0].resumption.secrets[1][0], 0xAA);
    cr_assert_eq(cfg->domains[0].resumption.ticket_lifetime_s, 600);
    cr_assert_eq(cfg->domains[0].resumption.session_cache, 10000, "the default");
    pskgw_config_free(cfg);
    cfg = NULL;

    cr_assert_eq(load_text("acme.conf", MIN_CONF "resumption = { ticket_key_file = \"./tickets\"; "
                                                 "session_cache = 0; };\n"),
                 0);
    cr_assert_eq(cfg->domains[0].resumption.session_cache, 0, "0: no session-ID resumption");
    pskgw_config_free(cfg);
    cfg = NULL;
    cr_assert_eq(load_text("acme.conf", MIN_CONF "resumption = { ticket_key_file = \"./tickets\"; "
                                                 "session_cache = 1000001; };\n"),
                 PSKGW_ECONFIG);
    cr_assert(diag_has("resumption.session_cache", NULL));

    write_file("tickets", "not a secret\n");
    cr_assert_eq(load_text("acme.conf", conf), PSKGW_ECONFIG);
    cr_assert(diag_has("resumption.ticket_key_file: each line must be a secret of 64 hex", NULL));

    write_file("tickets", "# only a comment\n\n");
    cr_assert_eq(load_text("acme.conf", conf), PSKGW_ECONFIG);
    cr_assert(diag_has("resumption.ticket_key_file: no secret in the file", NULL));

    snprintf(text, sizeof(text), "%s\n%s\n%s\n%s\n%s\n", a, a, a, a, a);
    write_file("tickets", text);
    cr_assert_eq(load_text("acme.conf", conf), PSKGW_ECONFIG);
    cr_assert(diag_has("resumption.ticket_key_file: at most 4 secrets", NULL));
}
