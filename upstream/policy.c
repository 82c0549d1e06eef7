#include "upstream/policy.h"

#include "common/backoff.h"
#include "common/err.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

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
    const pskgw_backoff_policy_t p = { base_ms, max_ms, 2, 50, 0 };

    return pskgw_backoff_delay_ms(&p, attempt, r);
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

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe;
    unsigned doy;
    unsigned doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int month_index(const char *m)
{
    static const char *const names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

    for (int i = 0; i < 12; i++)
        if (strcmp(m, names[i]) == 0)
            return i + 1;
    return -1;
}

static int alpha_only(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
            return 0;
    return 1;
}

int64_t pskgw_upstream_http_date_ms(const char *value, size_t len)
{
    char buf[64];
    char wd[16];
    char mon[4];
    int d = 0, y = 0, hh = 0, mm = 0, ss = 0, n = -1, mi;
    size_t a = 0;

    if (!value)
        return -1;
    while (a < len && (value[a] == ' ' || value[a] == '\t'))
        a++;
    while (len > a && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' ||
                       value[len - 1] == '\n'))
        len--;
    if (len - a == 0 || len - a >= sizeof(buf))
        return -1;
    memcpy(buf, value + a, len - a);
    buf[len - a] = '\0';
    len -= a;
    /* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" (what senders must use) */
    if (sscanf(buf, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wd, &d, mon, &y, &hh, &mm,
               &ss, &n) == 7 &&
        n == (int)len) {
        /* nothing more */
    } else if (n = -1, sscanf(buf, "%9[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", wd, &d, mon,
                              &y, &hh, &mm, &ss, &n) == 7 &&
                           n == (int)len) {
        /* obsolete RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" */
        y += y < 70 ? 2000 : 1900;
    } else if (n = -1, sscanf(buf, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wd, mon, &d, &hh,
                              &mm, &ss, &y, &n) == 7 &&
                           n == (int)len) {
        /* obsolete asctime "Sun Nov  6 08:49:37 1994" */
    } else {
        return -1;
    }
    mi = month_index(mon);
    if (!alpha_only(wd) || mi < 0 || d < 1 || d > 31 || y < 1970 || y > 9999 || hh < 0 || hh > 23 ||
        mm < 0 || mm > 59 || ss < 0 || ss > 60)
        return -1;
    return ((days_from_civil(y, (unsigned)mi, (unsigned)d) * 24 + hh) * 60 + mm) * 60000 +
           (int64_t)ss * 1000;
}

int64_t pskgw_upstream_retry_after_at_ms(const char *value, size_t len, uint64_t now_wall_ms)
{
    int64_t ms = pskgw_upstream_retry_after_ms(value, len);
    int64_t at;

    if (ms >= 0)
        return ms;
    at = pskgw_upstream_http_date_ms(value, len);
    if (at < 0)
        return -1;
    if (now_wall_ms >= (uint64_t)at)
        return 0;
    ms = at - (int64_t)now_wall_ms;
    return ms > 86400000 ? 86400000 : ms;
}
