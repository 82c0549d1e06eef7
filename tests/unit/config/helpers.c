#include "helpers.h"

#include <fcntl.h>
#include <unistd.h>

char test_dir[512];
pskgw_config_diag_t diag;
pskgw_config_t *cfg;

void cfgtest_setup(void)
{
    cr_assert_eq(pskgw_test_tmpdir(test_dir, sizeof(test_dir)), 0);
    unsetenv("CREDENTIALS_DIRECTORY");
    pskgw_config_diag_init(&diag);
    cfg = NULL;
    write_file("api.secret", TEST_SECRET "\n");
    pskgw_log_set_level(PSKGW_LOG_ERR);
}

void cfgtest_teardown(void)
{
    pskgw_config_free(cfg);
    cfg = NULL;
    pskgw_config_diag_deinit(&diag);
    pskgw_test_rmtree(test_dir);
    unsetenv("CREDENTIALS_DIRECTORY");
    pskgw_log_set_output(NULL);
    pskgw_log_set_level(PSKGW_LOG_INFO);
}

const char *tpath(const char *name)
{
    static char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s/%s", test_dir, name);
    cr_assert(n > 0 && (size_t)n < sizeof(buf));
    return buf;
}

const char *write_bytes(const char *name, const void *data, size_t len)
{
    const char *p = tpath(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "open %s", p);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
    return p;
}

const char *write_file(const char *name, const char *text)
{
    return write_bytes(name, text, strlen(text));
}

int load_text(const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s", write_file(name, text));
    const char *paths[1] = { path };
    return pskgw_config_load(paths, 1, &cfg, &diag);
}

int load_two(const char *n1, const char *t1, const char *n2, const char *t2)
{
    char p1[1024], p2[1024];
    snprintf(p1, sizeof(p1), "%s", write_file(n1, t1));
    snprintf(p2, sizeof(p2), "%s", write_file(n2, t2));
    const char *paths[2] = { p1, p2 };
    return pskgw_config_load(paths, 2, &cfg, &diag);
}

bool diag_has(const char *first, ...)
{
    for (size_t i = 0; i < diag.nitems; i++) {
        const char *t = diag.items[i].text;
        bool all = true;
        va_list ap;
        va_start(ap, first);
        for (const char *s = first; s != NULL; s = va_arg(ap, const char *)) {
            if (strstr(t, s) == NULL)
                all = false;
        }
        va_end(ap);
        if (all)
            return true;
    }
    diag_dump();
    return false;
}

void diag_dump(void)
{
    fprintf(stderr, "--- %zu diagnostics:\n", diag.nitems);
    pskgw_config_diag_print(&diag, stderr, PSKGW_CONFIG_PRINT_ALL);
}
