/* pskgw_handover: see handover.h. */
#include "gateway/handover.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"
#include "gateway/statefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct entry {
    struct entry *next;
    char *domain, *listener, *peer;
    uint8_t *rec;
    size_t len;
} entry_t;

static struct {
    bool enabled, armed;
    char dir[4096];
    char path[4200];
    uint8_t key[PSKGW_STATEFILE_KEY_LEN];
    entry_t *loaded; /* from the previous process, until taken */
    pskgw_statefile_t out;
    bool out_started;
} H;

static void entry_free(entry_t *e)
{
    pskgw_wipe(e->rec, e->len);
    free(e->rec);
    free(e->domain);
    free(e->listener);
    free(e->peer);
    free(e);
}

static void on_loaded(void *arg, const char *domain, const char *listener, const char *peer,
                      const uint8_t *rec, size_t len)
{
    entry_t *e = calloc(1, sizeof(*e));

    (void)arg;
    if (e == NULL)
        return;
    e->domain = strdup(domain);
    e->listener = strdup(listener);
    e->peer = strdup(peer);
    e->rec = malloc(len);
    if (e->domain == NULL || e->listener == NULL || e->peer == NULL || e->rec == NULL) {
        free(e->rec);
        e->rec = NULL;
        entry_free(e);
        return;
    }
    memcpy(e->rec, rec, len);
    e->len = len;
    e->next = H.loaded;
    H.loaded = e;
}

static const char *pick_dir(const char *config_dir)
{
    const char *env = getenv("STATE_DIRECTORY");

    if (env != NULL && env[0] != '\0') {
        size_t n = strcspn(env, ":");

        if (n < sizeof(H.dir)) {
            memcpy(H.dir, env, n);
            H.dir[n] = '\0';
            return H.dir;
        }
    }
    (void)snprintf(H.dir, sizeof(H.dir), "%s", config_dir ? config_dir : "/var/lib/pskgw");
    return H.dir;
}

int pskgw_handover_init(const char *config_dir, const uint8_t *kek, int worker)
{
    const char *why = NULL;
    struct stat st;
    int rc;

    memset(&H, 0, sizeof(H));
    (void)pick_dir(config_dir);
    if (stat(H.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        PSKGW_INFO("state directory %s not found: sessions end at a stop (no hand-over)", H.dir);
        return 0;
    }
    /* Whoever can replace files in it could plant a key of their own and sessions under it. */
    if ((st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 022) != 0) {
        PSKGW_WARN("state directory %s is another user's or writable by group or others: "
                   "sessions end at a stop (no hand-over)",
                   H.dir);
        return 0;
    }
    if (pskgw_statefile_key(H.dir, kek, H.key, &why) < 0) {
        PSKGW_WARN("state directory %s: %s: sessions end at a stop (no hand-over)", H.dir, why);
        return 0;
    }
    if (worker >= 0)
        (void)snprintf(H.path, sizeof(H.path), "%s/sessions-%d.state", H.dir, worker);
    else
        (void)snprintf(H.path, sizeof(H.path), "%s/sessions.state", H.dir);
    H.enabled = true;
    rc = pskgw_statefile_load(H.path, H.key, on_loaded, NULL, &why);
    if (rc >= 0)
        PSKGW_NOTICE("state file %s: %d session%s handed over from the previous process", H.path,
                     rc, rc == 1 ? "" : "s");
    else if (rc != PSKGW_ENOTFOUND)
        PSKGW_ERR("state file %s refused: %s; its sessions will handshake again", H.path, why);
    return 0;
}

bool pskgw_handover_enabled(void)
{
    return H.enabled;
}

void pskgw_handover_arm(void)
{
    if (H.enabled && !H.armed) {
        H.armed = true;
        H.out_started = pskgw_statefile_begin(&H.out, H.key) == 0;
    }
}

bool pskgw_handover_armed(void)
{
    return H.armed && H.out_started;
}

int pskgw_handover_put(const char *domain, const char *listener, const char *peer,
                       const uint8_t *rec, size_t len)
{
    if (!pskgw_handover_armed())
        return PSKGW_ECLOSED;
    return pskgw_statefile_add(&H.out, H.key, domain, listener, peer, rec, len);
}

size_t pskgw_handover_take(const char *domain, const char *listener, pskgw_handover_take_cb cb,
                           void *arg)
{
    entry_t **pp = &H.loaded;
    size_t n = 0;

    while (*pp != NULL) {
        entry_t *e = *pp;

        if (strcmp(e->domain, domain) == 0 && strcmp(e->listener, listener) == 0) {
            *pp = e->next;
            cb(arg, e->peer, e->rec, e->len);
            entry_free(e);
            n++;
        } else {
            pp = &e->next;
        }
    }
    return n;
}

void pskgw_handover_done(void)
{
    size_t n = 0;

    while (H.loaded != NULL) {
        entry_t *e = H.loaded;

        H.loaded = e->next;
        entry_free(e);
        n++;
    }
    if (n > 0)
        PSKGW_NOTICE("state file: %zu session%s of listeners no longer configured dropped", n,
                     n == 1 ? "" : "s");
}

void pskgw_handover_save(void)
{
    const char *why = NULL;

    pskgw_handover_done();
    if (pskgw_handover_armed() && H.out.entries > 0) {
        if (pskgw_statefile_save(&H.out, H.path, &why) == 0)
            PSKGW_NOTICE("state file %s: %zu session%s handed over to the next process", H.path,
                         H.out.entries, H.out.entries == 1 ? "" : "s");
        else
            PSKGW_ERR("state file %s: %s; sessions will handshake again", H.path, why);
    }
    pskgw_statefile_release(&H.out);
    pskgw_wipe(H.key, sizeof(H.key));
    H.armed = H.out_started = H.enabled = false;
}
