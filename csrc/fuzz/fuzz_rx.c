/* libFuzzer target: the receive path up to the TAP write (vn_rx.c's
 * vn_on_msg: open a sealed message, check the wire format, the ingress
 * verdict, learn the source, write), the TAP being /dev/null.  The first
 * byte picks the datapath (plain, --compat, sealed) and the subject
 * (unicast or flood); the rest is the message.  Invariants: no crash, no
 * sanitizer report; every message is counted once, delivered or dropped. */
#include <fcntl.h>
#include <string.h>

#include "fuzz.h"

static vn_dp *dps[3];
static const unsigned char MAC[6] = {2, 0, 0, 0, 0, 1};

static vn_dp *make(int compat, int sealed)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    MUST(fd >= 0);
    vn_dp *dp = vn_dp_new(fd, compat, 1514);
    MUST(dp != NULL);
    MUST(vn_dp_set_mac(dp, MAC) == 0);
    MUST(vn_dp_set_subjects(dp, "vlan.lab.u.", "vlan.lab.m.", "vlan.lab.b", "vlan.lab.f",
                            compat) == 0);
    if (sealed) {
        unsigned char key[32];
        fuzz_key(key);
        /* A clock skew that admits the vectors' stamp today. */
        MUST(vn_dp_set_opener(dp, vn_opener_new(key, 1, 1e10, 64)) == 0);
    }
    return dp;
}

static unsigned long long handled(vn_dp *dp)
{
    unsigned long long c[C_COUNT];
    MUST(vn_dp_counters(dp, c, C_COUNT) == C_COUNT);
    unsigned long long n = c[C_TAP_TX_FRAMES];
    for (int i = 0; i < VN_D_COUNT; i++)
        n += c[C_DROPS + i];
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dps[0]) {
        MUST(nats_Open(-1) == NATS_OK);  /* libnats itself, as vn_dp_connect does */
        dps[0] = make(0, 0);
        dps[1] = make(1, 0);
        dps[2] = make(0, 1);
    }
    if (size < 1)
        return 0;
    vn_dp *dp = dps[(data[0] & 3) % 3];
    const char *subject = data[0] & 4 ? "vlan.lab.f" : "vlan.lab.u.020000000001";
    natsMsg *msg = NULL;
    MUST(natsMsg_Create(&msg, subject, NULL, (const char *)data + 1, (int)(size - 1)) ==
         NATS_OK);
    unsigned long long before = handled(dp);
    vn_on_msg(NULL, NULL, msg, dp);  /* takes the message */
    MUST(handled(dp) == before + 1);
    struct vn_event ev[64];
    while (vn_dp_events(dp, ev, 64) > 0) {
    }
    return 0;
}
