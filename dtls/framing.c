/* TLS plaintext cut into messages (record, len16, newline framing) and handed to the owner: the
 * contract is in dtls/internal.h. No I/O. */
#include "dtls/internal.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

void pskgw_dtls_deliver(pskgw_dtls_session_t *s, const uint8_t *data, size_t len)
{
    s->seq++;
    s->cbs->message(s->arg, s->seq, data, len);
}

/* TLS: cut the plaintext stream into messages per framing. */
void pskgw_dtls_frame_input(pskgw_dtls_session_t *s, const uint8_t *data, size_t len)
{
    size_t max = s->ctx->opt.max_message;
    size_t cap = max + 2;

    if (s->ctx->opt.framing == PSKGW_FRAMING_RECORD) {
        if (len > max) {
            pskgw_dtls_end_session(s, PSKGW_ETOOBIG);
            return;
        }
        pskgw_dtls_deliver(s, data, len);
        return;
    }
    if (s->fbuf == NULL) {
        s->fbuf = malloc(cap);
        if (s->fbuf == NULL) {
            pskgw_dtls_end_session(s, PSKGW_ENOMEM);
            return;
        }
    }
    while (len > 0 && !s->closed) {
        size_t n = cap - s->flen < len ? cap - s->flen : len;
        bool progress = true;

        memcpy(s->fbuf + s->flen, data, n);
        s->flen += n;
        data += n;
        len -= n;
        while (progress && !s->closed) {
            size_t used = 0;

            progress = false;
            if (s->ctx->opt.framing == PSKGW_FRAMING_LEN16) {
                size_t m;

                if (s->flen < 2)
                    break;
                m = ((size_t)s->fbuf[0] << 8) | s->fbuf[1];
                if (m > max) {
                    pskgw_dtls_end_session(s, PSKGW_ETOOBIG);
                    return;
                }
                if (s->flen < 2 + m)
                    break;
                pskgw_dtls_deliver(s, s->fbuf + 2, m);
                used = 2 + m;
            } else {
                uint8_t *nl = memchr(s->fbuf, '\n', s->flen);
                size_t m;

                if (nl == NULL) {
                    if (s->flen > max + 1) {
                        pskgw_dtls_end_session(s, PSKGW_ETOOBIG);
                        return;
                    }
                    break;
                }
                m = (size_t)(nl - s->fbuf);
                used = m + 1;
                if (m > 0 && s->fbuf[m - 1] == '\r')
                    m--;
                if (m > max) {
                    pskgw_dtls_end_session(s, PSKGW_ETOOBIG);
                    return;
                }
                if (m > 0)
                    pskgw_dtls_deliver(s, s->fbuf, m);
            }
            if (s->closed)
                return;
            memmove(s->fbuf, s->fbuf + used, s->flen - used);
            s->flen -= used;
            progress = true;
        }
    }
}
