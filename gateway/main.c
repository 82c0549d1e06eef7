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
#include "gateway/ctl.h"
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
            "  --worker N            run as worker N (0..255) of several sharing the ports "
            "(SO_REUSEPORT);\n"
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

/* The command line, parsed. files[] are owned (freed by cli_free); the others borrow argv. */
typedef struct {
    char *files[MAX_FILES];
    size_t nfiles;
    const char *dirs[MAX_FILES];   /* --config-dir, and */
    const char *cfiles[MAX_FILES]; /* --config, as given: a reload reads them again */
    size_t ndirs, ncfiles;
    int check;
    int cli_level;
    int cli_format;
    int cores;
    pskgw_app_opts_t app;
} cli_t;

enum {
    OPT_CONFIG_DIR = 256,
    OPT_CHECK,
    OPT_CHECK_DIR,
    OPT_LEVEL,
    OPT_FORMAT,
    OPT_WORKER,
    OPT_CORES
};

static int opt_log(int c, const char *arg, cli_t *cl)
{
    if (c == OPT_LEVEL) {
        pskgw_log_level_t l;
        if (pskgw_log_level_parse(arg, &l) < 0) {
            fprintf(stderr, "pskgw: --log-level: unknown level \"%s\"\n", arg);
            return -1;
        }
        pskgw_log_set_level(l);
        cl->cli_level = 1;
        return 0;
    }
    pskgw_log_format_t f;
    if (pskgw_log_format_parse(arg, &f) < 0) {
        fprintf(stderr, "pskgw: --log-format: must be text or json (got \"%s\")\n", arg);
        return -1;
    }
    pskgw_log_set_format(f);
    cl->cli_format = 1;
    return 0;
}

static int opt_worker(const char *arg, cli_t *cl)
{
    char *end = NULL;
    long w = -1;

    /* digits only: strtol alone takes "" as 0 and skips blanks and a sign */
    if (arg[0] >= '0' && arg[0] <= '9')
        w = strtol(arg, &end, 10);
    /* 0..255: byte 0 of every DTLS Connection ID names the worker (dtls/cid.h) */
    if (!end || *end || w < 0 || w > 255) {
        fprintf(stderr, "pskgw: --worker: must be 0..255 (got \"%s\")\n", arg);
        return -1;
    }
    cl->app.worker = (int)w;
    return 0;
}

static int opt_config(int c, const char *arg, cli_t *cl)
{
    if (c == 'c') {
        if (add_file(arg, cl->files, &cl->nfiles) < 0)
            return -1;
        cl->cfiles[cl->ncfiles++] = arg; /* ncfiles <= nfiles <= MAX_FILES */
        return 0;
    }
    if (cl->ndirs >= MAX_FILES) {
        fprintf(stderr, "pskgw: too many configuration directories (max %d)\n", MAX_FILES);
        return -1;
    }
    if (add_dir(arg, cl->files, &cl->nfiles, NULL) < 0)
        return -1;
    cl->check |= c == OPT_CHECK_DIR;
    cl->dirs[cl->ndirs++] = arg; /* listed again at each reload */
    return 0;
}

/* Parse argv into cl. 0: go on; -1: stop with *rc (2 for a usage error, 0/1 for --help and
 * --version, which are done here). */
static int parse_cli(int argc, char **argv, cli_t *cl, int *rc)
{
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
    int c, bad = 0;

    *rc = 2;
    while (!bad && (c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
        case OPT_CONFIG_DIR:
        case OPT_CHECK_DIR:
            bad = opt_config(c, optarg, cl) < 0;
            break;
        case OPT_CHECK:
            cl->check = 1;
            break;
        case OPT_LEVEL:
        case OPT_FORMAT:
            bad = opt_log(c, optarg, cl) < 0;
            break;
        case OPT_WORKER:
            bad = opt_worker(optarg, cl) < 0;
            break;
        case OPT_CORES:
            cl->cores = 1;
            break;
        case 'V':
            *rc = pskgw_version_print(stdout) == 0 ? 0 : 1;
            return -1;
        case 'h':
            usage(stdout);
            *rc = 0;
            return -1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (bad)
        return -1;
    /* --check-config takes the remaining arguments as files too. */
    for (; optind < argc; optind++) {
        if (!cl->check) {
            fprintf(stderr, "pskgw: unexpected argument \"%s\" (use --config FILE)\n",
                    argv[optind]);
            usage(stderr);
            return -1;
        }
        if (add_file(argv[optind], cl->files, &cl->nfiles) < 0)
            return -1;
    }
    if (cl->nfiles == 0) {
        fprintf(stderr, "pskgw: no configuration given\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

/* --check-config: 0 when every file is valid and its paths usable, else 2. */
static int check_only(cli_t *cl)
{
    pskgw_config_t *cfg = NULL;
    int rc = 2;

    if (load(cl->files, cl->nfiles, &cfg) == 0 && check_paths(cfg) == 0) {
        printf("pskgw: configuration valid (%zu file%s)\n", cl->nfiles, cl->nfiles == 1 ? "" : "s");
        rc = 0;
    } else {
        fprintf(stderr, "pskgw: configuration invalid\n");
    }
    pskgw_config_free(cfg);
    return rc;
}

/* Running: a file with errors is reported and its domain skipped; the others start. */
static int run(cli_t *cl)
{
    bool broken[MAX_FILES];
    pskgw_config_t *cfg = NULL;

    if (pskgw_reload_load((const char *const *)cl->files, cl->nfiles, &cfg, broken) < 0)
        return 2;
    /* The configuration's log group applies where the command line said nothing. */
    if (cfg->has_log && !cl->cli_level)
        pskgw_log_set_level(cfg->log.level);
    if (cfg->has_log && !cl->cli_format)
        pskgw_log_set_format(cfg->log.format);
    cl->app.files = cl->cfiles;
    cl->app.nfiles = cl->ncfiles;
    cl->app.dirs = cl->dirs;
    cl->app.ndirs = cl->ndirs;
    cl->app.cli_log_level = cl->cli_level != 0;
    cl->app.cli_log_format = cl->cli_format != 0;
    return pskgw_app_run(cfg, &cl->app) == 0 ? 0 : 1; /* the app frees cfg */
}

int main(int argc, char **argv)
{
    static cli_t cl; /* large: not on the stack */
    struct rlimit core_limit = { 0, 0 };
    int rc;

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
    cl.app.worker = -1;
    if (argc > 1 && strcmp(argv[1], "ctl") == 0) {
        rc = pskgw_ctl_main(argc - 1, argv + 1); /* the admin client (gateway/ctl.h) */
        curl_global_cleanup();
        return rc;
    }
    if (parse_cli(argc, argv, &cl, &rc) == 0) {
        if (cl.cores)
            allow_core_dumps(&core_limit);
        rc = cl.check ? check_only(&cl) : run(&cl);
    }
    curl_global_cleanup();
    for (size_t i = 0; i < cl.nfiles; i++)
        free(cl.files[i]);
    return rc;
}
