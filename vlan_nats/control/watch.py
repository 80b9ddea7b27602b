"""Watching the TAP from the kernel's side: link changes and multicast groups.

``ip link set dev X address M | mtu N | up | down`` arrive as RTM_NEWLINK;
address changes as RTM_NEWADDR/RTM_DELADDR.  The link-layer multicast list
(what the TAP has joined, IPv4 and IPv6 alike) has no rtnetlink dump on
older kernels, so it is read from /proc/net/dev_mcast of the TAP's
namespace: again on every address event, and every ``poll_interval``
seconds to catch joins without one (mDNS, an application's IP_ADD_MEMBERSHIP).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK

from . import netns
from .link import LinkState, link_state, open_iproute
from .nlthread import NetlinkThread

log = logging.getLogger(__name__)

AF_BRIDGE = 7  # include/linux/socket.h


def parse_dev_mcast(text: str, ifindex: int) -> frozenset[bytes]:
    """Group MACs of ``ifindex`` in /proc/net/dev_mcast text
    (``index name users global hexaddr`` per line)."""
    groups = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == str(ifindex) and len(parts[4]) == 12:
            try:
                groups.add(bytes.fromhex(parts[4]))
            except ValueError:
                continue
    return frozenset(groups)


class McastList:
    """The link-layer multicast list of one namespace, re-readable."""

    def __init__(self, ns: str | None) -> None:
        self._file: IO[bytes] = netns.call_in(
            ns, lambda: open("/proc/thread-self/net/dev_mcast", "rb", buffering=0)
        )

    def read(self, ifindex: int) -> frozenset[bytes]:
        self._file.seek(0)
        chunks = []
        while chunk := self._file.read(65536):
            chunks.append(chunk)
        return parse_dev_mcast(b"".join(chunks).decode("ascii", "replace"), ifindex)

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True, slots=True)
class LinkEvent:
    state: LinkState | None  # None: the link was deleted


@dataclass(frozen=True, slots=True)
class AddressEvent:
    pass


class LinkWatcher:
    """Yields LinkEvent/AddressEvent for one ifindex in one namespace.

    The netlink socket is read on the NetlinkThread; events cross to the
    daemon's loop through a bounded queue (overflow: a fresh dump of the
    link is as good as the lost events, so the newest event is kept)."""

    def __init__(self, nl: NetlinkThread, ns: str | None, ifindex: int) -> None:
        self.nl = nl
        self.ns = ns
        self.ifindex = ifindex
        self._ipr = None
        self._reader: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[LinkEvent | AddressEvent] = asyncio.Queue(maxsize=256)

    async def __aenter__(self) -> LinkWatcher:
        self._ipr = ipr = await open_iproute(self.nl, self.ns)
        await self.nl.call(ipr.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
        home = asyncio.get_running_loop()

        async def _start() -> None:
            self._reader = asyncio.get_running_loop().create_task(self._read(home))

        await self.nl.call(_start())
        return self

    async def __aexit__(self, *exc: object) -> None:
        ipr, reader = self._ipr, self._reader

        async def _stop() -> None:
            if reader is not None:
                reader.cancel()
            if ipr is not None:
                ipr.close()

        await self.nl.call(_stop())

    def _post(self, event: LinkEvent | AddressEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(event)

    async def _read(self, home: asyncio.AbstractEventLoop) -> None:
        assert self._ipr is not None
        while True:
            # get() yields the messages of one datagram and then ends.
            async for msg in self._ipr.get():
                if msg.get("index") != self.ifindex:
                    continue
                event = msg.get("event")
                # The bridge driver reports port changes as link messages of
                # family AF_BRIDGE, and a port leaving its bridge as an
                # RTM_DELLINK of that family (net/bridge/br_netlink.c): not
                # our device's own state, and certainly not its deletion.
                if event in ("RTM_NEWLINK", "RTM_DELLINK") and msg.get("family") == AF_BRIDGE:
                    continue
                if event == "RTM_NEWLINK":
                    ev: LinkEvent | AddressEvent = LinkEvent(link_state(msg))
                elif event == "RTM_DELLINK":
                    ev = LinkEvent(None)
                elif event in ("RTM_NEWADDR", "RTM_DELADDR"):
                    ev = AddressEvent()
                else:
                    continue
                home.call_soon_threadsafe(self._post, ev)

    async def events(self) -> AsyncIterator[LinkEvent | AddressEvent]:
        while True:
            yield await self._queue.get()
