
/* ---- added by pskgw's scripts/build-wolfssl (scripts/wolfssl/pskgw-ssl.c): <wolfssl/pskgw.h> */
#if !defined(WOLFCRYPT_ONLY) && !defined(NO_TLS)
WOLFSSL_API int pskgw_wolfSSL_FreeRenegotiationInfo(WOLFSSL *ssl);
WOLFSSL_API int pskgw_wolfSSL_dtls12_cookie_checked(WOLFSSL *ssl, unsigned long long record_seq,
                                                    unsigned short message_seq);

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

int pskgw_wolfSSL_dtls12_cookie_checked(WOLFSSL *ssl, unsigned long long record_seq,
                                        unsigned short message_seq)
{
#if defined(WOLFSSL_DTLS) && !defined(NO_WOLFSSL_SERVER)
    if (ssl == NULL || ssl->options.side != WOLFSSL_SERVER_END ||
        ssl->version.major != DTLS_MAJOR || ssl->options.dtlsStateful ||
        ssl->options.acceptState != ACCEPT_BEGIN || (record_seq >> 48) != 0)
        return BAD_FUNC_ARG;
    /* What a good cookie makes DoClientHello do (src/dtls.c DoClientHelloStateless and
     * DtlsSetSeqNumForReply, 5.9.2), without computing the cookie again: the reply continues
     * the ClientHello's record and message sequence numbers, the records before it count as
     * read, and the ClientHello is parsed statefully at once. */
    ssl->keys.dtls_sequence_number_hi = (word16)(record_seq >> 32);
    ssl->keys.dtls_sequence_number_lo = (word32)record_seq;
    ssl->keys.dtls_handshake_number = message_seq;
    ssl->keys.peerSeq->nextSeq_hi = (word16)(record_seq >> 32);
    ssl->keys.peerSeq->nextSeq_lo = (word32)record_seq;
    XMEMSET(ssl->keys.peerSeq->window, 0xFF, sizeof(ssl->keys.peerSeq->window));
    ssl->options.dtlsStateful = 1;
    return WOLFSSL_SUCCESS;
#else
    (void)ssl;
    (void)record_seq;
    (void)message_seq;
    return WOLFSSL_NOT_IMPLEMENTED;
#endif
}
#endif
