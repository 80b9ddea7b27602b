"""What the daemon subscribes to, and what bridge-mode learning changes.

``Subscriptions`` holds the inputs of the subject set (our MAC, the
multicast groups, the MACs learned behind our bridge) and reconciles the
NATS subscriptions with them.  ``SwitchEvents`` takes the forwarder's
learning events, once per batch, from the tunnel: it logs moves and a
full table (rate-limited), resubscribes, and ages MACs out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..core.arp import ipv4_targets
from ..core.counters import Counters
from ..core.events import Event
from ..core.forwarding import Forwarder
from ..core.mac import format_mac
from ..core.subjects import SubjectScheme
from ..ratelog import RateLimitedLog
from .datapath import SubjectSink

log = logging.getLogger(__name__)


class Subscriptions:
    def __init__(
        self,
        link: SubjectSink,
        scheme: SubjectScheme,
        forwarder: Forwarder,
        arp_routing: bool = False,
    ) -> None:
        self.link = link  # the NATS link, or the C datapath's data connection
        self.scheme = scheme
        self.forwarder = forwarder
        self.groups: frozenset[bytes] = frozenset()
        # Routed ARP: the IPv4 addresses of the device (None: not routing).
        self.arp: frozenset[bytes] | None = frozenset() if arp_routing else None
        self._cidrs: tuple[str, ...] = ()
        self._resync: asyncio.Task[None] | None = None

    def arp_routing(self, on: bool) -> None:
        """Routed ARP turned on or off (the network's definition): the ARP
        subjects follow at once."""
        self.arp = ipv4_targets(self._cidrs) if on else None
        self._resync = asyncio.get_running_loop().create_task(self.sync())
        self._resync.add_done_callback(_log_failure)

    def set_addresses(self, cidrs: tuple[str, ...]) -> bool:
        """The device's addresses (``ip addr``); True when the ARP subjects change."""
        self._cidrs = cidrs
        if self.arp is None:
            return False
        new = ipv4_targets(cidrs)
        changed, self.arp = new != self.arp, new
        return changed

    async def sync(self) -> None:
        fwd = self.forwarder
        bridged = frozenset(fwd.table.local) if fwd.bridge else None
        await self.link.set_subjects(
            self.scheme.subscriptions(fwd.mac, self.groups, bridged, self.arp)
        )

    async def add_local(self, mac: bytes) -> None:
        """Bridge mode: a MAC just learned behind the bridge gets its
        subscription before its first frame is published."""
        await self.link.add_subject(self.scheme.unicast(mac))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("subscriptions not brought up to date error=%r (the next change retries)",
                  task.exception())  # fmt: skip


class SwitchEvents:
    def __init__(
        self,
        subs: Subscriptions,
        counters: Counters,
        max_macs: int,
        bridge: str | None,
        expire: Callable[[float], list[bytes]] | None = None,
    ) -> None:
        self.subs = subs
        self.forwarder = subs.forwarder
        self.counters = counters
        self.max_macs = max_macs
        self.bridge = bridge
        self._moved_log = RateLimitedLog(log, interval=10.0)
        self._full_log = RateLimitedLog(log, interval=60.0)
        self._resync: asyncio.Task[None] | None = None
        self._resync_wanted = False
        # The datapath's ageing (the C one keeps the last-seen times).
        self.expire = expire or self.forwarder.table.expire

    def on_events(self) -> None:
        """Called by the tunnel when learning changed something (per batch)."""
        events = self.forwarder.events
        resync = False
        for kind, mac in events:
            if kind is Event.FULL:
                self.counters.macs_over_cap += 1
                self._full_log.warning(
                    "mac table full max_macs=%d mac=%s (reached by flooding only)",
                    self.max_macs,
                    format_mac(mac),
                )
                continue
            resync = True
            if kind is Event.MOVED_LOCAL:
                self._moved_log.warning(
                    "MAC moved mac=%s from=network to=bridge %s", format_mac(mac), self.bridge
                )
            elif kind is Event.MOVED_REMOTE:
                self._moved_log.warning(
                    "MAC moved mac=%s from=bridge %s to=network", format_mac(mac), self.bridge
                )
        events.clear()
        if resync:
            self._resync_wanted = True
            if self._resync is None or self._resync.done():
                self._resync = asyncio.get_running_loop().create_task(self._resync_loop())

    async def _resync_loop(self) -> None:
        # Events that arrive while a sync runs are picked up by the next turn.
        while self._resync_wanted:
            self._resync_wanted = False
            await self.subs.sync()

    async def age(self) -> None:
        """Forget MACs idle longer than the ageing time (a task)."""
        fwd = self.forwarder
        interval = max(0.5, min(fwd.table.ageing / 4, 10.0))
        while True:
            await asyncio.sleep(interval)
            gone = self.expire(time.monotonic())
            if gone and fwd.bridge:
                log.debug("macs aged out macs=%s", ",".join(format_mac(m) for m in gone))
                await self.subs.sync()

    def cancel(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
