/* The sink core's device table: the devices with messages queued, in flight or spooled, by key
 * (the hash each message carries: pskgw_msg_t.dev_hash; chained, doubling). The contract is in sinks/sink_core.h. */
#include "sinks/sink_core.h"

#include <stdlib.h>
#include <string.h>

static void dev_rehash(pskgw_sink_t *s)
{
    size_t n = s->nbuckets * 2;
    device_t **nb = calloc(n, sizeof(*nb));

    if (!nb)
        return; /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        device_t *d = s->buckets[i];
        while (d) {
            device_t *next = d->hnext;
            d->hnext = nb[d->hash & (n - 1)];
            nb[d->hash & (n - 1)] = d;
            d = next;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

device_t *pskgw_sink_dev_get(pskgw_sink_t *s, const char *key, size_t len, uint32_t h)
{
    device_t *d;

    for (d = s->buckets[h & (s->nbuckets - 1)]; d; d = d->hnext)
        if (d->hash == h && d->key_len == len && memcmp(d->key, key, len) == 0)
            return d;
    if (len <= DEV_KEY_POOLED && s->free_devs) {
        d = s->free_devs;
        s->free_devs = d->hnext;
        s->nfree_devs--;
    } else {
        d = malloc(sizeof(*d) + (len <= DEV_KEY_POOLED ? DEV_KEY_POOLED : len) + 1);
        if (!d)
            return NULL;
    }
    memset(d, 0, sizeof(*d));
    pskgw_list_init(&d->held);
    memcpy(d->key, key, len);
    d->key[len] = '\0';
    d->key_len = len;
    d->hash = h;
    d->hnext = s->buckets[h & (s->nbuckets - 1)];
    s->buckets[h & (s->nbuckets - 1)] = d;
    if (++s->ndevs > s->nbuckets)
        dev_rehash(s);
    return d;
}

void pskgw_sink_dev_put(pskgw_sink_t *s, device_t *d)
{
    device_t **pp;

    if (d->refs || d->spooled || d->busy)
        return;
    for (pp = &s->buckets[d->hash & (s->nbuckets - 1)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == d) {
            *pp = d->hnext;
            s->ndevs--;
            if (d->key_len <= DEV_KEY_POOLED && s->nfree_devs < FREE_KEEP) {
                d->hnext = s->free_devs;
                s->free_devs = d;
                s->nfree_devs++;
            } else {
                free(d);
            }
            return;
        }
    }
}
