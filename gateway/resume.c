/* Session resumption of a domain: see resume.h. */
#include "gateway/resume.h"
#include "gateway/domain_internal.h"
#include "gateway/metrics.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include <stdio.h>
#include <string.h>

#define BOUND_LEN WC_SHA256_DIGEST_SIZE

/* The secret the ticket keys of one domain come from: HMAC-SHA256 keyed with the file's secret
 * over "pskgw-ticket-domain" NUL <domain>. Another domain reading the same file derives other
 * keys: its tickets are an unknown key here, never a resumption under a foreign identity. */
static int bind_domain(const uint8_t *secret, size_t len, const char *domain,
                       uint8_t out[BOUND_LEN])
{
    static const char LABEL[] = "pskgw-ticket-domain"; /* with its NUL */
    Hmac h;
    int rc;

    if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
        return PSKGW_ECRYPTO;
    rc = wc_HmacSetKey(&h, WC_SHA256, secret, (word32)len);
    if (rc == 0)
        rc = wc_HmacUpdate(&h, (const uint8_t *)LABEL, sizeof(LABEL));
    if (rc == 0)
        rc = wc_HmacUpdate(&h, (const uint8_t *)domain, (word32)strlen(domain));
    if (rc == 0)
        rc = wc_HmacFinal(&h, out);
    wc_HmacFree(&h);
    pskgw_wipe(&h, sizeof(h));
    return rc == 0 ? 0 : PSKGW_ECRYPTO;
}

int pskgw_resume_keys(const pskgw_config_domain_t *cfg, pskgw_ticket_keys_t **out)
{
    const pskgw_config_resumption_t *r = &cfg->resumption;
    uint8_t bound[PSKGW_CONFIG_TICKET_SECRETS][BOUND_LEN];
    const uint8_t *s[PSKGW_CONFIG_TICKET_SECRETS];
    size_t l[PSKGW_CONFIG_TICKET_SECRETS];
    int rc = 0;

    *out = NULL;
    if (!cfg->has_resumption)
        return 0;
    for (size_t i = 0; i < r->nsecrets && rc == 0; i++) {
        rc = bind_domain(r->secrets[i], sizeof(r->secrets[i]), cfg->name, bound[i]);
        s[i] = bound[i];
        l[i] = sizeof(bound[i]);
    }
    if (rc == 0)
        rc = pskgw_ticket_keys_new(s, l, r->nsecrets, r->ticket_lifetime_s, out);
    if (rc == 0 && (rc = pskgw_ticket_keys_set_session_cache(*out, r->session_cache)) < 0) {
        pskgw_ticket_keys_free(*out);
        *out = NULL;
    }
    pskgw_wipe(bound, sizeof(bound));
    if (rc < 0) {
        PSKGW_ERR("domain \"%s\": resumption: ticket keys not made: %s", cfg->name,
                  pskgw_strerror(rc));
        return rc;
    }
    PSKGW_NOTICE("domain \"%s\": resumption: session tickets under %zu secret%s of %s, lifetime "
                 "%u s, session-ID cache %u sessions per listener",
                 cfg->name, r->nsecrets, r->nsecrets == 1 ? "" : "s", r->ticket_key_file,
                 (unsigned)r->ticket_lifetime_s, (unsigned)r->session_cache);
    return 0;
}

static void sid_samples(pskgw_metrics_t *m, const char *fam, const char *a,
                        const pskgw_ticket_stats_t *st)
{
    const struct {
        const char *outcome;
        uint64_t v;
    } o[] = { { "stored", st->sid_stored },   { "found", st->sid_found },
              { "unknown", st->sid_unknown }, { "expired", st->sid_expired },
              { "evicted", st->sid_evicted }, { "refused", st->sid_refused } };
    char lab[400];

    for (size_t i = 0; i < sizeof(o) / sizeof(o[0]); i++) {
        snprintf(lab, sizeof(lab), "%s,outcome=\"%s\"", a, o[i].outcome);
        pskgw_metrics_sample(m, fam, lab, o[i].v);
    }
}

void pskgw_resume_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m)
{
    static const char HS[] = "pskgw_resumption_handshakes_total";
    static const char TK[] = "pskgw_resumption_tickets_total";
    static const char SC[] = "pskgw_resumption_session_cache_total";

    pskgw_metrics_family(m, HS, "counter",
                         "completed handshakes of listeners with tickets, by kind (full, ticket, "
                         "session_id); resumed ones make no key lookup");
    pskgw_metrics_family(
        m, TK, "counter",
        "session tickets sealed, opened, or refused (unknown_key: rotated out "
        "or foreign; expired; bad; unsealed: identity too long for a ticket; refused: identity "
        "blocked or denied now)");
    pskgw_metrics_family(m, SC, "counter",
                         "session-ID cache of the listeners (RFC 5246 resumption): stored, found, "
                         "unknown (not found: never issued here, expired, evicted), expired, "
                         "evicted (dropped for room: session_cache too small, or lowered by a "
                         "reload), refused "
                         "(identity blocked or denied now)");
    for (size_t i = 0; i < n; i++) {
        const pskgw_ticket_stats_t *st;
        char a[300], lab[400];

        if (ds[i]->tickets == NULL)
            continue;
        st = pskgw_ticket_keys_stats(ds[i]->tickets);
        pskgw_metrics_label(a, sizeof(a), "domain", ds[i]->cfg->name);
        snprintf(lab, sizeof(lab), "%s,kind=\"full\"", a);
        pskgw_metrics_sample(m, HS, lab, st->full);
        snprintf(lab, sizeof(lab), "%s,kind=\"ticket\"", a);
        pskgw_metrics_sample(m, HS, lab, st->resumed_ticket);
        snprintf(lab, sizeof(lab), "%s,kind=\"session_id\"", a);
        pskgw_metrics_sample(m, HS, lab, st->resumed_id);
        snprintf(lab, sizeof(lab), "%s,outcome=\"sealed\"", a);
        pskgw_metrics_sample(m, TK, lab, st->sealed);
        snprintf(lab, sizeof(lab), "%s,outcome=\"opened\"", a);
        pskgw_metrics_sample(m, TK, lab, st->opened);
        snprintf(lab, sizeof(lab), "%s,outcome=\"unknown_key\"", a);
        pskgw_metrics_sample(m, TK, lab, st->unknown_key);
        snprintf(lab, sizeof(lab), "%s,outcome=\"expired\"", a);
        pskgw_metrics_sample(m, TK, lab, st->expired);
        snprintf(lab, sizeof(lab), "%s,outcome=\"bad\"", a);
        pskgw_metrics_sample(m, TK, lab, st->bad);
        snprintf(lab, sizeof(lab), "%s,outcome=\"unsealed\"", a);
        pskgw_metrics_sample(m, TK, lab, st->unsealed);
        snprintf(lab, sizeof(lab), "%s,outcome=\"refused\"", a);
        pskgw_metrics_sample(m, TK, lab, st->refused);
        sid_samples(m, SC, a, st);
    }
}
