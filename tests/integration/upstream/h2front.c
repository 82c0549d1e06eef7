#include "h2front.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int front_available(void)
{
    return access(FRONT_NGHTTPX, X_OK) == 0 && access("/usr/bin/openssl", X_OK) == 0;
}

static int make_cert(front_t *f, const char *key)
{
    char *const argv[] = { "/usr/bin/openssl",
                           "req",
                           "-x509",
                           "-newkey",
                           "ec",
                           "-pkeyopt",
                           "ec_paramgen_curve:P-256",
                           "-nodes",
                           "-keyout",
                           (char *)key,
                           "-out",
                           f->ca,
                           "-days",
                           "2",
                           "-subj",
                           "/CN=127.0.0.1",
                           "-addext",
                           "subjectAltName=IP:127.0.0.1",
                           "-addext",
                           "basicConstraints=critical,CA:TRUE",
                           NULL };
    pskgw_test_proc_t p;

    if (pskgw_test_spawn(&p, argv, 1) < 0)
        return -1;
    return pskgw_test_wait(&p, 60000) == 0 ? 0 : -1;
}

static int spawn_nghttpx(front_t *f, int port)
{
    char key[600], fr[64], be[160], npn[96], alog[640], elog[640];
    char *const argv[] = {
        FRONT_NGHTTPX,
        "--conf=/dev/null", /* not the package's /etc/nghttpx/nghttpx.conf */
        fr,
        be,
        npn,
        alog,
        elog,
        "--accesslog-format=$remote_port $alpn $status $path $tls_session_reused",
        "--workers=1",
        "--no-ocsp",
        "--frontend-http2-max-concurrent-streams=256",
        "--backend-connections-per-frontend=0",
        "--backend-keep-alive-timeout=60s",
        "--frontend-keep-alive-timeout=60s",
        "--log-level=WARN",
        key,
        f->ca,
        NULL
    };

    snprintf(key, sizeof(key), "%s/key.pem", f->dir);
    snprintf(fr, sizeof(fr), "--frontend=127.0.0.1,%d", port);
    snprintf(be, sizeof(be), "--backend=%s", f->backend);
    snprintf(npn, sizeof(npn), "--npn-list=%s", f->alpn);
    snprintf(alog, sizeof(alog), "--accesslog-file=%s", f->access);
    snprintf(elog, sizeof(elog), "--errorlog-file=%s/error.log", f->dir);
    if (pskgw_test_spawn_on_reserved(&f->proc, argv, f->hold, port, 20000) < 0) {
        f->proc.pid = -1;
        return -1;
    }
    snprintf(f->url, sizeof(f->url), "https://127.0.0.1:%d", port);
    f->port = port;
    return 0;
}

int front_start(front_t *f, const char *backend_url, const char *alpn)
{
    char key[600];
    const char *hp = strstr(backend_url, "://");
    char *colon;

    memset(f, 0, sizeof(*f));
    f->proc.pid = -1;
    /* "http://HOST:PORT" -> "HOST,PORT" */
    if (!hp || snprintf(f->backend, sizeof(f->backend), "%s", hp + 3) >= (int)sizeof(f->backend) ||
        snprintf(f->alpn, sizeof(f->alpn), "%s", alpn) >= (int)sizeof(f->alpn))
        return -1;
    colon = strrchr(f->backend, ':');
    if (!colon)
        return -1;
    *colon = ',';
    if (pskgw_test_tmpdir(f->dir, sizeof(f->dir)) < 0)
        return -1;
    snprintf(f->ca, sizeof(f->ca), "%s/cert.pem", f->dir);
    snprintf(key, sizeof(key), "%s/key.pem", f->dir);
    snprintf(f->access, sizeof(f->access), "%s/access.log", f->dir);
    if (make_cert(f, key) < 0)
        return -1;
    /* The port stays reserved (never listening) while the front lives: nghttpx binds beside the
     * reservation (SO_REUSEADDR) and nobody else can take it, not even between restarts. */
    int port = 0;

    f->hold = pskgw_test_reserve_port(0, &port);
    if (f->hold < 0)
        return -1;
    f->holding = true;
    return spawn_nghttpx(f, port);
}

int front_restart(front_t *f)
{
    if (f->proc.pid <= 0)
        return -1;
    pskgw_test_stop(&f->proc, SIGTERM, 10000);
    f->proc.pid = -1;
    return spawn_nghttpx(f, f->port);
}

void front_stop(front_t *f)
{
    if (f->proc.pid > 0)
        pskgw_test_stop(&f->proc, SIGTERM, 5000);
    f->proc.pid = -1;
    if (f->holding)
        close(f->hold);
    f->holding = false;
    if (f->dir[0])
        pskgw_test_rmtree(f->dir);
    f->dir[0] = '\0';
}

int front_requests(const front_t *f, const char *prefix, int skip, int *ports, size_t cap,
                   size_t *nports, const char *want_alpn, int *other_alpn)
{
    FILE *fp = fopen(f->access, "r");
    char line[1024];
    int n = 0;

    *nports = 0;
    if (other_alpn)
        *other_alpn = 0;
    if (!fp)
        return -1;
    while (fgets(line, sizeof(line), fp)) {
        int port = 0, status = 0;
        char alpn[32], path[512];
        size_t i;

        if (sscanf(line, "%d %31s %d %511s", &port, alpn, &status, path) != 4 ||
            strncmp(path, prefix, strlen(prefix)) != 0 || skip-- > 0)
            continue;
        n++;
        if (want_alpn && other_alpn && strcmp(alpn, want_alpn) != 0)
            (*other_alpn)++;
        for (i = 0; i < *nports && ports[i] != port; i++)
            ;
        if (i == *nports && *nports < cap)
            ports[(*nports)++] = port;
    }
    fclose(fp);
    return n;
}

int front_resumed_connections(const front_t *f, const char *prefix)
{
    FILE *fp = fopen(f->access, "r");
    char line[1024];
    int ports[256];
    size_t n = 0;

    if (!fp)
        return -1;
    while (fgets(line, sizeof(line), fp)) {
        int port = 0, status = 0;
        char alpn[32], path[512], reused[8];
        size_t i;

        if (sscanf(line, "%d %31s %d %511s %7s", &port, alpn, &status, path, reused) != 5 ||
            strncmp(path, prefix, strlen(prefix)) != 0 || strcmp(reused, "r") != 0)
            continue;
        for (i = 0; i < n && ports[i] != port; i++)
            ;
        if (i == n && n < sizeof(ports) / sizeof(ports[0]))
            ports[n++] = port;
    }
    fclose(fp);
    return (int)n;
}
