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

int pskgw_sink_buf_reserve(pskgw_sink_buf_t *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 64;
    char *p;

    if (need <= b->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    if (!(p = realloc(b->p, cap)))
        return PSKGW_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

void pskgw_sink_buf_free(pskgw_sink_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

#define FL_KEEP 4096u /* items kept per freelist */

void *pskgw_sink_fl_get(pskgw_sink_freelist_t *fl, size_t size)
{
    void *p = fl->head;

    if (p) {
        fl->head = *(void **)p;
        fl->n--;
        memset(p, 0, size);
        return p;
    }
    return calloc(1, size < sizeof(void *) ? sizeof(void *) : size);
}

void pskgw_sink_fl_put(pskgw_sink_freelist_t *fl, void *p)
{
    if (!p)
        return;
    if (fl->n >= FL_KEEP) {
        free(p);
        return;
    }
    *(void **)p = fl->head;
    fl->head = p;
    fl->n++;
}

void pskgw_sink_fl_free(pskgw_sink_freelist_t *fl)
{
    while (fl->head) {
        void *p = fl->head;
        fl->head = *(void **)p;
        free(p);
    }
    fl->n = 0;
}

/* The placeholder tmpl starts with (0..3), or -1. */
static int tmpl_hit(const char *tmpl, const char *const names[4], const size_t name_len[4])
{
    if (*tmpl != '{')
        return -1;
    for (int i = 0; i < 4; i++)
        if (strncmp(tmpl, names[i], name_len[i]) == 0)
            return i;
    return -1;
}

int pskgw_sink_template(const char *tmpl, const pskgw_envelope_t *env, pskgw_sink_buf_t *buf,
                        const char **out)
{
    static const char *const names[] = { "{domain}", "{rot_public_uid}", "{psk_identity}",
                                         "{listener}" };
    static const size_t name_len[] = { 8, 16, 14, 10 };
    const char *vals[4];
    size_t val_len[4];
    size_t need = 1;
    char *p;
    int rc;

    vals[0] = env->domain ? env->domain : "";
    vals[1] = env->rot_public_uid ? env->rot_public_uid : "";
    vals[2] = env->psk_identity ? env->psk_identity : "";
    vals[3] = env->listener ? env->listener : "";
    for (int i = 0; i < 4; i++)
        val_len[i] = strlen(vals[i]);
    for (const char *t = tmpl; *t;) {
        int hit = tmpl_hit(t, names, name_len);
        need += hit >= 0 ? val_len[hit] : 1;
        t += hit >= 0 ? name_len[hit] : 1;
    }
    if ((rc = pskgw_sink_buf_reserve(buf, need)) < 0)
        return rc;
    p = buf->p;
    while (*tmpl) {
        int hit = tmpl_hit(tmpl, names, name_len);
        if (hit >= 0) {
            memcpy(p, vals[hit], val_len[hit]);
            p += val_len[hit];
            tmpl += name_len[hit];
        } else {
            *p++ = *tmpl++;
        }
    }
    *p = '\0';
    *out = buf->p;
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
