/* pskgw-sim: a fresh self-signed certificate for --tls (OpenSSL libcrypto).
 *
 * EC P-256 key, SHA-256 signature, valid from one hour ago for 30 days, CN "pskgw-sim",
 * basicConstraints CA:TRUE (so clients can use the certificate itself as their CA file),
 * extendedKeyUsage serverAuth, subjectAltName IP:127.0.0.1, IP:::1, DNS:localhost and `host`
 * (as an IP address when it parses as one, else as a DNS name).
 */
#ifndef PSKGW_TOOLS_SIM_SIMCERT_H
#define PSKGW_TOOLS_SIM_SIMCERT_H

#include <stddef.h>

/* *key_pem and *cert_pem are NUL-terminated heap strings owned by the caller; free the key with
 * pskgw_free_secret_str() and the certificate with free(). PSKGW_ECRYPTO, PSKGW_ENOMEM. */
int pskgw_sim_cert_generate(const char *host, char **key_pem, char **cert_pem);

#endif
