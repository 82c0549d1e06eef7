/* pskgw-devsim: the hostile scenarios' reader of what a server sends (rawdtls.h), on arbitrary
 * datagrams, and the captured-hello check on arbitrary client bytes. Invariants: the cookie read
 * fits its buffer and is a copy of input bytes; a cookie only comes with a HelloVerifyRequest.
 * Registered from tools/devsim/CMakeLists.txt. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tools/devsim/rawdtls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pskgw_devsim_raw_answer_t a;
    pskgw_devsim_raw_read_answer(data, size, &a);
    if (a.cookie_len > PSKGW_DEVSIM_RAW_COOKIE_MAX || (a.cookie_len > 0 && !a.hello_verify))
        __builtin_trap();
    if (a.cookie_len > 0 && a.cookie_len > size)
        __builtin_trap();
    (void)pskgw_devsim_raw_is_hello_with_cookie(data, size);
    /* What we build from a cookie we read must stay a hello with that cookie. */
    if (a.hello_verify && a.cookie_len > 0) {
        uint8_t random[PSKGW_DEVSIM_RAW_RANDOM_LEN] = { 0 }, out[1024];
        size_t len;
        if (pskgw_devsim_raw_client_hello(random, a.cookie, a.cookie_len, 1, 1, out, sizeof(out),
                                          &len) != 0 ||
            !pskgw_devsim_raw_is_hello_with_cookie(out, len))
            __builtin_trap();
    }
    return 0;
}
