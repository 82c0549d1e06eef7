/* Session resumption of a domain (issue 12, section 3): the ticket keys made from the domain's
 * `resumption` group (config/config.h, dtls/ticket.h) and their counters as metrics. */
#ifndef PSKGW_GATEWAY_RESUME_H
#define PSKGW_GATEWAY_RESUME_H

#include "config/config.h"
#include "dtls/ticket.h"
#include "gateway/domain.h"
#include "gateway/metrics.h"

/* Keys from cfg->resumption (*out NULL when the domain has no resumption group). Logs its
 * errors. 0 or PSKGW_EINVAL / PSKGW_ENOMEM / PSKGW_ECRYPTO. */
int pskgw_resume_keys(const pskgw_config_domain_t *cfg, pskgw_ticket_keys_t **out);

/* pskgw_resumption_handshakes_total{domain,kind=full|ticket|session_id} and
 * pskgw_resumption_tickets_total{domain,outcome=sealed|opened|unknown_key|expired|bad|unsealed}
 * of the domains with a resumption group (the counters survive a reload's new keys). */
void pskgw_resume_metrics(pskgw_domain_t *const *ds, size_t n, pskgw_metrics_t *m);

#endif
