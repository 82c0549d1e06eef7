#include "e2e/e2e.h"

#include "e2e/decrypt.h"

#include "common/err.h"
#include "common/list.h"
#include "common/log.h"
#include "common/wipe.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct pskgw_e2e {
    pskgw_e2e_params_source_t src;
    pskgw_e2e_opts_t opts;
    pskgw_list_t pending; /* requests waiting for the source, newest first */
    size_t npending;
    bool freeing;
    pskgw_e2e_counters_t c;
};

/* One payload waiting for its parameters. Owned by the processor while pending; once canceled
 * (`canceled`), owned by the source's outstanding completion, which frees it. */
struct pskgw_e2e_req {
    pskgw_e2e_t *e2e;  /* NULL once canceled (detached) */
    pskgw_list_t link; /* in e2e->pending while pending */
    pskgw_e2e_result_cb cb;
    void *arg;
    void *handle; /* the source's fetch handle */
    bool in_fetch;
    bool early_done; /* done() came from inside fetch() */
    bool early_have_params;
    bool canceled;
    int early_status;
    pskgw_e2e_params_t early_params;
    pskgw_e2e_header_t hdr;
    size_t len;
    uint8_t *out;      /* plaintext buffer: the len bytes after the payload copy */
    uint8_t payload[]; /* len bytes of payload, then len bytes of plaintext buffer */
};

int pskgw_e2e_mode_parse(const char *s, pskgw_e2e_mode_t *out)
{
    if (!s || !out)
        return PSKGW_EINVAL;
    if (strcmp(s, "off") == 0)
        *out = PSKGW_E2E_MODE_OFF;
    else if (strcmp(s, "auto") == 0)
        *out = PSKGW_E2E_MODE_AUTO;
    else if (strcmp(s, "required") == 0)
        *out = PSKGW_E2E_MODE_REQUIRED;
    else
        return PSKGW_EINVAL;
    return 0;
}

const char *pskgw_e2e_mode_name(pskgw_e2e_mode_t mode)
{
    switch (mode) {
    case PSKGW_E2E_MODE_OFF:
        return "off";
    case PSKGW_E2E_MODE_AUTO:
        return "auto";
    case PSKGW_E2E_MODE_REQUIRED:
        return "required";
    }
    return "unknown";
}

const char *pskgw_e2e_reason_name(pskgw_e2e_reason_t reason)
{
    switch (reason) {
    case PSKGW_E2E_REASON_NONE:
        return "none";
    case PSKGW_E2E_REASON_NOT_E2E:
        return "not_e2e";
    case PSKGW_E2E_REASON_TRUNCATED:
        return "truncated";
    case PSKGW_E2E_REASON_BAD_MAC:
        return "bad_mac";
    case PSKGW_E2E_REASON_UNKNOWN_KI:
        return "unknown_ki";
    case PSKGW_E2E_REASON_UNAVAIL:
        return "unavailable";
    case PSKGW_E2E_REASON_BAD_PARAMS:
        return "bad_params";
    case PSKGW_E2E_REASON_CANCELED:
        return "canceled";
    case PSKGW_E2E_REASON_COUNT_:
        break;
    }
    return "unknown";
}

int pskgw_e2e_header_case_parse(const char *s, pskgw_e2e_header_case_t *out)
{
    if (!s || !out)
        return PSKGW_EINVAL;
    if (strcmp(s, "lower") == 0)
        *out = PSKGW_E2E_HEADER_LOWER;
    else if (strcmp(s, "upper") == 0)
        *out = PSKGW_E2E_HEADER_UPPER;
    else
        return PSKGW_EINVAL;
    return 0;
}

const char *pskgw_e2e_header_case_name(pskgw_e2e_header_case_t c)
{
    switch (c) {
    case PSKGW_E2E_HEADER_LOWER:
        return "lower";
    case PSKGW_E2E_HEADER_UPPER:
        return "upper";
    }
    return "unknown";
}

int pskgw_e2e_new_opts(const pskgw_e2e_params_source_t *src, const pskgw_e2e_opts_t *opts,
                       pskgw_e2e_t **out)
{
    pskgw_e2e_opts_t o = { PSKGW_E2E_HEADER_LOWER, PSKGW_E2E_V2_SEED };
    pskgw_e2e_t *e2e;

    if (opts)
        o = *opts;
    if (!src || !out || !src->fetch || !src->cancel)
        return PSKGW_EINVAL;
    if ((o.header_case != PSKGW_E2E_HEADER_LOWER && o.header_case != PSKGW_E2E_HEADER_UPPER) ||
        !pskgw_e2e_layout_as(2, o.v2_layout))
        return PSKGW_EINVAL;
    e2e = calloc(1, sizeof(*e2e));
    if (!e2e)
        return PSKGW_ENOMEM;
    e2e->src = *src;
    e2e->opts = o;
    pskgw_list_init(&e2e->pending);
    *out = e2e;
    return 0;
}

int pskgw_e2e_set_opts(pskgw_e2e_t *e2e, const pskgw_e2e_opts_t *opts)
{
    if (!e2e || !opts ||
        (opts->header_case != PSKGW_E2E_HEADER_LOWER &&
         opts->header_case != PSKGW_E2E_HEADER_UPPER) ||
        !pskgw_e2e_layout_as(2, opts->v2_layout))
        return PSKGW_EINVAL;
    e2e->opts = *opts;
    return 0;
}

int pskgw_e2e_new(const pskgw_e2e_params_source_t *src, pskgw_e2e_t **out)
{
    return pskgw_e2e_new_opts(src, NULL, out);
}

/* The EncryptedHeader as the source gets it: the parser's lower-case hex in the chosen case. */
static void source_key(const pskgw_e2e_t *e2e, const pskgw_e2e_header_t *h,
                       char key[PSKGW_E2E_KI_HEX_MAX + 1])
{
    memcpy(key, h->ki_hex, PSKGW_E2E_KI_HEX_MAX + 1);
    if (e2e->opts.header_case != PSKGW_E2E_HEADER_UPPER)
        return;
    for (size_t i = 0; key[i] != '\0'; i++) {
        if (key[i] >= 'a' && key[i] <= 'f')
            key[i] = (char)(key[i] - 'a' + 'A');
    }
}

void pskgw_e2e_counters(const pskgw_e2e_t *e2e, pskgw_e2e_counters_t *out)
{
    if (e2e && out)
        *out = e2e->c;
}

size_t pskgw_e2e_pending(const pskgw_e2e_t *e2e)
{
    return e2e ? e2e->npending : 0;
}

/* Count, log, then hand the result to the caller. Nothing may touch e2e after this returns: the
 * callback is allowed to free it. */
static void report(pskgw_e2e_t *e2e, pskgw_e2e_result_t *r, size_t payload_len,
                   pskgw_e2e_result_cb cb, void *arg)
{
    const pskgw_e2e_info_t *i = r->e2e;

    switch (r->kind) {
    case PSKGW_E2E_PLAIN:
        e2e->c.plain++;
        break;
    case PSKGW_E2E_DECRYPTED:
        e2e->c.decrypted++;
        break;
    case PSKGW_E2E_REJECTED:
        if (r->reason == PSKGW_E2E_REASON_CANCELED) {
            e2e->c.canceled++;
            PSKGW_DEBUG("e2e: request canceled (key identity \"%s\")", i ? i->ki_hex : "");
            break;
        }
        e2e->c.rejected++;
        if (r->reason > PSKGW_E2E_REASON_NONE && r->reason < PSKGW_E2E_REASON_COUNT_)
            e2e->c.rejected_by[r->reason]++;
        /* Never the content: reason, status, version, length, and the key identity only once
         * the service has vouched for it (parameters obtained). Before that, the "KI" may be the
         * first bytes of a plain payload that auto mode took for E2E. */
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "e2e-reject",
                     "e2e: payload rejected (reason \"%s\", status \"%s\", version %d, key "
                     "identity \"%s\", rot uid \"%s\", %zu bytes)",
                     pskgw_e2e_reason_name(r->reason), pskgw_err_name(r->status),
                     i ? i->version : 0, (i && i->rot_uid) ? i->ki_hex : "unverified",
                     (i && i->rot_uid) ? i->rot_uid : "", payload_len);
        break;
    }
    cb(arg, r);
}

static void report_simple(pskgw_e2e_t *e2e, pskgw_e2e_kind_t kind, int status,
                          pskgw_e2e_reason_t reason, const uint8_t *data, size_t len,
                          const pskgw_e2e_info_t *info, size_t payload_len, pskgw_e2e_result_cb cb,
                          void *arg)
{
    pskgw_e2e_result_t r;

    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.status = status;
    r.reason = reason;
    r.data = data;
    r.len = len;
    r.e2e = info;
    report(e2e, &r, payload_len, cb, arg);
}

static void info_from_header(pskgw_e2e_info_t *info, const pskgw_e2e_header_t *h)
{
    memset(info, 0, sizeof(*info));
    info->version = h->version;
    memcpy(info->ki_hex, h->ki_hex, sizeof(info->ki_hex));
}

static pskgw_e2e_reason_t reason_of_source_error(int status)
{
    switch (status) {
    case PSKGW_ENOTFOUND:
    case PSKGW_EDENIED:
        return PSKGW_E2E_REASON_UNKNOWN_KI;
    case PSKGW_ECANCELED:
        return PSKGW_E2E_REASON_CANCELED;
    case PSKGW_EINVAL:
    case PSKGW_EPARSE:
        return PSKGW_E2E_REASON_BAD_PARAMS; /* e.g. a cached value that does not decode */
    default:
        return PSKGW_E2E_REASON_UNAVAIL;
    }
}

static pskgw_e2e_reason_t reason_of_decrypt_error(int rc)
{
    switch (rc) {
    case PSKGW_EBADMAC:
        return PSKGW_E2E_REASON_BAD_MAC;
    case PSKGW_EPARSE:
        return PSKGW_E2E_REASON_TRUNCATED;
    default:
        return PSKGW_E2E_REASON_BAD_PARAMS;
    }
}

/* Decrypt the payload's body with *p into out (cap >= len) and report. out is wiped after the
 * callback. */
static void decrypt_and_report(pskgw_e2e_t *e2e, const pskgw_e2e_header_t *h,
                               const uint8_t *payload, size_t len, const pskgw_e2e_params_t *p,
                               uint8_t *out, size_t cap, pskgw_e2e_result_cb cb, void *arg)
{
    pskgw_e2e_info_t info;
    size_t n = 0;
    int rc;

    info_from_header(&info, h);
    if (!p) {
        report_simple(e2e, PSKGW_E2E_REJECTED, PSKGW_EINVAL, PSKGW_E2E_REASON_BAD_PARAMS, NULL, 0,
                      &info, len, cb, arg);
        return;
    }
    rc = pskgw_e2e_decrypt(p, payload + h->body_off, h->body_len, out, cap, &n);
    /* decrypted: the parameters passed pskgw_e2e_decrypt's own check, not made twice per
     * message; otherwise they still name the suite and the device when they are well-formed */
    if (rc == 0 || pskgw_e2e_params_check(p) == 0) {
        info.cipher_suite = pskgw_e2e_suite_name(p->suite);
        info.rot_uid = p->rot_uid;
    }
    if (rc == 0)
        report_simple(e2e, PSKGW_E2E_DECRYPTED, 0, PSKGW_E2E_REASON_NONE, out, n, &info, len, cb,
                      arg);
    else
        report_simple(e2e, PSKGW_E2E_REJECTED, rc, reason_of_decrypt_error(rc), NULL, 0, &info, len,
                      cb, arg);
    pskgw_wipe(out, cap);
}

static void req_link(pskgw_e2e_t *e2e, pskgw_e2e_req_t *r)
{
    pskgw_list_insert_head(&e2e->pending, &r->link);
    e2e->npending++;
}

static void req_unlink(pskgw_e2e_t *e2e, pskgw_e2e_req_t *r)
{
    pskgw_list_remove(&r->link);
    e2e->npending--;
}

static void req_free(pskgw_e2e_req_t *r)
{
    /* The plaintext buffer and the stashed params are secrets; the payload copy is not, but the
     * whole block is wiped at once. */
    pskgw_free_secret(r, sizeof(*r) + 2 * r->len);
}

/* The source answered for a live (not canceled) request that is already unlinked. */
static void req_complete(pskgw_e2e_t *e2e, pskgw_e2e_req_t *r, int status,
                         const pskgw_e2e_params_t *params)
{
    pskgw_e2e_info_t info;

    if (status == 0) {
        decrypt_and_report(e2e, &r->hdr, r->payload, r->len, params, r->out, r->len, r->cb, r->arg);
        return;
    }
    info_from_header(&info, &r->hdr);
    report_simple(e2e, PSKGW_E2E_REJECTED, status, reason_of_source_error(status), NULL, 0, &info,
                  r->len, r->cb, r->arg);
}

static void on_params(void *arg, int status, const pskgw_e2e_params_t *params)
{
    pskgw_e2e_req_t *r = arg;
    pskgw_e2e_t *e2e;

    if (r->canceled) {
        /* The caller was told already (pskgw_e2e_cancel / _free); this is the source's
         * confirmation, or a late answer that lost the race. */
        req_free(r);
        return;
    }
    if (r->in_fetch) {
        /* Called from inside fetch(): finish once fetch() has returned. */
        if (r->early_done)
            return; /* a second call breaks the source's contract: ignore it */
        r->early_done = true;
        r->early_status = status;
        if (status == 0 && params) {
            r->early_params = *params;
            r->early_have_params = true;
        }
        return;
    }
    e2e = r->e2e;
    req_unlink(e2e, r);
    req_complete(e2e, r, status, status == 0 ? params : NULL);
    req_free(r);
}

/* Payloads up to this size are decrypted into a buffer on the stack (an in-process hit makes no
 * allocation); larger ones (TLS records up to 16 KiB) into a heap buffer. */
#define E2E_STACK_OUT 2048

/* In-process hit through src->lookup: decrypt at once. 0 if handled (callback fired), 1 if
 * not at hand, or PSKGW_ENOMEM. */
static int try_lookup(pskgw_e2e_t *e2e, const pskgw_e2e_header_t *h, const uint8_t *payload,
                      size_t len, pskgw_e2e_result_cb cb, void *arg)
{
    pskgw_e2e_params_t p;
    char key[PSKGW_E2E_KI_HEX_MAX + 1];
    uint8_t stack_out[E2E_STACK_OUT];
    uint8_t *out;
    int rc;

    if (!e2e->src.lookup)
        return 1;
    memset(&p, 0, sizeof(p));
    source_key(e2e, h, key);
    if (e2e->src.lookup(e2e->src.ctx, key, &p) != 0) {
        pskgw_e2e_params_wipe(&p);
        return 1;
    }
    out = len <= sizeof(stack_out) ? stack_out : malloc(len);
    if (!out) {
        rc = PSKGW_ENOMEM;
        goto done;
    }
    decrypt_and_report(e2e, h, payload, len, &p, out, len, cb, arg);
    if (out != stack_out)
        free(out); /* wiped by decrypt_and_report */
    rc = 0;
done:
    pskgw_e2e_params_wipe(&p);
    return rc;
}

int pskgw_e2e_process(pskgw_e2e_t *e2e, pskgw_e2e_mode_t mode, const uint8_t *payload, size_t len,
                      pskgw_e2e_result_cb cb, void *arg, pskgw_e2e_req_t **req)
{
    pskgw_e2e_header_t h;
    pskgw_e2e_info_t info;
    pskgw_e2e_req_t *r;
    char key[PSKGW_E2E_KI_HEX_MAX + 1];
    int rc;

    if (!e2e || !cb || (!payload && len > 0))
        return PSKGW_EINVAL;
    if (mode != PSKGW_E2E_MODE_OFF && mode != PSKGW_E2E_MODE_AUTO &&
        mode != PSKGW_E2E_MODE_REQUIRED)
        return PSKGW_EINVAL;
    if (e2e->freeing)
        return PSKGW_ECLOSED;
    if (req)
        *req = NULL;

    if (mode == PSKGW_E2E_MODE_OFF) {
        report_simple(e2e, PSKGW_E2E_PLAIN, 0, PSKGW_E2E_REASON_NONE, payload, len, NULL, len, cb,
                      arg);
        return 0;
    }
    rc = pskgw_e2e_header_parse_as(payload, len, e2e->opts.v2_layout, &h);
    if (rc != 0) {
        if (mode == PSKGW_E2E_MODE_AUTO)
            report_simple(e2e, PSKGW_E2E_PLAIN, 0, PSKGW_E2E_REASON_NONE, payload, len, NULL, len,
                          cb, arg);
        else if (rc == PSKGW_EPARSE) /* a version nibble, too short: truncated */
            report_simple(e2e, PSKGW_E2E_REJECTED, PSKGW_EPARSE, PSKGW_E2E_REASON_TRUNCATED, NULL,
                          0, NULL, len, cb, arg);
        else
            report_simple(e2e, PSKGW_E2E_REJECTED, PSKGW_EPROTO, PSKGW_E2E_REASON_NOT_E2E, NULL, 0,
                          NULL, len, cb, arg);
        return 0;
    }

    rc = try_lookup(e2e, &h, payload, len, cb, arg);
    if (rc <= 0)
        return rc;

    /* payload (len) + plaintext buffer (len). A valid header implies len >= 19; 2 * len cannot
     * overflow for a payload that is in memory already. */
    r = calloc(1, sizeof(*r) + 2 * len);
    if (!r)
        return PSKGW_ENOMEM;
    r->e2e = e2e;
    r->cb = cb;
    r->arg = arg;
    r->hdr = h;
    r->len = len;
    r->out = r->payload + len;
    memcpy(r->payload, payload, len);
    req_link(e2e, r);

    source_key(e2e, &h, key);
    r->in_fetch = true;
    rc = e2e->src.fetch(e2e->src.ctx, key, on_params, r, &r->handle);
    r->in_fetch = false;
    if (rc < 0) {
        req_unlink(e2e, r);
        info_from_header(&info, &h);
        report_simple(e2e, PSKGW_E2E_REJECTED, rc, reason_of_source_error(rc), NULL, 0, &info, len,
                      cb, arg);
        req_free(r);
        return 0;
    }
    if (r->early_done) {
        req_unlink(e2e, r);
        req_complete(e2e, r, r->early_status, r->early_have_params ? &r->early_params : NULL);
        req_free(r);
        return 0;
    }
    if (req)
        *req = r;
    return 0;
}

void pskgw_e2e_cancel(pskgw_e2e_t *e2e, pskgw_e2e_req_t *r)
{
    void (*cancel)(void *, void *);
    void *ctx;
    void *handle;
    pskgw_e2e_info_t info;

    if (!e2e || !r || r->canceled || r->e2e != e2e)
        return;
    req_unlink(e2e, r);
    r->canceled = true;
    r->e2e = NULL;
    /* Everything needed after the callback is copied first: the callback may free e2e. */
    cancel = e2e->src.cancel;
    ctx = e2e->src.ctx;
    handle = r->handle;
    info_from_header(&info, &r->hdr);
    report_simple(e2e, PSKGW_E2E_REJECTED, PSKGW_ECANCELED, PSKGW_E2E_REASON_CANCELED, NULL, 0,
                  &info, r->len, r->cb, r->arg);
    /* The source calls on_params(ECANCELED) now or later, which frees r. */
    cancel(ctx, handle);
}

void pskgw_e2e_free(pskgw_e2e_t *e2e)
{
    if (!e2e || e2e->freeing)
        return;
    e2e->freeing = true;
    pskgw_list_t *first;
    while ((first = pskgw_list_first(&e2e->pending)) != NULL)
        pskgw_e2e_cancel(e2e, pskgw_container_of(first, pskgw_e2e_req_t, link));
    free(e2e);
}
