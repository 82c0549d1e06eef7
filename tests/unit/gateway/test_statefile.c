/* gateway/statefile.h: sealed state files on a real file system (a temporary directory). */
#define _GNU_SOURCE
#include "gateway/statefile.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static void setup(void)
{
    strcpy(dir, "/tmp/pskgw-statefile.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/sessions.state", dir);
}

static void teardown(void)
{
    char p[160];

    snprintf(p, sizeof(p), "%s/state.key", dir);
    (void)unlink(p);
    (void)unlink(path);
    (void)rmdir(dir);
}

TestSuite(statefile, .init = setup, .fini = teardown);

typedef struct {
    int n;
    char got[4][128];
    size_t len[4];
} seen_t;

static void on_entry(void *arg, const char *d, const char *l, const char *p, const uint8_t *rec,
                     size_t len)
{
    seen_t *s = arg;

    cr_assert_lt(s->n, 4);
    snprintf(s->got[s->n], sizeof(s->got[0]), "%s|%s|%s|%.*s", d, l, p, (int)len,
             (const char *)rec);
    s->len[s->n++] = len;
}

static void write_two(const uint8_t *key)
{
    pskgw_statefile_t f;
    const char *why = NULL;
    struct stat st;

    cr_assert_eq(pskgw_statefile_begin(&f, key), 0);
    cr_assert_eq(pskgw_statefile_add(&f, key, "dom", "dtls", "127.0.0.1:4000",
                                     (const uint8_t *)"secret-one", 10),
                 0);
    cr_assert_eq(pskgw_statefile_add(&f, key, "dom", "dtls", "[::1]:5000",
                                     (const uint8_t *)"secret-two", 10),
                 0);
    cr_assert_eq(pskgw_statefile_save(&f, path, &why), 0, "%s", why);
    pskgw_statefile_release(&f);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "the state file is secret: 0600");
}

static int file_contains(const char *needle)
{
    FILE *fp = fopen(path, "rb");
    char buf[4096];
    size_t n;

    cr_assert_not_null(fp);
    n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    return memmem(buf, n, needle, strlen(needle)) != NULL;
}

Test(statefile, key_created_once_0600_and_reused)
{
    uint8_t k1[32], k2[32];
    const char *why = NULL;
    char kp[160];
    struct stat st;

    cr_assert_eq(pskgw_statefile_key(dir, NULL, k1, &why), 0, "%s", why);
    snprintf(kp, sizeof(kp), "%s/state.key", dir);
    cr_assert_eq(stat(kp, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(st.st_size, 32);
    cr_assert_eq(pskgw_statefile_key(dir, NULL, k2, &why), 0);
    cr_assert_arr_eq(k1, k2, 32, "the same key on the next start");
    memset(k2, 7, sizeof(k2));
    cr_assert_eq(pskgw_statefile_key(dir, k2, k1, &why), 0);
    cr_assert_arr_eq(k1, k2, 32, "cache.kek_file's key when given");
}

Test(statefile, round_trip_sealed_and_consumed)
{
    uint8_t key[32];
    const char *why = NULL;
    seen_t s = { 0 };

    memset(key, 1, sizeof(key));
    write_two(key);
    cr_assert_not(file_contains("secret-one"), "the records are sealed, not in the clear");
    cr_assert_eq(pskgw_statefile_load(path, key, on_entry, &s, &why), 2, "%s", why);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.got[0], "dom|dtls|127.0.0.1:4000|secret-one");
    cr_assert_str_eq(s.got[1], "dom|dtls|[::1]:5000|secret-two");
    cr_assert_neq(access(path, F_OK), 0, "read once, then removed");
    cr_assert_eq(pskgw_statefile_load(path, key, on_entry, &s, &why), PSKGW_ENOTFOUND);
}

Test(statefile, foreign_file_refused_whole)
{
    uint8_t key[32], other[32];
    const char *why = NULL;
    seen_t s = { 0 };

    memset(key, 1, sizeof(key));
    memset(other, 2, sizeof(other));
    write_two(other);
    cr_assert_eq(pskgw_statefile_load(path, key, on_entry, &s, &why), PSKGW_EAUTH);
    cr_assert_str_eq(why, "foreign state file (sealed under another key)");
    cr_assert_eq(s.n, 0);
    cr_assert_neq(access(path, F_OK), 0, "refused files go too");
}

Test(statefile, damaged_file_refused_whole)
{
    uint8_t key[32];
    const char *why = NULL;
    seen_t s = { 0 };
    struct stat st;
    FILE *fp;
    long at;

    memset(key, 1, sizeof(key));
    /* One flipped byte in the second entry's ciphertext: nothing is taken, not even the first. */
    write_two(key);
    cr_assert_eq(stat(path, &st), 0);
    at = (long)st.st_size - 20;
    fp = fopen(path, "r+b");
    cr_assert_not_null(fp);
    fseek(fp, at, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, at, SEEK_SET);
    fputc(c ^ 0x40, fp);
    fclose(fp);
    cr_assert_eq(pskgw_statefile_load(path, key, on_entry, &s, &why), PSKGW_EPARSE);
    cr_assert_str_eq(why, "damaged state file (an entry does not authenticate)");
    cr_assert_eq(s.n, 0);
    /* Truncated. */
    write_two(key);
    cr_assert_eq(truncate(path, st.st_size - 3), 0);
    cr_assert_eq(pskgw_statefile_load(path, key, on_entry, &s, &why), PSKGW_EPARSE);
    cr_assert_eq(s.n, 0);
    /* Not a state file. */
    fp = fopen(path, "wb");
    fputs("hello, not a state file at all........", fp);
    fclose(fp);
    cr_assert_eq(pskgw_statefile_load(path, key, on_entry, &s, &why), PSKGW_EPARSE);
    cr_assert_str_eq(why, "damaged state file (bad magic or truncated)");
}

Test(statefile, an_entry_moved_to_another_peer_does_not_authenticate)
{
    uint8_t key[32];
    const char *why = NULL;
    seen_t s = { 0 };
    FILE *fp;
    char buf[4096];
    size_t n;
    char *at;

    memset(key, 1, sizeof(key));
    write_two(key);
    fp = fopen(path, "rb");
    n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    at = memmem(buf, n, "127.0.0.1:4000", 14);
    cr_assert_not_null(at);
    at[13] = '1'; /* the associated data names another peer now */
    fp = fopen(path, "wb");
    fwrite(buf, 1, n, fp);
    fclose(fp);
    cr_assert_eq(pskgw_statefile_load(path, key, on_entry, &s, &why), PSKGW_EPARSE);
    cr_assert_eq(s.n, 0);
}
