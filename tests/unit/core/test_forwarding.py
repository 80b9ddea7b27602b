from vlan_nats.core.counters import Counters, DropReason
from vlan_nats.core.forwarding import Forwarder
from vlan_nats.core.switching import MacTable

ME = bytes.fromhex("020000000001")
PEER = bytes.fromhex("020000000002")
BEHIND = bytes.fromhex("020000000003")  # a host behind our bridge
OTHER = bytes.fromhex("020000000009")
MCAST = bytes.fromhex("333300000001")


def frame(dst: bytes, src: bytes) -> bytes:
    return dst + src + b"\x08\x00" + bytes(46)


def test_plain_node_ingress():
    f = Forwarder(ME)
    assert f.ingress(frame(ME, PEER), 0, 0) is None
    assert f.ingress(frame(b"\xff" * 6, PEER), 0, 0) is None
    assert f.ingress(b"\x01\x00" + frame(MCAST, PEER), 2, 0) is None
    assert f.ingress(frame(b"\xff" * 6, ME), 0, 0) is DropReason.DUP_MAC
    assert f.ingress(frame(ME, ME), 0, 0) is DropReason.DUP_MAC
    assert f.ingress(frame(OTHER, PEER), 0, 0) is DropReason.NOT_FOR_US
    assert f.events == []


def test_remote_learning_makes_destinations_known():
    f = Forwarder(ME)
    assert f.unknown(PEER, 0)
    f.ingress(frame(ME, PEER), 0, now=5)
    assert not f.unknown(PEER, 100)
    assert f.unknown(PEER, 306)  # aged out (300 s): flood again


def test_mac_change_follows():
    f = Forwarder(ME)
    f.mac = PEER
    assert f.ingress(frame(ME, OTHER), 0, 0) is DropReason.NOT_FOR_US
    assert f.ingress(frame(PEER, ME), 0, 0) is None
    assert f.table.pinned == {PEER}


def test_bridge_ingress():
    f = Forwarder(ME, MacTable(), bridge=True)
    f.learn_local(BEHIND, 0)
    assert f.events == [("local", BEHIND)]
    f.events.clear()
    assert f.ingress(frame(BEHIND, PEER), 0, 1) is None  # served here
    assert f.ingress(frame(OTHER, PEER), 0, 1) is DropReason.NOT_FOR_US
    # Through the flood subject: only what we do not also get on its subject.
    assert f.ingress(frame(OTHER, PEER), 0, 1, flooded=True) is None
    assert f.ingress(frame(BEHIND, PEER), 0, 1, flooded=True) is DropReason.FLOOD_DUP


def test_bridge_mac_moves_follow_the_latest():
    f = Forwarder(ME, MacTable(), bridge=True)
    f.ingress(frame(b"\xff" * 6, PEER), 0, 1)
    f.learn_local(PEER, 2)  # PEER now talks from behind our bridge
    assert f.events == [("moved_local", PEER)]
    assert f.table.is_local(PEER) and f.unknown(PEER, 2)
    f.events.clear()
    # ... and then from the network again (a VM migrated back).
    assert f.ingress(frame(b"\xff" * 6, PEER), 0, 3) is None
    assert f.events == [("moved_remote", PEER)]
    assert not f.table.is_local(PEER) and not f.unknown(PEER, 3)


def test_full_table_is_reported():
    f = Forwarder(ME, MacTable(max_macs=2), bridge=True)
    f.learn_local(BEHIND, 0)  # ME + BEHIND fill it
    f.learn_local(OTHER, 0)
    assert f.events[-1] == ("full", OTHER)


def test_counters_snapshot():
    c = Counters()
    c.drop(DropReason.RUNT, 3)
    snap = c.snapshot()
    assert snap["drops"] == {"runt": 3}
    assert snap["tx_by_kind"] == {"unicast": 0, "broadcast": 0, "multicast": 0}
