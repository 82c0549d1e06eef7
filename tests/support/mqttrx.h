/* A libmosquitto subscriber for the mqtt sink tests (MQTT v5, QoS 1, its own network thread via
 * mosquitto_loop_start; the test process may use threads). */
#ifndef PSKGW_TEST_MQTTRX_H
#define PSKGW_TEST_MQTTRX_H

#include <stddef.h>
#include <stdint.h>

#include "sinktest.h"

typedef struct {
    char topic[128];
    uint8_t *payload;
    size_t len;
    char prop_id[PSKGW_MESSAGE_ID_LEN + 1]; /* user property message_id ("" if none) */
    char prop_dev[64];                      /* user property rot_public_uid */
    char prop_psk[64];                      /* user property psk_identity */
    uint64_t prop_seq;
    char content_type[64];
} mqttrx_msg_t;

typedef struct mqttrx mqttrx_t;

/* Connect to 127.0.0.1:port, subscribe to `filter` (QoS 1) and wait for the SUBACK. 0 or -1. */
int mqttrx_start(mqttrx_t **out, int port, const char *filter);
int mqttrx_count(mqttrx_t *rx);
/* Copy messages [0, max): payloads are malloc'ed copies (free with mqttrx_free_msgs). */
int mqttrx_get(mqttrx_t *rx, mqttrx_msg_t *out, int max);
void mqttrx_free_msgs(mqttrx_msg_t *m, int n);
void mqttrx_stop(mqttrx_t *rx);

#endif
