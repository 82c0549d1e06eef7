#include "common/err.h"

#include <errno.h>
#include <stdlib.h>

static const char *const err_text[] = {
#define TEXT_(name, text) text,
    PSKGW_ERR_MAP(TEXT_)
#undef TEXT_
};

static const char *const err_names[] = {
#define NAME_(name, text) "E" #name,
    PSKGW_ERR_MAP(NAME_)
#undef NAME_
};

static int err_index(int err)
{
    if (err >= 0 || err < -PSKGW_ERR_SEQ_COUNT_)
        return -1;
    return -err - 1;
}

const char *pskgw_strerror(int err)
{
    int i;

    if (err == 0)
        return "success";
    i = err_index(err);
    return i < 0 ? "unknown error" : err_text[i];
}

const char *pskgw_err_name(int err)
{
    int i;

    if (err == 0)
        return "OK";
    i = err_index(err);
    return i < 0 ? "EUNKNOWN" : err_names[i];
}

int pskgw_err_from_errno(int e)
{
    switch (abs(e)) {
    case 0:
        return PSKGW_OK;
    case ENOMEM:
        return PSKGW_ENOMEM;
    case EINVAL:
        return PSKGW_EINVAL;
    case ERANGE:
    case EOVERFLOW:
        return PSKGW_ERANGE;
    case ENOENT:
        return PSKGW_ENOTFOUND;
    case EACCES:
    case EPERM:
        return PSKGW_EDENIED;
    case ETIMEDOUT:
        return PSKGW_ETIMEOUT;
    case EAGAIN:
        return PSKGW_EAGAIN;
    case EEXIST:
    case EADDRINUSE:
        return PSKGW_EEXISTS;
    case ECANCELED:
        return PSKGW_ECANCELED;
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EPIPE:
        return PSKGW_EUNAVAIL;
    case E2BIG:
    case EMSGSIZE:
        return PSKGW_ETOOBIG;
    case ENOSYS:
    case ENOTSUP:
        return PSKGW_EUNSUPPORTED;
    default:
        return PSKGW_EIO;
    }
}
