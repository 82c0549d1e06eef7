/* pskgw: the PSK (D)TLS gateway for u-blox root-of-trust devices.
 *
 *   pskgw --config acme.conf [--config other.conf] [--config-dir /etc/pskgw/domains]
 *   pskgw --check-config acme.conf other.conf     (exit 0, or 2 with file:line errors)
 *   pskgw --version
 */
#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "config/config.h"
#include "gateway/app.h"
#include "gateway/reload.h"
#include "gateway/version.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES 256

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pskgw --config FILE [--config FILE]... [--config-dir DIR] [options]\n"
            "       pskgw --check-config FILE... | --check-config-dir DIR\n"
            "       pskgw --version | --help\n"
            "\n"
            "  --config FILE         a domain's configuration file (repeatable; docs/CONFIG.md)\n"
            "  --config-dir DIR      every *.conf file in DIR, in name order\n"
            "  --check-config FILE.. validate the files and exit: 0 if valid, 2 with every error\n"
            "                        printed as file:line: path: message\n"
            "  --check-config-dir DIR  the same for every *.conf file in DIR\n"
            "  --log-level LEVEL     err|warning|notice|info|debug (default info)\n"
            "  --log-format FORMAT   text (time and level; <N> priority prefixes under journald)\n"
            "                        or json (default text)\n"
            "  --worker N            run as worker N of several sharing the ports (SO_REUSEPORT);\n"
            "                        spool files get a -wN suffix, the admin endpoint\n"
            "                        listens on its port + N\n"
            "  --allow-core-dumps    keep the process dumpable and the core size limit as it\n"
            "                        was (debugging only: a core holds every secret)\n"
            "  --version             pskgw's version, wolfSSL's and the PSK cipher suites\n"
            "  --help                this text\n"
            "\n"
            "signals: SIGTERM/SIGINT stop cleanly; SIGHUP reloads the configuration files and\n"
            "         reopens output files (log rotation)\n");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends a copy of path to files. */
static int add_file(const char *path, char **files, size_t *n)
{
    if (*n >= MAX_FILES) {
        fprintf(stderr, "pskgw: too many configuration files (max %d)\n", MAX_FILES);
        return PSKGW_ERANGE;
    }
    files[*n] = strdup(path);
    if (!files[*n]) {
        fprintf(stderr, "pskgw: out of memory\n");
        return PSKGW_ENOMEM;
    }
    (*n)++;
    return 0;
}

/* Appends the *.conf files of dir (sorted) to files; the strings are heap-owned by the caller. */
static int add_dir(const char *dir, char **files, size_t *n, size_t *owned_from)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t first = *n;

    (void)owned_from;
    if (!d) {
        fprintf(stderr, "pskgw: %s: cannot open directory\n", dir);
        return PSKGW_EIO;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char *path;

        if (len < 6 || strcmp(e->d_name + len - 5, ".conf") != 0 || e->d_name[0] == '.')
            continue;
        if (*n >= MAX_FILES) {
            closedir(d);
            fprintf(stderr, "pskgw: too many configuration files (max %d)\n", MAX_FILES);
            return PSKGW_ERANGE;
        }
        path = malloc(strlen(dir) + len + 2);
        if (!path) {
            closedir(d);
            return PSKGW_ENOMEM;
        }
        snprintf(path, strlen(dir) + len + 2, "%s/%s", dir, e->d_name);
        files[(*n)++] = path;
    }
    closedir(d);
    qsort(files + first, *n - first, sizeof(char *), cmp_str);
    if (*n == first)
        fprintf(stderr, "pskgw: %s: no *.conf files\n", dir);
    return *n == first ? PSKGW_ENOTFOUND : 0;
}

/* A core dump holds the API secret, tokens, the cache KEK and cached PSKs (and WatchdogSec
 * aborts a hung process). Before any secret is read the process makes itself non-dumpable (no
 * core, no ptrace by other processes of its user, /proc/PID owned by root) and lowers its soft
 * core size limit to 0 (which systemd-coredump honours even where fs.suid_dumpable = 2 would let
 * the kernel dump a non-dumpable process). *saved keeps the limit for allow_core_dumps(). */
static void deny_core_dumps(struct rlimit *saved)
{
    struct rlimit none;

    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        fprintf(stderr, "pskgw: prctl(PR_SET_DUMPABLE, 0): %s\n", strerror(errno));
    if (getrlimit(RLIMIT_CORE, saved) == 0) {
        none = *saved;
        none.rlim_cur = 0;
        if (setrlimit(RLIMIT_CORE, &none) < 0)
            fprintf(stderr, "pskgw: setrlimit(RLIMIT_CORE): %s\n", strerror(errno));
    }
}

/* --allow-core-dumps: back to what the process was given. */
static void allow_core_dumps(const struct rlimit *saved)
{
    (void)setrlimit(RLIMIT_CORE, saved);
    (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    PSKGW_WARN("core dumps allowed (--allow-core-dumps): a core holds the API secret, tokens and "
               "cached keys");
}

static int load(char **files, size_t n, pskgw_config_t **cfg)
{
    pskgw_config_diag_t diag;
    int rc;

    pskgw_config_diag_init(&diag);
    rc = pskgw_config_load((const char *const *)files, n, cfg, &diag);
    pskgw_config_diag_print(&diag, stderr, PSKGW_CONFIG_PRINT_ERRORS); /* warnings are logged */
    pskgw_config_diag_deinit(&diag);
    return rc;
}

/* --check-config: what start-up would fail on in the file system (directories, writable paths) */
static int check_paths(const pskgw_config_t *cfg)
{
    pskgw_config_diag_t diag;
    int rc;

    pskgw_config_diag_init(&diag);
    rc = pskgw_config_check_paths(cfg, &diag);
    pskgw_config_diag_print(&diag, stderr, PSKGW_CONFIG_PRINT_ERRORS);
    pskgw_config_diag_deinit(&diag);
    return rc;
}

int main(int argc, char **argv)
{
    enum {
        OPT_CONFIG_DIR = 256,
        OPT_CHECK,
        OPT_CHECK_DIR,
        OPT_LEVEL,
        OPT_FORMAT,
        OPT_WORKER,
        OPT_CORES
    };
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "config-dir", required_argument, NULL, OPT_CONFIG_DIR },
        { "check-config", no_argument, NULL, OPT_CHECK },
        { "check-config-dir", required_argument, NULL, OPT_CHECK_DIR },
        { "log-level", required_argument, NULL, OPT_LEVEL },
        { "log-format", required_argument, NULL, OPT_FORMAT },
        { "worker", required_argument, NULL, OPT_WORKER },
        { "allow-core-dumps", no_argument, NULL, OPT_CORES },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char *files[MAX_FILES];
    const char *dirs[MAX_FILES];   /* --config-dir, and */
    const char *cfiles[MAX_FILES]; /* --config, as given: a reload reads them again */
    size_t ndirs = 0, ncfiles = 0;
    bool broken[MAX_FILES];
    size_t nfiles = 0;
    int check = 0;
    int cli_level = 0;
    int cli_format = 0;
    int c;
    int rc = 2;
    int cores = 0;
    struct rlimit core_limit = { 0, 0 };
    pskgw_app_opts_t app_opts;
    pskgw_config_t *cfg = NULL;

    deny_core_dumps(&core_limit); /* first: nothing secret is in memory yet */
    /* jansson and libcurl free the buffers that held the API secret, tokens and keys without
     * wiping them: make them wipe. Before any other use of either library. */
    json_set_alloc_funcs(pskgw_wiping_malloc, pskgw_wiping_free);
    if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, pskgw_wiping_malloc, pskgw_wiping_free,
                             pskgw_wiping_realloc, pskgw_wiping_strdup,
                             pskgw_wiping_calloc) != CURLE_OK) {
        fprintf(stderr, "pskgw: libcurl initialisation failed\n");
        return 1;
    }
    /* A closed stdout (file sink "-") or socket is an error to handle, not a reason to die. */
    signal(SIGPIPE, SIG_IGN);
    memset(&app_opts, 0, sizeof(app_opts));
    app_opts.worker = -1;
    while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (add_file(optarg, files, &nfiles) < 0)
                goto out;
            cfiles[ncfiles++] = optarg;
            break;
        case OPT_CONFIG_DIR:
        case OPT_CHECK_DIR:
            if (add_dir(optarg, files, &nfiles, NULL) < 0)
                goto out;
            check |= c == OPT_CHECK_DIR;
            dirs[ndirs++] = optarg; /* listed again at each reload */
            break;
        case OPT_CHECK:
            check = 1;
            break;
        case OPT_LEVEL: {
            pskgw_log_level_t l;
            if (pskgw_log_level_parse(optarg, &l) < 0) {
                fprintf(stderr, "pskgw: --log-level: unknown level \"%s\"\n", optarg);
                goto out;
            }
            pskgw_log_set_level(l);
            cli_level = 1;
            break;
        }
        case OPT_FORMAT: {
            pskgw_log_format_t f;
            if (pskgw_log_format_parse(optarg, &f) < 0) {
                fprintf(stderr, "pskgw: --log-format: must be text or json (got \"%s\")\n", optarg);
                goto out;
            }
            pskgw_log_set_format(f);
            cli_format = 1;
            break;
        }
        case OPT_WORKER: {
            char *end = NULL;
            long w = -1;

            /* digits only: strtol alone takes "" as 0 and skips blanks and a sign */
            if (optarg[0] >= '0' && optarg[0] <= '9')
                w = strtol(optarg, &end, 10);
            if (!end || *end || w < 0 || w > 1023) {
                fprintf(stderr, "pskgw: --worker: must be 0..1023 (got \"%s\")\n", optarg);
                goto out;
            }
            app_opts.worker = (int)w;
            break;
        }
        case OPT_CORES:
            cores = 1;
            break;
        case 'V':
            rc = pskgw_version_print(stdout) == 0 ? 0 : 1;
            goto out;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    /* --check-config takes the remaining arguments as files too. */
    for (; optind < argc; optind++) {
        if (!check) {
            fprintf(stderr, "pskgw: unexpected argument \"%s\" (use --config FILE)\n",
                    argv[optind]);
            usage(stderr);
            goto out;
        }
        if (add_file(argv[optind], files, &nfiles) < 0)
            goto out;
    }
    if (cores)
        allow_core_dumps(&core_limit);
    if (nfiles == 0) {
        fprintf(stderr, "pskgw: no configuration given\n");
        usage(stderr);
        goto out;
    }
    if (check && load(files, nfiles, &cfg) < 0) {
        fprintf(stderr, "pskgw: configuration invalid\n");
        rc = 2;
        goto out;
    }
    /* Running: a file with errors is reported and its domain skipped; the others start. */
    if (!check && pskgw_reload_load((const char *const *)files, nfiles, &cfg, broken) < 0) {
        rc = 2;
        goto out;
    }
    if (check && check_paths(cfg) < 0) {
        fprintf(stderr, "pskgw: configuration invalid\n");
        rc = 2;
        goto out;
    }
    if (check) {
        printf("pskgw: configuration valid (%zu file%s)\n", nfiles, nfiles == 1 ? "" : "s");
        rc = 0;
        goto out;
    }
    /* The configuration's log group applies where the command line said nothing. */
    if (cfg->has_log && !cli_level)
        pskgw_log_set_level(cfg->log.level);
    if (cfg->has_log && !cli_format)
        pskgw_log_set_format(cfg->log.format);
    app_opts.files = cfiles;
    app_opts.nfiles = ncfiles;
    app_opts.dirs = dirs;
    app_opts.ndirs = ndirs;
    rc = pskgw_app_run(cfg, &app_opts) == 0 ? 0 : 1;
    cfg = NULL; /* the app freed it */
out:
    pskgw_config_free(cfg);
    curl_global_cleanup();
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    return rc;
}
