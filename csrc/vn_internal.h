/* Internal to the C datapath (vn_datapath.c, vn_seal.c): not for cffi. */
#ifndef VN_INTERNAL_H
#define VN_INTERNAL_H

/* core.counters.DropReason, in its order; vn_drop_name() spells them and a
 * unit test compares the two lists. */
enum vn_drop {
    VN_D_EMPTY, VN_D_SHORT, VN_D_VERSION, VN_D_FLAGS, VN_D_RUNT, VN_D_OVERSIZE,
    VN_D_VNET, VN_D_DUP_MAC, VN_D_NOT_FOR_US, VN_D_DISCONNECTED, VN_D_PUBLISH_ERROR,
    VN_D_SLOW_CONSUMER, VN_D_TAP_WRITE, VN_D_TAP_DOWN, VN_D_TAP_RUNT, VN_D_FLOOD_DUP,
    VN_D_STORM, VN_D_LOCAL_DST, VN_D_SEALED_NO_KEY, VN_D_UNSEALED, VN_D_SEAL_KEY,
    VN_D_SEAL_AUTH, VN_D_REPLAY, VN_D_SEAL_STALE,
    VN_D_COUNT
};

/* A refusal returned by vn_opener_open(). */
#define VN_REFUSED(reason) (-(1000 + (reason)))

#define VN_VERSION 1
#define VN_FLAG_VNET 0x01
#define VN_FLAG_SEALED 0x02
#define VN_SEAL_HDR 23
#define VN_SEAL_TAG 16

#endif
