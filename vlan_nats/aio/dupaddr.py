"""Duplicate IPv4 addresses: probe, defend, report (core/addrclaim.py).

For each IPv4 address on the TAP the node listens on its claim subject
and answers anyone who asks with its own Claim, recording the asker as a
conflict.  A new address is probed at once, and every held address again
every PROBE_INTERVAL seconds.  A conflict is logged at ERROR when it is
first heard (naming the other node's host, dev and MAC), shown in
``status`` (``duplicate_addresses``) and in metrics while it lasts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg

from ..core import addrclaim
from ..core.addrclaim import Claim, Conflicts
from ..core.subjects import SubjectScheme
from .ctlplane import ask_all

log = logging.getLogger(__name__)


class DuplicateAddress:
    """``me(address)`` is this node's Claim on one of its addresses."""

    def __init__(
        self,
        scheme: SubjectScheme,
        me: Callable[[str], Claim],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scheme = scheme
        self.me = me
        self.clock = clock
        self.conflicts = Conflicts()
        self.nc: Client | None = None
        self._held: list[str] = []
        self._subs: dict[str, object] = {}
        self._probing: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    def set_addresses(self, cidrs: tuple[str, ...] | list[str]) -> None:
        """The TAP's addresses now (``ip addr``); new ones are probed soon."""
        held = addrclaim.ipv4_of(cidrs)
        if held != self._held:
            self._held = held
            self.conflicts.keep_only(held)
            self._changed.set()

    async def run(self, nc: Client) -> None:
        """A task, once connected: follow the addresses, probe each new one
        at once and every held one every PROBE_INTERVAL seconds."""
        self.nc = nc
        probed: dict[str, float] = {}
        while True:
            self._changed.clear()  # a change from here on wakes the next round
            await self._sync()
            now = self.clock()
            due = [a for a in self._held if now - probed.get(a, -1e9) >= addrclaim.PROBE_INTERVAL]
            for address in due:
                probed[address] = now
            for p in [a for a in probed if a not in self._held]:
                del probed[p]
            if due:
                await asyncio.gather(*(self.probe(a) for a in due))
            wait = min((addrclaim.PROBE_INTERVAL - (self.clock() - t) for t in probed.values()),
                       default=addrclaim.PROBE_INTERVAL)  # fmt: skip
            try:
                await asyncio.wait_for(self._changed.wait(), max(wait, 0.05))
            except TimeoutError:
                pass

    async def _sync(self) -> None:
        """Listen on the claim subject of each held address, and no other."""
        assert self.nc is not None
        for address in [a for a in self._subs if a not in self._held]:
            sub = self._subs.pop(address)
            try:
                await sub.unsubscribe()  # type: ignore[attr-defined]
            except Exception as e:  # a closed connection: nothing to undo
                log.debug("claim unsubscribe failed address=%s error=%r", address, e)
        for address in [a for a in self._held if a not in self._subs]:
            subject = addrclaim.claim_subject(self.scheme, address)
            try:
                self._subs[address] = await self.nc.subscribe(subject, cb=self._on_probe)
            except Exception as e:  # retried at the next change or probe round
                log.debug("claim subscribe failed address=%s error=%r", address, e)

    async def _on_probe(self, msg: Msg) -> None:
        """Another node (or the address service) asks who holds an address."""
        asker = Claim.decode(msg.data)
        if asker is None or asker.address not in self._held or not msg.reply:
            return
        mine = self.me(asker.address)
        if asker.node_id == mine.node_id:
            return  # our own probe
        # A query (the address service's: no "how") is not a claim.
        if asker.how and self.conflicts.heard(asker, self.clock()):
            self._report(asker)
        if self.nc is not None:
            try:
                await self.nc.publish(msg.reply, mine.encode())
            except Exception as e:
                log.debug("claim answer failed error=%r", e)

    async def probe(self, address: str) -> list[Claim]:
        """Ask who else holds ``address``; record and report them."""
        mine = self.me(address)
        if self.nc is None:
            return []
        try:
            answers = await ask_all(
                self.nc,
                addrclaim.claim_subject(self.scheme, address),
                mine.encode(),
                addrclaim.PROBE_WAIT,
            )
        except Exception as e:  # disconnected: the next round asks again
            log.debug("address probe failed address=%s error=%r", address, e)
            return []
        others = [
            c
            for c in (Claim.decode(a) for a in answers)
            if c is not None and c.address == address and c.node_id != mine.node_id
        ]
        if address not in self._held:
            return others
        for other in self.conflicts.probed(address, others, self.clock()):
            self._report(other)
        return others

    def _report(self, other: Claim) -> None:
        log.error(
            "duplicate address address=%s other=%s: another node of this network holds our "
            "address; ARP answers come from either of us. Give each node its own address",
            other.address,
            other.describe(),
        )

    def status(self) -> list[dict[str, object]]:
        return self.conflicts.status(self.clock())
