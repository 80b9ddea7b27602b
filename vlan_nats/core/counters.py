"""Counters of the data path and the reasons a frame is dropped.

Per-frame problems are counted here, never raised or logged per frame.
"""

from __future__ import annotations

from enum import IntEnum

from .frames import FrameKind


class DropReason(IntEnum):
    # Messages from NATS that do not parse (wire.check).
    EMPTY = 0
    SHORT = 1  # shorter than the wire header (+ virtio header)
    VERSION = 2  # unknown wire version
    FLAGS = 3  # unknown or unsupported flag bits
    RUNT = 4  # Ethernet frame under 14 bytes
    OVERSIZE = 5  # frame larger than the device allows
    VNET = 6  # a virtio header the kernel could not have produced
    # Forwarding decisions (forwarding.Forwarder).
    # Our own source MAC arriving from the network: with no_echo the server
    # never returns our frames, so another node uses our MAC (a duplicate).
    DUP_MAC = 7
    NOT_FOR_US = 8  # unicast to another MAC
    # Local conditions.
    DISCONNECTED = 9  # NATS not connected: frame from the TAP dropped
    PUBLISH_ERROR = 10  # nats-py refused the publish
    SLOW_CONSUMER = 11  # nats-py dropped a message for us (pending limits)
    TAP_WRITE = 12  # the TAP refused a write (queue full, bad frame)
    TAP_DOWN = 13  # the TAP is down: the kernel refuses writes
    TAP_RUNT = 14  # the TAP handed us less than an Ethernet header
    # Switching (bridge mode and storm control).
    FLOOD_DUP = 15  # flooded copy of a frame that also reaches us on its own subject
    STORM = 16  # broadcast/multicast/unknown-unicast above --storm-pps
    LOCAL_DST = 17  # read from the TAP for a host behind our own bridge
    # Sealing (core.seal).
    SEALED_NO_KEY = 18  # a sealed message, but we have no key (no --key-file)
    UNSEALED = 19  # a plain message on a sealed network
    SEAL_KEY = 20  # sealed under a key we do not hold
    SEAL_AUTH = 21  # does not authenticate: wrong key, altered, or moved to another subject
    REPLAY = 22  # a counter this session already used
    SEAL_STALE = 23  # sender's clock more than the allowed skew away from ours
    # Bridge mode, C datapath: a frame from a new MAC waits for the control
    # plane's verdict in a bounded queue; this one found it full.
    HOLD_FULL = 24
    # The network's definition says sealed and this node has no key: it
    # forwards nothing either way (aio/netwatch.py says why).
    NO_KEY = 25


class Counters:
    """Mutable counters owned by one tunnel.  ``snapshot()`` for reporting."""

    __slots__ = (
        "tap_rx_frames",
        "tap_rx_bytes",
        "tap_rx_gso_frames",
        "tap_rx_gso_bytes",
        "tap_tx_frames",
        "tap_tx_bytes",
        "nats_tx_msgs",
        "nats_rx_msgs",
        "tx_by_kind",
        "tx_bytes_by_kind",
        "rx_by_kind",
        "rx_bytes_by_kind",
        "drops",
        "nats_disconnects",
        "nats_reconnects",
        "flooded",
        "macs_over_cap",
        "arp_routed",
        "arp_broadcast",
    )

    def __init__(self) -> None:
        self.tap_rx_frames = 0  # frames read from the TAP
        self.tap_rx_bytes = 0
        self.tap_rx_gso_frames = 0  # GSO super-frames among them (offloads at work)
        self.tap_rx_gso_bytes = 0
        self.tap_tx_frames = 0  # frames written to the TAP
        self.tap_tx_bytes = 0
        self.nats_tx_msgs = 0  # messages published
        self.nats_rx_msgs = 0  # messages received
        self.tx_by_kind = [0] * len(FrameKind)  # published, by destination kind
        self.tx_bytes_by_kind = [0] * len(FrameKind)  # their Ethernet bytes
        self.rx_by_kind = [0] * len(FrameKind)  # accepted from NATS, by destination kind
        self.rx_bytes_by_kind = [0] * len(FrameKind)
        self.drops = [0] * len(DropReason)
        self.nats_disconnects = 0  # connection lost (server gone, or it cut us off)
        self.nats_reconnects = 0
        self.flooded = 0  # unknown unicast also sent to the flood subject
        self.macs_over_cap = 0  # local MACs not learned: the table was full
        self.arp_routed = 0  # ARP requests sent to their target's subject (core/arp.py)
        self.arp_broadcast = 0  # ARP frames sent to the broadcast subject

    def drop(self, reason: DropReason, n: int = 1) -> None:
        self.drops[reason] += n

    def snapshot(self) -> dict[str, object]:
        return {
            "tap_rx_frames": self.tap_rx_frames,
            "tap_rx_bytes": self.tap_rx_bytes,
            "tap_rx_gso_frames": self.tap_rx_gso_frames,
            "tap_rx_gso_bytes": self.tap_rx_gso_bytes,
            "tap_tx_frames": self.tap_tx_frames,
            "tap_tx_bytes": self.tap_tx_bytes,
            "nats_tx_msgs": self.nats_tx_msgs,
            "nats_rx_msgs": self.nats_rx_msgs,
            "tx_by_kind": {k.name.lower(): self.tx_by_kind[k] for k in FrameKind},
            "tx_bytes_by_kind": {k.name.lower(): self.tx_bytes_by_kind[k] for k in FrameKind},
            "rx_by_kind": {k.name.lower(): self.rx_by_kind[k] for k in FrameKind},
            "rx_bytes_by_kind": {k.name.lower(): self.rx_bytes_by_kind[k] for k in FrameKind},
            "drops": {r.name.lower(): self.drops[r] for r in DropReason if self.drops[r]},
            "nats_disconnects": self.nats_disconnects,
            "nats_reconnects": self.nats_reconnects,
            "flooded": self.flooded,
            "macs_over_cap": self.macs_over_cap,
            "arp_routed": self.arp_routed,
            "arp_broadcast": self.arp_broadcast,
        }


def _layout(field: str) -> tuple[str, ...]:
    if field in ("tx_by_kind", "tx_bytes_by_kind", "rx_by_kind", "rx_bytes_by_kind"):
        return tuple(f"{field}.{k.name.lower()}" for k in FrameKind)
    return (field,)


# The C datapath's counter array, in order (csrc/build_datapath.py generates
# its C enum and names from this and DropReason): Counters' fields, one
# entry per item of a by-kind list, then events_lost (the C datapath's
# events the control plane did not read in time); the drops follow.
DATAPATH_COUNTERS: tuple[str, ...] = (
    *(name for f in Counters.__slots__ if f != "drops" for name in _layout(f)),
    "events_lost",
)
