/* pskgw-sim call statistics (see simstats.h). */
#include "tools/sim/simstats.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define KEY_MAX 128 /* longer keys are truncated (the API only has short hex keys) */

struct pskgw_sim_stats {
    pthread_mutex_t lock;
    json_int_t calls[PSKGW_SIM_OP_COUNT_];
    json_int_t status[600];
    json_int_t dropped;
    json_int_t tokens;
    json_int_t in_flight;
    json_int_t max_in_flight;
    json_int_t auth_form[PSKGW_SIM_AUTH_COUNT_];
    json_int_t faults[PSKGW_SIM_FAULT_COUNT_];
    json_int_t strict_refused;
    json_t *by_id[PSKGW_SIM_OP_COUNT_]; /* [PSK] and [E2E] used */
};

static const char *const op_names[PSKGW_SIM_OP_COUNT_] = { "authenticate", "get_psk",
                                                           "e2e_params" };
static const char *const auth_names[PSKGW_SIM_AUTH_COUNT_] = { "none", "raw", "bearer" };
static const char *const fault_names[PSKGW_SIM_FAULT_COUNT_] = { "extra_fields", "error_body",
                                                                 "truncated", "slow_handshakes" };

int pskgw_sim_stats_new(pskgw_sim_stats_t **out)
{
    pskgw_sim_stats_t *s = calloc(1, sizeof(*s));
    if (!s)
        return PSKGW_ENOMEM;
    s->by_id[PSKGW_SIM_OP_PSK] = json_object();
    s->by_id[PSKGW_SIM_OP_E2E] = json_object();
    if (!s->by_id[PSKGW_SIM_OP_PSK] || !s->by_id[PSKGW_SIM_OP_E2E] ||
        pthread_mutex_init(&s->lock, NULL) != 0) {
        json_decref(s->by_id[PSKGW_SIM_OP_PSK]);
        json_decref(s->by_id[PSKGW_SIM_OP_E2E]);
        free(s);
        return PSKGW_ENOMEM;
    }
    *out = s;
    return 0;
}

void pskgw_sim_stats_free(pskgw_sim_stats_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < PSKGW_SIM_OP_COUNT_; i++)
        json_decref(s->by_id[i]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void bump(json_t *map, const char *key)
{
    json_t *v = json_object_get(map, key);
    if (v) {
        json_integer_set(v, json_integer_value(v) + 1);
        return;
    }
    if (json_object_size(map) >= PSKGW_SIM_STATS_MAX_KEYS)
        key = "_other";
    v = json_object_get(map, key);
    if (v)
        json_integer_set(v, json_integer_value(v) + 1);
    else
        json_object_set_new(map, key, json_integer(1));
}

void pskgw_sim_stats_call(pskgw_sim_stats_t *s, pskgw_sim_op_t op, const char *key, size_t len)
{
    char up[KEY_MAX + 1];
    size_t n = 0;
    if (key) {
        for (; n < len && n < KEY_MAX; n++) {
            unsigned char c = (unsigned char)key[n];
            /* keep the map's keys printable UTF-8-safe ASCII */
            up[n] = (char)(c >= 0x20 && c < 0x7f ? toupper(c) : '?');
        }
    }
    up[n] = '\0';
    pthread_mutex_lock(&s->lock);
    s->calls[op]++;
    if (key && s->by_id[op])
        bump(s->by_id[op], up);
    pthread_mutex_unlock(&s->lock);
}

void pskgw_sim_stats_status(pskgw_sim_stats_t *s, unsigned status)
{
    pthread_mutex_lock(&s->lock);
    if (status < 600)
        s->status[status]++;
    pthread_mutex_unlock(&s->lock);
}

void pskgw_sim_stats_dropped(pskgw_sim_stats_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->dropped++;
    pthread_mutex_unlock(&s->lock);
}

void pskgw_sim_stats_token(pskgw_sim_stats_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->tokens++;
    pthread_mutex_unlock(&s->lock);
}

void pskgw_sim_stats_auth_form(pskgw_sim_stats_t *s, pskgw_sim_auth_form_t form)
{
    pthread_mutex_lock(&s->lock);
    s->auth_form[form]++;
    pthread_mutex_unlock(&s->lock);
}

void pskgw_sim_stats_fault(pskgw_sim_stats_t *s, pskgw_sim_fault_stat_t fault)
{
    pthread_mutex_lock(&s->lock);
    s->faults[fault]++;
    pthread_mutex_unlock(&s->lock);
}

void pskgw_sim_stats_strict_refused(pskgw_sim_stats_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->strict_refused++;
    pthread_mutex_unlock(&s->lock);
}

void pskgw_sim_stats_enter(pskgw_sim_stats_t *s)
{
    pthread_mutex_lock(&s->lock);
    if (++s->in_flight > s->max_in_flight)
        s->max_in_flight = s->in_flight;
    pthread_mutex_unlock(&s->lock);
}

void pskgw_sim_stats_leave(pskgw_sim_stats_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->in_flight--;
    pthread_mutex_unlock(&s->lock);
}

void pskgw_sim_stats_reset(pskgw_sim_stats_t *s)
{
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < PSKGW_SIM_OP_COUNT_; i++) {
        s->calls[i] = 0;
        if (s->by_id[i])
            json_object_clear(s->by_id[i]);
    }
    for (size_t i = 0; i < sizeof(s->status) / sizeof(s->status[0]); i++)
        s->status[i] = 0;
    s->dropped = 0;
    s->tokens = 0;
    memset(s->auth_form, 0, sizeof(s->auth_form));
    memset(s->faults, 0, sizeof(s->faults));
    s->strict_refused = 0;
    s->max_in_flight = s->in_flight;
    pthread_mutex_unlock(&s->lock);
}

json_t *pskgw_sim_stats_json(pskgw_sim_stats_t *s)
{
    json_t *root = json_object();
    json_t *calls = json_object();
    json_t *status = json_object();
    json_t *auth = json_object();
    json_t *faults = json_object();
    json_t *by_psk = NULL, *by_e2e = NULL;
    if (!root || !calls || !status || !auth || !faults)
        goto fail;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < PSKGW_SIM_OP_COUNT_; i++)
        json_object_set_new(calls, op_names[i], json_integer(s->calls[i]));
    for (unsigned i = 0; i < sizeof(s->status) / sizeof(s->status[0]); i++) {
        if (s->status[i]) {
            char k[8];
            snprintf(k, sizeof(k), "%u", i);
            json_object_set_new(status, k, json_integer(s->status[i]));
        }
    }
    for (int i = 0; i < PSKGW_SIM_AUTH_COUNT_; i++)
        json_object_set_new(auth, auth_names[i], json_integer(s->auth_form[i]));
    for (int i = 0; i < PSKGW_SIM_FAULT_COUNT_; i++)
        json_object_set_new(faults, fault_names[i], json_integer(s->faults[i]));
    json_int_t strict_refused = s->strict_refused;
    by_psk = json_deep_copy(s->by_id[PSKGW_SIM_OP_PSK]);
    by_e2e = json_deep_copy(s->by_id[PSKGW_SIM_OP_E2E]);
    json_int_t dropped = s->dropped, tokens = s->tokens;
    json_int_t in_flight = s->in_flight, max_in_flight = s->max_in_flight;
    pthread_mutex_unlock(&s->lock);
    if (!by_psk || !by_e2e)
        goto fail;
    json_object_set_new(root, "calls", calls);
    json_object_set_new(root, "status", status);
    json_object_set_new(root, "by_identity", by_psk);
    json_object_set_new(root, "by_key_identity", by_e2e);
    json_object_set_new(root, "dropped", json_integer(dropped));
    json_object_set_new(root, "tokens_issued", json_integer(tokens));
    json_object_set_new(root, "in_flight", json_integer(in_flight));
    json_object_set_new(root, "max_in_flight", json_integer(max_in_flight));
    json_object_set_new(root, "auth_header", auth);
    json_object_set_new(root, "faults", faults);
    json_object_set_new(root, "strict_refused", json_integer(strict_refused));
    return root;
fail:
    json_decref(auth);
    json_decref(faults);
    json_decref(by_psk);
    json_decref(by_e2e);
    json_decref(calls);
    json_decref(status);
    json_decref(root);
    return NULL;
}
