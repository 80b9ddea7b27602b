"""The vlan-nats wire format (version 1); see docs/wire-format.md.

One NATS message carries one Ethernet frame::

    byte 0   version (1)
    byte 1   flags: 0x01 VNET   a 12-byte virtio_net_hdr follows
                    0x02 SEALED a sealed envelope (core/seal.py) wrapping a
                                whole plain message
                    others      must be zero
    [12 bytes virtio_net_hdr_mrg_rxbuf, little endian, when VNET]
    the Ethernet frame, destination MAC first

Compat mode (``--compat``) carries the bare frame with no header.
"""

from __future__ import annotations

from . import vnet
from .counters import DropReason
from .frames import ETH_HLEN

VERSION = 1
HEADER_LEN = 2
FLAG_VNET = 0x01
FLAG_SEALED = 0x02
KNOWN_FLAGS = FLAG_VNET
# struct virtio_net_hdr_mrg_rxbuf (include/uapi/linux/virtio_net.h); the C
# fast path exports the compiler's sizeof and a unit test compares.
VNET_HDR_LEN = vnet.HDR_LEN

HDR_PLAIN = bytes([VERSION, 0])
HDR_VNET = bytes([VERSION, FLAG_VNET])


def frame_offset(flags: int) -> int:
    """Where the Ethernet frame starts in a message with these flags."""
    return HEADER_LEN + VNET_HDR_LEN if flags & FLAG_VNET else HEADER_LEN


def check(msg: bytes | memoryview, max_frame: int) -> DropReason | None:
    """Validate a native message.  None if it may be forwarded, else why not.

    ``max_frame`` is the largest plain frame the local device allows; a GSO
    super-frame may be larger, up to 64 KiB, if its virtio header is sane
    (vnet.check)."""
    n = len(msg)
    if n == 0:
        return DropReason.EMPTY
    if n < HEADER_LEN:
        return DropReason.SHORT
    if msg[0] != VERSION:
        return DropReason.VERSION
    flags = msg[1]
    if flags & FLAG_SEALED:
        return DropReason.SEALED_NO_KEY
    if flags & ~KNOWN_FLAGS:
        return DropReason.FLAGS
    if flags & FLAG_VNET:
        if n < HEADER_LEN + VNET_HDR_LEN:
            return DropReason.SHORT
        frame_len = n - HEADER_LEN - VNET_HDR_LEN
        if frame_len < ETH_HLEN:
            return DropReason.RUNT
        return vnet.check(msg, HEADER_LEN, frame_len, max_frame)
    frame_len = n - HEADER_LEN
    if frame_len < ETH_HLEN:
        return DropReason.RUNT
    if frame_len > max_frame:
        return DropReason.OVERSIZE
    return None


def check_raw(frame: bytes | memoryview, max_frame: int) -> DropReason | None:
    """Validate a compat-mode message: a bare Ethernet frame."""
    n = len(frame)
    if n == 0:
        return DropReason.EMPTY
    if n < ETH_HLEN:
        return DropReason.RUNT
    if n > max_frame:
        return DropReason.OVERSIZE
    return None


def encode(frame: bytes, vnet_hdr: bytes | None = None) -> bytes:
    """Build a message (for tools and tests; the data path writes the header
    in place in its read buffer)."""
    if vnet_hdr is None:
        return HDR_PLAIN + frame
    if len(vnet_hdr) != VNET_HDR_LEN:
        raise ValueError(f"virtio header must be {VNET_HDR_LEN} bytes")
    return HDR_VNET + vnet_hdr + frame


def source_mac(data: bytes | bytearray | memoryview, compat: bool = False) -> bytes | None:
    """The source MAC of a message's frame (a refused one too: who sent
    it), or None when the message is too short to hold one."""
    if compat:
        off = 0
    else:
        vnet = len(data) > 1 and bool(data[1] & FLAG_VNET)
        off = HEADER_LEN + VNET_HDR_LEN if vnet else HEADER_LEN
    return bytes(data[off + 6 : off + 12]) if len(data) >= off + 14 else None
