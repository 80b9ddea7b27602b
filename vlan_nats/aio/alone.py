"""A node alone on its network says so.

A typo in ``--network`` (``Obs`` for ``obs``) or ``--subject-prefix``
puts a node on an empty network of its own: it is ``ready`` and sees
nothing.  GRACE seconds after ready, if no frame has come from the
network and no other node answers ``peers``, that is a problem in the
log, ``status`` and metrics; it is asked again every RECHECK seconds
and cleared by the first frame or the first other node.  Only a lonely
node asks, so a busy LAN pays nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..core.control import NodeInfo

log = logging.getLogger(__name__)

GRACE = 10.0  # s after ready: nodes of a LAN started together find each other
RECHECK = 30.0
LOOKUP_TIMEOUT = 0.5


class Loneliness:
    """``heard()``: has a frame come from the network?  ``lookup`` gathers
    ``peers``."""

    def __init__(
        self,
        network: str,
        node_id: str,
        heard: Callable[[], bool],
        lookup: Callable[[float], Awaitable[list[NodeInfo]]],
        connected: Callable[[], bool] = lambda: True,
        grace: float = GRACE,
        recheck: float = RECHECK,
    ) -> None:
        self.network = network
        self.node_id = node_id
        self.heard = heard
        self.lookup = lookup
        self.connected = connected  # while not, nobody can answer: no verdict
        self.grace = grace
        self.recheck = recheck
        self.problem: str | None = None
        self._waited = 0.0

    async def run(self) -> None:
        """A task from ready on; returns once another node is known."""
        await asyncio.sleep(self.grace)
        self._waited = self.grace
        while not await self._someone():
            if not self.connected():
                await asyncio.sleep(self.recheck)
                self._waited += self.recheck
                continue
            if self.problem is None:
                log.warning(
                    "no other node on network %s: no frame arrived and no node answered "
                    "peers in %.0f s; check --network (names are case-sensitive) and "
                    "--subject-prefix against the other nodes'",
                    self.network,
                    self._waited,
                )
            self.problem = (
                f"no other node on network {self.network}: no frame and no peers answer "
                "since start (check --network, case-sensitive, and --subject-prefix)"
            )
            await asyncio.sleep(self.recheck)
            self._waited += self.recheck
        if self.problem is not None:
            log.info("another node is on network %s now", self.network)
        self.problem = None

    def current(self) -> str | None:
        """The problem, unless a frame came meanwhile (the status view)."""
        return None if self.problem is None or self.heard() else self.problem

    async def _someone(self) -> bool:
        if self.heard():
            return True
        try:
            peers = await self.lookup(LOOKUP_TIMEOUT)
        except Exception as e:  # best effort: ask again later
            log.debug("peers lookup failed error=%r", e)
            return False
        return any(p.node_id != self.node_id for p in peers) or self.heard()
