#include "gateway/ctl.h"
#include "common/wipe.h"
#include "config/config.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES 64
#define BODY_MAX  (16u * 1024 * 1024)

typedef struct {
    const char *files[MAX_FILES];
    size_t nfiles;
    const char *admin_url;
    const char *token_file;
    const char *domain;
    const char *identity;
    const char *command;
    int worker;
    bool json;
    char base[300]; /* http://host:port */
    char *token;    /* wiped and freed */
    size_t token_len;
} ctl_t;

typedef struct {
    char *data;
    size_t len;
} buf_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pskgw ctl [--config FILE]... | --admin URL [--token-file F]] [--worker N]\n"
            "                 sessions|spools|close|invalidate|revoke|reload|handover\n"
            "                 [--domain D] [--identity HEX] [--json]\n"
            "  sessions      established sessions (all domains, or --domain; --identity filters)\n"
            "  spools        each sink's spool bytes and queue depth\n"
            "  close         end the sessions of --identity in --domain\n"
            "  invalidate    drop --identity from --domain's PSK cache (memory and Redis) on\n"
            "                every gateway sharing the Redis\n"
            "  revoke        invalidate, refuse it for the cache's negative_ttl_s and end its\n"
            "                sessions, on every gateway sharing the Redis\n"
            "  reload        reload the configuration (as SIGHUP)\n"
            "  handover      stop as on SIGTERM, the sessions sealed in the state directory for\n"
            "                the next process (restart or upgrade without a handshake)\n");
}

static int parse(int argc, char **argv, ctl_t *c)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "admin", required_argument, NULL, 'a' },
        { "token-file", required_argument, NULL, 't' },
        { "domain", required_argument, NULL, 'd' },
        { "identity", required_argument, NULL, 'i' },
        { "worker", required_argument, NULL, 'w' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int o;

    c->worker = -1;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            if (c->nfiles == MAX_FILES)
                return -1;
            c->files[c->nfiles++] = optarg;
            break;
        case 'a':
            c->admin_url = optarg;
            break;
        case 't':
            c->token_file = optarg;
            break;
        case 'd':
            c->domain = optarg;
            break;
        case 'i':
            c->identity = optarg;
            break;
        case 'w':
            c->worker = atoi(optarg);
            break;
        case 'j':
            c->json = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (optind != argc - 1 || (c->nfiles == 0) == (c->admin_url == NULL))
        return -1;
    c->command = argv[optind];
    return 0;
}

static int read_token(ctl_t *c)
{
    FILE *f = fopen(c->token_file, "r");
    char buf[4096];
    size_t n;

    if (!f) {
        fprintf(stderr, "pskgw ctl: cannot read %s: %s\n", c->token_file, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    c->token = malloc(n + 1);
    if (c->token) {
        memcpy(c->token, buf, n);
        c->token[n] = '\0';
        c->token_len = n;
    }
    pskgw_wipe(buf, sizeof(buf));
    return c->token ? 0 : -1;
}

/* The endpoint and token from the gateway's own configuration files. */
static int from_config(ctl_t *c)
{
    pskgw_config_t *cfg = NULL;
    pskgw_config_diag_t diag;
    unsigned port;
    int rc;

    pskgw_config_diag_init(&diag);
    rc = pskgw_config_load(c->files, c->nfiles, &cfg, &diag);
    pskgw_config_diag_print(&diag, stderr, PSKGW_CONFIG_PRINT_ERRORS);
    pskgw_config_diag_deinit(&diag);
    if (rc < 0 || !cfg->has_admin) {
        if (rc == 0)
            fprintf(stderr, "pskgw ctl: the configuration has no admin endpoint\n");
        pskgw_config_free(cfg);
        return -1;
    }
    port = cfg->admin.port + (c->worker > 0 ? (unsigned)c->worker : 0);
    snprintf(c->base, sizeof(c->base),
             strchr(cfg->admin.address, ':') ? "http://[%s]:%u" : "http://%s:%u",
             cfg->admin.address, port);
    if (cfg->admin.token.data && !c->token) {
        c->token = strdup(cfg->admin.token.data);
        c->token_len = cfg->admin.token.len;
    }
    pskgw_config_free(cfg);
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    buf_t *b = arg;
    size_t len = size * n;
    char *d;

    if (b->len + len > BODY_MAX || !(d = realloc(b->data, b->len + len + 1)))
        return 0;
    memcpy(d + b->len, p, len);
    b->data = d;
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

/* method path-with-query -> HTTP status (0: no answer), body in *b. */
static long call(ctl_t *c, const char *method, const char *path, buf_t *b)
{
    char url[1500];
    char *auth = NULL;
    struct curl_slist *h = NULL;
    CURL *e = curl_easy_init();
    long code = 0;
    CURLcode rc;

    if (!e)
        return 0;
    snprintf(url, sizeof(url), "%s%s", c->base, path);
    if (c->token) {
        size_t n = c->token_len + 32;

        auth = malloc(n);
        if (auth) {
            snprintf(auth, n, "Authorization: Bearer %s", c->token);
            h = curl_slist_append(NULL, auth);
        }
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    }
    rc = curl_easy_perform(e);
    if (rc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    else
        fprintf(stderr, "pskgw ctl: %s: %s\n", c->base, curl_easy_strerror(rc));
    curl_slist_free_all(h);
    if (auth) {
        pskgw_wipe(auth, strlen(auth));
        free(auth);
    }
    curl_easy_cleanup(e);
    return code;
}

/* "?domain=D&identity=HEX" from the options given (escaped). */
static int query(const ctl_t *c, char *out, size_t size)
{
    const char *keys[2] = { "domain", "identity" };
    const char *vals[2] = { c->domain, c->identity };
    size_t used = 0;

    out[0] = '\0';
    for (int i = 0; i < 2; i++) {
        char *v;
        int n;

        if (!vals[i])
            continue;
        v = curl_easy_escape(NULL, vals[i], 0);
        if (!v)
            return -1;
        n = snprintf(out + used, size - used, "%c%s=%s", used ? '&' : '?', keys[i], v);
        curl_free(v);
        if (n < 0 || (size_t)n >= size - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static uint64_t num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : (uint64_t)json_number_value(v);
}

static void print_table(const char *command, json_t *root)
{
    size_t i;
    json_t *o;

    if (strcmp(command, "sessions") == 0) {
        printf("%-10s %-8s %-24s %-34s %8s %8s %10s %10s\n", "DOMAIN", "LISTENER", "PEER",
               "IDENTITY", "AGE_S", "IDLE_S", "BYTES_IN", "BYTES_OUT");
        json_array_foreach(json_object_get(root, "sessions"), i, o)
            printf("%-10s %-8s %-24s %-34s %8" PRIu64 " %8" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
                   str(o, "domain"), str(o, "listener"), str(o, "peer"), str(o, "identity"),
                   num(o, "age_s"), num(o, "idle_s"), num(o, "bytes_in"), num(o, "bytes_out"));
    } else if (strcmp(command, "spools") == 0) {
        printf("%-10s %-20s %12s %12s %10s %10s %10s\n", "DOMAIN", "SINK", "SPOOL_BYTES",
               "QUEUE_DEPTH", "SPOOLED", "REPLAYED", "DROPPED");
        json_array_foreach(json_object_get(root, "spools"), i, o) printf(
            "%-10s %-20s %12" PRIu64 " %12" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
            str(o, "domain"), str(o, "sink"), num(o, "spool_bytes"), num(o, "queue_depth"),
            num(o, "spooled_total"), num(o, "replayed_total"), num(o, "dropped_total"));
    } else if (strcmp(command, "close") == 0) {
        printf("closed %" PRIu64 " session(s) of %s in domain %s\n", num(root, "closed"),
               str(root, "identity"), str(root, "domain"));
    } else if (strcmp(command, "invalidate") == 0 || strcmp(command, "revoke") == 0) {
        bool published = json_is_true(json_object_get(root, "published"));

        printf("%s %s in domain %s (cache and redis; %s)\n",
               command[0] == 'r' ? "revoked" : "invalidated", str(root, "identity"),
               str(root, "domain"),
               published ? "published to the gateways sharing the redis"
                         : "NOT published: redis not connected");
        if (command[0] == 'r')
            printf("closed %" PRIu64 " session(s) here\n", num(root, "closed"));
    } else if (strcmp(command, "handover") == 0) {
        printf("hand-over requested: pskgw stops, its sessions kept for the next process\n");
    } else {
        printf("reload requested\n");
    }
}

/* What the command sends: 0, or -1 (usage). */
static int route(const ctl_t *c, const char **method, const char **path)
{
    bool needs_both = false;

    if (strcmp(c->command, "sessions") == 0) {
        *method = "GET", *path = "/admin/sessions";
    } else if (strcmp(c->command, "spools") == 0) {
        *method = "GET", *path = "/admin/spools";
    } else if (strcmp(c->command, "close") == 0) {
        *method = "POST", *path = "/admin/close", needs_both = true;
    } else if (strcmp(c->command, "invalidate") == 0) {
        *method = "POST", *path = "/admin/invalidate", needs_both = true;
    } else if (strcmp(c->command, "revoke") == 0) {
        *method = "POST", *path = "/admin/revoke", needs_both = true;
    } else if (strcmp(c->command, "reload") == 0) {
        *method = "POST", *path = "/admin/reload";
    } else if (strcmp(c->command, "handover") == 0) {
        *method = "POST", *path = "/admin/handover";
    } else {
        return -1;
    }
    if (needs_both && (!c->domain || !c->identity)) {
        fprintf(stderr, "pskgw ctl: %s needs --domain and --identity\n", c->command);
        return -1;
    }
    return 0;
}

static int run(ctl_t *c)
{
    const char *method, *path;
    char q[1024];
    char full[1100];
    buf_t b = { NULL, 0 };
    json_t *root;
    long code;

    if (route(c, &method, &path) < 0 || query(c, q, sizeof(q)) < 0)
        return 2;
    snprintf(full, sizeof(full), "%s%s", path, q);
    code = call(c, method, full, &b);
    if (code == 0) {
        free(b.data);
        return 2;
    }
    root = b.data ? json_loads(b.data, 0, NULL) : NULL;
    if (code < 200 || code > 299) {
        fprintf(stderr, "pskgw ctl: %s: HTTP %ld: %s\n", c->command, code,
                root ? str(root, "error") : "no JSON answer");
    } else if (c->json) {
        fputs(b.data ? b.data : "{}\n", stdout);
    } else if (root) {
        print_table(c->command, root);
    }
    json_decref(root);
    free(b.data);
    return code >= 200 && code <= 299 ? 0 : 1;
}

int pskgw_ctl_main(int argc, char **argv)
{
    ctl_t c;
    int rc = 2;

    memset(&c, 0, sizeof(c));
    if (parse(argc, argv, &c) < 0) {
        usage(stderr);
        return 2;
    }
    if (c.token_file && read_token(&c) < 0)
        goto done;
    if (c.admin_url) {
        snprintf(c.base, sizeof(c.base), "%s", c.admin_url);
        for (size_t n = strlen(c.base); n > 0 && c.base[n - 1] == '/'; n--)
            c.base[n - 1] = '\0';
    } else if (from_config(&c) < 0) {
        goto done;
    }
    rc = run(&c);
done:
    if (c.token) {
        pskgw_wipe(c.token, c.token_len);
        free(c.token);
    }
    return rc;
}
