#include "simctl.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIM_GUARD_MS 60000 /* a guard against hanging only, never a statement about speed */

int sim_start(sim_t *s, const char *const *extra)
{
    const char *argv[40];
    size_t n = 0;
    char bin[4096];
    int fd;

    snprintf(bin, sizeof(bin), "%s", pskgw_test_bin("pskgw-sim"));
    argv[n++] = bin;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--api-key";
    argv[n++] = SIM_KEY;
    argv[n++] = "--api-secret";
    argv[n++] = SIM_SECRET;
    argv[n++] = "--seed";
    argv[n++] = SIM_SEED;
    argv[n++] = "--strict";
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    memset(s, 0, sizeof(*s));
    s->proc.pid = -1;
    s->proc.out_fd = -1;
    snprintf(s->err, sizeof(s->err), "%s/pskgw-sim-stderr-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (strlen(s->err) + 1 >= sizeof(s->err) || (fd = mkstemp(s->err)) < 0) {
        s->err[0] = '\0';
        return -1;
    }
    close(fd);
    if (pskgw_test_spawn_logged(&s->proc, (char *const *)argv, 1, s->err) < 0)
        goto fail;
    if (pskgw_test_read_line(&s->proc, s->url, sizeof(s->url), SIM_GUARD_MS) < 0 ||
        strncmp(s->url, "http", 4) != 0) {
        char why[256];
        /* shows what it said (a bad flag, a port it could not bind) */
        pskgw_test_judge_exit("pskgw-sim", pskgw_test_stop(&s->proc, SIGKILL, SIM_GUARD_MS), 0,
                              s->err, why, sizeof(why));
        goto fail;
    }
    return 0;
fail:
    unlink(s->err);
    s->err[0] = '\0';
    return -1;
}

void sim_stop(sim_t *s)
{
    char why[256];
    int rc;

    if (s->proc.pid <= 0)
        return;
    rc = pskgw_test_stop_checked(&s->proc, "pskgw-sim", 0, s->err, SIM_GUARD_MS, why, sizeof(why));
    s->proc.pid = -1;
    if (s->err[0] != '\0')
        unlink(s->err);
    s->err[0] = '\0';
    cr_expect_eq(rc, 0, "%s", why);
}

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t sink(char *p, size_t sz, size_t nm, void *u)
{
    buf_t *b = u;
    size_t n = sz * nm;
    char *d = realloc(b->data, b->len + n + 1);

    if (!d)
        return 0;
    memcpy(d + b->len, p, n);
    b->len += n;
    d[b->len] = '\0';
    b->data = d;
    return n;
}

static long request(const sim_t *s, const char *path, const char *json, buf_t *out)
{
    char url[256];
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    long status = -1;

    if (!e)
        return -1;
    snprintf(url, sizeof(url), "%s%s", s->url, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L); /* a guard: slow-handshake tests wait */
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    if (s->ca[0])
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca);
    if (json) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    }
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

long sim_post(const sim_t *s, const char *path, const char *json)
{
    buf_t b = { NULL, 0 };
    long st = request(s, path, json ? json : "{}", &b);

    free(b.data);
    return st;
}

json_t *sim_stats(const sim_t *s)
{
    buf_t b = { NULL, 0 };
    json_t *j = NULL;

    if (request(s, "/_sim/stats", NULL, &b) == 200 && b.data)
        j = json_loadb(b.data, b.len, 0, NULL);
    free(b.data);
    return j;
}

long sim_calls(const sim_t *s, const char *op)
{
    json_t *j = sim_stats(s);
    long v = -1;

    if (j) {
        json_t *x = json_object_get(json_object_get(j, "calls"), op);
        if (json_is_integer(x))
            v = (long)json_integer_value(x);
        json_decref(j);
    }
    return v;
}

long sim_stat(const sim_t *s, const char *obj, const char *key)
{
    json_t *j = sim_stats(s);
    long v = -1;

    if (j) {
        json_t *x = json_object_get(obj ? json_object_get(j, obj) : j, key);
        if (json_is_integer(x))
            v = (long)json_integer_value(x);
        json_decref(j);
    }
    return v;
}

long sim_status_count(const sim_t *s, int code)
{
    json_t *j = sim_stats(s);
    char k[8];
    long v = -1;

    snprintf(k, sizeof(k), "%d", code);
    if (j) {
        json_t *x = json_object_get(json_object_get(j, "status"), k);
        v = json_is_integer(x) ? (long)json_integer_value(x) : 0;
        json_decref(j);
    }
    return v;
}
