#include "gateway/admin_routes.h"
#include "common/err.h"
#include "common/log.h"
#include "gateway/domain_internal.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define IDENTITY_MAX 256

bool pskgw_admin_identity_ok(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n] != '\0'; n++) {
        if (n == IDENTITY_MAX || !isxdigit((unsigned char)s[n]))
            return false;
    }
    return n > 0;
}

static pskgw_domain_t *find_domain(pskgw_domain_t *const *domains, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++) {
        if (domains[i] && !domains[i]->closing && strcmp(domains[i]->cfg->name, name) == 0)
            return domains[i];
    }
    return NULL;
}

static void invalidate(pskgw_domain_t *const *domains, size_t n, pskgw_admin_req_t *req)
{
    const char *peer = pskgw_admin_req_peer(req);
    const char *domain = pskgw_admin_req_arg(req, "domain");
    const char *identity = pskgw_admin_req_arg(req, "identity");
    pskgw_domain_t *d;
    char body[IDENTITY_MAX + 256];
    int rc;

    if (!domain || !pskgw_admin_identity_ok(identity)) {
        pskgw_admin_reply(req, 400, "{\"error\":\"domain and identity (hex) are required\"}\n");
        return;
    }
    d = find_domain(domains, n, domain);
    if (!d || !d->psk_cache) {
        pskgw_admin_reply(req, 404, "{\"error\":\"no such domain\"}\n");
        return;
    }
    rc = pskgw_keycache_invalidate(d->psk_cache, (const uint8_t *)identity, strlen(identity));
    if (rc < 0) {
        pskgw_admin_reply(req, 400, "{\"error\":\"identity refused by the cache\"}\n");
        return;
    }
    PSKGW_NOTICE("admin: %s invalidated identity \"%s\" of domain \"%s\" (cache and redis)", peer,
                 identity, d->cfg->name);
    snprintf(body, sizeof(body), "{\"domain\":\"%s\",\"identity\":\"%s\",\"invalidated\":true}\n",
             d->cfg->name, identity);
    pskgw_admin_reply(req, 200, body);
}

static void reload(pskgw_admin_req_t *req)
{
    PSKGW_NOTICE("admin: %s requested a reload", pskgw_admin_req_peer(req));
    if (kill(getpid(), SIGHUP) < 0) {
        pskgw_admin_reply(req, 500, "{\"error\":\"could not signal the process\"}\n");
        return;
    }
    pskgw_admin_reply(req, 202, "{\"reload\":\"requested\"}\n");
}

void pskgw_admin_routes_handle(pskgw_domain_t *const *domains, size_t n, pskgw_admin_req_t *req)
{
    const char *path = pskgw_admin_req_path(req);
    bool post = strcmp(pskgw_admin_req_method(req), "POST") == 0;

    if (strcmp(path, "/admin/invalidate") == 0 || strcmp(path, "/admin/reload") == 0) {
        if (!post) {
            pskgw_admin_reply(req, 405, "{\"error\":\"use POST\"}\n");
            return;
        }
        if (path[7] == 'i')
            invalidate(domains, n, req);
        else
            reload(req);
        return;
    }
    pskgw_admin_reply(req, 404, "{\"error\":\"no such route\"}\n");
}
