/* The message envelope: what a customer system receives for one device message.
 *
 * The gateway fills a pskgw_envelope_t (all pointers borrowed, valid during the call that takes
 * it) and hands it to pskgw_sinkset_submit() (sinks/sinkset.h), which copies it. Sinks never see
 * sessions; everything they know about a message is in here.
 *
 * JSON rendering (file, http, and the default of mqtt/redis-stream/kafka) is one object with
 * exactly these keys, in this order, no whitespace:
 *   {"message_id":"<32 hex>","domain":"..","listener":"..","transport":"dtls"|"tls",
 *    "peer":"ip:port","psk_identity":"..","rot_public_uid":"..","session_id":<u64>,"seq":<u64>,
 *    "received_at":"2026-11-21T10:00:00.123Z","payload":"<base64>","payload_len":<n>,
 *    "e2e":null | {"version":1,"key_identity":"<hex>","cipher_suite":"AES_128_CCM",
 *                  "rot_public_uid":"..","replay":false}}
 * e2e.rot_public_uid is the one of the E2E parameters (GetE2EDecryptionParameters); the gateway
 * forwards an E2E payload only when it equals the session's rot_public_uid. e2e.replay is true
 * when the device sent the same key identity recently (config e2e_replay = "flag").
 * Strings are escaped per RFC 8259 (control characters as \u00XX); invalid UTF-8 bytes are
 * replaced by U+FFFD so the output is always valid JSON. NULL strings render as "".
 *
 * message_id: 128 random bits (getrandom) drawn once when the set copies the envelope, stored
 * with the message in the spool, so it is the same in every sink, across retries and across a
 * restart's spool replay. Receivers de-duplicate on it (delivery is at-least-once).
 */
#ifndef PSKGW_SINKS_ENVELOPE_H
#define PSKGW_SINKS_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define PSKGW_MESSAGE_ID_LEN 32 /* hex characters, without the NUL */

typedef struct {
    unsigned version;           /* E2E format version (1 or 2 in the u-blox spec) */
    const char *key_identity;   /* hex of the key identity */
    const char *cipher_suite;   /* "AES_128_CCM" */
    const char *rot_public_uid; /* the parameters' ROTPublicUID (NULL renders as "") */
    int replay;                 /* non-zero: key identity seen again from this device */
} pskgw_envelope_e2e_t;

typedef struct {
    const char *domain;
    const char *listener;
    const char *transport; /* "dtls" | "tls" */
    const char *peer;      /* "ip:port" ("[v6]:port") */
    const char *psk_identity;
    const char *rot_public_uid; /* may be NULL/"" when unknown: psk_identity is then the device */
    uint64_t session_id;
    uint64_t seq;
    uint64_t received_at_ms; /* wall clock, ms since the epoch */
    const uint8_t *payload;  /* cleartext (after E2E decryption) */
    size_t payload_len;
    const pskgw_envelope_e2e_t *e2e; /* NULL when the payload was not E2E protected */
    /* NULL, or the strings' lengths (struct pskgw_envelope_lens below, in its order) as the
     * caller measured them once per session: pskgw_sinkset_submit() then reads no string's
     * length. Each must be the string's strlen (NULL: 0); the renderers ignore it. */
    const struct pskgw_envelope_lens *lens;
    /* Monotonic time (uv_hrtime(), ns) when the record's cleartext reached the domain, or 0
     * (unknown: spool replays, tests). Neither rendered nor spooled: the sinks observe it in
     * their latency histogram (pskgw_sink_stats_t) when they deliver the message. */
    uint64_t decrypted_ns;
} pskgw_envelope_t;

/* Render env as the one-line JSON object above (no trailing newline) with the given message id
 * (PSKGW_MESSAGE_ID_LEN hex characters). *out is malloc'ed, NUL-terminated, owned by the caller;
 * *out_len excludes the NUL. Returns 0, PSKGW_EINVAL (bad message_id), PSKGW_ENOMEM. */
int pskgw_envelope_json(const pskgw_envelope_t *env, const char *message_id, char **out,
                        size_t *out_len);

/* An upper bound of the length of env's rendering (any message id), for
 * pskgw_envelope_json_into(). Reads the string lengths; no allocation. */
size_t pskgw_envelope_json_max(const pskgw_envelope_t *env);

/* The same rendering written into out[0..cap) (no NUL, no allocation, no printf: the per-message
 * path renders straight into a sink's batch buffer). *out_len = bytes written. The time stamp's
 * whole-second text is cached per thread. Returns 0, PSKGW_EINVAL (bad message_id, a time
 * gmtime_r cannot represent), PSKGW_ETOOBIG (cap < pskgw_envelope_json_max(env); nothing
 * written). */
int pskgw_envelope_json_into(const pskgw_envelope_t *env, const char *message_id, char *out,
                             size_t cap, size_t *out_len);

/* The lengths of an envelope's strings (NULL counts 0), in this order: domain, listener,
 * transport, peer, psk_identity, rot_public_uid, then the e2e object's key_identity,
 * cipher_suite and rot_public_uid (0 without an e2e object). Measured once
 * (pskgw_envelope_measure) and handed to the renderers below: a sink message keeps them, so
 * rendering it reads no string's length again. */
#define PSKGW_ENVELOPE_NSTR 9
typedef struct pskgw_envelope_lens {
    size_t len[PSKGW_ENVELOPE_NSTR];
} pskgw_envelope_lens_t;

void pskgw_envelope_measure(const pskgw_envelope_t *env, pskgw_envelope_lens_t *out);
/* pskgw_envelope_json_max() and pskgw_envelope_json_into() with the lengths measured already
 * (lens must be env's: pskgw_envelope_measure(env) or the same strings' lengths). For a sink
 * message's envelope: message_id must be valid (pskgw_envelope_id_valid) and is not checked again
 * here, as pskgw_msg_new/_new_from checked it when the message was built (or _new_fresh drew it). */
size_t pskgw_envelope_json_max_lens(const pskgw_envelope_t *env, const pskgw_envelope_lens_t *lens);
int pskgw_envelope_json_into_lens(const pskgw_envelope_t *env, const pskgw_envelope_lens_t *lens,
                                  const char *message_id, char *out, size_t cap, size_t *out_len);

/* The device a message belongs to, for per-device ordering: rot_public_uid when non-empty,
 * else psk_identity (else ""). Borrowed from env. */
const char *pskgw_envelope_device(const pskgw_envelope_t *env);

/* 1 when id is PSKGW_MESSAGE_ID_LEN hex digits (either case) followed by a NUL, else 0. */
int pskgw_envelope_id_valid(const char *id);

/* Fill out[PSKGW_MESSAGE_ID_LEN + 1] with a fresh random message id. 0 or PSKGW_EIO. */
int pskgw_envelope_new_id(char out[PSKGW_MESSAGE_ID_LEN + 1]);

#endif
