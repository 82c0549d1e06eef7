/* Secrets read from files or systemd credentials; never logged, wiped on free. */
#include "config/internal.h"

#include "common/codec.h"
#include "common/secmem.h"
#include "common/wipe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *cfg_join_path(const char *basedir, const char *p)
{
    if (p[0] == '/' || basedir == NULL || basedir[0] == '\0' || strcmp(p, "-") == 0)
        return strdup(p);
    size_t a = strlen(basedir), b = strlen(p);
    char *out = malloc(a + 1 + b + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, basedir, a);
    out[a] = '/';
    memcpy(out + a + 1, p, b + 1);
    return out;
}

void cfg_secret_free(pskgw_config_secret_t *s)
{
    if (s->data != NULL && s->dontdump)
        pskgw_secmem_free(s->data);
    else if (s->data != NULL)
        pskgw_free_secret(s->data, s->len + 1);
    s->data = NULL;
    s->len = 0;
    s->dontdump = false;
}

/* Where a secret file name points: heap path or NULL (OOM). */
static char *resolve(const cfg_ctx_t *ctx, const char *name)
{
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    if (strchr(name, '/') == NULL && creds != NULL && creds[0] != '\0')
        return cfg_join_path(creds, name);
    return cfg_join_path(ctx->basedir, name);
}

/* Read the whole regular file at path (at most max bytes) into a NUL-terminated heap buffer.
 * O_NONBLOCK: a FIFO named by mistake is refused by the S_ISREG check instead of hanging open(). */
static int slurp(const char *path, size_t max, char **out, size_t *outlen, int *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        *err = errno;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = EINVAL; /* reported as "not a regular file" */
        goto fail;
    }
    if ((uint64_t)st.st_size > max) {
        *err = EFBIG;
        goto fail;
    }
    buf = malloc(max + 2);
    if (buf == NULL) {
        *err = ENOMEM;
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, max + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *err = errno;
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > max) {
            *err = EFBIG;
            goto fail;
        }
    }
    buf[len] = '\0';
    close(fd);
    *out = buf;
    *outlen = len;
    return 0;
fail:
    if (buf != NULL)
        pskgw_free_secret(buf, max + 2);
    close(fd);
    return -1;
}

static const char *why(int err)
{
    switch (err) {
    case EINVAL:
        return "not a regular file";
    case EFBIG:
        return "too large";
    default:
        return strerror(err);
    }
}

int cfg_read_secret(cfg_ctx_t *ctx, unsigned line, const char *path, const char *name, size_t max,
                    bool strip_newline, pskgw_config_secret_t *out)
{
    char *file = resolve(ctx, name);
    char *buf = NULL;
    size_t len = 0;
    int err = 0;
    if (file == NULL) {
        ctx->oom = true;
        return -1;
    }
    if (slurp(file, max, &buf, &len, &err) < 0) {
        if (err == ENOMEM)
            ctx->oom = true;
        else
            cfg_error(ctx, line, path, "cannot read secret file \"%s\": %s", file, why(err));
        free(file);
        return -1;
    }
    if (strip_newline && len > 0 && buf[len - 1] == '\n') {
        buf[--len] = '\0';
        if (len > 0 && buf[len - 1] == '\r')
            buf[--len] = '\0';
    }
    if (len == 0) {
        cfg_error(ctx, line, path, "secret file \"%s\" is empty", file);
        pskgw_free_secret(buf, max + 2);
        free(file);
        return -1;
    }
    free(file);
    /* Shrink to the exact size so that cfg_secret_free() wipes exactly what is allocated. */
    char *exact = pskgw_secmem_alloc(len + 1);
    if (exact == NULL) {
        pskgw_free_secret(buf, max + 2);
        ctx->oom = true;
        return -1;
    }
    memcpy(exact, buf, len + 1);
    pskgw_free_secret(buf, max + 2);
    cfg_secret_free(out);
    out->data = exact;
    out->len = len;
    out->dontdump = true;
    return 0;
}

int cfg_read_kek(cfg_ctx_t *ctx, unsigned line, const char *path, const char *name, uint8_t kek[32])
{
    pskgw_config_secret_t s = { 0 };
    size_t n = 0;
    int rc = -1;
    if (cfg_read_secret(ctx, line, path, name, 4096, false, &s) < 0)
        return -1;
    if (s.len == 32) { /* raw bytes, no newline stripping: 0x0a is a valid key byte */
        memcpy(kek, s.data, 32);
        rc = 0;
        goto out;
    }
    size_t len = s.len;
    if (len > 0 && s.data[len - 1] == '\n')
        len--;
    if (len > 0 && s.data[len - 1] == '\r')
        len--;
    uint8_t tmp[48];
    if (len == 64 && pskgw_hex_decode(s.data, 64, tmp, sizeof(tmp), &n) == 0 && n == 32) {
        memcpy(kek, tmp, 32);
        rc = 0;
    } else if (len == 44 && pskgw_b64_decode(s.data, 44, tmp, sizeof(tmp), &n) == 0 && n == 32) {
        memcpy(kek, tmp, 32);
        rc = 0;
    } else {
        cfg_error(ctx, line, path,
                  "key file must hold 32 raw bytes, 64 hex characters or 32 bytes in base64");
    }
    pskgw_wipe(tmp, sizeof(tmp));
out:
    cfg_secret_free(&s);
    return rc;
}
