"""Forwarding decisions, both directions, for plain and bridge-mode nodes.

From NATS to the TAP, a node accepts a frame when its source is not our own
MAC (IPv6 DAD breaks if a host hears its own neighbour solicitations; and
since the server never echoes our frames back, such a frame comes from
another node that uses our MAC: ``DUP_MAC``) and
when a unicast frame is addressed to a MAC it serves: its own, or in
bridge mode one learned behind its bridge.  Group frames are accepted; the
kernel (or the bridge) filters further.  A unicast frame that came through
the flood subject is dropped if it also reaches us on its own subject.

From the TAP to NATS, every node tells unknown unicast apart: a
destination not seen on the network within the ageing time also goes to
the flood subject, so a silent host behind a bridge is reachable.  Group
frames and those flooded copies spend storm tokens (switching.TokenBucket);
a frame for a host behind our own bridge stays here.  That rule is
``egress_rule``; both datapaths execute it as ``egress_table``.

Source MACs are learned on the way (switching.MacTable); what changed is
left in ``events`` for the I/O layer (subscribe, unsubscribe, log).

The accept/drop rule for a frame from the network is ``ingress_rule``; the
python datapath applies it per frame, and the C datapath gets it as the
table ``ingress_table`` computes from it: written once, here.
"""

from __future__ import annotations

from .counters import DropReason
from .events import Event
from .switching import Learn, MacTable

# What changed in the MAC table, for the I/O layer: (kind, mac).
MacChange = tuple[Event, bytes]

# Destination classes of a frame from the network, for ingress_rule.
DST_GROUP, DST_OURS, DST_SERVED, DST_OTHER = range(4)
ACCEPT = -1  # an ingress_table entry: write the frame to the TAP


def ingress_rule(dst_class: int, flooded: bool, bridge: bool) -> DropReason | None:
    """Accept (None) or drop a frame whose source is not our MAC, by the
    class of its destination: a group, our MAC, a MAC served behind our
    bridge, another MAC; ``flooded``: it came through the flood subject."""
    if dst_class in (DST_GROUP, DST_OURS):
        return None
    if not bridge:
        return DropReason.NOT_FOR_US
    if flooded:
        return DropReason.FLOOD_DUP if dst_class == DST_SERVED else None
    return None if dst_class == DST_SERVED else DropReason.NOT_FOR_US


def ingress_table(bridge: bool) -> list[int]:
    """ingress_rule as a table: entry ``dst_class * 2 + flooded`` is ACCEPT
    or a DropReason (what the C datapath executes)."""
    table = []
    for cls in (DST_GROUP, DST_OURS, DST_SERVED, DST_OTHER):
        for flooded in (False, True):
            r = ingress_rule(cls, flooded, bridge)
            table.append(ACCEPT if r is None else int(r))
    return table


# Destination classes of a frame read from the TAP, for egress_rule.
OUT_KNOWN, OUT_UNKNOWN, OUT_LOCAL, OUT_GROUP = range(4)
# What to do with it: the bits of an egress_table entry.
SEND = 1  # publish on its own subject (unicast, group, or its routed ARP subject)
FLOOD = 2  # publish on the flood subject too
METERED = 4  # spends a storm token; when none is left, entry [class * 2 + 1] applies
DROP_SHIFT = 8  # entry >> DROP_SHIFT: the DropReason to count plus one (0: none)


def egress_rule(dst_class: int, compat: bool, storm_spent: bool) -> tuple[int, DropReason | None]:
    """What to do with a frame read from the TAP, by the class of its
    destination: (bits of SEND, FLOOD, METERED; the drop to count or None).
    ``storm_spent``: the frame is METERED and the storm bucket is empty."""
    if dst_class == OUT_LOCAL:
        return 0, DropReason.LOCAL_DST  # for our own side: the bridge has it
    if dst_class == OUT_KNOWN or (dst_class == OUT_UNKNOWN and compat):
        return SEND, None  # Go nodes (compat) know no flood subject
    if dst_class == OUT_UNKNOWN:
        # Above the storm rate the flooded copy goes, the unicast one stays.
        return (SEND, DropReason.STORM) if storm_spent else (SEND | FLOOD | METERED, None)
    return (0, DropReason.STORM) if storm_spent else (SEND | METERED, None)


def egress_rules(compat: bool) -> list[tuple[int, DropReason | None]]:
    """egress_rule for every entry ``dst_class * 2 + storm_spent``."""
    return [
        egress_rule(cls, compat, spent)
        for cls in (OUT_KNOWN, OUT_UNKNOWN, OUT_LOCAL, OUT_GROUP)
        for spent in (False, True)
    ]


def egress_table(compat: bool) -> list[int]:
    """egress_rules packed for the C datapath: bits | (drop + 1) << DROP_SHIFT."""
    return [
        bits | (0 if d is None else int(d) + 1) << DROP_SHIFT for bits, d in egress_rules(compat)
    ]


class Forwarder:
    __slots__ = ("_mac", "table", "bridge", "events")

    def __init__(self, mac: bytes, table: MacTable | None = None, bridge: bool = False) -> None:
        self.table = table if table is not None else MacTable()
        self.bridge = bridge
        self.events: list[MacChange] = []
        self._mac = b""
        self.mac = mac

    @property
    def mac(self) -> bytes:
        return self._mac

    @mac.setter
    def mac(self, mac: bytes) -> None:
        t = self.table
        t.pinned.discard(self._mac)
        t.local.pop(self._mac, None)
        self._mac = mac
        t.pinned.add(mac)
        t.local[mac] = 0.0

    def ingress(self, msg: bytes, off: int, now: float, flooded: bool = False) -> DropReason | None:
        """Decide on a frame at ``msg[off]`` (at least 14 bytes) that came
        from the network (``flooded``: through the flood subject)."""
        mac = self._mac
        # startswith(x, start) compares in place: no slice per frame.
        if msg.startswith(mac, off + 6):
            return DropReason.DUP_MAC
        t = self.table
        src = msg[off + 6 : off + 12]
        # A MAC we learned behind our bridge arriving from the network has
        # moved (or two nodes bridge one segment: STP's job).  NATS never
        # returns our own frames (no_echo), so follow the latest.
        if t.learn_remote(src, now) is Learn.MOVED:
            self.events.append((Event.MOVED_REMOTE, src))
        if msg[off] & 0x01 or msg.startswith(mac, off):
            return None  # the common case, decided inline (ingress_rule agrees)
        if not self.bridge:
            return DropReason.NOT_FOR_US
        served = msg[off : off + 6] in t.local
        return ingress_rule(DST_SERVED if served else DST_OTHER, flooded, True)

    def learn_local(self, src: bytes, now: float) -> None:
        """Bridge mode: a frame with source ``src`` was read from our TAP."""
        r = self.table.learn_local(src, now)
        if r is not Learn.KNOWN:
            self.events.append((LEARN_EVENT[r], src))

    def unknown(self, dst: bytes, now: float) -> bool:
        """Is unicast ``dst`` unknown on the network (flood it too)?"""
        return not self.table.is_known_remote(dst, now)


LEARN_EVENT = {Learn.NEW: Event.NEW_LOCAL, Learn.MOVED: Event.MOVED_LOCAL,
               Learn.FULL: Event.FULL}  # fmt: skip
