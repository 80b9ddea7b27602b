import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlan_nats.core import vnet, wire
from vlan_nats.core.counters import DropReason

MAX = 1522  # MTU 1500


def hdr(flags=0, gso=0, hdr_len=0, size=0, start=0, off=0):
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, size, start, off, 0)


TCP4 = dict(flags=1, gso=vnet.GSO_TCPV4, hdr_len=66, size=1448, start=34, off=16)


@pytest.mark.parametrize(
    "h, frame_len, reason",
    [
        (hdr(), 60, None),
        (hdr(flags=2), 60, None),  # DATA_VALID
        (hdr(flags=1, start=34, off=16), 60, None),  # NEEDS_CSUM inside the frame
        (hdr(flags=1, start=34, off=16), 51, DropReason.VNET),  # checksum field past the end
        (hdr(flags=1, start=4, off=16), 60, DropReason.VNET),  # inside the Ethernet header
        (hdr(flags=8), 60, DropReason.VNET),  # unknown flag
        (hdr(), MAX + 1, DropReason.OVERSIZE),
        (hdr(gso=0x80), 60, DropReason.VNET),  # ECN without GSO
        (hdr(**TCP4), 65000, None),
        (hdr(**{**TCP4, "gso": vnet.GSO_TCPV6}), 65000, None),
        (hdr(**{**TCP4, "gso": vnet.GSO_TCPV4 | vnet.GSO_ECN}), 65000, None),
        (hdr(**{**TCP4, "gso": vnet.GSO_UDP_L4, "off": 6}), 65000, None),
        (hdr(**{**TCP4, "gso": vnet.GSO_UDP}), 65000, DropReason.VNET),  # UFO
        (hdr(**{**TCP4, "gso": 9}), 65000, DropReason.VNET),
        (hdr(**{**TCP4, "flags": 0}), 65000, DropReason.VNET),  # GSO needs NEEDS_CSUM
        (hdr(**{**TCP4, "size": 0}), 65000, DropReason.VNET),
        (hdr(**{**TCP4, "hdr_len": 70000 & 0xFFFF}), 3000, DropReason.VNET),
        (hdr(**TCP4), vnet.MAX_GSO_FRAME + 1, DropReason.VNET),
    ],
)
def test_check(h, frame_len, reason):
    assert vnet.check(h, 0, frame_len, MAX) is reason
    assert vnet.check(b"xx" + h, 2, frame_len, MAX) is reason


def test_gso_frame_round_trip_through_the_wire_format():
    frame = bytes.fromhex("0200000000020200000000010800") + bytes(64000)
    msg = wire.encode(frame, hdr(**TCP4))
    assert wire.check(msg, MAX) is None
    off = wire.frame_offset(msg[1])
    assert msg[off:] == frame and msg[off - 12 : off] == hdr(**TCP4)


@given(st.binary(min_size=12, max_size=12), st.integers(0, 70000))
def test_check_never_raises(h, frame_len):
    r = vnet.check(h, 0, frame_len, MAX)
    assert r is None or isinstance(r, DropReason)
