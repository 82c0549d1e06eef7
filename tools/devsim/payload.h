/* pskgw-devsim: the cleartext of simulated messages, recognisable after the gateway.
 *
 * A message is "<run>:<device>:<n>;" (run: 8 lower-case hex digits chosen per run; device and n in
 * decimal) padded to the requested size with letters that depend on (device, n, position), so a
 * verifier can rebuild the exact bytes from the header alone and detect any corruption.
 * Example (run 0x0badc0de, size 32): "0badc0de:17:3;qrstuvwxyzabcdefgh".
 * Pure functions; 0 or a negative PSKGW_E* code; out-parameters written only on success.
 */
#ifndef PSKGW_TOOLS_DEVSIM_PAYLOAD_H
#define PSKGW_TOOLS_DEVSIM_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Longest header ("ffffffff:4294967295:4294967295;"): the smallest size that always fits. */
#define PSKGW_DEVSIM_PAYLOAD_MIN 32
#define PSKGW_DEVSIM_PAYLOAD_MAX 16000

/* Build the message of (run, device, n) of exactly `size` bytes into out.
 * PSKGW_EINVAL (NULL, size outside [MIN, MAX]), PSKGW_ETOOBIG (cap < size). */
int pskgw_devsim_payload_make(uint32_t run, uint32_t device, uint32_t n, size_t size, uint8_t *out,
                              size_t cap);

/* Read the header of a message: run, device and n. PSKGW_EPARSE when it is not one of ours.
 * (It does not check the padding: compare with pskgw_devsim_payload_make for that.) */
int pskgw_devsim_payload_parse(const uint8_t *msg, size_t len, uint32_t *run, uint32_t *device,
                               uint32_t *n);

#endif
