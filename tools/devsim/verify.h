/* pskgw-devsim: check what a file sink wrote against what the devices sent.
 *
 * The file holds one JSON envelope per line (issue 6: message_id, domain, listener, transport,
 * peer, psk_identity, rot_public_uid, session_id, seq, received_at, payload = base64 of the
 * cleartext, payload_len, e2e). Each payload of this run is recognised by its header
 * (payload.h) and compared byte for byte with the message the device sent.
 *
 * The verifier reads the file incrementally (only complete lines; a line still being written is
 * read at the next poll) and owns its tables. Not thread-safe.
 */
#ifndef PSKGW_TOOLS_DEVSIM_VERIFY_H
#define PSKGW_TOOLS_DEVSIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t expected;      /* messages sent by good devices */
    uint64_t delivered;     /* distinct expected messages found */
    uint64_t missing;       /* expected - delivered */
    uint64_t duplicated;    /* extra copies of a message already found */
    uint64_t corrupted;     /* our header, but other bytes or payload_len than sent */
    uint64_t misattributed; /* psk_identity is not the sending device's identity */
    uint64_t e2e_mismatch;  /* "e2e" null when E2E was used, or the wrong version, or the reverse */
    uint64_t unexpected;    /* this run's header for a message no good device sent */
    uint64_t foreign;       /* another run's messages (ignored) */
    uint64_t unrecognised;  /* payload without our header (ignored, but see missing) */
    uint64_t bad_lines;     /* lines that are not an envelope (invalid JSON, missing keys) */
} pskgw_devsim_verify_result_t;

typedef struct pskgw_devsim_verify pskgw_devsim_verify_t;

/* sent_by_device[i]: messages device i sent (0 for bad devices), borrowed for the verifier's life.
 * seed: for the identities (borrowed). size: the cleartext size. e2e: 0, 1 or 2.
 * PSKGW_EINVAL, PSKGW_ENOMEM. */
int pskgw_devsim_verify_new(const char *path, const char *seed, uint32_t run_id, size_t size,
                            int e2e, const uint32_t *sent_by_device, uint32_t devices,
                            pskgw_devsim_verify_t **out);
void pskgw_devsim_verify_free(pskgw_devsim_verify_t *v);

/* Read the lines appended since the last call (a missing file counts as empty).
 * PSKGW_EIO when the file exists but cannot be read. */
int pskgw_devsim_verify_poll(pskgw_devsim_verify_t *v);

/* Check one line (without its newline) as if read from the file; what poll does per line.
 * Untrusted bytes: any content is accepted and counted (fuzzed by fuzz/fuzz_devsim_verify.c). */
void pskgw_devsim_verify_line(pskgw_devsim_verify_t *v, const char *line, size_t len);

/* Current counts; complete when every expected message was found. */
void pskgw_devsim_verify_result(const pskgw_devsim_verify_t *v, pskgw_devsim_verify_result_t *r);
bool pskgw_devsim_verify_complete(const pskgw_devsim_verify_t *v);
/* True when nothing is missing, duplicated, corrupted, misattributed, unexpected, mismatched,
 * and every line was an envelope. */
bool pskgw_devsim_verify_ok(const pskgw_devsim_verify_result_t *r);

/* Poll until complete or timeout_s elapsed (sleeping 50 ms between polls), then fill *r.
 * 0 or the error of pskgw_devsim_verify_poll. */
int pskgw_devsim_verify_wait(pskgw_devsim_verify_t *v, double timeout_s,
                             pskgw_devsim_verify_result_t *r);

#endif
