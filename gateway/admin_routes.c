#include "gateway/admin_routes.h"
#include "common/err.h"
#include "common/log.h"
#include "gateway/domain_internal.h"
#include "gateway/handover.h"

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

struct listing {
    json_t *arr;
    const char *domain;
    const char *listener;
    int failed;
};

/* Invalidate (or revoke) identity in d's PSK cache and publish it to every gateway sharing the
 * cache's Redis. The cache key is the identity as the device sent it; an operator may write it
 * in the other case: both spellings are done. true when published (false: no Redis, not
 * connected: only this gateway knows). */
static int broadcast(pskgw_domain_t *d, pskgw_keycache_op_t op, const char *identity,
                     bool *published)
{
    char v[2][IDENTITY_MAX + 1];
    size_t n = strlen(identity);

    for (size_t i = 0; i <= n; i++) {
        v[0][i] = (char)toupper((unsigned char)identity[i]);
        v[1][i] = (char)tolower((unsigned char)identity[i]);
    }
    *published = true;
    for (int i = 0; i < 2; i++) {
        int rc;

        if (i == 1 && strcmp(v[0], v[1]) == 0)
            break;
        rc = pskgw_keycache_broadcast(d->psk_cache, op, (const uint8_t *)v[i], n);
        if (rc == PSKGW_EINVAL)
            return rc;
        if (rc < 0)
            *published = false;
    }
    return 0;
}

static int each_listener(pskgw_domain_t *d, const char *identity, struct listing *list);
static void reply_json(pskgw_admin_req_t *req, unsigned status, json_t *j);

int pskgw_admin_routes_revoke(pskgw_domain_t *d, const char *identity, bool revoke, bool *published,
                              int *closed)
{
    int rc;

    *published = false;
    *closed = 0;
    if (!d->psk_cache || !pskgw_admin_identity_ok(identity))
        return PSKGW_EINVAL;
    rc = broadcast(d, revoke ? PSKGW_KEYCACHE_OP_REVOKE : PSKGW_KEYCACHE_OP_INVALIDATE, identity,
                   published);
    if (rc < 0)
        return rc;
    if (revoke && (*closed = each_listener(d, identity, NULL)) < 0)
        *closed = 0;
    return 0;
}

/* POST /admin/invalidate and /admin/revoke (revoke: a refusal stored, sessions closed). */
static void invalidate(pskgw_domain_t *const *domains, size_t n, pskgw_admin_req_t *req,
                       bool revoke)
{
    const char *domain = pskgw_admin_req_arg(req, "domain");
    const char *identity = pskgw_admin_req_arg(req, "identity");
    pskgw_domain_t *d;
    bool published = false;
    int closed = 0;

    if (!domain || !pskgw_admin_identity_ok(identity)) {
        pskgw_admin_reply(req, 400, "{\"error\":\"domain and identity (hex) are required\"}\n");
        return;
    }
    d = find_domain(domains, n, domain);
    if (!d || !d->psk_cache) {
        pskgw_admin_reply(req, 404, "{\"error\":\"no such domain\"}\n");
        return;
    }
    if (pskgw_admin_routes_revoke(d, identity, revoke, &published, &closed) < 0) {
        pskgw_admin_reply(req, 400, "{\"error\":\"identity refused by the cache\"}\n");
        return;
    }
    PSKGW_NOTICE("admin: %s %s identity \"%s\" of domain \"%s\" (cache and redis; %s)%s",
                 pskgw_admin_req_peer(req), revoke ? "revoked" : "invalidated", identity,
                 d->cfg->name,
                 published ? "published to the gateways sharing the redis"
                           : "NOT published: redis not connected",
                 revoke ? (closed > 0 ? ": its sessions closed" : ": no session here") : "");
    reply_json(req, 200,
               revoke ? json_pack("{s:s, s:s, s:b, s:b, s:i}", "domain", d->cfg->name, "identity",
                                  identity, "revoked", 1, "published", published, "closed", closed)
                      : json_pack("{s:s, s:s, s:b, s:b}", "domain", d->cfg->name, "identity",
                                  identity, "invalidated", 1, "published", published));
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

/* POST /admin/handover: stop as on SIGTERM, the sessions sealed for the next process
 * (handover.h); refused when there is no state directory. */
static void handover(pskgw_admin_req_t *req)
{
    if (!pskgw_handover_enabled()) {
        pskgw_admin_reply(req, 409, "{\"error\":\"no state directory: hand-over is off\"}\n");
        return;
    }
    PSKGW_NOTICE("admin: %s requested a hand-over (stop, sessions kept for the next process)",
                 pskgw_admin_req_peer(req));
    if (kill(getpid(), SIGTERM) < 0) {
        pskgw_admin_reply(req, 500, "{\"error\":\"could not signal the process\"}\n");
        return;
    }
    pskgw_admin_reply(req, 202, "{\"handover\":\"requested\"}\n");
}

void pskgw_admin_routes_handle(pskgw_domain_t *const *domains, size_t n, pskgw_admin_req_t *req)
{
    const char *path = pskgw_admin_req_path(req);
    bool post = strcmp(pskgw_admin_req_method(req), "POST") == 0;
    bool post_route = strcmp(path, "/admin/invalidate") == 0 ||
                      strcmp(path, "/admin/revoke") == 0 || strcmp(path, "/admin/reload") == 0 ||
                      strcmp(path, "/admin/close") == 0 || strcmp(path, "/admin/handover") == 0;
    bool get_route = strcmp(path, "/admin/sessions") == 0 || strcmp(path, "/admin/spools") == 0;

    if ((post_route && !post) || (get_route && post)) {
        pskgw_admin_reply(req, 405,
                          post_route ? "{\"error\":\"use POST\"}\n" : "{\"error\":\"use GET\"}\n");
        return;
    }
    if (strcmp(path, "/admin/invalidate") == 0)
        invalidate(domains, n, req, false);
    else if (strcmp(path, "/admin/revoke") == 0)
        invalidate(domains, n, req, true);
    else if (strcmp(path, "/admin/reload") == 0)
        reload(req);
    else if (strcmp(path, "/admin/handover") == 0)
        handover(req);
    else if (strcmp(path, "/admin/close") == 0)
        close_identity(domains, n, req);
    else if (strcmp(path, "/admin/sessions") == 0)
        sessions(domains, n, req);
    else if (strcmp(path, "/admin/spools") == 0)
        spools(domains, n, req);
    else
        pskgw_admin_reply(req, 404, "{\"error\":\"no such route\"}\n");
}

void pskgw_admin_routes_remote(void *arg, pskgw_keycache_op_t op, const uint8_t *key, size_t len)
{
    pskgw_domain_t *d = arg;
    char identity[IDENTITY_MAX + 1];
    int closed = 0;

    if (d->closing || len == 0 || len > IDENTITY_MAX)
        return;
    memcpy(identity, key, len);
    identity[len] = '\0';
    if (!pskgw_admin_identity_ok(identity))
        return;
    if (op == PSKGW_KEYCACHE_OP_REVOKE && (closed = each_listener(d, identity, NULL)) < 0)
        closed = 0;
    PSKGW_NOTICE("domain \"%s\": identity \"%s\" %s by another gateway%s", d->cfg->name, identity,
                 op == PSKGW_KEYCACHE_OP_REVOKE ? "revoked" : "invalidated",
                 op != PSKGW_KEYCACHE_OP_REVOKE ? ""
                 : closed                       ? ": its sessions closed"
                                                : ": no session here");
}
