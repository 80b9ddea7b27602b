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
the flood subject, so a silent host behind a bridge is reachable.

Source MACs are learned on the way (switching.MacTable); what changed is
left in ``events`` for the I/O layer (subscribe, unsubscribe, log).

The accept/drop rule for a frame from the network is ``ingress_rule``; the
python datapath applies it per frame, and the C datapath gets it as the
table ``ingress_table`` computes from it: written once, here.
"""

from __future__ import annotations

from .counters import DropReason
from .switching import Learn, MacTable

# Events: (kind, mac). kinds: "local" newly learned behind our bridge;
# "moved_local" moved from the network to behind our bridge; "moved_remote"
# moved from behind our bridge to the network (unsubscribe); "full" the
# table is full (not learned).
Event = tuple[str, bytes]

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


class Forwarder:
    __slots__ = ("_mac", "table", "bridge", "events")

    def __init__(self, mac: bytes, table: MacTable | None = None, bridge: bool = False) -> None:
        self.table = table if table is not None else MacTable()
        self.bridge = bridge
        self.events: list[Event] = []
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
            self.events.append(("moved_remote", src))
        if msg[off] & 0x01 or msg.startswith(mac, off):
            return None  # the common case, decided inline (ingress_rule agrees)
        if not self.bridge:
            return DropReason.NOT_FOR_US
        served = msg[off : off + 6] in t.local
        return ingress_rule(DST_SERVED if served else DST_OTHER, flooded, True)

    def learn_local(self, src: bytes, now: float) -> None:
        """Bridge mode: a frame with source ``src`` was read from our TAP."""
        r = self.table.learn_local(src, now)
        if r is Learn.NEW:
            self.events.append(("local", src))
        elif r is Learn.MOVED:
            self.events.append(("moved_local", src))
        elif r is Learn.FULL:
            self.events.append(("full", src))

    def unknown(self, dst: bytes, now: float) -> bool:
        """Is unicast ``dst`` unknown on the network (flood it too)?"""
        return not self.table.is_known_remote(dst, now)
