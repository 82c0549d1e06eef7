/* Fuzz target: the hand-over state file reader (gateway/statefile.h). The file is read at start
 * from the state directory; its lengths are parsed before any entry authenticates. The first
 * input byte picks the mode:
 * - even: the rest is the file itself: it is refused or gives its entries, never reads or writes
 *   out of bounds, and a refused file gives no entry at all;
 * - odd: the writer makes a file of up to four entries whose domain, listener, peer and record
 *   come from the input, then one byte chosen by the input is flipped (or none): unchanged, every
 *   entry comes back equal and in order; flipped, the file is refused whole. */
#define _GNU_SOURCE
#include "gateway/statefile.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ENTRIES 4

static const uint8_t KEY[PSKGW_STATEFILE_KEY_LEN] = { 0x5e, 0xed, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static char dir[64], path[4096];

static void cleanup(void)
{
    (void)unlink(path);
    (void)rmdir(dir);
}

typedef struct {
    char domain[20], listener[20], peer[52];
    uint8_t rec[300];
    size_t len;
} ent_t;

typedef struct {
    const ent_t *want; /* NULL: anything */
    size_t n, seen;
    int bad;
} got_t;

static void on_entry(void *arg, const char *domain, const char *listener, const char *peer,
                     const uint8_t *rec, size_t len)
{
    got_t *g = arg;
    const ent_t *e;

    if (strlen(domain) + strlen(listener) + strlen(peer) > 1024 || (len > 0 && rec == NULL))
        abort();
    if (len > 0)
        (void)*(volatile const uint8_t *)(rec + len - 1); /* in bounds (ASan) */
    if (g->want != NULL) {
        if (g->seen >= g->n)
            abort();
        e = &g->want[g->seen];
        if (strcmp(domain, e->domain) != 0 || strcmp(listener, e->listener) != 0 ||
            strcmp(peer, e->peer) != 0 || len != e->len || memcmp(rec, e->rec, len) != 0)
            abort();
    }
    g->seen++;
}

static int write_file(const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t off = 0;

    if (fd < 0)
        abort();
    while (off < n) {
        ssize_t w = write(fd, p + off, n - off);

        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    return close(fd);
}

/* A string of at most cap - 1 bytes from the input (no NUL inside). */
static void take_str(const uint8_t **d, size_t *n, char *out, size_t cap)
{
    const uint8_t *p = *d;
    size_t left = *n, k = 0, want;

    if (left == 0) {
        out[0] = '\0';
        return;
    }
    want = p[0] % cap;
    p++;
    left--;
    for (; k < want && left > 0; k++, p++, left--)
        out[k] = (char)(p[0] != 0 ? p[0] : 'x');
    out[k] = '\0';
    *d = p;
    *n = left;
}

static void made_file(const uint8_t *d, size_t n)
{
    static ent_t ents[MAX_ENTRIES];
    pskgw_statefile_t f;
    size_t count, flip;
    const char *why = NULL;
    got_t g = { 0 };
    int rc;

    if (n < 3)
        return;
    count = d[0] % (MAX_ENTRIES + 1);
    flip = (size_t)d[1] << 8 | d[2]; /* 0: no flip; else the offset flip - 1 */
    d += 3;
    n -= 3;
    if (pskgw_statefile_begin(&f, KEY) != 0)
        abort();
    for (size_t i = 0; i < count; i++) {
        ent_t *e = &ents[i];

        take_str(&d, &n, e->domain, sizeof(e->domain));
        take_str(&d, &n, e->listener, sizeof(e->listener));
        take_str(&d, &n, e->peer, sizeof(e->peer));
        e->len = n > 0 ? 1 + d[0] % sizeof(e->rec) : 1;
        for (size_t k = 0; k < e->len; k++)
            e->rec[k] = n > k + 1 ? d[k + 1] : (uint8_t)k;
        d += n > e->len ? e->len + 1 : n;
        n -= n > e->len ? e->len + 1 : n;
        if (pskgw_statefile_add(&f, KEY, e->domain, e->listener, e->peer, e->rec, e->len) != 0)
            abort();
    }
    if (flip > 0)
        f.buf[(flip - 1) % f.len] ^= (uint8_t)(1u << (flip % 8));
    (void)write_file(f.buf, f.len);
    g.want = ents;
    g.n = count;
    rc = pskgw_statefile_load(path, KEY, on_entry, &g, &why);
    if (flip == 0 && (rc != (int)count || g.seen != count))
        abort();
    if (flip > 0 && (rc >= 0 || g.seen != 0 || why == NULL))
        abort();
    pskgw_statefile_release(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    got_t g = { 0 };
    int rc;

    if (path[0] == '\0') {
        (void)snprintf(dir, sizeof(dir), "/tmp/pskgw-fuzz-statefile-XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
        (void)snprintf(path, sizeof(path), "%s/sessions.state", dir);
        (void)atexit(cleanup);
    }
    if (size < 1)
        return 0;
    if (data[0] % 2 == 1) {
        made_file(data + 1, size - 1);
        return 0;
    }
    (void)write_file(data + 1, size - 1);
    rc = pskgw_statefile_load(path, KEY, on_entry, &g, &why);
    if (rc < 0 && (g.seen != 0 || why == NULL))
        abort();
    if (rc >= 0 && g.seen != (size_t)rc)
        abort();
    if (access(path, F_OK) == 0)
        abort(); /* read once: removed, taken or refused */
    return 0;
}
