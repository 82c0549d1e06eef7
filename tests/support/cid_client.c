/* cid_client: a wolfSSL DTLS 1.2 client that asks for a Connection ID (RFC 9146), as simulated
 * device D (tools/rotkeys), on real UDP sockets; "--rebind" between messages goes on from a new
 * socket (a new source port: NAT rebinding) with the same WOLFSSL object.
 *
 *   cid_client PORT SEED DEVICE [MESSAGE | --rebind]...
 * Prints "port N" for each socket it sends from, "cid HEX" (the CID it puts in its records, or
 * "cid none") after the handshake and "sent MESSAGE" per record. Loopback only. Exit 0 when the
 * handshake completed and every record was written, 3 when the handshake failed, 2 usage. */
#include "tools/rotkeys/rotkeys.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char identity[128];
static uint8_t psk[PSKGW_ROT_PSK_MAX_LEN];
static size_t psk_len;
static int fd = -1; /* the socket in use */
static struct sockaddr_in srv;

static unsigned int psk_cb(WOLFSSL *ssl, const char *hint, char *id, unsigned int id_cap,
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

/* Waits for a datagram up to wolfSSL's current retransmission timeout. */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int to = wolfSSL_dtls_get_current_timeout(ssl);
    ssize_t n;

    (void)ctx;
    if (poll(&p, 1, (to > 0 ? to : 1) * 1000) <= 0)
        return WOLFSSL_CBIO_ERR_TIMEOUT;
    n = recv(fd, buf, (size_t)sz, 0);
    return n < 0 ? WOLFSSL_CBIO_ERR_GENERAL : (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)ctx;
    if (sendto(fd, buf, (size_t)sz, 0, (const struct sockaddr *)&srv, sizeof(srv)) != sz)
        return WOLFSSL_CBIO_ERR_GENERAL;
    return sz;
}

/* A new socket on 127.0.0.1, an ephemeral port; prints it. */
static int new_socket(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) != 0)
        return -1;
    printf("port %u\n", (unsigned)ntohs(a.sin_port));
    fflush(stdout);
    return s;
}

static void print_cid(WOLFSSL *ssl)
{
    unsigned char cid[64];
    unsigned int n = 0;

    if (wolfSSL_dtls_cid_get_tx_size(ssl, &n) != WOLFSSL_SUCCESS || n == 0 || n > sizeof(cid) ||
        wolfSSL_dtls_cid_get_tx(ssl, cid, sizeof(cid)) != WOLFSSL_SUCCESS) {
        printf("cid none\n");
        return;
    }
    printf("cid ");
    for (unsigned int i = 0; i < n; i++)
        printf("%02x", cid[i]);
    printf("\n");
}

int main(int argc, char **argv)
{
    WOLFSSL_CTX *ctx = NULL;
    WOLFSSL *ssl = NULL;
    unsigned long port, dev;
    int rc = 1;

    if (argc < 4 || (port = strtoul(argv[1], NULL, 10)) == 0 || port > 65535) {
        fprintf(stderr, "usage: cid_client PORT SEED DEVICE [MESSAGE | --rebind]...\n");
        return 2;
    }
    dev = strtoul(argv[3], NULL, 10);
    if (pskgw_rot_identity_hex(argv[2], (uint32_t)dev, identity) < 0 ||
        pskgw_rot_psk(argv[2], (uint32_t)dev, 128, psk, sizeof(psk), &psk_len) < 0)
        return 2;
    srv.sin_family = AF_INET;
    srv.sin_port = htons((uint16_t)port);
    srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (wolfSSL_Init() != WOLFSSL_SUCCESS || (fd = new_socket()) < 0)
        return 1;
    ctx = wolfSSL_CTX_new(wolfDTLSv1_2_client_method());
    if (ctx == NULL || wolfSSL_CTX_set_cipher_list(ctx, "PSK-AES128-CCM8") != WOLFSSL_SUCCESS)
        goto out;
    wolfSSL_CTX_set_psk_client_callback(ctx, psk_cb);
    wolfSSL_CTX_SetIORecv(ctx, io_recv);
    wolfSSL_CTX_SetIOSend(ctx, io_send);
    ssl = wolfSSL_new(ctx);
    if (ssl == NULL || wolfSSL_dtls_cid_use(ssl) != WOLFSSL_SUCCESS)
        goto out;
    if (wolfSSL_connect(ssl) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "cid_client: handshake failed (%d)\n", wolfSSL_get_error(ssl, 0));
        rc = 3;
        goto out;
    }
    print_cid(ssl);
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--rebind") == 0) {
            int s = new_socket();

            if (s < 0)
                goto out;
            (void)close(fd); /* the old NAT mapping is gone */
            fd = s;
            continue;
        }
        if (wolfSSL_write(ssl, argv[i], (int)strlen(argv[i])) != (int)strlen(argv[i]))
            goto out;
        printf("sent %s\n", argv[i]);
        fflush(stdout);
    }
    rc = 0;
out:
    wolfSSL_free(ssl);
    wolfSSL_CTX_free(ctx);
    if (fd >= 0)
        (void)close(fd);
    wolfSSL_Cleanup();
    return rc;
}
