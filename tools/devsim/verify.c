/* pskgw-devsim: file sink verification (see verify.h). */
#include "tools/devsim/verify.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "common/codec.h"
#include "common/err.h"
#include "tools/devsim/payload.h"
#include "tools/rotkeys/rotkeys.h"

struct pskgw_devsim_verify {
    char *path;
    const char *seed;
    uint32_t run_id;
    size_t size;
    int e2e;
    const uint32_t *sent;
    uint32_t devices;
    uint64_t *first; /* first[i]: bit index of device i's message 0 */
    uint8_t *seen;   /* one bit per expected message */
    long offset;     /* bytes of complete lines consumed so far */
    pskgw_devsim_verify_result_t r;
    uint8_t *expect_buf;
    uint8_t *got_buf;
};

int pskgw_devsim_verify_new(const char *path, const char *seed, uint32_t run_id, size_t size,
                            int e2e, const uint32_t *sent_by_device, uint32_t devices,
                            pskgw_devsim_verify_t **out)
{
    if (path == NULL || seed == NULL || sent_by_device == NULL || out == NULL ||
        size < PSKGW_DEVSIM_PAYLOAD_MIN || size > PSKGW_DEVSIM_PAYLOAD_MAX)
        return PSKGW_EINVAL;
    pskgw_devsim_verify_t *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return PSKGW_ENOMEM;
    v->path = strdup(path);
    v->seed = seed;
    v->run_id = run_id;
    v->size = size;
    v->e2e = e2e;
    v->sent = sent_by_device;
    v->devices = devices;
    v->first = calloc((size_t)devices + 1, sizeof(uint64_t));
    v->expect_buf = malloc(PSKGW_DEVSIM_PAYLOAD_MAX);
    v->got_buf = malloc(PSKGW_DEVSIM_PAYLOAD_MAX + 4);
    if (v->path == NULL || v->first == NULL || v->expect_buf == NULL || v->got_buf == NULL)
        goto fail;
    uint64_t total = 0;
    for (uint32_t i = 0; i < devices; i++) {
        v->first[i] = total;
        total += sent_by_device[i];
    }
    v->first[devices] = total;
    v->r.expected = total;
    v->r.missing = total;
    v->seen = calloc((size_t)(total / 8 + 1), 1);
    if (v->seen == NULL)
        goto fail;
    *out = v;
    return 0;
fail:
    pskgw_devsim_verify_free(v);
    return PSKGW_ENOMEM;
}

void pskgw_devsim_verify_free(pskgw_devsim_verify_t *v)
{
    if (v == NULL)
        return;
    free(v->path);
    free(v->first);
    free(v->seen);
    free(v->expect_buf);
    free(v->got_buf);
    free(v);
}

void pskgw_devsim_verify_line(pskgw_devsim_verify_t *v, const char *line, size_t len)
{
    pskgw_devsim_verify_result_t *r = &v->r;
    json_error_t jerr;
    json_t *o = json_loadb(line, len, 0, &jerr);
    const char *b64 = NULL, *ident = NULL;
    json_t *plen = NULL, *e2e = NULL;
    if (o == NULL || !json_is_object(o))
        goto bad;
    b64 = json_string_value(json_object_get(o, "payload"));
    ident = json_string_value(json_object_get(o, "psk_identity"));
    plen = json_object_get(o, "payload_len");
    e2e = json_object_get(o, "e2e");
    if (b64 == NULL || ident == NULL || !json_is_integer(plen) || e2e == NULL ||
        (!json_is_null(e2e) && !json_is_object(e2e)))
        goto bad;
    size_t blen = strlen(b64), n = 0;
    if (pskgw_b64_decode(b64, blen, v->got_buf, PSKGW_DEVSIM_PAYLOAD_MAX + 4, &n) < 0) {
        if (blen > 4 * ((PSKGW_DEVSIM_PAYLOAD_MAX + 4) / 3)) {
            r->unrecognised++; /* too big to be one of ours */
            json_decref(o);
            return;
        }
        goto bad;
    }
    uint32_t run, dev, m;
    if (pskgw_devsim_payload_parse(v->got_buf, n, &run, &dev, &m) < 0) {
        r->unrecognised++;
        json_decref(o);
        return;
    }
    if (run != v->run_id) {
        r->foreign++;
        json_decref(o);
        return;
    }
    if (dev >= v->devices || m >= v->sent[dev]) {
        r->unexpected++;
        json_decref(o);
        return;
    }
    uint64_t bit = v->first[dev] + m;
    if (v->seen[bit / 8] & (1u << (bit % 8))) {
        r->duplicated++;
        json_decref(o);
        return;
    }
    v->seen[bit / 8] |= (uint8_t)(1u << (bit % 8));
    r->delivered++;
    r->missing--;
    if (pskgw_devsim_payload_make(v->run_id, dev, m, v->size, v->expect_buf,
                                  PSKGW_DEVSIM_PAYLOAD_MAX) < 0 ||
        n != v->size || json_integer_value(plen) != (json_int_t)v->size ||
        memcmp(v->expect_buf, v->got_buf, n) != 0)
        r->corrupted++;
    /* The device's fixed identity or one of its per-session identities (--identity-per-session). */
    pskgw_rot_id_info_t idi;
    if (pskgw_rot_identity_resolve_hex(v->seed, ident, strlen(ident), &idi) < 0 ||
        idi.device != dev)
        r->misattributed++;
    if (v->e2e == 0 ? !json_is_null(e2e)
                    : (!json_is_object(e2e) ||
                       json_integer_value(json_object_get(e2e, "version")) != v->e2e))
        r->e2e_mismatch++;
    json_decref(o);
    return;
bad:
    r->bad_lines++;
    json_decref(o);
}

int pskgw_devsim_verify_poll(pskgw_devsim_verify_t *v)
{
    FILE *fp = fopen(v->path, "rb");
    if (fp == NULL)
        return errno == ENOENT ? 0 : PSKGW_EIO;
    if (fseek(fp, v->offset, SEEK_SET) != 0) {
        fclose(fp);
        return PSKGW_EIO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &cap, fp)) > 0) {
        if (line[got - 1] != '\n')
            break; /* a line still being written: read it again next time */
        v->offset += (long)got;
        size_t len = (size_t)got - 1;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len == 0)
            continue;
        pskgw_devsim_verify_line(v, line, len);
    }
    if (ferror(fp))
        rc = PSKGW_EIO;
    free(line);
    fclose(fp);
    return rc;
}

void pskgw_devsim_verify_result(const pskgw_devsim_verify_t *v, pskgw_devsim_verify_result_t *r)
{
    *r = v->r;
}

bool pskgw_devsim_verify_complete(const pskgw_devsim_verify_t *v)
{
    return v->r.missing == 0;
}

bool pskgw_devsim_verify_ok(const pskgw_devsim_verify_result_t *r)
{
    return r->missing == 0 && r->duplicated == 0 && r->corrupted == 0 && r->misattributed == 0 &&
           r->e2e_mismatch == 0 && r->unexpected == 0 && r->bad_lines == 0;
}

int pskgw_devsim_verify_wait(pskgw_devsim_verify_t *v, double timeout_s,
                             pskgw_devsim_verify_result_t *r)
{
    uint64_t deadline = pskgw_clock_mono_ms() + (uint64_t)(timeout_s * 1000.0);
    int rc;
    for (;;) {
        rc = pskgw_devsim_verify_poll(v);
        if (rc < 0 || pskgw_devsim_verify_complete(v) || pskgw_clock_mono_ms() >= deadline)
            break;
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    /* One last read: duplicates written together with the last message are caught too. */
    if (rc == 0)
        rc = pskgw_devsim_verify_poll(v);
    *r = v->r;
    return rc;
}
