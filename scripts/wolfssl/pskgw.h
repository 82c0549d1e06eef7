/* Functions pskgw adds to the wolfSSL it builds (scripts/build-wolfssl appends pskgw-ssl.c to
 * wolfSSL's src/ssl.c and installs this header as <wolfssl/pskgw.h>; docs/WOLFSSL.md, "After the
 * handshake"). */
#ifndef WOLFSSL_PSKGW_H
#define WOLFSSL_PSKGW_H

#include <wolfssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A server session whose handshake is done gives up its RFC 5746 renegotiation_info state (the
 * extension node and its SecureRenegotiation, about 430 bytes), which a server built without
 * HAVE_SECURE_RENEGOTIATION never reads again. wolfSSL's FreeHandshakeResources frees all the
 * extensions itself, but not in a build with WOLFSSL_DTLS_CID (the CID lives in an extension);
 * pskgw's profile has CID. WOLFSSL_SUCCESS, or BAD_FUNC_ARG (NULL, a client, a handshake not
 * done: nothing freed); WOLFSSL_NOT_IMPLEMENTED in a build that renegotiates. */
WOLFSSL_API int pskgw_wolfSSL_FreeRenegotiationInfo(WOLFSSL *ssl);

/* A DTLS 1.2 server session whose first ClientHello's cookie the caller has checked itself
 * (pskgw's stateless HelloVerifyRequest, dtls/ctx.c) goes stateful before that ClientHello is
 * fed: wolfSSL does not compute the cookie HMAC again (nor needs the secret), and answers with
 * what a good cookie of its own would give: record sequence numbers continuing record_seq (the
 * ClientHello's, 48 bits), handshake messages continuing message_seq (its message_seq), records
 * numbered below record_seq dropped as replays. Call it after wolfSSL_new and before the first
 * wolfSSL_accept only. WOLFSSL_SUCCESS, BAD_FUNC_ARG (NULL, a client, TLS, already stateful or
 * accepting, record_seq over 48 bits: nothing changed), WOLFSSL_NOT_IMPLEMENTED without DTLS. */
WOLFSSL_API int pskgw_wolfSSL_dtls12_cookie_checked(WOLFSSL *ssl, unsigned long long record_seq,
                                                    unsigned short message_seq);

#ifdef __cplusplus
}
#endif

#endif
