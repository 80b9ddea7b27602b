from vlan_nats.core.counters import Counters, DropReason
from vlan_nats.core.forwarding import Forwarder

ME = bytes.fromhex("020000000001")
PEER = bytes.fromhex("020000000002")


def frame(dst: bytes, src: bytes) -> bytes:
    return dst + src + b"\x08\x00" + bytes(46)


def test_ingress_decisions():
    f = Forwarder(ME)
    assert f.ingress(frame(ME, PEER), 0) is None
    assert f.ingress(frame(b"\xff" * 6, PEER), 0) is None
    assert f.ingress(b"\x01\x00" + frame(bytes.fromhex("333300000001"), PEER), 2) is None
    assert f.ingress(frame(b"\xff" * 6, ME), 0) is DropReason.ECHO
    assert f.ingress(frame(ME, ME), 0) is DropReason.ECHO
    assert f.ingress(frame(bytes.fromhex("020000000003"), PEER), 0) is DropReason.NOT_FOR_US


def test_mac_change_follows():
    f = Forwarder(ME)
    f.mac = PEER
    assert f.ingress(frame(ME, bytes.fromhex("020000000009")), 0) is DropReason.NOT_FOR_US
    assert f.ingress(frame(PEER, ME), 0) is None


def test_counters_snapshot():
    c = Counters()
    c.drop(DropReason.RUNT, 3)
    snap = c.snapshot()
    assert snap["drops"] == {"runt": 3}
    assert snap["tx_by_kind"] == {"unicast": 0, "broadcast": 0, "multicast": 0}
