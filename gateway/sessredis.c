/* pskgw_sessredis: see sessredis.h. */
#include "gateway/sessredis.h"

#include "common/err.h"
#include "gateway/seal.h"
#include "common/list.h"
#include "common/log.h"
#include "common/wipe.h"
#include "redisconn/redisconn.h"

#include <hiredis/hiredis.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

_Static_assert(PSKGW_SESSREDIS_KEY_LEN == PSKGW_SEAL_KEY_LEN, "one key length for pskgw_seal");
#define IV_LEN   PSKGW_SEAL_IV_LEN
#define TAG_LEN  PSKGW_SEAL_TAG_LEN
#define AAD_MAX  512
#define KEY_CAP  (AAD_MAX + 32)
#define REC_MAX  (1u << 16)
#define LEASE_PX 24

struct pskgw_sessredis {
    pskgw_redisconn_t *conn;
    char *domain;
    char *node_id;
    uint32_t lease_ms;
    uint8_t key[PSKGW_SESSREDIS_KEY_LEN];
    pskgw_list_t reqs; /* lookups in flight */
    pskgw_sessredis_stats_t st;
    bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
};

struct pskgw_sessredis_req {
    pskgw_list_t link;
    pskgw_sessredis_t *r;
    pskgw_redisconn_cmd_t *cmd; /* the command in flight */
    pskgw_sessredis_cb cb;
    void *arg;
    bool claim; /* a claim (pskgw_sessredis_claim), not a lookup */
    char listener[AAD_MAX];
    char name[PSKGW_SESSREDIS_NAME_MAX + 1];
    /* After the GET: the opened value, until the lease answers. */
    uint8_t *plain;
    size_t plain_len;
    char names[2 * (PSKGW_SESSREDIS_NAME_MAX + 1)];
    const char *peer, *cid_name;
    const uint8_t *rec;
    size_t rec_len;
};

/* ---- sealing ------------------------------------------------------------------------------ */

/* domain NUL listener NUL name; 0 when it does not fit. */
static size_t make_aad(uint8_t *aad, const char *d, const char *l, const char *n)
{
    size_t a = strlen(d) + 1, b = strlen(l) + 1, c = strlen(n);

    if (a + b + c > AAD_MAX)
        return 0;
    memcpy(aad, d, a);
    memcpy(aad + a, l, b);
    memcpy(aad + a + b, n, c);
    return a + b + c;
}

int pskgw_sessredis_seal(const uint8_t key[PSKGW_SESSREDIS_KEY_LEN], const char *domain,
                         const char *listener, const char *name, const char *peer,
                         const char *cid_name, const uint8_t *rec, size_t len, uint8_t **out,
                         size_t *out_len)
{
    uint8_t aad[AAD_MAX], *buf, *pt;
    size_t aad_len, pl = strlen(peer), cl = cid_name != NULL ? strlen(cid_name) : 0, ptl;
    int rc;

    if (rec == NULL || len == 0 || len > REC_MAX || pl == 0 || pl > PSKGW_SESSREDIS_NAME_MAX ||
        cl > PSKGW_SESSREDIS_NAME_MAX || (aad_len = make_aad(aad, domain, listener, name)) == 0)
        return PSKGW_EINVAL;
    ptl = 2 + pl + cl + len;
    buf = malloc(IV_LEN + ptl + TAG_LEN);
    pt = malloc(ptl);
    rc = PSKGW_ENOMEM;
    if (buf == NULL || pt == NULL)
        goto fail;
    pt[0] = (uint8_t)pl;
    memcpy(pt + 1, peer, pl);
    pt[1 + pl] = (uint8_t)cl;
    if (cl > 0)
        memcpy(pt + 2 + pl, cid_name, cl);
    memcpy(pt + 2 + pl + cl, rec, len);
    rc = pskgw_seal_random(buf, IV_LEN);
    if (rc == 0)
        rc =
            pskgw_seal_gcm(true, key, buf, pt, ptl, buf + IV_LEN, buf + IV_LEN + ptl, aad, aad_len);
    if (rc < 0)
        goto fail;
    pskgw_wipe(pt, ptl);
    free(pt);
    *out = buf;
    *out_len = IV_LEN + ptl + TAG_LEN;
    return 0;
fail:
    if (pt != NULL)
        pskgw_wipe(pt, ptl);
    free(pt);
    free(buf);
    return rc;
}

void pskgw_sessredis_plain_free(uint8_t *plain, size_t len)
{
    if (plain == NULL)
        return;
    pskgw_wipe(plain, len);
    free(plain);
}

/* The two names inside an opened value; name must be one of them. */
static int split_plain(const uint8_t *pt, size_t ptl, const char *name, char *names,
                       const char **peer, const char **cid_name, const uint8_t **rec,
                       size_t *rec_len)
{
    size_t pl, cl;

    if (ptl < 1 || (pl = pt[0]) == 0 || pl > PSKGW_SESSREDIS_NAME_MAX || ptl < 2 + pl ||
        (cl = pt[1 + pl]) > PSKGW_SESSREDIS_NAME_MAX || ptl <= 2 + pl + cl ||
        memchr(pt + 1, '\0', pl) != NULL || memchr(pt + 2 + pl, '\0', cl) != NULL)
        return PSKGW_EPARSE;
    memcpy(names, pt + 1, pl);
    names[pl] = '\0';
    memcpy(names + pl + 1, pt + 2 + pl, cl);
    names[pl + 1 + cl] = '\0';
    if (strcmp(names, name) != 0 && (cl == 0 || strcmp(names + pl + 1, name) != 0))
        return PSKGW_EPARSE;
    *peer = names;
    *cid_name = cl > 0 ? names + pl + 1 : NULL;
    *rec = pt + 2 + pl + cl;
    *rec_len = ptl - 2 - pl - cl;
    return 0;
}

int pskgw_sessredis_open(const uint8_t key[PSKGW_SESSREDIS_KEY_LEN], const char *domain,
                         const char *listener, const char *name, const uint8_t *sealed,
                         size_t sealed_len, uint8_t **plain, size_t *plain_len,
                         char out_names[2 * (PSKGW_SESSREDIS_NAME_MAX + 1)], const char **peer,
                         const char **cid_name, const uint8_t **rec, size_t *rec_len)
{
    uint8_t aad[AAD_MAX], *pt;
    size_t aad_len, ptl;
    int rc;

    if ((aad_len = make_aad(aad, domain, listener, name)) == 0)
        return PSKGW_EINVAL;
    if (sealed == NULL || sealed_len <= IV_LEN + TAG_LEN + 2 ||
        sealed_len > IV_LEN + TAG_LEN + REC_MAX + 2 + 2 * PSKGW_SESSREDIS_NAME_MAX)
        return PSKGW_EPARSE;
    ptl = sealed_len - IV_LEN - TAG_LEN;
    pt = malloc(ptl);
    if (pt == NULL)
        return PSKGW_ENOMEM;
    rc = pskgw_seal_gcm(false, key, sealed, sealed + IV_LEN, ptl, pt,
                        (uint8_t *)(uintptr_t)(sealed + IV_LEN + ptl), aad, aad_len);
    if (rc == PSKGW_EBADMAC)
        rc = PSKGW_EPARSE;
    if (rc == 0)
        rc = split_plain(pt, ptl, name, out_names, peer, cid_name, rec, rec_len);
    if (rc < 0) {
        pskgw_sessredis_plain_free(pt, ptl);
        return rc;
    }
    *plain = pt;
    *plain_len = ptl;
    return 0;
}

int pskgw_sessredis_cid_name(const uint8_t *cid, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";

    if (cid == NULL || len == 0 || cap < 4 + 2 * len + 1 || 4 + 2 * len > PSKGW_SESSREDIS_NAME_MAX)
        return PSKGW_EINVAL;
    memcpy(out, "cid:", 4);
    for (size_t i = 0; i < len; i++) {
        out[4 + 2 * i] = hex[cid[i] >> 4];
        out[5 + 2 * i] = hex[cid[i] & 15];
    }
    out[4 + 2 * len] = '\0';
    return (int)(4 + 2 * len);
}

/* ---- connection ---------------------------------------------------------------------------- */

static int key_of(char *out, size_t cap, const char *kind, const pskgw_sessredis_t *r,
                  const char *listener, const char *name)
{
    int n = snprintf(out, cap, "pskgw:%s:%s:%s:%s", kind, r->domain, listener, name);

    return n > 0 && (size_t)n < cap ? n : PSKGW_EINVAL;
}

int pskgw_sessredis_new(uv_loop_t *loop, const pskgw_sessredis_opts_t *opts,
                        pskgw_sessredis_t **out)
{
    pskgw_redisconn_opts_t co;
    pskgw_sessredis_t *r;
    int rc;

    if (loop == NULL || opts == NULL || out == NULL || opts->domain == NULL ||
        opts->node_id == NULL || opts->key == NULL || opts->lease_ms == 0 ||
        (opts->host == NULL && opts->sentinels == NULL))
        return PSKGW_EINVAL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return PSKGW_ENOMEM;
    pskgw_list_init(&r->reqs);
    r->domain = strdup(opts->domain);
    r->node_id = strdup(opts->node_id);
    r->lease_ms = opts->lease_ms;
    memcpy(r->key, opts->key, sizeof(r->key));
    memset(&co, 0, sizeof(co));
    co.host = opts->host;
    co.port = opts->port;
    co.sentinels = opts->sentinels;
    co.master_name = opts->master_name;
    co.password = opts->password;
    co.db = opts->db;
    co.timeout_ms = opts->timeout_ms ? opts->timeout_ms : 1000;
    co.backoff_min_ms = 100;
    co.backoff_max_ms = 10000;
    co.log_name = "sessions";
    co.max_in_flight = opts->max_in_flight ? opts->max_in_flight : PSKGW_SESSREDIS_IN_FLIGHT;
    co.max_held =
        (opts->max_held ? opts->max_held : PSKGW_SESSREDIS_HELD) + PSKGW_SESSREDIS_RESERVE;
    rc = PSKGW_ENOMEM;
    if (r->domain == NULL || r->node_id == NULL ||
        (rc = pskgw_redisconn_new(loop, &co, &r->conn)) < 0) {
        pskgw_wipe(r->key, sizeof(r->key));
        free(r->domain);
        free(r->node_id);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* Fire-and-forget commands (SET of a store, DEL of a taken record): counted when it matters. */
static void store_done(void *arg, int status, const redisReply *reply)
{
    pskgw_sessredis_t *r = arg;

    if (status == 0 && reply->type == REDIS_REPLY_STATUS)
        r->st.stores++;
    else
        r->st.store_errors++;
}

static void del_done(void *arg, int status, const redisReply *reply)
{
    (void)arg;
    (void)status;
    (void)reply; /* a record not deleted expires; the lease still keeps other nodes out */
}

static int set_px(pskgw_sessredis_t *r, const char *key, size_t key_len, const uint8_t *v,
                  size_t vlen, uint64_t px_ms)
{
    char px[24];
    int n = snprintf(px, sizeof(px), "%llu", (unsigned long long)px_ms);
    const char *argv[5] = { "SET", key, (const char *)v, "PX", px };
    size_t lens[5] = { 3, key_len, vlen, 2, (size_t)n };

    return pskgw_redisconn_command(r->conn, 5, argv, lens, store_done, r, NULL);
}

/* One name of the session: sealed under that name, stored under its key. */
static int store_one(pskgw_sessredis_t *r, const char *listener, const char *name, const char *peer,
                     const char *cid_name, const uint8_t *rec, size_t len, uint64_t ttl_ms,
                     uint8_t *stamp)
{
    char key[KEY_CAP];
    uint8_t *sealed = NULL;
    size_t slen = 0;
    int kl = key_of(key, sizeof(key), "sess", r, listener, name);
    int rc = kl < 0 ? kl
                    : pskgw_sessredis_seal(r->key, r->domain, listener, name, peer, cid_name, rec,
                                           len, &sealed, &slen);

    if (rc == 0) {
        if (stamp != NULL) /* the value's first bytes: its random IV */
            memcpy(stamp, sealed, PSKGW_SESSREDIS_STAMP_LEN);
        rc = set_px(r, key, (size_t)kl, sealed, slen, ttl_ms);
        pskgw_wipe(sealed, slen);
        free(sealed);
    }
    if (rc < 0)
        r->st.store_errors++;
    return rc;
}

int pskgw_sessredis_store(pskgw_sessredis_t *r, const char *listener, const char *peer,
                          const uint8_t *cid, size_t cid_len, const uint8_t *rec, size_t len,
                          uint64_t ttl_ms, uint8_t stamp[PSKGW_SESSREDIS_STAMP_LEN])
{
    char cname[PSKGW_SESSREDIS_NAME_MAX + 1];
    int rc;

    if (r == NULL || r->closing || listener == NULL || peer == NULL || ttl_ms == 0)
        return PSKGW_EINVAL;
    if (!pskgw_redisconn_connected(r->conn)) {
        r->st.store_errors++;
        return PSKGW_EUNAVAIL;
    }
    if (cid != NULL && cid_len > 0 &&
        pskgw_sessredis_cid_name(cid, cid_len, cname, sizeof(cname)) < 0)
        return PSKGW_EINVAL;
    /* Both names or none, and the reserve left to lookups, leases and DELs. */
    if (pskgw_redisconn_room(r->conn) <
        PSKGW_SESSREDIS_RESERVE + (cid != NULL && cid_len > 0 ? 2u : 1u)) {
        r->st.store_errors++;
        r->st.store_dropped++;
        return PSKGW_EBUSY;
    }
    rc = store_one(r, listener, peer, peer, cid_len > 0 ? cname : NULL, rec, len, ttl_ms, stamp);
    if (rc == 0 && cid != NULL && cid_len > 0)
        rc = store_one(r, listener, cname, peer, cname, rec, len, ttl_ms, NULL);
    return rc;
}

static int del_names(pskgw_sessredis_t *r, const char *listener, const char *peer,
                     const char *cid_name)
{
    char k1[KEY_CAP], k2[KEY_CAP];
    int l1 = key_of(k1, sizeof(k1), "sess", r, listener, peer);
    int l2 =
        cid_name != NULL ? key_of(k2, sizeof(k2), "sess", r, listener, cid_name) : PSKGW_EINVAL;
    const char *argv[3] = { "DEL", k1, k2 };
    size_t lens[3] = { 3, (size_t)l1, (size_t)l2 };

    if (l1 < 0)
        return l1;
    return pskgw_redisconn_command(r->conn, l2 < 0 ? 2 : 3, argv, lens, del_done, r, NULL);
}

/* A forget by CID: the session may have been stored under another address than the one it
 * thawed from (a CID session moves). The CID's record names that address: it is read before the
 * DEL of both names goes out (one connection, in order) and its address key DELeted too. */
typedef struct {
    pskgw_sessredis_t *r;
    char peer[PSKGW_SESSREDIS_NAME_MAX + 1];  /* the address the forget DELetes anyway */
    char cname[PSKGW_SESSREDIS_NAME_MAX + 1]; /* the CID's name */
    char listener[];
} moved_t;

static void moved_got(void *arg, int status, const redisReply *reply)
{
    moved_t *m = arg;
    pskgw_sessredis_t *r = m->r;
    char names[2 * (PSKGW_SESSREDIS_NAME_MAX + 1)];
    const char *peer = NULL, *cname = NULL;
    const uint8_t *rec;
    uint8_t *plain = NULL;
    size_t plain_len = 0, rec_len;

    if (status == 0 && !r->closing && reply->type == REDIS_REPLY_STRING &&
        pskgw_sessredis_open(r->key, r->domain, m->listener, m->cname, (const uint8_t *)reply->str,
                             reply->len, &plain, &plain_len, names, &peer, &cname, &rec,
                             &rec_len) == 0) {
        if (strcmp(peer, m->peer) != 0)
            (void)del_names(r, m->listener, peer, NULL); /* stored before the move */
        pskgw_sessredis_plain_free(plain, plain_len);
        pskgw_wipe(names, sizeof(names));
    }
    free(m);
}

static void get_moved(pskgw_sessredis_t *r, const char *listener, const char *peer,
                      const char *cname)
{
    char key[KEY_CAP];
    size_t ll = strlen(listener);
    int kl = key_of(key, sizeof(key), "sess", r, listener, cname);
    const char *argv[2] = { "GET", key };
    size_t lens[2] = { 3, (size_t)kl };
    moved_t *m;

    if (kl < 0 || strlen(peer) > PSKGW_SESSREDIS_NAME_MAX ||
        (m = calloc(1, sizeof(*m) + ll + 1)) == NULL)
        return; /* the old address key then expires with its TTL */
    m->r = r;
    memcpy(m->peer, peer, strlen(peer) + 1);
    memcpy(m->cname, cname, strlen(cname) + 1);
    memcpy(m->listener, listener, ll + 1);
    if (pskgw_redisconn_command(r->conn, 2, argv, lens, moved_got, m, NULL) < 0)
        free(m);
}

int pskgw_sessredis_forget(pskgw_sessredis_t *r, const char *listener, const char *peer,
                           const uint8_t *cid, size_t cid_len)
{
    char cname[PSKGW_SESSREDIS_NAME_MAX + 1];
    bool by_cid = cid != NULL && cid_len > 0;

    if (r == NULL || r->closing || listener == NULL || peer == NULL)
        return PSKGW_EINVAL;
    if (!pskgw_redisconn_connected(r->conn))
        return PSKGW_EUNAVAIL;
    if (by_cid && pskgw_sessredis_cid_name(cid, cid_len, cname, sizeof(cname)) < 0)
        return PSKGW_EINVAL;
    if (by_cid)
        get_moved(r, listener, peer, cname);
    return del_names(r, listener, peer, by_cid ? cname : NULL);
}

/* ---- lookups ------------------------------------------------------------------------------- */

static void req_end(pskgw_sessredis_req_t *q, int status)
{
    pskgw_sessredis_cb cb = q->cb;
    void *arg = q->arg;

    pskgw_list_remove(&q->link);
    if (cb != NULL)
        cb(arg, status, status == 0 ? q->rec : NULL, status == 0 ? q->rec_len : 0);
    pskgw_sessredis_plain_free(q->plain, q->plain_len);
    pskgw_wipe(q->names, sizeof(q->names));
    free(q);
}

/* The claim (sessredis.h, "Claims"), atomic in Redis: KEYS[1] the lease, KEYS[2] the key whose
 * value must still be the one the caller knows (its first #ARGV[3] bytes: the stamp; none: any
 * value), KEYS[2..] the session's keys; ARGV[1] the node, ARGV[2] the lease's PX. 0: the value
 * is gone or another one (another node took the record, or stored its own since); -1: the lease
 * is another node's; else the DEL's count (>= 1): this node holds the session. */
static const char CLAIM_LUA[] =
    "local v = redis.call('GET', KEYS[2]) "
    "if not v or string.sub(v, 1, #ARGV[3]) ~= ARGV[3] then return 0 end "
    "local h = redis.call('GET', KEYS[1]) "
    "if h and h ~= ARGV[1] then return -1 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "return redis.call('DEL', unpack(KEYS, 2))";

/* What a claim's reply means (pure: sessredis.h). */
int pskgw_sessredis_claim_result(int status, int reply_type, long long v)
{
    if (status == PSKGW_ECANCELED)
        return PSKGW_ECANCELED;
    if (status != 0 || reply_type != REDIS_REPLY_INTEGER)
        return PSKGW_EUNAVAIL;
    if (v >= 1)
        return 0;
    return v == -1 ? PSKGW_EBUSY : PSKGW_ENOTFOUND;
}

static void claim_done(void *arg, int status, const redisReply *reply)
{
    pskgw_sessredis_req_t *q = arg;
    pskgw_sessredis_t *r = q->r;
    int rc = pskgw_sessredis_claim_result(status, status == 0 ? reply->type : 0,
                                          status == 0 ? reply->integer : 0);

    q->cmd = NULL;
    if (rc == 0)
        r->st.leases++;
    if (q->claim) {
        r->st.claims_won += rc == 0;
        r->st.claims_held += rc == PSKGW_EBUSY;
        r->st.claims_gone += rc == PSKGW_ENOTFOUND;
        r->st.claims_errors += rc == PSKGW_EUNAVAIL || rc == PSKGW_ECANCELED;
    } else {
        r->st.hits += rc == 0;
        /* gone since the GET: another node took it first, as good as leased */
        r->st.refused += rc == PSKGW_EBUSY || rc == PSKGW_ENOTFOUND;
        r->st.errors += rc == PSKGW_EUNAVAIL || rc == PSKGW_ECANCELED;
        if (rc == PSKGW_ENOTFOUND)
            rc = PSKGW_EBUSY;
    }
    req_end(q, rc);
}

/* Sends the claim of q's session (q->peer, q->cid_name), the value under q->name compared. */
static int send_claim(pskgw_sessredis_req_t *q, const uint8_t *stamp, size_t stamp_len)
{
    pskgw_sessredis_t *r = q->r;
    char lease[KEY_CAP], k1[KEY_CAP], k2[KEY_CAP], px[LEASE_PX];
    const char *other = q->cid_name == NULL             ? NULL
                        : strcmp(q->name, q->peer) == 0 ? q->cid_name
                                                        : q->peer;
    int ll = key_of(lease, sizeof(lease), "lease", r, q->listener, q->peer);
    int l1 = key_of(k1, sizeof(k1), "sess", r, q->listener, q->name);
    int l2 = other != NULL ? key_of(k2, sizeof(k2), "sess", r, q->listener, other) : 0;
    int n = snprintf(px, sizeof(px), "%u", (unsigned)r->lease_ms);
    const char *argv[9] = { "EVAL", CLAIM_LUA, other != NULL ? "3" : "2", lease, k1 };
    size_t lens[9] = { 4, sizeof(CLAIM_LUA) - 1, 1, (size_t)ll, (size_t)l1 };
    int argc = 5;

    if (ll < 0 || l1 < 0 || l2 < 0)
        return PSKGW_EINVAL;
    if (other != NULL) {
        argv[argc] = k2;
        lens[argc++] = (size_t)l2;
    }
    argv[argc] = r->node_id;
    lens[argc++] = strlen(r->node_id);
    argv[argc] = px;
    lens[argc++] = (size_t)n;
    argv[argc] = stamp != NULL ? (const char *)stamp : "";
    lens[argc++] = stamp != NULL ? stamp_len : 0;
    return pskgw_redisconn_command(r->conn, argc, argv, lens, claim_done, q, &q->cmd);
}

static void get_done(void *arg, int status, const redisReply *reply)
{
    pskgw_sessredis_req_t *q = arg;
    pskgw_sessredis_t *r = q->r;
    int rc;

    q->cmd = NULL;
    if (status == 0 && reply->type == REDIS_REPLY_NIL) {
        r->st.misses++;
        req_end(q, PSKGW_ENOTFOUND);
        return;
    }
    if (status != 0 || reply->type != REDIS_REPLY_STRING) {
        r->st.errors++;
        req_end(q, status == PSKGW_ECANCELED ? PSKGW_ECANCELED : PSKGW_EUNAVAIL);
        return;
    }
    rc = pskgw_sessredis_open(r->key, r->domain, q->listener, q->name, (const uint8_t *)reply->str,
                              reply->len, &q->plain, &q->plain_len, q->names, &q->peer,
                              &q->cid_name, &q->rec, &q->rec_len);
    if (rc < 0) {
        r->st.bad++;
        req_end(q, rc == PSKGW_ENOMEM ? PSKGW_EUNAVAIL : PSKGW_EPARSE);
        return;
    }
    /* Taken only if the value is still the one read (its IV: not stored again since, not
     * taken by another node), under the lease, and deleted in the same step. */
    if (send_claim(q, (const uint8_t *)reply->str, IV_LEN) < 0) {
        r->st.errors++;
        req_end(q, PSKGW_EUNAVAIL);
    }
}

static pskgw_sessredis_req_t *req_new(pskgw_sessredis_t *r, const char *listener, const char *name,
                                      pskgw_sessredis_cb cb, void *arg)
{
    pskgw_sessredis_req_t *q = calloc(1, sizeof(*q));

    if (q == NULL)
        return NULL;
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    memcpy(q->listener, listener, strlen(listener) + 1);
    memcpy(q->name, name, strlen(name) + 1);
    return q;
}

int pskgw_sessredis_claim(pskgw_sessredis_t *r, const char *listener, const char *peer,
                          const uint8_t *cid, size_t cid_len,
                          const uint8_t stamp[PSKGW_SESSREDIS_STAMP_LEN], pskgw_sessredis_cb cb,
                          void *arg, pskgw_sessredis_req_t **out)
{
    char cname[PSKGW_SESSREDIS_NAME_MAX + 1];
    pskgw_sessredis_req_t *q;
    size_t pl;
    int rc;

    if (r == NULL || r->closing || listener == NULL || peer == NULL || cb == NULL ||
        strlen(listener) >= AAD_MAX || (pl = strlen(peer)) == 0 || pl > PSKGW_SESSREDIS_NAME_MAX ||
        (cid != NULL && cid_len > 0 &&
         pskgw_sessredis_cid_name(cid, cid_len, cname, sizeof(cname)) < 0))
        return PSKGW_EINVAL;
    if (!pskgw_redisconn_connected(r->conn)) {
        r->st.claims_errors++;
        return PSKGW_EUNAVAIL;
    }
    if ((q = req_new(r, listener, peer, cb, arg)) == NULL)
        return PSKGW_ENOMEM;
    q->claim = true;
    memcpy(q->names, peer, pl + 1);
    q->peer = q->names;
    if (cid != NULL && cid_len > 0) {
        memcpy(q->names + pl + 1, cname, strlen(cname) + 1);
        q->cid_name = q->names + pl + 1;
    }
    rc = send_claim(q, stamp, PSKGW_SESSREDIS_STAMP_LEN);
    if (rc < 0) {
        r->st.claims_errors++;
        free(q);
        return rc;
    }
    pskgw_list_insert_tail(&r->reqs, &q->link);
    if (out != NULL)
        *out = q;
    return 0;
}

int pskgw_sessredis_lookup(pskgw_sessredis_t *r, const char *listener, const char *name,
                           pskgw_sessredis_cb cb, void *arg, pskgw_sessredis_req_t **out)
{
    pskgw_sessredis_req_t *q;
    char key[KEY_CAP];
    const char *argv[2] = { "GET", key };
    size_t lens[2] = { 3, 0 };
    int kl, rc;

    if (r == NULL || r->closing || listener == NULL || name == NULL || cb == NULL ||
        strlen(listener) >= AAD_MAX || strlen(name) > PSKGW_SESSREDIS_NAME_MAX ||
        (kl = key_of(key, sizeof(key), "sess", r, listener, name)) < 0)
        return PSKGW_EINVAL;
    r->st.lookups++;
    if (!pskgw_redisconn_connected(r->conn)) {
        r->st.errors++;
        return PSKGW_EUNAVAIL;
    }
    q = req_new(r, listener, name, cb, arg);
    if (q == NULL)
        return PSKGW_ENOMEM;
    lens[1] = (size_t)kl;
    rc = pskgw_redisconn_command(r->conn, 2, argv, lens, get_done, q, &q->cmd);
    if (rc < 0) {
        r->st.errors++;
        free(q);
        return rc;
    }
    pskgw_list_insert_tail(&r->reqs, &q->link);
    if (out != NULL)
        *out = q;
    return 0;
}

void pskgw_sessredis_cancel(pskgw_sessredis_req_t *q)
{
    if (q->cmd != NULL)
        pskgw_redisconn_cmd_detach(q->cmd);
    q->cmd = NULL;
    req_end(q, PSKGW_ECANCELED);
}

void pskgw_sessredis_stats(const pskgw_sessredis_t *r, pskgw_sessredis_stats_t *out)
{
    pskgw_redisconn_stats_t cs;

    *out = r->st;
    pskgw_redisconn_stats(r->conn, &cs);
    out->connected = cs.connected;
    out->cmd_dropped = cs.dropped;
}

static const char M_ST[] = "pskgw_sessions_redis_stores_total";
static const char M_SE[] = "pskgw_sessions_redis_store_errors_total";
static const char M_DR[] = "pskgw_sessions_redis_dropped_total";
static const char M_LK[] = "pskgw_sessions_redis_lookups_total";
static const char M_LE[] = "pskgw_sessions_redis_leases_total";
static const char M_CO[] = "pskgw_sessions_redis_connected";
static const char M_CL[] = "pskgw_sessions_redis_claims_total";

void pskgw_sessredis_metrics_families(pskgw_metrics_t *m)
{
    pskgw_metrics_family(m, M_ST, "counter", "hibernated sessions stored in Redis (SET answered)");
    pskgw_metrics_family(m, M_SE, "counter",
                         "hibernated sessions not stored in Redis (no connection, error reply, "
                         "dropped at the bound)");
    pskgw_metrics_family(m, M_DR, "counter",
                         "commands to the sessions' Redis refused at the bound of held commands "
                         "(command: store, a hibernated session not stored; other: lookups, "
                         "leases, deletions)");
    pskgw_metrics_family(m, M_LK, "counter",
                         "Redis lookups of sessions this node did not hold, by result (hit: "
                         "taken over; miss; refused: leased by another node; bad: does not "
                         "open; error: no connection)");
    pskgw_metrics_family(m, M_LE, "counter", "leases taken on sessions taken over from Redis");
    pskgw_metrics_family(m, M_CO, "gauge", "1 while the sessions' Redis connection is up");
    pskgw_metrics_family(m, M_CL, "counter",
                         "claims of stored sessions woken here, by result (won: thawed here; "
                         "held: leased by another node, gone: taken by another node, both ended "
                         "without a datagram; error: no answer, kept hibernated)");
}

void pskgw_sessredis_metrics_sample(const pskgw_sessredis_t *r, const char *domain,
                                    pskgw_metrics_t *m)
{
    static const char *const res[] = { "hit", "miss", "refused", "bad", "error" };
    pskgw_sessredis_stats_t st;
    uint64_t by[5];
    char a[300], lab[400];

    pskgw_sessredis_stats(r, &st);
    by[0] = st.hits;
    by[1] = st.misses;
    by[2] = st.refused;
    by[3] = st.bad;
    by[4] = st.errors;
    pskgw_metrics_label(a, sizeof(a), "domain", domain);
    pskgw_metrics_sample(m, M_ST, a, st.stores);
    pskgw_metrics_sample(m, M_SE, a, st.store_errors);
    (void)snprintf(lab, sizeof(lab), "%s,command=\"store\"", a);
    pskgw_metrics_sample(m, M_DR, lab, st.store_dropped);
    (void)snprintf(lab, sizeof(lab), "%s,command=\"other\"", a);
    pskgw_metrics_sample(m, M_DR, lab, st.cmd_dropped);
    for (size_t k = 0; k < 5; k++) {
        (void)snprintf(lab, sizeof(lab), "%s,result=\"%s\"", a, res[k]);
        pskgw_metrics_sample(m, M_LK, lab, by[k]);
    }
    pskgw_metrics_sample(m, M_LE, a, st.leases);
    pskgw_metrics_sample(m, M_CO, a, st.connected);
    for (size_t k = 0; k < 4; k++) {
        static const char *const cres[] = { "won", "held", "gone", "error" };
        const uint64_t cby[] = { st.claims_won, st.claims_held, st.claims_gone, st.claims_errors };

        (void)snprintf(lab, sizeof(lab), "%s,result=\"%s\"", a, cres[k]);
        pskgw_metrics_sample(m, M_CL, lab, cby[k]);
    }
}

static void conn_closed(void *arg)
{
    pskgw_sessredis_t *r = arg;
    void (*cb)(void *arg) = r->close_cb;
    void *cb_arg = r->close_arg;

    pskgw_wipe(r->key, sizeof(r->key));
    free(r->domain);
    free(r->node_id);
    free(r);
    if (cb != NULL)
        cb(cb_arg);
}

void pskgw_sessredis_close(pskgw_sessredis_t *r, void (*cb)(void *arg), void *arg)
{
    if (r == NULL || r->closing)
        return;
    r->closing = true;
    r->close_cb = cb;
    r->close_arg = arg;
    while (!pskgw_list_empty(&r->reqs))
        pskgw_sessredis_cancel(pskgw_container_of(r->reqs.next, pskgw_sessredis_req_t, link));
    pskgw_redisconn_close(r->conn, conn_closed, r);
}
