"""Forwarding decisions for frames arriving from NATS.

A node accepts a frame when it is not its own (no echo: IPv6 DAD breaks if
a host hears its own neighbour solicitations) and when a unicast frame is
addressed to its MAC.  Group frames are accepted; the kernel filters the
groups it has not joined.
"""

from __future__ import annotations

from .counters import DropReason


class Forwarder:
    __slots__ = ("mac",)

    def __init__(self, mac: bytes) -> None:
        self.mac = mac

    def ingress(self, msg: bytes, off: int) -> DropReason | None:
        """Decide on a frame starting at ``msg[off]`` (at least 14 bytes)."""
        # startswith(x, start) compares in place: no slice per frame.
        if msg.startswith(self.mac, off + 6):
            return DropReason.ECHO
        if not msg[off] & 0x01 and not msg.startswith(self.mac, off):
            return DropReason.NOT_FOR_US
        return None
