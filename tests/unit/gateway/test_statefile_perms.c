/* The hand-over state files against another local user (docs/SECURITY.md, "State file"): a key
 * whoever else can read or wrote, a state file another user put in place, and a state directory
 * others can write are refused. Each failed before the checks: the key was read whatever its
 * owner and mode, so a user who could write the directory could plant a key of their own and
 * sessions sealed under it. Run as root for the tests that give a file to another user. */
#define _GNU_SOURCE
#include "gateway/handover.h"
#include "gateway/statefile.h"

#include "common/err.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOBODY 65534

static char dir[64], keypath[128], path[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/pskgw-statefile-perms.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(keypath, sizeof(keypath), "%s/state.key", dir);
    snprintf(path, sizeof(path), "%s/sessions.state", dir);
}

static void teardown(void)
{
    (void)unlink(keypath);
    (void)unlink(path);
    (void)rmdir(dir);
}

TestSuite(statefile_perms, .init = setup, .fini = teardown);

static void write_key(mode_t mode)
{
    uint8_t k[PSKGW_STATEFILE_KEY_LEN];
    int fd = open(keypath, O_WRONLY | O_CREAT | O_EXCL, 0600);

    memset(k, 0x42, sizeof(k));
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, k, sizeof(k)), (ssize_t)sizeof(k));
    cr_assert_eq(fchmod(fd, mode), 0);
    cr_assert_eq(close(fd), 0);
}

static void need_root(void)
{
    if (geteuid() != 0)
        cr_skip_test("giving a file to another user needs root");
}

Test(statefile_perms, a_state_key_open_to_group_or_others_is_refused)
{
    static const mode_t modes[] = { 0644, 0640, 0604, 0602, 0620 };
    uint8_t key[PSKGW_STATEFILE_KEY_LEN];
    const char *why = NULL;

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        write_key(modes[i]);
        cr_assert_eq(pskgw_statefile_key(dir, NULL, key, &why), PSKGW_EIO, "mode %o taken",
                     (unsigned)modes[i]);
        cr_assert_not_null(strstr(why, "not private"), "%s", why);
        cr_assert_eq(unlink(keypath), 0);
    }
    write_key(0600);
    cr_assert_eq(pskgw_statefile_key(dir, NULL, key, &why), 0, "our own 0600 key: %s", why);
    cr_assert_eq(key[0], 0x42);
}

Test(statefile_perms, a_state_key_of_another_user_is_refused)
{
    uint8_t key[PSKGW_STATEFILE_KEY_LEN];
    const char *why = NULL;

    need_root();
    write_key(0600);
    cr_assert_eq(chown(keypath, NOBODY, NOBODY), 0);
    cr_assert_eq(pskgw_statefile_key(dir, NULL, key, &why), PSKGW_EIO);
    cr_assert_not_null(strstr(why, "not private"), "%s", why);
}

static void on_entry(void *arg, const char *d, const char *l, const char *p, const uint8_t *rec,
                     size_t len)
{
    (void)d;
    (void)l;
    (void)p;
    (void)rec;
    (void)len;
    (*(int *)arg)++;
}

Test(statefile_perms, a_state_file_of_another_user_is_refused_and_left_in_place)
{
    uint8_t key[PSKGW_STATEFILE_KEY_LEN];
    pskgw_statefile_t f;
    const char *why = NULL;
    int seen = 0;

    need_root();
    memset(key, 7, sizeof(key));
    cr_assert_eq(pskgw_statefile_begin(&f, key), 0);
    cr_assert_eq(pskgw_statefile_add(&f, key, "dom", "dtls", "127.0.0.1:4000",
                                     (const uint8_t *)"session", 7),
                 0);
    cr_assert_eq(pskgw_statefile_save(&f, path, &why), 0, "%s", why);
    pskgw_statefile_release(&f);
    cr_assert_eq(chown(path, NOBODY, NOBODY), 0);
    cr_assert_eq(pskgw_statefile_load(path, key, on_entry, &seen, &why), PSKGW_EIO);
    cr_assert_not_null(strstr(why, "another user"), "%s", why);
    cr_assert_eq(seen, 0, "no entry of another user's file is used");
    cr_assert_eq(access(path, F_OK), 0, "left for an operator to look at");
    cr_assert_eq(chown(path, 0, 0), 0);
    cr_assert_eq(pskgw_statefile_load(path, key, on_entry, &seen, &why), 1, "%s", why);
    cr_assert_eq(seen, 1);
}

Test(statefile_perms, a_state_directory_others_can_write_turns_the_hand_over_off)
{
    cr_assert_eq(chmod(dir, 0777), 0);
    cr_assert_eq(pskgw_handover_init(dir, NULL, -1), 0);
    cr_assert(!pskgw_handover_enabled(), "a directory anyone can write: no hand-over");
    cr_assert_neq(access(keypath, F_OK), 0, "no key made there");
    pskgw_handover_save();
    cr_assert_eq(chmod(dir, 0770), 0);
    cr_assert_eq(pskgw_handover_init(dir, NULL, -1), 0);
    cr_assert(!pskgw_handover_enabled(), "group-writable: no hand-over either");
    pskgw_handover_save();
    cr_assert_eq(chmod(dir, 0700), 0);
    cr_assert_eq(pskgw_handover_init(dir, NULL, -1), 0);
    cr_assert(pskgw_handover_enabled(), "a private directory: hand-over on");
    pskgw_handover_save();
}

Test(statefile_perms, a_state_directory_of_another_user_turns_the_hand_over_off)
{
    need_root();
    cr_assert_eq(chown(dir, NOBODY, NOBODY), 0);
    cr_assert_eq(pskgw_handover_init(dir, NULL, -1), 0);
    cr_assert(!pskgw_handover_enabled(), "another user's directory: no hand-over");
    pskgw_handover_save();
    cr_assert_eq(chown(dir, 0, 0), 0);
}
