/* Retry policy of the security-service client (pure: no I/O, no clock, no curl).
 *
 * Classification of one attempt's outcome (spec section 4), bounded exponential backoff with
 * jitter, and the Retry-After header. Unit-tested in tests/unit/upstream/test_policy.c.
 */
#ifndef PSKGW_UPSTREAM_POLICY_H
#define PSKGW_UPSTREAM_POLICY_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PSKGW_UPSTREAM_CLASS_OK = 0,    /* 200: parse the body */
    PSKGW_UPSTREAM_CLASS_REAUTH,    /* 401: renew the token once, retry */
    PSKGW_UPSTREAM_CLASS_RATELIMIT, /* 429: wait Retry-After if within the deadline */
    PSKGW_UPSTREAM_CLASS_TRANSIENT, /* 5xx, 408, timeouts, connection errors: back off, retry */
    PSKGW_UPSTREAM_CLASS_PERMANENT, /* final answer: *err says which */
} pskgw_upstream_class_t;

/* Classify one attempt. transport_err is 0 when an HTTP response arrived (http_status is then
 * its status), else the attempt's PSKGW_E* transport error (see http.h): PSKGW_EUNAVAIL and
 * PSKGW_ETIMEOUT are transient, anything else permanent with that code.
 * *err receives the code the request ends with if it is not retried:
 *   200 -> 0; 400 -> EBADREQ; 401 -> EAUTH; 403 -> EDENIED; 404 -> ENOTFOUND;
 *   429 -> ERATELIMIT; 408, 5xx -> EUNAVAIL; other statuses -> EPROTO. */
pskgw_upstream_class_t pskgw_upstream_classify(long http_status, int transport_err, int *err);

/* Backoff before retry number `attempt` (1 for the first retry), the client's policy of
 * common/backoff.h: with cap = min(max_ms, base_ms * 2^(attempt-1)), the delay is
 * cap - cap/2 + r % (cap/2 + 1) (r = 0 gives the lowest), so it never exceeds max_ms, never falls
 * below half the cap (it grows with attempt until max_ms/2), and jitters over the upper half.
 * base_ms 0 is treated as 1; max_ms below base_ms wins (0: base_ms). r is a uniform random number. */
uint64_t pskgw_upstream_backoff_ms(unsigned attempt, uint32_t base_ms, uint32_t max_ms, uint32_t r);

/* Retry-After delay-seconds only: the delay in ms, capped at 24 h. HTTP-dates and garbage give -1
 * (see pskgw_upstream_retry_after_at_ms() for both forms). value need not be NUL-terminated. */
int64_t pskgw_upstream_retry_after_ms(const char *value, size_t len);

/* An HTTP-date (RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms, GMT)
 * as wall-clock ms since the epoch, or -1 when value is not one. value need not be
 * NUL-terminated. */
int64_t pskgw_upstream_http_date_ms(const char *value, size_t len);

/* Retry-After in either form (RFC 9110 10.2.3): delay-seconds, or an HTTP-date turned into the
 * delay from now_wall_ms (0 when already past); capped at 24 h; -1 for garbage. */
int64_t pskgw_upstream_retry_after_at_ms(const char *value, size_t len, uint64_t now_wall_ms);

/* Whether a retry after delay_ms still fits before the deadline (absolute ms, same clock as
 * now): now + delay_ms + min_attempt_ms <= deadline. */
int pskgw_upstream_retry_fits(uint64_t now, uint64_t delay_ms, uint64_t deadline,
                              uint64_t min_attempt_ms);

#endif
