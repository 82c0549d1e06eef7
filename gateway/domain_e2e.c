/* The message path of a domain (see domain_internal.h): listener -> E2E stage -> device binding
 * and replay check -> sink set -> optional acknowledgement, and the listener contexts whose
 * message slots it recycles. */
#include "gateway/domain_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "common/wipe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* One message between the listener and the sink set; released when the sink set is done with it
 * (ack listeners) or right after the submit. Strings live in buf. Slots whose strings fit
 * MSG_SLOT_BUF bytes go back to their listener context's freelist (at most MSG_SLOTS_KEEP):
 * no malloc per message in steady state. */
#define MSG_SLOT_BUF   320
#define MSG_SLOTS_KEEP 4096u

struct msg {
    struct lctx *lc;
    struct msg *next_free;
    size_t buf_cap;
    uint64_t session_id;
    uint64_t seq;
    uint64_t received_at_ms;
    uint64_t decrypted_ns; /* uv_hrtime(): the sinks' latency histogram starts here */
    const char *peer;
    const char *identity;
    const char *uid;
    size_t peer_len, identity_len, uid_len;
    char buf[];
};

static void msg_free(struct msg *m)
{
    struct lctx *lc = m->lc;

    if (m->buf_cap == MSG_SLOT_BUF && lc->nfree_msgs < MSG_SLOTS_KEEP) {
        m->next_free = lc->free_msgs;
        lc->free_msgs = m;
        lc->nfree_msgs++;
    } else {
        free(m);
    }
    pskgw_domain_lctx_unref(lc); /* frees the freelist with the context */
}

static struct msg *msg_alloc(struct lctx *lc, size_t need)
{
    struct msg *m;

    if (need <= MSG_SLOT_BUF && lc->free_msgs) {
        m = lc->free_msgs;
        lc->free_msgs = m->next_free;
        lc->nfree_msgs--;
        return m;
    }
    if (need <= MSG_SLOT_BUF)
        need = MSG_SLOT_BUF;
    m = malloc(sizeof(*m) + need);
    if (m)
        m->buf_cap = need;
    return m;
}

/* "ACK <seq>" without printf: the per-message path formats nothing through stdio. */
size_t pskgw_domain_format_ack(char *out, uint64_t seq)
{
    char digits[20];
    size_t n = 0;
    size_t len = 4;

    memcpy(out, "ACK ", 4);
    do {
        digits[n++] = (char)('0' + seq % 10);
        seq /= 10;
    } while (seq);
    while (n)
        out[len++] = digits[--n];
    return len;
}

static void sink_done(void *arg, int status)
{
    pskgw_domain_t *d = arg;

    if (status < 0)
        d->c.sink_failed++;
}

static void sink_done_ack(void *arg, int status)
{
    struct msg *m = arg;
    pskgw_domain_t *d = m->lc->d;
    char ack[32];
    size_t n;

    if (status < 0) {
        d->c.sink_failed++;
    } else if (m->lc->l) {
        n = pskgw_domain_format_ack(ack, m->seq);
        if (pskgw_listener_send(m->lc->l, m->session_id, (const uint8_t *)ack, n) == 0)
            d->c.acks_sent++;
        else
            d->c.acks_undelivered++;
    } else {
        d->c.acks_undelivered++;
    }
    msg_free(m);
}

static void reject_decrypted(struct msg *m, const char *reason, const char *detail)
{
    pskgw_domain_t *d = m->lc->d;

    d->c.rejected_e2e++;
    PSKGW_LOG_RL(PSKGW_LOG_WARNING, m->identity,
                 "domain \"%s\": message %" PRIu64 " of session %" PRIu64
                 " (identity \"%s\") rejected: %s (%s)",
                 d->cfg->name, m->seq, m->session_id, m->identity, reason, detail);
    msg_free(m);
}

/* A decrypted payload is the session's device's only when the parameters' ROTPublicUID is the
 * session's (from GetPSK): a device cannot pass off another device's E2E payload as its own.
 * Then a key identity this device already sent within the window is a replay. 0: forward it
 * (*replay set); -1: rejected and freed. */
static int bind_e2e(struct msg *m, const pskgw_e2e_info_t *x, int *replay)
{
    pskgw_domain_t *d = m->lc->d;
    const char *puid = x->rot_uid ? x->rot_uid : "";
    int seen;

    *replay = 0;
    if (!m->uid[0] || strcmp(puid, m->uid) != 0) {
        d->c.e2e_uid_mismatch++;
        reject_decrypted(m, "uid_mismatch", "the E2E parameters belong to another device");
        return -1;
    }
    seen = d->replay ? pskgw_e2e_replay_seen(d->replay, m->uid, x->ki_hex, uv_now(d->loop)) : 0;
    if (seen != 1)
        return 0;
    d->c.e2e_replays++;
    if (d->cfg->e2e_replay == PSKGW_CONFIG_E2E_REPLAY_REJECT) {
        d->c.e2e_replay_rejected++;
        reject_decrypted(m, "replay", "key identity seen again from this device");
        return -1;
    }
    *replay = 1;
    return 0;
}

static void e2e_done(void *arg, const pskgw_e2e_result_t *r)
{
    struct msg *m = arg;
    struct lctx *lc = m->lc;
    pskgw_domain_t *d = lc->d;
    pskgw_envelope_e2e_t e2e;
    pskgw_envelope_lens_t lens;
    pskgw_envelope_t env;
    int replay = 0;
    int rc;

    if (r->kind == PSKGW_E2E_DECRYPTED && r->e2e && bind_e2e(m, r->e2e, &replay) < 0)
        return;
    if (r->kind == PSKGW_E2E_REJECTED) {
        if (r->reason != PSKGW_E2E_REASON_CANCELED) {
            d->c.rejected_e2e++;
            PSKGW_LOG_RL(PSKGW_LOG_WARNING, m->identity,
                         "domain \"%s\": message %" PRIu64 " of session %" PRIu64
                         " (identity \"%s\") rejected: %s (%s)",
                         d->cfg->name, m->seq, m->session_id, m->identity,
                         pskgw_e2e_reason_name(r->reason), pskgw_strerror(r->status));
        }
        msg_free(m);
        return;
    }
    memset(&env, 0, sizeof(env));
    lens.len[0] = lc->domain_len;
    lens.len[1] = lc->name_len;
    lens.len[2] = lc->udp ? 4 : 3;
    lens.len[3] = m->peer_len;
    lens.len[4] = m->identity_len;
    lens.len[5] = m->uid_len;
    env.lens = &lens;
    env.domain = d->cfg->name;
    env.listener = lc->name;
    env.transport = lc->udp ? "dtls" : "tls";
    env.peer = m->peer;
    env.psk_identity = m->identity;
    env.rot_public_uid = m->uid;
    env.session_id = m->session_id;
    env.seq = m->seq;
    env.received_at_ms = m->received_at_ms;
    env.decrypted_ns = m->decrypted_ns;
    env.payload = r->data;
    env.payload_len = r->len;
    if (r->kind == PSKGW_E2E_DECRYPTED && r->e2e) {
        e2e.version = (unsigned)r->e2e->version;
        e2e.key_identity = r->e2e->ki_hex;
        e2e.cipher_suite = r->e2e->cipher_suite;
        e2e.rot_public_uid = r->e2e->rot_uid;
        e2e.replay = replay;
        env.e2e = &e2e;
        lens.len[6] = strlen(e2e.key_identity);
        lens.len[7] = e2e.cipher_suite ? strlen(e2e.cipher_suite) : 0;
        lens.len[8] = m->uid_len; /* bind_e2e: the parameters' ROTPublicUID is the session's */
    }
    rc = pskgw_sinkset_submit(d->sinks, &env, lc->ack ? sink_done_ack : sink_done,
                              lc->ack ? (void *)m : (void *)d, NULL);
    if (rc < 0) {
        d->c.submit_failed++;
        PSKGW_LOG_RL(PSKGW_LOG_ERR, "sink-submit",
                     "domain \"%s\": message %" PRIu64 " of session %" PRIu64
                     " not accepted by the sinks: %s",
                     d->cfg->name, m->seq, m->session_id, pskgw_strerror(rc));
        msg_free(m);
        return;
    }
    d->c.forwarded++;
    if (!lc->ack)
        msg_free(m);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
void pskgw_domain_on_message(void *arg, const pskgw_msg_meta_t *meta, const uint8_t *data,
                             size_t len)
{
    struct lctx *lc = arg;
    pskgw_domain_t *d = lc->d;
    const char *uid = meta->rot_public_uid ? meta->rot_public_uid : "";
    size_t lp = strlen(meta->peer) + 1;
    size_t li = strlen(meta->identity) + 1;
    size_t lu = strlen(uid) + 1;
    struct msg *m;
    int rc;

    if (d->closing)
        return;
    m = msg_alloc(lc, lp + li + lu);
    if (!m) {
        d->c.submit_failed++;
        return;
    }
    m->lc = lc;
    lc->refs++;
    m->session_id = meta->session_id;
    m->seq = meta->seq;
    m->received_at_ms = wall_ms();
    m->decrypted_ns = uv_hrtime();
    memcpy(m->buf, meta->peer, lp);
    memcpy(m->buf + lp, meta->identity, li);
    memcpy(m->buf + lp + li, uid, lu);
    m->peer = m->buf;
    m->identity = m->buf + lp;
    m->uid = m->buf + lp + li;
    m->peer_len = lp - 1;
    m->identity_len = li - 1;
    m->uid_len = lu - 1;
    rc = pskgw_e2e_process(d->e2e, d->mode, data, len, e2e_done, m, NULL);
    if (rc < 0) {
        d->c.submit_failed++;
        PSKGW_LOG_RL(PSKGW_LOG_ERR, "e2e-process", "domain \"%s\": message not processed: %s",
                     d->cfg->name, pskgw_strerror(rc));
        msg_free(m);
    }
}

int pskgw_domain_start_replay(pskgw_domain_t *d)
{
    uint8_t seed[16];
    int rc;

    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        PSKGW_ERR("domain \"%s\": getrandom: %s", d->cfg->name, strerror(errno));
        return PSKGW_EIO;
    }
    rc = pskgw_e2e_replay_new(d->cfg->e2e_replay_entries,
                              (uint64_t)d->cfg->e2e_replay_window_s * 1000u, seed, &d->replay);
    pskgw_wipe(seed, sizeof(seed));
    return rc;
}

struct lctx *pskgw_domain_lctx_new(pskgw_domain_t *d, const pskgw_config_listener_t *cfg)
{
    struct lctx *lc = calloc(1, sizeof(*lc));

    if (!lc)
        return NULL;
    lc->name = strdup(cfg->name);
    if (!lc->name) {
        free(lc);
        return NULL;
    }
    lc->name_len = strlen(lc->name);
    lc->domain_len = strlen(d->cfg->name);
    lc->d = d;
    lc->cfg = cfg;
    lc->udp = cfg->proto == PSKGW_CONFIG_PROTO_UDP;
    lc->ack = cfg->ack == PSKGW_CONFIG_ACK_ACCEPTED;
    lc->refs = 1; /* the domain's (lis[], or the close of a removed listener) */
    return lc;
}

void pskgw_domain_lctx_unref(struct lctx *lc)
{
    if (!lc || --lc->refs > 0)
        return;
    while (lc->free_msgs) {
        struct msg *m = lc->free_msgs;
        lc->free_msgs = m->next_free;
        free(m);
    }
    free(lc->name);
    free(lc);
}
