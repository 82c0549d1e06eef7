/* A listener's forwarding options from its config entry (forward.h, config/config.h). */
#ifndef PSKGW_GATEWAY_FORWARD_CONFIG_H
#define PSKGW_GATEWAY_FORWARD_CONFIG_H

#include "config/config.h"
#include "gateway/listen_api.h"

/* Sets o->forward from cfg (enabled when cfg->forward is set) and, for a forwarding listener,
 * record framing and 16384-byte messages (the bytes pass as they are). Returns 0, or
 * PSKGW_ECONFIG when the backend literal does not parse (the config module checked it). */
int pskgw_forward_opts_from_config(const pskgw_config_listener_t *cfg, pskgw_listener_opts_t *o);

#endif
