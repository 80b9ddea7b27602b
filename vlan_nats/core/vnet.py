"""The virtio net header that travels with GSO frames, and its validation.

``struct virtio_net_hdr`` (include/uapi/linux/virtio_net.h), little endian
on a TAP opened with IFF_VNET_HDR (TUNSETVNETLE is not needed on
little-endian hosts, and the header is the modern 12-byte
``virtio_net_hdr_mrg_rxbuf``)::

    u8  flags        NEEDS_CSUM 1, DATA_VALID 2
    u8  gso_type     NONE 0, TCPV4 1, UDP 3 (UFO), TCPV6 4, UDP_L4 5; | ECN 0x80
    u16 hdr_len      length of the headers to copy into each segment
    u16 gso_size     bytes of payload per segment (the MSS)
    u16 csum_start   where checksumming starts, from the frame start
    u16 csum_offset  where the checksum goes, from csum_start
    u16 num_buffers  unused on a TAP

A frame from the network is written to our TAP only if its header is one
the kernel could have produced: a bad header makes the write fail at best.
"""

from __future__ import annotations

from .counters import DropReason
from .frames import ETH_HLEN, VLAN_TAGS_ROOM

HDR_LEN = 12
F_NEEDS_CSUM = 1
F_DATA_VALID = 2
KNOWN_FLAGS = F_NEEDS_CSUM | F_DATA_VALID
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3  # UFO: never negotiated, always refused
GSO_TCPV6 = 4
GSO_UDP_L4 = 5
GSO_ECN = 0x80
ACCEPTED_GSO = frozenset({GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4})
# The largest GSO frame a TAP hands over: 64 KiB of IP packet + Ethernet.
MAX_GSO_FRAME = 65535 + ETH_HLEN + VLAN_TAGS_ROOM


def check(hdr: bytes | memoryview, off: int, frame_len: int, max_frame: int) -> DropReason | None:
    """Validate the header at ``hdr[off:off+12]`` for a frame of
    ``frame_len`` bytes.  ``max_frame`` bounds a plain (non-GSO) frame."""
    flags = hdr[off]
    gso = hdr[off + 1] & ~GSO_ECN
    if flags & ~KNOWN_FLAGS:
        return DropReason.VNET
    if flags & F_NEEDS_CSUM:
        # Little-endian u16s read inline: this runs for most frames.
        start = hdr[off + 6] | hdr[off + 7] << 8
        if start < ETH_HLEN or start + (hdr[off + 8] | hdr[off + 9] << 8) + 2 > frame_len:
            return DropReason.VNET
    if gso == GSO_NONE:
        if hdr[off + 1] & GSO_ECN:
            return DropReason.VNET
        return DropReason.OVERSIZE if frame_len > max_frame else None
    if gso not in ACCEPTED_GSO or not flags & F_NEEDS_CSUM:
        return DropReason.VNET
    size = hdr[off + 4] | hdr[off + 5] << 8
    hdr_len = hdr[off + 2] | hdr[off + 3] << 8
    if size == 0 or hdr_len > frame_len or frame_len > MAX_GSO_FRAME:
        return DropReason.VNET
    return None
