/* libFuzzer target: the wire and virtio header checks (vn_rx.c's
 * check_wire and check_vnet, static: included here).  Invariants as
 * scripts/fuzz.py's for core/wire.py: a verdict is -1 or a drop reason, and
 * an accepted message holds at least an Ethernet header. */
#include "../vn_rx.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned int max_frames[] = {1514, 9018, 65535 + ETH_HLEN};
    for (int compat = 0; compat < 2; compat++) {
        for (unsigned int i = 0; i < sizeof(max_frames) / sizeof(*max_frames); i++) {
            int r = check_wire(data, size, compat, max_frames[i]);
            MUST(r == -1 || (r >= 0 && r < VN_D_COUNT));
            if (r == -1) {
                size_t off = compat ? 0 : (data[1] & VN_FLAG_VNET) ? 2 + VNET : 2;
                MUST(size >= off + ETH_HLEN);
            }
        }
    }
    /* The virtio check alone, on any 12 bytes and any frame length. */
    if (size >= VNET + 4) {
        size_t frame_len = (size_t)data[VNET] | (size_t)data[VNET + 1] << 8 |
                           (size_t)data[VNET + 2] << 16;
        int r = check_vnet(data, frame_len, 1514);
        MUST(r == -1 || r == VN_D_VNET || r == VN_D_OVERSIZE);
    }
    return 0;
}
