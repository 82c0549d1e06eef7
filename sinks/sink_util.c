/* Helpers shared by the backends: topic/stream templates, raw-mode metadata, name resolution
 * off the loop. */
#include "common/clock.h"
#include "common/err.h"
#include "sinks/internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pskgw_sink_template(const char *tmpl, const pskgw_envelope_t *env, char **out)
{
    static const char *const names[] = { "{domain}", "{rot_public_uid}", "{psk_identity}",
                                         "{listener}" };
    const char *vals[4];
    size_t cap = 1;
    char *buf;
    char *p;

    vals[0] = env->domain ? env->domain : "";
    vals[1] = env->rot_public_uid ? env->rot_public_uid : "";
    vals[2] = env->psk_identity ? env->psk_identity : "";
    vals[3] = env->listener ? env->listener : "";
    for (const char *t = tmpl; *t; t++) {
        size_t add = 1;
        for (int i = 0; i < 4; i++)
            if (strncmp(t, names[i], strlen(names[i])) == 0 && strlen(vals[i]) > add)
                add = strlen(vals[i]);
        cap += add;
    }
    buf = malloc(cap);
    if (!buf)
        return PSKGW_ENOMEM;
    p = buf;
    while (*tmpl) {
        int hit = -1;
        for (int i = 0; i < 4 && hit < 0; i++)
            if (strncmp(tmpl, names[i], strlen(names[i])) == 0)
                hit = i;
        if (hit >= 0) {
            size_t n = strlen(vals[hit]);
            memcpy(p, vals[hit], n);
            p += n;
            tmpl += strlen(names[hit]);
        } else {
            *p++ = *tmpl++;
        }
    }
    *p = '\0';
    *out = buf;
    return 0;
}

void pskgw_sink_meta(const pskgw_msg_t *m, pskgw_sink_meta_t *meta)
{
    const pskgw_envelope_t *e = &m->env;
    size_t n = 0;

#define META(k, v)            \
    do {                      \
        meta->name[n] = (k);  \
        meta->value[n] = (v); \
        n++;                  \
    } while (0)
    snprintf(meta->num[0], sizeof(meta->num[0]), "%llu", (unsigned long long)e->session_id);
    snprintf(meta->num[1], sizeof(meta->num[1]), "%llu", (unsigned long long)e->seq);
    snprintf(meta->num[2], sizeof(meta->num[2]), "%zu", e->payload_len);
    if (pskgw_clock_rfc3339(e->received_at_ms, meta->ts, sizeof(meta->ts)) < 0)
        meta->ts[0] = '\0';
    META("message_id", m->id);
    META("domain", e->domain);
    META("listener", e->listener);
    META("transport", e->transport);
    META("peer", e->peer);
    META("psk_identity", e->psk_identity);
    META("rot_public_uid", e->rot_public_uid);
    META("session_id", meta->num[0]);
    META("seq", meta->num[1]);
    META("received_at", meta->ts);
    META("payload_len", meta->num[2]);
    if (e->e2e) {
        snprintf(meta->num[3], sizeof(meta->num[3]), "%u", e->e2e->version);
        META("e2e_version", meta->num[3]);
        META("e2e_key_identity", e->e2e->key_identity);
        META("e2e_cipher_suite", e->e2e->cipher_suite);
    }
#undef META
    meta->n = n;
}

struct pskgw_sink_resolve {
    uv_getaddrinfo_t req;
    void (*cb)(void *arg, int status, const char *ip);
    void *arg;
};

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    pskgw_sink_resolve_t *r = req->data;
    const struct addrinfo *pick = NULL;
    char ip[INET6_ADDRSTRLEN];
    int rc = PSKGW_EUNAVAIL;

    if (status == UV_ECANCELED)
        rc = PSKGW_ECANCELED;
    for (const struct addrinfo *ai = status == 0 ? res : NULL; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
        if (!pick && ai->ai_family == AF_INET6)
            pick = ai;
    }
    if (pick && uv_ip_name(pick->ai_addr, ip, sizeof(ip)) == 0)
        rc = 0;
    uv_freeaddrinfo(res);
    r->cb(r->arg, rc, rc == 0 ? ip : NULL);
    free(r);
}

int pskgw_sink_resolve(uv_loop_t *loop, const char *host,
                       void (*cb)(void *arg, int status, const char *ip), void *arg,
                       pskgw_sink_resolve_t **out)
{
    struct addrinfo hints;
    pskgw_sink_resolve_t *r;
    int rc;

    if (!loop || !host || !cb || !out)
        return PSKGW_EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PSKGW_ENOMEM;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r->cb = cb;
    r->arg = arg;
    r->req.data = r;
    if ((rc = uv_getaddrinfo(loop, &r->req, resolved_cb, host, NULL, &hints)) != 0) {
        free(r);
        return rc == UV_ENOMEM ? PSKGW_ENOMEM : PSKGW_EINVAL;
    }
    *out = r;
    return 0;
}

void pskgw_sink_resolve_cancel(pskgw_sink_resolve_t *r)
{
    (void)uv_cancel((uv_req_t *)&r->req);
}
