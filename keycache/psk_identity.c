#include "keycache/psk_identity.h"

static int hex_digit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

pskgw_psk_id_reason_t pskgw_psk_identity_check(const char *keyid, size_t len)
{
    if (len < 2 * PSKGW_PSK_IDENTITY_MIN_BYTES || len > 2 * PSKGW_PSK_IDENTITY_MAX_BYTES)
        return PSKGW_PSK_ID_LENGTH;
    if (len % 2 != 0)
        return PSKGW_PSK_ID_ODD;
    for (size_t i = 0; i < len; i++)
        if (!hex_digit(keyid[i]))
            return PSKGW_PSK_ID_CHARSET;
    if (keyid[0] != '1' && keyid[0] != '2')
        return PSKGW_PSK_ID_STRUCTURE;
    return PSKGW_PSK_ID_OK;
}

const char *pskgw_psk_id_reason_name(pskgw_psk_id_reason_t r)
{
    switch (r) {
    case PSKGW_PSK_ID_OK:
        return "ok";
    case PSKGW_PSK_ID_LENGTH:
        return "length";
    case PSKGW_PSK_ID_ODD:
        return "odd_length";
    case PSKGW_PSK_ID_CHARSET:
        return "charset";
    case PSKGW_PSK_ID_STRUCTURE:
        return "structure";
    default:
        return "unknown";
    }
}
