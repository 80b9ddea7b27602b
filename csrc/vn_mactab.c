/* MAC tables of the C datapath: open addressing with linear probing and
 * backward-shift deletion (no tombstones), keyed by the 48-bit MAC + 1.  At
 * most 3/4 full; the caller holds the lock. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vn_dp.h"

uint64_t mac_key(const unsigned char *m)
{
    return ((uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
            (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5]) + 1;
}

void key_mac(uint64_t k, unsigned char *m)
{
    k -= 1;
    for (int i = 0; i < 6; i++)
        m[i] = (unsigned char)(k >> (40 - 8 * i));
}

int mtab_init(struct mtab *t, unsigned int cap)
{
    unsigned int c = 16;
    while (c < cap)
        c <<= 1;
    uint64_t *keys = calloc(c, sizeof(*keys));
    double *seen = calloc(c, sizeof(*seen));
    unsigned char *state = calloc(c, 1);
    if (!keys || !seen || !state) {
        free(keys);
        free(seen);
        free(state);
        return -ENOMEM;
    }
    free(t->keys);
    free(t->seen);
    free(t->state);
    t->keys = keys;
    t->seen = seen;
    t->state = state;
    t->cap = c;
    t->count = 0;
    return 0;
}

void mtab_free(struct mtab *t)
{
    free(t->keys);
    free(t->seen);
    free(t->state);
    memset(t, 0, sizeof(*t));
}

static unsigned int mtab_home(const struct mtab *t, uint64_t k)
{
    return (unsigned int)((k * 0x9E3779B97F4A7C15ULL) >> 32) & (t->cap - 1);
}

/* Index of k, or -1. */
int mtab_find(const struct mtab *t, uint64_t k)
{
    if (!t->cap)
        return -1;
    for (unsigned int i = mtab_home(t, k);; i = (i + 1) & (t->cap - 1)) {
        if (t->keys[i] == k)
            return (int)i;
        if (!t->keys[i])
            return -1;
    }
}

/* Index of k, inserted if absent (-1 when 3/4 full). */
int mtab_put(struct mtab *t, uint64_t k, int *added)
{
    *added = 0;
    if (!t->cap)
        return -1;
    unsigned int i = mtab_home(t, k);
    for (;; i = (i + 1) & (t->cap - 1)) {
        if (t->keys[i] == k)
            return (int)i;
        if (!t->keys[i])
            break;
    }
    if (t->count >= t->cap / 4 * 3)
        return -1;
    t->keys[i] = k;
    t->count++;
    *added = 1;
    return (int)i;
}

void mtab_del_at(struct mtab *t, unsigned int i)
{
    unsigned int mask = t->cap - 1, j = i;
    t->keys[i] = 0;
    t->count--;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->keys[j])
            return;
        unsigned int h = mtab_home(t, t->keys[j]);
        /* Move j back to the hole at i when its home is not in (i, j]. */
        if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
            t->keys[i] = t->keys[j];
            t->seen[i] = t->seen[j];
            t->state[i] = t->state[j];
            t->keys[j] = 0;
            i = j;
        }
    }
}

void mtab_clear(struct mtab *t)
{
    if (!t->cap)
        return;
    memset(t->keys, 0, t->cap * sizeof(*t->keys));
    t->count = 0;
}

