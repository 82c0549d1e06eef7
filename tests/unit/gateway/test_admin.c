/* The admin endpoint over real HTTP on loopback: published text, readiness and liveness,
 * 404/405, and a port already in use. */
#include "common/err.h"
#include "gateway/admin.h"

#include <criterion/criterion.h>
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
