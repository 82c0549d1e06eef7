#define _GNU_SOURCE
/* Wipe-on-free observed: the release hook of common/wipe sees every block that
 * pskgw_free_secret(), pskgw_free_secret_str() and the wiping allocator give back to free(), and
 * checks that it is all zeros at that moment. jansson and libcurl are driven through the wiping
 * allocator as gateway/main.c installs it; every block they allocate must come back zeroed.
 *
 * Criterion runs each test in its own process, so each may install the allocators once. */
#include "common/wipe.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SECRET       "c2VjcmV0LWtleS1tYXRlcmlhbC0wMTIzNDU2Nzg5"
#define ANSWER       "{\"PSK\":\"" SECRET "\"}" /* what the peer answers */
#define MAX_RELEASES 65536

/* ---- the recorder behind the release hook ---- */

static struct {
    uintptr_t p;
    size_t n;
} releases[MAX_RELEASES];
static atomic_int n_released; /* blocks the hook saw */
static atomic_int n_dirty;    /* of those, blocks with a byte that was not zero */
static atomic_int n_alloc;    /* blocks handed out by the counting allocator below */

static void on_release(const void *p, size_t n)
{
    const unsigned char *b = p;
    int i = atomic_fetch_add(&n_released, 1);

    for (size_t k = 0; k < n; k++) {
        if (b[k]) {
            atomic_fetch_add(&n_dirty, 1);
            break;
        }
    }
    if (i < MAX_RELEASES) {
        releases[i].p = (uintptr_t)p;
        releases[i].n = n;
    }
}

/* Was the byte at q inside a block that the hook saw released? */
static bool was_released(const void *q)
{
    int n = atomic_load(&n_released);

    for (int i = 0; i < n && i < MAX_RELEASES; i++)
        if ((uintptr_t)q >= releases[i].p && (uintptr_t)q < releases[i].p + releases[i].n)
            return true;
    return false;
}

static void hook_on(void)
{
    pskgw_wipe_test_set_release_hook(on_release);
}

static void hook_off(void)
{
    pskgw_wipe_test_set_release_hook(NULL);
}

TestSuite(wipe_observed, .init = hook_on, .fini = hook_off);

/* ---- the wiping functions themselves ---- */

Test(wipe_observed, free_secret_releases_zeroed_bytes)
{
    unsigned char *k = malloc(48);

    cr_assert_not_null(k);
    memset(k, 0xA5, 48);
    pskgw_free_secret(k, 48);
    cr_assert_eq(atomic_load(&n_released), 1);
    cr_assert_eq(releases[0].p, (uintptr_t)k);
    cr_assert_eq(releases[0].n, 48);
    cr_assert_eq(atomic_load(&n_dirty), 0, "the secret was released unwiped");
    pskgw_free_secret(NULL, 48);
    cr_assert_eq(atomic_load(&n_released), 1, "NULL releases nothing");
}

Test(wipe_observed, free_secret_str_releases_the_whole_string_zeroed)
{
    char *s = strdup(SECRET);

    cr_assert_not_null(s);
    pskgw_free_secret_str(s);
    cr_assert_eq(atomic_load(&n_released), 1);
    cr_assert_eq(releases[0].p, (uintptr_t)s);
    cr_assert_eq(releases[0].n, sizeof(SECRET), "the whole allocation, NUL included");
    cr_assert_eq(atomic_load(&n_dirty), 0, "the secret was released unwiped");
}

Test(wipe_observed, wiping_free_releases_the_block_and_its_header_zeroed)
{
    unsigned char *p = pskgw_wiping_malloc(40);

    cr_assert_not_null(p);
    memset(p, 0x5A, 40);
    pskgw_wiping_free(p);
    cr_assert_eq(atomic_load(&n_released), 1);
    cr_assert_lt(releases[0].p, (uintptr_t)p, "the size header in front is released too");
    cr_assert_eq(releases[0].p + releases[0].n, (uintptr_t)p + 40, "up to the block's end");
    cr_assert_eq(atomic_load(&n_dirty), 0, "the block was released unwiped");
}

Test(wipe_observed, wiping_realloc_and_calloc_release_zeroed_blocks)
{
    char *s = pskgw_wiping_strdup(SECRET);
    char *old = s;
    unsigned char *z = pskgw_wiping_calloc(8, 8);

    cr_assert_not_null(s);
    cr_assert_not_null(z);
    s = pskgw_wiping_realloc(s, 4096);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, SECRET);
    cr_assert_eq(atomic_load(&n_released), 1, "growing released the old block");
    cr_assert(was_released(old));
    s = pskgw_wiping_realloc(s, 8);
    cr_assert_not_null(s);
    memset(z, 0xFF, 64);
    pskgw_wiping_free(s);
    pskgw_wiping_free(z);
    cr_assert_eq(atomic_load(&n_released), 4);
    cr_assert_eq(atomic_load(&n_dirty), 0, "a block was released unwiped");
}

/* ---- a counting front of the wiping allocator: every block out must come back wiped ---- */

static void *count_malloc(size_t n)
{
    void *p = pskgw_wiping_malloc(n);

    if (p)
        atomic_fetch_add(&n_alloc, 1);
    return p;
}

static void *count_realloc(void *q, size_t n)
{
    void *p = pskgw_wiping_realloc(q, n); /* a new block; the old one is released */

    if (p)
        atomic_fetch_add(&n_alloc, 1);
    return p;
}

static void *count_calloc(size_t nmemb, size_t size)
{
    void *p = pskgw_wiping_calloc(nmemb, size);

    if (p)
        atomic_fetch_add(&n_alloc, 1);
    return p;
}

static char *count_strdup(const char *s)
{
    char *p = pskgw_wiping_strdup(s);

    if (p)
        atomic_fetch_add(&n_alloc, 1);
    return p;
}

Test(wipe_observed, jansson_releases_every_block_zeroed)
{
    json_t *root;
    const char *psk;
    char *dump;

    json_set_alloc_funcs(count_malloc, pskgw_wiping_free);
    root = json_loads("{\"DeviceID\":\"X\",\"PSK\":\"" SECRET "\",\"AuthToken\":\"" SECRET "\"}", 0,
                      NULL);
    cr_assert_not_null(root);
    psk = json_string_value(json_object_get(root, "PSK"));
    cr_assert_str_eq(psk, SECRET);
    dump = json_dumps(root, JSON_COMPACT);
    cr_assert_not_null(dump);
    cr_assert_not_null(strstr(dump, SECRET));
    pskgw_wiping_free(dump); /* jansson's output comes from its allocator */
    json_decref(root);

    cr_assert_gt(atomic_load(&n_alloc), 3);
    cr_assert_eq(atomic_load(&n_released), atomic_load(&n_alloc),
                 "%d blocks allocated, %d released through the wiping free", atomic_load(&n_alloc),
                 atomic_load(&n_released));
    cr_assert_eq(atomic_load(&n_dirty), 0, "%d blocks released unwiped", atomic_load(&n_dirty));
    cr_assert(was_released(psk), "the block that held the PSK string");
    cr_assert(was_released(dump), "the serialised document");
}

/* ---- libcurl: one real POST over loopback, the secret in a header, the body and the answer ---- */

typedef struct {
    int lfd; /* listening socket (port 0, kept open) */
    int cfd; /* accepted connection, or -1 */
    char req[8192];
    size_t req_len;
    bool answered;
    char body[512]; /* what curl received */
    size_t body_len;
} http_peer_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    http_peer_t *h = arg;
    size_t n = size * nmemb;

    if (n > sizeof(h->body) - 1 - h->body_len)
        return 0;
    memcpy(h->body + h->body_len, data, n);
    h->body_len += n;
    h->body[h->body_len] = '\0';
    return n;
}

static uint16_t peer_listen(http_peer_t *h)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);

    memset(h, 0, sizeof(*h));
    h->cfd = -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_geq(h->lfd, 0);
    cr_assert_eq(bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(h->lfd, 4), 0);
    cr_assert_eq(getsockname(h->lfd, (struct sockaddr *)&sa, &len), 0);
    return ntohs(sa.sin_port);
}

/* One step of the peer: accept, read the request up to the end of its body, answer once. */
static void peer_step(http_peer_t *h, const char *body_end)
{
    static const char body[] = ANSWER;
    char answer[256];
    int len = snprintf(answer, sizeof(answer),
                       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       sizeof(body) - 1, body);
    ssize_t n;

    if (h->cfd < 0) {
        h->cfd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (h->cfd < 0)
            return;
    }
    while (!h->answered &&
           (n = read(h->cfd, h->req + h->req_len, sizeof(h->req) - 1 - h->req_len)) > 0) {
        h->req_len += (size_t)n;
        h->req[h->req_len] = '\0';
    }
    if (!h->answered && strstr(h->req, body_end)) {
        cr_assert_eq(write(h->cfd, answer, (size_t)len), (ssize_t)len);
        h->answered = true;
    }
}

Test(wipe_observed, libcurl_releases_every_block_zeroed)
{
    static const char post[] = "{\"APISecret\":\"" SECRET "\"}";
    http_peer_t h;
    uint16_t port = peer_listen(&h);
    char url[64];
    CURL *e;
    CURLM *m;
    struct curl_slist *hdrs;
    int running = 1;
    CURLMsg *msg;
    int left;

    cr_assert_eq(curl_global_init_mem(CURL_GLOBAL_DEFAULT, count_malloc, pskgw_wiping_free,
                                      count_realloc, count_strdup, count_calloc),
                 CURLE_OK);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/GetPSK", (unsigned)port);
    e = curl_easy_init();
    m = curl_multi_init();
    cr_assert(e && m);
    hdrs = curl_slist_append(NULL, "Authorization: Bearer " SECRET);
    cr_assert_not_null(hdrs);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, post);
    curl_easy_setopt(e, CURLOPT_USERPWD, "key-id:" SECRET);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L); /* a guard against hanging only */
    cr_assert_eq(curl_multi_add_handle(m, e), CURLM_OK);
    while (running) {
        struct curl_waitfd w[2] = { { h.lfd, CURL_WAIT_POLLIN, 0 },
                                    { h.cfd, CURL_WAIT_POLLIN, 0 } };

        cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);
        peer_step(&h, "\"}");
        if (running)
            cr_assert_eq(curl_multi_poll(m, w, h.cfd >= 0 ? 2 : 1, 200, NULL), CURLM_OK);
    }
    msg = curl_multi_info_read(m, &left);
    cr_assert_not_null(msg);
    cr_assert_eq(msg->data.result, CURLE_OK, "%s", curl_easy_strerror(msg->data.result));
    cr_assert_not_null(strstr(h.req, "Authorization: Bearer " SECRET), "%s", h.req);
    cr_assert_not_null(strstr(h.req, post), "%s", h.req);
    cr_assert_str_eq(h.body, ANSWER);
    curl_multi_remove_handle(m, e);
    curl_easy_cleanup(e);
    curl_multi_cleanup(m);
    curl_slist_free_all(hdrs);
    curl_global_cleanup();
    close(h.cfd);
    close(h.lfd);

    cr_assert_gt(atomic_load(&n_alloc), 10);
    cr_assert_eq(atomic_load(&n_released), atomic_load(&n_alloc),
                 "%d blocks allocated, %d released through the wiping free", atomic_load(&n_alloc),
                 atomic_load(&n_released));
    cr_assert_eq(atomic_load(&n_dirty), 0, "%d blocks released unwiped", atomic_load(&n_dirty));
}
