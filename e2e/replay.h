/* pskgw_e2e_replay: has this device sent this E2E key identity recently?
 *
 * A module derives a new key identity (KI) for every E2E encryption (AT+USECE2EDATAENC), so the
 * same KI from the same device again is a replayed (or duplicated) payload. The gateway asks
 * pskgw_e2e_replay_seen() once per decrypted payload whose ROTPublicUID matched its session.
 *
 * Bounded in both directions: a pair is remembered for window_ms after it was first seen, and at
 * most max_entries pairs are kept (the oldest is forgotten first, so under a flood of fresh KIs a
 * replay older than the last max_entries payloads goes unnoticed: the window shrinks, memory does
 * not grow). Pairs are kept as 128-bit fingerprints (SipHash-2-4's 128-bit output of the device,
 * a 0 byte and the KI, under a key derived once from a random 16-byte seed with SHA-256), never
 * as strings; the table's buckets come from the same keyed fingerprint, so a peer cannot aim many
 * pairs at one bucket. A fingerprint costs one short SipHash pass, not a SHA-256 per payload.
 *
 * Pure: no I/O, no clock (the caller passes `now`, monotonic ms, never decreasing); single-threaded.
 */
#ifndef PSKGW_E2E_REPLAY_H
#define PSKGW_E2E_REPLAY_H

#include <stddef.h>
#include <stdint.h>

typedef struct pskgw_e2e_replay pskgw_e2e_replay_t;

/* max_entries >= 1, window_ms >= 1, seed: 16 random bytes (copied).
 * 0, PSKGW_EINVAL, PSKGW_ENOMEM or PSKGW_ECRYPTO (hashing the seed failed). */
int pskgw_e2e_replay_new(size_t max_entries, uint64_t window_ms, const uint8_t seed[16],
                         pskgw_e2e_replay_t **out);
/* NULL accepted. */
void pskgw_e2e_replay_free(pskgw_e2e_replay_t *r);

/* 1 when (device, ki_hex) was first seen less than window_ms before now and is still kept (a
 * replay: its time is not renewed), else 0 and the pair is remembered from now on. Strings are
 * NUL-terminated, borrowed for the call. PSKGW_EINVAL for NULL arguments or a pair over 160
 * bytes (device, a 0 byte and the KI: a ROTPublicUID is at most 64 characters, a KI's hex 32). */
int pskgw_e2e_replay_seen(pskgw_e2e_replay_t *r, const char *device, const char *ki_hex,
                          uint64_t now);

/* Pairs remembered now. */
size_t pskgw_e2e_replay_count(const pskgw_e2e_replay_t *r);

#endif
