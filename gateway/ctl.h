/* pskgw ctl: the operator's client of the admin routes (gateway/admin_routes.h).
 *
 *   pskgw ctl [--config FILE... | --admin URL [--token-file F]] [--worker N]
 *             sessions|spools|close|invalidate|reload [--domain D] [--identity HEX] [--json]
 *
 * --config: the admin endpoint's address, port and token come from the same configuration
 * files as the gateway (admin group; worker N: port + N). --admin http://HOST:PORT and
 * --token-file F name them directly. Output: a table by default, the route's JSON with --json.
 * Exit status: 0 (2xx), 1 (the gateway answered an error: its message on stderr), 2 (usage,
 * configuration or connection error).
 */
#ifndef PSKGW_GATEWAY_CTL_H
#define PSKGW_GATEWAY_CTL_H

/* argv[0] is "ctl". libcurl must be initialised (main() does). */
int pskgw_ctl_main(int argc, char **argv);

#endif
