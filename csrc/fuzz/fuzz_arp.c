/* libFuzzer target: routed ARP (vn_arp.c): the request parser and the
 * router on any frame.  Invariants: a frame that is not an Ethernet/IPv4
 * ARP request is never routed; a routed one's subject is the prefix and
 * the target's 8 hex digits, read from the frame. */
#include <fcntl.h>
#include <string.h>

#include "fuzz.h"

static const char PREFIX[] = "vlan.lab.arp.";
static vn_dp *dp;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dp) {
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        dp = vn_dp_new(fd, 0, 1514);
        static const signed char rule[4] = {0, 1, 1, 1};  /* core.arp: first asks only */
        MUST(dp && vn_dp_set_arp(dp, PREFIX, rule, 4, 1.0) == 0);
    }
    unsigned char sender[10], target[4];
    int request = vn_arp_request(data, (unsigned int)size, sender, target);
    char subject[SUBJ];
    memset(subject, 0, sizeof(subject));
    /* now: from the input, so repeats within the window happen too */
    double now = size ? data[0] / 16.0 : 0;
    int routed = vn_arp_route(dp, data, size, now, subject);
    MUST(routed == 0 || routed == 1);
    if (routed) {
        MUST(request);
        static const char hex[] = "0123456789abcdef";
        char want[SUBJ];
        int n = snprintf(want, sizeof(want), "%s", PREFIX);
        for (int i = 0; i < 4; i++) {
            want[n++] = hex[target[i] >> 4];
            want[n++] = hex[target[i] & 15];
        }
        want[n] = 0;
        MUST(strcmp(subject, want) == 0);
    }
    return 0;
}
