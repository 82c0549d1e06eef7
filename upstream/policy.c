#include "upstream/policy.h"

#include "common/err.h"

#include <stddef.h>

pskgw_upstream_class_t pskgw_upstream_classify(long http_status, int transport_err, int *err)
{
    int e;
    pskgw_upstream_class_t cls;

    if (transport_err < 0) {
        e = transport_err;
        cls = (e == PSKGW_EUNAVAIL || e == PSKGW_ETIMEOUT) ? PSKGW_UPSTREAM_CLASS_TRANSIENT
                                                           : PSKGW_UPSTREAM_CLASS_PERMANENT;
        /* A transient transport failure that exhausts the retries reports "unavailable"
         * unless the caller knows the deadline passed. */
        if (cls == PSKGW_UPSTREAM_CLASS_TRANSIENT)
            e = PSKGW_EUNAVAIL;
    } else if (http_status == 200) {
        e = 0;
        cls = PSKGW_UPSTREAM_CLASS_OK;
    } else if (http_status == 400) {
        e = PSKGW_EBADREQ;
        cls = PSKGW_UPSTREAM_CLASS_PERMANENT;
    } else if (http_status == 401) {
        e = PSKGW_EAUTH;
        cls = PSKGW_UPSTREAM_CLASS_REAUTH;
    } else if (http_status == 403) {
        e = PSKGW_EDENIED;
        cls = PSKGW_UPSTREAM_CLASS_PERMANENT;
    } else if (http_status == 404) {
        e = PSKGW_ENOTFOUND;
        cls = PSKGW_UPSTREAM_CLASS_PERMANENT;
    } else if (http_status == 429) {
        e = PSKGW_ERATELIMIT;
        cls = PSKGW_UPSTREAM_CLASS_RATELIMIT;
    } else if (http_status == 408 || (http_status >= 500 && http_status <= 599)) {
        e = PSKGW_EUNAVAIL;
        cls = PSKGW_UPSTREAM_CLASS_TRANSIENT;
    } else {
        e = PSKGW_EPROTO;
        cls = PSKGW_UPSTREAM_CLASS_PERMANENT;
    }
    if (err)
        *err = e;
    return cls;
}

uint64_t pskgw_upstream_backoff_ms(unsigned attempt, uint32_t base_ms, uint32_t max_ms, uint32_t r)
{
    uint64_t cap = base_ms ? base_ms : 1;
    uint64_t half;

    if (max_ms < cap)
        max_ms = (uint32_t)cap;
    for (unsigned i = 1; i < attempt && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    half = cap / 2;
    return cap - half + (uint64_t)r % (half + 1);
}

int64_t pskgw_upstream_retry_after_ms(const char *value, size_t len)
{
    size_t i = 0;
    int64_t secs = 0;
    int digits = 0;

    if (!value)
        return -1;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    for (; i < len && value[i] >= '0' && value[i] <= '9'; i++) {
        if (secs < 86400)
            secs = secs * 10 + (value[i] - '0');
        digits++;
    }
    while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' || value[i] == '\n'))
        i++;
    if (!digits || i != len)
        return -1;
    if (secs > 86400)
        secs = 86400;
    return secs * 1000;
}

int pskgw_upstream_retry_fits(uint64_t now, uint64_t delay_ms, uint64_t deadline,
                              uint64_t min_attempt_ms)
{
    uint64_t left;

    if (now >= deadline)
        return 0;
    left = deadline - now;
    return delay_ms <= left && min_attempt_ms <= left - delay_ms;
}
