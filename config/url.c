/* URL and host helpers of the config module: see config/url.h. */
#include "config/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool cfg_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool cfg_name_ok(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    }
    return true;
}

/* http:// or https:// followed by a host; 0 or -1 (reported). */
int cfg_check_http_url(cfg_ctx_t *ctx, unsigned line, const char *path, const char *url)
{
    const char *rest = NULL;
    if (strncasecmp(url, "https://", 8) == 0)
        rest = url + 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    if (rest == NULL || rest[0] == '\0' || rest[0] == '/' || strchr(url, ' ') != NULL) {
        cfg_error(ctx, line, path, "must be an http:// or https:// URL with a host");
        return -1;
    }
    return 0;
}

bool cfg_loopback_url(const char *url)
{
    const char *rest = strstr(url, "://");
    rest = rest != NULL ? rest + 3 : url;
    return strncmp(rest, "127.", 4) == 0 || strncasecmp(rest, "localhost", 9) == 0 ||
           strncmp(rest, "[::1]", 5) == 0;
}

/* One sentinel "host[:port]" or "[v6][:port]" of len bytes: true when well formed. */
static bool sentinel_ok(const char *s, size_t len)
{
    char buf[300];
    const char *colon;
    unsigned char tmp[16];

    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (close == NULL || close == buf + 1)
            return false;
        *close = '\0';
        if (inet_pton(AF_INET6, buf + 1, tmp) != 1)
            return false;
        colon = close[1] == '\0' ? NULL : close + 1;
        if (colon != NULL && *colon != ':')
            return false;
    } else {
        char *c = strchr(buf, ':');
        if (c != NULL)
            *c = '\0';
        if (buf[0] == '\0' || !cfg_name_ok(buf))
            return false;
        colon = c; /* the ':' became the end of the host; the digits follow it */
    }
    if (colon != NULL) {
        char *end;
        if (!isdigit((unsigned char)colon[1]))
            return false;
        errno = 0;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (errno != 0 || port < 1 || port > 65535 || *end != '\0')
            return false;
    }
    return true;
}

/* redis+sentinel://host[:port],host[:port]/master-name[/db] (sentinel port default 26379):
 * r->sentinels (the list as written), r->master_name, r->db. 0 or -1 (reported). */
static int parse_sentinel_url(cfg_ctx_t *ctx, unsigned line, const char *path,
                              pskgw_config_redis_t *r)
{
    const char *p = r->url + 17;
    const char *lend = p + strcspn(p, "/");
    const char *name = *lend == '/' ? lend + 1 : lend;
    const char *nend = name + strcspn(name, "/");
    unsigned long db = 0;
    unsigned n = 0;

    if (strpbrk(p, "@") != NULL) {
        cfg_error(ctx, line, path,
                  "credentials in the URL are not accepted; use a password_file key");
        return -1;
    }
    if (strpbrk(p, "?# ") != NULL || lend == p) {
        cfg_error(ctx, line, path, "must be a redis+sentinel://host:port,host:port/master/db URL");
        return -1;
    }
    for (const char *q = p; q < lend; n++) {
        size_t len = strcspn(q, ",/");
        if (n >= 16 || !sentinel_ok(q, len)) {
            cfg_error(ctx, line, path, "sentinel %u: must be host:port or [IPv6]:port (at most 16)",
                      n + 1);
            return -1;
        }
        q += len + (q[len] == ',' ? 1 : 0);
        if (q[-1] == ',' && q == lend) {
            cfg_error(ctx, line, path, "empty sentinel after ','");
            return -1;
        }
    }
    char mname[129];
    if (nend == name || (size_t)(nend - name) >= sizeof(mname)) {
        cfg_error(ctx, line, path, "the master's name is missing or longer than 128 characters");
        return -1;
    }
    memcpy(mname, name, (size_t)(nend - name));
    mname[nend - name] = '\0';
    if (!cfg_name_ok(mname)) {
        cfg_error(ctx, line, path, "bad master name (letters, digits, '-', '_', '.')");
        return -1;
    }
    if (*nend == '/' && nend[1] != '\0') {
        char *end;
        errno = 0;
        db = isdigit((unsigned char)nend[1]) ? strtoul(nend + 1, &end, 10) : ULONG_MAX;
        if (db == ULONG_MAX || errno != 0 || db > 1000000 || *end != '\0') {
            cfg_error(ctx, line, path, "database must be a number between 0 and 1000000");
            return -1;
        }
    }
    char *list = strndup(p, (size_t)(lend - p));
    char *mn = strdup(mname);
    if (list == NULL || mn == NULL) {
        free(list);
        free(mn);
        ctx->oom = true;
        return -1;
    }
    free(r->sentinels);
    free(r->master_name);
    r->sentinels = list;
    r->master_name = mn;
    r->db = (uint32_t)db;
    return 0;
}

/* The host of a redis:// URL at *pp: "[v6]", a name, or nothing (host keeps its default);
 * *pp is moved past it. 0 or -1 (reported). */
static int redis_host(cfg_ctx_t *ctx, unsigned line, const char *path, const char **pp, char *host,
                      size_t host_size)
{
    const char *p = *pp;
    const char *hend;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (hend == NULL || (size_t)(hend - p - 1) >= host_size || hend == p + 1) {
            cfg_error(ctx, line, path, "bad IPv6 address in brackets");
            return -1;
        }
        memcpy(host, p + 1, (size_t)(hend - p - 1));
        host[hend - p - 1] = '\0';
        unsigned char tmp[16];
        if (inet_pton(AF_INET6, host, tmp) != 1) {
            cfg_error(ctx, line, path, "bad IPv6 address in brackets");
            return -1;
        }
        p = hend + 1;
    } else {
        hend = p + strcspn(p, ":/");
        if (hend > p) {
            if ((size_t)(hend - p) >= host_size) {
                cfg_error(ctx, line, path, "host name too long");
                return -1;
            }
            memcpy(host, p, (size_t)(hend - p));
            host[hend - p] = '\0';
            if (!cfg_name_ok(host)) {
                cfg_error(ctx, line, path, "bad host name");
                return -1;
            }
        }
        p = hend;
    }
    *pp = p;
    return 0;
}

/* Parse redis://[host][:port][/db] into r (host, port, db), or redis+sentinel://... (above).
 * 0 or -1 (reported). */
int cfg_parse_redis_url(cfg_ctx_t *ctx, unsigned line, const char *path, pskgw_config_redis_t *r)
{
    const char *u = r->url;
    const char *p;
    char host[256] = "127.0.0.1";
    unsigned long port = 6379, db = 0;

    if (strncasecmp(u, "redis+sentinel://", 17) == 0)
        return parse_sentinel_url(ctx, line, path, r);

    if (strncasecmp(u, "rediss://", 9) == 0) {
        cfg_error(ctx, line, path, "TLS to Redis (rediss://) is not supported");
        return -1;
    }
    if (strncasecmp(u, "redis://", 8) != 0) {
        cfg_error(
            ctx, line, path,
            "must be a redis://host:port/db URL (or redis+sentinel://host:port,.../master/db)");
        return -1;
    }
    p = u + 8;
    if (strpbrk(p, "@") != NULL) {
        cfg_error(ctx, line, path,
                  "credentials in the URL are not accepted; use a password_file key");
        return -1;
    }
    if (strpbrk(p, "?# ") != NULL) {
        cfg_error(ctx, line, path, "must be a redis://host:port/db URL (no query)");
        return -1;
    }
    if (redis_host(ctx, line, path, &p, host, sizeof(host)) < 0)
        return -1;
    if (*p == ':') {
        char *end;
        p++;
        if (!isdigit((unsigned char)*p)) {
            cfg_error(ctx, line, path, "bad port");
            return -1;
        }
        errno = 0;
        port = strtoul(p, &end, 10);
        if (errno != 0 || port < 1 || port > 65535 || (*end != '\0' && *end != '/')) {
            cfg_error(ctx, line, path, "port must be between 1 and 65535");
            return -1;
        }
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        char *end;
        p++;
        if (!isdigit((unsigned char)*p)) {
            cfg_error(ctx, line, path, "database must be a number");
            return -1;
        }
        errno = 0;
        db = strtoul(p, &end, 10);
        if (errno != 0 || db > 1000000 || *end != '\0') {
            cfg_error(ctx, line, path, "database must be a number between 0 and 1000000");
            return -1;
        }
    } else if (*p == '/') {
        /* "redis://host:port/": database 0 */
    } else if (*p != '\0') {
        cfg_error(ctx, line, path, "must be a redis://host:port/db URL");
        return -1;
    }
    char *h = strdup(host);
    if (h == NULL) {
        ctx->oom = true;
        return -1;
    }
    free(r->host);
    r->host = h;
    r->port = (uint16_t)port;
    r->db = (uint32_t)db;
    return 0;
}

void cfg_redis_release(pskgw_config_redis_t *r)
{
    free(r->host);
    r->host = NULL;
    free(r->sentinels);
    r->sentinels = NULL;
    free(r->master_name);
    r->master_name = NULL;
    cfg_secret_free(&r->password);
}
