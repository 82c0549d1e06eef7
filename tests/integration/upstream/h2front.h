/* Test helper: Debian's nghttpx (package nghttp2-proxy) as an HTTPS front of pskgw-sim, so that
 * pskgw meets a service that speaks HTTP/2 (ALPN "h2,http/1.1") or only HTTP/1.1 (ALPN
 * "http/1.1") over TLS. Its access log names the client port of every request, which tells how
 * many connections pskgw opened to the service. */
#ifndef PSKGW_TEST_UPSTREAM_H2FRONT_H
#define PSKGW_TEST_UPSTREAM_H2FRONT_H

#include <stdbool.h>
#include <stddef.h>

#include "proc.h"

#define FRONT_NGHTTPX "/usr/sbin/nghttpx"

typedef struct {
    pskgw_test_proc_t proc;
    char dir[512];     /* temporary directory: key, certificate, logs */
    char ca[600];      /* the self-signed certificate (CA:TRUE), for the client's ca_file */
    char access[600];  /* access log per request: "<client port> <alpn> <status> <path> <r|.>"
                        * (r: that connection resumed a TLS session) */
    char url[128];     /* https://127.0.0.1:<port> */
    char backend[128]; /* "HOST,PORT" */
    char alpn[64];
    int port;
    int hold;     /* the port's reservation (pskgw_test_reserve_port), kept across restarts */
    bool holding; /* hold is open (a zeroed front_t holds nothing) */
} front_t;

/* 1 when nghttpx and openssl are installed. */
int front_available(void);

/* Generate a key and certificate (openssl, SAN IP:127.0.0.1) and start nghttpx on a port of
 * 127.0.0.1 reserved for it (pskgw_test_spawn_on_reserved: no other process can take it, also
 * while nghttpx restarts) in front of backend_url ("http://HOST:PORT"), offering the ALPN list
 * alpn. 0 or -1. */
int front_start(front_t *f, const char *backend_url, const char *alpn);
/* Stop nghttpx (SIGTERM: it closes its client connections) and start it again on the same
 * port, certificate and access log (appended). 0 or -1. */
int front_restart(front_t *f);
/* Stop nghttpx, give up its port and remove its directory. Safe on a front that never started
 * (zeroed). */
void front_stop(front_t *f);

/* The access log's requests whose path starts with prefix, after the first `skip` of them:
 * their number (or -1 when the log cannot be read), the distinct client ports among them in
 * ports[0..*nports) (at most cap), and into *other_alpn the number of them whose ALPN is not
 * want_alpn (when want_alpn != NULL). */
int front_requests(const front_t *f, const char *prefix, int skip, int *ports, size_t cap,
                   size_t *nports, const char *want_alpn, int *other_alpn);
/* Of the distinct client ports (connections) of the requests whose path starts with prefix,
 * how many resumed a TLS session; -1 when the log cannot be read. */
int front_resumed_connections(const front_t *f, const char *prefix);

#endif
