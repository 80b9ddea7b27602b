/* Routed ARP on the C datapath: the mechanism that executes core/arp.py.
 * The rule (what stays a broadcast) comes down as a 4-entry table from
 * core.arp.arp_table(); this file only parses the request, remembers when
 * each (sender, target) pair last asked, and spells the target's subject.
 * The memory belongs to the TAP reader thread: no lock. */
#include <errno.h>
#include <string.h>

#include "vn_dp.h"

/* Ethernet(1), IPv4(0x0800), lengths 6 and 4, request(1): include/uapi/linux/if_arp.h */
static const char HEX[] = "0123456789abcdef";
static const unsigned char REQUEST_HEAD[8] = {0, 1, 8, 0, 6, 4, 0, 1};

int vn_arp_request(const unsigned char *f, unsigned int len, unsigned char *sender,
                   unsigned char *target)
{
    if (len < ETH_HLEN + ARP_LEN || f[12] != 0x08 || f[13] != 0x06)
        return 0;
    const unsigned char *a = f + ETH_HLEN;
    if (memcmp(a, REQUEST_HEAD, 8) != 0)
        return 0;
    memcpy(sender, a + 8, 10);   /* hardware address and IPv4 address */
    memcpy(target, a + 24, 4);
    return 1;
}

/* Was this pair seen within the window?  Remembers this ask.  A slot per
 * hash: a collision forgets an older pair, whose repeat is then routed once
 * more (a second's delay for a node that does not route, never a loss). */
static int repeat(vn_dp *dp, const unsigned char *sender, const unsigned char *target,
                  double now, double window)
{
    unsigned char key[ARP_KEY];
    memcpy(key, sender, 10);
    memcpy(key + 10, target, 4);
    uint32_t h = 2166136261u;  /* FNV-1a */
    for (int i = 0; i < ARP_KEY; i++)
        h = (h ^ key[i]) * 16777619u;
    struct arp_seen *s = &dp->arp_seen[h & (ARP_SLOTS - 1)];
    int seen = s->when > 0 && memcmp(s->key, key, ARP_KEY) == 0 && now - s->when <= window;
    memcpy(s->key, key, ARP_KEY);
    s->when = now;
    return seen;
}

int vn_arp_route(vn_dp *dp, const unsigned char *f, size_t flen, double now, char *subject)
{
    unsigned char sender[10], target[4];
    int routed = 0;
    pthread_rwlock_rdlock(&dp->cfg);
    if (dp->arp[0] && vn_arp_request(f, (unsigned int)flen, sender, target)) {
        int gratuitous = memcmp(sender + 6, target, 4) == 0;
        int again = !gratuitous && repeat(dp, sender, target, now, dp->arp_window);
        routed = dp->arp_rule[gratuitous * 2 + again] == 0;
    }
    if (routed) {
        size_t n = strlen(dp->arp);
        memcpy(subject, dp->arp, n);
        for (int i = 0; i < 4; i++) {
            subject[n++] = HEX[target[i] >> 4];
            subject[n++] = HEX[target[i] & 15];
        }
        subject[n] = 0;
    }
    pthread_rwlock_unlock(&dp->cfg);
    INC(dp, routed ? C_ARP_ROUTED : C_ARP_BROADCAST, 1);
    return routed;
}

int vn_dp_set_arp(vn_dp *dp, const char *prefix, const signed char *rule, unsigned int n,
                  double window)
{
    if (n != 4 || strlen(prefix) + 9 > SUBJ)
        return -EINVAL;
    pthread_rwlock_wrlock(&dp->cfg);
    strcpy(dp->arp, prefix);
    memcpy(dp->arp_rule, rule, 4);
    dp->arp_window = window;
    pthread_rwlock_unlock(&dp->cfg);
    return 0;
}
