/* pskgw error codes: one table for the whole project.
 *
 * Every function that can fail returns 0 or a negative PSKGW_E* code; results go through
 * out-parameters written only on success. Foreign errors (libuv, wolfSSL, CURLcode, hiredis,
 * errno) are translated once, at the module edge that meets them.
 */
#ifndef PSKGW_COMMON_ERR_H
#define PSKGW_COMMON_ERR_H

/* X(name, text): PSKGW_E<name> = -(position + 1). Append only: codes appear in logs/metrics. */
#define PSKGW_ERR_MAP(X)                         \
    X(NOMEM, "out of memory")                    \
    X(INVAL, "invalid argument")                 \
    X(RANGE, "value out of range")               \
    X(IO, "input/output error")                  \
    X(PARSE, "malformed input")                  \
    X(NOTFOUND, "not found")                     \
    X(DENIED, "refused by the security service") \
    X(UNAVAIL, "service unavailable")            \
    X(TIMEOUT, "timed out")                      \
    X(BUSY, "too many requests in flight")       \
    X(CANCELED, "canceled")                      \
    X(AGAIN, "try again")                        \
    X(PROTO, "protocol error")                   \
    X(TLS, "TLS error")                          \
    X(AUTH, "authentication failed")             \
    X(RATELIMIT, "rate limited")                 \
    X(EXISTS, "already exists")                  \
    X(FULL, "limit reached")                     \
    X(CLOSED, "closed")                          \
    X(CRYPTO, "cryptographic failure")           \
    X(CONFIG, "configuration error")             \
    X(TOOBIG, "too large")                       \
    X(UNSUPPORTED, "not supported")              \
    X(INTERNAL, "internal error")                \
    X(BADMAC, "message authentication failed")   \
    X(BADREQ, "request rejected as malformed")

enum pskgw_err_seq {
#define PSKGW_ERR_SEQ_(name, text) PSKGW_ERR_SEQ_##name,
    PSKGW_ERR_MAP(PSKGW_ERR_SEQ_)
#undef PSKGW_ERR_SEQ_
        PSKGW_ERR_SEQ_COUNT_
};

enum pskgw_err {
    PSKGW_OK = 0,
#define PSKGW_ERR_DEF_(name, text) PSKGW_E##name = -(PSKGW_ERR_SEQ_##name + 1),
    PSKGW_ERR_MAP(PSKGW_ERR_DEF_)
#undef PSKGW_ERR_DEF_
};

/* Human-readable text for a code; never NULL ("unknown error" for codes outside the table). */
const char *pskgw_strerror(int err);

/* Short symbolic name ("ENOMEM", "OK"); never NULL. For metrics labels and JSON logs. */
const char *pskgw_err_name(int err);

/* Translate a positive errno value (or a negative one, as libuv gives) into a PSKGW_E* code. */
int pskgw_err_from_errno(int e);

#endif
