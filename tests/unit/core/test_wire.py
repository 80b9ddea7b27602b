import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlan_nats.core import wire
from vlan_nats.core.counters import DropReason

FRAME = bytes.fromhex("0200000000020200000000010800") + bytes(46)
MAX = 1522


@pytest.mark.parametrize(
    "msg, reason",
    [
        (b"", DropReason.EMPTY),
        (b"\x01", DropReason.SHORT),
        (b"\x02\x00" + FRAME, DropReason.VERSION),
        (b"\x01\x80" + FRAME, DropReason.FLAGS),
        (b"\x01\x02" + FRAME, DropReason.SEALED_NO_KEY),  # sealed, and no key here
        (b"\x01\x00" + FRAME[:13], DropReason.RUNT),
        (b"\x01\x01" + bytes(11), DropReason.SHORT),
        (b"\x01\x01" + bytes(12) + FRAME[:13], DropReason.RUNT),
        (b"\x01\x00" + FRAME + bytes(MAX), DropReason.OVERSIZE),
        (b"\x01\x01" + b"\x01\x01" + bytes(10) + FRAME, DropReason.VNET),  # csum_start 0
        (b"\x01\x01" + b"\x00\x00" + bytes(10) + FRAME + bytes(MAX), DropReason.OVERSIZE),
        (b"\x01\x00" + FRAME, None),
        (b"\x01\x01" + b"\x02\x00" + bytes(10) + FRAME, None),  # DATA_VALID
        (b"\x01\x00" + FRAME[:14], None),
        (b"\x01\x00" + FRAME + bytes(MAX - len(FRAME)), None),
    ],
)
def test_check(msg, reason):
    assert wire.check(msg, MAX) is reason
    assert wire.check(memoryview(msg), MAX) is reason


def test_check_raw():
    assert wire.check_raw(b"", MAX) is DropReason.EMPTY
    assert wire.check_raw(FRAME[:13], MAX) is DropReason.RUNT
    assert wire.check_raw(FRAME + bytes(MAX), MAX) is DropReason.OVERSIZE
    assert wire.check_raw(FRAME, MAX) is None


def test_encode_round_trip():
    msg = wire.encode(FRAME)
    assert wire.check(msg, MAX) is None
    assert msg[wire.frame_offset(msg[1]) :] == FRAME
    vh = bytes([2, 0]) + bytes(10)  # DATA_VALID
    msg = wire.encode(FRAME, vh)
    assert wire.check(msg, MAX) is None
    off = wire.frame_offset(msg[1])
    assert msg[off:] == FRAME and msg[off - 12 : off] == vh
    with pytest.raises(ValueError):
        wire.encode(FRAME, b"\x00" * 10)


@given(st.binary(max_size=3000))
def test_decoder_never_raises(data):
    reason = wire.check(data, MAX)
    assert reason is None or isinstance(reason, DropReason)
    if reason is None:
        off = wire.frame_offset(data[1])
        assert 14 <= len(data) - off <= MAX


@given(st.binary(min_size=14, max_size=MAX), st.booleans())
def test_encoded_frames_always_pass(frame, with_vnet):
    msg = wire.encode(frame, bytes(12) if with_vnet else None)
    assert wire.check(msg, MAX) is None
    assert msg[wire.frame_offset(msg[1]) :] == frame
