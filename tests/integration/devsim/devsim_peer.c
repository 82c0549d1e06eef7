/* devsim_peer: a small independent PSK (D)TLS server for pskgw-devsim's tests (OpenSSL).
 *
 * Many clients at once: UDP datagrams are demultiplexed by peer address to per-peer SSL objects
 * on memory BIOs; TCP connections use one non-blocking SSL per connection. Keys come from
 * pskgw_rotkeys (the identity's tag is checked; unknown identities get no key, so the handshake
 * fails with an alert). Every message received is written as one JSON envelope line (the file
 * sink's shape) to --out, and acknowledged with one record "ack" when --ack is given. With
 * --idle-close S, established sessions idle for S seconds are closed with close_notify. With --e2e,
 * E2E payloads are decrypted (AES-CCM, parameters from pskgw_rotkeys) before they are written.
 *
 * usage: devsim_peer (--udp | --tcp len16|newline|record) --seed SEED --out FILE [--ack] [--e2e]
 *                    [--devices N] [--idle-close S] [--max-seconds S]
 * Prints "PORT <n>" on stdout once listening on 127.0.0.1 (port chosen by the kernel), then runs
 * until SIGTERM or --max-seconds (default 60).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/codec.h"
#include "tools/rotkeys/rotkeys.h"

#define MAX_PEERS 512

typedef struct {
    bool used;
    struct sockaddr_in addr; /* UDP */
    int fd;                  /* TCP */
    SSL *ssl;
    BIO *rbio, *wbio;
    bool established;
    uint32_t device;
    char identity[PSKGW_ROT_IDENTITY_HEX_LEN + 1];
    uint64_t session;
    uint64_t seq;
    uint64_t last_ms;   /* last datagram or bytes received */
    uint8_t acc[20000]; /* TCP framing accumulator */
    size_t acc_len;
} peer_t;

static const char *g_seed;
static FILE *g_out;
static bool g_ack, g_e2e, g_udp;
static int g_framing; /* 0 len16, 1 newline, 2 record */
static uint32_t g_devices = UINT32_MAX;
static uint64_t g_sessions, g_msgs;
static peer_t *g_peers;
static volatile sig_atomic_t g_stop;

static void on_term(int sig)
{
    (void)sig;
    g_stop = 1;
}

static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
                                  unsigned int max_psk_len)
{
    peer_t *p = SSL_get_app_data(ssl);
    pskgw_rot_id_info_t idi; /* fixed or per-session identity */
    size_t n;
    if (identity == NULL ||
        pskgw_rot_identity_resolve_hex(g_seed, identity, strlen(identity), &idi) != 0 ||
        idi.device >= g_devices || max_psk_len < 16 ||
        pskgw_rot_identity_psk_hex(g_seed, identity, strlen(identity), 128, psk, max_psk_len, &n) !=
            0)
        return 0;
    p->device = idi.device;
    snprintf(p->identity, sizeof(p->identity), "%s", identity);
    return (unsigned int)n;
}

static int e2e_decrypt(const uint8_t *in, size_t len, uint8_t *out, size_t *out_len, int *version)
{
    if (len < 1)
        return -1;
    int v = in[0] >> 4;
    size_t kil = pskgw_rot_e2e_ki_len(v), tagl = pskgw_rot_e2e_tag_len(v);
    if (kil == 0 || len < kil + tagl)
        return -1;
    pskgw_rot_e2e_params_t prm;
    if (pskgw_rot_e2e_params(g_seed, in, kil, &prm) != 0)
        return -1;
    size_t ctl = len - kil - tagl;
    int ok = -1, outl = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c != NULL && EVP_DecryptInit_ex(c, EVP_aes_128_ccm(), NULL, NULL, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, (int)prm.nonce_len, NULL) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, (int)tagl, (void *)(in + len - tagl)) == 1 &&
        EVP_DecryptInit_ex(c, NULL, NULL, prm.key, prm.nonce) == 1 &&
        EVP_DecryptUpdate(c, NULL, &outl, NULL, (int)ctl) == 1 &&
        EVP_DecryptUpdate(c, out, &outl, in + kil, (int)ctl) == 1)
        ok = 0;
    EVP_CIPHER_CTX_free(c);
    pskgw_rot_e2e_params_wipe(&prm);
    *out_len = ctl;
    *version = v;
    return ok;
}

static void peer_str(const peer_t *p, char *buf, size_t cap)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    if (g_udp)
        a = p->addr;
    else if (getpeername(p->fd, (struct sockaddr *)&a, &al) != 0)
        memset(&a, 0, sizeof(a));
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
    snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(a.sin_port));
}

static void on_message(peer_t *p, const uint8_t *msg, size_t len)
{
    static uint8_t clear[70000];
    static char b64[100000];
    const uint8_t *pl = msg;
    size_t pl_len = len;
    int version = 0;
    if (g_e2e) {
        if (e2e_decrypt(msg, len, clear, &pl_len, &version) != 0) {
            fprintf(stderr, "devsim_peer: e2e decrypt failed (device %u)\n", (unsigned)p->device);
            return;
        }
        pl = clear;
    }
    if (pskgw_b64_encode(pl, pl_len, b64, sizeof(b64)) != 0)
        return;
    char peer[64], at[32], uid[PSKGW_ROT_UID_LEN + 1] = "";
    peer_str(p, peer, sizeof(peer));
    pskgw_clock_rfc3339(pskgw_clock_wall_ms(), at, sizeof(at));
    pskgw_rot_uid(g_seed, p->device, uid);
    p->seq++;
    g_msgs++;
    char mid[64];
    snprintf(mid, sizeof(mid), "peer-%llu-%llu", (unsigned long long)p->session,
             (unsigned long long)p->seq);
    json_t *e2e = version == 0 ? json_null()
                               : json_pack("{s:i, s:s, s:s}", "version", version, "key_identity",
                                           "-", "cipher_suite", "AES_128_CCM");
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:o}",
                          "message_id", mid, "domain", "test", "listener", g_udp ? "udp" : "tcp",
                          "transport", g_udp ? "dtls" : "tls", "peer", peer, "psk_identity",
                          p->identity, "rot_public_uid", uid, "session_id", (json_int_t)p->session,
                          "seq", (json_int_t)p->seq, "received_at", at, "payload", b64,
                          "payload_len", (json_int_t)pl_len, "e2e", e2e);
    char *line = json_dumps(o, JSON_COMPACT);
    if (line != NULL) {
        fprintf(g_out, "%s\n", line);
        fflush(g_out);
        free(line);
    }
    json_decref(o);
    if (g_ack)
        SSL_write(p->ssl, "ack", 3);
}

static void flush_udp(int fd, peer_t *p)
{
    uint8_t buf[4096];
    int n;
    while ((n = BIO_read(p->wbio, buf, sizeof(buf))) > 0)
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&p->addr, sizeof(p->addr));
}

static void peer_free(peer_t *p)
{
    if (p->ssl != NULL)
        SSL_free(p->ssl);
    if (!g_udp && p->fd >= 0)
        close(p->fd);
    memset(p, 0, sizeof(*p));
    p->fd = -1;
}

static void tcp_frames(peer_t *p, const uint8_t *data, size_t n)
{
    if (g_framing == 2) {
        on_message(p, data, n);
        return;
    }
    if (p->acc_len + n > sizeof(p->acc)) {
        p->acc_len = 0;
        return;
    }
    memcpy(p->acc + p->acc_len, data, n);
    p->acc_len += n;
    size_t pos = 0;
    for (;;) {
        size_t rest = p->acc_len - pos;
        if (g_framing == 0) {
            if (rest < 2)
                break;
            size_t fl = ((size_t)p->acc[pos] << 8) | p->acc[pos + 1];
            if (rest < 2 + fl)
                break;
            on_message(p, p->acc + pos + 2, fl);
            pos += 2 + fl;
        } else {
            uint8_t *nl = memchr(p->acc + pos, '\n', rest);
            if (nl == NULL)
                break;
            on_message(p, p->acc + pos, (size_t)(nl - (p->acc + pos)));
            pos = (size_t)(nl - p->acc) + 1;
        }
    }
    memmove(p->acc, p->acc + pos, p->acc_len - pos);
    p->acc_len -= pos;
}

/* Drive one peer after input. Returns false when the peer is finished. */
static bool drive(peer_t *p)
{
    uint8_t buf[20000];
    ERR_clear_error();
    if (!p->established) {
        int r = SSL_do_handshake(p->ssl);
        if (r != 1) {
            int e = SSL_get_error(p->ssl, r);
            ERR_clear_error();
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
        }
        p->established = true;
        p->session = ++g_sessions;
    }
    for (;;) {
        int n = SSL_read(p->ssl, buf, sizeof(buf));
        if (n > 0) {
            if (g_udp)
                on_message(p, buf, (size_t)n);
            else
                tcp_frames(p, buf, (size_t)n);
            continue;
        }
        int e = SSL_get_error(p->ssl, n);
        ERR_clear_error();
        if (e == SSL_ERROR_ZERO_RETURN) {
            SSL_shutdown(p->ssl);
            return false;
        }
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
    }
}

static peer_t *peer_new(SSL_CTX *ctx)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        peer_t *p = &g_peers[i];
        if (p->used)
            continue;
        memset(p, 0, sizeof(*p));
        p->used = true;
        p->fd = -1;
        p->ssl = SSL_new(ctx);
        SSL_set_app_data(p->ssl, p);
        SSL_set_accept_state(p->ssl);
        return p;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    double max_s = 60, idle_close = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--udp") == 0) {
            g_udp = true;
        } else if (strcmp(argv[i], "--tcp") == 0 && i + 1 < argc) {
            const char *f = argv[++i];
            g_framing = strcmp(f, "len16") == 0 ? 0 : strcmp(f, "newline") == 0 ? 1 : 2;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            g_seed = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--ack") == 0) {
            g_ack = true;
        } else if (strcmp(argv[i], "--e2e") == 0) {
            g_e2e = true;
        } else if (strcmp(argv[i], "--devices") == 0 && i + 1 < argc) {
            g_devices = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--idle-close") == 0 && i + 1 < argc) {
            idle_close = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--max-seconds") == 0 && i + 1 < argc) {
            max_s = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "devsim_peer: bad argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (g_seed == NULL || out == NULL)
        return 2;
    g_out = fopen(out, "a");
    g_peers = calloc(MAX_PEERS, sizeof(peer_t));
    if (g_out == NULL || g_peers == NULL)
        return 2;
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *ctx = SSL_CTX_new(g_udp ? DTLS_server_method() : TLS_server_method());
    int v = g_udp ? DTLS1_2_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    SSL_CTX_set_cipher_list(ctx, "PSK:@SECLEVEL=0");
    SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

    int fd = socket(AF_INET, g_udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0 || (!g_udp && listen(fd, 512) != 0))
        return 2;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    printf("PORT %u\n", (unsigned)ntohs(a.sin_port));
    fflush(stdout);

    uint64_t end = pskgw_clock_mono_ms() + (uint64_t)(max_s * 1000);
    struct pollfd *pf = calloc(MAX_PEERS + 2, sizeof(*pf));
    int *idx = calloc(MAX_PEERS + 2, sizeof(int));
    static uint8_t dg[65536];
    while (!g_stop && pskgw_clock_mono_ms() < end) {
        int n = 0;
        pf[n].fd = fd;
        pf[n].events = POLLIN;
        idx[n++] = -1;
        for (int i = 0; !g_udp && i < MAX_PEERS; i++) {
            if (!g_peers[i].used)
                continue;
            pf[n].fd = g_peers[i].fd;
            pf[n].events = POLLIN;
            idx[n++] = i;
        }
        uint64_t now = pskgw_clock_mono_ms();
        for (int i = 0; idle_close > 0 && i < MAX_PEERS; i++) {
            peer_t *p = &g_peers[i];
            if (!p->used || !p->established || now - p->last_ms < (uint64_t)(idle_close * 1000))
                continue;
            SSL_shutdown(p->ssl);
            if (g_udp)
                flush_udp(fd, p);
            peer_free(p);
        }
        if (poll(pf, (nfds_t)n, 20) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (idx[k] == -1 && g_udp) {
                for (;;) {
                    struct sockaddr_in from;
                    socklen_t fl = sizeof(from);
                    ssize_t r = recvfrom(fd, dg, sizeof(dg), 0, (struct sockaddr *)&from, &fl);
                    if (r <= 0)
                        break;
                    peer_t *p = NULL;
                    for (int i = 0; i < MAX_PEERS; i++)
                        if (g_peers[i].used && g_peers[i].addr.sin_port == from.sin_port &&
                            g_peers[i].addr.sin_addr.s_addr == from.sin_addr.s_addr) {
                            p = &g_peers[i];
                            break;
                        }
                    if (p == NULL) {
                        p = peer_new(ctx);
                        if (p == NULL)
                            continue;
                        p->addr = from;
                        p->rbio = BIO_new(BIO_s_mem());
                        p->wbio = BIO_new(BIO_s_mem());
                        BIO_set_mem_eof_return(p->rbio, -1);
                        BIO_set_mem_eof_return(p->wbio, -1);
                        SSL_set_bio(p->ssl, p->rbio, p->wbio);
                        SSL_set_options(p->ssl, SSL_OP_NO_QUERY_MTU);
                        SSL_set_mtu(p->ssl, 1400);
                    }
                    p->last_ms = pskgw_clock_mono_ms();
                    BIO_write(p->rbio, dg, (int)r);
                    bool alive = drive(p);
                    flush_udp(fd, p);
                    if (!alive)
                        peer_free(p);
                }
            } else if (idx[k] == -1) {
                int c;
                while ((c = accept(fd, NULL, NULL)) >= 0) {
                    peer_t *p = peer_new(ctx);
                    if (p == NULL) {
                        close(c);
                        continue;
                    }
                    fcntl(c, F_SETFL, O_NONBLOCK);
                    p->fd = c;
                    SSL_set_fd(p->ssl, c);
                }
            } else {
                peer_t *p = &g_peers[idx[k]];
                p->last_ms = pskgw_clock_mono_ms();
                char probe;
                if (!drive(p) || (pf[k].revents & POLLHUP) ||
                    recv(p->fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
                    peer_free(p);
            }
        }
    }
    for (int i = 0; i < MAX_PEERS; i++)
        if (g_peers[i].used)
            peer_free(&g_peers[i]);
    fprintf(stderr, "devsim_peer: %llu sessions, %llu messages\n", (unsigned long long)g_sessions,
            (unsigned long long)g_msgs);
    free(pf);
    free(idx);
    free(g_peers);
    SSL_CTX_free(ctx);
    close(fd);
    fclose(g_out);
    return 0;
}
