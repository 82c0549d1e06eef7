/* A DTLS client from a chosen source address: see srcpeer.h. */
#include "srcpeer.h"

#include <criterion/criterion.h>

void speer_start(speer_t *c, uv_loop_t *loop, const char *src_ip, uint16_t src_port, uint16_t port,
                 const char *identity, const char *psk_hex, const char *send_on_done)
{
    struct sockaddr_in srv;
    struct sockaddr_in src;

    cr_assert_eq(uv_ip4_addr("127.0.0.1", port, &srv), 0);
    cr_assert_eq(uv_ip4_addr(src_ip, src_port, &src), 0, "source %s", src_ip);
    dcli_start(c, loop, (const struct sockaddr *)&src, (const struct sockaddr *)&srv,
               "PSK-AES128-CCM8", identity, psk_hex, send_on_done);
}

uint16_t speer_local_port(speer_t *c)
{
    return dcli_local_port(c);
}

void speer_send_raw(speer_t *c, const uint8_t *data, size_t len)
{
    dcli_send_raw(c, data, len);
}

int speer_write(speer_t *c, const char *msg)
{
    return dcli_write(c, msg);
}

void speer_close(speer_t *c)
{
    dcli_close(c);
}
