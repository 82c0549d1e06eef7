
/* ---- added by pskgw's scripts/build-wolfssl (scripts/wolfssl/pskgw-ssl.c): <wolfssl/pskgw.h> */
#if !defined(WOLFCRYPT_ONLY) && !defined(NO_TLS)
WOLFSSL_API int pskgw_wolfSSL_FreeRenegotiationInfo(WOLFSSL *ssl);

int pskgw_wolfSSL_FreeRenegotiationInfo(WOLFSSL *ssl)
{
#if defined(HAVE_SECURE_RENEGOTIATION)
    (void)ssl;
    return WOLFSSL_NOT_IMPLEMENTED; /* the state is needed for a renegotiation */
#else
    if (ssl == NULL || ssl->options.side != WOLFSSL_SERVER_END ||
        ssl->options.handShakeState != HANDSHAKE_DONE)
        return BAD_FUNC_ARG;
#if defined(HAVE_SERVER_RENEGOTIATION_INFO) && defined(HAVE_TLS_EXTENSIONS)
    /* What FreeHandshakeResources does without WOLFSSL_DTLS_CID (TLSX_FreeAll), for this one
     * extension: its data is ssl->secure_renegotiation. */
    TLSX_Remove(&ssl->extensions, TLSX_RENEGOTIATION_INFO, ssl->heap);
    ssl->secure_renegotiation = NULL;
#endif
    return WOLFSSL_SUCCESS;
#endif
}
#endif
