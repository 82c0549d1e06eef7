/* Invalidation across the caches sharing one Redis (keycache.h: opts.broadcast,
 * pskgw_keycache_broadcast()). One subscriber connection per cache (redisconn.h, subscriber
 * mode) on the channel "pskgw:inval:<domain>:<name>"; publishing goes through the cache's own
 * command connection, after the DEL (or the SET of a refusal) of the key, so a subscriber that
 * reads Redis on the message finds the new state.
 *
 * Message (text): "1 <origin: 16 hex> <op: i|r> <key: hex>". The origin is random per cache: a
 * cache skips its own messages (the key already left it). Anything else is ignored.
 */
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "keycache/internal.h"
#include "redisconn/redisconn.h"

#include <stdio.h>
#include <string.h>

#define ORIGIN_HEX  (2 * sizeof(((pskgw_keycache_t *)0)->origin))
#define MSG_CAP     (8 + ORIGIN_HEX + 2 * PSKGW_KEYCACHE_KEY_MAX)
#define CHANNEL_CAP (16 + PSKGW_KEYCACHE_DOMAIN_MAX + PSKGW_KEYCACHE_NAME_MAX)

static void channel_name(const pskgw_keycache_t *kc, char *out, size_t cap)
{
    snprintf(out, cap, "pskgw:inval:%s:%s", kc->domain, kc->name);
}

static void drop_key(pskgw_keycache_t *kc, const uint8_t *key, size_t len)
{
    (void)pskgw_kc_lru_remove(kc->lru, key, len);
    (void)pskgw_kc_lru_remove(kc->neg, key, len);
}

static void on_state(void *arg, bool ready)
{
    pskgw_keycache_t *kc = arg;
    size_t dropped;

    kc->bc_subscribed = ready;
    if (!ready) {
        PSKGW_WARN("keycache: \"%s\" of domain \"%s\": invalidation subscription lost: "
                   "reconnecting",
                   kc->name, kc->domain);
        return;
    }
    /* whatever was published while we were not subscribed is lost: any entry may be stale */
    dropped = pskgw_kc_lru_clear(kc->lru) + pskgw_kc_lru_clear(kc->neg);
    kc->stats.broadcast_resyncs++;
    PSKGW_NOTICE("keycache: \"%s\" of domain \"%s\": subscribed to invalidations (%zu cached "
                 "entr%s dropped: messages may have been missed)",
                 kc->name, kc->domain, dropped, dropped == 1 ? "y" : "ies");
}

/* "1 <origin> <op> <key hex>" -> 0 with op, key (decoded into key[cap]) and whether it is ours. */
static int parse(const pskgw_keycache_t *kc, const char *m, size_t len, pskgw_keycache_op_t *op,
                 uint8_t *key, size_t cap, size_t *key_len, bool *ours)
{
    char origin[ORIGIN_HEX + 1];
    size_t hex_len;

    if (len < 6 + ORIGIN_HEX || memcmp(m, "1 ", 2) != 0 || m[2 + ORIGIN_HEX] != ' ' ||
        (m[3 + ORIGIN_HEX] != 'i' && m[3 + ORIGIN_HEX] != 'r') || m[4 + ORIGIN_HEX] != ' ')
        return PSKGW_EPARSE;
    hex_len = len - (5 + ORIGIN_HEX);
    if (hex_len == 0 || hex_len % 2 != 0 || hex_len / 2 > cap ||
        pskgw_hex_decode(m + 5 + ORIGIN_HEX, hex_len, key, cap, key_len) != 0)
        return PSKGW_EPARSE;
    if (pskgw_hex_encode(kc->origin, sizeof(kc->origin), origin, sizeof(origin), false) != 0)
        return PSKGW_EPARSE;
    *ours = memcmp(origin, m + 2, ORIGIN_HEX) == 0;
    *op = m[3 + ORIGIN_HEX] == 'r' ? PSKGW_KEYCACHE_OP_REVOKE : PSKGW_KEYCACHE_OP_INVALIDATE;
    return 0;
}

static void on_message(void *arg, const char *m, size_t len)
{
    pskgw_keycache_t *kc = arg;
    uint8_t key[PSKGW_KEYCACHE_KEY_MAX];
    pskgw_keycache_op_t op;
    size_t key_len = 0;
    bool ours = false;

    if (kc->closing)
        return;
    if (parse(kc, m, len, &op, key, kc->max_key_len, &key_len, &ours) < 0 || key_len == 0) {
        PSKGW_LOG_RL(PSKGW_LOG_WARNING, "keycache-broadcast",
                     "keycache: \"%s\" of domain \"%s\": ignored a malformed invalidation "
                     "message (%zu bytes)",
                     kc->name, kc->domain, len);
        return;
    }
    if (ours)
        return;
    drop_key(kc, key, key_len);
    kc->stats.broadcasts_received++;
    if (kc->on_remote)
        kc->on_remote(kc->remote_arg, op, key, key_len);
}

int pskgw_kc_bc_start(pskgw_keycache_t *kc, const pskgw_keycache_opts_t *o)
{
    pskgw_redisconn_opts_t co;
    char channel[CHANNEL_CAP];
    char log_name[CHANNEL_CAP + 32];

    if (wc_RNG_GenerateBlock(&kc->rng, kc->origin, sizeof(kc->origin)) != 0)
        return PSKGW_ECRYPTO;
    channel_name(kc, channel, sizeof(channel));
    snprintf(log_name, sizeof(log_name), "keycache \"%s\" invalidations", kc->name);
    memset(&co, 0, sizeof(co));
    co.host = o->redis_host;
    co.port = o->redis_port;
    co.sentinels = o->redis_sentinels;
    co.master_name = o->redis_master_name;
    co.password = o->redis_password;
    co.db = o->redis_db;
    co.timeout_ms = o->redis_timeout_ms;
    co.backoff_min_ms = o->redis_backoff_min_ms;
    co.backoff_max_ms = o->redis_backoff_max_ms;
    co.log_name = log_name;
    co.on_state = on_state;
    co.subscribe = channel;
    co.on_message = on_message;
    co.arg = kc;
    kc->on_remote = o->on_remote;
    kc->remote_arg = o->remote_arg;
    return pskgw_redisconn_new(kc->loop, &co, &kc->bc);
}

static void bc_closed(void *arg)
{
    pskgw_keycache_t *kc = arg;

    kc->bc = NULL;
    pskgw_kc_maybe_finish_close(kc);
}

void pskgw_kc_bc_close(pskgw_keycache_t *kc)
{
    if (!kc->bc || kc->bc_closing)
        return;
    kc->bc_closing = true;
    kc->bc_subscribed = false;
    pskgw_redisconn_close(kc->bc, bc_closed, kc);
}

int pskgw_keycache_broadcast(pskgw_keycache_t *kc, pskgw_keycache_op_t op, const uint8_t *key,
                             size_t key_len)
{
    char channel[CHANNEL_CAP];
    char msg[MSG_CAP];
    size_t n;
    int rc;

    if (!kc || !key || key_len == 0 || key_len > kc->max_key_len ||
        (op != PSKGW_KEYCACHE_OP_INVALIDATE && op != PSKGW_KEYCACHE_OP_REVOKE))
        return PSKGW_EINVAL;
    rc = pskgw_keycache_invalidate(kc, key, key_len);
    if (rc < 0)
        return rc;
    if (op == PSKGW_KEYCACHE_OP_REVOKE && kc->neg_ttl_ms > 0) {
        pskgw_kc_l1_store(kc, key, key_len, PSKGW_KEYCACHE_KIND_DENIED, NULL, 0, kc->neg_ttl_ms,
                          kc->neg_ttl_ms);
        if (kc->redis)
            pskgw_kc_redis_store(kc, key, key_len, PSKGW_KEYCACHE_KIND_DENIED, NULL, 0,
                                 kc->neg_ttl_ms, kc->neg_ttl_ms);
    }
    if (!kc->bc || !kc->redis || kc->closing)
        return PSKGW_EUNAVAIL;
    memcpy(msg, "1 ", 2);
    n = 2;
    if (pskgw_hex_encode(kc->origin, sizeof(kc->origin), msg + n, sizeof(msg) - n, false) != 0)
        return PSKGW_EINVAL;
    n += ORIGIN_HEX;
    msg[n++] = ' ';
    msg[n++] = op == PSKGW_KEYCACHE_OP_REVOKE ? 'r' : 'i';
    msg[n++] = ' ';
    if (pskgw_hex_encode(key, key_len, msg + n, sizeof(msg) - n, false) != 0)
        return PSKGW_EINVAL;
    n += 2 * key_len;
    channel_name(kc, channel, sizeof(channel));
    rc = pskgw_kc_redis_publish(kc->redis, channel, msg, n);
    if (rc < 0)
        return rc == PSKGW_ENOMEM ? rc : PSKGW_EUNAVAIL;
    kc->stats.broadcasts_sent++;
    return 0;
}
