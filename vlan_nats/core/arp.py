"""Routed ARP: an ARP request goes to the subject of the address it asks
for, ``<prefix>.<network>.arp.<8 hex digits>``, instead of the broadcast
subject (docs/wire-format.md).  A node's interest in the subjects of its
own addresses is the directory: nobody keeps one.

What stays a broadcast (``arp_rule``):
- a gratuitous ARP (sender address == target address): an announcement
  everyone must hear to update their caches, as when an address moves;
- a repeat: the same sender asking for the same target again within
  REPEAT_WINDOW seconds.  Linux repeats an unanswered request after
  ``retrans_time_ms`` (1 s); an unanswered routed request means the owner
  may run a release that does not route ARP (or ``--no-arp-routing``),
  and the broadcast repeat reaches it.  So a mixed LAN resolves in about
  a second instead of failing;
- everything that is not an untagged Ethernet/IPv4 ARP request to the
  broadcast MAC (replies, tagged frames, other hardware types), and all of
  ``--compat``.

ARP probes (sender address 0.0.0.0, ``arping -D``, DHCP clients) are
requests for their target like any other: the owner hears them.

The rule is also a table (``arp_table``) that the C datapath executes;
``RepeatMemory`` is the python datapath's memory of recent requests (the C
one keeps an equivalent table).  Pure: bytes in, values out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

ETH_P_ARP = b"\x08\x06"
# Ethernet(1), IPv4(0x0800), hardware length 6, protocol length 4, request(1):
# the fixed part of an ARP request (include/uapi/linux/if_arp.h).
_REQUEST_HEAD = b"\x00\x01\x08\x00\x06\x04\x00\x01"
ARP_LEN = 28  # the ARP payload of an Ethernet/IPv4 request
REPEAT_WINDOW = 3.0  # seconds; the kernel repeats an unanswered request after 1 s
MAX_REMEMBERED = 4096

ROUTE, BROADCAST = 0, 1  # arp_rule's verdicts


def arp_rule(gratuitous: bool, repeat: bool) -> int:
    """Where a request goes: its target's subject, or the broadcast one."""
    return BROADCAST if gratuitous or repeat else ROUTE


def arp_table() -> list[int]:
    """arp_rule as a table, entry ``gratuitous * 2 + repeat`` (what the C
    datapath executes)."""
    return [arp_rule(bool(g), bool(r)) for g in (0, 1) for r in (0, 1)]


def request(frame: bytes | bytearray | memoryview, off: int) -> tuple[bytes, bytes] | None:
    """(sender hardware address + sender IPv4, target IPv4) of the untagged
    Ethernet/IPv4 ARP request at ``frame[off]``, or None for anything else.
    The caller has checked that the destination is the broadcast MAC."""
    a = off + 14
    if len(frame) < a + ARP_LEN or frame[off + 12 : off + 14] != ETH_P_ARP:
        return None
    if frame[a : a + 8] != _REQUEST_HEAD:
        return None
    return bytes(frame[a + 8 : a + 18]), bytes(frame[a + 24 : a + 28])


class RepeatMemory:
    """When each (sender, target) pair last asked, to tell a repeat."""

    __slots__ = ("window", "last")

    def __init__(self, window: float = REPEAT_WINDOW) -> None:
        self.window = window
        self.last: dict[bytes, float] = {}

    def seen(self, key: bytes, now: float) -> bool:
        """True when ``key`` asked within the window; remembers this ask."""
        last = self.last
        before = last.get(key)
        if len(last) >= MAX_REMEMBERED and before is None:
            for k in [k for k, t in last.items() if now - t > self.window]:
                del last[k]
            if len(last) >= MAX_REMEMBERED:
                last.clear()
        last[key] = now
        return before is not None and now - before <= self.window


def route(
    frame: bytes | bytearray | memoryview, off: int, memory: RepeatMemory, now: float
) -> bytes | None:
    """The target address (4 bytes) whose subject the broadcast frame at
    ``frame[off]`` goes to, or None: it stays a broadcast."""
    req = request(frame, off)
    if req is None:
        return None
    sender, target = req
    gratuitous = sender[6:] == target
    # The sender's MAC and address: a probe (0.0.0.0) is told apart by MAC.
    repeat = not gratuitous and memory.seen(sender + target, now)
    return target if arp_rule(gratuitous, repeat) == ROUTE else None


def ipv4_targets(cidrs: Iterable[str]) -> frozenset[bytes]:
    """The IPv4 addresses (4 bytes each) among ``cidrs`` ("198.18.0.1/24",
    as the device lists them): the ARP subjects a node listens to."""
    out = set()
    for c in cidrs:
        try:
            a = ipaddress.ip_interface(c).ip
        except ValueError:
            continue
        if a.version == 4:
            out.add(a.packed)
    return frozenset(out)
