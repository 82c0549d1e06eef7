/* e2e_client: one PSK DTLS 1.2 session (OpenSSL, an independent peer) as simulated device S
 * (tools/rotkeys), sending E2E V1 payloads made as other devices would: a test's attacker.
 *
 *   e2e_client PORT SEED S [D:C...|-]
 * Each D:C is one application record: the plaintext "dev D ctr C" E2E-encrypted as device D with
 * KI counter C. "-" reads more D:C, one per line, from stdin until its end, each sent as soon as
 * it is read: one long-lived session a test drives step by step. S may also be "id:IDENTITY": that identity as is, with a PSK nobody has (an
 * attacker's ClientKeyExchange). Loopback only. Exit 0 when the handshake completed, every record
 * was written and the session closed; 3 when the handshake failed. */
#include "tools/rotkeys/rotkeys.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static char identity[128];
static uint8_t psk[PSKGW_ROT_PSK_MAX_LEN];
static size_t psk_len;

static unsigned int psk_cb(SSL *ssl, const char *hint, char *id, unsigned int id_cap,
                           unsigned char *key, unsigned int key_cap)
{
    (void)ssl;
    (void)hint;
    if (strlen(identity) + 1 > id_cap || psk_len > key_cap)
        return 0;
    memcpy(id, identity, strlen(identity) + 1);
    memcpy(key, psk, psk_len);
    return (unsigned int)psk_len;
}

static unsigned long num(const char *s, unsigned long max)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);

    if (!end || end == s || (*end && *end != ':') || v > max) {
        fprintf(stderr, "e2e_client: bad number \"%s\"\n", s);
        exit(2);
    }
    return v;
}

/* One record: spec "D[:C]" */
static int send_record(SSL *ssl, const char *seed, uint32_t self, const char *spec)
{
    const char *colon = strchr(spec, ':');
    uint32_t dev = (uint32_t)num(spec, 1000000);
    uint16_t ctr = colon ? (uint16_t)num(colon + 1, 65535) : 0;
    char pt[64];
    uint8_t out[128];
    size_t n = 0;
    int ptl = snprintf(pt, sizeof(pt), "dev %u ctr %u", (unsigned)dev, (unsigned)ctr);

    if (pskgw_rot_e2e_encrypt_ctr(seed, dev, PSKGW_ROT_E2E_V1, ctr, (const uint8_t *)pt,
                                  (size_t)ptl, out, sizeof(out), &n) < 0 ||
        SSL_write(ssl, out, (int)n) != (int)n) {
        fprintf(stderr, "e2e_client: record %s not sent\n", spec);
        return -1;
    }
    printf("sent %s as device %u: \"%s\"\n", spec, (unsigned)self, pt);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    struct timeval tv = { 2, 0 };
    const char *seed;
    uint32_t self;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    BIO *bio;
    int fd;
    int rc = 1;

    if (argc < 4) {
        fprintf(stderr, "usage: e2e_client PORT SEED DEVICE|id:IDENTITY [D:C...|-]\n");
        return 2;
    }
    seed = argv[2];
    if (strncmp(argv[3], "id:", 3) == 0) {
        if (strlen(argv[3] + 3) >= sizeof(identity))
            return 2;
        memcpy(identity, argv[3] + 3, strlen(argv[3] + 3) + 1);
        memset(psk, 0x5a, 16);
        psk_len = 16;
        self = 0;
    } else {
        self = (uint32_t)num(argv[3], 1000000);
        if (pskgw_rot_identity_hex(seed, self, identity) < 0 ||
            pskgw_rot_psk(seed, self, 128, psk, sizeof(psk), &psk_len) < 0)
            return 1;
    }
    a.sin_port = htons((uint16_t)num(argv[1], 65535));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return 1;
    ctx = SSL_CTX_new(DTLS_client_method());
    if (!ctx)
        goto out;
    SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256");
    SSL_CTX_set_psk_client_callback(ctx, psk_cb);
    ssl = SSL_new(ctx);
    bio = BIO_new_dgram(fd, BIO_NOCLOSE);
    BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &a);
    BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_RECV_TIMEOUT, 0, &tv); /* drives retransmissions */
    SSL_set_bio(ssl, bio, bio);
    if (SSL_connect(ssl) != 1) {
        fprintf(stderr, "e2e_client: handshake failed\n");
        ERR_print_errors_fp(stderr);
        rc = 3;
        goto out;
    }
    for (int i = 4; i < argc; i++) {
        char line[64];

        if (strcmp(argv[i], "-") != 0) {
            if (send_record(ssl, seed, self, argv[i]) < 0)
                goto out;
            continue;
        }
        while (fgets(line, sizeof(line), stdin)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] && send_record(ssl, seed, self, line) < 0)
                goto out;
        }
    }
    SSL_shutdown(ssl);
    rc = 0;
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    return rc;
}
