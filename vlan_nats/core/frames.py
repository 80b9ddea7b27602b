"""Ethernet frame facts and classification by destination MAC."""

from __future__ import annotations

from enum import IntEnum

from .mac import BROADCAST

ETH_HLEN = 14  # dst(6) src(6) ethertype(2)
ETH_ALEN = 6
# Room for the tags a frame may carry beyond the MTU: 802.1ad outer tag
# plus 802.1Q inner tag (4 bytes each).
VLAN_TAGS_ROOM = 8


class FrameKind(IntEnum):
    UNICAST = 0
    BROADCAST = 1
    MULTICAST = 2


def classify(frame: bytes | memoryview) -> FrameKind:
    """Kind of a frame of at least 6 bytes, from its destination MAC."""
    if not frame[0] & 0x01:
        return FrameKind.UNICAST
    if frame[0:6] == BROADCAST:
        return FrameKind.BROADCAST
    return FrameKind.MULTICAST


def max_frame_len(mtu: int) -> int:
    """Largest non-GSO frame a device with this MTU may send or accept."""
    return mtu + ETH_HLEN + VLAN_TAGS_ROOM
