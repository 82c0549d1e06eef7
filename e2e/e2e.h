/* pskgw_e2e: turns one DTLS/TLS application payload into what the customer receives.
 *
 * Per-domain mode (config `e2e = "off" | "auto" | "required"`):
 *   off       every payload is forwarded as plain, untouched (E2E headers are not looked at).
 *   auto      a payload with a valid E2E header (header.h) is decrypted; any other payload is
 *             forwarded as plain. CAUTION: auto cannot tell E2E from plain by anything but the
 *             first nibble, so a PLAIN payload whose first byte is 0x10..0x2f (control bytes,
 *             space, the ASCII characters !"#$%&'()*+,-./ , a CBOR small or negative integer...)
 *             and that is at least 24 bytes (0x1_) or 19 bytes (0x2_; 20 with the V2 layout
 *             "pad1") long is taken as E2E, fails
 *             to decrypt and is REJECTED, not forwarded. Operators whose devices send such plain
 *             payloads use `off` (no E2E) or `required` (all E2E) for that domain, not `auto`.
 *   required  anything that is not a valid E2E payload is rejected.
 * A payload with an E2E header that fails to decrypt (bad tag, truncated, unknown key identity,
 * service unavailable, unusable parameters) is rejected in auto and required mode, never forwarded
 * as if it were plain. Every rejection is counted and logged at warning level, rate-limited,
 * without content: reason, status, version, length; the key identity and ROTPublicUID only once
 * the service has vouched for the KI (before that the "KI" may be plain bytes in auto mode).
 *
 * Parameters per key identity (KI) come from a params source: function pointers set by the
 * gateway (in practice the generic key cache in front of GetE2EDecryptionParameters). e2e/ knows
 * nothing of the cache or of HTTP.
 *
 * Single-threaded: one pskgw_e2e_t per loop; no function may be called from another thread.
 */
#ifndef PSKGW_E2E_E2E_H
#define PSKGW_E2E_E2E_H

#include "e2e/header.h"
#include "e2e/params.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PSKGW_E2E_MODE_OFF = 0,
    PSKGW_E2E_MODE_AUTO = 1,
    PSKGW_E2E_MODE_REQUIRED = 2,
} pskgw_e2e_mode_t;

/* "off" | "auto" | "required" -> mode. PSKGW_EINVAL for NULL or anything else. */
int pskgw_e2e_mode_parse(const char *s, pskgw_e2e_mode_t *out);
/* "off" / "auto" / "required" ("unknown" otherwise). Static. */
const char *pskgw_e2e_mode_name(pskgw_e2e_mode_t mode);

/* ---- params source (implemented by the gateway around the key cache) ---- */

/* Completion of a fetch. status 0: *params is the KI's parameters (possibly a stale cached
 * entry: that is the source's decision), borrowed for the duration of the call; e2e copies and
 * wipes its copy. status < 0: params is NULL; meaningful codes:
 *   PSKGW_ENOTFOUND / PSKGW_EDENIED   the service does not know / refuses this KI (404 / 403)
 *   PSKGW_EPARSE / PSKGW_EINVAL        the parameters are unusable (e.g. a cached value that
 *                                      pskgw_e2e_params_decode() refuses)
 *   PSKGW_ECANCELED                    after cancel()
 *   anything else (PSKGW_EUNAVAIL, ETIMEOUT, EBUSY, ERATELIMIT, ...): transient, the service
 *                                      could not be asked and nothing was cached
 * May be called from inside fetch() itself (e2e copes), but never more than once per fetch. */
typedef void (*pskgw_e2e_params_done_cb)(void *arg, int status, const pskgw_e2e_params_t *params);

typedef struct {
    void *ctx; /* passed back to the functions below; owned by the gateway */
    /* Start getting the parameters of ki_hex (hex in the processor's header case, lower by
     * default; NUL-terminated; the EncryptedHeader value; borrowed for the call only). Either returns < 0 now and never calls
     * `done`, or returns 0, sets *handle, and calls done(arg, ...) exactly once. Required. */
    int (*fetch)(void *ctx, const char *ki_hex, pskgw_e2e_params_done_cb done, void *arg,
                 void **handle);
    /* Cancel a fetch that has not completed: its done is then called with PSKGW_ECANCELED (now or
     * later, exactly once). Required. */
    void (*cancel)(void *ctx, void *handle);
    /* Optional (may be NULL): synchronous in-process hit. 0 and *out filled (e2e wipes it) when
     * the parameters are at hand; any other value means "ask fetch". Must not block. */
    int (*lookup)(void *ctx, const char *ki_hex, pskgw_e2e_params_t *out);
} pskgw_e2e_params_source_t;

/* ---- results ---- */

typedef enum {
    PSKGW_E2E_PLAIN = 0,     /* forward data/len as is (mode off, or auto and no E2E header) */
    PSKGW_E2E_DECRYPTED = 1, /* forward data/len: the device's cleartext; e2e info is set */
    PSKGW_E2E_REJECTED = 2,  /* do not forward; status and reason say why */
} pskgw_e2e_kind_t;

typedef enum {
    PSKGW_E2E_REASON_NONE = 0,   /* plain or decrypted */
    PSKGW_E2E_REASON_NOT_E2E,    /* required mode, no E2E header (status PSKGW_EPROTO) */
    PSKGW_E2E_REASON_TRUNCATED,  /* E2E version nibble but too short (status PSKGW_EPARSE) */
    PSKGW_E2E_REASON_BAD_MAC,    /* tag does not verify (status PSKGW_EBADMAC) */
    PSKGW_E2E_REASON_UNKNOWN_KI, /* service: 404 / 403 (status PSKGW_ENOTFOUND / EDENIED) */
    PSKGW_E2E_REASON_UNAVAIL,    /* service unreachable and nothing cached (status as given):
                                    the caller may retry later */
    PSKGW_E2E_REASON_BAD_PARAMS, /* the parameters are unusable (status PSKGW_EINVAL, or the
                                    source's PSKGW_EPARSE) */
    PSKGW_E2E_REASON_CANCELED,   /* pskgw_e2e_cancel / _free, or the source canceled
                                    (status PSKGW_ECANCELED); counted apart, not as rejected */
    PSKGW_E2E_REASON_COUNT_
} pskgw_e2e_reason_t;

/* "not_e2e", "truncated", "bad_mac", "unknown_ki", "unavailable", "bad_params", "canceled",
 * "none": for logs and metrics labels. Static. */
const char *pskgw_e2e_reason_name(pskgw_e2e_reason_t reason);

/* What the payload's E2E header said (and the parameters, once known). */
typedef struct {
    int version;                           /* 1 or 2 */
    char ki_hex[PSKGW_E2E_KI_HEX_MAX + 1]; /* lower-case */
    const char *cipher_suite;              /* "AES_128_CCM" / "AES_128_CCM_8", or NULL when the
                                              parameters were not obtained */
    const char *rot_uid;                   /* ROTPublicUID, or NULL as above */
} pskgw_e2e_info_t;

/* Everything in a result, and everything it points to, is valid during the callback only. */
typedef struct {
    pskgw_e2e_kind_t kind;
    int status;                /* 0 for plain/decrypted, a PSKGW_E* code for rejected */
    pskgw_e2e_reason_t reason; /* PSKGW_E2E_REASON_NONE unless rejected */
    const uint8_t *data;       /* plain: the payload; decrypted: the cleartext (wiped after the
                                  callback); rejected: NULL */
    size_t len;
    const pskgw_e2e_info_t *e2e; /* NULL when the payload had no valid E2E header */
} pskgw_e2e_result_t;

typedef void (*pskgw_e2e_result_cb)(void *arg, const pskgw_e2e_result_t *result);

typedef struct {
    uint64_t plain;                                /* forwarded as plain */
    uint64_t decrypted;                            /* decrypted and forwarded */
    uint64_t rejected;                             /* sum of rejected_by[] (canceled excluded) */
    uint64_t rejected_by[PSKGW_E2E_REASON_COUNT_]; /* indexed by reason; NONE and CANCELED stay 0 */
    uint64_t canceled;
} pskgw_e2e_counters_t;

/* ---- the processor ---- */

typedef struct pskgw_e2e pskgw_e2e_t;
typedef struct pskgw_e2e_req pskgw_e2e_req_t;

/* Case of the EncryptedHeader hex the processor hands to its source (per domain: config key
 * `e2e_header_case`). The seed's example is lower case; upper case is for a service that wants
 * it so. The KI in results (pskgw_e2e_info_t.ki_hex) is lower case either way. */
typedef enum {
    PSKGW_E2E_HEADER_LOWER = 0, /* "lower" (default) */
    PSKGW_E2E_HEADER_UPPER = 1, /* "upper" */
} pskgw_e2e_header_case_t;

/* "lower" / "upper" -> case; PSKGW_EINVAL for NULL or anything else. */
int pskgw_e2e_header_case_parse(const char *s, pskgw_e2e_header_case_t *out);
/* "lower" / "upper" ("unknown" otherwise). Static. */
const char *pskgw_e2e_header_case_name(pskgw_e2e_header_case_t c);

typedef struct {
    pskgw_e2e_header_case_t header_case; /* default PSKGW_E2E_HEADER_LOWER */
    pskgw_e2e_v2_layout_t v2_layout;     /* how V2 payloads are read; default PSKGW_E2E_V2_SEED */
} pskgw_e2e_opts_t;

/* New processor using *src (copied; src->ctx stays owned by the caller and must outlive every
 * fetch started by this processor), with the default options (lower case, V2 "seed").
 * PSKGW_EINVAL (NULL, or fetch/cancel missing), PSKGW_ENOMEM. */
int pskgw_e2e_new(const pskgw_e2e_params_source_t *src, pskgw_e2e_t **out);
/* Same with *opts (copied; NULL means the defaults). PSKGW_EINVAL also for an unknown case or V2
 * layout. */
int pskgw_e2e_new_opts(const pskgw_e2e_params_source_t *src, const pskgw_e2e_opts_t *opts,
                       pskgw_e2e_t **out);
/* Replace the options (copied) for the payloads processed from now on; requests already waiting
 * for their parameters keep the ones they were read with (a reload). 0, or PSKGW_EINVAL (NULL,
 * an unknown case or V2 layout: nothing changed). */
int pskgw_e2e_set_opts(pskgw_e2e_t *e2e, const pskgw_e2e_opts_t *opts);

/* Free the processor. Pending requests are canceled first: each callback fires with
 * PSKGW_E2E_REASON_CANCELED before this returns, and the source's fetches are canceled (their
 * late completions are absorbed without touching the freed processor). May be called from inside
 * one of its own result callbacks (the request being reported is already detached); nothing may
 * be called on it afterwards. NULL is accepted. */
void pskgw_e2e_free(pskgw_e2e_t *e2e);

/* Process `len` bytes of payload in `mode` (the payload is copied when needed: the caller may
 * reuse it as soon as this returns). `cb(arg, result)` is called exactly once:
 *   - before this returns when the outcome is known at once (plain, rejected without a lookup,
 *     a fetch that fails at once, or an in-process hit through src->lookup); *req is then NULL;
 *   - otherwise later, from the source's completion; *req is then a handle for
 *     pskgw_e2e_cancel(), valid until the callback starts.
 * req may be NULL when the caller never cancels.
 * Returns 0, or (without any callback) PSKGW_EINVAL (NULL e2e/cb, NULL payload with len > 0,
 * unknown mode), PSKGW_ENOMEM, or PSKGW_ECLOSED (called from a callback run by
 * pskgw_e2e_free()). */
int pskgw_e2e_process(pskgw_e2e_t *e2e, pskgw_e2e_mode_t mode, const uint8_t *payload, size_t len,
                      pskgw_e2e_result_cb cb, void *arg, pskgw_e2e_req_t **req);

/* Cancel a pending request: its callback fires now, before this returns, with kind REJECTED,
 * status PSKGW_ECANCELED, reason CANCELED; the source's fetch is canceled. req must be a handle
 * whose callback has not started. */
void pskgw_e2e_cancel(pskgw_e2e_t *e2e, pskgw_e2e_req_t *req);

/* Counters since pskgw_e2e_new. */
void pskgw_e2e_counters(const pskgw_e2e_t *e2e, pskgw_e2e_counters_t *out);

/* Requests waiting for the source. */
size_t pskgw_e2e_pending(const pskgw_e2e_t *e2e);

#endif
