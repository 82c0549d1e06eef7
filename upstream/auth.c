#include "upstream/auth.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"
#include "common/wipe.h"
#include "upstream/internal.h"
#include "upstream/parse.h"
#include "upstream/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A token is not used in its last moments (it could expire on the way): the last 500 ms, or
 * the last tenth of a shorter lifetime (less than the fifth left at the 80 % renewal, so the
 * renewal timer, even firing a little late, still finds the token usable and renews it). */
#define TOKEN_MARGIN_MS 500u

static void on_renew(uv_timer_t *t);

void pskgw_upstream_auth_init(pskgw_upstream_t *c, uv_loop_t *loop, uint64_t seed)
{
    pskgw_upstream_auth_t *a = &c->auth;
    const pskgw_backoff_policy_t p = { c->backoff_base_ms, c->backoff_max_ms, 2, 50, 0 };

    pskgw_backoff_init(&a->backoff, &p, seed);
    pskgw_backoff_set_random(&a->backoff, c->backoff.random, c->backoff.random_arg);
    uv_timer_init(loop, &a->renew);
    a->renew.data = c;
}

int pskgw_upstream_auth_usable(const pskgw_upstream_t *c)
{
    return c->auth.token && uv_now(c->loop) + c->auth.margin < c->auth.expiry;
}

int pskgw_upstream_auth_valid(const pskgw_upstream_t *c)
{
    return c->auth.token && uv_now(c->loop) < c->auth.expiry;
}

int pskgw_upstream_auth_header(const pskgw_upstream_t *c, char **out)
{
    size_t tl = strlen(c->auth.token);
    size_t pl = c->auth_mode == PSKGW_UPSTREAM_AUTH_BEARER ? 7 : 0;
    char *v = malloc(pl + tl + 1);

    if (!v)
        return PSKGW_ENOMEM;
    memcpy(v, "Bearer ", pl);
    memcpy(v + pl, c->auth.token, tl + 1);
    *out = v;
    return 0;
}

static void drop_token(pskgw_upstream_t *c)
{
    pskgw_secmem_free(c->auth.token);
    c->auth.token = NULL;
}

void pskgw_upstream_auth_refused(pskgw_upstream_t *c, uint64_t gen)
{
    if (gen == c->auth.gen && c->auth.token) {
        PSKGW_INFO("upstream \"%s\": token refused (401): re-authenticating", c->name);
        drop_token(c);
    }
}

void pskgw_upstream_auth_wait(pskgw_upstream_req_t *r)
{
    r->state = R_WAIT_AUTH;
    pskgw_upstream_rl_push(&r->c->auth.waiters, r);
    pskgw_upstream_auth_start(r->c);
}

static void fail_waiters(pskgw_upstream_t *c, int err)
{
    pskgw_upstream_req_t *r;

    while ((r = pskgw_upstream_rl_first(&c->auth.waiters)) != NULL)
        pskgw_upstream_finish(r, err);
}

/* The one backoff decision of a failed authentication: the next may start only after the
 * Retry-After (ra >= 0, which also opens the client's rate-limit window) or the backoff for
 * this many failures. Returns the delay. */
static uint64_t back_off(pskgw_upstream_t *c, uint64_t now, int64_t ra)
{
    pskgw_upstream_auth_t *a = &c->auth;
    uint64_t delay;

    if (ra >= 0) {
        pskgw_backoff_count(&a->backoff);
        delay = pskgw_upstream_rate_limited(c, now, ra);
    } else {
        delay = pskgw_backoff_next(&a->backoff);
    }
    a->not_before = now + delay;
    return delay;
}

/* A 200 with a token: keep it, schedule its renewal, send everyone who waited. A malformed
 * answer backs off like any failed authentication: the next request must not start a new
 * authenticate at once (a broken service would get one per request). */
static void got_token(pskgw_upstream_t *c, const pskgw_http_result_t *res, uint64_t now)
{
    pskgw_upstream_auth_t *a = &c->auth;
    pskgw_upstream_req_t *r;
    char why[256];
    char *token = NULL;
    int64_t exp = 0;
    int64_t iat = -1;
    uint64_t life;
    uint64_t at;
    int rc;

    why[0] = '\0';
    rc = pskgw_upstream_parse_auth(res->body, res->body_len, &token, why, sizeof(why));
    if (rc == 0) { /* kept in don't-dump memory */
        char *kept = pskgw_secmem_strdup(token);

        pskgw_free_secret_str(token);
        token = kept;
        if (!token) {
            rc = PSKGW_ENOMEM;
            snprintf(why, sizeof(why), "out of memory");
        }
    }
    if (rc < 0) {
        c->stats.outcomes[PSKGW_UPSTREAM_OP_AUTH][PSKGW_UPSTREAM_OUT_ERROR]++;
        PSKGW_LOG_RL(PSKGW_LOG_ERR, "upstream-auth-parse",
                     "upstream \"%s\": bad authenticate response: %s", c->name, why);
        a->last_err = rc;
        back_off(c, now, -1);
        fail_waiters(c, rc);
        return;
    }
    pskgw_upstream_note_once(c, PSKGW_UPSTREAM_OP_AUTH, why);
    rc = pskgw_upstream_jwt_claims(token, strlen(token), &exp, &iat);
    life = pskgw_upstream_token_lifetime_ms(rc, exp, iat, pskgw_clock_wall_ms());
    c->stats.outcomes[PSKGW_UPSTREAM_OP_AUTH][PSKGW_UPSTREAM_OUT_OK]++;
    c->stats.token_renewals++;
    drop_token(c);
    a->token = token;
    a->gen++;
    a->expiry = a->t0 + life;
    a->margin = life / 10 < TOKEN_MARGIN_MS ? life / 10 : TOKEN_MARGIN_MS;
    pskgw_backoff_reset(&a->backoff);
    a->not_before = 0;
    a->last_err = 0;
    PSKGW_INFO("upstream \"%s\": authenticated, token valid for %llu ms%s", c->name,
               (unsigned long long)life, rc < 0 ? " (no exp claim: assumed)" : "");
    at = a->t0 + life * 8 / 10;
    uv_timer_start(&a->renew, on_renew, at > now ? at - now : 0, 0);
    /* Everyone who waited goes now; a send that fails may admit more requests, which find the
     * token and never join the list again. */
    while ((r = pskgw_upstream_rl_first(&a->waiters)) != NULL) {
        pskgw_upstream_rl_unlink(r);
        pskgw_upstream_req_send(r);
    }
}

/* Rate limited or transient: try again after a backoff; waiters whose deadline cannot see that
 * attempt end now. */
static void retry_later(pskgw_upstream_t *c, pskgw_upstream_class_t cls,
                        const pskgw_http_result_t *res, uint64_t now, int err)
{
    int64_t ra = cls == PSKGW_UPSTREAM_CLASS_RATELIMIT
                     ? pskgw_upstream_retry_after_of(res->retry_after)
                     : -1;
    uint64_t delay = back_off(c, now, ra);
    pskgw_upstream_req_t *r;
    pskgw_list_t *pos, *next;

    if (res->transport_err)
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "upstream-auth",
                     "upstream \"%s\": authenticate: %s (%s); retrying in %llu ms", c->name,
                     pskgw_strerror(res->transport_err), res->detail, (unsigned long long)delay);
    else
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "upstream-auth",
                     "upstream \"%s\": authenticate: http %ld; retrying in %llu ms", c->name,
                     res->status, (unsigned long long)delay);
    pskgw_list_foreach_safe(pos, next, &c->auth.waiters.head)
    {
        r = pskgw_container_of(pos, pskgw_upstream_req_t, link);
        if (!pskgw_upstream_retry_fits(now, delay, r->deadline, PSKGW_UPSTREAM_MIN_ATTEMPT_MS))
            pskgw_upstream_finish(r, now >= r->deadline ? PSKGW_ETIMEOUT : err);
    }
    if (c->auth.waiters.n || pskgw_upstream_auth_usable(c))
        uv_timer_start(&c->auth.renew, on_renew, delay, 0);
}

static void on_auth_http(void *arg, const pskgw_http_result_t *res)
{
    pskgw_upstream_t *c = arg;
    uint64_t now = uv_now(c->loop);
    pskgw_upstream_class_t cls;
    char ex[121];
    int err = 0;

    c->auth.http = NULL;
    cls = pskgw_upstream_classify(res->status, res->transport_err, &err);
    pskgw_upstream_lat_record(c, PSKGW_UPSTREAM_OP_AUTH, now - c->auth.t0);
    if (cls == PSKGW_UPSTREAM_CLASS_OK) {
        got_token(c, res, now);
        return;
    }
    c->stats.outcomes[PSKGW_UPSTREAM_OP_AUTH][pskgw_upstream_outcome_of(err)]++;
    c->auth.last_err = res->transport_err ? res->transport_err : err ? err : PSKGW_EUNAVAIL;
    if (cls == PSKGW_UPSTREAM_CLASS_REAUTH ||
        (cls == PSKGW_UPSTREAM_CLASS_PERMANENT && !res->transport_err && res->status >= 400 &&
         res->status < 500)) {
        pskgw_upstream_excerpt(res->body, res->body_len, ex, sizeof(ex));
        PSKGW_ERR("upstream \"%s\": credentials refused: http %ld \"%s\"", c->name, res->status,
                  ex);
        c->auth.last_err = PSKGW_EAUTH;
        back_off(c, now, -1);
        fail_waiters(c, PSKGW_EAUTH);
        return;
    }
    if (cls == PSKGW_UPSTREAM_CLASS_PERMANENT) {
        PSKGW_ERR("upstream \"%s\": authenticate failed: %s (%s)", c->name,
                  pskgw_strerror(res->transport_err ? res->transport_err : err),
                  res->transport_err ? res->detail : "unexpected status");
        back_off(c, now, -1);
        fail_waiters(c, res->transport_err ? res->transport_err : err);
        return;
    }
    retry_later(c, cls, res, now, err);
}

void pskgw_upstream_auth_start(pskgw_upstream_t *c)
{
    pskgw_upstream_auth_t *a = &c->auth;
    uint64_t now = uv_now(c->loop);
    char *body = NULL;
    int rc;

    if (c->closing || a->http)
        return;
    if (now < a->not_before) {
        uv_timer_start(&a->renew, on_renew, a->not_before - now, 0);
        return;
    }
    rc = pskgw_upstream_build_auth(c->key_id, c->secret, &body);
    if (rc == 0)
        rc = pskgw_http_post(c->http, c->url_auth, NULL, body, c->timeout_ms, on_auth_http, c,
                             &a->http);
    pskgw_free_secret_str(body);
    if (rc < 0) {
        PSKGW_ERR("upstream \"%s\": cannot start authenticate: %s", c->name, pskgw_strerror(rc));
        fail_waiters(c, rc);
        return;
    }
    a->t0 = now;
    c->stats.http_attempts[PSKGW_UPSTREAM_OP_AUTH]++;
}

static void on_renew(uv_timer_t *t)
{
    pskgw_upstream_t *c = t->data;

    /* Renew while the token lives (proactive) or while someone waits; otherwise the next
     * request authenticates. */
    if (pskgw_upstream_auth_usable(c) || c->auth.waiters.n)
        pskgw_upstream_auth_start(c);
}

void pskgw_upstream_auth_stop(pskgw_upstream_t *c)
{
    if (c->auth.http) {
        pskgw_http_cancel(c->auth.http);
        c->auth.http = NULL;
    }
    uv_timer_stop(&c->auth.renew);
}

void pskgw_upstream_auth_close(pskgw_upstream_t *c, uv_close_cb cb)
{
    uv_close((uv_handle_t *)&c->auth.renew, cb);
}

void pskgw_upstream_auth_free(pskgw_upstream_t *c)
{
    drop_token(c);
}
