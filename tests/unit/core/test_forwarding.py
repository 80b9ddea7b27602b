import pytest

from vlan_nats.core.counters import Counters, DropReason
from vlan_nats.core.events import Event
from vlan_nats.core.forwarding import (
    ACCEPT,
    DROP_SHIFT,
    DST_GROUP,
    DST_OTHER,
    DST_OURS,
    DST_SERVED,
    FLOOD,
    METERED,
    OUT_GROUP,
    OUT_KNOWN,
    OUT_LOCAL,
    OUT_UNKNOWN,
    SEND,
    Forwarder,
    egress_rule,
    egress_rules,
    egress_table,
    ingress_rule,
    ingress_table,
)
from vlan_nats.core.switching import MacTable, remote_limit

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
    assert f.events == [(Event.NEW_LOCAL, BEHIND)]
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
    assert f.events == [(Event.MOVED_LOCAL, PEER)]
    assert f.table.is_local(PEER) and f.unknown(PEER, 2)
    f.events.clear()
    # ... and then from the network again (a VM migrated back).
    assert f.ingress(frame(b"\xff" * 6, PEER), 0, 3) is None
    assert f.events == [(Event.MOVED_REMOTE, PEER)]
    assert not f.table.is_local(PEER) and not f.unknown(PEER, 3)


def test_full_table_is_reported():
    f = Forwarder(ME, MacTable(max_macs=2), bridge=True)
    f.learn_local(BEHIND, 0)  # ME + BEHIND fill it
    f.learn_local(OTHER, 0)
    assert f.events[-1] == (Event.FULL, OTHER)


def test_counters_snapshot():
    c = Counters()
    c.drop(DropReason.RUNT, 3)
    snap = c.snapshot()
    assert snap["drops"] == {"runt": 3}
    assert snap["tx_by_kind"] == {"unicast": 0, "broadcast": 0, "multicast": 0}


@pytest.mark.parametrize("bridge", [False, True])
def test_ingress_table_is_the_rule(bridge):
    table = ingress_table(bridge)
    for cls in (DST_GROUP, DST_OURS, DST_SERVED, DST_OTHER):
        for flooded in (False, True):
            rule = ingress_rule(cls, flooded, bridge)
            assert table[cls * 2 + flooded] == (ACCEPT if rule is None else rule)


def test_egress_rule():
    S = DropReason.STORM
    native = {
        (OUT_KNOWN, False): (SEND, None),
        (OUT_UNKNOWN, False): (SEND | FLOOD | METERED, None),
        (OUT_UNKNOWN, True): (SEND, S),  # the flooded copy goes, the unicast stays
        (OUT_LOCAL, False): (0, DropReason.LOCAL_DST),
        (OUT_GROUP, False): (SEND | METERED, None),
        (OUT_GROUP, True): (0, S),
    }
    for (cls, spent), want in native.items():
        assert egress_rule(cls, False, spent) == want
    # Go nodes (compat) know no flood subject: unknown unicast is plain unicast.
    assert egress_rule(OUT_UNKNOWN, True, False) == (SEND, None)


@pytest.mark.parametrize("compat", [False, True])
def test_egress_table_packs_the_rules(compat):
    for (bits, drop), entry in zip(egress_rules(compat), egress_table(compat), strict=True):
        assert entry & ((1 << DROP_SHIFT) - 1) == bits
        assert entry >> DROP_SHIFT == (0 if drop is None else drop + 1)


def test_remote_table_is_bounded():
    t = MacTable(max_macs=4)
    macs = [bytes([2, 0, 0, 0, 0, i]) for i in range(remote_limit(4) + 1)]
    for m in macs:
        t.learn_remote(m, 1.0)
    # Past the limit it forgets the others and keeps the newest.
    assert t.remote == {macs[-1]: 1.0}
    assert t.is_known_remote(macs[-1], 1.0) and not t.is_known_remote(macs[0], 1.0)
