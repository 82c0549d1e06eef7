/* URL and host helpers of the config module (module-internal): the http(s):// check of the API
 * and webhook URLs, redis:// and redis+sentinel:// parsed into a pskgw_config_redis_t, host names
 * and IP literals. Pure: no sockets, no name resolution. Errors are reported with cfg_error()
 * on ctx (an allocation failure sets ctx->oom) and answered -1; nothing is written on failure. */
#ifndef PSKGW_CONFIG_URL_H
#define PSKGW_CONFIG_URL_H

#include "config/internal.h"

#include <stdbool.h>

/* An IPv4 or IPv6 address literal (no brackets). */
bool cfg_ip_literal(const char *s);

/* A host or object name: letters, digits, '-', '_', '.' only ("" is accepted: check length apart). */
bool cfg_name_ok(const char *s);

/* http:// or https:// followed by a host, no space; 0 or -1 (reported). */
int cfg_check_http_url(cfg_ctx_t *ctx, unsigned line, const char *path, const char *url);

/* The host after "scheme://" (or the whole string) is 127.*, localhost or [::1]. */
bool cfg_loopback_url(const char *url);

/* Parse r->url (borrowed, kept) into r: redis://[host][:port][/db] sets host (owned, default
 * "127.0.0.1"), port (default 6379) and db; redis+sentinel://host[:port],...,/master[/db] sets
 * sentinels (the list as written, owned; sentinel port default 26379, at most 16), master_name
 * (owned) and db. Fields already set are freed and replaced on success only. 0 or -1 (reported:
 * rediss://, credentials, queries, bad hosts, ports, names and databases). */
int cfg_parse_redis_url(cfg_ctx_t *ctx, unsigned line, const char *path, pskgw_config_redis_t *r);

/* Free host, sentinels, master_name (NULL afterwards) and the password read from the password
 * file; url and password_file belong to the schema's table and are freed with it. */
void cfg_redis_release(pskgw_config_redis_t *r);

#endif
