/* pskgw-sim AuthTokens: HS256 JWTs signed with a random per-epoch secret.
 *
 *   header  {"alg":"HS256","typ":"JWT"}
 *   payload {"sub":"<APIKey>","iat":<s>,"exp":<iat + ttl>,"exp_ms":<issue ms + ttl*1000>,
 *            "jti":"<16 hex>"}
 * iat and exp are whole seconds (iat rounded down); the simulator enforces exp_ms, so a token
 * lives exactly ttl from the moment it was issued: a client that times the lifetime (exp - iat)
 * from when it received the token never holds an expired token early.
 * base64url without padding, "<header>.<payload>.<HMAC-SHA256(secret, header.payload)>".
 * pskgw_sim_token_expire_all() draws a new secret: every token issued before fails to verify.
 *
 * Not thread-safe: pskgw-sim calls these under its lock (wolfCrypt is SINGLE_THREADED).
 * The object owns its secret and wipes it on free.
 */
#ifndef PSKGW_TOOLS_SIM_SIMTOKEN_H
#define PSKGW_TOOLS_SIM_SIMTOKEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct pskgw_sim_token pskgw_sim_token_t;

/* PSKGW_ENOMEM, PSKGW_EIO (no randomness). */
int pskgw_sim_token_new(pskgw_sim_token_t **out);
void pskgw_sim_token_free(pskgw_sim_token_t *t);

/* Issue a token for `sub` at wall-clock millisecond now_ms. life_ms 0: it lives ttl_s (exp_ms =
 * issue + ttl); otherwise it dies life_ms after issue while its exp claim still says ttl_s (the
 * "token expires early" fault). *out is a heap string owned by the caller (free with
 * pskgw_free_secret_str). PSKGW_ENOMEM, PSKGW_ECRYPTO. */
int pskgw_sim_token_issue(pskgw_sim_token_t *t, const char *sub, uint64_t now_ms, unsigned ttl_s,
                          unsigned life_ms, char **out);

/* 0 when `tok` (len bytes) has a valid signature of the current epoch and now_ms < exp_ms;
 * then its `sub` is copied into sub_out (sub_cap bytes, NUL-terminated; may be NULL/0).
 * PSKGW_EPARSE (not a JWT of ours, or sub longer than sub_cap), PSKGW_EAUTH (bad signature),
 * PSKGW_ETIMEOUT (expired). */
int pskgw_sim_token_verify(pskgw_sim_token_t *t, const char *tok, size_t len, uint64_t now_ms,
                           char *sub_out, size_t sub_cap);

/* Invalidate every token issued so far. PSKGW_EIO (no randomness). */
int pskgw_sim_token_expire_all(pskgw_sim_token_t *t);

/* A random opaque string of 2*n hex chars (n <= 32) into out (2*n+1 bytes). PSKGW_EIO. */
int pskgw_sim_random_hex(size_t n, char *out, size_t cap);

#endif
