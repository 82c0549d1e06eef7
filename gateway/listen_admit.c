/* pskgw_listener: the per-source limits around new handshakes (rate, failure throttle,
 * handshakes in progress) and the identity in log lines. See listen_api.h and listen_limits.h. */
#include "gateway/listen_internal.h"

#include "common/err.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

void pskgw_listen_log_identity(const char *id, char *out, size_t cap)
{
    size_t o = 0;
    size_t i;

    if (cap == 0)
        return;
    if (id == NULL)
        id = "";
    for (i = 0; id[i] != '\0' && i < PSKGW_LOG_ID_MAX; i++) {
        unsigned char c = (unsigned char)id[i];
        size_t need = (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? 1 : 4;

        if (o + need + 4 > cap) /* room for "..." and the NUL */
            break;
        if (need == 1)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02X", c);
    }
    if (id[i] != '\0' && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* (source, identity): the source bytes then the identity, for the pair throttle. */
static size_t pair_key(const pskgw_lsess_t *s, const char *identity, uint8_t *out, size_t cap)
{
    size_t n = strlen(identity);

    if (n > cap - s->src_len)
        n = cap - s->src_len;
    memcpy(out, s->src, s->src_len);
    memcpy(out + s->src_len, identity, n);
    return s->src_len + n;
}

int pskgw_listen_admit(pskgw_listener_t *l, const uint8_t *src, size_t src_len, const char *peer,
                       pskgw_halfopen_ticket_t *ticket)
{
    uint64_t now = uv_now(l->loop);

    ticket->held = false;
    if (!pskgw_rate_limit_take(&l->rate, src, src_len, now)) {
        l->counters.rate_limited++;
        PSKGW_LOG_RL_F(
            PSKGW_LOG_NOTICE, "listen-rate",
            (&(pskgw_log_fields_t){
                .domain = l->domain, .listener = l->name, .peer = peer, .reason = "rate limit" }),
            "listener \"%s\": handshake rate limit for \"%s\"", l->name, peer);
        return PSKGW_EBUSY;
    }
    if (pskgw_fail_throttle_blocked(&l->src_fail, src, src_len, now)) {
        l->counters.throttled_sources++;
        PSKGW_LOG_RL_F(
            PSKGW_LOG_NOTICE, "listen-src-throttled",
            (&(pskgw_log_fields_t){ .domain = l->domain,
                                    .listener = l->name,
                                    .peer = peer,
                                    .reason = "source throttled" }),
            "listener \"%s\": \"%s\" refused: too many failed handshakes from its source", l->name,
            peer);
        return PSKGW_EBUSY;
    }
    if (!pskgw_halfopen_take(&l->half_open, src, src_len, ticket)) {
        l->counters.refused_half_open++;
        PSKGW_LOG_RL_F(PSKGW_LOG_NOTICE, "listen-half-open",
                       (&(pskgw_log_fields_t){ .domain = l->domain,
                                               .listener = l->name,
                                               .peer = peer,
                                               .reason = "half-open limit" }),
                       "listener \"%s\": \"%s\" refused: its source has %u handshakes in progress",
                       l->name, peer, (unsigned)l->opt.half_open_per_source);
        return PSKGW_EBUSY;
    }
    return 0;
}

void pskgw_lsess_set_source(pskgw_lsess_t *s, const uint8_t *src, size_t src_len,
                            const pskgw_halfopen_ticket_t *ticket)
{
    if (src_len > sizeof(s->src))
        src_len = sizeof(s->src);
    memcpy(s->src, src, src_len);
    s->src_len = (uint8_t)src_len;
    s->half_open = *ticket;
}

int pskgw_listen_on_identity(pskgw_lsess_t *s, const char *identity, uint64_t now)
{
    pskgw_listener_t *l = s->l;
    uint8_t k[PSKGW_SOURCE_MAX + 256];
    char esc[PSKGW_LOG_ID_CAP];

    if (s->src_len == 0 || identity == NULL ||
        !pskgw_fail_throttle_blocked(&l->pair_fail, k, pair_key(s, identity, k, sizeof(k)), now))
        return 0;
    s->blocked = true;
    l->counters.blocked_identities++;
    pskgw_listen_log_identity(identity, esc, sizeof(esc));
    PSKGW_LOG_RL_F(PSKGW_LOG_NOTICE, "listen-blocked",
                   (&(pskgw_log_fields_t){ .domain = l->domain,
                                           .listener = l->name,
                                           .peer = s->peer,
                                           .identity = esc,
                                           .reason = "identity throttled" }),
                   "listener \"%s\": identity \"%s\" throttled for \"%s\" after failed handshakes "
                   "from its source (session %llu)",
                   l->name, esc, s->peer, (unsigned long long)s->id);
    return PSKGW_EDENIED;
}

void pskgw_listen_on_auth_failed(pskgw_lsess_t *s, const char *identity, uint64_t now)
{
    pskgw_listener_t *l = s->l;
    uint8_t k[PSKGW_SOURCE_MAX + 256];

    l->counters.auth_failures++;
    if (s->blocked || s->src_len == 0)
        return; /* a throttled attempt is not counted again */
    if (pskgw_fail_throttle_fail(&l->src_fail, s->src, s->src_len, now))
        PSKGW_LOG_RL_F(PSKGW_LOG_WARNING, "listen-src-throttle",
                       (&(pskgw_log_fields_t){ .domain = l->domain,
                                               .listener = l->name,
                                               .peer = s->peer,
                                               .reason = "source throttled" }),
                       "listener \"%s\": source of \"%s\" throttled after %u failed handshakes",
                       l->name, s->peer, (unsigned)l->opt.source_failure_max);
    if (identity != NULL)
        (void)pskgw_fail_throttle_fail(&l->pair_fail, k, pair_key(s, identity, k, sizeof(k)), now);
}
