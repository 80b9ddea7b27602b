"""Duplicate-MAC detection: say it, don't guess (EVPN's model).

The server never returns a node's own frames (``no_echo``), so a frame
from the network carrying our source MAC was sent by another node that
uses our MAC: cloned VMs with one /etc/machine-id, or a ``--mac`` given
twice.  Every such frame is counted (``dup_mac``); the first one, and
then at most one every LOG_INTERVAL seconds, is logged as a warning
naming the MAC and, where the control plane knows it, the other node.
At start-up the daemon also asks ``peers`` once and logs at ERROR if
another node already has our MAC.

The state shows in ``status`` (``duplicate_mac``) and metrics while a
duplicate was seen within FORGET_AFTER seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..core.control import NodeInfo
from ..core.mac import format_mac

log = logging.getLogger(__name__)

LOG_INTERVAL = 30.0
FORGET_AFTER = 300.0
LOOKUP_TIMEOUT = 0.5
RETRIES, RETRY_AFTER = 3, 2.0  # while the other node is not known yet


@dataclass(frozen=True, slots=True)
class OtherNode:
    node_id: str
    hostname: str
    dev: str
    netns: str | None

    def describe(self) -> str:
        where = f" netns={self.netns}" if self.netns else ""
        return f"node={self.node_id} host={self.hostname} dev={self.dev}{where}"


class DuplicateMac:
    """Tracks frames that came back with our MAC as their source.

    ``seen()`` is called by the tunnel per such frame (cheap: a timestamp
    and, at most every LOG_INTERVAL s, a lookup task).  ``lookup`` asks the
    control plane for the nodes of the network."""

    def __init__(
        self,
        mac: Callable[[], bytes],
        node_id: str,
        lookup: Callable[[float], Awaitable[list[NodeInfo]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mac = mac
        self._node_id = node_id
        self.lookup = lookup
        self._clock = clock
        self.frames = 0
        self.first_seen: float | None = None
        self.last_seen: float | None = None
        self.others: list[OtherNode] = []
        self._which: bytes = b""  # the MAC the state is about
        self._last_log = -1e9
        self._task: asyncio.Task[None] | None = None

    def _reset_if_mac_changed(self) -> None:
        if self._which != self._mac():
            self._which = self._mac()
            self.frames = 0
            self.first_seen = self.last_seen = None
            self.others = []

    def seen(self, subject: str) -> None:
        """A frame with our source MAC arrived on ``subject``."""
        self._reset_if_mac_changed()
        now = self._clock()
        self.frames += 1
        if self.first_seen is None:
            self.first_seen = now
        self.last_seen = now
        if now - self._last_log < LOG_INTERVAL:
            return
        self._last_log = now
        if self.lookup is None:
            self._warn(subject)
        elif self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._find_and_warn(subject), name="dup-mac-lookup"
            )

    async def _find_and_warn(self, subject: str) -> None:
        """Warn now; if the other node is not known yet (it may still be
        starting: its frames come before its control plane answers), ask
        again a few times and warn once more when it is named."""
        await self._find()
        self._warn(subject)
        for _ in range(RETRIES):
            if self.others:
                return
            await asyncio.sleep(RETRY_AFTER)
            await self._find()
            if self.others:
                self._warn(subject)

    async def _find(self, peers: list[NodeInfo] | None = None) -> None:
        assert self.lookup is not None
        try:
            if peers is None:
                peers = await self.lookup(LOOKUP_TIMEOUT)
        except Exception as e:  # the control plane is best effort here
            log.debug("duplicate MAC lookup failed error=%r", e)
            return
        mac = format_mac(self._mac())
        found = [
            OtherNode(p.node_id, p.hostname, p.dev, p.netns)
            for p in peers
            if p.node_id != self._node_id and mac in p.macs
        ]
        if found:
            self.others = found

    def _warn(self, subject: str) -> None:
        others = "; ".join(o.describe() for o in self.others) or "unknown (no control-plane answer)"
        log.warning(
            "duplicate MAC mac=%s frames=%d subject=%s other=%s: another node uses our MAC; "
            "give each node its own (--mac, or a distinct /etc/machine-id)",
            format_mac(self._mac()),
            self.frames,
            subject,
            others,
        )

    async def check_at_start(self, peers: list[NodeInfo] | None = None) -> None:
        """Ask ``peers`` once (or look at the answers given); ERROR if
        another node already has our MAC."""
        if self.lookup is None:
            return
        self._reset_if_mac_changed()
        await self._find(peers)
        if self.others:
            now = self._clock()
            self.first_seen = self.last_seen = now
            self._last_log = now
            log.error(
                "duplicate MAC mac=%s other=%s: another node of this network already has our "
                "MAC, so neither gets its frames; give each node its own (--mac, or a distinct "
                "/etc/machine-id)",
                format_mac(self._mac()),
                "; ".join(o.describe() for o in self.others),
            )

    def status(self) -> dict[str, object] | None:
        """The ``duplicate_mac`` field: None unless seen within FORGET_AFTER s."""
        self._reset_if_mac_changed()
        if self.last_seen is None or self._clock() - self.last_seen > FORGET_AFTER:
            return None
        return {
            "mac": format_mac(self._mac()),
            "frames": self.frames,
            "last_seen_s_ago": round(self._clock() - self.last_seen, 1),
            "others": [
                {"node_id": o.node_id, "hostname": o.hostname, "dev": o.dev, "netns": o.netns}
                for o in self.others
            ],
        }

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
