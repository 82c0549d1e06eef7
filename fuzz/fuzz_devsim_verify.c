/* pskgw-devsim: the file-sink verifier's line check and the payload header parser, on arbitrary
 * bytes (what a sink file may contain). Registered from tools/devsim/CMakeLists.txt. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tools/devsim/payload.h"
#include "tools/devsim/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t sent[4] = { 3, 0, 2, 1 };
    pskgw_devsim_verify_t *v = NULL;
    uint32_t run, dev, n;
    (void)pskgw_devsim_payload_parse(data, size, &run, &dev, &n);
    if (pskgw_devsim_verify_new("/nonexistent/fuzz", "fuzz-seed", 0x0badc0de, 40, 1, sent, 4, &v) !=
        0)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            pskgw_devsim_verify_line(v, (const char *)data + start, i - start);
            start = i + 1;
        }
    }
    pskgw_devsim_verify_result_t r;
    pskgw_devsim_verify_result(v, &r);
    if (r.delivered + r.missing != r.expected)
        __builtin_trap();
    pskgw_devsim_verify_free(v);
    return 0;
}
