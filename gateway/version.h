/* What this build is: pskgw's version, the wolfSSL it was built with and the PSK suites it
 * offers (pskgw --version). */
#ifndef PSKGW_GATEWAY_VERSION_H
#define PSKGW_GATEWAY_VERSION_H

#include <stdio.h>

/* Writes the version block to out. 0, or a negative PSKGW_E* code if wolfSSL cannot list. */
int pskgw_version_print(FILE *out);

#endif
