"""core/arp.py: which ARP frames are routed, to which subject, and the
repeat that reaches nodes which do not route ARP."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlan_nats.core import arp
from vlan_nats.core.subjects import SubjectScheme

BCAST = b"\xff" * 6
MAC1 = bytes.fromhex("020000000001")
IP1 = bytes([198, 18, 0, 1])
IP2 = bytes([198, 18, 0, 2])


def arp_frame(op=1, sha=MAC1, spa=IP1, tpa=IP2, dst=BCAST, ethertype=b"\x08\x06", head=None):
    head = head or b"\x00\x01\x08\x00\x06\x04"
    return dst + sha + ethertype + head + op.to_bytes(2, "big") + sha + spa + bytes(6) + tpa


def test_a_request_parses():
    assert arp.request(arp_frame(), 0) == (MAC1 + IP1, IP2)
    assert arp.request(b"xx" + arp_frame(), 2) == (MAC1 + IP1, IP2)


@pytest.mark.parametrize(
    "frame",
    [
        arp_frame(op=2),  # a reply
        arp_frame(ethertype=b"\x08\x00"),  # IPv4
        arp_frame(ethertype=b"\x81\x00"),  # tagged: the tag's VLAN has its own addresses
        arp_frame(head=b"\x00\x06\x08\x00\x06\x04"),  # IEEE 802 hardware
        arp_frame()[:41],  # truncated
    ],
)
def test_other_frames_are_not_requests(frame):
    assert arp.request(frame, 0) is None


def test_the_rule_and_its_table():
    assert arp.arp_rule(gratuitous=False, repeat=False) == arp.ROUTE
    assert arp.arp_rule(gratuitous=True, repeat=False) == arp.BROADCAST
    assert arp.arp_rule(gratuitous=False, repeat=True) == arp.BROADCAST
    assert arp.arp_table() == [arp.ROUTE, arp.BROADCAST, arp.BROADCAST, arp.BROADCAST]


def test_route_first_then_broadcast_the_repeat():
    mem = arp.RepeatMemory()
    assert arp.route(arp_frame(), 0, mem, now=10.0) == IP2
    # The kernel's repeat after 1 s: to broadcast, a node that does not route hears it.
    assert arp.route(arp_frame(), 0, mem, now=11.0) is None
    assert arp.route(arp_frame(), 0, mem, now=12.0) is None
    # Another target, or another sender, is a first ask.
    assert arp.route(arp_frame(tpa=IP1, spa=IP2), 0, mem, now=12.0) == IP1
    # A new resolution long after: routed again.
    assert arp.route(arp_frame(), 0, mem, now=12.0 + arp.REPEAT_WINDOW + 0.1) == IP2


def test_gratuitous_and_probes():
    mem = arp.RepeatMemory()
    assert arp.route(arp_frame(spa=IP2, tpa=IP2), 0, mem, 0.0) is None  # announcement
    probe = arp_frame(spa=bytes(4), tpa=IP2)  # arping -D, DHCP clients
    assert arp.route(probe, 0, mem, 0.0) == IP2


def test_memory_stays_bounded():
    mem = arp.RepeatMemory()
    for i in range(arp.MAX_REMEMBERED * 2):
        mem.seen(i.to_bytes(14, "big"), now=float(i))
    assert len(mem.last) <= arp.MAX_REMEMBERED


@given(st.binary(max_size=80), st.integers(0, 4))
def test_route_never_raises(data, off):
    arp.route(data, off, arp.RepeatMemory(), 0.0)


def test_targets_and_subjects():
    assert arp.ipv4_targets(("198.18.0.1/24", "fe80::1/64", "junk")) == {IP1}
    s = SubjectScheme("vlan", "7")
    assert s.arp(IP1) == "vlan.7.arp.c6120001"
    assert s.arp(IP1).startswith(s.arp_prefix)
    subs = s.subscriptions(MAC1, frozenset(), None, frozenset({IP1}))
    assert "vlan.7.arp.c6120001" in subs
    assert "vlan.7.arp.c6120001" not in s.subscriptions(MAC1, frozenset())  # off
    bridged = s.subscriptions(MAC1, frozenset(), frozenset(), frozenset({IP1}))
    assert "vlan.7.arp.*" in bridged  # bridge mode: every ARP subject
    compat = SubjectScheme("vlan", "7", compat=True)
    assert not any(".arp." in x for x in compat.subscriptions(MAC1, frozenset(), None, {IP1}))
