/* Frozen sessions: a hibernated session without its session structure (session.h, "frozen
 * sessions"). The hibernated session's one allocation (hibernate.c: wolfSSL's export packed,
 * the peer's CID, identity and ROTPublicUID) is copied behind a small header that keeps the
 * fields a thaw needs; the structure (about 330 bytes, most of it handshake and I/O state an
 * idle session does not use) is freed. Unfreezing makes the structure again, hibernated, as an
 * import does. */
#include "dtls/internal.h"

#include "common/err.h"
#include "common/wipe.h"
#include "dtls/slab.h"

#include <stdlib.h>
#include <string.h>

/* 32 bytes before data, so that a session with a 28-character identity, a 16-character UID and
 * no CID takes one 144-byte slot of the slab's frozen zone (its export packed against the
 * thread's template to about 60 bytes, hibernate.c; 240 for the first sessions, about 155)
 * (dtls/slab.h: pages of their own, don't-dump, wiped on free; malloc when the slab has none).
 * data: the packed export (blob_len), the peer's CID (peer_cid_len), the identity and the
 * ROTPublicUID with their NULs (id_len, uid_len: 0 when none; a session with a longer one is not
 * frozen), our CID (cid_len: 0 when none was negotiated). The first four parts are laid out as a
 * hibernated session's blob allocation. */
struct pskgw_dtls_frozen {
    uint64_t last_rx;
    uint64_t seq;
    uint64_t rx_top;
    uint16_t blob_len;
    uint16_t seq_off;
    uint8_t id_len;
    uint8_t uid_len;
    uint8_t peer_cid_len;
    uint8_t cid_len;
    uint8_t data[];
};
_Static_assert(sizeof(struct pskgw_dtls_frozen) == 32, "the frozen form's header is 32 bytes");

static size_t data_len(const pskgw_dtls_frozen_t *f)
{
    return (size_t)f->blob_len + f->peer_cid_len + f->id_len + f->uid_len + f->cid_len;
}

/* The parts of the blob allocation in data: packed export, peer CID, identity, uid. */
static size_t blob_part(const pskgw_dtls_frozen_t *f)
{
    return (size_t)f->blob_len + f->peer_cid_len + f->id_len + f->uid_len;
}

int pskgw_dtls_session_freeze(pskgw_dtls_session_t *s, pskgw_dtls_frozen_t **out)
{
    pskgw_dtls_frozen_t *f;
    size_t id, uid, cid, n;
    int rc;

    if (s == NULL || out == NULL || s->depth > 0)
        return PSKGW_EINVAL;
    if (s->closed || s->free_deferred)
        return PSKGW_ECLOSED;
    if (!s->hibernated && (rc = pskgw_dtls_session_hibernate(s)) < 0)
        return rc;
    id = s->identity != NULL ? strlen(s->identity) + 1 : 0;
    uid = s->uid != NULL ? strlen(s->uid) + 1 : 0;
    cid = s->cid_on ? s->cid_len : 0;
    if (!s->strings_in_blob || s->blob == NULL || id > UINT8_MAX || uid > UINT8_MAX)
        return PSKGW_EINVAL; /* not a blob made by hibernate.c, or strings too long for it */
    n = sizeof(*f) + s->blob_len + s->peer_cid_len + id + uid + cid;
    if ((f = pskgw_slab_alloc(PSKGW_SLAB_FROZEN, n)) == NULL && (f = malloc(n)) == NULL)
        return PSKGW_ENOMEM;
    f->last_rx = s->last_rx;
    f->seq = s->seq;
    f->rx_top = s->rx_top;
    f->blob_len = s->blob_len;
    f->seq_off = s->seq_off;
    f->id_len = (uint8_t)id;
    f->uid_len = (uint8_t)uid;
    f->peer_cid_len = s->peer_cid_len;
    f->cid_len = (uint8_t)cid;
    /* The blob allocation holds the strings right after the peer's CID (hibernate.c). */
    memcpy(f->data, s->blob, blob_part(f));
    if (cid > 0)
        memcpy(f->data + blob_part(f), s->cid, cid);
    pskgw_dtls_session_free(s); /* wipes the blob */
    *out = f;
    return 0;
}

int pskgw_dtls_session_unfreeze(pskgw_dtls_ctx_t *ctx, const pskgw_psk_resolver_t *resolver,
                                const pskgw_dtls_session_cbs_t *cbs, void *arg,
                                pskgw_dtls_frozen_t *f, uint64_t now, pskgw_dtls_session_t **out)
{
    pskgw_dtls_session_t *s = NULL;
    size_t n;
    int rc;

    if (f == NULL || out == NULL)
        return PSKGW_EINVAL;
    if ((rc = pskgw_dtls_session_shell(ctx, resolver, cbs, arg, now, &s)) < 0)
        return rc;
    n = blob_part(f);
    s->blob = malloc(n);
    if (s->blob == NULL) {
        pskgw_slab_release(s);
        return PSKGW_ENOMEM;
    }
    memcpy(s->blob, f->data, n);
    s->hibernated = true;
    s->strings_in_blob = true;
    s->blob_len = f->blob_len;
    s->seq_off = f->seq_off;
    s->peer_cid_len = f->peer_cid_len;
    s->identity = f->id_len > 0 ? (char *)s->blob + f->blob_len + f->peer_cid_len : NULL;
    s->uid = f->uid_len > 0 ? (char *)s->blob + f->blob_len + f->peer_cid_len + f->id_len : NULL;
    if (f->cid_len > 0)
        memcpy(s->cid, f->data + n, f->cid_len);
    s->cid_len = f->cid_len;
    s->cid_on = f->cid_len > 0;
    s->last_rx = f->last_rx;
    s->seq = f->seq;
    s->rx_top = f->rx_top;
    pskgw_dtls_frozen_free(f);
    *out = s;
    return 0;
}

void pskgw_dtls_frozen_free(pskgw_dtls_frozen_t *f)
{
    if (f == NULL)
        return;
    if (pskgw_slab_owns(f)) {
        pskgw_slab_free(f); /* wipes the slot */
        return;
    }
    pskgw_wipe(f, sizeof(*f) + data_len(f));
    free(f);
}

const char *pskgw_dtls_frozen_identity(const pskgw_dtls_frozen_t *f)
{
    return f->id_len > 0 ? (const char *)f->data + f->blob_len + f->peer_cid_len : NULL;
}

const char *pskgw_dtls_frozen_uid(const pskgw_dtls_frozen_t *f)
{
    return f->uid_len > 0 ? (const char *)f->data + f->blob_len + f->peer_cid_len + f->id_len
                          : NULL;
}

const uint8_t *pskgw_dtls_frozen_cid(const pskgw_dtls_frozen_t *f, size_t *len)
{
    if (f->cid_len == 0)
        return NULL;
    if (len != NULL)
        *len = f->cid_len;
    return f->data + blob_part(f);
}

uint64_t pskgw_dtls_frozen_last_rx(const pskgw_dtls_frozen_t *f)
{
    return f->last_rx;
}

size_t pskgw_dtls_frozen_size(const pskgw_dtls_frozen_t *f)
{
    if (pskgw_slab_owns(f))
        return pskgw_slab_slot_size(f);
    return sizeof(*f) + data_len(f);
}
