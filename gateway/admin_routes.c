#include "gateway/admin_routes.h"
#include "common/err.h"
#include "common/log.h"
#include "gateway/domain_internal.h"

#include <ctype.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
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

/* Into our own malloc'ed buffer (json_dumpb): json_dumps() would allocate with jansson's
 * allocator, which main.c replaces (it wipes what jansson frees). Takes j. */
static void reply_json(pskgw_admin_req_t *req, unsigned status, json_t *j)
{
    size_t len = j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
    char *text = len ? malloc(len + 2) : NULL;

    if (text && json_dumpb(j, text, len, JSON_COMPACT) == len) {
        text[len] = '\n';
        text[len + 1] = '\0';
        pskgw_admin_reply(req, status, text);
    } else {
        pskgw_admin_reply(req, 500, "{\"error\":\"out of memory\"}\n");
    }
    free(text);
    json_decref(j);
}

struct listing {
    json_t *arr;
    const char *domain;
    const char *listener;
    int failed;
};

static void add_session(void *arg, const pskgw_listener_session_info_t *in)
{
    struct listing *ls = arg;
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:f, s:f, s:I, s:I}", "domain", ls->domain,
                  "listener", ls->listener, "peer", in->peer, "identity", in->identity,
                  "rot_public_uid", in->rot_public_uid, "session_id", (json_int_t)in->session_id,
                  "age_s", (double)in->age_ms / 1000.0, "idle_s", (double)in->idle_ms / 1000.0,
                  "bytes_in", (json_int_t)in->bytes_in, "bytes_out", (json_int_t)in->bytes_out);

    if (o == NULL || json_array_append_new(ls->arr, o) < 0)
        ls->failed = 1;
}

/* Runs the listing (list != NULL) or the close of identity over d's running listeners. */
static int each_listener(pskgw_domain_t *d, const char *identity, struct listing *list)
{
    int total = 0;

    for (size_t i = 0; i < d->nlis; i++) {
        pskgw_listener_t *l = d->lis[i] ? d->lis[i]->l : NULL;
        int n;

        if (l == NULL)
            continue;
        if (list) {
            list->listener = d->lis[i]->name;
            n = (int)pskgw_listener_sessions(l, identity, add_session, list);
        } else {
            n = pskgw_listener_close_identity(l, identity);
        }
        if (n < 0)
            return n;
        total += n;
    }
    return total;
}

static void sessions(pskgw_domain_t *const *domains, size_t n, pskgw_admin_req_t *req)
{
    const char *domain = pskgw_admin_req_arg(req, "domain");
    const char *identity = pskgw_admin_req_arg(req, "identity");
    struct listing ls = { json_array(), NULL, NULL, 0 };

    if (identity && !pskgw_admin_identity_ok(identity)) {
        json_decref(ls.arr);
        pskgw_admin_reply(req, 400, "{\"error\":\"identity must be hex\"}\n");
        return;
    }
    if (domain && !find_domain(domains, n, domain)) {
        json_decref(ls.arr);
        pskgw_admin_reply(req, 404, "{\"error\":\"no such domain\"}\n");
        return;
    }
    for (size_t i = 0; ls.arr && i < n; i++) {
        if (!domains[i] || domains[i]->closing ||
            (domain && strcmp(domains[i]->cfg->name, domain) != 0))
            continue;
        ls.domain = domains[i]->cfg->name;
        (void)each_listener(domains[i], identity, &ls);
    }
    if (!ls.arr || ls.failed) {
        json_decref(ls.arr);
        ls.arr = NULL;
    }
    reply_json(req, 200, ls.arr ? json_pack("{s:o}", "sessions", ls.arr) : NULL);
}

static void close_identity(pskgw_domain_t *const *domains, size_t n, pskgw_admin_req_t *req)
{
    const char *domain = pskgw_admin_req_arg(req, "domain");
    const char *identity = pskgw_admin_req_arg(req, "identity");
    pskgw_domain_t *d;
    int closed;

    if (!domain || !pskgw_admin_identity_ok(identity)) {
        pskgw_admin_reply(req, 400, "{\"error\":\"domain and identity (hex) are required\"}\n");
        return;
    }
    d = find_domain(domains, n, domain);
    if (!d) {
        pskgw_admin_reply(req, 404, "{\"error\":\"no such domain\"}\n");
        return;
    }
    closed = each_listener(d, identity, NULL);
    if (closed < 0) {
        pskgw_admin_reply(req, 500, "{\"error\":\"out of memory\"}\n");
        return;
    }
    PSKGW_NOTICE("admin: %s closed %d session%s of identity \"%s\" of domain \"%s\"",
                 pskgw_admin_req_peer(req), closed, closed == 1 ? "" : "s", identity, d->cfg->name);
    reply_json(req, 200,
               json_pack("{s:s, s:s, s:i}", "domain", d->cfg->name, "identity", identity, "closed",
                         closed));
}

static json_t *domain_spools(pskgw_domain_t *d)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && d->sinks && i < pskgw_sinkset_count(d->sinks); i++) {
        const char *name = NULL;
        pskgw_sink_stats_t st;
        json_t *o;

        if (pskgw_sinkset_stats(d->sinks, i, &name, &st) < 0)
            continue;
        o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "domain", d->cfg->name, "sink", name,
                      "spool_bytes", (json_int_t)st.spool_bytes, "queue_depth",
                      (json_int_t)st.queue_depth, "spooled_total", (json_int_t)st.spooled,
                      "replayed_total", (json_int_t)st.replayed, "dropped_total",
                      (json_int_t)st.dropped);
        if (o == NULL || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static void spools(pskgw_domain_t *const *domains, size_t n, pskgw_admin_req_t *req)
{
    json_t *all = json_array();

    for (size_t i = 0; all && i < n; i++) {
        json_t *one;

        if (!domains[i] || domains[i]->closing)
            continue;
        one = domain_spools(domains[i]);
        if (one == NULL || json_array_extend(all, one) < 0) {
            json_decref(one);
            json_decref(all);
            all = NULL;
            break;
        }
        json_decref(one);
    }
    reply_json(req, 200, all ? json_pack("{s:o}", "spools", all) : NULL);
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
    bool post_route = strcmp(path, "/admin/invalidate") == 0 ||
                      strcmp(path, "/admin/reload") == 0 || strcmp(path, "/admin/close") == 0;
    bool get_route = strcmp(path, "/admin/sessions") == 0 || strcmp(path, "/admin/spools") == 0;

    if ((post_route && !post) || (get_route && post)) {
        pskgw_admin_reply(req, 405,
                          post_route ? "{\"error\":\"use POST\"}\n" : "{\"error\":\"use GET\"}\n");
        return;
    }
    if (strcmp(path, "/admin/invalidate") == 0)
        invalidate(domains, n, req);
    else if (strcmp(path, "/admin/reload") == 0)
        reload(req);
    else if (strcmp(path, "/admin/close") == 0)
        close_identity(domains, n, req);
    else if (strcmp(path, "/admin/sessions") == 0)
        sessions(domains, n, req);
    else if (strcmp(path, "/admin/spools") == 0)
        spools(domains, n, req);
    else
        pskgw_admin_reply(req, 404, "{\"error\":\"no such route\"}\n");
}
