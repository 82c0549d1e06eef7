/* Loopback HTTP/1.1 server core: see httpsrv.h. */
#define _GNU_SOURCE
#include "httpsrv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct httpsrv {
    struct MHD_Daemon *d;
    httpsrv_cfg_t cfg;
};

typedef struct {
    char *buf;
    size_t len;
} body_t;

static enum MHD_Result handler(void *cls, struct MHD_Connection *con, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    httpsrv_t *s = cls;
    body_t *b = *con_cls;

    (void)version;
    if (!b) {
        b = calloc(1, sizeof(*b));
        *con_cls = b;
        return b ? MHD_YES : MHD_NO;
    }
    if (*upload_size > 0) {
        char *nb = realloc(b->buf, b->len + *upload_size + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + b->len, upload, *upload_size);
        b->buf = nb;
        b->len += *upload_size;
        b->buf[b->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    return s->cfg.request(s->cfg.arg, con, url, method, b->buf, b->len);
}

static void completed(void *cls, struct MHD_Connection *con, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    body_t *b = *con_cls;

    (void)cls;
    (void)con;
    (void)toe;
    if (b) {
        free(b->buf);
        free(b);
        *con_cls = NULL;
    }
}

static void notify_conn(void *cls, struct MHD_Connection *con, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    httpsrv_t *s = cls;

    (void)con;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED && s->cfg.connection)
        s->cfg.connection(s->cfg.arg);
}

int httpsrv_start(httpsrv_t **out, int *port, const httpsrv_cfg_t *cfg)
{
    httpsrv_t *s = calloc(1, sizeof(*s));
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;

    if (!s)
        return -1;
    s->cfg = *cfg;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL, 0, NULL,
        NULL, handler, s, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, notify_conn, s, MHD_OPTION_END);
    if (!s->d)
        goto fail;
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        MHD_stop_daemon(s->d);
        goto fail;
    }
    *port = info->port;
    *out = s;
    return 0;
fail:
    free(s);
    return -1;
}

void httpsrv_stop(httpsrv_t *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    free(s);
}
