"""``up --address auto``: an IPv4 address from the address service.

Like a DHCP client: ask ``<ctl>.ipam`` (any instance of the queue group
answers), add the address with its prefix length, renew at half the
lease, keep a held address until its lease runs out while no instance
answers (retrying, logged at a limited rate), and release it on a clean
stop.  The service and its rules: aio/ipam.py, core/ipam.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats

from ..core import ipam
from ..core.mac import format_mac
from ..core.subjects import SubjectScheme
from ..errors import LinkError
from ..ratelog import RateLimitedLog
from .ipam import ipam_subject

log = logging.getLogger("vlan_nats.address")

RETRY_MIN = 1.0
RETRY_MAX = 8.0
REQUEST_TIMEOUT = 2.0


@dataclass(slots=True)
class Held:
    cidr: str
    lease: float
    expires: float  # monotonic


class AddressClient:
    def __init__(
        self,
        link: object,  # NatsLink: .nc, .is_connected
        scheme: SubjectScheme,
        mac: Callable[[], bytes],
        node_id: str,
        add: Callable[[str], Awaitable[None]],
        remove: Callable[[str], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.link = link
        self.clock = clock
        self.sleep = sleep
        self.scheme = scheme
        self.mac = mac
        self.node_id = node_id
        self.add = add
        self.remove = remove
        self.held: Held | None = None
        self._added: str | None = None  # the leased address as put on the device
        self.problem: str | None = "waiting for the address service"
        self._log = RateLimitedLog(log, interval=10.0)
        self._hostname = socket.gethostname()[:64]

    def describe(self) -> list[dict[str, object]]:
        """For status: the leased address and when its lease ends."""
        h = self.held
        if h is None:
            return []
        left = max(0.0, h.expires - self.clock())
        return [
            {
                "address": h.cidr,
                "source": "ipam",
                "lease_s": h.lease,
                "expires_in_s": round(left, 1),
            }
        ]

    async def _ask(self, op: str, address: str | None) -> ipam.Reply | str:
        nc = getattr(self.link, "nc", None)
        if nc is None or not getattr(self.link, "is_connected", False):
            return "not connected to NATS"
        payload = ipam.request(op, format_mac(self.mac()), self.node_id, self._hostname, address)
        try:
            msg = await nc.request(ipam_subject(self.scheme), payload, timeout=REQUEST_TIMEOUT)
        except nats.errors.NoRespondersError:
            return "no address service instance is running (vlan-nats ipam, or hub --ipam)"
        except nats.errors.TimeoutError:
            return f"no answer from the address service within {REQUEST_TIMEOUT:g} s"
        except nats.errors.Error as e:
            return f"request failed: {e}"
        reply = ipam.parse_reply(msg.data)
        return reply if reply is not None else "a malformed answer from the address service"

    async def run(self) -> None:
        retry = RETRY_MIN
        while True:
            h = self.held
            if h is not None and self.clock() >= h.expires:
                log.warning("lease expired address=%s: address removed", h.cidr)
                self.held = None
                await self._remove(h.cidr)
                h = None
            op, addr = ("renew", h.cidr.split("/")[0]) if h else ("request", None)
            answer = await self._ask(op, addr)
            if isinstance(answer, ipam.Reply) and answer.ok:
                self.problem = await self._granted(answer)
                retry = RETRY_MIN
                await self.sleep(answer.lease / 2)
                continue
            why = answer if isinstance(answer, str) else f"refused: {answer.error}"
            self.problem = why
            if h is None:
                self._log.warning("no address yet from the address service (%s); retrying", why)
            else:
                left = h.expires - self.clock()
                self._log.warning(
                    "lease renewal failed address=%s (%s); keeping it %.0f s more, retrying",
                    h.cidr, why, left,
                )  # fmt: skip
            delay = retry if h is None else min(retry, max(0.1, (h.expires - self.clock()) / 2))
            await self.sleep(delay)
            retry = min(retry * 2, RETRY_MAX)

    async def _granted(self, reply: ipam.Reply) -> str | None:
        """Hold the lease and put its address on the device, at every renewal
        too (as a DHCP client does: an address deleted by hand comes back);
        the problem if the device refuses it (log, status, metrics)."""
        old = self.held
        self.held = Held(reply.address, reply.lease, self.clock() + reply.lease)
        if old is not None and old.cidr != reply.address:
            await self._remove(old.cidr)
        try:
            await self.add(reply.address)  # an address already there is no error
        except LinkError as e:
            log.warning("cannot add leased address=%s error=%s", reply.address, e)
            return f"cannot add the leased address {reply.address}: {e}"
        if self._added == reply.address:
            log.debug("lease renewed address=%s lease=%gs", reply.address, reply.lease)
        else:
            self._added = reply.address
            log.info("address obtained address=%s lease=%gs source=ipam",
                     reply.address, reply.lease)  # fmt: skip
        return None

    async def _remove(self, cidr: str) -> None:
        if self._added == cidr:
            self._added = None
        try:
            await self.remove(cidr)
        except LinkError as e:
            log.debug("remove address=%s error=%s", cidr, e)

    async def release(self) -> None:
        """On a clean stop: give the lease back (at most one short try)."""
        h = self.held
        if h is None:
            return
        try:
            answer: ipam.Reply | str = await asyncio.wait_for(
                self._ask("release", h.cidr.split("/")[0]), REQUEST_TIMEOUT + 1
            )
        except TimeoutError:
            answer = "timeout"
        ok = isinstance(answer, ipam.Reply) and answer.ok
        log.info(
            "lease %s address=%s", "released" if ok else "not released (it will expire)", h.cidr
        )
        self.held = None
