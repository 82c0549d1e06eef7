/* pskgw-sim self-signed certificate (see simcert.h). */
#include "tools/sim/simcert.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wipe.h"

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* The BIO's contents as a NUL-terminated heap string. */
static char *bio_string(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n <= 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

int pskgw_sim_cert_generate(const char *host, char **key_pem, char **cert_pem)
{
    int rc = PSKGW_ECRYPTO;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    BIO *kb = NULL, *cb = NULL;
    char *k = NULL, *c = NULL;
    char san[512];
    unsigned char serial[16];
    uint8_t addr[16];

    pkey = EVP_EC_gen("P-256");
    cert = X509_new();
    if (!pkey || !cert)
        goto fail;
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto fail;
    serial[0] &= 0x7f; /* positive */
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn)
        goto fail;
    ASN1_INTEGER *sn = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);
    if (!sn)
        goto fail;
    X509_NAME *name = X509_get_subject_name(cert);
    if (X509_set_version(cert, 2) != 1 || !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), 30L * 86400) ||
        X509_set_pubkey(cert, pkey) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"pskgw-sim", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(cert, name) != 1)
        goto fail;

    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    int extra = strcmp(host, "127.0.0.1") != 0 && strcmp(host, "::1") != 0 &&
                strcmp(host, "localhost") != 0 && strlen(host) < 200;
    int n = snprintf(san, sizeof(san), "IP:127.0.0.1,IP:::1,DNS:localhost%s%s%s", extra ? "," : "",
                     extra ? (is_ip ? "IP:" : "DNS:") : "", extra ? host : "");
    if (n < 0 || (size_t)n >= sizeof(san))
        goto fail;
    if (add_ext(cert, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext(cert, NID_key_usage, "critical,digitalSignature,keyCertSign") < 0 ||
        add_ext(cert, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(cert, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(cert, NID_subject_alt_name, san) < 0)
        goto fail;
    if (X509_sign(cert, pkey, EVP_sha256()) <= 0)
        goto fail;

    kb = BIO_new(BIO_s_mem());
    cb = BIO_new(BIO_s_mem());
    if (!kb || !cb)
        goto fail;
    if (PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509(cb, cert) != 1)
        goto fail;
    rc = PSKGW_ENOMEM;
    k = bio_string(kb);
    c = bio_string(cb);
    if (!k || !c)
        goto fail;
    *key_pem = k;
    *cert_pem = c;
    k = c = NULL;
    rc = 0;
fail:
    pskgw_free_secret_str(k);
    free(c);
    if (kb) {
        char *data = NULL;
        long len = BIO_get_mem_data(kb, &data);
        if (data && len > 0)
            pskgw_wipe(data, (size_t)len);
    }
    BIO_free(kb);
    BIO_free(cb);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    return rc;
}
