/* pskgw_statefile: see statefile.h. */
#include "gateway/statefile.h"

#include "common/err.h"
#include "gateway/seal.h"
#include "common/wipe.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC     "PSKGWSF1"
#define MAGIC_LEN 8
_Static_assert(PSKGW_STATEFILE_KEY_LEN == PSKGW_SEAL_KEY_LEN, "one key length for pskgw_seal");
#define IV_LEN    PSKGW_SEAL_IV_LEN
#define TAG_LEN   PSKGW_SEAL_TAG_LEN
#define HDR_LEN   (MAGIC_LEN + IV_LEN + TAG_LEN)
#define HDR_AAD   "pskgw state file"
#define AAD_MAX   1024
#define ENTRY_MAX (1u << 20)

/* The file is ours and only ours: a key another user wrote (or can read) seals nothing. */
static bool private_file(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 077) == 0;
}

int pskgw_statefile_key(const char *state_dir, const uint8_t *kek,
                        uint8_t key[PSKGW_STATEFILE_KEY_LEN], const char **why)
{
    char path[4096];
    ssize_t n;
    int fd;

    if (kek != NULL) {
        memcpy(key, kek, PSKGW_STATEFILE_KEY_LEN);
        return 0;
    }
    if (snprintf(path, sizeof(path), "%s/state.key", state_dir) >= (int)sizeof(path)) {
        *why = "state directory path too long";
        return PSKGW_EIO;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        if (pskgw_seal_random(key, PSKGW_STATEFILE_KEY_LEN) < 0) {
            *why = "no random bytes for the state key";
            return PSKGW_EIO;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || write(fd, key, PSKGW_STATEFILE_KEY_LEN) != PSKGW_STATEFILE_KEY_LEN ||
            fsync(fd) != 0) {
            if (fd >= 0)
                (void)close(fd);
            pskgw_wipe(key, PSKGW_STATEFILE_KEY_LEN);
            *why = "cannot create the state key file";
            return PSKGW_EIO;
        }
        (void)close(fd);
        return 0;
    }
    if (fd < 0) {
        *why = "cannot open the state key file";
        return PSKGW_EIO;
    }
    if (!private_file(fd)) {
        (void)close(fd);
        *why = "state key file not private (another user's, or open to group or others)";
        return PSKGW_EIO;
    }
    {
        uint8_t tmp[PSKGW_STATEFILE_KEY_LEN + 1]; /* one more: a longer file is refused */

        n = read(fd, tmp, sizeof(tmp));
        (void)close(fd);
        if (n == PSKGW_STATEFILE_KEY_LEN)
            memcpy(key, tmp, PSKGW_STATEFILE_KEY_LEN);
        pskgw_wipe(tmp, sizeof(tmp));
    }
    if (n != PSKGW_STATEFILE_KEY_LEN) {
        *why = "state key file is not 32 bytes";
        return PSKGW_EPARSE;
    }
    return 0;
}

static int reserve(pskgw_statefile_t *f, size_t more)
{
    uint8_t *nb;
    size_t cap = f->cap ? f->cap : 4096;

    if (f->len + more <= f->cap)
        return 0;
    while (cap < f->len + more)
        cap *= 2;
    nb = malloc(cap);
    if (nb == NULL)
        return PSKGW_ENOMEM;
    if (f->buf != NULL) {
        memcpy(nb, f->buf, f->len);
        pskgw_wipe(f->buf, f->cap);
        free(f->buf);
    }
    f->buf = nb;
    f->cap = cap;
    return 0;
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

int pskgw_statefile_begin(pskgw_statefile_t *f, const uint8_t key[PSKGW_STATEFILE_KEY_LEN])
{
    int rc;

    memset(f, 0, sizeof(*f));
    if ((rc = reserve(f, HDR_LEN)) < 0)
        return rc;
    memcpy(f->buf, MAGIC, MAGIC_LEN);
    if (pskgw_seal_random(f->buf + MAGIC_LEN, IV_LEN) < 0)
        return PSKGW_ECRYPTO;
    rc = pskgw_seal_gcm(true, key, f->buf + MAGIC_LEN, NULL, 0, NULL, f->buf + MAGIC_LEN + IV_LEN,
                        (const uint8_t *)HDR_AAD, strlen(HDR_AAD));
    if (rc < 0)
        return rc;
    f->len = HDR_LEN;
    return 0;
}

static size_t make_aad(uint8_t *aad, const char *d, const char *l, const char *p)
{
    size_t a = strlen(d) + 1, b = strlen(l) + 1, c = strlen(p);

    if (a + b + c > AAD_MAX)
        return 0;
    memcpy(aad, d, a);
    memcpy(aad + a, l, b);
    memcpy(aad + a + b, p, c);
    return a + b + c;
}

int pskgw_statefile_add(pskgw_statefile_t *f, const uint8_t key[PSKGW_STATEFILE_KEY_LEN],
                        const char *domain, const char *listener, const char *peer,
                        const uint8_t *rec, size_t len)
{
    uint8_t aad[AAD_MAX];
    size_t aad_len;
    uint8_t *p;
    int rc;

    if (domain == NULL || listener == NULL || peer == NULL || rec == NULL || len == 0 ||
        len > ENTRY_MAX || f->len < HDR_LEN)
        return PSKGW_EINVAL;
    aad_len = make_aad(aad, domain, listener, peer);
    if (aad_len == 0)
        return PSKGW_EINVAL;
    if ((rc = reserve(f, 2 + aad_len + 4 + IV_LEN + len + TAG_LEN)) < 0)
        return rc;
    p = f->buf + f->len;
    put_be(p, aad_len, 2);
    memcpy(p + 2, aad, aad_len);
    p += 2 + aad_len;
    put_be(p, IV_LEN + len + TAG_LEN, 4);
    p += 4;
    if (pskgw_seal_random(p, IV_LEN) < 0)
        return PSKGW_ECRYPTO;
    rc = pskgw_seal_gcm(true, key, p, rec, len, p + IV_LEN, p + IV_LEN + len, aad, aad_len);
    if (rc < 0)
        return rc;
    f->len = (size_t)(p + IV_LEN + len + TAG_LEN - f->buf);
    f->entries++;
    return 0;
}

int pskgw_statefile_save(const pskgw_statefile_t *f, const char *path, const char **why)
{
    char tmp[4096];
    size_t off = 0;
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        *why = "state file path too long";
        return PSKGW_EIO;
    }
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        *why = "cannot create the state file";
        return PSKGW_EIO;
    }
    while (off < f->len) {
        ssize_t n = write(fd, f->buf + off, f->len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    if (off != f->len || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        if (off != f->len)
            (void)close(fd);
        (void)unlink(tmp);
        *why = "cannot write the state file";
        return PSKGW_EIO;
    }
    return 0;
}

void pskgw_statefile_release(pskgw_statefile_t *f)
{
    if (f->buf != NULL) {
        pskgw_wipe(f->buf, f->cap);
        free(f->buf);
    }
    memset(f, 0, sizeof(*f));
}

static int read_all(const char *path, uint8_t **out, size_t *len, const char **why)
{
    struct stat st;
    uint8_t *buf;
    size_t off = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        *why = errno == ENOENT ? "no state file" : "cannot open the state file";
        return errno == ENOENT ? PSKGW_ENOTFOUND : PSKGW_EIO;
    }
    if (fstat(fd, &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > ((uint64_t)1 << 32)) {
        (void)close(fd);
        *why = "cannot read the state file";
        return PSKGW_EIO;
    }
    if (st.st_uid != geteuid()) {
        (void)close(fd);
        *why = "state file owned by another user";
        return PSKGW_EIO;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        (void)close(fd);
        *why = "no memory for the state file";
        return PSKGW_ENOMEM;
    }
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    (void)close(fd);
    *out = buf;
    *len = off;
    return 0;
}

/* Walks the entries after the header: opens each into pt (same offsets as in buf) and, when cb
 * is not NULL, gives it to cb. Returns the number of entries or PSKGW_EPARSE / PSKGW_ECRYPTO. */
static int walk(const uint8_t *buf, size_t len, uint8_t *pt, const uint8_t *key,
                pskgw_statefile_entry_cb cb, void *arg)
{
    size_t off = HDR_LEN;
    int n = 0;

    while (off < len) {
        const uint8_t *aad;
        size_t aad_len, sealed, dl, ll;
        const uint8_t *iv;
        int rc;

        if (len - off < 2 || (aad_len = (size_t)get_be(buf + off, 2)) == 0 ||
            len - off - 2 < aad_len + 4)
            return PSKGW_EPARSE;
        aad = buf + off + 2;
        sealed = (size_t)get_be(aad + aad_len, 4);
        off += 2 + aad_len + 4;
        if (sealed <= IV_LEN + TAG_LEN || sealed > len - off)
            return PSKGW_EPARSE;
        iv = buf + off;
        rc = pskgw_seal_gcm(false, key, iv, iv + IV_LEN, sealed - IV_LEN - TAG_LEN, pt + off,
                            (uint8_t *)(uintptr_t)(iv + sealed - TAG_LEN), aad, aad_len);
        if (rc < 0)
            return rc == PSKGW_EBADMAC ? PSKGW_EPARSE : rc;
        dl = strnlen((const char *)aad, aad_len);
        ll = dl < aad_len ? strnlen((const char *)aad + dl + 1, aad_len - dl - 1) : aad_len;
        if (dl >= aad_len || dl + 1 + ll >= aad_len)
            return PSKGW_EPARSE;
        if (cb != NULL) {
            char a[AAD_MAX + 1];

            memcpy(a, aad, aad_len);
            a[aad_len] = '\0';
            cb(arg, a, a + dl + 1, a + dl + 1 + ll + 1, pt + off, sealed - IV_LEN - TAG_LEN);
        }
        off += sealed;
        n++;
    }
    return n;
}

int pskgw_statefile_load(const char *path, const uint8_t key[PSKGW_STATEFILE_KEY_LEN],
                         pskgw_statefile_entry_cb cb, void *arg, const char **why)
{
    uint8_t *buf = NULL, *pt = NULL;
    size_t len = 0;
    int rc;

    rc = read_all(path, &buf, &len, why);
    if (rc < 0)
        return rc;
    (void)unlink(path); /* taken or refused: never imported twice */
    rc = PSKGW_EPARSE;
    *why = "damaged state file (bad magic or truncated)";
    if (len < HDR_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0)
        goto out;
    rc = pskgw_seal_gcm(false, key, buf + MAGIC_LEN, NULL, 0, NULL, buf + MAGIC_LEN + IV_LEN,
                        (const uint8_t *)HDR_AAD, strlen(HDR_AAD));
    if (rc < 0) {
        *why = "foreign state file (sealed under another key)";
        rc = rc == PSKGW_EBADMAC ? PSKGW_EAUTH : rc;
        goto out;
    }
    rc = PSKGW_ENOMEM;
    *why = "no memory for the state file";
    pt = malloc(len);
    if (pt == NULL)
        goto out;
    rc = walk(buf, len, pt, key, NULL, NULL);
    if (rc < 0) {
        *why = "damaged state file (an entry does not authenticate)";
        goto out;
    }
    rc = walk(buf, len, pt, key, cb, arg);
out:
    if (pt != NULL) {
        pskgw_wipe(pt, len);
        free(pt);
    }
    pskgw_wipe(buf, len);
    free(buf);
    return rc;
}
