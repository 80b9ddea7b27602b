import pytest

from vlan_nats.core.frames import FrameKind, classify, max_frame_len


@pytest.mark.parametrize(
    "dst, kind",
    [
        ("ffffffffffff", FrameKind.BROADCAST),
        ("333300000001", FrameKind.MULTICAST),
        ("3333ff123456", FrameKind.MULTICAST),
        ("01005e0000fb", FrameKind.MULTICAST),
        ("0180c2000000", FrameKind.MULTICAST),
        ("020000000001", FrameKind.UNICAST),
        ("fefffffffffe", FrameKind.UNICAST),
    ],
)
def test_classify(dst, kind):
    assert classify(bytes.fromhex(dst) + b"\x02" * 8) is kind
    assert classify(memoryview(bytes.fromhex(dst))) is kind


def test_max_frame_len_leaves_room_for_two_tags():
    assert max_frame_len(1500) == 1500 + 14 + 8
