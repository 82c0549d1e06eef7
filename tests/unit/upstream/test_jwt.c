/* JWT `exp` parsing and the token lifetime derived from it. */
#include "common/codec.h"
#include "common/err.h"
#include "upstream/parse.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* base64url without padding of a JSON payload, wrapped as header.payload.sig */
static void make_jwt(const char *payload, char *out, size_t cap)
{
    char b64[512];
    size_t n;

    cr_assert_eq(pskgw_b64_encode((const uint8_t *)payload, strlen(payload), b64, sizeof(b64)), 0);
    n = strlen(b64);
    while (n && b64[n - 1] == '=')
        b64[--n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (b64[i] == '+')
            b64[i] = '-';
        else if (b64[i] == '/')
            b64[i] = '_';
    }
    snprintf(out, cap, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.%s.c2ln", b64);
}

Test(jwt, exp_and_iat)
{
    char jwt[600];
    int64_t exp = 0;
    int64_t iat = 0;

    make_jwt("{\"sub\":\"k\",\"iat\":1700000000,\"exp\":1700003600}", jwt, sizeof(jwt));
    cr_assert_eq(pskgw_upstream_jwt_claims(jwt, strlen(jwt), &exp, &iat), 0);
    cr_assert_eq(exp, 1700003600);
    cr_assert_eq(iat, 1700000000);
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, exp, iat, 1ull), 3600000ull);
}

Test(jwt, url_alphabet_payload)
{
    /* "?>?" encodes to characters that differ between the two alphabets. */
    char jwt[600];
    int64_t exp = 0;
    int64_t iat = 0;

    make_jwt("{\"x\":\"?\?>>?\?~~\",\"exp\":1700000002}", jwt, sizeof(jwt));
    cr_assert(strchr(jwt, '-') || strchr(jwt, '_'), "%s", jwt);
    cr_assert_eq(pskgw_upstream_jwt_claims(jwt, strlen(jwt), &exp, &iat), 0);
    cr_assert_eq(exp, 1700000002);
    cr_assert_eq(iat, -1);
}

Test(jwt, exp_only_uses_wall_clock)
{
    char jwt[600];
    int64_t exp = 0;
    int64_t iat = 0;

    make_jwt("{\"exp\":2000000000}", jwt, sizeof(jwt));
    cr_assert_eq(pskgw_upstream_jwt_claims(jwt, strlen(jwt), &exp, &iat), 0);
    cr_assert_eq(iat, -1);
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, exp, iat, 2000000000ull * 1000 - 120000),
                 120000);
}

Test(jwt, no_exp)
{
    char jwt[600];
    int64_t exp = 0;
    int64_t iat = 0;
    int rc;

    make_jwt("{\"iat\":1700000000}", jwt, sizeof(jwt));
    rc = pskgw_upstream_jwt_claims(jwt, strlen(jwt), &exp, &iat);
    cr_assert_eq(rc, PSKGW_EPARSE);
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(rc, exp, iat, 5), 3600000ull);
}

Test(jwt, garbage)
{
    static const char *const bad[] = {
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "x.!!!!.y",
        "x.e30.y",             /* {} */
        "x.W10.y",             /* [] */
        "x.eyJleHAiOiIxIn0.y", /* {"exp":"1"} */
        "x.eyJleHAiOjEuNX0.y", /* {"exp":1.5} */
        "x.eyJleHAiOi01fQ.y",  /* {"exp":-5} */
        "x.eyJleHAiOjE.y",     /* truncated JSON */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t exp = 7;
        int64_t iat = 7;
        int rc = pskgw_upstream_jwt_claims(bad[i], strlen(bad[i]), &exp, &iat);
        cr_assert_eq(rc, PSKGW_EPARSE, "'%s'", bad[i]);
        cr_assert_eq(exp, 7);
        cr_assert_eq(pskgw_upstream_token_lifetime_ms(rc, exp, iat, 0), 3600000ull);
    }
}

Test(jwt, lifetime_bounds)
{
    /* expired by the wall clock: default */
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, 1000, -1, 2000000), 3600000ull);
    /* iat after exp: default */
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, 1000, 2000, 0), 3600000ull);
    /* very short: floor of 200 ms */
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, 1000, -1, 999900), 200ull);
    /* whole-second claims: a 2 s token issued late in its second has less left */
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, 1700000002, 1700000000, 1700000000900ull),
                 1100ull);
    /* our clock behind the issuer's: exp - iat wins */
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, 1700000002, 1700000000, 1699999000000ull),
                 2000ull);
    /* our clock ahead (token already past exp by our clock): exp - iat */
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, 1700000002, 1700000000, 1800000000000ull),
                 2000ull);
    /* absurdly long: 7 days cap */
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, 4000000000ll, 1, 0), 7ull * 86400 * 1000);
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, INT64_MAX, -1, 0), 7ull * 86400 * 1000);
    /* two-second token (the simulator's --token-ttl 2) */
    cr_assert_eq(pskgw_upstream_token_lifetime_ms(0, 1700000002, 1700000000, 0), 2000ull);
}
