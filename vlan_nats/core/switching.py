"""Switch state for bridge mode: MAC learning, ageing, unknown-unicast
decisions, MAC moves, and storm control.  Time is passed in (seconds from
any monotonic clock); nothing here does I/O.

A node learns two kinds of MACs:

- *local*: source MACs of frames read from its TAP (hosts behind its bridge,
  and itself).  The node subscribes to their unicast subjects.  Capped at
  ``max_macs``; above the cap a MAC is counted and reached by flooding only.
- *remote*: source MACs of frames received from the network.  A unicast
  destination not seen as remote within the ageing time is *unknown*: the
  frame also goes to the flood subject, which bridge-mode nodes receive, so
  that a silent host behind some bridge is reachable.
"""

from __future__ import annotations

from enum import Enum


class Learn(Enum):
    KNOWN = "known"  # refreshed, nothing changed
    NEW = "new"  # newly learned: subscribe to its subject
    MOVED = "moved"  # was on the other side until now
    FULL = "full"  # table full: not learned (flood only)


def remote_limit(max_macs: int) -> int:
    """How many remote MACs a node remembers before it forgets them all."""
    return 4 * max_macs


class MacTable:
    __slots__ = ("ageing", "max_macs", "local", "remote", "pinned")

    def __init__(self, ageing: float = 300.0, max_macs: int = 4096) -> None:
        self.ageing = ageing
        self.max_macs = max_macs
        self.local: dict[bytes, float] = {}
        self.remote: dict[bytes, float] = {}
        self.pinned: set[bytes] = set()  # never aged out (the TAP's own MAC)

    def learn_local(self, mac: bytes, now: float) -> Learn:
        """A frame with source ``mac`` was read from our TAP."""
        if mac in self.local:
            self.local[mac] = now
            return Learn.KNOWN
        moved = self.remote.pop(mac, None) is not None
        if len(self.local) >= self.max_macs:
            return Learn.FULL
        self.local[mac] = now
        return Learn.MOVED if moved else Learn.NEW

    def learn_remote(self, mac: bytes, now: float) -> Learn:
        """A frame with source ``mac`` arrived from the network."""
        if mac in self.remote:
            self.remote[mac] = now
            return Learn.KNOWN
        self.remote[mac] = now
        if mac in self.local and mac not in self.pinned:
            del self.local[mac]
            return Learn.MOVED
        if len(self.remote) > remote_limit(self.max_macs):
            # Bounded: forget them all; unicast to them floods until each is
            # heard again (storm-limited).  The C datapath does the same.
            self.remote.clear()
            self.remote[mac] = now
        return Learn.NEW

    def is_known_remote(self, mac: bytes, now: float) -> bool:
        seen = self.remote.get(mac)
        return seen is not None and now - seen <= self.ageing

    def is_local(self, mac: bytes) -> bool:
        return mac in self.local

    def expire(self, now: float) -> list[bytes]:
        """Forget MACs idle for longer than the ageing time; returns the
        local ones forgotten (unsubscribe from their subjects)."""
        gone = [m for m, t in self.local.items() if now - t > self.ageing and m not in self.pinned]
        for m in gone:
            del self.local[m]
        for m in [m for m, t in self.remote.items() if now - t > self.ageing]:
            del self.remote[m]
        return gone


class TokenBucket:
    """Storm control: at most ``rate`` events per second, bursts of ``burst``."""

    __slots__ = ("rate", "burst", "tokens", "last")

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate / 10.0, 1.0)
        self.tokens = self.burst
        self.last = now

    def allow(self, now: float) -> bool:
        if self.rate <= 0:
            return True  # storm control off
        tokens = self.tokens + (now - self.last) * self.rate
        self.last = now
        if tokens >= 1.0:
            self.tokens = min(tokens, self.burst) - 1.0
            return True
        self.tokens = tokens
        return False
