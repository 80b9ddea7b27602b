"""MTU mismatches, said on both sides.

A node whose MTU is below a sender's drops that sender's big frames: the
sender sees plain loss.  So the receiver names the sender (by the frame's
source MAC, looked up in ``peers``) and tells it over the control plane
(``<ctl>.node.<id>.notice``); both log it (rate-limited) and show it in
``status`` and metrics while it lasts.  At start (and when our MTU
changes) the MTUs the other nodes report in ``peers`` are compared with
ours, so a node restarted at another MTU says so before a frame is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..core.control import NodeInfo, parse_request
from ..core.mac import format_mac

log = logging.getLogger(__name__)

LOG_INTERVAL = 30.0  # per other node
FORGET_AFTER = 300.0  # a mismatch not seen again since is forgotten
LOOKUP_TIMEOUT = 0.5
RETRIES, RETRY_AFTER = 3, 1.0  # while the sender is not found in peers
SETTLE = 1.5  # s: after our MTU changed, the others' are compared this much later

Notify = Callable[[str, bytes], Awaitable[None]]  # (node id, notice)


def node_name(hostname: str, netns: str | None, dev: str, mac: str) -> str:
    where = "/".join(x for x in (hostname, netns, dev) if x)
    return f"{where} ({mac})"


@dataclass(slots=True)
class _Seen:
    name: str  # host/netns/dev (MAC), or the MAC alone while unknown
    size: int
    mtu: int  # the receiver's MTU
    frames: int
    last: float
    logged: float = -1e9


class MtuWatch:
    """``me()`` is this node's NodeInfo; ``lookup`` gathers ``peers``;
    ``notify(node_id, data)`` sends a notice to one node."""

    def __init__(
        self,
        me: Callable[[], NodeInfo],
        mtu: Callable[[], int],
        lookup: Callable[[float], Awaitable[list[NodeInfo]]] | None = None,
        notify: Notify | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.me = me
        self.mtu = mtu
        self.lookup = lookup
        self.notify = notify
        self.clock = clock
        self.too_big_from: dict[bytes, _Seen] = {}  # senders whose frames we dropped
        self.too_big_for: dict[str, _Seen] = {}  # receivers that dropped ours, by node id
        self.differs: dict[int, list[str]] = {}  # other MTUs in peers -> the nodes
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the receiver -----------------------------------------------------
    def oversize(self, src: bytes | None, size: int) -> None:
        """A frame of ``size`` bytes from ``src`` exceeded our MTU (the
        datapath calls this on the drop path)."""
        if src is None:
            return
        now = self.clock()
        seen = self.too_big_from.get(src)
        if seen is None:
            seen = self.too_big_from[src] = _Seen(format_mac(src), size, self.mtu(), 0, now)
        seen.frames += 1
        seen.size, seen.mtu, seen.last = max(seen.size, size), self.mtu(), now
        if now - seen.logged >= LOG_INTERVAL:
            seen.logged = now
            self._spawn(self._name_and_tell(src, seen))

    async def _name_and_tell(self, src: bytes, seen: _Seen) -> None:
        # The sender may not answer at once (busy, or still starting, as
        # with a duplicate MAC): ask again a few times before giving up.
        node = None
        for attempt in range(RETRIES):
            node = await self._find(format_mac(src))
            if node is not None:
                break
            if attempt + 1 < RETRIES:
                await asyncio.sleep(RETRY_AFTER)
        if node is not None:
            seen.name = node_name(node.hostname, node.netns, node.dev, format_mac(src))
        log.warning(
            "frames above our MTU dropped from=%s size=%d mtu=%d frames=%d: the sender's MTU "
            "is larger; give every node of the network the same MTU (ip link set dev DEV mtu N)",
            seen.name,
            seen.size,
            seen.mtu,
            seen.frames,
        )
        if node is not None and self.notify is not None:
            me = self.me()
            notice = {
                "kind": "mtu",
                "node_id": me.node_id,
                "hostname": me.hostname,
                "netns": me.netns,
                "dev": me.dev,
                "mac": me.macs[0] if me.macs else "",
                "mtu": seen.mtu,
                "size": seen.size,
                "frames": seen.frames,
            }
            try:
                await self.notify(node.node_id, json.dumps(notice).encode())
            except Exception as e:  # best effort: the next drop tries again
                log.debug("mtu notice failed error=%r", e)

    async def _find(self, mac: str) -> NodeInfo | None:
        if self.lookup is None:
            return None
        try:
            peers = await self.lookup(LOOKUP_TIMEOUT)
        except Exception as e:
            log.debug("mtu lookup failed error=%r", e)
            return None
        return next((p for p in peers if mac in p.macs), None)

    # -- the sender -------------------------------------------------------
    def notice(self, data: bytes) -> None:
        """A receiver tells us it dropped our frames as too large."""
        d = parse_request(data)
        if d is None or d.get("kind") != "mtu":
            return
        node_id, mtu, size = d.get("node_id"), d.get("mtu"), d.get("size")
        if not (isinstance(node_id, str) and isinstance(mtu, int) and isinstance(size, int)):
            return
        netns = d.get("netns")
        name = node_name(str(d.get("hostname") or "?"), netns if isinstance(netns, str) else None,
                         str(d.get("dev") or "?"), str(d.get("mac") or "?"))  # fmt: skip
        now = self.clock()
        seen = self.too_big_for.get(node_id)
        if seen is None:
            seen = self.too_big_for[node_id] = _Seen(name, size, mtu, 0, now)
        frames = d.get("frames")
        seen.frames = frames if isinstance(frames, int) else 0
        seen.name, seen.size, seen.mtu, seen.last = name, size, mtu, now
        if now - seen.logged >= LOG_INTERVAL:
            seen.logged = now
            log.warning(
                "our frames exceed another node's MTU other=%s its_mtu=%d size=%d our_mtu=%d: "
                "it drops them; give every node of the network the same MTU",
                name,
                mtu,
                size,
                self.mtu(),
            )

    # -- the neighbours' MTUs ---------------------------------------------
    def check_peers(self, peers: list[NodeInfo]) -> None:
        """Compare our MTU with the MTUs other nodes report."""
        ours, me = self.mtu(), self.me().node_id
        differs: dict[int, list[str]] = {}
        for p in peers:
            if p.node_id != me and isinstance(p.mtu, int) and p.mtu != ours:
                mac = p.macs[0] if p.macs else "?"
                differs.setdefault(p.mtu, []).append(node_name(p.hostname, p.netns, p.dev, mac))
        if differs and differs != self.differs:
            log.warning(
                "mtu %d differs from other nodes' of this network: %s; big frames between us "
                "are lost; give every node the same MTU",
                ours,
                "; ".join(f"{m} on {', '.join(n)}" for m, n in sorted(differs.items())),
            )
        self.differs = differs

    async def recheck(self) -> None:
        """Our MTU changed: compare again (and forget what no longer holds),
        after SETTLE seconds: when the network's definition changes the MTU,
        every node changes it within that time."""
        self.too_big_from.clear()
        self.differs = {}
        await asyncio.sleep(SETTLE)
        if self.lookup is not None:
            try:
                self.check_peers(await self.lookup(LOOKUP_TIMEOUT))
            except Exception as e:
                log.debug("mtu recheck failed error=%r", e)

    def mtu_changed(self) -> None:
        self._spawn(self.recheck())

    # -- views ------------------------------------------------------------
    def problems(self) -> list[dict[str, object]]:
        """The ``mtu_problems`` of the status document."""
        now = self.clock()
        for table in (self.too_big_from, self.too_big_for):
            for k in [k for k, s in table.items() if now - s.last > FORGET_AFTER]:
                del table[k]  # type: ignore[arg-type]
        out: list[dict[str, object]] = []
        for s in self.too_big_from.values():
            out.append({"kind": "too_big_from", "node": s.name, "size": s.size, "mtu": s.mtu,
                        "frames": s.frames, "text": f"frames of {s.size} bytes from {s.name} "
                        f"exceed our MTU {s.mtu} ({s.frames} dropped)"})  # fmt: skip
        for s in self.too_big_for.values():
            out.append({"kind": "too_big_for", "node": s.name, "size": s.size, "mtu": s.mtu,
                        "frames": s.frames, "text": f"our frames of {s.size} bytes exceed the "
                        f"MTU {s.mtu} of {s.name}, which drops them"})  # fmt: skip
        for mtu, names in sorted(self.differs.items()):
            out.append({"kind": "differs", "node": ", ".join(names), "mtu": mtu,
                        "text": f"our MTU {self.mtu()} differs from {mtu} on "
                        f"{', '.join(names)}"})  # fmt: skip
        return out

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        for t in self._tasks:
            t.cancel()
