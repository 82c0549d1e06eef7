/* The admin endpoint over real HTTP on loopback: published text, readiness and liveness,
 * 404/405, and a port already in use. */
#include "common/err.h"
#include "common/secmem.h"
#include "gateway/admin.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

struct body {
    char buf[4096];
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t len = size * n;

    if (len > sizeof(b->buf) - 1 - b->len)
        len = sizeof(b->buf) - 1 - b->len;
    memcpy(b->buf + b->len, p, len);
    b->len += len;
    b->buf[b->len] = '\0';
    return size * n;
}

static long get(uint16_t port, const char *path, const char *method, struct body *b)
{
    char url[128];
    CURL *c = curl_easy_init();
    long code = 0;

    cr_assert_not_null(c);
    memset(b, 0, sizeof(*b));
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    if (method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

Test(admin, serves_published_metrics_and_readiness)
{
    pskgw_admin_t *a = NULL;
    struct body b;
    const char *text = "# TYPE pskgw_up gauge\npskgw_up 1\n";
    const char *bad = "{\"ready\":false,\"failing\":[{\"part\":\"upstream\"}]}";

    cr_assert_eq(pskgw_admin_start("127.0.0.1", 0, &a), 0);
    cr_assert_neq(pskgw_admin_port(a), 0);
    cr_assert_eq(get(pskgw_admin_port(a), "/metrics", NULL, &b), 200);
    cr_assert_eq(b.len, 0, "nothing published yet");
    cr_assert_eq(get(pskgw_admin_port(a), "/ready", NULL, &b), 503, "not ready before a publish");
    cr_assert(strstr(b.buf, "\"starting\""), "%s", b.buf);
    cr_assert_eq(pskgw_admin_publish(a, text, strlen(text), true, "{\"ready\":true}"), 0);
    cr_assert_eq(get(pskgw_admin_port(a), "/metrics", NULL, &b), 200);
    cr_assert_str_eq(b.buf, text);
    cr_assert_eq(get(pskgw_admin_port(a), "/ready", NULL, &b), 200);
    cr_assert_str_eq(b.buf, "{\"ready\":true}");
    cr_assert_eq(pskgw_admin_publish(a, text, strlen(text), false, bad), 0);
    cr_assert_eq(get(pskgw_admin_port(a), "/ready", NULL, &b), 503);
    cr_assert_str_eq(b.buf, bad, "the published body names the failing part");
    /* liveness ignores readiness */
    cr_assert_eq(get(pskgw_admin_port(a), "/health", NULL, &b), 200);
    cr_assert_str_eq(b.buf, "ok\n");
    cr_assert_eq(get(pskgw_admin_port(a), "/healthz", NULL, &b), 200, "alias of /health");
    cr_assert_eq(get(pskgw_admin_port(a), "/nope", NULL, &b), 404);
    cr_assert_eq(get(pskgw_admin_port(a), "/metrics", "DELETE", &b), 405);
    pskgw_admin_free(a);
}

/* /health turns 503 when the loop stops beating and 200 again at the next beat. The stall
 * limit is 1 ms: the wait below is for the event (a 503), its deadline only a guard. */
Test(admin, health_reports_a_stalled_loop)
{
    pskgw_admin_t *a = NULL;
    struct body b;
    long code = 0;

    cr_assert_eq(pskgw_admin_start("127.0.0.1", 0, &a), 0);
    cr_assert_eq(get(pskgw_admin_port(a), "/health", NULL, &b), 200, "fresh: within the limit");
    pskgw_admin_set_stall_ms(a, 1);
    for (int i = 0; i < 500 && code != 503; i++)
        code = get(pskgw_admin_port(a), "/health", NULL, &b);
    cr_assert_eq(code, 503);
    cr_assert(strstr(b.buf, "loop stalled"), "%s", b.buf);
    pskgw_admin_set_stall_ms(a, PSKGW_ADMIN_STALL_MS);
    pskgw_admin_beat(a);
    cr_assert_eq(get(pskgw_admin_port(a), "/health", NULL, &b), 200);
    pskgw_admin_free(a);
}

Test(admin, port_in_use_and_bad_address)
{
    pskgw_admin_t *a = NULL;
    pskgw_admin_t *b = NULL;

    cr_assert_eq(pskgw_admin_start("127.0.0.1", 0, &a), 0);
    cr_assert_eq(pskgw_admin_start("127.0.0.1", pskgw_admin_port(a), &b), PSKGW_EEXISTS);
    cr_assert_null(b);
    cr_assert_eq(pskgw_admin_start("localhost", 0, &b), PSKGW_EINVAL);
    cr_assert_null(b);
    pskgw_admin_free(a);
    pskgw_admin_free(NULL);
}

Test(admin, token_comparison)
{
    cr_assert(pskgw_admin_token_ok("s3cret", 6, "s3cret"));
    cr_assert_not(pskgw_admin_token_ok("s3cret", 6, "s3cres"));
    cr_assert_not(pskgw_admin_token_ok("s3cret", 6, "s3cre"));
    cr_assert_not(pskgw_admin_token_ok("s3cret", 6, "s3cret2"));
    cr_assert_not(pskgw_admin_token_ok("s3cret", 6, ""));
    cr_assert_not(pskgw_admin_token_ok("s3c\0et", 6, "s3c"), "a NUL in the token is no end");
}

/* A route served by "the loop" (this thread) while curl asks from another thread. */
struct served {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int wakes;
};

static void on_wake(void *arg)
{
    struct served *s = arg;

    pthread_mutex_lock(&s->lock);
    s->wakes++;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void answer(void *arg, pskgw_admin_req_t *req)
{
    char json[256];

    (void)arg;
    snprintf(json, sizeof(json), "{\"m\":\"%s\",\"p\":\"%s\",\"id\":\"%s\",\"none\":%d}",
             pskgw_admin_req_method(req), pskgw_admin_req_path(req),
             pskgw_admin_req_arg(req, "identity"), pskgw_admin_req_arg(req, "x") == NULL);
    cr_assert(strncmp(pskgw_admin_req_peer(req), "127.0.0.1:", 10) == 0);
    pskgw_admin_reply(req, 200, json);
}

struct call {
    uint16_t port;
    const char *auth;
    long code;
    struct body b;
};

static void *call_thread(void *arg)
{
    struct call *c = arg;
    char url[128];
    struct curl_slist *h = NULL;
    CURL *e = curl_easy_init();

    snprintf(url, sizeof(url), "http://127.0.0.1:%u/admin/x?identity=AB01", (unsigned)c->port);
    if (c->auth)
        h = curl_slist_append(NULL, c->auth);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
    if (curl_easy_perform(e) == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->code);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return NULL;
}

Test(admin, routes_need_the_token_and_are_served_by_the_loop)
{
    struct served s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
    pskgw_admin_opts_t o = { "tok", 3, on_wake, &s };
    pskgw_admin_t *a = NULL;
    struct call c;
    pthread_t t;

    cr_assert_eq(pskgw_admin_start_opts("127.0.0.1", 0, &o, &a), 0);
    memset(&c, 0, sizeof(c));
    c.port = pskgw_admin_port(a);
    c.auth = "Authorization: Bearer tox";
    call_thread(&c);
    cr_assert_eq(c.code, 401);
    cr_assert_eq(s.wakes, 0, "a refused request never reaches the loop");

    memset(&c, 0, sizeof(c));
    c.port = pskgw_admin_port(a);
    c.auth = "Authorization: Bearer tok";
    cr_assert_eq(pthread_create(&t, NULL, call_thread, &c), 0);
    pthread_mutex_lock(&s.lock);
    while (s.wakes == 0)
        pthread_cond_wait(&s.cond, &s.lock);
    pthread_mutex_unlock(&s.lock);
    pskgw_admin_serve(a, answer, NULL);
    pthread_join(t, NULL);
    cr_assert_eq(c.code, 200);
    cr_assert_str_eq(c.b.buf, "{\"m\":\"POST\",\"p\":\"/admin/x\",\"id\":\"AB01\",\"none\":1}");
    pskgw_admin_free(a);
}

static size_t secmem_blocks(void)
{
    pskgw_secmem_stats_t st;

    pskgw_secmem_stats(&st);
    return st.blocks_in_use;
}

/* The token is a secret like the keys: held in don't-dump memory (common/secmem), one block,
 * given back (wiped) when it is replaced, removed and freed. */
Test(admin, token_held_in_dontdump_memory)
{
    pskgw_admin_opts_t o = { "tok", 3, NULL, NULL };
    pskgw_admin_t *a = NULL;
    size_t base = secmem_blocks();

    cr_assert_eq(pskgw_admin_start_opts("127.0.0.1", 0, &o, &a), 0);
    cr_assert_eq(secmem_blocks(), base + 1, "the token is in the secret arena");
    cr_assert_eq(pskgw_admin_set_token(a, "other-token", 11), 0);
    cr_assert_eq(secmem_blocks(), base + 1, "the replaced token went back to the arena");
    cr_assert_eq(pskgw_admin_set_token(a, NULL, 0), 0);
    cr_assert_eq(secmem_blocks(), base);
    cr_assert_eq(pskgw_admin_set_token(a, "tok", 3), 0);
    pskgw_admin_free(a);
    cr_assert_eq(secmem_blocks(), base, "freed with the endpoint");
}

Test(admin, no_wake_no_routes)
{
    pskgw_admin_t *a = NULL;
    struct body b;

    cr_assert_eq(pskgw_admin_start("127.0.0.1", 0, &a), 0);
    cr_assert_eq(get(pskgw_admin_port(a), "/admin/sessions", NULL, &b), 503);
    cr_assert_eq(get(pskgw_admin_port(a), "/admin/sessions", "DELETE", &b), 405);
    pskgw_admin_free(a);
}
