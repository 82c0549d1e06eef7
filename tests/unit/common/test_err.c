#include "common/err.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

Test(err, every_code_has_text_and_name)
{
    for (int e = -1; e >= -PSKGW_ERR_SEQ_COUNT_; e--) {
        cr_assert_str_neq(pskgw_strerror(e), "unknown error", "code %d", e);
        cr_assert(strncmp(pskgw_err_name(e), "E", 1) == 0);
        cr_assert_str_neq(pskgw_err_name(e), "EUNKNOWN");
    }
    cr_assert_str_eq(pskgw_strerror(PSKGW_ENOMEM), "out of memory");
    cr_assert_str_eq(pskgw_err_name(PSKGW_ETIMEOUT), "ETIMEOUT");
    cr_assert_str_eq(pskgw_err_name(0), "OK");
}

Test(err, out_of_table_is_unknown)
{
    cr_assert_str_eq(pskgw_strerror(-PSKGW_ERR_SEQ_COUNT_ - 1), "unknown error");
    cr_assert_str_eq(pskgw_strerror(5), "unknown error");
    cr_assert_str_eq(pskgw_err_name(-1000), "EUNKNOWN");
}

Test(err, errno_translation)
{
    cr_assert_eq(pskgw_err_from_errno(ENOMEM), PSKGW_ENOMEM);
    cr_assert_eq(pskgw_err_from_errno(-ECONNREFUSED), PSKGW_EUNAVAIL);
    cr_assert_eq(pskgw_err_from_errno(ETIMEDOUT), PSKGW_ETIMEOUT);
    cr_assert_eq(pskgw_err_from_errno(0), 0);
    cr_assert_eq(pskgw_err_from_errno(EBADF), PSKGW_EIO);
}
