/* pskgw_msg_t: the sinks' own, reference-counted copy of one envelope (module-internal).
 *
 * One allocation holds the strings and the payload. The set makes one message per submit and
 * every sink of the set holds a reference; the JSON rendering is made once, on first use, and
 * cached. The binary encoding (pskgw_msg_encode/_decode) is the body of a spool record
 * (sinks/record.h): version 2, little-endian:
 *   u8 2 | id[32] | u64 session_id | u64 seq | u64 received_at_ms |
 *   6 x (u16 len | bytes): domain listener transport peer psk_identity rot_public_uid |
 *   u8 has_e2e [ u32 version | u16 len | key_identity | u16 len | cipher_suite |
 *                u16 len | e2e rot_public_uid | u8 replay (0/1) ] |
 *   u32 payload_len | payload
 * Version 1 (written before the e2e object had rot_public_uid and replay) is still decoded: its
 * e2e object has an empty rot_public_uid and replay 0; encoding always writes version 2.
 * Strings are limited to 65535 bytes and may not contain NUL.
 */
#ifndef PSKGW_SINKS_MSG_H
#define PSKGW_SINKS_MSG_H

#include "sinks/envelope.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pskgw_msg_pool pskgw_msg_pool_t;
typedef struct pskgw_msg_json_buf pskgw_msg_json_buf_t;

typedef struct pskgw_msg {
    unsigned refs;
    pskgw_msg_pool_t *pool; /* where it goes back at the last unref (NULL: freed) */
    struct pskgw_msg *next_free;
    size_t blob_cap; /* bytes of blob[] allocated (>= blob_len) */
    char id[PSKGW_MESSAGE_ID_LEN + 1];
    pskgw_envelope_t env; /* all pointers into blob[] (or e2e below) */
    pskgw_envelope_e2e_t e2e;
    pskgw_envelope_lens_t lens; /* env's string lengths, for the renderers' *_lens calls */
    size_t dev_len;             /* strlen(pskgw_msg_device(m)) */
    uint32_t dev_hash;          /* its hash (msg.c): the sinks' device tables key on it */
    const char *json;           /* cached rendering (in jbuf), NULL until pskgw_msg_json() */
    size_t json_len;
    pskgw_msg_json_buf_t *jbuf; /* holds json: from the pool's freelists when m is pooled */
    size_t blob_len;
    uint8_t blob[];
} pskgw_msg_t;

/* Copy env with the given id (PSKGW_MESSAGE_ID_LEN hex chars). refs = 1. The strings' lengths
 * are env->lens when given (not measured again: the per-message path), else strlen.
 * 0, PSKGW_EINVAL (bad id, a string too long or with a NUL), PSKGW_ENOMEM. */
int pskgw_msg_new(const pskgw_envelope_t *env, const char *id, pskgw_msg_t **out);

/* A freelist of messages (one per sink set, loop thread only): in steady state a message is
 * made without malloc. Messages whose blob fits one of a few size classes (up to 4 KiB) come
 * from it and go back to it at their last unref, wiped (payload and strings); each class keeps
 * at most 4 MiB. pskgw_msg_pool_free() frees the cached ones at once; messages still out
 * keep the pool's memory alive and free themselves (and it, the last one) when released.
 * pskgw_msg_pool_new: 0 or PSKGW_ENOMEM. */
int pskgw_msg_pool_new(pskgw_msg_pool_t **out);
void pskgw_msg_pool_free(pskgw_msg_pool_t *pool);
/* pskgw_msg_new() from pool (NULL: plain allocation). */
int pskgw_msg_new_from(pskgw_msg_pool_t *pool, const pskgw_envelope_t *env, const char *id,
                       pskgw_msg_t **out);
/* pskgw_msg_new_from() with a fresh message id (pskgw_envelope_new_id) in m->id: the id is
 * valid by construction and not checked again (the sink set's per-message path). 0,
 * PSKGW_EINVAL (a string too long), PSKGW_EIO (no random bytes), PSKGW_ENOMEM. */
int pskgw_msg_new_fresh(pskgw_msg_pool_t *pool, const pskgw_envelope_t *env, pskgw_msg_t **out);
pskgw_msg_t *pskgw_msg_ref(pskgw_msg_t *m);
/* Drops a reference; at zero the message is wiped and freed, or returned to its pool. NULL
 * accepted. */
void pskgw_msg_unref(pskgw_msg_t *m);
/* Cached JSON envelope (sinks/envelope.h), rendered once into a buffer that a pooled message
 * takes from its pool's freelists (no allocation in steady state) and gives back, wiped, at its
 * last unref. NUL-terminated (len excludes it). Borrowed, valid while m is. 0 or PSKGW_ENOMEM. */
int pskgw_msg_json(pskgw_msg_t *m, const char **json, size_t *len);
const char *pskgw_msg_device(const pskgw_msg_t *m);

size_t pskgw_msg_encoded_len(const pskgw_msg_t *m);
/* Writes exactly pskgw_msg_encoded_len(m) bytes. */
void pskgw_msg_encode(const pskgw_msg_t *m, uint8_t *out);
/* Strict: the whole buffer must be one message. 0, PSKGW_EPARSE, PSKGW_ENOMEM. */
int pskgw_msg_decode(const uint8_t *body, size_t len, pskgw_msg_t **out);

#endif
